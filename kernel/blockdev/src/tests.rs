//! Host tests of the request checks and the RAM disk.

use alloc::vec;

use super::*;

#[test]
fn check_request_rejects_partial_and_out_of_range() {
    assert_eq!(check_request(0, 0, 8), Err(BlockError::BadLength));
    assert_eq!(check_request(0, 100, 8), Err(BlockError::BadLength));
    assert_eq!(check_request(7, 1024, 8), Err(BlockError::OutOfRange));
    assert_eq!(check_request(u64::MAX, 512, 8), Err(BlockError::OutOfRange));
    assert_eq!(check_request(6, 1024, 8), Ok(()));
}

#[test]
fn ram_disk_reads_back_what_was_written() {
    let disk = RamDisk::new("ram0", 16);
    let dev: &dyn BlockDevice = &disk;
    assert_eq!(dev.capacity_bytes(), 16 * 512);
    let data: alloc::vec::Vec<u8> = (0..1024).map(|i| (i % 251) as u8).collect();
    dev.write(3, &data).unwrap();
    let mut back = vec![0u8; 1024];
    dev.read(3, &mut back).unwrap();
    assert_eq!(back, data);
    let mut before = vec![0xffu8; 512];
    dev.read(2, &mut before).unwrap();
    assert!(before.iter().all(|&b| b == 0), "sector 2 untouched");
    assert_eq!(disk.request_counts(), (2, 1, 0));
}

#[test]
fn ram_disk_failing_sector_fails_only_requests_that_touch_it() {
    let disk = RamDisk::new("ram0", 16);
    disk.fail_sector(5);
    let mut buf = vec![0u8; 1024];
    assert_eq!(disk.read(4, &mut buf), Err(BlockError::Io));
    assert_eq!(disk.write(5, &buf[..512]), Err(BlockError::Io));
    assert_eq!(disk.read(6, &mut buf), Ok(()));
    assert_eq!(disk.write(3, &buf[..512]), Ok(()));
}

#[test]
fn ram_disk_from_bytes_pads_last_sector() {
    let disk = RamDisk::from_bytes("img", vec![7u8; 700]);
    assert_eq!(disk.sector_count(), 2);
    let mut buf = vec![0u8; 1024];
    disk.read(0, &mut buf).unwrap();
    assert!(buf[..700].iter().all(|&b| b == 7) && buf[700..].iter().all(|&b| b == 0));
    assert_eq!(disk.to_bytes().len(), 1024);
}
