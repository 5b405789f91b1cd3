//! The buddy allocator of physical frames: blocks of 2^order frames, order 0..=[`MAX_ORDER`].
//!
//! [`BuddyAllocator`] owns the frame table (a `&mut [FrameDesc]`, see
//! [`crate::frame_table`]) and keeps one free list per order. The lists are intrusive and
//! doubly linked through the `next` / `prev` indices of the descriptors, so taking a block
//! off a list and putting one on are O(1), with no memory besides the table itself.
//!
//! It is pure bookkeeping on frame numbers: the kernel's `mm/frame.rs` wraps it in an
//! IRQ-safe spinlock and reaches frame contents through the direct physical map; the slab
//! allocator (`slab.rs`) and the page-table code are its callers.
//!
//! Blocks are aligned in *physical* frame numbers (a block of order k starts at a pfn that
//! is a multiple of 2^k), whatever `base_pfn` the table starts at, so an order-9 block is
//! always a 2 MiB-aligned region usable as a huge page.
//!
//! Misuse is reported, never absorbed: freeing twice, freeing what was never allocated,
//! freeing with the wrong order or outside the table returns a [`FreeError`] naming the
//! frame and leaves every list as it was. [`BuddyAllocator::check_invariants`] checks the
//! whole structure; the tests call it after every step.

use core::fmt;

use crate::addr::{Frame, Order, PAGE_SIZE};
use crate::frame_table::{FrameDesc, FrameFlags, FrameState, NONE_INDEX};

/// The largest block order: 2^10 frames = 4 MiB.
pub const MAX_ORDER: u8 = 10;
/// The number of orders, and of free lists.
pub const NR_ORDERS: usize = MAX_ORDER as usize + 1;

/// The error returned by [`BuddyAllocator::alloc`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AllocError {
    /// No free block of the requested order or larger.
    OutOfMemory,
    /// The order is above [`MAX_ORDER`].
    OrderTooLarge(Order),
    /// The requested state is `Free` or `Reserved`, which are not uses of a frame.
    InvalidState(FrameState),
}

/// The error returned by [`BuddyAllocator::free`] and [`BuddyAllocator::add_free_range`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FreeError {
    /// The frame is not described by the frame table.
    OutOfRange(Frame),
    /// The frame is free already (a double free, or a frame never allocated).
    AlreadyFree(Frame),
    /// The frame is Reserved, or lies inside an allocated block rather than at its head.
    NotAllocated(Frame),
    /// The block was allocated with another order.
    WrongOrder {
        /// The head frame passed to `free`.
        frame: Frame,
        /// The order it was allocated with.
        allocated: Order,
    },
    /// `add_free_range` was given a frame that is not Reserved (it is managed already).
    NotReserved(Frame),
    /// A frame of the block is still in use (Linux's `bad_page`): a page table still
    /// maps it, someone besides the freeing owner holds a reference, or I/O or the
    /// swap cache still has it. Freeing it would hand live memory to the next owner.
    InUse {
        /// The frame that is still in use.
        frame: Frame,
        /// What it was allocated for.
        state: FrameState,
        /// Its references (the owner's own is 1).
        refcount: u32,
        /// PTEs that still map it.
        map_count: u32,
        /// Its flags.
        flags: FrameFlags,
    },
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::OutOfMemory => write!(f, "out of memory"),
            AllocError::OrderTooLarge(order) => write!(f, "order {} > MAX_ORDER", order.0),
            AllocError::InvalidState(state) => write!(f, "cannot allocate as {state:?}"),
        }
    }
}

impl fmt::Display for FreeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FreeError::OutOfRange(frame) => write!(f, "{frame:?} is outside the frame table"),
            FreeError::AlreadyFree(frame) => write!(f, "{frame:?} is already free"),
            FreeError::NotAllocated(frame) => write!(f, "{frame:?} is not an allocated block"),
            FreeError::WrongOrder { frame, allocated } => {
                write!(f, "{frame:?} was allocated with order {}", allocated.0)
            }
            FreeError::NotReserved(frame) => write!(f, "{frame:?} is managed already"),
            FreeError::InUse { frame, state, refcount, map_count, flags } => write!(
                f,
                "{frame:?} is still in use: {state:?}, refcount {refcount}, map count {map_count}, {flags:?}"
            ),
        }
    }
}

/// A broken invariant found by [`BuddyAllocator::check_invariants`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvariantError {
    /// A free list has a bad link, a cycle, or a `prev` that does not point back.
    BrokenList {
        /// The order of the list.
        order: u8,
    },
    /// A frame on a free list is not a Free `BUDDY_HEAD` of that list's order.
    NotAFreeHead(Frame),
    /// A free block is not aligned to its size, or runs past the end of the table.
    Misaligned(Frame),
    /// A frame inside a free block is not Free, or is itself a block head (overlap).
    BadTail(Frame),
    /// A free block and its buddy are both free with the same order (not merged).
    Unmerged(Frame),
    /// A per-order block count does not match the length of its list.
    CountMismatch {
        /// The order of the list.
        order: u8,
    },
    /// `nr_free_frames`, the free lists and the Free frames of the table disagree.
    FreeTotalMismatch,
}

/// Free-memory statistics, like Linux's `/proc/buddyinfo` plus totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuddyInfo {
    /// Number of free blocks of each order.
    pub nr_free_blocks: [u64; NR_ORDERS],
    /// Frames ever handed to the allocator with `add_free_range`.
    pub nr_managed_frames: u64,
    /// Managed frames that are free now.
    pub nr_free_frames: u64,
    /// Managed frames that are allocated now.
    pub nr_used_frames: u64,
}

impl fmt::Display for BuddyInfo {
    /// Prints a `/proc/buddyinfo` line (free blocks of order 0..=10), then the totals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Node 0, zone   Normal ")?;
        for nr_blocks in self.nr_free_blocks {
            write!(f, "{nr_blocks:>6} ")?;
        }
        writeln!(f)?;
        let kib_fn = |nr_frames: u64| nr_frames * (PAGE_SIZE / 1024);
        let (managed, free, used) =
            (self.nr_managed_frames, self.nr_free_frames, self.nr_used_frames);
        write!(f, "frames: {managed} managed ({} KiB), ", kib_fn(managed))?;
        write!(f, "{free} free ({} KiB), {used} used ({} KiB)", kib_fn(free), kib_fn(used))
    }
}

/// A binary buddy allocator over one frame table.
pub struct BuddyAllocator<'a> {
    /// One descriptor per frame; index `i` describes pfn `base_pfn + i`.
    descs: &'a mut [FrameDesc],
    /// The frame number described by `descs[0]`.
    base_pfn: u64,
    /// Table index of the first block of each free list, or [`NONE_INDEX`].
    free_heads: [u32; NR_ORDERS],
    /// Length of each free list.
    nr_free_blocks: [u64; NR_ORDERS],
    /// Bit `k` is set iff the order-`k` list is non-empty (finds a block in O(1)).
    nonempty_orders: u16,
    /// Sum over the free lists of the block sizes, in frames.
    nr_free_frames: u64,
    /// Frames handed to the allocator by `add_free_range`.
    nr_managed_frames: u64,
}

impl<'a> BuddyAllocator<'a> {
    /// Creates an allocator owning `descs`, which describes pfns `base_pfn..base_pfn+len`.
    ///
    /// Every frame starts Reserved; [`add_free_range`](Self::add_free_range) hands usable
    /// RAM over afterwards.
    ///
    /// # Panics
    /// If the table has `u32::MAX` or more entries, or its pfns overflow `u64`.
    pub fn new(descs: &'a mut [FrameDesc], base_pfn: u64) -> Self {
        assert!(descs.len() < NONE_INDEX as usize, "BuddyAllocator::new: table too large");
        assert!(
            base_pfn.checked_add(descs.len() as u64).is_some(),
            "BuddyAllocator::new: pfn range overflows"
        );
        descs.fill(FrameDesc::new());
        BuddyAllocator {
            descs,
            base_pfn,
            free_heads: [NONE_INDEX; NR_ORDERS],
            nr_free_blocks: [0; NR_ORDERS],
            nonempty_orders: 0,
            nr_free_frames: 0,
            nr_managed_frames: 0,
        }
    }

    /// Returns the frame number described by the first table entry.
    pub fn base_pfn(&self) -> u64 {
        self.base_pfn
    }

    /// Returns the number of frames the table describes (managed or not).
    pub fn nr_frames(&self) -> u64 {
        self.descs.len() as u64
    }

    /// Returns the number of free frames.
    pub fn nr_free_frames(&self) -> u64 {
        self.nr_free_frames
    }

    /// Returns true if `frame` is described by the table.
    #[inline]
    pub fn contains(&self, frame: Frame) -> bool {
        self.index_of(frame).is_some()
    }

    /// Returns the table index of `frame` (what the `next` / `prev` links store), if any.
    #[inline]
    pub fn index_of(&self, frame: Frame) -> Option<u32> {
        let idx = frame.pfn().checked_sub(self.base_pfn)?;
        if idx < self.descs.len() as u64 { Some(idx as u32) } else { None }
    }

    /// Returns the frame at table index `idx` (the inverse of [`index_of`](Self::index_of)).
    #[inline]
    pub fn frame_at(&self, idx: u32) -> Frame {
        Frame::from_pfn(self.base_pfn + u64::from(idx))
    }

    /// Returns the descriptor of `frame`.
    ///
    /// # Panics
    /// If `frame` is outside the table (see [`contains`](Self::contains)).
    #[inline]
    pub fn desc(&self, frame: Frame) -> &FrameDesc {
        let idx = self.index_of(frame).expect("BuddyAllocator::desc: frame outside the table");
        &self.descs[idx as usize]
    }

    /// Returns the descriptor of `frame` for writing.
    ///
    /// # Panics
    /// If `frame` is outside the table (see [`contains`](Self::contains)).
    #[inline]
    pub fn desc_mut(&mut self, frame: Frame) -> &mut FrameDesc {
        let idx = self.index_of(frame).expect("BuddyAllocator::desc_mut: frame outside the table");
        &mut self.descs[idx as usize]
    }

    /// Hands the `nr_frames` frames from `start` (all Reserved) to the allocator.
    ///
    /// The range is cut into maximal aligned blocks, each of which is freed through the
    /// merging path, so ranges added separately still coalesce where they touch. On error
    /// nothing has changed.
    pub fn add_free_range(&mut self, start: Frame, nr_frames: u64) -> Result<(), FreeError> {
        if nr_frames == 0 {
            return Ok(());
        }
        let first = self.index_of(start).ok_or(FreeError::OutOfRange(start))? as usize;
        let last = Frame::from_pfn(start.pfn().saturating_add(nr_frames - 1));
        self.index_of(last).ok_or(FreeError::OutOfRange(last))?;
        let end = first + nr_frames as usize;
        if let Some(i) = (first..end).find(|&i| self.descs[i].state() != FrameState::Reserved) {
            return Err(FreeError::NotReserved(self.frame_at(i as u32)));
        }
        let mut pfn = start.pfn();
        let end_pfn = pfn + nr_frames;
        while pfn < end_pfn {
            let align_order = pfn.trailing_zeros(); // 64 for pfn 0: aligned to anything
            let fit_order = (end_pfn - pfn).ilog2();
            let order = align_order.min(fit_order).min(u32::from(MAX_ORDER)) as u8;
            let idx = (pfn - self.base_pfn) as usize;
            let size = 1usize << order;
            self.descs[idx..idx + size].iter_mut().for_each(FrameDesc::reset_free);
            self.nr_free_frames += size as u64;
            self.nr_managed_frames += size as u64;
            self.free_one_block(idx, order);
            pfn += size as u64;
        }
        Ok(())
    }

    /// Allocates a block of 2^`order` frames and marks each of them as `state`.
    ///
    /// Takes the first block of the smallest non-empty list at or above `order`, splitting
    /// it in halves and keeping the lower half until it has the right size; each upper
    /// half goes onto the free list one order down. The head gets refcount 1 and
    /// `ALLOC_HEAD`; all frames get `state`, no other flags and zeroed counts.
    #[inline]
    pub fn alloc(&mut self, order: Order, state: FrameState) -> Result<Frame, AllocError> {
        if order.0 > MAX_ORDER {
            return Err(AllocError::OrderTooLarge(order));
        }
        if !state.is_in_use() {
            return Err(AllocError::InvalidState(state));
        }
        let candidates = self.nonempty_orders >> order.0;
        if candidates == 0 {
            return Err(AllocError::OutOfMemory);
        }
        let found_order = order.0 + candidates.trailing_zeros() as u8;
        let idx = self.free_heads[found_order as usize] as usize;
        self.list_remove(idx, found_order);
        if found_order > order.0 {
            self.split_block(idx, found_order, order.0);
        }
        self.descs[idx].mark_allocated(state, Some(order.0));
        if order.0 > 0 {
            let size = 1usize << order.0;
            for desc in &mut self.descs[idx + 1..idx + size] {
                desc.mark_allocated(state, None);
            }
        }
        self.nr_free_frames -= order.nr_frames();
        Ok(self.frame_at(idx as u32))
    }

    /// Splits the free, unlisted block of `order` at `idx` down to `target_order`.
    ///
    /// The lower half is kept at each step; each upper half goes onto its free list.
    #[inline(never)]
    fn split_block(&mut self, idx: usize, mut order: u8, target_order: u8) {
        while order > target_order {
            order -= 1;
            self.list_push(idx + (1 << order), order);
        }
    }

    /// Frees the block of 2^`order` frames headed by `frame`, merging it with free buddies.
    ///
    /// Everything is checked before anything is written: the frame must be in the table,
    /// be the head of an allocated block (`ALLOC_HEAD`, not Free, not Reserved) and have
    /// been allocated with this `order`. Every frame of the block is reset to a plain Free
    /// descriptor (counts, flags and `private` cleared).
    #[inline]
    pub fn free(&mut self, frame: Frame, order: Order) -> Result<(), FreeError> {
        let idx = self.index_of(frame).ok_or(FreeError::OutOfRange(frame))? as usize;
        let head = &self.descs[idx];
        match head.state() {
            FrameState::Free => return Err(FreeError::AlreadyFree(frame)),
            FrameState::Reserved => return Err(FreeError::NotAllocated(frame)),
            _ if !head.has_flags(FrameFlags::ALLOC_HEAD) => {
                return Err(FreeError::NotAllocated(frame));
            }
            _ if head.order() != order.0 => {
                return Err(FreeError::WrongOrder { frame, allocated: Order(head.order()) });
            }
            _ => {}
        }
        let size = 1usize << order.0;
        if let Some(i) = (idx..idx + size).find(|&i| Self::is_in_use(&self.descs[i])) {
            let desc = &self.descs[i];
            return Err(FreeError::InUse {
                frame: self.frame_at(i as u32),
                state: desc.state(),
                refcount: desc.refcount(),
                map_count: desc.map_count(),
                flags: desc.flags(),
            });
        }
        self.descs[idx..idx + size].iter_mut().for_each(FrameDesc::reset_free);
        self.nr_free_frames += size as u64;
        self.free_one_block(idx, order.0);
        Ok(())
    }

    /// Takes back a single allocated frame *without* putting it on a free list: it is
    /// checked exactly as [`free`](Self::free) checks an order-0 block, and its
    /// descriptor is reset to a fresh allocation in the same state (refcount 1,
    /// `ALLOC_HEAD`, no other flags, counts and links cleared). The frame stays
    /// allocated and counted as used here: a per-CPU page list (`pcp`) keeps it and
    /// hands it out again as it is, or frees it later with [`free`](Self::free).
    /// Returns the frame's state; changes nothing on an error.
    pub fn recycle_single(&mut self, frame: Frame) -> Result<FrameState, FreeError> {
        let idx = self.index_of(frame).ok_or(FreeError::OutOfRange(frame))? as usize;
        let desc = &self.descs[idx];
        match desc.state() {
            FrameState::Free => return Err(FreeError::AlreadyFree(frame)),
            FrameState::Reserved => return Err(FreeError::NotAllocated(frame)),
            _ if !desc.has_flags(FrameFlags::ALLOC_HEAD) => return Err(FreeError::NotAllocated(frame)),
            _ if desc.order() != 0 => {
                return Err(FreeError::WrongOrder { frame, allocated: Order(desc.order()) });
            }
            _ if Self::is_in_use(desc) => {
                return Err(FreeError::InUse {
                    frame,
                    state: desc.state(),
                    refcount: desc.refcount(),
                    map_count: desc.map_count(),
                    flags: desc.flags(),
                });
            }
            _ => {}
        }
        let state = desc.state();
        self.descs[idx].mark_allocated(state, Some(0));
        Ok(state)
    }

    /// Splits the allocated block of 2^`order` frames headed by `frame` into 2^`order`
    /// allocated blocks of order 0 (Linux's `split_page`), so each frame can be freed
    /// on its own. The head keeps its counts and flags; every other frame becomes an
    /// `ALLOC_HEAD` of order 0 with refcount 1, as a fresh allocation. Used when a
    /// transparent huge page is split into 4 KiB pages. Checked like [`free`](Self::free):
    /// the frame must head an allocated block of exactly this order; nothing changes
    /// otherwise.
    pub fn split_allocated(&mut self, frame: Frame, order: Order) -> Result<(), FreeError> {
        let idx = self.index_of(frame).ok_or(FreeError::OutOfRange(frame))? as usize;
        let head = &self.descs[idx];
        if !head.state().is_in_use() || !head.has_flags(FrameFlags::ALLOC_HEAD) {
            return Err(FreeError::NotAllocated(frame));
        }
        if head.order() != order.0 {
            return Err(FreeError::WrongOrder { frame, allocated: Order(head.order()) });
        }
        let state = head.state();
        self.descs[idx].set_alloc_order(0);
        for desc in &mut self.descs[idx + 1..idx + (1usize << order.0)] {
            desc.mark_allocated(state, Some(0));
        }
        Ok(())
    }

    /// Returns true if an allocated frame may not be freed yet: a PTE maps it, a
    /// reference other than its owner's is held (a fresh allocation's head has 1,
    /// the owner's; a user frame is freed when its last reference is dropped, at 0),
    /// or it is locked for I/O or in the swap cache.
    fn is_in_use(desc: &FrameDesc) -> bool {
        desc.map_count() != 0
            || desc.refcount() > 1
            || desc.flags().intersects(FrameFlags::LOCKED | FrameFlags::SWAP_CACHE)
    }

    // Freeing function for a buddy system allocator (after Linux's __free_one_page).
    //
    // The frames form a binary tree of blocks: a block of order k is 2^k frames starting
    // at a pfn that is a multiple of 2^k, and it is one half of exactly one block of
    // order k+1. The other half is its *buddy*. Two free buddies of the same order are
    // never both on the lists; they are merged into their parent, which may in turn merge
    // with its own buddy, up to MAX_ORDER. Allocation runs the same tree downwards: a
    // block of order k+1 splits into two buddies of order k (see `alloc`).
    //
    // Why XOR finds the buddy: the parent of a block at pfn p (order k) starts at p with
    // bit k cleared, and its two halves differ exactly in bit k (all lower bits are zero
    // by alignment). So the buddy is `p ^ (1 << k)`, and the merged block starts at
    // `p & !(1 << k)`, the lower of the two. For example, at order 0 the buddies are
    // {4, 5}; at order 1 {4, 6}; at order 2 {0, 4}:
    //
    //     order 2: [ 0 1 2 3 | 4 5 6 7 ]      4 ^ 4 = 0
    //     order 1:             [4 5 | 6 7]    4 ^ 2 = 6
    //     order 0:             [4|5]          4 ^ 1 = 5
    //
    // The XOR is taken on absolute pfns, i.e. relative to base 0, which is aligned to
    // every order; this is the same as XOR on indices relative to `base_pfn` rounded down
    // to 2^MAX_ORDER, and it keeps blocks physically aligned (huge-page friendly). A
    // buddy outside the table, or one that is Reserved (a hole), allocated, split into
    // smaller free blocks, or the head of a free block of another order simply fails the
    // test below, and merging stops. `BUDDY_HEAD` plus `order` on the head is what makes
    // "is my buddy free and whole?" an O(1) question, and the intrusive links make taking
    // it off its list O(1), so a free costs O(MAX_ORDER).
    //
    // On entry the block's frames are Free and unlinked, and counted in nr_free_frames.
    fn free_one_block(&mut self, mut idx: usize, mut order: u8) {
        while order < MAX_ORDER {
            let pfn = self.base_pfn + idx as u64;
            let buddy_pfn = pfn ^ (1u64 << order);
            let Some(buddy_idx) = self.index_of(Frame::from_pfn(buddy_pfn)) else { break };
            let buddy_idx = buddy_idx as usize;
            let buddy = &self.descs[buddy_idx];
            if buddy.state() != FrameState::Free || !buddy.is_free_head_of_order(order) {
                break;
            }
            self.list_remove(buddy_idx, order);
            idx = idx.min(buddy_idx);
            order += 1;
        }
        self.list_push(idx, order);
    }

    /// Pushes the Free frame at `idx` onto the front of the order-`order` list as a head.
    #[inline]
    fn list_push(&mut self, idx: usize, order: u8) {
        let old_head = self.free_heads[order as usize];
        let desc = &mut self.descs[idx];
        desc.mark_free_head(order);
        desc.set_prev_raw(NONE_INDEX);
        desc.set_next_raw(old_head);
        if old_head != NONE_INDEX {
            self.descs[old_head as usize].set_prev_raw(idx as u32);
        } else {
            self.nonempty_orders |= 1 << order;
        }
        self.free_heads[order as usize] = idx as u32;
        self.nr_free_blocks[order as usize] += 1;
    }

    /// Unlinks the head at `idx` from the order-`order` list and clears its head mark.
    #[inline]
    fn list_remove(&mut self, idx: usize, order: u8) {
        let desc = &mut self.descs[idx];
        let (prev, next) = (desc.prev_raw(), desc.next_raw());
        desc.set_prev_raw(NONE_INDEX);
        desc.set_next_raw(NONE_INDEX);
        desc.clear_free_head();
        if prev == NONE_INDEX {
            self.free_heads[order as usize] = next;
        } else {
            self.descs[prev as usize].set_next_raw(next);
        }
        if next != NONE_INDEX {
            self.descs[next as usize].set_prev_raw(prev);
        }
        self.nr_free_blocks[order as usize] -= 1;
        if self.free_heads[order as usize] == NONE_INDEX {
            self.nonempty_orders &= !(1 << order);
        }
    }

    /// Returns the free blocks per order and the frame totals.
    pub fn buddyinfo(&self) -> BuddyInfo {
        BuddyInfo {
            nr_free_blocks: self.nr_free_blocks,
            nr_managed_frames: self.nr_managed_frames,
            nr_free_frames: self.nr_free_frames,
            nr_used_frames: self.nr_managed_frames - self.nr_free_frames,
        }
    }

    /// Checks every structural invariant in O(table length), without allocating.
    ///
    /// Verified: each list is a well-formed doubly-linked list whose length is its count
    /// and whose non-emptiness matches `nonempty_orders`; each entry is a Free
    /// `BUDDY_HEAD` of the list's order, aligned, inside the table, and every other frame
    /// of its block is Free and not a head (so blocks do not overlap); no block's buddy is
    /// a free block of the same order (fully merged); the block sizes add up to
    /// `nr_free_frames`, which equals the number of Free frames in the table, and the
    /// number of `BUDDY_HEAD` frames equals the number of listed blocks.
    pub fn check_invariants(&self) -> Result<(), InvariantError> {
        let mut nr_listed_frames = 0u64;
        let mut nr_listed_blocks = 0u64;
        for order in 0..=MAX_ORDER {
            let nr_blocks = self.check_list(order)?;
            let is_nonempty = self.nonempty_orders & (1 << order) != 0;
            if nr_blocks != self.nr_free_blocks[order as usize] || is_nonempty != (nr_blocks > 0) {
                return Err(InvariantError::CountMismatch { order });
            }
            nr_listed_blocks += nr_blocks;
            nr_listed_frames += nr_blocks << order;
        }
        let nr_free_descs =
            self.descs.iter().filter(|desc| desc.state() == FrameState::Free).count() as u64;
        let nr_head_descs =
            self.descs.iter().filter(|desc| desc.has_flags(FrameFlags::BUDDY_HEAD)).count() as u64;
        if nr_listed_frames != self.nr_free_frames
            || nr_free_descs != self.nr_free_frames
            || nr_head_descs != nr_listed_blocks
            || self.nr_free_frames > self.nr_managed_frames
        {
            return Err(InvariantError::FreeTotalMismatch);
        }
        Ok(())
    }

    /// Walks the order-`order` list checking links and blocks; returns its length.
    fn check_list(&self, order: u8) -> Result<u64, InvariantError> {
        let broken = InvariantError::BrokenList { order };
        let mut prev = NONE_INDEX;
        let mut cur = self.free_heads[order as usize];
        let mut nr_blocks = 0u64;
        while cur != NONE_INDEX {
            nr_blocks += 1;
            let desc = self.descs.get(cur as usize).ok_or(broken)?;
            if desc.prev_raw() != prev || nr_blocks > self.descs.len() as u64 {
                return Err(broken);
            }
            self.check_free_block(cur as usize, order)?;
            prev = cur;
            cur = desc.next_raw();
        }
        Ok(nr_blocks)
    }

    /// Checks the free block of `order` headed at `idx`: head, alignment, tail, merged.
    fn check_free_block(&self, idx: usize, order: u8) -> Result<(), InvariantError> {
        let frame = self.frame_at(idx as u32);
        let head = &self.descs[idx];
        if head.state() != FrameState::Free || !head.is_free_head_of_order(order) {
            return Err(InvariantError::NotAFreeHead(frame));
        }
        let size = 1usize << order;
        if !frame.pfn().is_multiple_of(size as u64) || idx + size > self.descs.len() {
            return Err(InvariantError::Misaligned(frame));
        }
        for (i, desc) in self.descs[idx + 1..idx + size].iter().enumerate() {
            if desc.state() != FrameState::Free || desc.has_flags(FrameFlags::BUDDY_HEAD) {
                return Err(InvariantError::BadTail(self.frame_at((idx + 1 + i) as u32)));
            }
        }
        if order < MAX_ORDER {
            let buddy = Frame::from_pfn(frame.pfn() ^ (1u64 << order));
            if let Some(buddy_idx) = self.index_of(buddy) {
                let buddy_desc = &self.descs[buddy_idx as usize];
                if buddy_desc.state() == FrameState::Free && buddy_desc.is_free_head_of_order(order)
                {
                    return Err(InvariantError::Unmerged(frame));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
