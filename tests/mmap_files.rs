//! File pages mapped from the page cache (issue #12): `Backing::File` VMAs, the
//! file rmap, MAP_SHARED with dirtying on the first write, msync, truncate.
//!
//! Kernel-level cases build an address space by hand, map a file whose `PageIo`
//! lives in RAM (it counts reads and writes) and fault its pages with
//! `fault::retry::fault_in`, as a process's accesses would; then they look at the
//! PTEs, the frames and the counters. User-level cases run `mmapshared` (the
//! Pintos and xv6 cases with MAP_SHARED) and its `clean` / `dirty` modes against
//! a file on the ext2 root, counting the pages written back. The runner reads
//! `/mmapshared/exit.bin` back on the host with debugfs after the run (what a
//! child wrote through a shared mapping before it exited), and `e2fsck -fn` finds
//! the disk clean.
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
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::fs::{self, FsError, path};
use kernel::mm::addr_space::{AddressSpace, Backing, MapRequest, VmProt};
use kernel::mm::fault::{self, FaultError, FaultOutcome};
use kernel::mm::frame::{self, NewPage};
use kernel::mm::page_cache::{self, FileEvent, PageCache, PageIo};
use kernel::mm::rmap::SpaceRef;
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::{Frame, PAGE_SIZE, VirtAddr, check, file_rmap, filemap};
use kernel::proc::{self, task::WaitStatus};
use kernel::sync::{IrqMutex, LockRank};
use kernel::testing::{USER_READ, USER_WRITE, run_once};

kernel::runner_args!(b"--memory 64M --timeout 300 --root-expect /mmapshared/exit.bin=pattern:12388");

kernel::test_kernel!();

#[path = "common/proc_files.rs"]
#[allow(dead_code)] // `write` is not used here
mod proc_files;

const PAGE: usize = PAGE_SIZE as usize;

/// A file that needs no RAM of its own: page `i` is `synthetic_byte(i)` repeated,
/// except that a page written back keeps its first byte; reads and writes counted.
struct SyntheticFile {
    nr_reads: AtomicU64,
    nr_writes: AtomicU64,
    /// Page index -> the first byte written back there.
    written: IrqMutex<alloc::collections::BTreeMap<u64, u8>>,
}

fn synthetic_byte(index: u64) -> u8 {
    (index as u8).wrapping_mul(13) ^ 0x5a
}

impl SyntheticFile {
    fn new() -> Arc<SyntheticFile> {
        Arc::new(SyntheticFile {
            nr_reads: AtomicU64::new(0),
            nr_writes: AtomicU64::new(0),
            written: IrqMutex::new_ranked(LockRank::BlockDevices, alloc::collections::BTreeMap::new()),
        })
    }

    fn writes(&self) -> u64 {
        self.nr_writes.load(Ordering::Relaxed)
    }
}

impl PageIo for SyntheticFile {
    fn read_page(&self, index: u64, dst: &mut NewPage) -> Result<(), FsError> {
        self.nr_reads.fetch_add(1, Ordering::Relaxed);
        dst.write_bytes(0, &[synthetic_byte(index); PAGE]);
        if let Some(&first) = self.written.lock().get(&index) {
            dst.write_bytes(0, &[first]);
        }
        Ok(())
    }

    fn write_page(&self, index: u64, src: &[u8], _len: usize) -> Result<(), FsError> {
        self.nr_writes.fetch_add(1, Ordering::Relaxed);
        self.written.lock().insert(index, src[0]);
        Ok(())
    }
}

/// A space mapping `nr_pages` of `cache` at file page 0, shared or private, read-write.
fn map_file(cache: &Arc<PageCache>, nr_pages: u64, is_shared: bool) -> (SpaceRef, VirtAddr) {
    let space = AddressSpace::new().expect("space");
    let id = space.lock().id();
    file_rmap::add(cache, Arc::new(()), id, &space);
    let request = MapRequest { is_shared, ..MapRequest::default() };
    let backing = Backing::File { cache: cache.id(), offset: 0 };
    let start = space.lock().mmap_backed(0, nr_pages * PAGE_SIZE, VmProt::READ_WRITE, request, backing).expect("mmap");
    (space, start)
}

fn frame_at(space: &SpaceRef, addr: VirtAddr) -> Option<(Frame, bool)> {
    let pte = space.lock().pte(addr)?;
    pte.is_present().then(|| (pte.frame(), pte.flags().contains(kernel::mm::paging::PteFlags::WRITABLE)))
}

fn first_byte(frame: Frame) -> u8 {
    let mut b = [0u8; 1];
    // SAFETY: the frame is mapped by a PTE of a space this test holds; nothing writes it now.
    unsafe { frame::read_bytes(frame, 0, &mut b) };
    b[0]
}

/// Stores `value` at the first byte of the page at `addr`, as a user write would:
/// the write fault first, then the store into the frame the PTE maps.
fn store(space: &SpaceRef, addr: VirtAddr, value: u8) -> FaultOutcome {
    let outcome = fault::retry::fault_in(space, addr, USER_WRITE).expect("write fault");
    let (frame, is_writable) = frame_at(space, addr).expect("mapped after the fault");
    assert!(is_writable, "a write fault left the PTE read-only");
    // SAFETY: the PTE maps the frame writable for this space: the store a user
    // write would make (no one else writes it meanwhile).
    unsafe { frame::write_bytes(frame, 0, &[value]) };
    // The CPU sets the Dirty bit on a store through the PTE; ours went through the direct map.
    let mut locked = space.lock();
    let page = kernel::mm::Page::containing_address(addr);
    let mut pte = locked.pte(addr).unwrap();
    pte.set_flags(pte.flags() | kernel::mm::paging::PteFlags::DIRTY);
    locked.replace_pte(page, pte);
    outcome
}

fn assert_consistent() {
    check::check_consistency().unwrap_or_else(|e| panic!("inconsistent: {e}"));
}

#[test_case]
fn a_read_fault_maps_the_cache_page_and_a_private_write_copies_it() {
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 4 * PAGE_SIZE);
    let (space, start) = map_file(&cache, 4, false);
    filemap::set_fault_around(false); // page 1 stays unmapped for the last case
    // xv6's "lazy access": mmap maps nothing and reads nothing until a page is touched.
    assert!((0..4).all(|i| frame_at(&space, start + i * PAGE_SIZE).is_none()), "mmap mapped a page up front");
    assert_eq!(cache.nr_cached(), 0, "mmap read the file up front");
    assert_eq!(fault::retry::fault_in(&space, start, USER_READ), Ok(FaultOutcome::FilePage));
    // (The audit counts the cache's and the PTEs' references: no handle is kept.)
    let cached = cache.find_page(0).expect("the fault read the page into the cache").frame();
    let (frame, is_writable) = frame_at(&space, start).unwrap();
    assert_eq!(frame, cached, "the PTE maps the page-cache frame itself");
    assert!(!is_writable, "a private file page is mapped read-only");
    assert_eq!(frame::with_desc(frame, |d| d.map_count()), 1);
    assert_consistent();
    // A write copies (COW from the page cache); the cache page keeps the file's bytes.
    assert_eq!(store(&space, start, 0xab), FaultOutcome::CowCopy);
    let (copy, _) = frame_at(&space, start).unwrap();
    assert_ne!(copy, cached, "the write went to a private copy");
    assert_eq!(first_byte(copy), 0xab);
    assert_eq!(first_byte(cached), synthetic_byte(0), "the page cache is untouched");
    assert_eq!(frame::with_desc(cached, |d| d.map_count()), 0, "the cache page is unmapped");
    // A first touch that writes copies at once, without mapping the cache page.
    assert_eq!(store(&space, start + PAGE_SIZE, 0xcd), FaultOutcome::FileCopy);
    filemap::set_fault_around(true);
    assert_consistent();
    drop(space);
    cache.write_back(0, u64::MAX).unwrap();
    assert_eq!(io.writes(), 0, "a private mapping is never written back");
    file_rmap::release_unmapped();
}

#[test_case]
fn a_file_page_read_at_fault_time_is_a_major_fault_in_vmstat_and_in_the_process() {
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 2 * PAGE_SIZE);
    let (space, start) = map_file(&cache, 2, false);
    filemap::set_fault_around(false); // one page per fault
    let pgmajfault = || proc_files::field(&proc_files::read("/proc/vmstat").expect("/proc/vmstat"), "pgmajfault");
    let faults = || {
        let locked = space.lock();
        (locked.stats.minor_faults, locked.stats.major_faults)
    };
    let (machine_before, (minor_before, major_before)) = (pgmajfault(), faults());
    // Page 0 is not cached: the fault reads it from the file (Linux: VM_FAULT_MAJOR).
    assert_eq!(fault::retry::fault_in(&space, start, USER_READ), Ok(FaultOutcome::FilePage));
    assert!(io.nr_reads.load(Ordering::Relaxed) >= 1, "the fault read the page");
    assert_eq!(pgmajfault() - machine_before, 1, "/proc/vmstat pgmajfault counts the file page read at fault time");
    assert_eq!(faults(), (minor_before, major_before + 1), "the process counts a major fault, not a minor one");
    // Page 1 is cached before its fault (the first fault may have read it too): a
    // minor fault, counted nowhere as major.
    cache.read_at(PAGE_SIZE, &mut [0u8; 1]).unwrap();
    assert_eq!(fault::retry::fault_in(&space, start + PAGE_SIZE, USER_READ), Ok(FaultOutcome::FilePage));
    assert_eq!(pgmajfault() - machine_before, 1, "a page-cache hit is a minor fault");
    assert_eq!(faults(), (minor_before + 1, major_before + 1));
    filemap::set_fault_around(true);
    assert_consistent();
    drop(space);
    file_rmap::release_unmapped();
}

#[test_case]
fn fault_around_maps_the_cached_neighbours_and_reads_nothing() {
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 40 * PAGE_SIZE);
    let mut buf = [0u8; 1];
    for i in 0..40 {
        cache.read_at(i * PAGE_SIZE, &mut buf).unwrap(); // all cached
    }
    let (space, start) = map_file(&cache, 40, false);
    let reads = io.nr_reads.load(Ordering::Relaxed);
    let around = filemap::nr_fault_around();
    // A fault in the middle of the second 64 KiB window.
    let window = start + 16 * PAGE_SIZE;
    assert_eq!(fault::retry::fault_in(&space, window + 5 * PAGE_SIZE, USER_READ), Ok(FaultOutcome::FilePage));
    assert_eq!(filemap::nr_fault_around() - around, 15, "the other 15 pages of the window");
    let mapped = (0..40).filter(|&i| frame_at(&space, start + i * PAGE_SIZE).is_some()).count();
    assert_eq!(mapped, 16, "exactly one window is mapped");
    assert_eq!(io.nr_reads.load(Ordering::Relaxed), reads, "fault-around does no I/O");
    assert_consistent();
    drop(space);
    file_rmap::release_unmapped();
}

#[test_case]
fn a_shared_page_is_dirtied_by_its_first_write_and_write_protected_by_writeback() {
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 4 * PAGE_SIZE);
    let (space, start) = map_file(&cache, 4, true);
    // A read maps read-only even in a writable shared mapping: the page stays clean.
    for i in 0..4 {
        fault::retry::fault_in(&space, start + i * PAGE_SIZE, USER_READ).unwrap();
    }
    assert!(frame_at(&space, start).is_some_and(|(_, w)| !w), "read-only after a read");
    assert_eq!(cache.nr_dirty(), 0);
    // The first write: writable, dirty (Linux's page_mkwrite).
    assert_eq!(store(&space, start + PAGE_SIZE, 0x77), FaultOutcome::SharedWrite);
    assert_eq!(cache.dirty_indices(), [1]);
    assert_consistent();
    cache.write_back(0, u64::MAX).unwrap();
    assert_eq!(io.writes(), 1, "only the written page goes to the file (mmap-clean)");
    assert_eq!(io.written.lock().get(&1), Some(&0x77));
    assert!(frame_at(&space, start + PAGE_SIZE).is_some_and(|(_, w)| !w), "writeback write-protected the PTE");
    // The next write faults again and dirties the page again.
    assert_eq!(store(&space, start + PAGE_SIZE, 0x78), FaultOutcome::SharedWrite);
    assert_eq!(cache.dirty_indices(), [1]);
    cache.write_back(0, u64::MAX).unwrap();
    assert_eq!(io.writes(), 2);
    assert_eq!(io.written.lock().get(&1), Some(&0x78));
    // mprotect never hands out write permission to a clean shared file page: the
    // write must fault, or the page would change without becoming dirty.
    cache.write_back(0, u64::MAX).unwrap();
    space.lock().mprotect(start.as_u64(), 4 * PAGE_SIZE, VmProt::READ).unwrap();
    space.lock().mprotect(start.as_u64(), 4 * PAGE_SIZE, VmProt::READ_WRITE).unwrap();
    assert!(frame_at(&space, start + 3 * PAGE_SIZE).is_some_and(|(_, w)| !w), "mprotect made a clean page writable");
    assert_eq!(store(&space, start + 3 * PAGE_SIZE, 0x7a), FaultOutcome::SharedWrite);
    assert_eq!(cache.dirty_indices(), [3]);
    cache.write_back(0, u64::MAX).unwrap();
    // A write then munmap: the PTE's dirtiness reaches the page (left to writeback).
    assert_eq!(store(&space, start + 2 * PAGE_SIZE, 0x79), FaultOutcome::SharedWrite);
    space.lock().munmap(start.as_u64(), 4 * PAGE_SIZE).unwrap();
    file_rmap::prune_space(&space);
    assert_eq!(cache.dirty_indices(), [2]);
    assert_eq!(file_rmap::cache_of(cache.id()).map(|c| c.id()), None, "munmap took the space out of the file rmap");
    file_rmap::release_unmapped();
    assert_consistent();
}

#[test_case]
fn fork_shares_a_shared_file_mapping_and_the_child_is_in_the_file_rmap() {
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 2 * PAGE_SIZE);
    let (parent, start) = map_file(&cache, 2, true);
    store(&parent, start, 0x42);
    let child = fault::retry::fork_retrying(&parent).expect("fork");
    assert_eq!(frame_at(&child, start).map(|(f, _)| f), frame_at(&parent, start).map(|(f, _)| f), "one page for both");
    assert_consistent(); // the child's PTE is found through the file rmap
    // Reclaim's unmap reaches both processes through the file rmap.
    let (frame, _) = frame_at(&parent, start).unwrap();
    assert!(file_rmap::unmap_page(cache.id(), 0, frame));
    assert!(frame_at(&parent, start).is_none() && frame_at(&child, start).is_none());
    assert_eq!(cache.dirty_indices(), [0], "the dirty PTEs made the page dirty");
    assert_consistent();
    drop(child);
    drop(parent);
    file_rmap::release_unmapped();
}

#[test_case]
fn truncate_unmaps_the_pages_past_the_end_and_a_fault_there_is_a_bus_error() {
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 4 * PAGE_SIZE);
    let (space, start) = map_file(&cache, 4, true);
    for i in 0..4 {
        fault::retry::fault_in(&space, start + i * PAGE_SIZE, USER_READ).unwrap();
    }
    cache.truncate(PAGE_SIZE + 1).unwrap();
    assert!(frame_at(&space, start + PAGE_SIZE).is_some(), "the page holding the new end stays");
    assert!(frame_at(&space, start + 2 * PAGE_SIZE).is_none(), "pages past the end are unmapped");
    assert!(matches!(fault::retry::fault_in(&space, start + 3 * PAGE_SIZE, USER_READ), Err(FaultError::BeyondEof { .. })));
    assert_consistent();
    drop(space);
    file_rmap::release_unmapped();
}

#[test_case]
fn a_mapped_file_bigger_than_ram_is_reclaimed_through_the_file_rmap_without_swap() {
    let file_pages = frame::buddyinfo().nr_managed_frames * 5 / 4;
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), file_pages * PAGE_SIZE);
    let (space, start) = map_file(&cache, file_pages, true);
    let swap_outs = vmstat::nr_events(SwapEvent::SwapOut);
    let unmapped = page_cache::nr_events(FileEvent::UnmappedForReclaim);
    // Touch all of it; every 32nd page is written through the mapping.
    filemap::set_fault_around(false); // one fault per page: every page is mapped by its own fault
    for i in 0..file_pages {
        let addr = start + i * PAGE_SIZE;
        if i % 32 == 0 {
            store(&space, addr, !synthetic_byte(i));
        } else {
            fault::retry::fault_in(&space, addr, USER_READ).unwrap_or_else(|e| panic!("page {i}: {e:?}"));
        }
    }
    filemap::set_fault_around(true);
    assert!(cache.nr_cached() < file_pages as usize, "the whole file cannot fit");
    // An anonymous workload of 24 MiB on top.
    let anon = AddressSpace::new().expect("space");
    let nr_anon = 24u64 << 8;
    let a = anon.lock().mmap(0, nr_anon * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    for i in 0..nr_anon {
        fault::retry::fault_in(&anon, a + i * PAGE_SIZE, USER_WRITE).expect("anonymous fault");
    }
    let nr_unmapped = page_cache::nr_events(FileEvent::UnmappedForReclaim) - unmapped;
    assert!(nr_unmapped > file_pages / 2, "only {nr_unmapped} mapped file pages were unmapped by reclaim");
    assert_eq!(vmstat::nr_events(SwapEvent::SwapOut) - swap_outs, 0, "file pages never go to swap");
    drop(anon); // first: the audit's tables need heap, which needs free frames
    assert_consistent();
    // Every page reads right through the mapping again; written ones kept their byte.
    for i in (0..file_pages).step_by(5) {
        let addr = start + i * PAGE_SIZE;
        fault::retry::fault_in(&space, addr, USER_READ).unwrap();
        let want = if i % 32 == 0 { !synthetic_byte(i) } else { synthetic_byte(i) };
        assert_eq!(first_byte(frame_at(&space, addr).unwrap().0), want, "page {i}");
    }
    // Every written page reaches the file (reclaim unmapped some of them: their
    // PTEs' Dirty bits made their pages dirty, so none was dropped unwritten).
    cache.write_back(0, u64::MAX).unwrap();
    let written = io.written.lock().clone();
    for i in (0..file_pages).step_by(32) {
        assert_eq!(written.get(&i), Some(&!synthetic_byte(i)), "written page {i} in the file");
    }
    assert_consistent();
    drop(space);
    file_rmap::release_unmapped();
    page_cache::print_counters();
}

#[test_case]
fn mmapshared_the_pintos_and_xv6_shared_cases_pass() {
    assert_eq!(run_once("mmapshared", ""), WaitStatus::Exited(0), "mmapshared failed");
    assert_eq!(file_rmap::nr_mapped_files(), 0, "every mapped file was released");
}

#[test_case]
fn mmap_clean_pages_are_not_written_and_a_dirtied_page_is_written_alone() {
    let root = fs::root();
    let file = root.create("clean.bin", 0o644).expect("create");
    let bytes: alloc::vec::Vec<u8> = (0..8 * PAGE).map(|i| (i % 253) as u8).collect();
    assert_eq!(file.write_at(0, &bytes), Ok(bytes.len()));
    fs::sync_all().unwrap();
    let written = page_cache::nr_events(FileEvent::PageWritten);
    assert_eq!(run_once("mmapshared", "clean /clean.bin"), WaitStatus::Exited(0));
    fs::sync_all().unwrap();
    assert_eq!(page_cache::nr_events(FileEvent::PageWritten) - written, 0, "mmap-clean: a read page was written");
    assert_eq!(run_once("mmapshared", "dirty /clean.bin 3"), WaitStatus::Exited(0));
    fs::sync_all().unwrap();
    assert_eq!(page_cache::nr_events(FileEvent::PageWritten) - written, 1, "exactly the written page goes out");
    let mut back = [0u8; 2];
    let again = path::resolve(&root, "/clean.bin").unwrap();
    again.read_at(3 * PAGE_SIZE, &mut back).unwrap();
    assert_eq!(back, [bytes[3 * PAGE], !bytes[3 * PAGE + 1]]);
    root.unlink("clean.bin").expect("unlink");
}

#[test_case]
fn n_processes_running_one_program_share_its_text_frames() {
    const N: usize = 4;
    const USER_EXEC: u64 = (1 << 2) | (1 << 4);
    let inode = path::resolve(&fs::root(), "/bin/hello").expect("/bin/hello");
    let cache = inode.page_cache().expect("ext2 files have a page cache");
    // What execve reads: the headers (one page), not the file.
    let size = inode.stat().size;
    let mut head = alloc::vec![0u8; size.min(proc::execve::EXEC_HEAD_BYTES) as usize];
    assert_eq!(inode.read_at(0, &mut head), Ok(head.len()));
    let exe = mm_core::elf::parse_headers(&head, size).expect("the headers");
    assert!(proc::exec::can_map(&exe), "hello's segments map the page cache");
    let mut read_at = |offset, buf: &mut [u8]| {
        assert_eq!(inode.read_at(offset, buf), Ok(buf.len()));
        Ok(())
    };
    let free_before = frame::nr_free_frames();
    let mut spaces = alloc::vec::Vec::new();
    for _ in 0..N {
        let (space, _) =
            proc::exec::load_mapped(&exe, &mut read_at, &cache, Arc::new(inode.clone()), &["hello"], &[]).expect("load");
        spaces.push(space);
    }
    // Every process fetches every page of its text, as running it would.
    let text: alloc::vec::Vec<(VirtAddr, VirtAddr)> = spaces[0]
        .lock()
        .vmas()
        .iter()
        .filter(|v| v.prot.contains(VmProt::EXEC) && matches!(v.backing, Backing::File { .. }))
        .map(|v| (v.start, v.end))
        .collect();
    assert!(!text.is_empty(), "the text is a file mapping");
    let mut nr_text_pages = 0;
    for &(start, end) in &text {
        let mut addr = start;
        while addr < end {
            let mut frames = alloc::vec::Vec::new();
            for space in &spaces {
                fault::retry::fault_in(space, addr, USER_EXEC).expect("text fault");
                frames.push(frame_at(space, addr).expect("mapped").0);
            }
            assert!(frames.iter().all(|&f| f == frames[0]), "{addr:?}: the {N} processes map one frame");
            assert!(page_cache::is_file_frame(frames[0]), "{addr:?}: a page-cache frame");
            assert_eq!(frame::with_desc(frames[0], |d| d.map_count()), N as u32);
            nr_text_pages += 1;
            addr = addr + PAGE_SIZE;
        }
    }
    assert_consistent();
    // N processes cost the text once (in the page cache), not N times.
    let used = free_before - frame::nr_free_frames();
    let per_process = (used - nr_text_pages) / N as u64;
    kernel::println!("{N} processes of /bin/hello: {nr_text_pages} text pages shared, {used} frames in all ({per_process} per process besides the text)");
    assert!(used < nr_text_pages * 2 + N as u64 * 16, "{used} frames for {N} copies of {nr_text_pages} text pages");
    drop(spaces);
    file_rmap::release_unmapped();
    assert_consistent();
}

#[test_case]
fn explain_names_a_disk_read_a_page_cache_hit_and_the_copy_of_a_private_write() {
    // (Page 0's fault reads ahead: the whole 4-page file comes into the cache.)
    use abi::Explain;
    use abi::explain::{backing, next_fault};
    use kernel::mm::explain::explain;
    let io = SyntheticFile::new();
    let cache = PageCache::new(io.clone(), 4 * PAGE_SIZE);
    let (space, start) = map_file(&cache, 4, false);
    filemap::set_fault_around(false);
    // Page 0: not in the cache, so the next read fault reads it from the file.
    let e = explain(&space.lock(), start);
    assert_eq!((e.backing, e.backing_id, e.backing_offset), (backing::FILE, u64::from(cache.id()), 0));
    assert_eq!(e.on_access[Explain::READ], next_fault::FILE_READ, "not cached: {e:?}");
    let reads = io.nr_reads.load(Ordering::Relaxed);
    assert_eq!(fault::retry::fault_in(&space, start, USER_READ), Ok(FaultOutcome::FilePage));
    assert!(io.nr_reads.load(Ordering::Relaxed) > reads, "the fault read the page from the file");
    // Page 1: readahead brought it in with page 0, so its fault is a page-cache hit.
    assert!(cache.find_page(1).is_some(), "readahead read page 1");
    let e = explain(&space.lock(), start + PAGE_SIZE);
    assert_eq!(e.on_access[Explain::READ], next_fault::FILE_CACHED, "cached: {e:?}");
    let reads = io.nr_reads.load(Ordering::Relaxed);
    assert_eq!(fault::retry::fault_in(&space, start + PAGE_SIZE, USER_READ), Ok(FaultOutcome::FilePage));
    assert_eq!(io.nr_reads.load(Ordering::Relaxed), reads, "a page-cache hit reads nothing");
    // Page 0 is now mapped read-only from the cache: a read needs no fault, a write
    // to the private mapping copies it, and the handler does just that.
    let e = explain(&space.lock(), start);
    assert_eq!(e.frame, cache.find_page(0).expect("cached").frame().pfn(), "the PTE maps the cache's frame");
    assert_eq!(e.on_access[Explain::READ], next_fault::NO_FAULT);
    assert_eq!(e.on_access[Explain::WRITE], next_fault::COW_COPY, "{e:?}");
    assert_eq!(store(&space, start, 0x77), FaultOutcome::CowCopy);
    filemap::set_fault_around(true);
    assert_consistent();
    drop(space);
    file_rmap::release_unmapped();
}
