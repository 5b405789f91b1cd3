//! The swap area: a blank disk is formatted at boot, our header is reused, a disk
//! that holds anything else is refused and left untouched, and slots are handed out,
//! shared and freed with the disk's size as the limit.
//!
//! This image asks the runner for an 8 MiB swap disk (2048 slots, slot 0 the header).
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;

use kernel::drivers::virtio_blk;
use kernel::mm::frame::OwnedFrames;
use kernel::mm::check;
use kernel::mm::swap::{self, SwapOffError, SwapOnError};
use kernel::mm::{Order, PAGE_SIZE};
use mm_core::swap_header::{HeaderError, SwapHeader};

kernel::runner_args!(b"--swap-size 8M");

kernel::test_kernel!();

/// Slots on the 8 MiB disk, the header slot included.
const NR_SLOTS: u32 = 2048;

/// Reads the header page (slot 0) straight from the disk.
fn read_header_page() -> alloc::vec::Vec<u8> {
    let buf = OwnedFrames::new_zeroed(Order(0)).expect("no frame");
    virtio_blk::swap_disk().expect("no swap disk").lock().read_frame(0, buf.start()).expect("read slot 0");
    let mut page = vec![0u8; PAGE_SIZE as usize];
    buf.read_bytes(0, &mut page);
    page
}

/// Writes `page` over the header page, bypassing the swap code.
fn write_header_page(page: &[u8]) {
    let mut buf = OwnedFrames::new_zeroed(Order(0)).expect("no frame");
    buf.write_bytes(0, page);
    virtio_blk::swap_disk().expect("no swap disk").lock().write_frame(0, buf.start()).expect("write slot 0");
}

/// Turns swap off, writes `page` as the header, and returns what swapon says.
fn swapon_with_header(page: &[u8]) -> Result<swap::SwapOn, SwapOnError> {
    match swap::swapoff() {
        Ok(()) | Err(SwapOffError::NotOn) => {}
        Err(e) => panic!("swapoff: {e:?}"),
    }
    write_header_page(page);
    swap::swapon()
}

/// Leaves the machine as boot did: a freshly formatted area, swap on.
fn restore_blank_area() {
    let _ = swap::swapoff();
    write_header_page(&[0; PAGE_SIZE as usize]);
    let on = swap::swapon().expect("swapon on a blank disk");
    assert!(on.is_formatted_now);
}

/// Runs the kernel's audit (every slot's share count against its users, frames,
/// policy); each test ends with it.
fn assert_consistent() {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"));
}

#[test_case]
fn boot_formats_the_blank_disk_and_turns_swap_on() {
    assert!(swap::is_on());
    assert_eq!(swap::slot_counts(), (u64::from(NR_SLOTS - 1), u64::from(NR_SLOTS - 1)));
    let page = read_header_page();
    assert_eq!(&page[..8], b"RKSWAP01");
    assert_eq!(
        SwapHeader::inspect(&page, PAGE_SIZE as u32, u64::from(NR_SLOTS)),
        mm_core::swap_header::HeaderCheck::Valid(SwapHeader::new(PAGE_SIZE as u32, u64::from(NR_SLOTS)))
    );
    assert_consistent();
}

#[test_case]
fn swapon_while_on_is_refused() {
    assert_eq!(swap::swapon(), Err(SwapOnError::AlreadyOn));
    assert_consistent();
}

#[test_case]
fn our_header_is_reused_without_formatting() {
    swap::swapoff().expect("swapoff");
    let before = read_header_page();
    let on = swap::swapon().expect("swapon on our own header");
    assert_eq!(on, swap::SwapOn { nr_slots: NR_SLOTS, is_formatted_now: false });
    assert_eq!(read_header_page(), before);
    assert_consistent();
}

#[test_case]
fn a_smaller_area_in_the_header_wins_over_the_disk_size() {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    SwapHeader::new(PAGE_SIZE as u32, 100).encode(&mut page);
    let on = swapon_with_header(&page).expect("a 100-slot header on a 2048-slot disk");
    assert_eq!(on.nr_slots, 100);
    assert_eq!(swap::slot_counts(), (99, 99));
    restore_blank_area();
    assert_consistent();
}

#[test_case]
fn a_foreign_disk_is_refused_and_left_untouched() {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    page[..8].copy_from_slice(b"EXT4FS!!");
    page[1000] = 0x5a;
    assert_eq!(swapon_with_header(&page), Err(SwapOnError::Refused(HeaderError::Foreign(*b"EXT4FS!!"))));
    assert!(!swap::is_on());
    assert_eq!(swap::slot_counts(), (0, 0));
    assert_eq!(read_header_page(), page, "a refused disk must not be written");
    assert_eq!(swap::alloc_slot(), None, "no slots while swap is off");
    restore_blank_area();
    assert_consistent();
}

#[test_case]
fn damaged_headers_are_refused() {
    let mut page = vec![0u8; PAGE_SIZE as usize];
    SwapHeader::new(PAGE_SIZE as u32, u64::from(NR_SLOTS)).encode(&mut page);
    page[20] ^= 0x40; // nr_slots changed behind the checksum's back
    assert!(matches!(swapon_with_header(&page), Err(SwapOnError::Refused(HeaderError::Checksum { .. }))));
    SwapHeader::new(PAGE_SIZE as u32, u64::from(NR_SLOTS) + 1).encode(&mut page);
    assert_eq!(
        swapon_with_header(&page),
        Err(SwapOnError::Refused(HeaderError::SlotCount { nr_slots: u64::from(NR_SLOTS) + 1, capacity: u64::from(NR_SLOTS) }))
    );
    SwapHeader::new(PAGE_SIZE as u32, u64::from(NR_SLOTS)).encode(&mut page);
    page[8] = 2;
    assert!(matches!(swapon_with_header(&page), Err(SwapOnError::Refused(HeaderError::Version(_)))));
    assert!(!swap::is_on());
    restore_blank_area();
    assert_consistent();
}

#[test_case]
fn every_slot_is_handed_out_once_and_swapoff_waits_for_them() {
    let mut entries = alloc::vec::Vec::new();
    while let Some(entry) = swap::alloc_slot() {
        assert_ne!(entry.slot(), 0, "slot 0 is the header");
        entries.push(entry);
    }
    assert_eq!(entries.len(), NR_SLOTS as usize - 1);
    assert_eq!(swap::slot_counts().0, 0);
    assert_eq!(swap::swapoff(), Err(SwapOffError::InUse(NR_SLOTS - 1)));
    assert_eq!(swap::dup(entries[0]), Ok(2));
    assert_eq!(swap::put(entries[0]), Ok(1));
    for entry in &entries {
        assert_eq!(swap::put(*entry), Ok(0));
    }
    assert!(swap::put(entries[0]).is_err(), "a free slot cannot be put");
    swap::check_slot_map();
    assert_eq!(swap::slot_counts(), (u64::from(NR_SLOTS - 1), u64::from(NR_SLOTS - 1)));
    assert_consistent();
}

#[test_case]
fn a_page_round_trips_through_a_slot() {
    let entry = swap::alloc_slot().expect("a slot");
    let mut out = OwnedFrames::new_zeroed(Order(0)).expect("no frame");
    let mut back = OwnedFrames::new_zeroed(Order(0)).expect("no frame");
    let pattern: alloc::vec::Vec<u8> = (0..PAGE_SIZE as usize).map(|i| (i * 7 + 3) as u8).collect();
    out.write_bytes(0, &pattern);
    swap::write_slot(entry, out.page()).expect("write slot");
    swap::read_slot(entry, back.page_mut()).expect("read slot");
    let mut read = vec![0u8; PAGE_SIZE as usize];
    back.read_bytes(0, &mut read);
    assert_eq!(read, pattern);
    assert_eq!(swap::put(entry), Ok(0));
    assert_consistent();
}
