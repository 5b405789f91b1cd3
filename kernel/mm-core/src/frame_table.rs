//! The frame table: one [`FrameDesc`] per 4 KiB physical frame (Linux's `struct page`).
//!
//! The kernel sizes one array of descriptors to cover physical memory from the lowest
//! to the highest usable frame and hands it to the buddy allocator
//! ([`crate::buddy::BuddyAllocator`]), which owns it from then on. A descriptor records
//! what the frame is used for ([`FrameState`]), a few status bits ([`FrameFlags`]),
//! reference and mapping counts, where a mapped user frame sits in its fork family
//! (the reverse map, [`FamilyPage`]), two intrusive list links and one private word.
//!
//! Who may write what:
//! - the buddy allocator owns `order`, the links and the [`FrameFlags::BUDDY_HEAD`] /
//!   [`FrameFlags::ALLOC_HEAD`] bits; the `pub` setters here refuse to change those bits;
//! - the owner of an allocated frame (page-table code, the fault handler, reclaim,
//!   swap) uses the counts, the other flags, the links (only while the frame is not
//!   free) and `private`; the family page changes only with the map count
//!   ([`FrameDesc::add_mapping`], [`FrameDesc::remove_mapping`]).
//!
//! Descriptors are at most 32 bytes, so the table costs 32/4096 < 0.8 % of RAM.

use core::fmt;
use core::mem::size_of;
use core::ops::BitOr;

use crate::fork_family::FamilyPage;

/// What a frame is currently used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameState {
    /// On a buddy free list (as a block head or inside a free block).
    Free = 0,
    /// Not usable RAM: a hole, firmware data, or memory never given to the allocator.
    Reserved = 1,
    /// Allocated for the kernel's own use (stacks, buffers, the kernel image).
    Kernel = 2,
    /// Allocated to the slab allocator as backing for an object cache.
    Slab = 3,
    /// Allocated as a page-table page (PML4, PDPT, PD or PT).
    PageTable = 4,
    /// Allocated to user space (anonymous memory, page cache of a user mapping).
    User = 5,
    /// Known to be zero: zeroed in the background and waiting in the kernel's pool of
    /// pre-zeroed frames (`kernel/src/mm/zero_pool.rs`) for an anonymous fault. A frame
    /// is in this state exactly while it is in the pool; it leaves as `User` (or freed).
    Zeroed = 6,
}

impl FrameState {
    /// Returns true for the states an allocated frame may be in (not Free, not Reserved).
    #[inline]
    pub const fn is_in_use(self) -> bool {
        !matches!(self, FrameState::Free | FrameState::Reserved)
    }
}

/// A small set of per-frame status bits (a hand-written `bitflags`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct FrameFlags(u16);

impl FrameFlags {
    /// First frame of a free buddy block; its `order` field is the block's order.
    pub const BUDDY_HEAD: FrameFlags = FrameFlags(1 << 0);
    /// First frame of an allocated block; its `order` field is the block's order.
    pub const ALLOC_HEAD: FrameFlags = FrameFlags(1 << 1);
    /// A page-cache page (a page of a file): `private` holds its cache's id and the
    /// place word its page index in the file ([`FrameDesc::file_owner`]); PTEs that
    /// map it are counted but not placed (a file page may sit at a different address
    /// in every process: the file rmap finds them, not the fork family).
    pub const FILE: FrameFlags = FrameFlags(1 << 2);
    /// Contents differ from the copy on swap (or the frame was never written out).
    pub const DIRTY: FrameFlags = FrameFlags(1 << 3);
    /// In the swap cache: `private` holds the frame's swap slot.
    pub const SWAP_CACHE: FrameFlags = FrameFlags(1 << 4);
    /// Locked for I/O: swap-in or write-back is in flight.
    pub const LOCKED: FrameFlags = FrameFlags(1 << 5);
    /// Read from swap by readahead, not yet used by a fault (cleared on first use).
    pub const READAHEAD: FrameFlags = FrameFlags(1 << 6);
    /// Given up by `MADV_FREE`: reclaim may drop it without writing it to swap if its
    /// PTE's Dirty bit is still clear (not written since the advice).
    pub const LAZYFREE: FrameFlags = FrameFlags(1 << 7);
    /// The bits that are status flags; the high byte of the word holds the policy age.
    const STATUS_MASK: u16 = 0x00ff;
    /// The bits only the buddy allocator may set or clear.
    pub const ALLOCATOR_OWNED: FrameFlags = FrameFlags(Self::BUDDY_HEAD.0 | Self::ALLOC_HEAD.0);

    /// Returns the empty set.
    #[inline]
    pub const fn empty() -> Self {
        FrameFlags(0)
    }

    /// Returns the raw bits.
    #[inline]
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Returns true if no bit is set.
    #[inline]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Returns true if every bit of `other` is set in `self`.
    #[inline]
    pub const fn contains(self, other: FrameFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Returns true if any bit of `other` is set in `self`.
    #[inline]
    pub const fn intersects(self, other: FrameFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Returns `self` with the bits of `other` set.
    #[inline]
    pub const fn union(self, other: FrameFlags) -> Self {
        FrameFlags(self.0 | other.0)
    }

    /// Returns `self` with the bits of `other` cleared.
    #[inline]
    pub const fn difference(self, other: FrameFlags) -> Self {
        FrameFlags(self.0 & !other.0)
    }
}

impl BitOr for FrameFlags {
    type Output = FrameFlags;
    fn bitor(self, rhs: FrameFlags) -> FrameFlags {
        self.union(rhs)
    }
}

impl fmt::Debug for FrameFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(FrameFlags, &str); 8] = [
            (FrameFlags::BUDDY_HEAD, "BUDDY_HEAD"),
            (FrameFlags::ALLOC_HEAD, "ALLOC_HEAD"),
            (FrameFlags::FILE, "FILE"),
            (FrameFlags::DIRTY, "DIRTY"),
            (FrameFlags::SWAP_CACHE, "SWAP_CACHE"),
            (FrameFlags::LOCKED, "LOCKED"),
            (FrameFlags::READAHEAD, "READAHEAD"),
            (FrameFlags::LAZYFREE, "LAZYFREE"),
        ];
        f.write_str("FrameFlags(")?;
        let mut is_first = true;
        for (flag, name) in NAMES {
            if self.contains(flag) {
                if !is_first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                is_first = false;
            }
        }
        f.write_str(")")
    }
}

/// The "no frame" value of the intrusive `next` / `prev` links.
pub const NONE_INDEX: u32 = u32::MAX;

/// The descriptor of one physical frame.
///
/// Layout (`repr(C)`, 32 bytes, 8-aligned):
///
/// | offset | field | type | meaning |
/// |---|---|---|---|
/// | 0 | `family_page` | `u64` | a mapped user frame's [`FamilyPage`] (family id: 28 bits, page number: 36), packed; 0 while unmapped |
/// | 8 | `refcount` | `u32` | references held; 1 on the head of a fresh allocation |
/// | 12 | `map_count` | `u32` | number of PTEs that map this frame |
/// | 16 | `next` | `u32` | next frame index on the list this frame is on, or [`NONE_INDEX`] |
/// | 20 | `prev` | `u32` | previous frame index on that list, or [`NONE_INDEX`] |
/// | 24 | `private` | `u32` | owner's word: the swap slot of a swap-cache page |
/// | 28 | `flags` | [`FrameFlags`] | status bits (low byte); the replacement policy's 8-bit age (high byte) |
/// | 30 | `state` | [`FrameState`] | what the frame is used for |
/// | 31 | `order` | `u8` | block order, valid on a `BUDDY_HEAD` or `ALLOC_HEAD` frame |
///
/// Links are indices into the frame table (not frame numbers), so a table may describe
/// up to 2^32 - 1 frames (16 TiB); swap slots are 32-bit too (`swap_map::SwapSlot`).
#[derive(Clone, Debug)]
#[repr(C)]
pub struct FrameDesc {
    /// Where the PTEs that map this user frame are, packed ([`FamilyPage::pack`]); 0
    /// while no PTE maps it (Linux's `page->mapping` + `page->index`).
    family_page: u64,
    /// References held on the frame (or on the block, for a block head).
    refcount: u32,
    /// Number of page-table entries that map the frame.
    map_count: u32,
    /// Next element of the intrusive list the frame is on, as a frame-table index.
    next: u32,
    /// Previous element of the intrusive list the frame is on, as a frame-table index.
    prev: u32,
    /// The owner's private word: the swap slot while in the swap cache.
    private: u32,
    /// Status bits in the low byte; the high byte is the replacement policy's age of
    /// a tracked user frame ([`FrameDesc::policy_age`]), which `flags()` never shows.
    flags: FrameFlags,
    /// What the frame is used for.
    state: FrameState,
    /// Order of the block this frame heads (free or allocated; 0 otherwise) in the
    /// low 7 bits ([`ORDER_MASK`]); the top bit is the sampled-reference mark
    /// ([`FrameDesc::mark_sampled_reference`]).
    order: u8,
}

/// The bits of `FrameDesc::order` that hold the block order.
const ORDER_MASK: u8 = 0x7f;
/// The bit of `FrameDesc::order` that marks a reference the working-set sampler saw.
const SAMPLED_REFERENCE: u8 = 0x80;

/// The place word of a merged (KSM) page: family 0, which no fork family has, so
/// [`FamilyPage::unpack`] reads it as "no one place". A merged page is mapped at
/// different places in different families; `mm/ksm.rs` lists them (its stable
/// index), and the descriptor only counts them. Not a flag bit: all are taken.
const KSM_PLACE: u64 = 1;

/// What [`FrameDesc::add_mapping_or_merge`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MappingAdded {
    /// The frame had no other place, or this same one (an ordinary private page).
    AtItsPlace,
    /// The frame is a merged page: the caller lists the new place.
    Merged,
    /// The frame was mapped at `previous` only, and now at a second place: it has
    /// just become a merged page (its slot was shared by merged mappings, and it
    /// came back from swap); the caller lists both places.
    BecameMerged {
        /// The place of its earlier mappings.
        previous: FamilyPage,
    },
}

const _: () = assert!(size_of::<FrameDesc>() == 32);

impl Default for FrameDesc {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDesc {
    /// Creates the descriptor of a frame that is not (yet) usable: Reserved, no links.
    #[inline]
    pub const fn new() -> Self {
        FrameDesc {
            family_page: 0,
            refcount: 0,
            map_count: 0,
            next: NONE_INDEX,
            prev: NONE_INDEX,
            private: 0,
            flags: FrameFlags::empty(),
            state: FrameState::Reserved,
            order: 0,
        }
    }

    /// Returns what the frame is used for.
    #[inline]
    pub const fn state(&self) -> FrameState {
        self.state
    }

    /// Changes the use of an allocated frame, e.g. `Kernel` to `PageTable`.
    ///
    /// # Panics
    /// If the old or the new state is `Free` or `Reserved`: only the buddy allocator
    /// moves frames in and out of those.
    pub fn set_state(&mut self, state: FrameState) {
        assert!(
            self.state.is_in_use() && state.is_in_use(),
            "FrameDesc::set_state: Free and Reserved belong to the buddy allocator"
        );
        self.state = state;
    }

    /// Returns the status bits.
    #[inline]
    pub const fn flags(&self) -> FrameFlags {
        FrameFlags(self.flags.0 & FrameFlags::STATUS_MASK)
    }

    /// Returns the replacement policy's 8-bit age of this frame (the aging policy's
    /// Accessed-bit history); 0 for a frame never aged.
    #[inline]
    pub const fn policy_age(&self) -> u8 {
        (self.flags.0 >> 8) as u8
    }

    /// Sets the replacement policy's age of this frame; the status bits are kept.
    #[inline]
    pub fn set_policy_age(&mut self, age: u8) {
        self.flags = FrameFlags((self.flags.0 & FrameFlags::STATUS_MASK) | (u16::from(age) << 8));
    }

    /// Returns true if every bit of `flags` is set.
    #[inline]
    pub const fn has_flags(&self, flags: FrameFlags) -> bool {
        self.flags.contains(flags)
    }

    /// Sets the bits of `flags`, except the allocator-owned ones, which are ignored.
    #[inline]
    pub fn insert_flags(&mut self, flags: FrameFlags) {
        self.flags = self.flags.union(flags.difference(FrameFlags::ALLOCATOR_OWNED));
    }

    /// Clears the bits of `flags`, except the allocator-owned ones, which are ignored.
    #[inline]
    pub fn remove_flags(&mut self, flags: FrameFlags) {
        self.flags = self.flags.difference(flags.difference(FrameFlags::ALLOCATOR_OWNED));
    }

    /// Returns the order of the block this frame heads (meaningful on a head only).
    #[inline]
    pub const fn order(&self) -> u8 {
        self.order & ORDER_MASK
    }

    /// Notes a reference the replacement policy has not seen yet: the working-set
    /// sampler (`mm::wss`) cleared the Accessed bits of the PTEs that map this user
    /// frame, and leaves the reference here so that the clock still gives the page
    /// its second chance (Linux's `PG_young` serves idle-page tracking the same way).
    #[inline]
    pub fn mark_sampled_reference(&mut self) {
        self.order |= SAMPLED_REFERENCE;
    }

    /// Returns true if a sampled reference is noted; with `is_clearing`, clears it.
    #[inline]
    pub fn sampled_reference(&mut self, is_clearing: bool) -> bool {
        let was_marked = self.order & SAMPLED_REFERENCE != 0;
        if is_clearing {
            self.order &= !SAMPLED_REFERENCE;
        }
        was_marked
    }

    /// Returns the number of references held.
    #[inline]
    pub const fn refcount(&self) -> u32 {
        self.refcount
    }

    /// Takes a reference and returns the new count.
    #[inline]
    pub fn get_ref(&mut self) -> u32 {
        self.refcount =
            self.refcount.checked_add(1).expect("FrameDesc::get_ref: refcount overflow");
        self.refcount
    }

    /// Drops a reference and returns the new count; at 0 the caller frees the frame.
    ///
    /// # Panics
    /// If the count is already 0 (a broken invariant: more puts than gets).
    #[inline]
    pub fn put_ref(&mut self) -> u32 {
        self.refcount =
            self.refcount.checked_sub(1).expect("FrameDesc::put_ref: refcount underflow");
        self.refcount
    }

    /// Returns the number of PTEs that map the frame.
    #[inline]
    pub const fn map_count(&self) -> u32 {
        self.map_count
    }

    /// Returns where the PTEs that map this frame are: its fork family and virtual
    /// page; `None` while no PTE maps it, and always for a page-cache page
    /// ([`FrameFlags::FILE`]), whose place word holds its file index instead.
    #[inline]
    pub const fn family_page(&self) -> Option<FamilyPage> {
        if self.flags.contains(FrameFlags::FILE) {
            return None;
        }
        FamilyPage::unpack(self.family_page)
    }

    /// Returns true for a merged (KSM) page: mapped at several places, which
    /// `mm/ksm.rs` lists; its descriptor has no one place ([`family_page`](Self::family_page) is `None`).
    #[inline]
    pub const fn is_ksm(&self) -> bool {
        !self.flags.contains(FrameFlags::FILE) && self.family_page == KSM_PLACE
    }

    /// Makes an anonymous user frame a merged page: it forgets its one place (the
    /// caller lists the places). It stays merged until it is freed.
    ///
    /// # Panics
    /// If the frame is a page-cache page or a huge page.
    #[inline]
    pub fn make_ksm(&mut self) {
        assert!(
            !self.flags.contains(FrameFlags::FILE) && !self.is_compound_head(),
            "FrameDesc::make_ksm: not a 4 KiB anonymous page"
        );
        self.family_page = KSM_PLACE;
    }

    /// Records one more PTE mapping the frame at `at`, like [`add_mapping`](Self::add_mapping),
    /// and one more reference; a frame already mapped at another place becomes a
    /// merged page instead of a panic. For swap-in, whose slot may be shared by the
    /// mappings of a merged page that was swapped out (in different families).
    #[inline]
    pub fn add_mapping_or_merge(&mut self, at: FamilyPage) -> MappingAdded {
        let outcome = match self.family_page() {
            _ if self.is_ksm() => MappingAdded::Merged,
            Some(previous) if self.map_count > 0 && previous != at => {
                self.make_ksm();
                MappingAdded::BecameMerged { previous }
            }
            _ => MappingAdded::AtItsPlace,
        };
        self.get_ref();
        self.add_mapping(at);
        outcome
    }

    /// Makes an unmapped frame a page-cache page: page `index` of the cache with id
    /// `cache_id` (sets [`FrameFlags::FILE`]).
    ///
    /// # Panics
    /// If a PTE maps the frame or it is in the swap cache (its words are taken).
    #[inline]
    pub fn set_file_owner(&mut self, cache_id: u32, index: u64) {
        assert!(
            self.map_count == 0 && !self.flags.contains(FrameFlags::SWAP_CACHE),
            "FrameDesc::set_file_owner: the frame is mapped or in the swap cache"
        );
        self.private = cache_id;
        self.family_page = index;
        self.flags = self.flags.union(FrameFlags::FILE);
    }

    /// Returns (cache id, page index) of a page-cache page; `None` for any other frame.
    #[inline]
    pub const fn file_owner(&self) -> Option<(u32, u64)> {
        if self.flags.contains(FrameFlags::FILE) { Some((self.private, self.family_page)) } else { None }
    }

    /// Makes a page-cache page an ordinary frame again (it left its cache).
    ///
    /// # Panics
    /// If a PTE still maps it.
    #[inline]
    pub fn clear_file_owner(&mut self) {
        assert!(self.map_count == 0, "FrameDesc::clear_file_owner: the frame is still mapped");
        self.private = 0;
        self.family_page = 0;
        self.flags = self.flags.difference(FrameFlags::FILE);
    }

    /// Counts one more PTE mapping a page-cache page (no place is recorded: the file
    /// rmap finds file mappings); returns the new map count.
    ///
    /// # Panics
    /// If the frame is not a page-cache page, or the count overflows.
    #[inline]
    pub fn add_file_mapping(&mut self) -> u32 {
        assert!(self.flags.contains(FrameFlags::FILE), "FrameDesc::add_file_mapping: not a page-cache page");
        self.map_count = self.map_count.checked_add(1).expect("FrameDesc::add_file_mapping: overflow");
        self.map_count
    }

    /// Counts one PTE fewer mapping a page-cache page; returns the map count left.
    ///
    /// # Panics
    /// If the frame is not a page-cache page or is not mapped.
    #[inline]
    pub fn remove_file_mapping(&mut self) -> u32 {
        assert!(self.flags.contains(FrameFlags::FILE), "FrameDesc::remove_file_mapping: not a page-cache page");
        self.map_count = self.map_count.checked_sub(1).expect("FrameDesc::remove_file_mapping: not mapped");
        self.map_count
    }

    /// Records one more PTE mapping the frame, at `at`, and returns the new map count.
    /// The first mapping names the frame's place; every other must be at the same
    /// place (a private anonymous page has one virtual page in its whole family).
    ///
    /// # Panics
    /// If the frame is already mapped somewhere else, or the count overflows.
    #[inline]
    pub fn add_mapping(&mut self, at: FamilyPage) -> u32 {
        assert!(!self.flags.contains(FrameFlags::FILE), "FrameDesc::add_mapping: a page-cache page (add_file_mapping)");
        if self.is_ksm() {
            // A merged page: its places are listed outside the descriptor.
        } else if self.map_count == 0 {
            self.family_page = at.pack();
        } else if self.family_page != at.pack() {
            panic!("FrameDesc::add_mapping: mapped at {at:?}, but already at {:?}", self.family_page());
        }
        self.map_count = self.map_count.checked_add(1).expect("FrameDesc::add_mapping: overflow");
        self.map_count
    }

    /// Records that the PTE at `at` no longer maps the frame and returns the map count
    /// left; the last mapping gone, the frame names no place.
    ///
    /// # Panics
    /// If the frame is not mapped, or not at `at`.
    #[inline]
    pub fn remove_mapping(&mut self, at: FamilyPage) -> u32 {
        if self.map_count == 0 || (self.family_page != at.pack() && !self.is_ksm()) {
            panic!("FrameDesc::remove_mapping: unmapped at {at:?}, mapped {} times at {:?}", self.map_count, self.family_page());
        }
        self.map_count -= 1;
        if self.map_count == 0 && !self.is_ksm() {
            self.family_page = 0;
        }
        self.map_count
    }

    /// Returns the next frame-table index on this frame's list, if any.
    #[inline]
    pub const fn next(&self) -> Option<u32> {
        if self.next == NONE_INDEX { None } else { Some(self.next) }
    }

    /// Returns the previous frame-table index on this frame's list, if any.
    #[inline]
    pub const fn prev(&self) -> Option<u32> {
        if self.prev == NONE_INDEX { None } else { Some(self.prev) }
    }

    /// Sets the `next` link (`None` stores [`NONE_INDEX`]); for the owner of an in-use frame.
    #[inline]
    pub fn set_next(&mut self, next: Option<u32>) {
        self.next = next.unwrap_or(NONE_INDEX);
    }

    /// Sets the `prev` link (`None` stores [`NONE_INDEX`]); for the owner of an in-use frame.
    #[inline]
    pub fn set_prev(&mut self, prev: Option<u32>) {
        self.prev = prev.unwrap_or(NONE_INDEX);
    }

    /// Returns the owner's private word.
    #[inline]
    pub const fn private(&self) -> u32 {
        self.private
    }

    /// Sets the owner's private word.
    #[inline]
    pub fn set_private(&mut self, private: u32) {
        self.private = private;
    }

    /// Returns true if this frame heads a free buddy block of `order`.
    #[inline]
    pub(crate) const fn is_free_head_of_order(&self, order: u8) -> bool {
        self.flags.contains(FrameFlags::BUDDY_HEAD) && self.order & ORDER_MASK == order
    }

    /// Makes the frame a free, unlinked, non-head frame with no owner data.
    #[inline]
    pub(crate) fn reset_free(&mut self) {
        *self = FrameDesc { state: FrameState::Free, ..FrameDesc::new() };
    }

    /// Marks the frame as the head of a free block of `order` (links set separately).
    #[inline]
    pub(crate) fn mark_free_head(&mut self, order: u8) {
        self.flags = FrameFlags::BUDDY_HEAD;
        self.order = order;
    }

    /// Changes the order of the allocated block this frame heads (the buddy
    /// allocator's `split_allocated`, which makes the rest of the block heads too).
    #[inline]
    pub(crate) fn set_alloc_order(&mut self, order: u8) {
        debug_assert!(self.flags.contains(FrameFlags::ALLOC_HEAD), "set_alloc_order: not an allocated head");
        self.order = order | (self.order & SAMPLED_REFERENCE);
    }

    /// Returns true if this frame heads an allocated block of more than one frame
    /// (a compound page: a transparent huge page while it is mapped whole).
    #[inline]
    pub const fn is_compound_head(&self) -> bool {
        self.flags.contains(FrameFlags::ALLOC_HEAD) && self.order & ORDER_MASK > 0
    }

    /// Marks the frame as an allocated frame of the given use, with no owner data.
    ///
    /// A head gets `ALLOC_HEAD`, the block order and refcount 1; a tail gets neither.
    #[inline]
    pub(crate) fn mark_allocated(&mut self, state: FrameState, head_order: Option<u8>) {
        *self = FrameDesc { state, ..FrameDesc::new() };
        if let Some(order) = head_order {
            self.flags = FrameFlags::ALLOC_HEAD;
            self.order = order;
            self.refcount = 1;
        }
    }

    /// Returns the raw `next` link ([`NONE_INDEX`] if none), for the free lists.
    #[inline]
    pub(crate) const fn next_raw(&self) -> u32 {
        self.next
    }

    /// Returns the raw `prev` link ([`NONE_INDEX`] if none), for the free lists.
    #[inline]
    pub(crate) const fn prev_raw(&self) -> u32 {
        self.prev
    }

    /// Sets the raw `next` link, for the free lists.
    #[inline]
    pub(crate) fn set_next_raw(&mut self, next: u32) {
        self.next = next;
    }

    /// Sets the raw `prev` link, for the free lists.
    #[inline]
    pub(crate) fn set_prev_raw(&mut self, prev: u32) {
        self.prev = prev;
    }

    /// Clears `BUDDY_HEAD`: the frame no longer heads a free block (merged away or taken).
    #[inline]
    pub(crate) fn clear_free_head(&mut self) {
        self.flags = self.flags.difference(FrameFlags::BUDDY_HEAD);
        self.order = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_desc_fits_in_32_bytes() {
        assert_eq!(size_of::<FrameDesc>(), 32);
    }

    #[test]
    fn new_desc_is_reserved_and_unlinked() {
        let desc = FrameDesc::new();
        assert_eq!(desc.state(), FrameState::Reserved);
        assert_eq!((desc.next(), desc.prev()), (None, None));
        assert!(desc.flags().is_empty());
    }

    #[test]
    fn pub_flag_setters_cannot_touch_allocator_bits() {
        let mut desc = FrameDesc::new();
        desc.insert_flags(FrameFlags::BUDDY_HEAD | FrameFlags::DIRTY | FrameFlags::FILE);
        assert_eq!(desc.flags(), FrameFlags::DIRTY | FrameFlags::FILE);
        desc.mark_free_head(3);
        desc.remove_flags(FrameFlags::BUDDY_HEAD);
        assert!(desc.has_flags(FrameFlags::BUDDY_HEAD));
    }

    fn family_page(family: u32, addr: u64) -> FamilyPage {
        let page = crate::addr::Page::containing_address(crate::addr::VirtAddr::new(addr));
        FamilyPage { family: crate::fork_family::FamilyId::new(family).unwrap(), page }
    }

    #[test]
    fn counts_go_up_and_down() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        assert_eq!(desc.get_ref(), 2);
        assert_eq!(desc.put_ref(), 1);
        let at = family_page(3, 0x7eff_ffff_8000);
        assert_eq!(desc.add_mapping(at), 1);
        assert_eq!(desc.remove_mapping(at), 0);
        desc.set_state(FrameState::PageTable);
        assert_eq!(desc.state(), FrameState::PageTable);
    }

    #[test]
    fn the_first_mapping_names_the_place_and_the_last_forgets_it() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        assert_eq!(desc.family_page(), None);
        let at = family_page(7, 0x40_1000);
        assert_eq!((desc.add_mapping(at), desc.add_mapping(at)), (1, 2));
        assert_eq!(desc.family_page(), Some(at));
        assert_eq!(desc.remove_mapping(at), 1);
        assert_eq!(desc.family_page(), Some(at));
        assert_eq!(desc.remove_mapping(at), 0);
        assert_eq!(desc.family_page(), None);
        // Unmapped, the frame may be mapped anywhere next (a swap-cache page).
        let elsewhere = family_page(8, 0x2000);
        assert_eq!(desc.add_mapping(elsewhere), 1);
        assert_eq!(desc.family_page(), Some(elsewhere));
    }

    #[test]
    fn a_merged_page_counts_mappings_at_any_place_and_stays_merged_unmapped() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        let (a, b) = (family_page(1, 0x1000), family_page(2, 0x7000));
        desc.add_mapping(a);
        desc.make_ksm();
        assert!(desc.is_ksm());
        assert_eq!(desc.family_page(), None, "a merged page has no one place");
        assert_eq!(desc.add_mapping(b), 2);
        assert_eq!((desc.remove_mapping(a), desc.remove_mapping(b)), (1, 0));
        assert!(desc.is_ksm(), "still merged with no mapping (a swap-cache page)");
        desc.mark_allocated(FrameState::User, Some(0));
        assert!(!desc.is_ksm(), "freed and allocated again: an ordinary page");
    }

    #[test]
    fn a_second_place_at_swap_in_makes_the_frame_merged() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        let (a, b) = (family_page(1, 0x1000), family_page(2, 0x7000));
        assert_eq!(desc.add_mapping_or_merge(a), MappingAdded::AtItsPlace);
        assert_eq!(desc.add_mapping_or_merge(a), MappingAdded::AtItsPlace);
        assert_eq!(desc.add_mapping_or_merge(b), MappingAdded::BecameMerged { previous: a });
        assert_eq!(desc.add_mapping_or_merge(a), MappingAdded::Merged);
        assert_eq!((desc.map_count(), desc.refcount()), (4, 5));
    }

    #[test]
    #[should_panic(expected = "already at")]
    fn a_second_place_for_a_mapped_frame_panics() {
        let mut desc = FrameDesc::new();
        desc.add_mapping(family_page(1, 0x1000));
        desc.add_mapping(family_page(2, 0x1000));
    }

    #[test]
    #[should_panic(expected = "remove_mapping")]
    fn unmapping_from_another_place_panics() {
        let mut desc = FrameDesc::new();
        desc.add_mapping(family_page(1, 0x1000));
        desc.remove_mapping(family_page(1, 0x2000));
    }

    #[test]
    fn freeing_forgets_the_place() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        desc.add_mapping(family_page(1, 0x1000));
        desc.reset_free();
        assert_eq!((desc.family_page(), desc.map_count()), (None, 0));
    }

    #[test]
    fn a_sampled_reference_keeps_the_order_and_the_order_keeps_it() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(9));
        desc.mark_sampled_reference();
        assert_eq!(desc.order(), 9, "the mark is not part of the order");
        assert!(desc.is_compound_head());
        desc.set_alloc_order(0);
        assert_eq!((desc.order(), desc.is_compound_head()), (0, false));
        assert!(desc.sampled_reference(false), "a new order keeps the mark");
        assert!(desc.sampled_reference(true));
        assert!(!desc.sampled_reference(false), "cleared");
        desc.mark_sampled_reference();
        desc.reset_free();
        assert!(!desc.sampled_reference(false), "a freed frame forgets it");
    }

    #[test]
    fn the_policy_age_shares_the_flags_word_without_showing_in_the_flags() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        desc.insert_flags(FrameFlags::DIRTY);
        desc.set_policy_age(0xa5);
        assert_eq!((desc.policy_age(), desc.flags()), (0xa5, FrameFlags::ALLOC_HEAD | FrameFlags::DIRTY));
        desc.remove_flags(FrameFlags::DIRTY);
        desc.insert_flags(FrameFlags::LOCKED);
        assert_eq!(desc.policy_age(), 0xa5, "flag changes keep the age");
        desc.set_policy_age(0x01);
        assert_eq!((desc.policy_age(), desc.flags()), (0x01, FrameFlags::ALLOC_HEAD | FrameFlags::LOCKED));
        desc.reset_free();
        assert_eq!(desc.policy_age(), 0, "a freed frame forgets its age");
    }

    #[test]
    fn a_file_page_keeps_its_owner_and_counts_mappings_without_a_place() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        desc.set_file_owner(7, 1 << 33);
        assert_eq!(desc.file_owner(), Some((7, 1 << 33)));
        assert_eq!((desc.add_file_mapping(), desc.add_file_mapping()), (1, 2));
        assert_eq!(desc.family_page(), None, "a file page has no fork-family place");
        assert_eq!((desc.remove_file_mapping(), desc.remove_file_mapping()), (1, 0));
        desc.clear_file_owner();
        assert_eq!((desc.file_owner(), desc.flags()), (None, FrameFlags::ALLOC_HEAD));
    }

    #[test]
    #[should_panic(expected = "page-cache page")]
    fn an_anonymous_mapping_of_a_file_page_is_refused() {
        let mut desc = FrameDesc::new();
        desc.mark_allocated(FrameState::User, Some(0));
        desc.set_file_owner(1, 0);
        desc.add_mapping(family_page(1, 0x1000));
    }

    #[test]
    fn flags_debug_lists_names() {
        let flags = FrameFlags::DIRTY | FrameFlags::LOCKED;
        assert_eq!(alloc::format!("{flags:?}"), "FrameFlags(DIRTY | LOCKED)");
    }
}
