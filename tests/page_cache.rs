//! The page cache (`mm/page_cache.rs`) over a file in RAM whose `PageIo` counts
//! every page it reads and writes: a miss reads once and a hit never, a write
//! dirties and `write_back` writes exactly the dirty pages (the last one partial),
//! truncation drops pages and frees their frames, a failed write keeps the page
//! dirty, sequential reads are read ahead, writeback writes old dirty pages by
//! itself and a file that asked for it (MS_ASYNC) at once, and under memory
//! pressure the cache of a big file is reclaimed (clean pages dropped, dirty ones
//! written to their file, none to swap) while an anonymous workload runs.
//!
//! The last test does the same through the VFS on ext2 (`/` on the root disk): a
//! file written while an anonymous workload takes most of memory reads back right,
//! and the runner's `e2fsck -fn` after the run finds the disk clean.
//!
//! This image asks the runner for 64 MiB of RAM.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use kernel::fs::{FsError, Inode};
use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::frame::{self, NewPage};
use kernel::mm::page_cache::{self, FileEvent, PageCache, PageIo};
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{PAGE_SIZE, check, fault, reclaim, writeback};
use kernel::sync::{IrqMutex, LockRank};
use kernel::testing::USER_WRITE;

kernel::runner_args!(b"--memory 64M --timeout 240");

kernel::test_kernel!();

const PAGE: usize = PAGE_SIZE as usize;

/// A file in RAM that counts the page I/O the cache asks of it. Its locks rank as a
/// disk's (`BlockDevices`): the heap may be taken under them.
struct RamFile {
    data: IrqMutex<Vec<u8>>,
    nr_reads: AtomicU64,
    nr_writes: AtomicU64,
    /// (index, len) of every page written, in order.
    written: IrqMutex<Vec<(u64, usize)>>,
    fails_writes: AtomicBool,
}

impl RamFile {
    fn new(data: Vec<u8>) -> Arc<RamFile> {
        Arc::new(RamFile {
            data: IrqMutex::new_ranked(LockRank::BlockDevices, data),
            nr_reads: AtomicU64::new(0),
            nr_writes: AtomicU64::new(0),
            written: IrqMutex::new_ranked(LockRank::BlockDevices, Vec::new()),
            fails_writes: AtomicBool::new(false),
        })
    }

    fn reads(&self) -> u64 {
        self.nr_reads.load(Ordering::Relaxed)
    }

    fn writes(&self) -> u64 {
        self.nr_writes.load(Ordering::Relaxed)
    }
}

impl PageIo for RamFile {
    fn read_page(&self, index: u64, dst: &mut NewPage) -> Result<(), FsError> {
        self.nr_reads.fetch_add(1, Ordering::Relaxed);
        let data = self.data.lock();
        let start = (index as usize * PAGE).min(data.len());
        let end = (start + PAGE).min(data.len());
        dst.write_bytes(0, &data[start..end]);
        Ok(())
    }

    fn write_page(&self, index: u64, src: &[u8], len: usize) -> Result<(), FsError> {
        self.nr_writes.fetch_add(1, Ordering::Relaxed);
        if self.fails_writes.load(Ordering::Relaxed) {
            return Err(FsError::Io);
        }
        self.written.lock().push((index, len));
        let mut data = self.data.lock();
        let start = index as usize * PAGE;
        if data.len() < start + len {
            data.resize(start + len, 0);
        }
        data[start..start + len].copy_from_slice(&src[..len]);
        Ok(())
    }
}

/// `n` bytes where byte `i` is a function of `i` and `seed`.
fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add((i / PAGE) as u8) ^ seed).collect()
}

fn cache_over(bytes: Vec<u8>) -> (Arc<RamFile>, Arc<PageCache>) {
    let size = bytes.len() as u64;
    let file = RamFile::new(bytes);
    let cache = PageCache::new(file.clone(), size);
    (file, cache)
}

fn assert_consistent() {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"));
}

#[test_case]
fn a_miss_reads_the_page_once_and_a_hit_never() {
    let bytes = pattern(3 * PAGE, 1);
    let (file, cache) = cache_over(bytes.clone());
    let page = cache.get_page(1).expect("get_page");
    assert_eq!(file.reads(), 1);
    let mut buf = vec![0u8; PAGE];
    page.read(0, &mut buf);
    assert_eq!(buf, bytes[PAGE..2 * PAGE]);
    drop(page);
    for _ in 0..3 {
        assert_eq!(cache.get_page(1).expect("hit").index(), 1);
    }
    assert!(cache.find_page(0).is_none(), "find_page never reads");
    assert_eq!(file.reads(), 1, "hits read nothing");
    assert_eq!(cache.nr_cached(), 1);
    assert!(reclaim::is_tracked(cache.find_page(1).unwrap().frame()), "a cached page is tracked by the policy");
    assert_consistent();
}

#[test_case]
fn read_at_returns_the_file_bytes_and_stops_at_the_end() {
    let bytes = pattern(2 * PAGE + 100, 2);
    let (_file, cache) = cache_over(bytes.clone());
    let mut buf = vec![0u8; 3 * PAGE];
    assert_eq!(cache.read_at(10, &mut buf), Ok(2 * PAGE + 90));
    assert_eq!(buf[..2 * PAGE + 90], bytes[10..]);
    assert_eq!(cache.read_at(2 * PAGE as u64 + 100, &mut buf), Ok(0), "at the end");
    assert_eq!(cache.read_at(1 << 40, &mut buf), Ok(0), "past the end");
}

#[test_case]
fn drop_caches_drops_clean_unused_pages_and_keeps_dirty_and_held_ones() {
    let bytes = pattern(4 * PAGE, 9);
    let (file, cache) = cache_over(bytes.clone());
    let mut buf = vec![0u8; 4 * PAGE];
    assert_eq!(cache.read_at(0, &mut buf), Ok(4 * PAGE));
    cache.write_at(PAGE as u64, &[0xab; 10]).unwrap(); // page 1 dirty
    let held = cache.find_page(2).unwrap(); // page 2 in use by a handle
    let free_before = frame::nr_free_frames();
    assert_eq!(kernel::fs::drop_caches::write("0"), Err(FsError::Invalid), "0 is out of range");
    assert_eq!(kernel::fs::drop_caches::write("three"), Err(FsError::Invalid));
    assert_eq!(cache.nr_cached(), 4, "a refused write dropped nothing");
    kernel::fs::drop_caches::write("3\n").unwrap();
    assert_eq!(cache.nr_cached(), 2, "pages 0 and 3 dropped, the dirty and the held page kept");
    assert!(cache.find_page(0).is_none() && cache.find_page(3).is_none());
    assert_eq!(frame::nr_free_frames(), free_before + 2, "their frames are free");
    drop(held);
    let reads_before = file.reads();
    let mut again = vec![0u8; 4 * PAGE];
    assert_eq!(cache.read_at(0, &mut again), Ok(4 * PAGE));
    let mut want = bytes;
    want[PAGE..PAGE + 10].fill(0xab);
    assert_eq!(again, want, "the dirty page kept its write; the dropped ones read back from the file");
    assert!(file.reads() > reads_before, "the dropped pages came from the file again");
    assert_consistent();
}

#[test_case]
fn the_fault_around_knob_takes_a_page_or_sixteen_and_nothing_else() {
    use kernel::fs::drop_caches::{fault_around_read, fault_around_write};
    assert_eq!(fault_around_read(), "65536\n", "on by default, Linux's 64 KiB");
    fault_around_write("4096\n").unwrap();
    assert!(!kernel::mm::filemap::is_fault_around_on());
    assert_eq!(fault_around_read(), "4096\n");
    assert_eq!(fault_around_write("8192"), Err(FsError::Invalid), "no other size");
    assert_eq!(fault_around_write("lots"), Err(FsError::Invalid));
    assert!(!kernel::mm::filemap::is_fault_around_on(), "a refused write changed nothing");
    fault_around_write("65536").unwrap();
    assert!(kernel::mm::filemap::is_fault_around_on());
}

#[test_case]
fn a_write_dirties_and_write_back_writes_exactly_the_dirty_pages() {
    let (file, cache) = cache_over(pattern(5 * PAGE, 3));
    let before_dirty = page_cache::nr_dirty();
    assert_eq!(cache.write_at(PAGE as u64 + 7, b"hello"), Ok(5));
    assert_eq!(cache.write_at(3 * PAGE as u64, &[0xaa; 10]), Ok(10));
    assert_eq!((cache.nr_dirty(), page_cache::nr_dirty() - before_dirty), (2, 2));
    assert_eq!(file.writes(), 0, "a write only dirties the cache");
    assert_eq!(file.reads(), 2, "a partial-page write reads the page first");
    cache.write_back(0, u64::MAX).expect("write_back");
    assert_eq!(*file.written.lock(), [(1, PAGE), (3, PAGE)]);
    assert_eq!(cache.nr_dirty(), 0);
    assert_eq!(page_cache::nr_dirty(), before_dirty);
    let data = file.data.lock().clone();
    assert_eq!(&data[PAGE + 7..PAGE + 12], b"hello");
    assert_eq!(data[3 * PAGE..3 * PAGE + 10], [0xaa; 10]);
    cache.write_back(0, u64::MAX).expect("write_back");
    assert_eq!(file.writes(), 2, "clean pages are not written again");
}

#[test_case]
fn write_back_writes_only_the_bytes_of_the_last_partial_page() {
    let (file, cache) = cache_over(Vec::new());
    assert_eq!(cache.write_at(0, &pattern(PAGE + 904, 4)), Ok(PAGE + 904));
    assert_eq!(cache.size(), PAGE as u64 + 904);
    assert_eq!(file.reads(), 0, "pages past the end are not read");
    cache.write_back(0, u64::MAX).expect("write_back");
    assert_eq!(*file.written.lock(), [(0, PAGE), (1, 904)]);
    assert_eq!(*file.data.lock(), pattern(PAGE + 904, 4));
}

#[test_case]
fn a_whole_page_write_reads_nothing() {
    let (file, cache) = cache_over(pattern(4 * PAGE, 5));
    assert_eq!(cache.write_at(PAGE as u64, &[7; 2 * PAGE]), Ok(2 * PAGE));
    assert_eq!(file.reads(), 0);
}

#[test_case]
fn write_back_of_a_range_leaves_the_pages_outside_it_dirty() {
    let (file, cache) = cache_over(pattern(8 * PAGE, 6));
    for i in 0..8u64 {
        cache.write_at(i * PAGE as u64, &[i as u8; PAGE]).unwrap();
    }
    cache.write_back(2, 4).expect("write_back");
    assert_eq!(file.written.lock().iter().map(|w| w.0).collect::<Vec<_>>(), [2, 3, 4]);
    assert_eq!(cache.nr_dirty(), 5);
    cache.write_back(0, u64::MAX).unwrap();
}

#[test_case]
fn truncate_drops_the_pages_past_the_end_and_frees_their_frames() {
    let (file, cache) = cache_over(pattern(6 * PAGE, 7));
    let mut buf = vec![0u8; 6 * PAGE];
    cache.read_at(0, &mut buf).unwrap();
    cache.write_at(5 * PAGE as u64, b"dirty").unwrap();
    assert_eq!(cache.nr_cached(), 6);
    let (pages, dirty, free) = (page_cache::nr_pages(), page_cache::nr_dirty(), frame::nr_free_frames());
    cache.truncate(PAGE as u64 + 10).expect("truncate");
    file.data.lock().truncate(PAGE + 10); // the file system's part of a truncate
    assert_eq!(cache.nr_cached(), 2);
    assert_eq!((page_cache::nr_pages(), page_cache::nr_dirty()), (pages - 4, dirty - 1));
    assert!(frame::nr_free_frames() >= free + 4, "the dropped pages' frames are free again");
    assert_eq!(cache.read_at(PAGE as u64 + 10, &mut buf), Ok(0));
    // Growing the file again shows zeros where the cut bytes were.
    cache.write_at(3 * PAGE as u64, b"x").unwrap();
    assert_eq!(cache.read_at(PAGE as u64, &mut buf[..3 * PAGE]), Ok(2 * PAGE + 1));
    assert_eq!(buf[..10], pattern(2 * PAGE, 7)[PAGE..PAGE + 10]);
    assert!(buf[10..2 * PAGE].iter().all(|&b| b == 0), "the tail past the truncation reads as zeros");
    assert_eq!(buf[2 * PAGE], b'x');
    assert_consistent();
}

#[test_case]
fn a_failed_write_back_keeps_the_page_dirty() {
    let (file, cache) = cache_over(pattern(2 * PAGE, 8));
    cache.write_at(0, b"abc").unwrap();
    file.fails_writes.store(true, Ordering::Relaxed);
    assert_eq!(cache.write_back(0, u64::MAX), Err(FsError::Io));
    assert_eq!(cache.nr_dirty(), 1, "the page is still dirty");
    assert_eq!(page_cache::nr_writeback(), 0);
    file.fails_writes.store(false, Ordering::Relaxed);
    cache.write_back(0, u64::MAX).expect("the retry writes it");
    assert_eq!(&file.data.lock()[..3], b"abc");
    assert_eq!(cache.nr_dirty(), 0);
}

#[test_case]
fn a_dropped_cache_frees_its_frames() {
    let free = frame::nr_free_frames();
    let pages = page_cache::nr_pages();
    {
        let (_file, cache) = cache_over(pattern(16 * PAGE, 9));
        let mut buf = vec![0u8; 16 * PAGE];
        cache.read_at(0, &mut buf).unwrap();
        assert_eq!(page_cache::nr_pages(), pages + 16);
    }
    assert_eq!(page_cache::nr_pages(), pages);
    assert!(frame::nr_free_frames() + 2 >= free, "the frames came back ({} free, {free} before)", frame::nr_free_frames());
    assert_consistent();
}

#[test_case]
fn a_sequential_read_is_read_ahead_and_random_reads_are_not() {
    let bytes = pattern(256 * PAGE, 10);
    let (file, cache) = cache_over(bytes.clone());
    let (ahead, hits) = (page_cache::nr_events(FileEvent::ReadaheadPage), page_cache::nr_events(FileEvent::ReadaheadHit));
    let mut buf = vec![0u8; PAGE];
    for i in 0..256u64 {
        assert_eq!(cache.read_at(i * PAGE as u64, &mut buf), Ok(PAGE));
        assert_eq!(buf, bytes[i as usize * PAGE..(i as usize + 1) * PAGE]);
    }
    assert_eq!(file.reads(), 256, "every page read exactly once");
    let nr_ahead = page_cache::nr_events(FileEvent::ReadaheadPage) - ahead;
    let nr_hits = page_cache::nr_events(FileEvent::ReadaheadHit) - hits;
    assert_eq!(nr_ahead, 255, "all but the first page were read ahead");
    assert_eq!(nr_hits, 255, "and used");

    let (file, cache) = cache_over(bytes);
    let ahead = page_cache::nr_events(FileEvent::ReadaheadPage);
    let mut index = 7u64;
    for _ in 0..64 {
        index = (index * 73 + 11) % 256;
        cache.read_at(index * PAGE as u64 + 1, &mut buf[..10]).unwrap();
    }
    let nr_ahead = page_cache::nr_events(FileEvent::ReadaheadPage) - ahead;
    assert!(nr_ahead <= 8, "{nr_ahead} pages read ahead for random reads");
    assert!(file.reads() <= 64 + 8);
}

#[test_case]
fn the_writeback_thread_writes_old_dirty_pages_by_itself() {
    let (file, cache) = cache_over(pattern(4 * PAGE, 11));
    cache.write_at(0, &[1; 3 * PAGE]).unwrap();
    assert_eq!(cache.nr_dirty(), 3);
    let start = kernel::arch::timer::uptime_ms();
    // Written when no page is dirty and none is under write-back (see the next test).
    while cache.nr_dirty() > 0 || page_cache::nr_writeback() > 0 {
        assert!(kernel::arch::timer::uptime_ms() - start < 5000, "still dirty after 5 s");
        kernel::proc::sched::yield_now();
    }
    let waited = kernel::arch::timer::uptime_ms() - start;
    assert!(waited >= writeback::DIRTY_EXPIRE_MS - 20, "written after {waited} ms: before the pages were old");
    assert_eq!(file.writes(), 3);
    assert!(writeback::nr_passes() > 0);
}

#[test_case]
fn ms_async_starts_the_write_back_without_waiting_and_the_thread_writes_the_file_at_once() {
    let (file, cache) = cache_over(pattern(8 * PAGE, 12));
    let new = pattern(8 * PAGE, 13);
    cache.write_at(0, &new).unwrap();
    let dirtied = kernel::arch::timer::uptime_ms();
    assert_eq!(cache.nr_dirty(), 8);
    writeback::start_async(&cache).expect("MS_ASYNC");
    if kernel::arch::smp::nr_online() == 1 {
        // Nothing was written in the call: the thread has not run yet (the kernel is
        // not preempted, and this task did not sleep). With more CPUs the thread
        // starts on another one at once and may have written already (issue #13:
        // 8 writes seen with --smp 2); the rest of the test holds on any count.
        assert_eq!(file.writes(), 0, "MS_ASYNC wrote before returning");
        assert_eq!(cache.nr_dirty(), 8);
    }
    // A page stops being dirty when the thread takes it for writing, and is written
    // after: with the thread on another CPU the test saw 3 of 8 written when the
    // last page stopped being dirty. Done is no page dirty and none under write-back.
    while cache.nr_dirty() > 0 || page_cache::nr_writeback() > 0 {
        assert!(kernel::arch::timer::uptime_ms() - dirtied < 5000, "still dirty after 5 s");
        kernel::proc::sched::yield_now();
    }
    let waited = kernel::arch::timer::uptime_ms() - dirtied;
    assert!(waited < writeback::DIRTY_EXPIRE_MS, "written after {waited} ms: by age, not at the request");
    assert_eq!(file.writes(), 8);
    assert_eq!(*file.data.lock(), new, "the file holds the writes");
    // MS_SYNC (write_back) still waits: dirty pages are clean when it returns.
    cache.write_at(PAGE as u64, &[7; 100]).unwrap();
    cache.write_back(0, u64::MAX).unwrap();
    assert_eq!((cache.nr_dirty(), file.writes()), (0, 9));
}

/// A big file that needs no RAM of its own: page `i` is filled with a value made
/// from `i`; writes are counted and checked.
struct SyntheticFile {
    nr_reads: AtomicU64,
    nr_writes: AtomicU64,
    nr_bad_writes: AtomicU64,
    /// Pages written back: their first byte is `!synthetic_byte` from then on.
    written: IrqMutex<alloc::collections::BTreeSet<u64>>,
}

fn synthetic_byte(index: u64) -> u8 {
    (index as u8).wrapping_mul(13) ^ 0x5a
}

impl PageIo for SyntheticFile {
    fn read_page(&self, index: u64, dst: &mut NewPage) -> Result<(), FsError> {
        self.nr_reads.fetch_add(1, Ordering::Relaxed);
        dst.write_bytes(0, &[synthetic_byte(index); PAGE]);
        if self.written.lock().contains(&index) {
            dst.write_bytes(0, &[!synthetic_byte(index)]);
        }
        Ok(())
    }

    fn write_page(&self, index: u64, src: &[u8], len: usize) -> Result<(), FsError> {
        self.nr_writes.fetch_add(1, Ordering::Relaxed);
        // A dirty page of this test holds !byte in its first word's first byte.
        if len != PAGE || src[0] != !synthetic_byte(index) {
            self.nr_bad_writes.fetch_add(1, Ordering::Relaxed);
        }
        self.written.lock().insert(index);
        Ok(())
    }
}

#[test_case]
fn the_cache_of_a_big_file_is_reclaimed_under_pressure_without_touching_swap() {
    // A file bigger than all of RAM.
    let file_pages = frame::buddyinfo().nr_managed_frames * 5 / 4;
    let io = Arc::new(SyntheticFile {
        nr_reads: AtomicU64::new(0),
        nr_writes: AtomicU64::new(0),
        nr_bad_writes: AtomicU64::new(0),
        written: IrqMutex::new_ranked(LockRank::BlockDevices, alloc::collections::BTreeSet::new()),
    });
    let cache = PageCache::new(io.clone(), file_pages * PAGE_SIZE);
    let swap_outs = vmstat::nr_events(SwapEvent::SwapOut);
    let (dropped, written) = (page_cache::nr_events(FileEvent::ReclaimedClean), page_cache::nr_events(FileEvent::ReclaimedWritten));

    // Read all of it; every 16th page is made dirty.
    let mut buf = vec![0u8; PAGE];
    for i in 0..file_pages {
        assert_eq!(cache.read_at(i * PAGE_SIZE, &mut buf), Ok(PAGE), "page {i}");
        assert!(buf.iter().all(|&b| b == synthetic_byte(i)), "page {i} read back wrong");
        if i % 16 == 0 {
            cache.write_at(i * PAGE_SIZE, &[!synthetic_byte(i)]).unwrap();
        }
    }
    assert!(cache.nr_cached() < file_pages as usize, "the whole file cannot fit: the cache was reclaimed as it grew");

    // An anonymous workload of 24 MiB: its faults need the cache's frames.
    let space = AddressSpace::new().expect("space");
    let nr_anon = 24u64 << 8;
    let start = space.lock().mmap(0, nr_anon * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for i in 0..nr_anon {
        fault::retry::fault_in(&space, start + i * PAGE_SIZE, USER_WRITE).expect("anonymous fault");
    }
    let nr_dropped = page_cache::nr_events(FileEvent::ReclaimedClean) - dropped
        + page_cache::nr_events(FileEvent::ReclaimedWritten) - written;
    assert!(nr_dropped > file_pages / 2, "only {nr_dropped} file pages were reclaimed");
    // Direct reclaim leaves dirty pages to kswapd and the writeback thread; let them run.
    let deadline = kernel::arch::timer::uptime_ms() + 5000;
    while io.nr_writes.load(Ordering::Relaxed) == 0 && kernel::arch::timer::uptime_ms() < deadline {
        kernel::proc::sched::yield_now();
    }
    assert!(io.nr_writes.load(Ordering::Relaxed) > 0, "no dirty file page was written to its file");
    assert_eq!(vmstat::nr_events(SwapEvent::SwapOut) - swap_outs, 0, "file pages never go to swap");
    assert_eq!(io.nr_bad_writes.load(Ordering::Relaxed), 0, "a written-back page had the wrong bytes");
    assert_consistent();
    drop(space);

    // What reclaim dropped is read again, right.
    let reads = io.nr_reads.load(Ordering::Relaxed);
    for i in (0..file_pages).step_by(7) {
        let mut first_two = [0u8; 2];
        cache.read_at(i * PAGE_SIZE, &mut first_two).unwrap();
        let want_first = if i % 16 == 0 { !synthetic_byte(i) } else { synthetic_byte(i) };
        assert_eq!(first_two, [want_first, synthetic_byte(i)], "page {i} (a dirty page keeps its write)");
    }
    assert!(io.nr_reads.load(Ordering::Relaxed) > reads, "dropped pages are read from the file again");
    page_cache::print_counters();
}

/// The byte at `offset` of the ext2 test file.
fn file_byte(offset: u64) -> u8 {
    ((offset / 4093) as u8).wrapping_mul(7) ^ (offset as u8)
}

/// The chunk the ext2 tests write and read in: as a `write(2)` of 64 KiB would.
const PATTERN_CHUNK: usize = 64 << 10;

/// Writes `nr_bytes` of the test pattern (each byte `file_byte ^ xor`) into `file`
/// from offset 0, a chunk at a time, making heap room first as a system call does.
fn write_pattern(file: &dyn Inode, nr_bytes: u64, xor: u8) {
    let mut chunk = vec![0u8; PATTERN_CHUNK];
    let mut offset = 0;
    while offset < nr_bytes {
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = file_byte(offset + i as u64) ^ xor;
        }
        kernel::mm::headroom::ensure_heap_headroom().expect("heap headroom");
        assert_eq!(file.write_at(offset, &chunk), Ok(PATTERN_CHUNK), "write at {offset}");
        offset += PATTERN_CHUNK as u64;
    }
}

/// Reads `nr_bytes` of `file` back and checks each byte is `file_byte ^ xor`.
fn check_pattern(file: &dyn Inode, nr_bytes: u64, xor: u8) {
    let mut chunk = vec![0u8; PATTERN_CHUNK];
    let mut offset = 0;
    while offset < nr_bytes {
        kernel::mm::headroom::ensure_heap_headroom().expect("heap headroom");
        assert_eq!(file.read_at(offset, &mut chunk), Ok(PATTERN_CHUNK));
        for (i, &b) in chunk.iter().enumerate() {
            assert_eq!(b, file_byte(offset + i as u64) ^ xor, "byte {} read back wrong", offset + i as u64);
        }
        offset += PATTERN_CHUNK as u64;
    }
}

#[test_case]
fn an_ext2_file_written_under_memory_pressure_reads_back_right() {
    const FILE_BYTES: u64 = 16 << 20;
    if kernel::fs::root_kind() != kernel::fs::RootKind::Ext2 {
        panic!("this test needs ext2 at / (the runner's root disk)");
    }
    let root = kernel::fs::root();
    let file = root.create("pressure.dat", 0o644).expect("create");
    let cache = file.page_cache().expect("an ext2 file has a page cache");
    let (dropped, written) = (page_cache::nr_events(FileEvent::ReclaimedClean), page_cache::nr_events(FileEvent::ReclaimedWritten));
    let swap_outs = vmstat::nr_events(SwapEvent::SwapOut);

    // An anonymous workload that leaves 6 MiB free, then the 16 MiB file: its pages
    // must go to the disk (by reclaim or writeback) and leave memory to make room.
    // (This found write-back through ext2 taking the kernel heap's last frames: the
    // crate's block buffers are heap; write-back now makes sure of heap headroom
    // before each page, as a system call does at its entry.)
    let space = AddressSpace::new().expect("space");
    let nr_anon = frame::nr_free_frames().saturating_sub(6 << 8);
    let start = space.lock().mmap(0, nr_anon * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for i in 0..nr_anon {
        fault::retry::fault_in(&space, start + i * PAGE_SIZE, USER_WRITE).expect("anonymous fault");
    }
    write_pattern(&*file, FILE_BYTES, 0);
    assert_eq!(file.stat().size, FILE_BYTES);
    // Touch the anonymous memory again, so that it competes with the file.
    for i in (0..nr_anon).step_by(3) {
        fault::retry::fault_in(&space, start + i * PAGE_SIZE, USER_WRITE).expect("anonymous fault");
    }
    let nr_reclaimed = page_cache::nr_events(FileEvent::ReclaimedClean) - dropped
        + page_cache::nr_events(FileEvent::ReclaimedWritten) - written;
    let nr_swapped = vmstat::nr_events(SwapEvent::SwapOut) - swap_outs;
    kernel::println!(
        "ext2 file under pressure: {} of {} pages cached, {nr_reclaimed} reclaimed, {nr_swapped} anonymous pages swapped out",
        cache.nr_cached(),
        FILE_BYTES / PAGE_SIZE
    );
    // The pressure was real: reclaim ran during the writes (the clock usually
    // prefers the older anonymous pages to the file just written).
    assert!(nr_reclaimed + nr_swapped > 0, "no memory pressure: nothing was reclaimed");

    check_pattern(&*file, FILE_BYTES, 0);
    kernel::fs::sync_inode(&*file).expect("fsync");
    assert_eq!(cache.nr_dirty(), 0);
    drop((cache, file));
    root.unlink("pressure.dat").expect("unlink");
    drop(space);
    assert_consistent();
}

#[test_case]
fn an_ext2_inode_dropped_under_a_spinlock_is_released_later() {
    // The last handle of a mapped file's inode can go with its VMA, under the
    // address space's lock; releasing it takes the file system's sleeping locks
    // (an unlinked file's cache is emptied and its blocks freed). Dropped where it
    // cannot sleep, the handle waits on `ext2fs::DEFERRED` (rank `DeferredInodes`)
    // until `release_deferred` runs where sleeping is allowed, as Linux's delayed
    // fput. Before that, this drop panicked: a sleeping lock taken under a spinlock.
    if kernel::fs::root_kind() != kernel::fs::RootKind::Ext2 {
        panic!("this test needs ext2 at / (the runner's root disk)");
    }
    let root = kernel::fs::root();
    let file = root.create("deferred.dat", 0o644).expect("create");
    let cache = file.page_cache().expect("an ext2 file has a page cache");
    assert_eq!(file.write_at(0, &[0x5a; 4 * PAGE]), Ok(4 * PAGE));
    root.unlink("deferred.dat").expect("unlink");
    assert_eq!(file.stat().nlink, 0, "unlinked, still open");
    kernel::fs::ext2fs::release_deferred(); // nothing waits from earlier tests
    let lock = IrqMutex::new_ranked(LockRank::BlockDevices, ());
    {
        let _held = lock.lock();
        drop(file); // the last handle, under a spinlock: deferred, no sleep
    }
    assert_eq!(cache.nr_cached(), 4, "released at once, under a spinlock");
    kernel::fs::ext2fs::release_deferred();
    assert_eq!(cache.nr_cached(), 0, "release_deferred released the unlinked file's pages");
    drop(cache);
    assert_consistent();
}

/// A file that records each `write_pages` call (first page, count) and its
/// `write_out`s and `flush`es; its device takes [`RunFile::PER_REQUEST`] pages a request.
struct RunFile {
    runs: IrqMutex<Vec<(u64, usize)>>,
    nr_write_outs: AtomicU64,
    nr_flushes: AtomicU64,
}

impl RunFile {
    const PER_REQUEST: usize = 100;
}

impl PageIo for RunFile {
    fn read_page(&self, _index: u64, _dst: &mut NewPage) -> Result<(), FsError> {
        Ok(())
    }

    fn write_page(&self, index: u64, _src: &[u8], _len: usize) -> Result<(), FsError> {
        self.runs.lock().push((index, 1));
        Ok(())
    }

    fn write_pages(&self, first: u64, srcs: &[&frame::PageBytes], _size: u64) -> Result<(), (usize, FsError)> {
        self.runs.lock().push((first, srcs.len()));
        Ok(())
    }

    fn pages_per_request(&self) -> usize {
        Self::PER_REQUEST
    }

    fn write_out(&self) -> Result<(), FsError> {
        self.nr_write_outs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn flush(&self) -> Result<(), FsError> {
        self.nr_flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

#[test_case]
fn write_back_hands_over_whole_requests_across_batches_and_flushes_only_when_asked() {
    // 1100 dirty pages: more than one write-back batch (1024), under the background limit.
    let nr_pages = 1100u64;
    let io = Arc::new(RunFile {
        runs: IrqMutex::new_ranked(LockRank::BlockDevices, Vec::new()),
        nr_write_outs: AtomicU64::new(0),
        nr_flushes: AtomicU64::new(0),
    });
    let cache = PageCache::new(io.clone(), nr_pages * PAGE_SIZE);
    let page = vec![0x5au8; PAGE];
    for i in 0..nr_pages {
        assert_eq!(cache.write_at(i * PAGE_SIZE, &page), Ok(PAGE));
    }
    cache.write_back(0, u64::MAX).unwrap();
    let runs = io.runs.lock().clone();
    // The first batch's run ends 24 pages short of a whole request: those 24 go
    // with the next batch, so every call but the last is whole requests.
    assert_eq!(runs, vec![(0, 1000), (1000, 100)], "write_pages calls (first page, pages)");
    assert_eq!(io.nr_write_outs.load(Ordering::Relaxed), 1, "metadata written out once, at the end");
    assert_eq!(io.nr_flushes.load(Ordering::Relaxed), 0, "write-back alone does not flush");
    assert_eq!(cache.nr_dirty(), 0);
    // msync(MS_SYNC)'s path: written (nothing dirty now), then one flush.
    cache.sync_range(0, u64::MAX).unwrap();
    assert_eq!(io.nr_flushes.load(Ordering::Relaxed), 1);
    assert_eq!(io.runs.lock().len(), 2, "nothing left to write");
    drop(cache);
}

#[test_case]
fn an_ext2_write_back_keeps_several_disk_requests_in_flight_and_the_disk_has_the_bytes() {
    const FILE_BYTES: u64 = 4 << 20; // 1024 pages: ext2 puts them in runs of up to 254 blocks
    if kernel::fs::root_kind() != kernel::fs::RootKind::Ext2 {
        panic!("this test needs ext2 at / (the runner's root disk)");
    }
    let disk = kernel::drivers::virtio_blk::driver_of("root").expect("the runner's root disk");
    let uses_indirect = disk.lock().uses_indirect();
    assert!(uses_indirect, "QEMU's virtio-blk offers indirect descriptors");
    let root = kernel::fs::root();
    let file = root.create("inflight.dat", 0o644).expect("create");
    let cache = file.page_cache().expect("an ext2 file has a page cache");
    write_pattern(&*file, FILE_BYTES, 0x5a);
    let before = {
        let mut blk = disk.lock();
        blk.reset_peak_in_flight();
        blk.stats()
    };
    kernel::fs::sync_inode(&*file).expect("fsync");
    let after = disk.lock().stats();
    assert_eq!(cache.nr_dirty(), 0);
    kernel::println!(
        "write-back of {} MiB: {} write requests, peak {} in flight, {} submitted behind another",
        FILE_BYTES >> 20,
        after.nr_writes - before.nr_writes,
        after.peak_in_flight,
        after.nr_overlapped - before.nr_overlapped
    );
    assert!(after.peak_in_flight >= 2, "the file's runs were sent one at a time: peak {}", after.peak_in_flight);
    assert!(after.nr_overlapped > before.nr_overlapped);
    // From the disk again: the clean pages dropped, the reads come from the device.
    let reads_before = disk.lock().stats().nr_reads;
    kernel::fs::drop_caches::write("1").expect("drop_caches");
    check_pattern(&*file, FILE_BYTES, 0x5a);
    assert!(disk.lock().stats().nr_reads > reads_before, "the read-back came from the disk");
    drop((cache, file));
    root.unlink("inflight.dat").expect("unlink");
    assert_consistent();
}
