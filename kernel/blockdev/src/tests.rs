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

/// A page filled with `byte`.
fn page_of(byte: u8) -> alloc::boxed::Box<Page> {
    alloc::boxed::Box::new([byte; PAGE_SIZE])
}

#[test]
fn page_io_moves_scattered_pages_in_one_request_per_batch() {
    let disk = RamDisk::new("ram0", 128 * SECTORS_PER_PAGE);
    let pages: alloc::vec::Vec<_> = (0..40u8).map(page_of).collect();
    let refs: alloc::vec::Vec<&Page> = pages.iter().map(|p| &**p).collect();
    disk.write_pages(8, &refs[..32]).unwrap();
    assert_eq!(disk.request_counts(), (0, 1, 0), "32 pages are one request");
    disk.write_pages(8 + 32 * SECTORS_PER_PAGE, &refs[32..]).unwrap();
    let mut back: alloc::vec::Vec<_> = (0..40).map(|_| page_of(0xee)).collect();
    let mut back_refs: alloc::vec::Vec<&mut Page> = back.iter_mut().map(|p| &mut **p).collect();
    disk.read_pages(8, &mut back_refs).unwrap();
    assert_eq!(disk.request_counts(), (2, 2, 0), "40 pages are two requests of at most 32");
    for (i, page) in back.iter().enumerate() {
        assert!(page.iter().all(|&b| b == i as u8), "page {i} came back as written");
    }
    let mut first = [0u8; SECTOR_SIZE];
    disk.read(8 + 5 * SECTORS_PER_PAGE, &mut first).unwrap();
    assert!(first.iter().all(|&b| b == 5), "page i is at sector + 8 i");
}

#[test]
fn page_io_splits_by_the_device_limit() {
    let disk = RamDisk::new("ram0", 64 * SECTORS_PER_PAGE);
    disk.set_max_pages_per_request(4);
    assert_eq!(disk.max_pages_per_request(), 4);
    let pages: alloc::vec::Vec<_> = (0..10u8).map(page_of).collect();
    let refs: alloc::vec::Vec<&Page> = pages.iter().map(|p| &**p).collect();
    disk.write_pages(0, &refs).unwrap();
    assert_eq!(disk.request_counts(), (0, 3, 0), "10 pages at 4 a request");
}

#[test]
fn page_io_rejects_out_of_range_and_failing_sectors() {
    let disk = RamDisk::new("ram0", 4 * SECTORS_PER_PAGE);
    let page = page_of(1);
    assert_eq!(disk.write_pages(3 * SECTORS_PER_PAGE, &[&page, &page]), Err(BlockError::OutOfRange));
    assert_eq!(disk.write_pages(0, &[]), Err(BlockError::BadLength));
    disk.fail_sector(2 * SECTORS_PER_PAGE + 3);
    assert_eq!(disk.write_pages(SECTORS_PER_PAGE, &[&page, &page]), Err(BlockError::Io));
    let mut back = page_of(0);
    assert_eq!(disk.read_pages(2 * SECTORS_PER_PAGE, &mut [&mut back]), Err(BlockError::Io));
    disk.heal_sector(2 * SECTORS_PER_PAGE + 3);
    assert_eq!(disk.read_pages(2 * SECTORS_PER_PAGE, &mut [&mut back]), Ok(()));
}

#[test]
fn read_only_disk_refuses_writes_and_wipes() {
    let disk = RamDisk::new("ram0", 16);
    disk.set_read_only(true);
    assert!(disk.is_read_only());
    assert_eq!(disk.write(0, &[0; 512]), Err(BlockError::ReadOnly));
    assert_eq!(disk.write_pages(0, &[&page_of(1)]), Err(BlockError::ReadOnly));
    assert_eq!(disk.wipe_kind(), None);
    assert_eq!(disk.wipe(0, 8), Err(BlockError::Unsupported));
    let mut buf = [0u8; 512];
    assert_eq!(disk.read(0, &mut buf), Ok(()), "reads still work");
}

#[test]
fn wipe_zeroes_the_range_and_nothing_else() {
    let disk = RamDisk::new("ram0", 64);
    disk.write(0, &[7u8; 64 * 512]).unwrap();
    assert_eq!(disk.wipe(8, 16), Ok(WipeKind::Zeroed));
    assert_eq!(disk.nr_wipes(), 1);
    let bytes = disk.to_bytes();
    assert!(bytes[..8 * 512].iter().all(|&b| b == 7));
    assert!(bytes[8 * 512..24 * 512].iter().all(|&b| b == 0));
    assert!(bytes[24 * 512..].iter().all(|&b| b == 7));
    assert_eq!(disk.wipe(60, 8), Err(BlockError::OutOfRange));
}

/// A device that implements only the byte-buffer methods gets working page I/O
/// (a page per request) and no wipes from the trait's defaults.
struct MinimalDisk(RamDisk);

impl BlockDevice for MinimalDisk {
    fn name(&self) -> &str {
        "minimal"
    }
    fn sector_count(&self) -> u64 {
        self.0.sector_count()
    }
    fn read(&self, sector: u64, buf: &mut [u8]) -> Result<(), BlockError> {
        self.0.read(sector, buf)
    }
    fn write(&self, sector: u64, buf: &[u8]) -> Result<(), BlockError> {
        self.0.write(sector, buf)
    }
    fn flush(&self) -> Result<(), BlockError> {
        self.0.flush()
    }
}

#[test]
fn default_page_io_is_a_request_per_page_and_wipes_are_unsupported() {
    let disk = MinimalDisk(RamDisk::new("ram0", 4 * SECTORS_PER_PAGE));
    let dev: &dyn BlockDevice = &disk;
    assert_eq!(dev.max_pages_per_request(), 1);
    dev.write_pages(0, &[&page_of(3), &page_of(4)]).unwrap();
    assert_eq!(disk.0.request_counts(), (0, 2, 0));
    let (mut a, mut b) = (page_of(0), page_of(0));
    dev.read_pages(0, &mut [&mut a, &mut b]).unwrap();
    assert!(a.iter().all(|&x| x == 3) && b.iter().all(|&x| x == 4));
    assert_eq!(dev.write_pages(3 * SECTORS_PER_PAGE, &[&a, &b]), Err(BlockError::OutOfRange));
    assert_eq!(dev.write_zeroes(0, 8), Err(BlockError::Unsupported));
    assert_eq!(dev.discard(0, 8), Err(BlockError::Unsupported));
    assert_eq!(dev.wipe(0, 8), Err(BlockError::Unsupported));
}

#[test]
fn ram_disk_spans_chunks() {
    let sectors = (2 * ram_disk::CHUNK_BYTES / SECTOR_SIZE) as u64 + 8;
    let disk = RamDisk::new("big", sectors);
    let boundary = (ram_disk::CHUNK_BYTES / SECTOR_SIZE) as u64 - 4;
    let data: alloc::vec::Vec<u8> = (0..4096).map(|i| (i % 253) as u8).collect();
    disk.write(boundary, &data).unwrap();
    let mut back = vec![0u8; 4096];
    disk.read(boundary, &mut back).unwrap();
    assert_eq!(back, data, "a request across a chunk boundary");
    assert_eq!(disk.to_bytes().len() as u64, sectors * 512);
}

#[test]
fn write_failures_leave_reads_alone() {
    let disk = RamDisk::new("ram0", 16);
    disk.fail_writes_to(9);
    let mut buf = vec![0u8; 1024];
    assert_eq!(disk.read(8, &mut buf), Ok(()));
    assert_eq!(disk.write(8, &buf), Err(BlockError::Io));
    assert_eq!(disk.write_zeroes(9, 1), Err(BlockError::Io));
    disk.heal_sector(9);
    assert_eq!(disk.write(8, &buf), Ok(()));
}

#[test]
fn page_runs_report_each_runs_outcome_and_a_failing_run_fails_alone() {
    let disk = RamDisk::new("ram0", 8 * SECTORS_PER_PAGE);
    let pages: alloc::vec::Vec<_> = (0..4u8).map(page_of).collect();
    disk.fail_sector(5 * SECTORS_PER_PAGE);
    let runs: [(u64, &[&Page]); 3] =
        [(0, &[&*pages[0], &*pages[1]]), (4 * SECTORS_PER_PAGE, &[&*pages[2], &*pages[3]]), (6 * SECTORS_PER_PAGE, &[&*pages[3]])];
    let mut results = [Ok(()); 3];
    disk.write_page_runs(&runs, &mut results);
    assert_eq!(results, [Ok(()), Err(BlockError::Io), Ok(())]);
    disk.heal_sector(5 * SECTORS_PER_PAGE);
    let (mut a, mut b, mut c) = (page_of(9), page_of(9), page_of(9));
    let (first, rest) = (&mut [&mut *a][..], &mut [&mut *b, &mut *c][..]);
    let mut read_runs: [(u64, &mut [&mut Page]); 2] = [(6 * SECTORS_PER_PAGE, first), (0, rest)];
    let mut results = [Err(BlockError::Io); 2];
    disk.read_page_runs(&mut read_runs, &mut results);
    assert_eq!(results, [Ok(()), Ok(())]);
    assert_eq!((a, b, c), (page_of(3), page_of(0), page_of(1)));
}
