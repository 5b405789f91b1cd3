//! Memory management: physical frames, the kernel heap, page-sized memory operations.
//!
//! | module | what it does |
//! |---|---|
//! | [`addr_space`] | `AddressSpace`: PML4 + VMA tree; mmap, munmap, mprotect, madvise, brk |
//! | [`backing`] | backing objects: what fills a non-anonymous VMA's pages (program images; files later) |
//! | [`fault`] | the page-fault handler: demand-zero, image pages, stack growth; `fault::retry`: the loop around it (swap-in, reclaim, OOM) |
//! | [`cow`] | fork with copy-on-write, and `do_wp_fault` |
//! | [`thp`] | transparent huge pages: 2 MiB faults, modes, splitting back to 4 KiB |
//! | [`ksm`] | same-page merging: `MADV_MERGEABLE`, the ksmd scanner, merged pages and their reverse map |
//! | [`compact`] | compaction: moving user pages out of a 2 MiB block (by the reverse map) to free it |
//! | [`vmstat`] | fault counters by outcome and the fault trace |
//! | [`wss`] | working sets (Accessed-bit sampling every τ of a process's CPU time) and page-fault frequency |
//! | [`page_cache`] | the page cache: file pages by (file, index), read and written through, reclaimed |
//! | [`cleaner`] | the background cleaner: dirty anonymous pages near the eviction end written to swap ahead of reclaim |
//! | [`writeback`] | the writeback thread: old or too many dirty file pages to their files |
//! | [`readahead`] | file readahead: the pages a sequential read will want, read before it asks |
//! | [`remote`] | another process's pages for `process_vm_readv`/`writev`: pinned, copied through the direct map |
//! | [`rmap`] | reverse map: fork families, a user frame's (family, page); the registry of address spaces |
//! | [`file_rmap`] | the file reverse map (Linux's `i_mmap`): which spaces map a file; unmap / write-protect a file page everywhere |
//! | [`filemap`] | file pages mapped from the page cache: the fault (private: read-only, COW on write; shared: dirtied on write), fault-around |
//! | [`check`] | the bookkeeping audit: rmap, frame counts, swap slots vs the page tables |
//! | [`memcg`] | memory groups: `memory.high` / `memory.max` per group of processes, local reclaim, the group's own OOM kill |
//! | [`oom`] | the OOM killer: when memory and swap are exhausted, the largest process dies |
//! | [`process_hooks`] | what mm needs from processes (list, kill, "was I killed?"), registered by `proc` at boot |
//! | [`reclaim`] | watermarks, background and direct reclaim, the replacement policy (clock), MADV_PAGEOUT |
//! | [`swap`] | the swap area (header, `swapon`, slots), the swap cache, swap-out (`evict`), swap-in |
//! | [`frame`] | the frame table and the buddy allocator, behind one lock |
//! | [`pcp`] | per-CPU lists of single free frames in front of the buddy allocator (Linux's pcp lists) |
//! | [`headroom`] | before a syscall or fault: the heap's pool filled, by reclaim or an OOM decision |
//! | [`heap`] | slab caches and kmalloc size classes: the kernel's `GlobalAlloc` |
//! | [`memops`] | zeroing and copying whole pages (several methods, measured) |
//! | [`layout`] | the virtual memory layout diagram and its constants |
//! | [`paging`] | the kernel's page tables on real memory; `kmap`/`kunmap` with TLB flushes |
//! | [`kspace`] | builds the kernel's own PML4 (direct map, image per segment) and loads it |
//! | [`kstack`] | kernel stacks with unmapped guard pages |
//!
//! All of physical memory is mapped at [`PHYS_MAP_BASE`] (the "direct map"), so the
//! kernel reaches any frame at `PHYS_MAP_BASE + physical address`.
//!
//! # Lock order
//!
//! The one lock order of the kernel, outermost first: a lock may be taken only while
//! every lock held is *above* it in this list. Every other module's doc points here
//! instead of repeating part of it. The rank of each spinlock is its
//! [`LockRank`](crate::sync::LockRank), and debug builds check the order at every
//! acquisition (`sync/lock_rank.rs`): taking a lock out of order panics naming both.
//!
//! | # | lock (rank) | protects | IRQ state | taken under it |
//! |---|---|---|---|---|
//! | 0a | a page cache's sleeping `io_lock` (`mm/page_cache.rs`) | one file's write-back and truncation | IRQs on, no spinlock held; reclaim only `try_lock`s it | the file system's locks (`PageIo`), the disk mutex |
//! | 0b | the ext2 mount's sleeping [`Mutex`](crate::sync::Mutex) (`fs/ext2fs.rs`, one per mount) | the `ext2::Ext2` state: block cache, bitmaps, inodes | IRQs **on**, no spinlock held (it does disk I/O) | the root disk's queue mutex (row 0), heap, frames |
//! | 0c | `ksm::SCANNER`, a sleeping [`Mutex`](crate::sync::Mutex) (`mm/ksm.rs`) | the scan cursor and the unstable index | IRQs on, no spinlock held | one address space at a time, `STABLE`, and what they take |
//! | 0 | the swap disk's sleeping [`Mutex`](crate::sync::Mutex) (`drivers/virtio_blk.rs`) | the virtio queue, one request at a time | IRQs **on**, no spinlock held (it may sleep) | heap, frames (probe, frame-state checks) |
//! | 1 | `proc::sched::RUN_QUEUE` (`RunQueue`) | runnable pids | IRQs off (the timer interrupt takes it to preempt a user task) | `TASKS` (pick_next) |
//! | 2 | `proc::task::TASKS` (`Tasks`) | the task table | IRQs off (the timer interrupt's preemption switches tasks) | an address space (context switch), heap |
//! | 3 | an address space (`AddressSpace`, one per process; `Arc<IrqMutex<AddressSpace>>`) | its page tables, VMAs, stats | IRQs off | everything below |
//! | 4 | `swap::SWAP` (`Swap`) | slot map, swap cache, readahead window | IRQs off | the policy (a cached frame freed), frames |
//! | 4a | a page cache's `pages` (`PageCache`, one per cached file) | its index: page -> frame | IRQs off | the policy (a page tracked or untracked), heap, frames |
//! | 5 | `reclaim::POLICY` (`ReclaimPolicy`) | the replacement policy's ring | IRQs off | `FAMILIES` and other spaces by `try_lock` (the probe), frames (ring links) |
//! | 6 | `rmap::FAMILIES` (`RmapFamilies`) | fork families: the reverse map | IRQs off | `ksm::STABLE`, heap, frames |
//! | 6a | `file_rmap::FILE_RMAP` (`FileRmap`) | the file reverse map: per page cache, the spaces mapping it | IRQs off | heap |
//! | 6b | `ksm::STABLE` (`KsmStable`) | merged pages: by checksum, and the places mapping each | IRQs off | heap, frames |
//! | 7 | `addr_space::PCIDS` (`Pcids`) | TLB tags | IRQs off | nothing ranked above |
//! | 8 | `mm::backing::OBJECTS` (`BackingObjects`) | backing objects (program images) | IRQs off | heap |
//! | 8a | `page_cache::CACHES` (`PageCacheRegistry`) | the caches by id (frame -> cache) | IRQs off | heap |
//! | 9 | `block::DEVICES` (`BlockDevices`) | the registry of disks | IRQs off | heap |
//! | 10 | `paging::KERNEL_PT` (`KernelPageTable`) | the kernel's page tables | IRQs off | frames (tables allocated inside) |
//! | 11 | `kstack::SLOTS` (`KernelStackSlots`) | kernel-stack slots | IRQs off | nothing (mapping happens after) |
//! | 12 | `heap::TYPED_CACHES` (`SlabRegistry`) | the list of typed caches | IRQs off | nothing |
//! | 12a | `fs::ext2fs::DEFERRED` (`DeferredInodes`) | inode handles dropped where they could not sleep, released later | IRQs off | the heap |
//! | 12a' | `mm::reclaim::probe::DEFERRED` (`DeferredSpaces`) | address spaces whose last reference the policy's probe held, dropped after the policy lock | IRQs off | the heap |
//! | 12b | `slabmag::MAGS[cpu]` (`SlabMag`), one per CPU | that CPU's magazines of free kmalloc objects | IRQs off | the heap (refill, flush, drain) |
//! | 13 | `heap::KMALLOC` and each typed cache (`Heap`) | slab caches: the kernel heap | IRQs off | the pool, frames |
//! | 14 | `heap::POOL` (`HeapPool`) | the heap's emergency page blocks | IRQs off | frames |
//! | 15 | `fail::PLAN` (`FailPlan`) | fault injection | IRQs off | nothing |
//! | 15a | `zero_pool::POOL` (`ZeroPool`) | the pre-zeroed frames | IRQs off | frames (a frame's state marked) |
//! | 15b | `pcp::PCP[cpu]` (`Pcp`), one per CPU | that CPU's lists of free single frames (the pop; a free pushes under `FRAMES` alone, see `pcp::PerCpu`) | IRQs off | frames (refill, drain) |
//! | 16 | `frame::FRAMES` (`Frames`) | frame table and buddy allocator | IRQs off | nothing but the two leaves below |
//! | 17 | `vmstat::TRACE` (`FaultTrace`) | the fault trace | IRQs off | nothing |
//! | 18 | `drivers::pci::CONFIG_LOCK` (`PciConfig`) | PCI configuration space | IRQs off | nothing |
//! | 19 | `arch::ioapic::IOAPIC` (`IoApic`) | the I/O APIC's select/window pair | IRQs off | nothing |
//!
//! Rules that go with it:
//! - **Spinlocks keep IRQs off.** Every lock from 1 down is an
//!   [`IrqMutex`](crate::sync::IrqMutex): taking it disables interrupts, so an
//!   interrupt handler never finds a lock its CPU already holds. None is held across
//!   a context switch or a sleep (debug builds panic: `proc::sched::switch_away`).
//! - **The timer interrupt takes `TASKS`, then the running process's address
//!   space** (and frames under it) to charge its CPU tick and sample its working set
//!   (`wss.rs`). That is safe only because of the rule above: a tick never arrives
//!   while its CPU holds a spinlock, so it cannot find one of these taken.
//! - **No I/O under a spinlock.** Slot reads and writes take the disk mutex (0) with
//!   no spinlock held; swap-out and swap-in drop `SWAP` and the space lock around it
//!   (the swap-cache LOCKED flag keeps the frame meanwhile).
//! - **Reclaim runs with no lock held** (kswapd, direct reclaim, `MADV_PAGEOUT`). The
//!   probe, under `POLICY`, reaches address spaces only with `try_lock`: a space it
//!   cannot lock counts as "referenced". `try_lock` is exempt from the order check
//!   (it cannot wait), but what is taken under it is checked.
//! - **Two address spaces** are held together only by fork (the parent, then the new
//!   child nobody else can reach), through `IrqMutex::lock_nested`. Everyone else
//!   holds one space at a time; the rmap visits the others by `try_lock`, and so
//!   does compaction (`compact.rs`), which holds every space mapping the page it
//!   moves at once (a busy one makes it give the block up, never wait).
//! - Below the table: `arch`'s serial console and IST tables are plain `spin` locks
//!   taken with interrupts off around a few port writes; they are leaves and unranked.
//!   The console input ring `tty::RAW` is an `IrqMutex` of rank `Leaf` (the serial
//!   interrupt fills it; nothing is taken under it); the line discipline `tty::LDISC`
//!   is a sleeping mutex, never taken under a spinlock.

pub mod addr_space;
pub mod backing;
pub mod check;
pub mod cleaner;
pub mod compact;
pub mod explain;
pub mod cow;
pub mod fail;
pub mod fault;
pub mod file_rmap;
pub mod filemap;
pub mod frame;
pub mod headroom;
pub mod heap;
pub mod ksm;
pub mod kspace;
pub mod kstack;
pub mod layout;
pub mod memcg;
pub mod memops;
pub mod oom;
pub mod page_cache;
pub mod paging;
pub mod pcp;
pub mod process_hooks;
pub mod readahead;
pub mod reclaim;
pub mod remote;
pub mod rmap;
pub mod slabmag;
pub mod swap;
pub mod thp;
pub mod vmstat;
pub mod wss;
pub mod zero_pool;
pub mod writeback;

pub use mm_core::addr::{Frame, Order, PAGE_SIZE, Page, PhysAddr, VirtAddr};

/// Start of the direct map of physical memory.
pub const PHYS_MAP_BASE: u64 = crate::PHYS_MAP_BASE;

/// Returns the direct-map address of physical address `phys`.
#[inline]
pub fn phys_to_virt(phys: PhysAddr) -> VirtAddr {
    VirtAddr::new(PHYS_MAP_BASE + phys.as_u64())
}

/// Returns the physical address behind a direct-map address; panics for any other address.
#[inline]
pub fn direct_map_to_phys(virt: VirtAddr) -> PhysAddr {
    let addr = virt.as_u64();
    assert!((PHYS_MAP_BASE..PHYS_MAP_BASE + (1 << 46)).contains(&addr), "direct_map_to_phys: {virt:?} is not in the direct map");
    PhysAddr::new(addr - PHYS_MAP_BASE)
}

/// Returns a pointer to the first byte of `frame` through the direct map.
#[inline]
pub fn frame_ptr(frame: Frame) -> *mut u8 {
    phys_to_virt(frame.start_address()).as_u64() as *mut u8
}

/// The least usable RAM the kernel starts with: the frame table, the kernel's page
/// tables, the heap with its emergency pool, the swap cache's index (256 KiB for
/// 256 MiB of swap), kernel stacks, and room for user programs above the reclaim
/// watermarks. Below it `init` says so and stops QEMU with a failure.
pub const MIN_USABLE_BYTES: u64 = 12 << 20;

/// The least guest RAM (`--memory`) that boots, measured: below 22 MiB the
/// bootloader itself runs out of frames building its physical-memory map (it maps
/// up to QEMU's highest reserved region, near 1 TiB, in 2 MiB pages) and panics
/// before the kernel runs. 22 MiB leaves the kernel 15 MiB usable. The runner
/// refuses smaller sizes (`boot/src/options.rs` keeps the same number).
pub const MIN_GUEST_RAM_MIB: u64 = 22;

/// Builds the frame table and buddy allocator from the boot memory map (the heap
/// works after this), then the kernel's own page tables, which it switches to.
pub fn init() {
    let usable_bytes = crate::bootmem::usable_bytes();
    if usable_bytes < MIN_USABLE_BYTES {
        crate::println!(
            "kernel: only {} KiB of usable RAM; this kernel needs at least {} MiB usable \
             (guest RAM of {} MiB or more): stopping",
            usable_bytes >> 10,
            MIN_USABLE_BYTES >> 20,
            MIN_GUEST_RAM_MIB
        );
        crate::arch::qemu::exit(crate::arch::qemu::ExitCode::Failure);
    }
    frame::init(crate::bootmem::memory_regions());
    pcp::init_listed_bits(); // the heap works from here
    kspace::init();
    let _ = fault::zero_frame(); // allocated once, at boot, never freed
    thp::init_from_cmdline();
    // The per-CPU caches are on by default; `pcp=off` / `slabmag=off` turn them off
    // (here, not in `main`, so that test images obey `KERNEL_CMDLINE` too).
    if crate::cmdline::value("pcp") == Some("off") {
        pcp::set_enabled(false);
    }
    if crate::cmdline::value("slabmag") == Some("off") {
        slabmag::set_enabled(false);
    }
}

/// A switchable mechanism turned on (or off) for as long as this lives, and back to
/// what it was when it is dropped: what tests and measurements of the per-CPU caches
/// use, so that they run with the caches even under `pcp=off` / `slabmag=off`, or
/// set something up without them (`pcp::turned_on`, `slabmag::turned_on`,
/// `slabmag::turned_off`).
#[must_use = "the mechanism goes back to what it was when this is dropped"]
pub struct Switched {
    set_enabled: fn(bool),
    was_on: bool,
}

impl Switched {
    /// Calls `set_enabled(is_on)` now and `set_enabled(was_on)` on drop, where
    /// `was_on` is what `is_enabled()` says now.
    pub fn new(set_enabled: fn(bool), is_enabled: fn() -> bool, is_on: bool) -> Switched {
        let was_on = is_enabled();
        set_enabled(is_on);
        Switched { set_enabled, was_on }
    }
}

impl Drop for Switched {
    fn drop(&mut self) {
        (self.set_enabled)(self.was_on);
    }
}
