//! Reclaim: taking frames back from user pages by swapping them out.
//!
//! [`pageout`] is `madvise(MADV_PAGEOUT)`: it swaps out the resident pages of a
//! range now, through `swap::evict`, which unmaps each page from *every* process
//! that maps it (the reverse map finds them), so a page shared copy-on-write after
//! `fork` goes out too. (Linux skips pages mapped by other processes; we do not,
//! so tests can put shared pages in swap on purpose.)
//!
//! Lock state: called with no lock held; eviction takes the locks it needs.
#![deny(unsafe_code)]

use super::addr_space::VmError;
use super::rmap::SpaceRef;
use super::swap::{self, EvictError, Evicted};

/// What a [`pageout`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PageoutReport {
    /// Pages written to swap.
    pub nr_written: u64,
    /// Pages dropped without I/O (their slot still held them).
    pub nr_clean: u64,
    /// Pages that stayed (swap full or off, busy, or a write error).
    pub nr_kept: u64,
}

/// MADV_PAGEOUT: swaps out the resident pages of `[addr, addr + len)` of `space`.
///
/// Fails only on a bad range; pages that cannot go out (swap full, write error) stay
/// and are counted in the report.
pub fn pageout(space: &SpaceRef, addr: u64, len: u64) -> Result<PageoutReport, VmError> {
    let frames = space.lock().resident_frames(addr, len)?;
    let mut report = PageoutReport::default();
    for frame in frames {
        match swap::evict(frame) {
            Ok(Evicted::Written) => report.nr_written += 1,
            Ok(Evicted::Clean) => report.nr_clean += 1,
            Ok(Evicted::Remapped) | Err(EvictError::NotEvictable | EvictError::SwapFull | EvictError::Busy) => {
                report.nr_kept += 1;
            }
            Err(EvictError::WriteFailed(_)) => report.nr_kept += 1,
        }
    }
    Ok(report)
}
