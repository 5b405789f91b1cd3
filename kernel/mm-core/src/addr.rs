//! Address and frame-number types: the vocabulary every other module speaks.
//!
//! Physical and virtual memory get distinct newtypes so the compiler refuses to
//! mix them: [`PhysAddr`] / [`VirtAddr`] for byte addresses, [`Frame`] / [`Page`]
//! for 4 KiB-aligned units of each, and [`Order`] for power-of-two block sizes of
//! the buddy allocator. Nothing here touches memory; it is arithmetic only.

use core::fmt;
use core::ops::{Add, Sub};

/// Size of a base page (and of a physical frame) in bytes.
pub const PAGE_SIZE: u64 = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;
/// Size of a huge (2 MiB) page, mapped by a level-2 entry.
pub const HUGE_PAGE_SIZE: u64 = 2 * 1024 * 1024;

/// Rounds `x` down to a multiple of `align` (a power of two).
#[inline]
pub const fn align_down(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    x & !(align - 1)
}

/// Rounds `x` up to a multiple of `align` (a power of two). Saturates near `u64::MAX`.
#[inline]
pub const fn align_up(x: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    match x.checked_add(align - 1) {
        Some(v) => v & !(align - 1),
        None => !(align - 1),
    }
}

/// A physical byte address (52 bits are architecturally allowed on x86-64).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct PhysAddr(u64);

/// The error returned when a physical address has bits set above bit 51.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PhysAddrNotValid(pub u64);

impl PhysAddr {
    /// The highest bit a physical address may have set, plus one.
    pub const MAX_BITS: u32 = 52;

    /// Creates a physical address; panics if bits 52..64 are set.
    #[inline]
    pub const fn new(addr: u64) -> Self {
        match Self::try_new(addr) {
            Ok(a) => a,
            Err(_) => panic!("PhysAddr::new: address wider than 52 bits"),
        }
    }

    /// Creates a physical address, or returns an error if bits 52..64 are set.
    #[inline]
    pub const fn try_new(addr: u64) -> Result<Self, PhysAddrNotValid> {
        if addr >> Self::MAX_BITS == 0 { Ok(Self(addr)) } else { Err(PhysAddrNotValid(addr)) }
    }

    /// Returns the address as a plain integer.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Returns the address rounded down to `align` (a power of two).
    #[inline]
    pub const fn align_down(self, align: u64) -> Self {
        Self(align_down(self.0, align))
    }

    /// Returns the address rounded up to `align` (a power of two).
    #[inline]
    pub const fn align_up(self, align: u64) -> Self {
        Self(align_up(self.0, align))
    }

    /// Returns true if the address is a multiple of `align` (a power of two).
    #[inline]
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }
}

impl Add<u64> for PhysAddr {
    type Output = PhysAddr;
    fn add(self, rhs: u64) -> PhysAddr {
        PhysAddr::new(self.0 + rhs)
    }
}

impl Sub<PhysAddr> for PhysAddr {
    type Output = u64;
    fn sub(self, rhs: PhysAddr) -> u64 {
        self.0 - rhs.0
    }
}

impl fmt::Debug for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysAddr({:#x})", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A canonical virtual byte address: bits 48..64 are copies of bit 47.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct VirtAddr(u64);

/// The error returned when a virtual address is not canonical.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VirtAddrNotValid(pub u64);

impl VirtAddr {
    /// Creates a virtual address; panics if it is not canonical.
    #[inline]
    pub const fn new(addr: u64) -> Self {
        match Self::try_new(addr) {
            Ok(a) => a,
            Err(_) => panic!("VirtAddr::new: non-canonical address"),
        }
    }

    /// Creates a virtual address, or returns an error if it is not canonical.
    #[inline]
    pub const fn try_new(addr: u64) -> Result<Self, VirtAddrNotValid> {
        let v = Self::new_truncate(addr);
        if v.0 == addr { Ok(v) } else { Err(VirtAddrNotValid(addr)) }
    }

    /// Creates a virtual address by sign-extending bit 47 over bits 48..64.
    #[inline]
    pub const fn new_truncate(addr: u64) -> Self {
        Self((((addr << 16) as i64) >> 16) as u64)
    }

    /// Returns the address as a plain integer.
    #[inline]
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Returns true if this address is in the lower (user) half.
    #[inline]
    pub const fn is_lower_half(self) -> bool {
        self.0 >> 47 == 0
    }

    /// Returns the address rounded down to `align` (a power of two).
    #[inline]
    pub const fn align_down(self, align: u64) -> Self {
        Self(align_down(self.0, align))
    }

    /// Returns the address rounded up to `align` (a power of two), kept canonical.
    #[inline]
    pub const fn align_up(self, align: u64) -> Self {
        Self::new_truncate(align_up(self.0, align))
    }

    /// Returns true if the address is a multiple of `align` (a power of two).
    #[inline]
    pub const fn is_aligned(self, align: u64) -> bool {
        self.0 & (align - 1) == 0
    }

    /// Returns the offset of this address inside its 4 KiB page.
    #[inline]
    pub const fn page_offset(self) -> u64 {
        self.0 & (PAGE_SIZE - 1)
    }

    /// Returns the index into the page table at `level` (4 = PML4 ... 1 = PT).
    #[inline]
    pub const fn table_index(self, level: u8) -> usize {
        debug_assert!(level >= 1 && level <= 4);
        ((self.0 >> (12 + 9 * (level as u32 - 1))) & 0x1ff) as usize
    }

    /// Returns the PML4 (level-4) index.
    #[inline]
    pub const fn p4_index(self) -> usize {
        self.table_index(4)
    }
    /// Returns the PDPT (level-3) index.
    #[inline]
    pub const fn p3_index(self) -> usize {
        self.table_index(3)
    }
    /// Returns the page-directory (level-2) index.
    #[inline]
    pub const fn p2_index(self) -> usize {
        self.table_index(2)
    }
    /// Returns the page-table (level-1) index.
    #[inline]
    pub const fn p1_index(self) -> usize {
        self.table_index(1)
    }
}

impl Add<u64> for VirtAddr {
    type Output = VirtAddr;
    fn add(self, rhs: u64) -> VirtAddr {
        VirtAddr::new_truncate(self.0.wrapping_add(rhs))
    }
}

impl Sub<VirtAddr> for VirtAddr {
    type Output = u64;
    fn sub(self, rhs: VirtAddr) -> u64 {
        self.0.wrapping_sub(rhs.0)
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VirtAddr({:#x})", self.0)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A 4 KiB physical frame, named by its frame number (physical address >> 12).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Frame(u64);

impl Frame {
    /// Creates the frame with frame number `pfn`.
    #[inline]
    pub const fn from_pfn(pfn: u64) -> Self {
        Self(pfn)
    }

    /// Returns the frame that contains `addr`.
    #[inline]
    pub const fn containing_address(addr: PhysAddr) -> Self {
        Self(addr.as_u64() >> PAGE_SHIFT)
    }

    /// Returns the frame number.
    #[inline]
    pub const fn pfn(self) -> u64 {
        self.0
    }

    /// Returns the physical address of the frame's first byte.
    #[inline]
    pub const fn start_address(self) -> PhysAddr {
        PhysAddr(self.0 << PAGE_SHIFT)
    }
}

impl Add<u64> for Frame {
    type Output = Frame;
    fn add(self, rhs: u64) -> Frame {
        Frame(self.0 + rhs)
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame(pfn {:#x})", self.0)
    }
}

/// A 4 KiB virtual page, named by its page number (virtual address >> 12).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Page(VirtAddr);

impl Page {
    /// Returns the page that contains `addr`.
    #[inline]
    pub const fn containing_address(addr: VirtAddr) -> Self {
        Self(addr.align_down(PAGE_SIZE))
    }

    /// Returns the page starting at `addr`, or `None` if `addr` is not 4 KiB aligned.
    #[inline]
    pub const fn from_start_address(addr: VirtAddr) -> Option<Self> {
        if addr.is_aligned(PAGE_SIZE) { Some(Self(addr)) } else { None }
    }

    /// Returns the virtual address of the page's first byte.
    #[inline]
    pub const fn start_address(self) -> VirtAddr {
        self.0
    }

    /// Returns the page `n` pages after this one.
    #[inline]
    pub fn offset(self, n: u64) -> Page {
        Page(self.0 + n * PAGE_SIZE)
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Page({:#x})", self.0.as_u64())
    }
}

/// A buddy-allocator block order: a block of order `n` is `2^n` contiguous frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct Order(pub u8);

impl Order {
    /// Returns the number of frames in a block of this order.
    #[inline]
    pub const fn nr_frames(self) -> u64 {
        1 << self.0
    }

    /// Returns the size in bytes of a block of this order.
    #[inline]
    pub const fn size_bytes(self) -> u64 {
        PAGE_SIZE << self.0
    }

    /// Returns the smallest order whose blocks hold `size_bytes` bytes.
    #[inline]
    pub const fn for_size(size_bytes: u64) -> Order {
        let frames = align_up(if size_bytes == 0 { 1 } else { size_bytes }, PAGE_SIZE) / PAGE_SIZE;
        Order(frames.next_power_of_two().trailing_zeros() as u8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virt_addr_canonical_checks() {
        assert!(VirtAddr::try_new(0x0000_7fff_ffff_ffff).is_ok());
        assert!(VirtAddr::try_new(0x0000_8000_0000_0000).is_err());
        assert!(VirtAddr::try_new(0xffff_8000_0000_0000).is_ok());
        assert_eq!(VirtAddr::new_truncate(0x0000_8000_0000_0000).as_u64(), 0xffff_8000_0000_0000);
    }

    #[test]
    fn table_indices_decompose_an_address() {
        let v = VirtAddr::new(0xffff_8000_4020_1abc);
        assert_eq!(v.p4_index(), 256);
        assert_eq!(v.p3_index(), 1);
        assert_eq!(v.p2_index(), 1);
        assert_eq!(v.p1_index(), 1);
        assert_eq!(v.page_offset(), 0xabc);
    }

    #[test]
    fn order_for_size_rounds_up_to_power_of_two_frames() {
        assert_eq!(Order::for_size(0), Order(0));
        assert_eq!(Order::for_size(4096), Order(0));
        assert_eq!(Order::for_size(4097), Order(1));
        assert_eq!(Order::for_size(3 * 4096), Order(2));
        assert_eq!(Order(10).size_bytes(), 4 << 20);
    }

    #[test]
    fn phys_addr_rejects_wide_addresses() {
        assert!(PhysAddr::try_new(1 << 52).is_err());
        assert_eq!(Frame::containing_address(PhysAddr::new(0x5fff)).pfn(), 5);
        assert_eq!(Frame::from_pfn(5).start_address().as_u64(), 0x5000);
    }
}
