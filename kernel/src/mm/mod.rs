//! Memory management: physical frames, the kernel heap, page-sized memory operations.
//!
//! | module | what it does |
//! |---|---|
//! | [`addr_space`] | `AddressSpace`: PML4 + VMA tree; mmap, munmap, mprotect, madvise, brk |
//! | [`backing`] | backing objects: what fills a non-anonymous VMA's pages (program images; files later) |
//! | [`fault`] | the page-fault handler: demand-zero, image pages, stack growth; `fault::retry`: the loop around it (swap-in, reclaim, OOM) |
//! | [`cow`] | fork with copy-on-write, and `do_wp_fault` |
//! | [`vmstat`] | fault counters by outcome and the fault trace |
//! | [`remote`] | another process's pages for `process_vm_readv`/`writev`: pinned, copied through the direct map |
//! | [`rmap`] | reverse map: fork families, a user frame's (family, page); the registry of address spaces |
//! | [`check`] | the bookkeeping audit: rmap, frame counts, swap slots vs the page tables |
//! | [`oom`] | the OOM killer: when memory and swap are exhausted, the largest process dies |
//! | [`process_hooks`] | what mm needs from processes (list, kill, "was I killed?"), registered by `proc` at boot |
//! | [`reclaim`] | watermarks, background and direct reclaim, the replacement policy (clock), MADV_PAGEOUT |
//! | [`swap`] | the swap area (header, `swapon`, slots), the swap cache, swap-out (`evict`), swap-in |
//! | [`frame`] | the frame table and the buddy allocator, behind one lock |
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

pub mod addr_space;
pub mod backing;
pub mod check;
pub mod cow;
pub mod fail;
pub mod fault;
pub mod frame;
pub mod headroom;
pub mod heap;
pub mod kspace;
pub mod kstack;
pub mod layout;
pub mod memops;
pub mod oom;
pub mod paging;
pub mod process_hooks;
pub mod reclaim;
pub mod remote;
pub mod rmap;
pub mod swap;
pub mod vmstat;

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
    kspace::init();
    let _ = fault::zero_frame(); // allocated once, at boot, never freed
}
