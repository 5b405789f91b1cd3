//! Host tests of the swap area's disk logic on a `RamDisk`: header check and
//! format, slot -> sector arithmetic, clustered slot I/O, wipes, and disk errors
//! (failing sectors, read-only disks) reported without touching anything else.

use alloc::boxed::Box;
use alloc::vec::Vec;

use blockdev::{BlockDevice, BlockError, PAGE_SIZE, Page, RamDisk, SECTOR_SIZE, WipeKind};

use super::*;
use crate::swap_header::{HeaderError, SIGNATURE};

/// A RAM disk of `nr_slots` slots.
fn disk_of_slots(nr_slots: u64) -> RamDisk {
    RamDisk::new("swap", nr_slots * SECTORS_PER_SLOT)
}

fn page_of(byte: u8) -> Box<Page> {
    Box::new([byte; PAGE_SIZE])
}

#[test]
fn slot_sector_is_eight_sectors_a_slot() {
    assert_eq!(SECTORS_PER_SLOT * SECTOR_SIZE as u64, PAGE_SIZE as u64);
    assert_eq!(slot_sector(0), 0);
    assert_eq!(slot_sector(1), 8);
    assert_eq!(slot_sector(20), 160);
}

#[test]
fn open_formats_a_blank_disk_then_finds_the_header() {
    let disk = disk_of_slots(64);
    let mut header = page_of(0xaa);
    assert_eq!(open(&disk, 1 << 20, &mut header), Ok(Opened { nr_slots: 64, is_formatted_now: true }));
    assert_eq!(disk.request_counts(), (1, 1, 1), "one read, one write, one flush");
    let bytes = disk.to_bytes();
    assert_eq!(bytes[..8], SIGNATURE);
    assert!(bytes[PAGE_SIZE..].iter().all(|&b| b == 0), "only the header page changed");
    assert_eq!(open(&disk, 1 << 20, &mut header), Ok(Opened { nr_slots: 64, is_formatted_now: false }));
    assert_eq!(disk.request_counts(), (2, 1, 1), "a valid header is not rewritten");
}

#[test]
fn open_caps_the_area_at_max_slots_and_keeps_a_formatted_size() {
    let disk = disk_of_slots(64);
    let mut header = page_of(0);
    assert_eq!(open(&disk, 16, &mut header).map(|o| o.nr_slots), Ok(16));
    assert_eq!(open(&disk, 1 << 20, &mut header).map(|o| o.nr_slots), Ok(16), "the header's count wins");
}

#[test]
fn open_refuses_a_foreign_disk_and_leaves_it_untouched() {
    let mut image = alloc::vec![0u8; 16 * PAGE_SIZE];
    image[..8].copy_from_slice(b"EXT2FS!!");
    let disk = RamDisk::from_bytes("swap", image.clone());
    let mut header = page_of(0);
    assert_eq!(open(&disk, 1 << 20, &mut header), Err(OpenError::Refused(HeaderError::Foreign(*b"EXT2FS!!"))));
    assert_eq!(disk.to_bytes(), image);
    assert_eq!(disk.request_counts().1, 0, "nothing written");
}

#[test]
fn open_refuses_read_only_and_tiny_disks() {
    let mut header = page_of(0);
    let read_only = disk_of_slots(8);
    read_only.set_read_only(true);
    assert_eq!(open(&read_only, 1 << 20, &mut header), Err(OpenError::Unusable));
    let tiny = RamDisk::new("swap", 15); // one slot and a bit
    assert_eq!(open(&tiny, 1 << 20, &mut header), Err(OpenError::Unusable));
    assert_eq!(read_only.request_counts(), (0, 0, 0), "not even read");
}

#[test]
fn open_reports_header_io_errors() {
    let mut header = page_of(0);
    let bad_read = disk_of_slots(8);
    bad_read.fail_sector(3);
    assert_eq!(open(&bad_read, 1 << 20, &mut header), Err(OpenError::Io(BlockError::Io)));
    let bad_write = disk_of_slots(8);
    bad_write.fail_writes_to(0);
    assert_eq!(open(&bad_write, 1 << 20, &mut header), Err(OpenError::Io(BlockError::Io)), "blank, but unwritable");
    assert_eq!(bad_write.request_counts(), (1, 0, 0), "read, write refused, no flush");
}

#[test]
fn a_cluster_of_slots_is_one_request_and_reads_back() {
    let disk = disk_of_slots(128);
    let pages: Vec<Box<Page>> = (1..=32u8).map(page_of).collect();
    let refs: Vec<&Page> = pages.iter().map(|p| &**p).collect();
    let before = disk.request_counts();
    write_slots(&disk, 40, &refs).unwrap();
    assert_eq!(disk.request_counts().1, before.1 + 1, "32 slots, one write request");
    let mut back: Vec<Box<Page>> = (0..32).map(|_| page_of(0)).collect();
    let mut back_refs: Vec<&mut Page> = back.iter_mut().map(|p| &mut **p).collect();
    read_slots(&disk, 40, &mut back_refs).unwrap();
    assert_eq!(disk.request_counts().0, before.0 + 1, "32 slots, one read request");
    for (i, page) in back.iter().enumerate() {
        assert!(page.iter().all(|&b| b == i as u8 + 1), "slot {} holds its page", 40 + i);
    }
    let mut one = [0u8; SECTOR_SIZE];
    disk.read(slot_sector(45), &mut one).unwrap();
    assert!(one.iter().all(|&b| b == 6), "slot 45 is at sector 8 * 45");
}

#[test]
fn a_failing_slot_fails_its_cluster_and_no_other() {
    let disk = disk_of_slots(128);
    disk.fail_sector(slot_sector(20) + 7);
    let pages: Vec<Box<Page>> = (0..4u8).map(page_of).collect();
    let refs: Vec<&Page> = pages.iter().map(|p| &**p).collect();
    assert_eq!(write_slots(&disk, 18, &refs), Err(BlockError::Io), "slots 18-21 include the bad one");
    assert_eq!(write_slots(&disk, 21, &refs), Ok(()), "slots 21-24 do not");
    let mut page = page_of(0);
    assert_eq!(read_slots(&disk, 20, &mut [&mut *page]), Err(BlockError::Io));
    assert_eq!(read_slots(&disk, 19, &mut [&mut *page]), Ok(()));
    assert_eq!(write_slots(&disk, 127, &refs[..2]), Err(BlockError::OutOfRange), "past the last slot");
}

#[test]
fn wiping_slots_zeroes_exactly_them() {
    let disk = disk_of_slots(16);
    let pages: Vec<Box<Page>> = (0..6).map(|_| page_of(0x5a)).collect();
    let refs: Vec<&Page> = pages.iter().map(|p| &**p).collect();
    write_slots(&disk, 2, &refs).unwrap();
    assert_eq!(wipe_slots(&disk, 3, 2), Ok(WipeKind::Zeroed));
    let bytes = disk.to_bytes();
    let slot = |s: usize| &bytes[s * PAGE_SIZE..(s + 1) * PAGE_SIZE];
    assert!(slot(2).iter().all(|&b| b == 0x5a));
    assert!(slot(3).iter().chain(slot(4)).all(|&b| b == 0));
    assert!(slot(5).iter().all(|&b| b == 0x5a));
    disk.set_read_only(true);
    assert_eq!(wipe_slots(&disk, 3, 1), Err(BlockError::Unsupported), "a read-only disk cannot wipe");
}
