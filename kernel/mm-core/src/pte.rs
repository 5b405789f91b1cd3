//! Page-table entry encoding: the 64 bits the MMU reads, as plain data.
//!
//! A [`Pte`] is one 8-byte slot of an x86-64 page table at any level. When the
//! PRESENT bit is set, the MMU interprets it as a frame address plus [`PteFlags`];
//! when PRESENT is clear, the MMU ignores every other bit, so the kernel may store
//! its own data there. We use that to remember where a swapped-out page went: a
//! [`SwapEntry`] (swap area + slot) packed into a non-present PTE, the way Linux's
//! `__swp_entry` does. [`PageProt`] turns a VMA-style read/write/exec/user
//! protection into leaf flags.
//!
//! Neighbours: `addr` supplies [`Frame`] and [`PhysAddr`]; `pagetable` walks tables
//! of these entries; the kernel's fault handler decodes swap entries with
//! [`Pte::as_swap`].
//!
//! # Present entry (P = 1), as the MMU reads it
//!
//! ```text
//!  63 62     52 51                                   12 11 10 9  8 7 6 5 4 3 2 1 0
//! +--+---------+---------------------------------------+--+--+--+-+-+-+-+-+-+-+-+-+
//! |NX|  avail  |   physical frame number (40 bits)     |av|av|CW|G|H|D|A|C|T|U|W|P|
//! +--+---------+---------------------------------------+--+--+--+-+-+-+-+-+-+-+-+-+
//!   NX = NO_EXECUTE   CW = COW (software)   G = GLOBAL   H = HUGE (PS)   D = DIRTY
//!   A = ACCESSED   C = NO_CACHE   T = WRITE_THROUGH   U = USER   W = WRITABLE   P = PRESENT
//! ```
//!
//! Bit 7 means "this entry maps a huge page" (PS) only in level-3 and level-2
//! entries; in a level-1 entry the same bit is PAT, so 4 KiB leaves never set
//! [`PteFlags::HUGE`]. NO_EXECUTE is honoured only once the kernel sets EFER.NXE;
//! before that bit 63 is reserved and setting it makes every access fault.
//!
//! # Swap entry (P = 0)
//!
//! ```text
//!  63    59 58                                     12 11                 2  1  0
//! +--------+-----------------------------------------+--------------------+--+--+
//! |  area  |        ~slot (47 bits, inverted)        |  0  0  ...  0  0   | 1| 0|
//! +--------+-----------------------------------------+--------------------+--+--+
//!                                                                          SW  P
//! ```
//!
//! * P = 0, so the MMU faults on any access and ignores the rest.
//! * SW (bit 1) = 1 marks the entry as a swap entry, so it never equals the
//!   empty entry 0. Bits 2..12 are zero; any other non-present encoding (a future
//!   PROT_NONE or migration marker) must set one of them, and [`Pte::as_swap`]
//!   rejects it. Bit 7 stays clear so no walker mistakes the entry for a huge leaf.
//! * The slot is stored inverted, as Linux does since L1TF (CVE-2018-3620): a CPU
//!   may speculatively use the address bits of a non-present entry, so small slot
//!   numbers must not look like real, cached physical memory. Inverted, they name
//!   frames near the top of the 52-bit space, where no RAM is.

use core::fmt;

use bitflags::bitflags;

use crate::addr::{Frame, PhysAddr};

bitflags! {
    /// The flag bits of a page-table entry (everything but the frame address).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PteFlags: u64 {
        /// The entry is valid; the MMU ignores every other bit when this is clear.
        const PRESENT = 1 << 0;
        /// Writes are allowed (needed at every level; leaves decide in practice).
        const WRITABLE = 1 << 1;
        /// Ring-3 code may access the page (needed at every level).
        const USER = 1 << 2;
        /// Write-through caching instead of write-back (PWT).
        const WRITE_THROUGH = 1 << 3;
        /// Caching disabled (PCD), e.g. for device memory.
        const NO_CACHE = 1 << 4;
        /// Set by the MMU on any access through this entry.
        const ACCESSED = 1 << 5;
        /// Set by the MMU on a write through this leaf.
        const DIRTY = 1 << 6;
        /// PS: this level-3 or level-2 entry maps a 1 GiB or 2 MiB page (PAT at level 1).
        const HUGE = 1 << 7;
        /// The translation survives CR3 reloads (needs CR4.PGE); kernel pages only.
        const GLOBAL = 1 << 8;
        /// Software bit: the page is shared copy-on-write; a write fault copies it.
        const COW = 1 << 9;
        /// Instruction fetches fault (needs EFER.NXE).
        const NO_EXECUTE = 1 << 63;
    }
}

bitflags! {
    /// The protection a VMA asks for, before it is turned into x86 leaf flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct PageProt: u8 {
        /// Loads are allowed.
        const READ = 1 << 0;
        /// Stores are allowed (on x86 this implies READ).
        const WRITE = 1 << 1;
        /// Instruction fetches are allowed (on x86 this implies READ).
        const EXEC = 1 << 2;
        /// Ring-3 code may access the page.
        const USER = 1 << 3;
    }
}

impl PageProt {
    /// Returns the leaf flags that grant this protection.
    ///
    /// x86 cannot express write-only or execute-only pages, so any access bit
    /// makes the page PRESENT (readable). With no access bit at all (PROT_NONE)
    /// the result is empty: such a page must not have a present leaf.
    #[inline]
    pub fn leaf_flags(self) -> PteFlags {
        if !self.intersects(Self::READ | Self::WRITE | Self::EXEC) {
            return PteFlags::empty();
        }
        let mut flags = PteFlags::PRESENT;
        flags.set(PteFlags::WRITABLE, self.contains(Self::WRITE));
        flags.set(PteFlags::USER, self.contains(Self::USER));
        flags.set(PteFlags::NO_EXECUTE, !self.contains(Self::EXEC));
        flags
    }

    /// Returns the protection that the leaf flags `flags` actually grant.
    #[inline]
    pub fn from_leaf_flags(flags: PteFlags) -> Self {
        if !flags.contains(PteFlags::PRESENT) {
            return Self::empty();
        }
        let mut prot = Self::READ;
        prot.set(Self::WRITE, flags.contains(PteFlags::WRITABLE));
        prot.set(Self::EXEC, !flags.contains(PteFlags::NO_EXECUTE));
        prot.set(Self::USER, flags.contains(PteFlags::USER));
        prot
    }
}

/// A swapped-out page's location: which swap area, and which page-sized slot in it.
///
/// Linux calls the area the swap "type". Both fields are range-checked on
/// construction so that every `SwapEntry` fits in a non-present [`Pte`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SwapEntry {
    area: u8,
    slot: u64,
}

impl SwapEntry {
    /// Number of bits that hold the swap area.
    pub const AREA_BITS: u32 = 5;
    /// Number of bits that hold the slot.
    pub const SLOT_BITS: u32 = 47;
    /// The largest swap-area number (so at most 32 swap areas).
    pub const MAX_AREA: u8 = (1 << Self::AREA_BITS) - 1;
    /// The largest slot number (2^47 slots of 4 KiB is 512 PiB per area).
    pub const MAX_SLOT: u64 = (1 << Self::SLOT_BITS) - 1;

    /// Creates a swap entry; panics if `area` or `slot` is out of range.
    #[inline]
    pub const fn new(area: u8, slot: u64) -> Self {
        match Self::try_new(area, slot) {
            Some(entry) => entry,
            None => panic!("SwapEntry::new: area or slot out of range"),
        }
    }

    /// Creates a swap entry, or returns `None` if `area` or `slot` is out of range.
    #[inline]
    pub const fn try_new(area: u8, slot: u64) -> Option<Self> {
        if area <= Self::MAX_AREA && slot <= Self::MAX_SLOT { Some(Self { area, slot }) } else { None }
    }

    /// Returns the swap-area number.
    #[inline]
    pub const fn area(self) -> u8 {
        self.area
    }

    /// Returns the slot number inside the swap area.
    #[inline]
    pub const fn slot(self) -> u64 {
        self.slot
    }
}

/// One 64-bit page-table entry, at any level of the tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(transparent)]
pub struct Pte(u64);

impl Pte {
    /// The empty entry: nothing mapped, nothing swapped.
    pub const UNUSED: Pte = Pte(0);
    /// Bits 12..52: the physical address of the frame (or next-level table).
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

    const SWAP_MARKER: u64 = 1 << 1;
    const SWAP_LOW_MASK: u64 = 0xfff;
    const SWAP_SLOT_SHIFT: u32 = 12;
    const SWAP_AREA_SHIFT: u32 = Self::SWAP_SLOT_SHIFT + SwapEntry::SLOT_BITS;

    /// Creates an entry pointing at `frame` with `flags`.
    #[inline]
    pub fn new(frame: Frame, flags: PteFlags) -> Self {
        Self::from_addr(frame.start_address(), flags)
    }

    /// Creates an entry pointing at the 4 KiB-aligned physical address `addr`.
    ///
    /// Panics if `addr` is not 4 KiB aligned. Flag bits that overlap the address
    /// field are dropped.
    #[inline]
    pub fn from_addr(addr: PhysAddr, flags: PteFlags) -> Self {
        assert!(addr.as_u64() & !Self::ADDR_MASK == 0, "Pte::from_addr: unaligned address");
        Self(addr.as_u64() | (flags.bits() & !Self::ADDR_MASK))
    }

    /// Creates an entry from its raw 64 bits (as read from a page table).
    #[inline]
    pub const fn from_bits(bits: u64) -> Self {
        Self(bits)
    }

    /// Returns the raw 64 bits (as written to a page table).
    #[inline]
    pub const fn bits(self) -> u64 {
        self.0
    }

    /// Returns the physical address in bits 12..52, without flags or NX.
    #[inline]
    pub const fn addr(self) -> PhysAddr {
        PhysAddr::new(self.0 & Self::ADDR_MASK)
    }

    /// Returns the frame in bits 12..52 (for a huge leaf, its first frame).
    #[inline]
    pub const fn frame(self) -> Frame {
        Frame::containing_address(self.addr())
    }

    /// Returns the flag bits; bits that are not a named [`PteFlags`] are dropped.
    #[inline]
    pub const fn flags(self) -> PteFlags {
        PteFlags::from_bits_truncate(self.0 & !Self::ADDR_MASK)
    }

    /// Returns true if the MMU will use this entry.
    #[inline]
    pub const fn is_present(self) -> bool {
        self.0 & PteFlags::PRESENT.bits() != 0
    }

    /// Returns true if PS is set on a present entry (meaningful at levels 3 and 2 only).
    #[inline]
    pub const fn is_huge(self) -> bool {
        self.is_present() && self.0 & PteFlags::HUGE.bits() != 0
    }

    /// Returns true if the entry is all zeroes: nothing mapped and nothing swapped.
    #[inline]
    pub const fn is_unused(self) -> bool {
        self.0 == 0
    }

    /// Points the entry at `frame`, keeping its flags.
    #[inline]
    pub fn set_frame(&mut self, frame: Frame) {
        *self = Self::new(frame, self.flags());
    }

    /// Replaces all flags with `flags`, keeping the address.
    #[inline]
    pub fn set_flags(&mut self, flags: PteFlags) {
        self.0 = (self.0 & Self::ADDR_MASK) | (flags.bits() & !Self::ADDR_MASK);
    }

    /// Sets the flags in `flags`, keeping the others and the address.
    #[inline]
    pub fn insert_flags(&mut self, flags: PteFlags) {
        self.set_flags(self.flags() | flags);
    }

    /// Clears the flags in `flags`, keeping the others and the address.
    #[inline]
    pub fn remove_flags(&mut self, flags: PteFlags) {
        self.set_flags(self.flags() - flags);
    }

    /// Makes the entry unused (all zeroes).
    #[inline]
    pub fn clear(&mut self) {
        *self = Self::UNUSED;
    }

    /// Creates the non-present entry that records `entry` (layout in the module docs).
    #[inline]
    pub const fn swap(entry: SwapEntry) -> Self {
        let inverted_slot = !entry.slot & SwapEntry::MAX_SLOT;
        Self((entry.area as u64) << Self::SWAP_AREA_SHIFT | inverted_slot << Self::SWAP_SLOT_SHIFT | Self::SWAP_MARKER)
    }

    /// Returns the swap entry this PTE records, or `None` if it is not a swap entry.
    #[inline]
    pub const fn as_swap(self) -> Option<SwapEntry> {
        if self.0 & Self::SWAP_LOW_MASK != Self::SWAP_MARKER {
            return None;
        }
        let inverted_slot = (self.0 >> Self::SWAP_SLOT_SHIFT) & SwapEntry::MAX_SLOT;
        let area = (self.0 >> Self::SWAP_AREA_SHIFT) as u8;
        Some(SwapEntry { area, slot: !inverted_slot & SwapEntry::MAX_SLOT })
    }
}

impl fmt::Debug for Pte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unused() {
            write!(f, "Pte(unused)")
        } else if self.is_present() {
            write!(f, "Pte({:?}, {:?})", self.addr(), self.flags())
        } else if let Some(entry) = self.as_swap() {
            write!(f, "Pte(swap area {} slot {:#x})", entry.area(), entry.slot())
        } else {
            write!(f, "Pte(non-present {:#x})", self.0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Returns a spread of slot values: small, powers of two and their neighbours, the max.
    fn interesting_slots() -> impl Iterator<Item = u64> {
        let small = 0..64u64;
        let powers = (0..SwapEntry::SLOT_BITS).flat_map(|bit| {
            let p = 1u64 << bit;
            [p - 1, p, p + 1]
        });
        let top = [SwapEntry::MAX_SLOT - 1, SwapEntry::MAX_SLOT, 0x5555_5555_5555 & SwapEntry::MAX_SLOT];
        small.chain(powers).chain(top)
    }

    #[test]
    fn flags_round_trip_through_a_pte() {
        let all = PteFlags::all();
        let pte = Pte::new(Frame::from_pfn(0x12345), all);
        assert_eq!(pte.flags(), all);
        assert_eq!(pte.frame(), Frame::from_pfn(0x12345));
        for flag in all.iter() {
            let pte = Pte::new(Frame::from_pfn(7), flag);
            assert_eq!(pte.flags(), flag);
            assert_eq!(pte.frame(), Frame::from_pfn(7));
        }
    }

    #[test]
    fn addr_masks_flags_and_no_execute() {
        let max_pfn = (1u64 << 40) - 1;
        let pte = Pte::new(Frame::from_pfn(max_pfn), PteFlags::all());
        assert_eq!(pte.addr().as_u64(), 0x000f_ffff_ffff_f000);
        assert_eq!(pte.frame().pfn(), max_pfn);
        let raw = Pte::from_bits(u64::MAX);
        assert_eq!(raw.addr().as_u64(), Pte::ADDR_MASK);
        assert_eq!(raw.flags(), PteFlags::all());
        assert_eq!(Pte::new(Frame::from_pfn(0), PteFlags::NO_EXECUTE).bits(), 1 << 63);
    }

    #[test]
    #[should_panic(expected = "unaligned")]
    fn from_addr_rejects_unaligned_address() {
        let _ = Pte::from_addr(PhysAddr::new(0x1001), PteFlags::PRESENT);
    }

    #[test]
    fn set_and_clear_helpers_keep_the_other_half() {
        let mut pte = Pte::new(Frame::from_pfn(42), PteFlags::PRESENT | PteFlags::WRITABLE);
        pte.insert_flags(PteFlags::DIRTY | PteFlags::NO_EXECUTE);
        assert_eq!(pte.frame(), Frame::from_pfn(42));
        assert!(pte.flags().contains(PteFlags::DIRTY | PteFlags::NO_EXECUTE | PteFlags::WRITABLE));
        pte.remove_flags(PteFlags::WRITABLE);
        assert!(!pte.flags().contains(PteFlags::WRITABLE));
        pte.set_frame(Frame::from_pfn(43));
        assert_eq!(pte.frame(), Frame::from_pfn(43));
        assert!(pte.flags().contains(PteFlags::DIRTY));
        pte.set_flags(PteFlags::PRESENT | PteFlags::HUGE);
        assert!(pte.is_present() && pte.is_huge());
        assert_eq!(pte.frame(), Frame::from_pfn(43));
        pte.clear();
        assert!(pte.is_unused() && !pte.is_present() && !pte.is_huge());
    }

    #[test]
    fn is_huge_needs_present() {
        let pte = Pte::from_bits(PteFlags::HUGE.bits());
        assert!(!pte.is_huge());
    }

    #[test]
    fn swap_entry_round_trips_many_area_and_slot_values() {
        for area in 0..=SwapEntry::MAX_AREA {
            for slot in interesting_slots() {
                let entry = SwapEntry::new(area, slot);
                let pte = Pte::swap(entry);
                assert_eq!(pte.as_swap(), Some(entry), "area {area} slot {slot:#x}");
            }
        }
    }

    #[test]
    fn swap_entry_is_never_present_nor_unused_nor_huge() {
        for area in 0..=SwapEntry::MAX_AREA {
            for slot in interesting_slots() {
                let pte = Pte::swap(SwapEntry::new(area, slot));
                assert!(!pte.is_present());
                assert!(!pte.is_unused());
                assert_ne!(pte.bits(), 0);
                assert_eq!(pte.bits() & PteFlags::HUGE.bits(), 0);
            }
        }
    }

    #[test]
    fn as_swap_rejects_present_unused_and_other_non_present_entries() {
        assert_eq!(Pte::UNUSED.as_swap(), None);
        let present = Pte::new(Frame::from_pfn(1), PteFlags::PRESENT | PteFlags::WRITABLE);
        assert_eq!(present.as_swap(), None);
        let swap = Pte::swap(SwapEntry::new(3, 99));
        assert_eq!(Pte::from_bits(swap.bits() | 1).as_swap(), None);
        for other_marker in 2..12 {
            assert_eq!(Pte::from_bits(swap.bits() | 1 << other_marker).as_swap(), None);
        }
    }

    #[test]
    fn swap_slot_is_inverted_so_small_slots_point_above_ram() {
        let pte = Pte::swap(SwapEntry::new(0, 0));
        assert_eq!(pte.addr().as_u64(), Pte::ADDR_MASK);
        let pte = Pte::swap(SwapEntry::new(0, SwapEntry::MAX_SLOT));
        assert_eq!(pte.bits(), 0b10);
        let pte = Pte::swap(SwapEntry::new(SwapEntry::MAX_AREA, 0));
        assert_eq!(pte.bits() >> 59, 0x1f);
    }

    #[test]
    fn swap_entry_try_new_rejects_out_of_range() {
        assert!(SwapEntry::try_new(SwapEntry::MAX_AREA + 1, 0).is_none());
        assert!(SwapEntry::try_new(0, SwapEntry::MAX_SLOT + 1).is_none());
        assert!(SwapEntry::try_new(SwapEntry::MAX_AREA, SwapEntry::MAX_SLOT).is_some());
    }

    #[test]
    fn page_prot_maps_to_leaf_flags_and_back() {
        let rw_user = PageProt::READ | PageProt::WRITE | PageProt::USER;
        let flags = rw_user.leaf_flags();
        assert_eq!(flags, PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::USER | PteFlags::NO_EXECUTE);
        assert_eq!(PageProt::from_leaf_flags(flags), rw_user);
        let rx = PageProt::READ | PageProt::EXEC;
        assert_eq!(rx.leaf_flags(), PteFlags::PRESENT);
        assert_eq!(PageProt::from_leaf_flags(rx.leaf_flags()), rx);
        assert_eq!(PageProt::USER.leaf_flags(), PteFlags::empty());
        let write_only = PageProt::WRITE.leaf_flags();
        assert_eq!(PageProt::from_leaf_flags(write_only), PageProt::READ | PageProt::WRITE);
    }

    #[test]
    fn debug_output_names_the_kind_of_entry() {
        use alloc::format;
        assert_eq!(format!("{:?}", Pte::UNUSED), "Pte(unused)");
        assert_eq!(format!("{:?}", Pte::swap(SwapEntry::new(1, 0x20))), "Pte(swap area 1 slot 0x20)");
        let present = format!("{:?}", Pte::new(Frame::from_pfn(1), PteFlags::PRESENT));
        assert!(present.contains("0x1000") && present.contains("PRESENT"), "{present}");
    }
}
