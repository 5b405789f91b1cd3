//! The teaching tools' kernel side: `explain`, the fault trace, `/proc/kpageflags`.
//!
//! `explain`: for each kind of page a student meets (untouched anonymous, COW-shared
//! after fork, swapped out, a file's page on the disk or in the page cache, a huge
//! page, a kernel address, an unmapped address), the answer names the action the
//! fault handler then really takes. Each test asks `mm::explain::explain`, checks
//! the walk, the VMA and the frame it reports, then makes the fault and checks that
//! the handler did what `explain` said. The trace: a program's faults are recorded
//! under its pid while tracing is on, none while off. kpageflags (what `memmap`
//! draws): the free frames it shows are the buddy allocator's, and a written
//! anonymous page, a page table and the zero page carry their Linux bits.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use abi::explain::{self, next_fault};
use abi::Explain;
use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
use kernel::mm::fault::{self, FaultError, FaultOutcome};
use kernel::mm::rmap::SpaceRef;
use kernel::mm::swap::{self, Evicted};
use kernel::mm::thp::{self, ThpMode};
use kernel::mm::{Frame, PAGE_SIZE, VirtAddr, cow, explain::explain};
use kernel::testing::{USER_READ, USER_WRITE};

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;

kernel::runner_args!(b"--timeout 120");

kernel::test_kernel!();

fn explain_at(space: &SpaceRef, addr: VirtAddr) -> Explain {
    explain(&space.lock(), addr)
}

fn frame_at(space: &SpaceRef, addr: VirtAddr) -> u64 {
    let pte = space.lock().pte(addr).expect("a page table");
    assert!(pte.is_present(), "{addr:?} is not present");
    pte.frame().pfn()
}

/// The (read, write) answers.
fn on_read_write(e: &Explain) -> (u64, u64) {
    (e.on_access[Explain::READ], e.on_access[Explain::WRITE])
}

#[test_case]
fn an_untouched_anonymous_page_reads_the_zero_page_and_writes_a_fresh_frame() {
    let space = AddressSpace::new().expect("space");
    let start = space.lock().mmap(0, 4 * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    let e = explain_at(&space, start);
    assert_eq!(on_read_write(&e), (next_fault::ZERO_PAGE, next_fault::ZEROED_FRAME));
    assert_eq!(e.on_access[Explain::EXEC], next_fault::SEGV_PROTECTION, "rw- does not allow a fetch");
    assert_eq!((e.vma_start, e.vma_end, e.vma_prot), (start.as_u64(), start.as_u64() + 4 * PAGE_SIZE, 3));
    assert_eq!(e.backing, explain::backing::ANONYMOUS);
    assert_eq!(e.frame, explain::NONE, "nothing mapped yet");
    assert!(e.nr_levels < 4 || e.entries[3] == 0, "no leaf yet: {e:?}");

    assert_eq!(fault::handle_page_fault(&mut space.lock(), start, USER_READ), Ok(FaultOutcome::ZeroPage));
    let e = explain_at(&space, start);
    assert_eq!(on_read_write(&e), (next_fault::NO_FAULT, next_fault::REPLACE_ZERO_PAGE));
    assert_eq!(e.frame, fault::zero_frame().pfn());
    assert_eq!(e.frame_state, explain::frame_state::KERNEL);

    let next = start + PAGE_SIZE;
    assert_eq!(explain_at(&space, next).on_access[Explain::WRITE], next_fault::ZEROED_FRAME);
    assert_eq!(fault::handle_page_fault(&mut space.lock(), next, USER_WRITE), Ok(FaultOutcome::AnonymousPage));
    let e = explain_at(&space, next);
    assert_eq!(e.nr_levels, 4);
    assert!(e.entries.iter().all(|entry| entry & 1 == 1), "all four levels present: {e:?}");
    assert_eq!(e.entries[3] & 0x6, 0x6, "the leaf is writable and user");
    assert_eq!(on_read_write(&e), (next_fault::NO_FAULT, next_fault::NO_FAULT));
    assert_eq!((e.frame, e.frame_state, e.refcount, e.map_count), (frame_at(&space, next), explain::frame_state::USER, 1, 1));
}

#[test_case]
fn a_cow_shared_page_after_fork_is_copied_then_reused_by_the_last_owner() {
    let (parent, start) = kernel::testing::space_with_written_pages(1);
    let child = cow::fork(&mut parent.lock()).expect("fork");
    let e = explain_at(&parent, start);
    assert_eq!(on_read_write(&e), (next_fault::NO_FAULT, next_fault::COW_COPY));
    assert_eq!((e.refcount, e.map_count), (2, 2), "{e:?}");
    assert_eq!(e.entries[3] & 0x2, 0, "fork left the PTE read-only");

    assert_eq!(fault::handle_page_fault(&mut parent.lock(), start, USER_WRITE), Ok(FaultOutcome::CowCopy));
    let e = explain_at(&child, start);
    assert_eq!(on_read_write(&e), (next_fault::NO_FAULT, next_fault::COW_REUSE), "the child is now the sole owner");
    assert_eq!((e.refcount, e.map_count), (1, 1));
    assert_eq!(fault::handle_page_fault(&mut child.lock(), start, USER_WRITE), Ok(FaultOutcome::CowReuse));
    assert_eq!(on_read_write(&explain_at(&child, start)), (next_fault::NO_FAULT, next_fault::NO_FAULT));
}

#[test_case]
fn a_swapped_out_page_is_read_from_its_slot_or_mapped_from_the_swap_cache() {
    let (parent, start) = kernel::testing::space_with_written_pages(1);
    assert_eq!(swap::evict(Frame::from_pfn(frame_at(&parent, start))), Ok(Evicted::Written));
    let entry = parent.lock().pte(start).and_then(|p| p.as_swap()).expect("a swap PTE");
    let slot = entry.slot();
    let e = explain_at(&parent, start);
    assert_eq!(on_read_write(&e), (next_fault::SWAP_IN, next_fault::SWAP_IN));
    assert_eq!(e.on_access_arg[Explain::READ], slot);
    assert_eq!((e.swap_slot, e.frame), (slot, explain::NONE), "on the disk only");
    assert_eq!(fault::handle_page_fault(&mut parent.lock(), start, USER_READ), Err(FaultError::NeedsSwapIn(entry)));

    // Fork shares the slot; the child's read brings the page into the swap cache.
    let child = cow::fork(&mut parent.lock()).expect("fork");
    assert_eq!(fault::fault_in(&child, start, USER_READ), Ok(FaultOutcome::SwapIn));
    let e = explain_at(&parent, start);
    assert_eq!(e.on_access[Explain::READ], next_fault::SWAP_CACHE_HIT);
    assert_eq!(e.on_access_arg[Explain::READ], slot);
    assert_eq!(e.frame, frame_at(&child, start), "the swap cache's frame");
    assert_ne!(e.frame_flags & (1 << 4), 0, "flagged swap-cache");
    assert_eq!(e.swap_slot, slot);
    assert_eq!(fault::handle_page_fault(&mut parent.lock(), start, USER_READ), Ok(FaultOutcome::SwapCacheHit));
}

static KERNEL_DATUM: u64 = 42;

#[test_case]
fn a_kernel_address_is_a_segfault_for_every_access() {
    let space = AddressSpace::new().expect("space");
    let addr = VirtAddr::new(&KERNEL_DATUM as *const u64 as u64);
    let e = explain_at(&space, addr);
    assert_eq!(e.on_access, [next_fault::SEGV_KERNEL_ADDRESS; 3]);
    assert_eq!(e.vma_end, 0, "no VMA");
    let leaf = e.entries[e.nr_levels as usize - 1];
    assert_eq!(leaf & 1, 1, "the kernel half is mapped in every space");
    assert_eq!(leaf & 4, 0, "but not for user mode");
    assert_ne!(e.frame, explain::NONE);
    assert!(matches!(fault::handle_page_fault(&mut space.lock(), addr, USER_READ), Err(FaultError::Segv(_))));
}

#[test_case]
fn an_unmapped_address_is_a_segfault_for_having_no_vma() {
    let space = AddressSpace::new().expect("space");
    let start = space.lock().mmap(0, PAGE_SIZE, VmProt::READ, MapRequest::default()).expect("mmap");
    let hole = start + 16 * PAGE_SIZE;
    let e = explain_at(&space, hole);
    assert_eq!(e.on_access, [next_fault::SEGV_NO_VMA; 3]);
    assert_eq!((e.vma_end, e.frame), (0, explain::NONE));
    assert!(matches!(fault::handle_page_fault(&mut space.lock(), hole, USER_READ), Err(FaultError::Segv(_))));
    let e = explain_at(&space, start);
    assert_eq!(on_read_write(&e), (next_fault::ZERO_PAGE, next_fault::SEGV_PROTECTION), "a read-only VMA");
    assert!(matches!(fault::handle_page_fault(&mut space.lock(), start, USER_WRITE), Err(FaultError::Segv(_))));
}

#[test_case]
fn a_write_in_a_huge_range_maps_a_huge_page_then_the_walk_stops_at_the_pd() {
    let old = thp::mode();
    thp::set_mode(ThpMode::Always);
    let space = AddressSpace::new().expect("space");
    let len = 4 << 20;
    let start = space.lock().mmap(0, len, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    let addr = VirtAddr::new((start.as_u64() + (2 << 20) - 1) & !((2 << 20) - 1));
    let e = explain_at(&space, addr);
    assert_eq!(on_read_write(&e), (next_fault::ZERO_PAGE, next_fault::HUGE_PAGE));
    let outcome = fault::handle_page_fault(&mut space.lock(), addr, USER_WRITE);
    thp::set_mode(old);
    assert_eq!(outcome, Ok(FaultOutcome::HugePage));
    let e = explain_at(&space, addr + 5 * PAGE_SIZE);
    assert_eq!(e.nr_levels, 3, "the PD entry is the leaf");
    assert_ne!(e.entries[2] & (1 << 7), 0, "PS set");
    assert_eq!(on_read_write(&e), (next_fault::NO_FAULT, next_fault::NO_FAULT));
    assert_eq!(e.on_access[Explain::EXEC], next_fault::SEGV_PROTECTION);
}

#[test_case]
fn the_fault_trace_records_a_programs_faults_by_pid_while_on_and_nothing_while_off() {
    use abi::trace::{op, outcome};
    use kernel::proc::teach_syscall::{sys_fault_trace, trace_records};
    use kernel::proc::{self, task::WaitStatus};
    // lazy writes one byte in each of 16 pages of a fresh mapping (few enough
    // faults in all for the 64-record ring).
    assert_eq!(sys_fault_trace(op::ON, 0, 0, 0), Ok(0));
    let pid = proc::spawn("lazy").expect("spawn lazy");
    assert_eq!(proc::wait(Some(pid)), Some((pid, WaitStatus::Exited(0))));
    let (_, nr_traced) = kernel::mm::vmstat::trace_records();
    assert!(nr_traced <= kernel::mm::vmstat::TRACE_LEN, "the ring kept them all: {nr_traced}");
    let mine = trace_records(pid);
    assert!(mine.iter().all(|r| r.pid == pid));
    let nr_fresh = mine.iter().filter(|r| r.outcome == outcome::ANONYMOUS_PAGE && r.access == 1).count();
    assert!(nr_fresh >= 16, "lazy's 16 writes, each a fresh page: {mine:?}");
    assert!(mine.windows(2).all(|w| w[0].ms <= w[1].ms), "oldest first");
    assert!(trace_records(999_999).is_empty(), "no faults of a process that never ran");

    // `on` empties the ring; forkcow's children copy its pages on their writes.
    assert_eq!(sys_fault_trace(op::ON, 0, 0, 0), Ok(0));
    assert!(trace_records(pid).is_empty(), "the ring was emptied");
    let pid = proc::spawn("forkcow").expect("spawn forkcow");
    assert_eq!(proc::wait(Some(pid)), Some((pid, WaitStatus::Exited(0))));
    proc::task::wait_all(20_000).expect("forkcow's children exit");
    assert_eq!(sys_fault_trace(op::OFF, 0, 0, 0), Ok(0));
    let all = trace_records(0);
    assert!(all.iter().any(|r| r.pid != pid && r.outcome == outcome::COW_COPY), "the children copied: {all:?}");

    let before = trace_records(0).len();
    let pid = proc::spawn("hello").expect("spawn hello");
    assert_eq!(proc::wait(Some(pid)), Some((pid, WaitStatus::Exited(0))));
    assert_eq!(trace_records(0).len(), before, "nothing recorded while off");
    assert_eq!(sys_fault_trace(7, 0, 0, 0), Err(abi::Errno::EINVAL));
}

/// Reads the whole of `/proc/kpageflags` as words, with the buddy allocator's free
/// frames at that moment (re-read until they held still across the read: the read
/// allocates its buffers).
fn read_kpageflags() -> (alloc::vec::Vec<u64>, u64) {
    use kernel::fs::{self, path};
    let inode = path::resolve(&fs::root(), "/proc/kpageflags").expect("/proc/kpageflags");
    let size = inode.stat().size as usize;
    let mut bytes = alloc::vec![0u8; size];
    for _ in 0..20 {
        let before = kernel::mm::frame::nr_free_frames();
        let mut done = 0;
        while done < size {
            let n = inode.read_at(done as u64, &mut bytes[done..(done + 4096).min(size)]).expect("read");
            assert!(n > 0 && n % 8 == 0, "whole words, up to the size: {n} at {done}");
            done += n;
        }
        if kernel::mm::frame::nr_free_frames() == before {
            let words = bytes.as_chunks::<8>().0.iter().map(|c| u64::from_ne_bytes(*c)).collect();
            return (words, before);
        }
    }
    panic!("the free frames never held still");
}

#[test_case]
fn kpageflags_free_frames_are_the_buddys_and_each_kind_of_frame_has_its_linux_bits() {
    use abi::kpageflags::{self as kpf, Owner, bit, classify};
    // As on one CPU: an idle CPU moving frames into the pre-zeroed pool between
    // the free count and the read made memmap's free one off the buddy's (61 306
    // for 61 307 with `--smp 2`).
    let _only_this_cpu = only_this_cpu::OnlyThisCpuIdles::new();
    let (space, start) = kernel::testing::space_with_written_pages(2);
    let written = frame_at(&space, start);
    let table = explain_at(&space, start).entries[2] >> 12 & ((1 << 40) - 1);
    let (words, nr_free) = read_kpageflags();
    let (first, nr) = kernel::mm::frame::managed_frames();
    assert_eq!(words.len() as u64, first.pfn() + nr, "a word per frame number up to the last managed one");
    assert!(words[..first.pfn() as usize].iter().all(|&w| w == bit(kpf::NOPAGE)), "no frame below the managed ones");
    assert_eq!(words.iter().filter(|&&w| classify(w) == Owner::Free).count() as u64, nr_free, "memmap's free = the buddy's");
    assert_eq!(words.iter().filter(|&&w| w & bit(kpf::BUDDY) != 0).count() as u64, nr_free);
    let w = words[written as usize];
    assert_eq!(w & (bit(kpf::ANON) | bit(kpf::MMAP)), bit(kpf::ANON) | bit(kpf::MMAP), "{w:#x}");
    assert_eq!(classify(w), Owner::Anon);
    assert_eq!(classify(words[table as usize]), Owner::PageTable, "the PT the walk passed");
    assert_eq!(words[fault::zero_frame().pfn() as usize], bit(kpf::ZERO_PAGE));

    assert_eq!(swap::evict(Frame::from_pfn(written)), Ok(Evicted::Written));
    let (words, _) = read_kpageflags();
    assert_eq!(words[written as usize], bit(kpf::BUDDY), "swapped out: the frame is free");
}

/// The inode at `path_text` and its page cache.
fn file_cache(path_text: &str) -> (kernel::fs::InodeRef, alloc::sync::Arc<kernel::mm::page_cache::PageCache>) {
    use kernel::fs::{self, path};
    let inode = path::resolve(&fs::root(), path_text).expect("the file");
    let cache = inode.page_cache().expect("an ext2 file has a page cache");
    (inode, cache)
}

/// A space mapping the first `nr_pages` of `cache` privately, read-only. The test
/// holds the inode (the rmap's owner here is a token: an inode must not be dropped
/// where a space is, under the rmap's lock).
fn map_file(cache: &alloc::sync::Arc<kernel::mm::page_cache::PageCache>, nr_pages: u64) -> (SpaceRef, VirtAddr) {
    use mm_core::vma::Backing;
    let space = AddressSpace::new().expect("space");
    let id = space.lock().id();
    kernel::mm::file_rmap::add(cache, alloc::sync::Arc::new(()), id, &space);
    let backing = Backing::File { cache: cache.id(), offset: 0 };
    let start = space.lock().mmap_backed(0, nr_pages * PAGE_SIZE, VmProt::READ, MapRequest::default(), backing).expect("mmap");
    (space, start)
}

#[test_case]
fn a_file_page_is_a_disk_read_when_not_cached_and_a_page_cache_hit_when_it_is() {
    kernel::fs::drop_caches::write("1").expect("drop the clean page cache");
    let (inode, cache) = file_cache("/bin/hog");
    let (first, start) = map_file(&cache, 2);
    assert!(cache.find_page(0).is_none(), "dropped: page 0 is on the disk only");
    let e = explain_at(&first, start);
    assert_eq!(e.backing, explain::backing::FILE);
    assert_eq!(e.on_access[Explain::READ], next_fault::FILE_READ, "{e:?}");
    assert_eq!(e.on_access[Explain::WRITE], next_fault::SEGV_PROTECTION, "a read-only mapping");
    assert_eq!(fault::retry::fault_in(&first, start, USER_READ), Ok(FaultOutcome::FilePage));
    assert!(cache.find_page(0).is_some(), "the read brought it into the page cache");
    let e = explain_at(&first, start);
    assert_eq!(e.on_access[Explain::READ], next_fault::NO_FAULT);
    assert_eq!(e.frame, frame_at(&first, start));
    assert_ne!(e.frame_flags & (1 << 2), 0, "flagged FILE: a page-cache frame");
    // A second process mapping the same file finds the page in the cache.
    let (second, start2) = map_file(&cache, 2);
    let e = explain_at(&second, start2);
    assert_eq!(e.on_access[Explain::READ], next_fault::FILE_CACHED, "{e:?}");
    assert_eq!(fault::retry::fault_in(&second, start2, USER_READ), Ok(FaultOutcome::FilePage));
    assert_eq!(frame_at(&second, start2), frame_at(&first, start), "the same page-cache frame");
    drop((first, second));
    kernel::mm::file_rmap::release_unmapped();
    drop((cache, inode));
}
