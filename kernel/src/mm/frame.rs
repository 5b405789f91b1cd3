//! Physical frames: the frame table (one [`FrameDesc`] per 4 KiB frame of RAM) and
//! the buddy allocator that owns the free ones, behind one IRQ-safe lock.
//!
//! The pure algorithm is `mm_core::buddy`; this file puts it on real memory:
//! 1. find the end of RAM in the bootloader's memory map;
//! 2. carve the frame table (32 bytes a frame, 0.8 % of RAM) out of the first usable
//!    region big enough, and initialise every descriptor as Reserved through the
//!    direct map;
//! 3. hand every usable region (minus frame 0, the table itself and the AP
//!    trampoline's pages at `smp::TRAMPOLINE_PHYS`) to the buddy allocator, which
//!    builds maximal aligned blocks.
//!
//! Frames the bootloader used (kernel image, its page tables, boot info) and firmware
//! holes stay Reserved forever. Zeroing happens outside the lock.
//!
//! Allocations leave reserves in tiers ([`Reserve`]): user pages leave `min` free
//! frames, page tables and kernel stacks `min/2`, the heap takes the rest, so the
//! heap (and reclaim, which allocates from it) can still grow when everything else
//! has run out. Fault injection (`super::fail`) may fail an allocation on purpose.
//! The replacement policy threads its ring through the descriptors of tracked user
//! frames ([`FrameTableLinks`]).
//!
//! Owning handles: [`NewPage`] (a user frame nobody maps yet), [`OwnedFrames`] (a
//! kernel block), [`LockedPage`] (a user frame locked for I/O: the only way swap gets
//! a user page's bytes to hand to a block device).
//!
//! Single frames go through the per-CPU page lists first (`super::pcp`, Linux's pcp
//! lists): [`alloc`] pops the running CPU's list, [`free`] checks the frame here and
//! pushes it there, and only a refill or a drain of `batch` frames comes to the
//! buddy allocator. Frames on those lists are free memory ([`nr_free_frames`]).
//!
//! Locks: `FRAMES`, near the bottom of the lock order (see [`crate::mm`]): the heap
//! lock may be held when it is taken, never the other way round; a CPU's `Pcp` lock
//! may be held too (refill, drain).

use core::mem::{MaybeUninit, size_of};
use core::sync::atomic::{AtomicU64, Ordering};

use bootloader_api::info::{MemoryRegion, MemoryRegionKind};
use mm_core::fork_family::FamilyPage;
pub use mm_core::buddy::{AllocError, BuddyAllocator, BuddyInfo, FreeError, InvariantError, MAX_ORDER};
pub use mm_core::frame_table::{FrameDesc, FrameFlags, FrameState};

use super::{Frame, Order, PAGE_SIZE, PhysAddr, frame_ptr, memops, phys_to_virt};
use crate::sync::IrqMutex;

static FRAMES: IrqMutex<Option<BuddyAllocator<'static>>> = IrqMutex::new_ranked(crate::sync::LockRank::Frames, None);
static TABLE_INFO: spin::Once<FrameTableInfo> = spin::Once::new();

/// Where the frame table lives and what it costs.
#[derive(Clone, Copy, Debug)]
pub struct FrameTableInfo {
    /// Physical address of the first descriptor.
    pub start: PhysAddr,
    /// Number of descriptors (frames from physical 0 to the end of RAM).
    pub nr_frames: u64,
    /// Bytes the table occupies, rounded up to whole frames.
    pub size_bytes: u64,
    /// Bytes of RAM the table describes: usable, plus the bootloader's (the kernel
    /// image among them), which the table covers too.
    pub ram_bytes: u64,
}

impl FrameTableInfo {
    /// Returns the overhead as hundredths of a percent of usable RAM.
    pub fn overhead_basis_points(&self) -> u64 {
        self.size_bytes * 10_000 / self.ram_bytes.max(1)
    }
}

/// Returns true for the region kinds that are RAM (usable, or used by the bootloader).
fn is_ram(kind: MemoryRegionKind) -> bool {
    matches!(kind, MemoryRegionKind::Usable | MemoryRegionKind::Bootloader)
}

/// Builds the frame table and the buddy allocator. Called once, early in boot.
pub fn init(regions: &[MemoryRegion]) {
    let end_of_ram = regions.iter().filter(|r| is_ram(r.kind)).map(|r| r.end).max().unwrap_or(0);
    let nr_frames = end_of_ram.div_ceil(PAGE_SIZE);
    let size_bytes = (nr_frames * size_of::<FrameDesc>() as u64).next_multiple_of(PAGE_SIZE);
    let table = regions
        .iter()
        .filter(|r| r.kind == MemoryRegionKind::Usable)
        .map(|r| r.start.max(0x10_0000).next_multiple_of(PAGE_SIZE))
        .zip(regions.iter().filter(|r| r.kind == MemoryRegionKind::Usable).map(|r| r.end))
        .find(|&(start, end)| start + size_bytes <= end)
        .map(|(start, _)| start)
        .expect("frame::init: no usable region can hold the frame table");

    let descs = phys_to_virt(PhysAddr::new(table)).as_u64() as *mut FrameDesc;
    for i in 0..nr_frames as usize {
        // SAFETY: [table, table + size_bytes) is usable RAM nobody else uses (the
        // bootloader said so and we have not handed it out), mapped by the direct map;
        // each write initialises one descriptor in bounds.
        unsafe { descs.add(i).write(FrameDesc::new()) };
    }
    // SAFETY: all `nr_frames` descriptors were just initialised; the memory is never
    // handed to the allocator (it is excluded below), so this is the only reference.
    let descs: &'static mut [FrameDesc] = unsafe { core::slice::from_raw_parts_mut(descs, nr_frames as usize) };
    let mut buddy = BuddyAllocator::new(descs, 0);

    // Frames never handed out: the table itself, and the AP trampoline's pages below
    // 1 MiB, which `smp::start_aps` overwrites when it starts the other CPUs (a page
    // table allocated there was overwritten with trampoline code: issue #13). Sorted.
    let trampoline = crate::arch::smp::TRAMPOLINE_PHYS;
    let trampoline_frames = trampoline / PAGE_SIZE..(trampoline + crate::arch::smp::TRAMPOLINE_BYTES) / PAGE_SIZE;
    let table_frames = table / PAGE_SIZE..(table + size_bytes) / PAGE_SIZE;
    let holes = [trampoline_frames, table_frames.clone()];
    for region in regions.iter().filter(|r| r.kind == MemoryRegionKind::Usable) {
        // Frame 0 stays reserved: a zero physical address is too easily a bug.
        let mut first = region.start.next_multiple_of(PAGE_SIZE).max(PAGE_SIZE) / PAGE_SIZE;
        let last = region.end / PAGE_SIZE; // exclusive
        for hole in &holes {
            if first < last.min(hole.start) {
                buddy.add_free_range(Frame::from_pfn(first), last.min(hole.start) - first).expect("frame::init: overlapping memory map");
            }
            first = first.max(hole.end);
        }
        if first < last {
            buddy.add_free_range(Frame::from_pfn(first), last - first).expect("frame::init: overlapping memory map");
        }
    }
    let ram_bytes = crate::bootmem::ram_bytes();
    TABLE_INFO.call_once(|| FrameTableInfo { start: PhysAddr::new(table), nr_frames, size_bytes, ram_bytes });
    super::pcp::init(buddy.nr_free_frames());
    NR_FREE_BUDDY.store(buddy.nr_free_frames(), Ordering::Relaxed);
    *FRAMES.lock() = Some(buddy);
}

/// Runs `f` on the buddy allocator with its lock held.
/// Every change to the allocator's free count is made here (the ring view of the
/// frame table only writes links), so the count is copied out at the end of each
/// hold, for [`nr_free_buddy_frames`] to read without the lock.
#[inline]
pub(super) fn with_buddy<R>(f: impl FnOnce(&mut BuddyAllocator<'static>) -> R) -> R {
    let mut frames = FRAMES.lock();
    let buddy = frames.as_mut().expect("frame: allocator used before init");
    let result = f(buddy);
    NR_FREE_BUDDY.store(buddy.nr_free_frames(), Ordering::Relaxed);
    result
}

/// The buddy allocator's free count as of the end of the last hold of its lock
/// ([`with_buddy`]): exact whenever nobody holds the lock.
static NR_FREE_BUDDY: AtomicU64 = AtomicU64::new(0);

/// Free frames user-page allocations may not take: the kernel's own reserve (heap,
/// page tables, kernel stacks) under memory pressure. Set by `reclaim::init` to the
/// `min` watermark; 0 until then.
static USER_RESERVE: AtomicU64 = AtomicU64::new(0);
/// Free frames page tables and kernel stacks may not take: the heap's own reserve.
/// Reclaim allocates from the heap (candidate lists, swap-cache nodes), so the heap
/// must be able to grow when everything else has run out, or reclaim itself fails
/// (issue #10: `memory allocation of 96 bytes failed` once page tables took the last
/// frame). Set by `reclaim::init` to half the user reserve.
static HEAP_RESERVE: AtomicU64 = AtomicU64::new(0);

/// Sets how many free frames user-page allocations must leave to the kernel, and how
/// many of those page tables and kernel stacks must leave to the heap.
pub fn set_reserves(user_frames: u64, heap_frames: u64) {
    USER_RESERVE.store(user_frames, Ordering::Relaxed);
    HEAP_RESERVE.store(heap_frames, Ordering::Relaxed);
}

/// Returns the (user, heap) reserves in frames.
pub fn reserves() -> (u64, u64) {
    (USER_RESERVE.load(Ordering::Relaxed), HEAP_RESERVE.load(Ordering::Relaxed))
}

/// Which free frames an allocation must leave alone (Linux's watermark tiers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserve {
    /// User pages: leave the whole kernel reserve (the `min` watermark).
    User,
    /// Page tables and kernel stacks: leave the heap's reserve. Their callers can fail
    /// with `NoMemory` (and reclaim and retry); the heap cannot.
    Heap,
    /// The heap (slab pages, large kmalloc) and boot-time allocations: take anything.
    None,
}

impl Reserve {
    /// Returns the reserve an allocation for `state` leaves by default.
    pub fn of(state: FrameState) -> Reserve {
        match state {
            FrameState::User => Reserve::User,
            FrameState::PageTable => Reserve::Heap,
            _ => Reserve::None,
        }
    }

    /// Returns the number of free frames this allocation must leave.
    fn nr_frames(self) -> u64 {
        match self {
            Reserve::User => USER_RESERVE.load(Ordering::Relaxed),
            Reserve::Heap => HEAP_RESERVE.load(Ordering::Relaxed),
            Reserve::None => 0,
        }
    }
}

/// Allocates a block of `2^order` frames for use `state`; the contents are garbage.
///
/// A `User` allocation fails rather than dip into the kernel's reserve, a
/// `PageTable` one rather than dip into the heap's (see [`Reserve`]): the caller
/// reclaims and retries.
pub fn alloc(order: Order, state: FrameState) -> Result<Frame, AllocError> {
    alloc_leaving(order, state, Reserve::of(state))
}

/// Allocates like [`alloc`], leaving the free frames of `reserve` alone.
///
/// Fault injection (`super::fail`) may fail it on purpose: user pages, page tables,
/// and kernel stacks (Kernel frames leaving the heap reserve) are its sites.
pub fn alloc_leaving(order: Order, state: FrameState, reserve: Reserve) -> Result<Frame, AllocError> {
    let site = match (state, reserve) {
        (FrameState::User, _) => Some(super::fail::FailSite::UserPage),
        (FrameState::PageTable, _) => Some(super::fail::FailSite::PageTable),
        (FrameState::Kernel, Reserve::Heap) => Some(super::fail::FailSite::KernelStack),
        _ => None,
    };
    if site.is_some_and(super::fail::should_fail) {
        return Err(AllocError::OutOfMemory);
    }
    alloc_or_drain(order, state, reserve)
}

/// Allocates through the per-CPU lists; if that fails, gives back the free frames
/// parked elsewhere (the pre-zeroed pool, every CPU's lists) and tries once more,
/// so that neither ever makes an allocation fail (`zero_pool.rs`, `pcp.rs`).
fn alloc_or_drain(order: Order, state: FrameState, reserve: Reserve) -> Result<Frame, AllocError> {
    match alloc_fast(order, state, reserve) {
        Err(AllocError::OutOfMemory) if super::zero_pool::drain() + super::pcp::drain_all() > 0 => {
            alloc_fast(order, state, reserve)
        }
        result => result,
    }
}

/// For the fault fast path: a user frame as [`alloc`] gives it, from the running
/// CPU's list (refilled when empty), with no fault injection and no drain of the
/// pre-zeroed pool or the other CPUs' lists: `None` where `alloc` would drain them.
#[inline]
pub(super) fn alloc_user_at_hand() -> Option<Frame> {
    alloc_fast(Order(0), FrameState::User, Reserve::of(FrameState::User)).ok()
}

/// Allocates a single frame from the running CPU's list (refilled from the buddy
/// allocator, leaving `reserve`, when empty), anything else from the buddy allocator.
fn alloc_fast(order: Order, state: FrameState, reserve: Reserve) -> Result<Frame, AllocError> {
    if order.0 != 0 || !super::pcp::is_enabled() {
        return alloc_from_buddy(order, state, reserve);
    }
    let refill = |batch: usize, push: &mut dyn FnMut(Frame)| {
        let nr_reserved = reserve.nr_frames();
        with_buddy(|buddy| {
            // The blocks, largest first; at most as many as fit here (a refill may
            // bring fewer frames than asked).
            // Left uninitialised: a refill mostly takes one or two blocks, and
            // zeroing the 64 entries cost each fault ~11 instructions (one in
            // `batch` refills).
            let mut blocks = [const { MaybeUninit::<(Frame, Order)>::uninit() }; 64];
            let (mut nr, mut nr_blocks) = (0, 0);
            while nr < batch && nr_blocks < blocks.len() {
                let Some(block) = alloc_refill_block(buddy, batch - nr, state, nr_reserved) else { break };
                blocks[nr_blocks].write(block);
                nr_blocks += 1;
                nr += block.1.nr_frames() as usize;
            }
            // The list hands out the frame pushed last first: pushed from the end of
            // the last block down, the frames go out in address order, largest block
            // first.
            for block in blocks[..nr_blocks].iter().rev() {
                // SAFETY: the loop above wrote each of the first `nr_blocks` entries.
                let (head, order) = unsafe { block.assume_init() };
                for pfn in (head.pfn()..head.pfn() + order.nr_frames()).rev() {
                    let frame = Frame::from_pfn(pfn);
                    super::pcp::set_listed(frame);
                    push(frame);
                }
            }
            nr
        })
    };
    super::pcp::alloc(state, refill).unwrap_or_else(|| alloc_from_buddy(order, state, reserve))
}

/// Takes up to `wanted` single frames for a per-CPU list's refill from `buddy` in
/// one block: the largest power of two not above `wanted` that the free lists have
/// and that leaves `nr_reserved` free frames, split into order-0 allocations
/// (`split_allocated`: each frame then looks exactly like an `alloc(Order(0))`).
/// One list removal and one split for the block instead of one allocation per
/// frame (a refill of 63 frames: six blocks). `None` when not even one frame may
/// be taken.
fn alloc_refill_block(buddy: &mut BuddyAllocator<'static>, wanted: usize, state: FrameState, nr_reserved: u64) -> Option<(Frame, Order)> {
    let mut order = (usize::BITS - 1 - wanted.max(1).leading_zeros()).min(u32::from(mm_core::buddy::MAX_ORDER)) as u8;
    loop {
        if buddy.nr_free_frames() >= nr_reserved + Order(order).nr_frames()
            && let Ok(head) = buddy.alloc(Order(order), state)
        {
            if order > 0 {
                buddy.split_allocated(head, Order(order)).expect("frame: a fresh block splits");
            }
            return Some((head, Order(order)));
        }
        if order == 0 {
            return None;
        }
        order -= 1;
    }
}

/// Allocates like [`alloc`], without fault injection (for a caller that rolled the
/// dice itself: `zero_pool::alloc_zeroed_user`).
pub(super) fn alloc_without_injection(order: Order, state: FrameState) -> Result<Frame, AllocError> {
    alloc_or_drain(order, state, Reserve::of(state))
}

/// Allocates from the buddy allocator leaving `reserve`: no fault injection, and no
/// draining of the pre-zeroed pool (which fills itself with this).
pub(super) fn alloc_from_buddy(order: Order, state: FrameState, reserve: Reserve) -> Result<Frame, AllocError> {
    let nr_reserved = reserve.nr_frames();
    with_buddy(|buddy| {
        if buddy.nr_free_frames() < nr_reserved + order.nr_frames() {
            return Err(AllocError::OutOfMemory);
        }
        buddy.alloc(order, state)
    })
}

/// Allocates a zero-filled block of `2^order` frames for use `state`.
pub fn alloc_zeroed(order: Order, state: FrameState) -> Result<Frame, AllocError> {
    alloc_zeroed_leaving(order, state, Reserve::of(state))
}

/// Allocates a zero-filled block like [`alloc_leaving`].
pub fn alloc_zeroed_leaving(order: Order, state: FrameState, reserve: Reserve) -> Result<Frame, AllocError> {
    let frame = alloc_leaving(order, state, reserve)?;
    for i in 0..order.nr_frames() {
        // SAFETY: the block was just allocated and nobody else knows it yet.
        unsafe { memops::zero_page(frame + i) };
    }
    Ok(frame)
}

/// Returns the block of `2^order` frames starting at `frame` to the allocator.
///
/// What the frame table can see is checked, reported and not obeyed: a double free,
/// a frame never allocated, the wrong order, a frame still mapped, referenced by
/// another holder, locked for I/O or in the swap cache ([`FreeError::InUse`]).
///
/// # Panics
/// If `frame` is still on the replacement policy's ring while nothing maps it (its
/// links would be lost and the ring broken): the owner must untrack it first
/// (`rmap::free_user_frame`). A frame still mapped is refused with
/// [`FreeError::InUse`] before this check.
///
/// # Safety
/// The caller owns the block and nothing uses it any more: no page table maps it
/// (user PTEs, kernel mappings, a table that still links it), no pointer into it is
/// live, no device DMA targets it. The frame table cannot see all of that.
pub unsafe fn free(frame: Frame, order: Order) -> Result<(), FreeError> {
    with_buddy(|buddy| {
        if buddy.contains(frame) {
            let desc = buddy.desc(frame);
            if desc.state() == FrameState::User && desc.next().is_some() && desc.map_count() == 0 {
                panic!("frame::free: {frame:?} is still tracked by the replacement policy");
            }
        }
        free_or_recycle(buddy, frame, order)
    })
}

/// Frees `frame` to the buddy allocator, or, if it is a single frame of a state with
/// a per-CPU list, checks and resets it for that list (`BuddyAllocator::recycle_single`),
/// marks it listed and puts it on the running CPU's list, all in the caller's hold
/// of the frame lock (`pcp::free_locked`: the list takes no lock of its own here).
///
/// A listed frame (on a list, or on its way) is refused as [`FreeError::AlreadyFree`]
/// whichever CPU frees it: its descriptor looks allocated, its listed bit does not
/// (`pcp::is_listed`).
fn free_or_recycle(buddy: &mut BuddyAllocator<'static>, frame: Frame, order: Order) -> Result<(), FreeError> {
    if super::pcp::is_listed(frame) {
        return Err(FreeError::AlreadyFree(frame));
    }
    let has_list = order.0 == 0 && super::pcp::is_enabled() && buddy.contains(frame) && super::pcp::has_list(buddy.desc(frame).state());
    if !has_list {
        return buddy.free(frame, order);
    }
    let state = buddy.recycle_single(frame)?;
    super::pcp::set_listed(frame);
    super::pcp::free_locked(buddy, frame, state);
    Ok(())
}

/// Gives a listed frame back to the buddy allocator (a drain), in a hold of `FRAMES`
/// (`buddy` is its data).
pub(super) fn free_listed(buddy: &mut BuddyAllocator<'static>, frame: Frame) {
    super::pcp::clear_listed(frame);
    if let Err(e) = buddy.free(frame, Order(0)) {
        panic!("pcp: a listed frame cannot be freed: {e}");
    }
}

/// The frame table as the replacement policy's per-page store: a tracked user
/// frame's ring links are its descriptor's `next`/`prev` (free for the owner of an
/// allocated frame), its age the descriptor's policy age. So tracking a frame
/// allocates nothing (see `mm_core::reclaim::Ring`). Pages are named by pfn.
///
/// Opening it takes the frame lock, once per ring operation; the policy opens it
/// with its own lock held (lock order: policy, then frames).
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameTableLinks;

/// The frame table, locked, seen as ring links (see [`FrameTableLinks`]).
pub struct FrameTableView<'a> {
    frames: crate::sync::IrqMutexGuard<'a, Option<BuddyAllocator<'static>>>,
}

impl FrameTableView<'_> {
    fn buddy(&self) -> &BuddyAllocator<'static> {
        self.frames.as_ref().expect("frame: allocator used before init")
    }

    fn buddy_mut(&mut self) -> &mut BuddyAllocator<'static> {
        self.frames.as_mut().expect("frame: allocator used before init")
    }

    fn index_of(&self, pfn: u64) -> u32 {
        self.buddy().index_of(Frame::from_pfn(pfn)).expect("FrameTableLinks: frame outside the frame table")
    }
}

/// Every handle opens the one frame table, so policies with several lists share it.
impl mm_core::reclaim::SharedRingStore for FrameTableLinks {}

impl mm_core::reclaim::RingStore for FrameTableLinks {
    type Links<'a> = FrameTableView<'a>;
    #[inline]
    fn open(&mut self) -> FrameTableView<'_> {
        let mut view = FrameTableView { frames: FRAMES.lock() };
        if PENDING_FIRST_MAPPING.load(Ordering::Relaxed) != NO_PENDING_MAPPING {
            apply_pending_first_mapping(view.buddy_mut());
        }
        view
    }
}

/// The first mapping of a fresh user frame that `reclaim::track_new` asked the
/// policy's next opening of the frame table to record (`pfn`, and its place packed by
/// `FamilyPage::pack`, in two words), so that the mapping count and the ring insert
/// share one hold of the frame lock (the fault path's common case took it twice).
/// Set, applied and cleared only under the policy lock (every ring operation runs
/// under it: the policies live in `reclaim::POLICY`), so one slot serves every CPU.
static PENDING_FIRST_MAPPING: AtomicU64 = AtomicU64::new(NO_PENDING_MAPPING);
static PENDING_FIRST_MAPPING_AT: AtomicU64 = AtomicU64::new(0);
/// [`PENDING_FIRST_MAPPING`] when nothing is pending (no frame has this number).
const NO_PENDING_MAPPING: u64 = u64::MAX;

/// Asks the next [`FrameTableLinks`] opening to record `frame`'s first mapping at
/// `at` ([`map_new_user_page`] in the same hold). Call with the policy lock held,
/// then [`finish_first_mapping`] before dropping it.
pub(super) fn defer_first_mapping(frame: Frame, at: FamilyPage) {
    debug_assert_eq!(PENDING_FIRST_MAPPING.load(Ordering::Relaxed), NO_PENDING_MAPPING, "defer_first_mapping: one is pending");
    PENDING_FIRST_MAPPING_AT.store(at.pack(), Ordering::Relaxed);
    PENDING_FIRST_MAPPING.store(frame.pfn(), Ordering::Relaxed);
}

/// Records the mapping [`defer_first_mapping`] left, if no opening of the frame
/// table did (a policy whose insert did not open it). Call under the policy lock.
pub(super) fn finish_first_mapping() {
    if PENDING_FIRST_MAPPING.load(Ordering::Relaxed) != NO_PENDING_MAPPING {
        with_buddy(apply_pending_first_mapping);
    }
}

/// Records the pending first mapping in the frame table (`buddy`: the frame lock
/// held) and clears it.
#[inline(never)]
fn apply_pending_first_mapping(buddy: &mut BuddyAllocator<'static>) {
    let pfn = PENDING_FIRST_MAPPING.swap(NO_PENDING_MAPPING, Ordering::Relaxed);
    let at = FamilyPage::unpack(PENDING_FIRST_MAPPING_AT.load(Ordering::Relaxed)).expect("frame: a pending mapping has a place");
    buddy.desc_mut(Frame::from_pfn(pfn)).add_mapping(at);
}

impl mm_core::reclaim::RingLinks for FrameTableView<'_> {
    fn links(&self, pfn: u64) -> Option<(u64, u64)> {
        let buddy = self.buddy();
        let desc = buddy.desc(Frame::from_pfn(pfn));
        // Only a user frame can be on the ring: a free frame's links belong to the
        // buddy's free lists (reading them as ring links made `untrack` of a frame
        // freed meanwhile unlink buddy-list neighbours from a ring they were never on).
        if desc.state() != FrameState::User {
            return None;
        }
        let (prev, next) = (desc.prev()?, desc.next()?);
        Some((buddy.frame_at(prev).pfn(), buddy.frame_at(next).pfn()))
    }

    fn set_links(&mut self, pfn: u64, prev: u64, next: u64) {
        let (prev, next) = (self.index_of(prev), self.index_of(next));
        let desc = self.buddy_mut().desc_mut(Frame::from_pfn(pfn));
        assert_eq!(desc.state(), FrameState::User, "FrameTableLinks: only user frames are tracked");
        desc.set_prev(Some(prev));
        desc.set_next(Some(next));
    }

    /// The three descriptors of an insertion in one pass (the fault path's
    /// policy insert): the same checks as `set_links`, `set_next` and `set_prev`.
    #[inline]
    fn link_between(&mut self, pfn: u64, prev: u64, next: u64, age: u8) {
        let (index, prev_index, next_index) = (self.index_of(pfn), self.index_of(prev), self.index_of(next));
        let buddy = self.buddy_mut();
        let desc = buddy.desc_mut(Frame::from_pfn(pfn));
        assert_eq!(desc.state(), FrameState::User, "FrameTableLinks: only user frames are tracked");
        desc.set_prev(Some(prev_index));
        desc.set_next(Some(next_index));
        desc.set_policy_age(age);
        let desc = buddy.desc_mut(Frame::from_pfn(prev));
        assert!(desc.state() == FrameState::User && desc.next().is_some(), "FrameTableLinks: set_next of a frame not on the ring");
        desc.set_next(Some(index));
        let desc = buddy.desc_mut(Frame::from_pfn(next));
        assert!(desc.state() == FrameState::User && desc.prev().is_some(), "FrameTableLinks: set_prev of a frame not on the ring");
        desc.set_prev(Some(index));
    }

    fn set_next(&mut self, pfn: u64, next: u64) {
        let next = self.index_of(next);
        let desc = self.buddy_mut().desc_mut(Frame::from_pfn(pfn));
        assert!(desc.state() == FrameState::User && desc.next().is_some(), "FrameTableLinks: set_next of a frame not on the ring");
        desc.set_next(Some(next));
    }

    fn set_prev(&mut self, pfn: u64, prev: u64) {
        let prev = self.index_of(prev);
        let desc = self.buddy_mut().desc_mut(Frame::from_pfn(pfn));
        assert!(desc.state() == FrameState::User && desc.prev().is_some(), "FrameTableLinks: set_prev of a frame not on the ring");
        desc.set_prev(Some(prev));
    }

    fn clear_links(&mut self, pfn: u64) {
        let desc = self.buddy_mut().desc_mut(Frame::from_pfn(pfn));
        desc.set_prev(None);
        desc.set_next(None);
        desc.set_policy_age(0);
    }

    fn age(&self, pfn: u64) -> u8 {
        self.buddy().desc(Frame::from_pfn(pfn)).policy_age()
    }

    fn set_age(&mut self, pfn: u64, age: u8) {
        self.buddy_mut().desc_mut(Frame::from_pfn(pfn)).set_policy_age(age);
    }
}

/// Runs `f` on the descriptor of `frame` (refcounts, flags, links) under the lock.
pub fn with_desc<R>(frame: Frame, f: impl FnOnce(&mut FrameDesc) -> R) -> R {
    with_buddy(|buddy| f(buddy.desc_mut(frame)))
}

/// Adds one mapping's reference to each user frame in `mappings`: one more PTE
/// maps it, at its place (a page-cache page records no place: `file_rmap` finds it) (fork, swap-in, the undo of an eviction); refcount and
/// map count go up by one, under one acquisition of the lock (fork passes a batch).
/// (Not Linux's `get_user_pages`, which pins the pages behind user addresses.)
pub fn add_mapping_refs(mappings: &[(Frame, FamilyPage)]) {
    with_buddy(|buddy| {
        for &(frame, at) in mappings {
            let desc = buddy.desc_mut(frame);
            debug_assert_eq!(desc.state(), FrameState::User, "add_mapping_refs: not a user frame");
            desc.get_ref();
            if desc.has_flags(FrameFlags::FILE) {
                desc.add_file_mapping(); // a page-cache page: counted, found by the file rmap
            } else {
                desc.add_mapping(at);
            }
        }
    })
}

/// Records the first mapping of a freshly allocated user frame, at `at` (its
/// allocation reference becomes the mapping's reference).
pub fn map_new_user_page(frame: Frame, at: FamilyPage) {
    with_buddy(|buddy| {
        buddy.desc_mut(frame).add_mapping(at);
    })
}

/// Drops the mapping's reference of the PTE at `at` that mapped a user frame (map
/// count and refcount down by one). Returns the refcount and map count left, and the flags;
/// the caller frees the frame at refcount 0.
///
/// `is_dirty`: the PTE had its Dirty bit, so a swap-cache copy of the page on disk
/// is stale: the frame gets [`FrameFlags::DIRTY`].
pub fn drop_mapping_ref(frame: Frame, at: FamilyPage, is_dirty: bool) -> (u32, u32, FrameFlags) {
    with_buddy(|buddy| drop_mapping_ref_locked(buddy.desc_mut(frame), at, is_dirty))
}

/// [`drop_mapping_ref`], also returning the owner `(cache id, index)` of a
/// page-cache page when `is_dirty` (`FrameDesc::file_owner`), read under the same
/// hold of the lock: `rmap::unmap` notes the dirty page in its cache.
pub fn drop_mapping_ref_and_owner(frame: Frame, at: FamilyPage, is_dirty: bool) -> (u32, u32, FrameFlags, Option<(u32, u64)>) {
    with_buddy(|buddy| {
        let desc = buddy.desc_mut(frame);
        let owner = if is_dirty { desc.file_owner() } else { None };
        let (refcount, map_count, flags) = drop_mapping_ref_locked(desc, at, is_dirty);
        (refcount, map_count, flags, owner)
    })
}

/// What [`drop_mapping_refs`] found for one frame, after its reference went.
#[derive(Clone, Copy, Debug, Default)]
pub struct DroppedRef {
    /// The refcount left (0: the caller frees the frame).
    pub refcount: u32,
    /// The map count left.
    pub map_count: u32,
    /// The frame's flags afterwards.
    pub flags: FrameFlags,
    /// A merged page (`ksm.rs`) or the head of a huge page: freed its own way.
    pub is_special: bool,
    /// The page-cache page's (cache id, index), when a dirty PTE mapped it.
    pub dirty_file_owner: Option<(u32, u64)>,
}

/// Drops the mapping reference of each `(frame, place, is_dirty)` in `unmapped`,
/// as [`drop_mapping_ref`] does for one, under one hold of the lock (munmap and
/// exit in batches: `rmap::unmap_batch`); writes what is left of each frame to
/// the same position of `out` (at least as long as `unmapped`).
pub fn drop_mapping_refs(unmapped: &[(Frame, FamilyPage, bool)], out: &mut [DroppedRef]) {
    with_buddy(|buddy| {
        for (&(frame, at, is_dirty), out) in unmapped.iter().zip(out.iter_mut()) {
            let desc = buddy.desc_mut(frame);
            let dirty_file_owner = if is_dirty { desc.file_owner() } else { None };
            let (refcount, map_count, flags) = drop_mapping_ref_locked(desc, at, is_dirty);
            let is_special = desc.is_ksm() || desc.is_compound_head();
            *out = DroppedRef { refcount, map_count, flags, is_special, dirty_file_owner };
        }
    })
}

/// Frees the user frames of `frames`, each as [`free_unreferenced_user_frame`]
/// frees one (refcount 0, untracked by the replacement policy), taking the lock
/// once for up to [`FREE_BATCH`] of them. Stops at the first frame refused and
/// returns its error: those before it are freed, it and those after are not.
pub fn free_unreferenced_user_frames(frames: &[Frame]) -> Result<(), FreeError> {
    for chunk in frames.chunks(FREE_BATCH) {
        with_buddy(|buddy| {
            for &frame in chunk {
                check_unreferenced_user(buddy, frame)?;
                free_or_recycle(buddy, frame, Order(0))?;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Frames [`free_unreferenced_user_frames`] frees under one hold of the lock.
pub const FREE_BATCH: usize = 64;

/// Refuses a frame that is not a user frame without references, untracked.
fn check_unreferenced_user(buddy: &BuddyAllocator<'static>, frame: Frame) -> Result<(), FreeError> {
    let desc = buddy.desc(frame);
    if desc.state() != FrameState::User || desc.refcount() != 0 {
        return Err(FreeError::InUse { frame, state: desc.state(), refcount: desc.refcount(), map_count: desc.map_count(), flags: desc.flags() });
    }
    if desc.next().is_some() {
        panic!("frame::free_unreferenced_user_frames: {frame:?} is still tracked by the replacement policy");
    }
    Ok(())
}

/// The body of [`drop_mapping_ref`], with the frame lock held.
fn drop_mapping_ref_locked(desc: &mut FrameDesc, at: FamilyPage, is_dirty: bool) -> (u32, u32, FrameFlags) {
    debug_assert_eq!(desc.state(), FrameState::User, "drop_mapping_ref: not a user frame");
    if is_dirty && desc.has_flags(FrameFlags::SWAP_CACHE) {
        desc.insert_flags(FrameFlags::DIRTY);
    }
    let map_count = if desc.has_flags(FrameFlags::FILE) { desc.remove_file_mapping() } else { desc.remove_mapping(at) };
    (desc.put_ref(), map_count, desc.flags())
}

/// Drops a reference that is not a mapping (the swap cache's); returns the refcount
/// left. The caller frees the frame at 0.
pub fn put_ref(frame: Frame) -> u32 {
    with_buddy(|buddy| buddy.desc_mut(frame).put_ref())
}

/// Copies `bytes` into `frame` at `offset` through the direct map.
///
/// # Safety
/// The caller owns `frame` for writing: it is RAM allocated to the caller (or
/// mapped by a user page table the caller has locked), no Rust reference into it
/// is live and no device reads or writes it meanwhile. Writing a frame owned by
/// anyone else (a page table, a slab, another process's page) corrupts it.
pub unsafe fn write_bytes(frame: Frame, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= PAGE_SIZE as usize, "frame::write_bytes: past the end of the frame");
    // SAFETY: the range is inside one frame (checked), reached through the direct map;
    // the caller owns the frame (this function's contract).
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), frame_ptr(frame).add(offset), bytes.len()) };
}

/// Copies `buf.len()` bytes out of `frame` at `offset` through the direct map.
///
/// # Safety
/// `frame` is RAM and nothing writes it during the call (no device DMA into it,
/// no mutable reference into it).
pub unsafe fn read_bytes(frame: Frame, offset: usize, buf: &mut [u8]) {
    assert!(offset + buf.len() <= PAGE_SIZE as usize, "frame::read_bytes: past the end of the frame");
    // SAFETY: the range is inside one frame (checked), reached through the direct map;
    // nothing writes the frame meanwhile (this function's contract).
    unsafe { core::ptr::copy_nonoverlapping(frame_ptr(frame).add(offset), buf.as_mut_ptr(), buf.len()) };
}

/// Returns buddyinfo: free blocks per order and frame totals. `nr_free_frames`
/// counts the frames on the per-CPU lists and in the pre-zeroed pool too (free
/// memory: meminfo's MemFree, `memstat`, `sysinfo`, as [`nr_free_frames`]);
/// `nr_free_blocks` are the buddy allocator's lists only (`/proc/buddyinfo`).
///
/// With several CPUs an idle one fills the pool at any time: counting the pool
/// out made free memory shrink by up to 16 MiB while a program watched it (the
/// `ksm` program's "frames freed" with `--smp 2`, issue #13).
pub fn buddyinfo() -> BuddyInfo {
    let mut info = with_buddy(|buddy| buddy.buddyinfo());
    info.nr_free_frames += super::pcp::nr_listed() + super::zero_pool::nr_pooled();
    info
}

/// Returns the number of free frames: the buddy allocator's, the per-CPU lists' and
/// the pre-zeroed pool's.
pub fn nr_free_frames() -> u64 {
    nr_free_buddy_frames() + super::pcp::nr_listed() + super::zero_pool::nr_pooled()
}

/// Returns the number of free frames exactly (the buddy allocator's, the per-CPU
/// lists', the pre-zeroed pool's), for the audit and the tests that compare counts.
///
/// [`nr_free_frames`] adds three counters read one after the other; a frame that
/// moves between two of those places meanwhile (an idle CPU taking it off the buddy
/// allocator for the pool, a refill of another CPU's list) can be read in both or in
/// neither, so with several CPUs the sum is off by a frame or more now and then
/// (`tests/fuzz.rs` saw its count of free frames one or two high before a run, and
/// "leaked" them after). Every such move changes both counts inside one hold of the
/// frame lock or of the pool's lock; this reads all three holding both. Allocations
/// and frees change a single count, so they need no lock to be seen whole.
pub fn nr_free_frames_exact() -> u64 {
    let (nr, nr_pooled) = super::zero_pool::with_pool_counted(|| with_buddy(|buddy| buddy.nr_free_frames() + super::pcp::nr_listed()));
    nr + nr_pooled
}

/// Returns the number of frames on the buddy allocator's free lists (without the
/// pre-zeroed frames of `zero_pool`, which are free memory too). Read without the
/// frame lock (the fault path asks on every fault, through `wake_kswapd`): the
/// count as the last hold of the lock left it.
#[inline]
pub fn nr_free_buddy_frames() -> u64 {
    NR_FREE_BUDDY.load(Ordering::Relaxed)
}

/// Returns the number of frames in `state`, listed frames not counted (a walk of
/// the whole frame table: for the audit).
pub fn nr_frames_in_state(state: FrameState) -> u64 {
    with_buddy(|buddy| {
        let (base, nr) = (buddy.base_pfn(), buddy.nr_frames());
        let is_in_state = |pfn| buddy.desc(Frame::from_pfn(pfn)).state() == state && !super::pcp::is_listed(Frame::from_pfn(pfn));
        (base..base + nr).filter(|&pfn| is_in_state(pfn)).count() as u64
    })
}

/// Returns true if every byte of `frame` is zero. Reading RAM through the direct
/// map cannot harm it; a frame another CPU writes meanwhile gives a stale answer, so
/// callers ask about frames nobody writes (the pre-zeroed pool's).
pub fn is_zero(frame: Frame) -> bool {
    let ptr = super::frame_ptr(frame) as *const u64;
    // SAFETY: the direct map covers every frame with 4096 readable, 8-aligned bytes;
    // reading them has no side effect.
    (0..PAGE_SIZE as usize / 8).all(|i| unsafe { ptr.add(i).read_volatile() } == 0)
}

/// Checks the allocator's invariants (O(frames): for tests and debugging).
pub fn check_invariants() -> Result<(), InvariantError> {
    with_buddy(|buddy| buddy.check_invariants())
}

/// Returns where the frame table is and its cost.
pub fn table_info() -> FrameTableInfo {
    *TABLE_INFO.get().expect("frame: table_info before init")
}

/// Frees a user frame whose last reference is gone (`refcount` and `map_count` 0,
/// not in the swap cache, not locked): the frame table itself proves that no page
/// table and no cache holds it, which is why this is safe where [`free`] is not.
/// A frame that is not such a frame is refused ([`FreeError::InUse`] or another
/// error) and left as it is.
pub fn free_unreferenced_user_frame(frame: Frame) -> Result<(), FreeError> {
    with_buddy(|buddy| {
        let desc = buddy.desc(frame);
        if desc.state() != FrameState::User || desc.refcount() != 0 {
            return Err(FreeError::InUse {
                frame,
                state: desc.state(),
                refcount: desc.refcount(),
                map_count: desc.map_count(),
                flags: desc.flags(),
            });
        }
        if desc.next().is_some() {
            panic!("frame::free_unreferenced_user_frame: {frame:?} is still tracked by the replacement policy");
        }
        free_or_recycle(buddy, frame, Order(0))
    })
}

/// Allocates an order-9 `User` block (refcount 1, mapped nowhere yet) holding a
/// copy of the transparent huge page headed by `src`: the copy-on-write of a huge
/// page shared by fork (`thp::do_huge_wp_fault`). `src` must stay allocated and
/// unwritten during the copy (every holder maps it read-only), as for
/// [`NewPage::copy_from`]. Fails when no order-9 block is free.
pub fn alloc_huge_copy(src: Frame) -> Result<Frame, AllocError> {
    let order = Order(9);
    let new = alloc(order, FrameState::User)?;
    for i in 0..order.nr_frames() {
        // SAFETY: the destination block was just allocated and nobody else knows it
        // yet; `src` is stable during the copy (this function's documented condition).
        unsafe { memops::copy_page(new + i, src + i) };
    }
    Ok(new)
}

/// The frames of a transparent huge page (an order-9 `User` block mapped by one
/// 2 MiB leaf) become 512 independent user frames, each mapped once, at
/// `first.page + i` (the head already is): the split of a huge mapping, done under
/// one acquisition of the lock. The head's counts are kept; each other frame gets
/// refcount 1 and map count 1, as if a 4 KiB fault had mapped it.
pub fn split_huge_user_block(head: Frame, first: FamilyPage) {
    with_buddy(|buddy| {
        debug_assert!(buddy.desc(head).is_compound_head(), "split_huge_user_block: {head:?} heads no block");
        buddy.split_allocated(head, Order(9)).unwrap_or_else(|e| panic!("split_huge_user_block: {e}"));
        for i in 1..Order(9).nr_frames() {
            let page = super::Page::containing_address(first.page.start_address() + i * PAGE_SIZE);
            let at = FamilyPage { family: first.family, page };
            buddy.desc_mut(head + i).add_mapping(at);
        }
    })
}

/// Frees a transparent huge page whose last reference is gone: the order-9 block
/// headed by `head` (refcount and map count 0). Refused, changing nothing, as
/// [`free_unreferenced_user_frame`] refuses.
pub fn free_unreferenced_huge_block(head: Frame) -> Result<(), FreeError> {
    with_buddy(|buddy| {
        let desc = buddy.desc(head);
        if desc.state() != FrameState::User || desc.refcount() != 0 || !desc.is_compound_head() {
            return Err(FreeError::InUse {
                frame: head,
                state: desc.state(),
                refcount: desc.refcount(),
                map_count: desc.map_count(),
                flags: desc.flags(),
            });
        }
        buddy.free(head, Order(desc.order()))
    })
}

/// Runs `f` on the allocator, read-only, under one hold of its lock: for scans of
/// many frames' descriptors (`/proc/kpageflags`). `f` must not allocate.
pub fn with_buddy_read<R>(f: impl FnOnce(&BuddyAllocator<'static>) -> R) -> R {
    with_buddy(|buddy| f(buddy))
}

/// Returns the frame that holds the references of `frame`: itself, or the head of
/// the transparent huge page it is a tail of (tails of a mapped huge page keep no
/// counts of their own).
pub fn reference_holder(frame: Frame) -> Frame {
    with_buddy(|buddy| {
        let desc = buddy.desc(frame);
        if desc.state() != FrameState::User || desc.has_flags(FrameFlags::ALLOC_HEAD) {
            return frame;
        }
        let head = Frame::from_pfn(frame.pfn() & !(Order(9).nr_frames() - 1));
        if buddy.contains(head) && buddy.desc(head).is_compound_head() { head } else { frame }
    })
}

/// What the frames of one 2 MiB-aligned block are, for compaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlockCensus {
    /// Free frames.
    pub nr_free: u64,
    /// Movable frames ([`is_movable`]).
    pub nr_movable: u64,
    /// Anything else: kernel, slab, page-table, reserved, pinned, locked, cached
    /// or huge frames, which compaction leaves alone.
    pub nr_unmovable: u64,
}

/// Returns true if compaction may move this frame: a mapped 4 KiB user frame
/// whose only references are its PTEs (no pin, not in the swap cache, not locked
/// for I/O, not part of a huge page).
fn desc_is_movable(desc: &FrameDesc) -> bool {
    desc.state() == FrameState::User
        && desc.has_flags(FrameFlags::ALLOC_HEAD)
        && desc.order() == 0
        && desc.map_count() > 0
        && desc.refcount() == desc.map_count()
        && !desc.flags().intersects(FrameFlags::LOCKED | FrameFlags::SWAP_CACHE)
        && !desc.is_ksm() // merged pages stay put: moving one would rewrite every place of it (`mm/ksm.rs`)
}

/// Returns true if compaction may move `frame` now (see [`BlockCensus`]).
pub fn is_movable(frame: Frame) -> bool {
    with_buddy(|buddy| buddy.contains(frame) && desc_is_movable(buddy.desc(frame)))
}

/// Counts the free, movable and unmovable frames of the `nr` frames from `first`;
/// `None` if part of the range is outside the frame table.
pub fn block_census(first: Frame, nr: u64) -> Option<BlockCensus> {
    with_buddy(|buddy| {
        let mut census = BlockCensus::default();
        for i in 0..nr {
            let frame = first + i;
            if !buddy.contains(frame) {
                return None;
            }
            let desc = buddy.desc(frame);
            if desc.state() == FrameState::Free || super::pcp::is_listed(frame) {
                census.nr_free += 1;
            } else if desc_is_movable(desc) {
                census.nr_movable += 1;
            } else {
                census.nr_unmovable += 1;
            }
        }
        Some(census)
    })
}

/// What the frames in use hold, counted by one walk of the frame table
/// (`/proc/meminfo`): the figures come from the frame descriptors themselves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemCensus {
    /// Frames holding page tables (PageTables).
    pub nr_page_table: u64,
    /// Mapped anonymous user frames: not page cache (AnonPages).
    pub nr_anon_mapped: u64,
    /// Page-cache frames some PTE maps (Mapped).
    pub nr_file_mapped: u64,
    /// Anonymous frames that are part of a mapped huge page (AnonHugePages).
    pub nr_anon_huge: u64,
}

/// Walks every frame and counts what it holds (see [`MemCensus`]).
pub fn mem_census() -> MemCensus {
    with_buddy(|buddy| {
        let mut census = MemCensus::default();
        let base = buddy.base_pfn();
        let mut pfn = base;
        while pfn < base + buddy.nr_frames() {
            let desc = buddy.desc(Frame::from_pfn(pfn));
            // A block's head describes the whole block (a huge page: 512 frames).
            let nr = if desc.state() != FrameState::Free && desc.has_flags(FrameFlags::ALLOC_HEAD) {
                1u64 << desc.order()
            } else {
                1
            };
            match desc.state() {
                FrameState::PageTable if !super::pcp::is_listed(Frame::from_pfn(pfn)) => census.nr_page_table += 1,
                FrameState::User if desc.map_count() > 0 && desc.has_flags(FrameFlags::ALLOC_HEAD) => {
                    if desc.has_flags(FrameFlags::FILE) {
                        census.nr_file_mapped += nr;
                    } else {
                        census.nr_anon_mapped += nr;
                        if nr > 1 {
                            census.nr_anon_huge += nr;
                        }
                    }
                    pfn += nr;
                    continue;
                }
                _ => {}
            }
            pfn += 1;
        }
        census
    })
}

/// Returns the frames the table describes: the first and how many.
pub fn managed_frames() -> (Frame, u64) {
    with_buddy(|buddy| (Frame::from_pfn(buddy.base_pfn()), buddy.nr_frames()))
}

/// Splits the allocated block of `order` at `head` into order-0 frames that are
/// freed one by one (see `BuddyAllocator::split_allocated`).
///
/// # Safety
/// The caller owns the block (it allocated it and nothing else refers to it) and
/// from now on frees each frame with order 0.
pub unsafe fn split_owned_block(head: Frame, order: Order) -> Result<(), FreeError> {
    with_buddy(|buddy| buddy.split_allocated(head, order))
}

/// A freshly allocated user frame that no page table maps yet.
///
/// Nobody else can see it, so its owner fills it with safe methods (zero, copy,
/// write); [`NewPage::into_mapped`] hands it to the page tables once a PTE maps it,
/// and dropping it unmapped frees it. Not `Clone` or `Copy`: one owner.
#[derive(Debug)]
pub struct NewPage {
    frame: Frame,
}

impl NewPage {
    /// Allocates a user frame with garbage contents (it must be filled before it is mapped).
    pub fn alloc() -> Result<NewPage, AllocError> {
        Ok(NewPage { frame: alloc(Order(0), FrameState::User)? })
    }

    /// Allocates a zero-filled user frame: a pre-zeroed one from `zero_pool` if
    /// there is one, else a frame zeroed now.
    pub fn alloc_zeroed() -> Result<NewPage, AllocError> {
        Ok(NewPage { frame: super::zero_pool::alloc_zeroed_user()? })
    }

    /// For the fault fast path: a user frame from the running CPU's page list
    /// (refilled from the buddy allocator when empty); `None` if the buddy
    /// allocator is short too, or fault injection is on: the caller then takes the
    /// general path, [`alloc`](Self::alloc), which drains the pools first.
    #[inline]
    pub fn take_listed() -> Option<NewPage> {
        if super::fail::is_armed() {
            return None;
        }
        Some(NewPage { frame: alloc_user_at_hand()? })
    }

    /// For the fault fast path: [`alloc_zeroed`](Self::alloc_zeroed) from the
    /// pre-zeroed pool or [`take_listed`](Self::take_listed) only (`None`
    /// otherwise, as there), counted as `alloc_zeroed` counts.
    #[inline]
    pub fn take_listed_zeroed() -> Option<NewPage> {
        if super::fail::is_armed() {
            return None;
        }
        super::zero_pool::take_zeroed_at_hand().map(|frame| NewPage { frame })
    }

    /// Returns the frame (to put in a PTE).
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Fills the frame with zeros.
    pub fn zero(&mut self) {
        // SAFETY: the frame is ours alone: allocated by `alloc`, mapped nowhere yet.
        unsafe { memops::zero_page(self.frame) }
    }

    /// Copies the contents of `src`, a frame the caller keeps allocated and
    /// unwritten during the copy (a page mapped read-only, say).
    pub fn copy_from(&mut self, src: Frame) {
        // SAFETY: the destination is ours alone (as in `zero`); a stable `src` is
        // this method's documented condition, and reading RAM cannot corrupt it.
        unsafe { memops::copy_page(self.frame, src) }
    }

    /// Returns the frame's bytes to fill in place (a disk read straight into it).
    pub fn bytes_mut(&mut self) -> &mut PageBytes {
        // SAFETY: the frame is ours alone (as in `zero`), mapped in the direct map,
        // one page long and page-aligned; the borrow of `self` keeps it ours.
        unsafe { &mut *frame_ptr(self.frame).cast::<PageBytes>() }
    }

    /// Copies `bytes` into the frame at byte `offset`.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        // SAFETY: the frame is ours alone (as in `zero`); `write_bytes` checks bounds.
        unsafe { write_bytes(self.frame, offset, bytes) }
    }

    /// Gives the frame to the page tables: a PTE maps it now, and the mapping's
    /// reference (the allocation's refcount of 1) will free it.
    pub fn into_mapped(self) -> Frame {
        let frame = self.frame;
        core::mem::forget(self);
        frame
    }
}

impl Drop for NewPage {
    fn drop(&mut self) {
        // SAFETY: never mapped (`into_mapped` forgets the handle), so nothing uses it.
        if let Err(e) = unsafe { free(self.frame, Order(0)) } {
            panic!("NewPage::drop: {e}");
        }
    }
}

/// An owned block of frames, freed when dropped. Not `Clone`: one owner per block.
#[derive(Debug)]
pub struct OwnedFrames {
    start: Frame,
    order: Order,
}

impl OwnedFrames {
    /// Allocates a zeroed block of `2^order` kernel frames.
    pub fn new_zeroed(order: Order) -> Result<Self, AllocError> {
        Ok(Self { start: alloc_zeroed(order, FrameState::Kernel)?, order })
    }

    /// Allocates a zeroed block of `2^order` kernel frames leaving the free frames of
    /// `reserve` alone: file data and pipe buffers leave the user reserve
    /// (`Reserve::User`), so that they fail (ENOSPC/ENOMEM) before the heap runs dry.
    pub fn new_zeroed_leaving(order: Order, reserve: Reserve) -> Result<Self, AllocError> {
        Ok(Self { start: alloc_zeroed_leaving(order, FrameState::Kernel, reserve)?, order })
    }

    /// Returns the first frame.
    pub fn start(&self) -> Frame {
        self.start
    }

    /// Returns the block's size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.order.size_bytes()
    }

    /// Returns a pointer to the block through the direct map.
    pub fn as_ptr(&self) -> *mut u8 {
        frame_ptr(self.start)
    }

    /// Copies `bytes` into the block at byte `offset`.
    pub fn write_bytes(&mut self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.size_bytes() as usize, "OwnedFrames::write_bytes: past the end");
        // SAFETY: inside the block (checked), which this handle owns; `&mut self`
        // means no other access through the handle meanwhile.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), self.as_ptr().add(offset), bytes.len()) };
    }

    /// Copies `buf.len()` bytes out of the block at byte `offset`.
    pub fn read_bytes(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= self.size_bytes() as usize, "OwnedFrames::read_bytes: past the end");
        // SAFETY: inside the block (checked), which this handle owns; writes to it
        // need `&mut self`, so none happens during this copy.
        unsafe { core::ptr::copy_nonoverlapping(self.as_ptr().add(offset), buf.as_mut_ptr(), buf.len()) };
    }
}

impl Drop for OwnedFrames {
    fn drop(&mut self) {
        // SAFETY: the handle owned the block and is going away: nothing uses it.
        if let Err(e) = unsafe { free(self.start, self.order) } {
            panic!("OwnedFrames::drop: {e:?}");
        }
    }
}

/// The bytes of one frame, as the block layer moves them (`blockdev::Page`).
pub type PageBytes = blockdev::Page;

impl OwnedFrames {
    /// Returns the block's first 4 KiB as a page (for page I/O: the handle owns it).
    pub fn page(&self) -> &PageBytes {
        // SAFETY: the block is owned by this handle, mapped in the direct map, at
        // least one page long and page-aligned; writes to it need `&mut self`.
        unsafe { &*self.as_ptr().cast::<PageBytes>() }
    }

    /// Returns the block's first 4 KiB as a page to fill (a disk read, say).
    pub fn page_mut(&mut self) -> &mut PageBytes {
        // SAFETY: as in `page`; `&mut self` makes this the only access.
        unsafe { &mut *self.as_ptr().cast::<PageBytes>() }
    }
}

/// A user frame locked for I/O: its `LOCKED` flag was set by [`LockedPage::lock`],
/// which only one caller can do at a time, so the holder is the frame's only I/O
/// owner. While it is LOCKED nobody maps it (a fault on it waits) or evicts it.
///
/// The handle holds a reference of its own, taken with the flag under the frame
/// lock and only from a frame that has one already (Linux's `get_page_unless_zero`
/// before `trylock_page`): on several CPUs the page's owner may unmap it while an
/// eviction holds it locked, before the swap cache has taken its reference, and
/// the owner's last reference must not free a frame under I/O (issue #13). The
/// frame is freed by whoever drops the last reference: the handle's drop, or
/// [`LockedPage::put_ref`] after [`into_frame`](LockedPage::into_frame).
///
/// This handle is how the swap code hands a user page to a disk: its bytes are
/// reachable only through [`bytes`](Self::bytes) / [`bytes_mut`](Self::bytes_mut),
/// which also check that no PTE maps the frame, so safe code cannot give a device
/// a frame it does not own, or one a process could write meanwhile.
///
/// Dropping the handle unlocks the frame and drops its reference;
/// [`into_frame`](Self::into_frame) keeps it LOCKED, with the reference, for the
/// caller to unlock under its own lock (the swap state does) and then drop the
/// reference with [`LockedPage::put_ref`].
#[derive(Debug)]
pub struct LockedPage {
    frame: Frame,
}

impl LockedPage {
    /// Sets `LOCKED` on `frame` and takes a reference to it, if it is a user frame
    /// in use that nobody has locked; `None` otherwise.
    ///
    /// A free frame on a per-CPU list is refused: its descriptor looks like a fresh
    /// allocation (`pcp::is_listed`), and locking it would hand a free frame to the
    /// disk or the swap cache.
    pub fn lock(frame: Frame) -> Option<LockedPage> {
        Self::lock_if(frame, |_| true)
    }

    /// [`lock`](Self::lock) for a page reclaim found earlier and may have lost
    /// since (an eviction, the cleaner, the eviction buffer: their frame numbers
    /// are read before this): the frame must still have a place, mapped, in the
    /// swap cache or in a page cache. On several CPUs its owner may have freed it
    /// and another CPU allocated it again meanwhile, not mapped yet: that frame is
    /// someone else's new page, not a victim.
    pub fn lock_resident(frame: Frame) -> Option<LockedPage> {
        Self::lock_if(frame, |d| d.map_count() > 0 || d.flags().intersects(FrameFlags::SWAP_CACHE | FrameFlags::FILE))
    }

    /// Sets `LOCKED` on a user frame in use, unlocked, not listed, for which `is_ok`
    /// holds, and takes a reference to it: one hold of the frame lock, so the frame
    /// cannot lose its last reference between the check and the reference.
    fn lock_if(frame: Frame, is_ok: impl FnOnce(&FrameDesc) -> bool) -> Option<LockedPage> {
        with_desc(frame, |d| {
            let is_free = d.refcount() == 0 || super::pcp::is_listed(frame);
            if d.state() != FrameState::User || is_free || d.has_flags(FrameFlags::LOCKED) || !is_ok(d) {
                return None;
            }
            d.get_ref(); // the handle's: never the first (get-unless-zero)
            d.insert_flags(FrameFlags::LOCKED);
            Some(LockedPage { frame })
        })
    }

    /// Drops the reference a handle took, for a frame the caller got from
    /// [`into_frame`](Self::into_frame) and has unlocked: frees the frame if that was
    /// its last reference (its owner let it go while it was locked). Returns true
    /// if the frame was freed.
    pub fn put_ref(frame: Frame) -> bool {
        // Another CPU may have locked the frame again since we unlocked it: it holds
        // a reference of its own then, so this one is never the last.
        let refcount = with_desc(frame, |d| d.put_ref());
        if refcount == 0 {
            super::rmap::free_user_frame(frame);
        }
        refcount == 0
    }

    /// Returns the frame.
    pub fn frame(&self) -> Frame {
        self.frame
    }

    /// Panics unless the frame is still LOCKED and mapped by no PTE: only then are
    /// its bytes this handle's alone.
    fn check_unmapped(&self) {
        let (is_locked, map_count) = with_desc(self.frame, |d| (d.has_flags(FrameFlags::LOCKED), d.map_count()));
        assert!(is_locked && map_count == 0, "LockedPage: {:?} is mapped ({map_count}) or unlocked", self.frame);
    }

    /// Returns the page's bytes (to write them to a disk).
    ///
    /// # Panics
    /// If a PTE maps the frame: a process could change the bytes during the write.
    pub fn bytes(&self) -> &PageBytes {
        self.check_unmapped();
        // SAFETY: the frame is RAM in the direct map, LOCKED by this handle (no other
        // I/O, no mapping: checked above, and a fault on it waits for the unlock);
        // kernel writes to it need `&mut self`.
        unsafe { &*frame_ptr(self.frame).cast::<PageBytes>() }
    }

    /// Returns the page's bytes to fill (a read from a disk).
    ///
    /// # Panics
    /// If a PTE maps the frame.
    pub fn bytes_mut(&mut self) -> &mut PageBytes {
        self.check_unmapped();
        // SAFETY: as in `bytes`; `&mut self` makes this the only access.
        unsafe { &mut *frame_ptr(self.frame).cast::<PageBytes>() }
    }

    /// Gives up the handle and returns the frame, still LOCKED and with the handle's
    /// reference: the caller unlocks it, then calls [`put_ref`](Self::put_ref).
    pub fn into_frame(self) -> Frame {
        let frame = self.frame;
        core::mem::forget(self);
        frame
    }
}

impl Drop for LockedPage {
    fn drop(&mut self) {
        with_desc(self.frame, |d| d.remove_flags(FrameFlags::LOCKED));
        LockedPage::put_ref(self.frame);
    }
}
