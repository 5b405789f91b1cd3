//! The kernel heap: kmalloc size classes on slab caches, big requests on the buddy
//! allocator, and typed per-object caches. This is the kernel's `GlobalAlloc`, so
//! `Box`, `Vec` and `BTreeMap` work once [`super::init`] has run.
//!
//! ```text
//!   Box::new / Vec::push ──> GlobalAlloc::alloc(layout)
//!        size <= 4096 and align <= 4096 ──> kmalloc class ──> SlabCache ──> buddy pages (state Slab)
//!        otherwise                      ──> buddy block of 2^order frames (state Kernel)
//! ```
//! The slab algorithm is `mm_core::slab`; [`DirectMapBackend`] gives it memory: pages
//! from the buddy allocator, words read and written through the direct map.
//!
//! When the buddy allocator cannot serve the heap, the heap's emergency pool does
//! (see "The heap's emergency pool" below): kernel-heap exhaustion must not be what
//! ends the kernel under memory pressure.
//!
//! kmalloc's classes have per-CPU magazines in front of them (`super::slabmag`): an
//! allocation or free of a small object usually touches only the running CPU's
//! magazine, and only a refill or flush of half a magazine takes `KMALLOC`.
//!
//! Locks: `TYPED_CACHES`, a CPU's `slabmag::MAGS` then `KMALLOC` and each typed
//! cache, `POOL` (see the lock order in [`crate::mm`]).

use core::alloc::{GlobalAlloc, Layout};
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};

pub use mm_core::kmalloc::{KMALLOC_MAX_SIZE, Kmalloc, size_class_for};
pub use mm_core::slab::{SlabBackend, SlabCache, SlabError, SlabInfo};

use super::frame::{self, FrameState};
use super::{Frame, Order, VirtAddr, direct_map_to_phys, phys_to_virt};
use crate::sync::{IrqMutex, LockRank};

/// Slab memory as the kernel provides it: buddy pages seen through the direct map.
///
/// Private to this module: its `write_word` writes any address it is given, which
/// only the slab code, on blocks it holds, may do.
struct DirectMapBackend;

impl SlabBackend for DirectMapBackend {
    fn alloc_pages(&mut self, order: Order) -> Option<u64> {
        let frame = alloc_or_use_pool(order, FrameState::Slab)?;
        Some(phys_to_virt(frame.start_address()).as_u64())
    }

    fn free_pages(&mut self, addr: u64, order: Order) {
        let frame = Frame::containing_address(direct_map_to_phys(VirtAddr::new(addr)));
        // SAFETY: the slab code frees a block it allocated with `alloc_pages` and no
        // longer uses (every object in it is free).
        if let Err(e) = unsafe { frame::free(frame, order) } {
            panic!("heap: slab pages at {addr:#x} could not be freed: {e:?}");
        }
    }

    fn read_word(&self, addr: u64) -> u64 {
        // SAFETY: the slab code reads only 8-byte-aligned words inside slab blocks it
        // holds (direct-map addresses of frames it allocated), or the would-be header of
        // a pointer handed to `free`, which GlobalAlloc guarantees came from us.
        unsafe { (addr as *const u64).read() }
    }

    fn write_word(&mut self, addr: u64, value: u64) {
        // SAFETY: as in `read_word`; writes only go to blocks the cache holds.
        unsafe { (addr as *mut u64).write(value) }
    }
}

// ---------------------------------------------------------------------------
// The heap's emergency pool.
//
// Counting free frames is not enough to keep the heap alive: a slab of the 1024-byte
// class is 4 contiguous frames, of the 2048 and 4096 classes 8, and under memory
// pressure the free frames left are scattered single frames. Under 17 swapping
// processes on a 40 MiB machine the kernel died with "memory allocation of 768
// bytes failed" while 2 frames were free (issue #10). So the heap keeps a few blocks
// of the largest slab order set aside, allocated while memory is plentiful; when the
// buddy allocator cannot serve the heap, one block goes back to it and the
// allocation is retried. Reclaim refills the pool ([`refill_pool`]) once it has freed
// memory, taking only frames above the user reserve.

/// The order of a pool block: the largest slab's (kmalloc-2048 and -4096: 8 frames).
const POOL_ORDER: Order = Order(3);
/// Blocks in a full pool (512 KiB): sortstorm at 40 MiB used all 8 of a 256 KiB pool.
const NR_POOL_BLOCKS: usize = 16;

/// The pool: blocks of `POOL_ORDER` frames, state Kernel, not in use.
static POOL: IrqMutex<[Option<Frame>; NR_POOL_BLOCKS]> = IrqMutex::new_ranked(LockRank::HeapPool, [None; NR_POOL_BLOCKS]);
/// Blocks in the pool now: read without the lock by [`nr_pool_blocks`], written
/// under it.
static NR_IN_POOL: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
/// Blocks handed back to the buddy allocator for a heap allocation, since boot.
static NR_POOL_BLOCKS_USED: AtomicU64 = AtomicU64::new(0);

/// Pool blocks only reclaim may use (Linux's `PF_MEMALLOC` reserve): reclaim
/// needs a little heap for its bookkeeping (the candidate list of a fork family,
/// the undo list of an eviction) exactly when every other block is gone, and it is
/// what gets memory back.
pub const RECLAIM_RESERVE_BLOCKS: usize = 2;

/// Reclaim paths running now (kswapd, direct reclaim, `MADV_PAGEOUT`): while it is
/// not zero, heap allocations may use the reclaim reserve. A count, not a per-task
/// flag: on one CPU a task preempted inside reclaim lends the reserve to whoever
/// runs meanwhile, which only widens who may use it (a per-task flag is the SMP fix).
static NR_IN_RECLAIM: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// While alive, the heap may use its reclaim reserve: see [`enter_reclaim`].
pub struct ReclaimScope(());

/// Marks the caller as reclaim until the returned scope is dropped.
pub fn enter_reclaim() -> ReclaimScope {
    NR_IN_RECLAIM.fetch_add(1, Ordering::AcqRel);
    ReclaimScope(())
}

impl Drop for ReclaimScope {
    fn drop(&mut self) {
        NR_IN_RECLAIM.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Allocates `2^order` frames for the heap; if the buddy allocator has none, gives a
/// pool block back to it and tries again, as long as the pool has blocks (outside
/// reclaim: blocks beyond the reclaim reserve).
fn alloc_or_use_pool(order: Order, state: FrameState) -> Option<Frame> {
    loop {
        if let Ok(frame) = frame::alloc(order, state) {
            return Some(frame);
        }
        let floor = if NR_IN_RECLAIM.load(Ordering::Acquire) > 0 { 0 } else { RECLAIM_RESERVE_BLOCKS };
        let block = {
            let mut pool = POOL.lock();
            if pool.iter().flatten().count() <= floor {
                return None;
            }
            let block = pool.iter_mut().find_map(Option::take)?;
            NR_IN_POOL.store(pool.iter().flatten().count(), Ordering::Relaxed);
            block
        };
        // SAFETY: pool blocks are allocated by `refill_pool` for this pool only and
        // never used: the block was just taken out of the pool.
        if let Err(e) = unsafe { frame::free(block, POOL_ORDER) } {
            panic!("heap: pool block {block:?} could not be freed: {e:?}");
        }
        NR_POOL_BLOCKS_USED.fetch_add(1, Ordering::Relaxed);
        log::debug!("heap: out of frames for an order-{} block; used a pool block", order.0);
    }
}

/// Fills the heap's emergency pool back up, with frames above the user reserve
/// only (so user pages lose nothing they could have had). Call with no lock held:
/// at boot and after reclaim freed memory. Returns the number of blocks in the pool.
pub fn refill_pool() -> usize {
    let mut pool = POOL.lock();
    for slot in pool.iter_mut().filter(|s| s.is_none()) {
        match frame::alloc_leaving(POOL_ORDER, FrameState::Kernel, frame::Reserve::User) {
            Ok(block) => *slot = Some(block),
            Err(_) => break,
        }
    }
    let nr_blocks = pool.iter().flatten().count();
    NR_IN_POOL.store(nr_blocks, Ordering::Relaxed);
    nr_blocks
}

/// Blocks in the emergency pool now (one atomic load: the system-call entry's fast
/// path, see `mm::headroom`).
pub fn nr_pool_blocks() -> usize {
    NR_IN_POOL.load(Ordering::Relaxed)
}

/// Returns (blocks in the pool now, blocks used by the heap since boot).
pub fn pool_stats() -> (usize, u64) {
    (POOL.lock().iter().flatten().count(), NR_POOL_BLOCKS_USED.load(Ordering::Relaxed))
}

/// The kmalloc size classes (8 B to 4 KiB).
static KMALLOC: IrqMutex<Kmalloc> = IrqMutex::new_ranked(LockRank::Heap, Kmalloc::new());
/// Large allocations served straight from the buddy allocator, for statistics.
static NR_LARGE_ALLOCS: AtomicU64 = AtomicU64::new(0);
static NR_LARGE_FRAMES: AtomicU64 = AtomicU64::new(0);

/// Returns the buddy order for a large layout (natural alignment covers `align`).
fn large_order(layout: Layout) -> Option<Order> {
    let order = Order::for_size(layout.size().max(layout.align()) as u64);
    (order.0 <= frame::MAX_ORDER).then_some(order)
}

/// The kernel's global allocator.
pub struct KernelHeap;

// SAFETY: `alloc` returns blocks of at least `layout.size()` bytes aligned to
// `layout.align()` (slab classes are chosen for both; buddy blocks are naturally
// aligned to their size, which is >= align), distinct blocks never overlap, and
// `dealloc` returns a block to the allocator it came from, chosen by the same layout.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some(class) = size_class_for(layout.size(), layout.align()) {
            return kmalloc_class(class).map_or(core::ptr::null_mut(), |addr| addr as *mut u8);
        }
        let Some(order) = large_order(layout) else { return core::ptr::null_mut() };
        match alloc_or_use_pool(order, FrameState::Kernel).ok_or(()) {
            Ok(frame) => {
                NR_LARGE_ALLOCS.fetch_add(1, Ordering::Relaxed);
                NR_LARGE_FRAMES.fetch_add(order.nr_frames(), Ordering::Relaxed);
                phys_to_virt(frame.start_address()).as_u64() as *mut u8
            }
            Err(_) => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some(class) = size_class_for(layout.size(), layout.align()) {
            if let Err(e) = kfree_class(class, ptr as u64) {
                panic!("kfree: {ptr:p} ({layout:?}): {e}");
            }
            return;
        }
        let order = large_order(layout).expect("kfree: layout was never allocatable");
        let frame = Frame::containing_address(direct_map_to_phys(VirtAddr::new(ptr as u64)));
        // SAFETY: `GlobalAlloc::dealloc`'s contract: `ptr` came from `alloc` with this
        // layout (so it heads a buddy block of `order`) and is no longer used.
        if let Err(e) = unsafe { frame::free(frame, order) } {
            panic!("kfree: {ptr:p} ({layout:?}): {e:?}");
        }
        NR_LARGE_ALLOCS.fetch_sub(1, Ordering::Relaxed);
        NR_LARGE_FRAMES.fetch_sub(order.nr_frames(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Same size class (or same buddy order): the block already fits.
        let same_class = match (size_class_for(layout.size(), layout.align()), size_class_for(new_size, layout.align())) {
            (Some(a), Some(b)) => a == b,
            (None, None) => {
                let new_layout = Layout::from_size_align(new_size, layout.align());
                new_layout.is_ok_and(|l| large_order(l) == large_order(layout))
            }
            _ => false,
        };
        if same_class {
            return ptr;
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return core::ptr::null_mut();
        };
        // SAFETY: `new_layout` has a non-zero size (realloc's contract) and valid align.
        let new_ptr = unsafe { self.alloc(new_layout) };
        if !new_ptr.is_null() {
            // SAFETY: both blocks are valid for the smaller size and do not overlap;
            // the old block is freed with the layout it was allocated with.
            unsafe {
                core::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new_ptr
    }
}

#[global_allocator]
static HEAP: KernelHeap = KernelHeap;

/// The kmalloc caches' shapes (names, object geometry, slab magics), never changed:
/// read without the heap's lock to check a free before it goes into a magazine.
static KMALLOC_SHAPES: Kmalloc = Kmalloc::new();

/// Allocates an object of kmalloc class `class`: from the running CPU's magazine
/// (`super::slabmag`) when they are on, else (or when the magazine cannot be
/// refilled) from the class's slab cache.
#[inline]
fn kmalloc_class(class: usize) -> Option<u64> {
    if super::slabmag::is_enabled() {
        let refill = |nr: usize, push: &mut dyn FnMut(u64)| {
            let mut kmalloc = KMALLOC.lock();
            for _ in 0..nr {
                let Ok(addr) = kmalloc.alloc_class(&mut DirectMapBackend, class) else { break };
                push(addr);
            }
        };
        if let Some(addr) = super::slabmag::alloc(class, refill) {
            return Some(addr);
        }
        // Memory is short: objects of this class may sit in other CPUs' magazines,
        // and the slabs they keep from being empty are pages another class needs.
        if drain_magazines() > 0 {
            KMALLOC.lock().shrink(&mut DirectMapBackend);
        }
    }
    KMALLOC.lock().alloc_class(&mut DirectMapBackend, class).ok()
}

/// Frees the object at `addr` of kmalloc class `class`: into the running CPU's
/// magazine once it is checked to be an object of that class (a full magazine
/// flushes half of itself to the slab cache first), or straight to the slab cache.
#[inline]
fn kfree_class(class: usize, addr: u64) -> Result<(), SlabError> {
    if !super::slabmag::is_enabled() {
        return KMALLOC.lock().free_class(&mut DirectMapBackend, class, addr).map_err(slab_error);
    }
    KMALLOC_SHAPES.caches()[class].check_object(&DirectMapBackend, addr)?;
    super::slabmag::free(class, addr, |flush| {
        let mut kmalloc = KMALLOC.lock();
        flush(&mut |old| {
            if let Err(e) = kmalloc.free_class(&mut DirectMapBackend, class, old) {
                panic!("kfree: object {old:#x} flushed from a magazine of kmalloc-{}: {e}", mm_core::kmalloc::SIZE_CLASSES[class]);
            }
        });
    })
}

/// Returns the slab error inside a kmalloc error (a class is given, so it is one).
fn slab_error(e: mm_core::kmalloc::KmallocError) -> SlabError {
    match e {
        mm_core::kmalloc::KmallocError::Slab(e) => e,
        mm_core::kmalloc::KmallocError::TooLarge => SlabError::NotInCache,
    }
}

/// Empties every CPU's slab magazines into the kmalloc caches (`slabmag::drain_all`);
/// returns the objects given back.
pub(super) fn drain_magazines() -> u64 {
    super::slabmag::drain_all_with(&|drain| {
        let mut kmalloc = KMALLOC.lock();
        drain(&mut |class, addr| {
            if let Err(e) = kmalloc.free_class(&mut DirectMapBackend, class, addr) {
                panic!("slabmag: object {addr:#x} drained from a magazine of kmalloc-{}: {e}", mm_core::kmalloc::SIZE_CLASSES[class]);
            }
        });
    })
}

/// Returns the statistics of every kmalloc class, smallest first.
pub fn kmalloc_slabinfo() -> [SlabInfo; mm_core::kmalloc::NR_SIZE_CLASSES] {
    let kmalloc = KMALLOC.lock();
    core::array::from_fn(|i| kmalloc.caches()[i].info())
}

/// Returns the statistics of every slab cache: the kmalloc classes, then the typed caches.
pub fn all_slabinfo() -> alloc::vec::Vec<SlabInfo> {
    let mut all: alloc::vec::Vec<SlabInfo> = kmalloc_slabinfo().into_iter().collect();
    all.extend(registered_caches().into_iter().flatten().map(|c| c.lock().info()));
    all
}

/// Returns (number of live large allocations, frames they hold).
pub fn large_alloc_stats() -> (u64, u64) {
    (NR_LARGE_ALLOCS.load(Ordering::Relaxed), NR_LARGE_FRAMES.load(Ordering::Relaxed))
}

/// Returns the frames the kernel heap holds now: every slab of the kmalloc classes
/// and the typed caches, and the large allocations.
pub fn nr_frames() -> u64 {
    let slab_pages = |info: SlabInfo| (info.nr_full_slabs + info.nr_partial_slabs + info.nr_empty_slabs) * info.nr_pages_per_slab;
    let kmalloc: u64 = kmalloc_slabinfo().into_iter().map(slab_pages).sum();
    let typed: u64 = registered_caches().into_iter().flatten().map(|c| slab_pages(c.lock().info())).sum();
    kmalloc + typed + large_alloc_stats().1
}

/// Gives every empty slab of every kmalloc class back to the buddy allocator, after
/// emptying the per-CPU magazines (whose objects keep slabs from being empty).
/// Refills the emergency pool afterwards, so counts of free frames taken after a
/// shrink do not depend on whether the pool was used before.
pub fn shrink() -> u64 {
    drain_magazines();
    let nr_pages = KMALLOC.lock().shrink(&mut DirectMapBackend);
    refill_pool();
    nr_pages
}

/// Checks every kmalloc cache's invariants (panics on a broken one).
pub fn check_invariants() {
    KMALLOC.lock().check_invariants(&DirectMapBackend);
}

/// Prints a `/proc/slabinfo`-style table: the kmalloc classes and the typed caches.
pub fn print_slabinfo() {
    crate::println!("{}", SlabInfo::HEADER);
    for info in kmalloc_slabinfo() {
        crate::println!("{info}");
    }
    for cache in registered_caches().into_iter().flatten() {
        crate::println!("{}", cache.lock().info());
    }
    let (nr, frames) = large_alloc_stats();
    crate::println!("large (buddy) allocations: {nr} live, {frames} frames");
}

/// Typed caches register here so slabinfo can list them.
static TYPED_CACHES: IrqMutex<[Option<&'static IrqMutex<SlabCache>>; 16]> = IrqMutex::new_ranked(LockRank::SlabRegistry, [None; 16]);

fn registered_caches() -> [Option<&'static IrqMutex<SlabCache>>; 16] {
    *TYPED_CACHES.lock()
}

/// A slab cache for objects of one type `T`, like Linux's `kmem_cache_create`.
///
/// Objects come back as [`KBox<T>`], which returns them to this cache when dropped.
pub struct KmemCache<T> {
    cache: IrqMutex<SlabCache>,
    is_registered: spin::Once<()>,
    _type: PhantomData<T>,
}

impl<T> KmemCache<T> {
    /// Creates a cache named `name` for `T` (usable in a `static`; takes no memory yet).
    pub const fn new(name: &'static str) -> Self {
        Self {
            cache: IrqMutex::new_ranked(LockRank::Heap, SlabCache::new(name, size_of::<T>(), align_of::<T>(), None)),
            is_registered: spin::Once::new(),
            _type: PhantomData,
        }
    }

    /// Moves `value` into a new object of this cache.
    pub fn alloc(&'static self, value: T) -> Result<KBox<T>, SlabError> {
        self.is_registered.call_once(|| {
            if let Some(slot) = TYPED_CACHES.lock().iter_mut().find(|s| s.is_none()) {
                *slot = Some(&self.cache);
            }
        });
        let addr = self.cache.lock().alloc(&mut DirectMapBackend)?;
        let ptr = addr as *mut T;
        // SAFETY: the cache returned a fresh object of size_of::<T>() bytes aligned
        // for T, owned by nobody else.
        unsafe { ptr.write(value) };
        Ok(KBox { ptr: NonNull::new(ptr).expect("KmemCache: slab returned null"), cache: self })
    }

    /// Returns this cache's statistics.
    pub fn info(&self) -> SlabInfo {
        self.cache.lock().info()
    }

    /// Gives the cache's empty slabs back to the buddy allocator; returns pages freed.
    pub fn shrink(&self) -> u64 {
        self.cache.lock().shrink(&mut DirectMapBackend)
    }
}

/// An object owned through a [`KmemCache`]; dropped back into it.
pub struct KBox<T: 'static> {
    ptr: NonNull<T>,
    cache: &'static KmemCache<T>,
}

// SAFETY: a KBox owns its T exactly like a Box does.
unsafe impl<T: Send> Send for KBox<T> {}

impl<T> Deref for KBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `ptr` points at a live, initialised T owned by this box.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> DerefMut for KBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`, and `&mut self` makes this the only access.
        unsafe { self.ptr.as_mut() }
    }
}

impl<T> Drop for KBox<T> {
    fn drop(&mut self) {
        // SAFETY: the object is live and owned by us; after this it is never used again.
        unsafe { self.ptr.as_ptr().drop_in_place() };
        let addr = self.ptr.as_ptr() as u64;
        if let Err(e) = self.cache.cache.lock().free(&mut DirectMapBackend, addr) {
            panic!("KBox::drop: {addr:#x}: {e}");
        }
    }
}

