//! The swap area's header page: what slot 0 of a swap disk holds, as plain bytes.
//!
//! A swap area is a disk cut into page-sized slots. Slot 0 is the header; slots
//! `1..nr_slots` hold pages (the [`crate::swap_map::SwapMap`] never hands out slot 0).
//! The header says the disk is ours and how big the area is:
//!
//! ```text
//!  offset  size  field
//!  0       8     signature   b"RKSWAP01"
//!  8       4     version     1 (little endian)
//!  12      4     page_size   4096
//!  16      8     nr_slots    slots in the area, the header slot included
//!  24      4     checksum    FNV-1a of bytes 0..24
//!  28      4068  zero
//! ```
//!
//! [`SwapHeader::inspect`] sorts any page into three cases, and the kernel acts on each:
//! - [`HeaderCheck::Blank`]: every byte is zero, a fresh disk: the kernel formats it
//!   (writes [`SwapHeader::encode`]) and uses it;
//! - [`HeaderCheck::Valid`]: our header, consistent with the disk's size: used as is;
//! - [`HeaderCheck::Refused`]: anything else (another file system, another version, a
//!   corrupt or truncated header): the kernel leaves the disk alone and runs without
//!   swap. A disk that is not blank is never overwritten.
//!
//! Neighbours: `swap_area` reads and writes the header page on a block device (the
//! kernel calls it from `mm/swap/area.rs`); `swap_map` allocates the slots the header describes.

use core::fmt;

/// The signature at the start of the header page.
pub const SIGNATURE: [u8; 8] = *b"RKSWAP01";
/// The header layout version this code writes and accepts.
pub const VERSION: u32 = 1;
/// The bytes a header occupies (the rest of the page must be zero).
pub const HEADER_BYTES: usize = 28;

/// A decoded swap-area header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SwapHeader {
    /// Bytes in a slot (the page size the area was formatted with).
    pub page_size: u32,
    /// Slots in the area, the header slot included.
    pub nr_slots: u64,
}

/// Why a non-blank header page was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The page is shorter than a header.
    Truncated,
    /// The first 8 bytes are not [`SIGNATURE`]: not a swap area of ours.
    Foreign([u8; 8]),
    /// Our signature with a version we do not know.
    Version(u32),
    /// The checksum does not match the header bytes.
    Checksum {
        /// The checksum stored in the header.
        stored: u32,
        /// The checksum of the bytes actually there.
        computed: u32,
    },
    /// The page size differs from the one the kernel uses.
    PageSize(u32),
    /// Fewer than two slots (no room for a single page), or more than the disk holds.
    SlotCount {
        /// Slots the header claims.
        nr_slots: u64,
        /// Slots the disk can hold.
        capacity: u64,
    },
    /// The bytes after the header are not all zero.
    TrailingBytes,
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Truncated => write!(f, "the header page is truncated"),
            HeaderError::Foreign(bytes) => write!(f, "foreign signature {bytes:02x?} (not RKSWAP01)"),
            HeaderError::Version(v) => write!(f, "unknown version {v} (this kernel knows {VERSION})"),
            HeaderError::Checksum { stored, computed } => {
                write!(f, "checksum {stored:#010x} stored, {computed:#010x} computed")
            }
            HeaderError::PageSize(size) => write!(f, "page size {size}, not the kernel's"),
            HeaderError::SlotCount { nr_slots, capacity } => {
                write!(f, "{nr_slots} slots claimed, the disk holds 2..={capacity}")
            }
            HeaderError::TrailingBytes => write!(f, "non-zero bytes after the header"),
        }
    }
}

/// What a header page turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// All zero: a fresh disk, to be formatted.
    Blank,
    /// A valid header of ours.
    Valid(SwapHeader),
    /// Something else: leave the disk alone.
    Refused(HeaderError),
}

/// Returns the 32-bit FNV-1a hash of `bytes`.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, &b| (hash ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

fn u32_at(page: &[u8], offset: usize) -> u32 {
    let mut bytes = [0; 4];
    bytes.copy_from_slice(&page[offset..offset + 4]);
    u32::from_le_bytes(bytes)
}

fn u64_at(page: &[u8], offset: usize) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&page[offset..offset + 8]);
    u64::from_le_bytes(bytes)
}

impl SwapHeader {
    /// Creates the header of an area of `nr_slots` slots of `page_size` bytes.
    pub const fn new(page_size: u32, nr_slots: u64) -> SwapHeader {
        SwapHeader { page_size, nr_slots }
    }

    /// Writes the header into the start of `page` and zeroes the rest.
    ///
    /// `page` should be one whole page; a shorter slice gets as much as fits.
    pub fn encode(&self, page: &mut [u8]) {
        page.fill(0);
        let mut header = [0u8; HEADER_BYTES];
        header[0..8].copy_from_slice(&SIGNATURE);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&self.page_size.to_le_bytes());
        header[16..24].copy_from_slice(&self.nr_slots.to_le_bytes());
        let checksum = fnv1a(&header[0..24]);
        header[24..28].copy_from_slice(&checksum.to_le_bytes());
        let n = header.len().min(page.len());
        page[..n].copy_from_slice(&header[..n]);
    }

    /// Sorts `page` into blank, valid or refused, for a disk of `capacity_slots` slots
    /// and a kernel whose pages are `page_size` bytes.
    pub fn inspect(page: &[u8], page_size: u32, capacity_slots: u64) -> HeaderCheck {
        if page.iter().all(|&b| b == 0) {
            return HeaderCheck::Blank;
        }
        match Self::decode(page, page_size, capacity_slots) {
            Ok(header) => HeaderCheck::Valid(header),
            Err(e) => HeaderCheck::Refused(e),
        }
    }

    /// Decodes and validates a non-blank header page.
    fn decode(page: &[u8], page_size: u32, capacity_slots: u64) -> Result<SwapHeader, HeaderError> {
        if page.len() < HEADER_BYTES {
            return Err(HeaderError::Truncated);
        }
        let mut signature = [0u8; 8];
        signature.copy_from_slice(&page[0..8]);
        if signature != SIGNATURE {
            return Err(HeaderError::Foreign(signature));
        }
        let version = u32_at(page, 8);
        if version != VERSION {
            return Err(HeaderError::Version(version));
        }
        let (stored, computed) = (u32_at(page, 24), fnv1a(&page[0..24]));
        if stored != computed {
            return Err(HeaderError::Checksum { stored, computed });
        }
        let header = SwapHeader { page_size: u32_at(page, 12), nr_slots: u64_at(page, 16) };
        if header.page_size != page_size {
            return Err(HeaderError::PageSize(header.page_size));
        }
        if header.nr_slots < 2 || header.nr_slots > capacity_slots {
            return Err(HeaderError::SlotCount { nr_slots: header.nr_slots, capacity: capacity_slots });
        }
        if page[HEADER_BYTES..].iter().any(|&b| b != 0) {
            return Err(HeaderError::TrailingBytes);
        }
        Ok(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn encoded(nr_slots: u64) -> [u8; PAGE] {
        let mut page = [0xaa; PAGE];
        SwapHeader::new(PAGE as u32, nr_slots).encode(&mut page);
        page
    }

    #[test]
    fn a_zero_page_is_blank() {
        assert_eq!(SwapHeader::inspect(&[0; PAGE], 4096, 100), HeaderCheck::Blank);
    }

    #[test]
    fn an_encoded_header_round_trips() {
        let page = encoded(64);
        assert_eq!(&page[..8], b"RKSWAP01");
        assert!(page[HEADER_BYTES..].iter().all(|&b| b == 0), "encode zeroes the rest");
        assert_eq!(SwapHeader::inspect(&page, 4096, 64), HeaderCheck::Valid(SwapHeader::new(4096, 64)));
        assert_eq!(SwapHeader::inspect(&page, 4096, 1000), HeaderCheck::Valid(SwapHeader::new(4096, 64)));
    }

    #[test]
    fn foreign_data_is_refused() {
        let mut page = [0u8; PAGE];
        page[..8].copy_from_slice(b"EXT4FS!!");
        assert_eq!(SwapHeader::inspect(&page, 4096, 64), HeaderCheck::Refused(HeaderError::Foreign(*b"EXT4FS!!")));
        let mut page = [0u8; PAGE];
        page[4000] = 1; // zero signature, but not blank
        assert!(matches!(SwapHeader::inspect(&page, 4096, 64), HeaderCheck::Refused(HeaderError::Foreign(_))));
    }

    #[test]
    fn every_damaged_field_is_refused() {
        let mut page = encoded(64);
        page[8] = 2;
        assert_eq!(SwapHeader::inspect(&page, 4096, 64), HeaderCheck::Refused(HeaderError::Version(2)));
        let mut page = encoded(64);
        page[17] ^= 1; // nr_slots changed, checksum not
        assert!(matches!(SwapHeader::inspect(&page, 4096, 1 << 20), HeaderCheck::Refused(HeaderError::Checksum { .. })));
        let page = encoded(64);
        assert_eq!(SwapHeader::inspect(&page, 8192, 64), HeaderCheck::Refused(HeaderError::PageSize(4096)));
        assert_eq!(
            SwapHeader::inspect(&page, 4096, 63),
            HeaderCheck::Refused(HeaderError::SlotCount { nr_slots: 64, capacity: 63 })
        );
        let page = encoded(1);
        assert!(matches!(SwapHeader::inspect(&page, 4096, 64), HeaderCheck::Refused(HeaderError::SlotCount { .. })));
        let mut page = encoded(64);
        page[PAGE - 1] = 7;
        assert_eq!(SwapHeader::inspect(&page, 4096, 64), HeaderCheck::Refused(HeaderError::TrailingBytes));
        assert_eq!(SwapHeader::inspect(&page[..10], 4096, 64), HeaderCheck::Refused(HeaderError::Truncated));
    }

    #[test]
    fn refusals_print_a_reason() {
        let text = alloc::format!("{}", HeaderError::Version(9));
        assert!(text.contains("version 9"), "{text}");
    }
}
