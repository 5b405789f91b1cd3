//! `/proc/sys/vm/drop_caches`: a write of `1` or `3` drops every clean, unmapped,
//! unused page-cache page, as on Linux, so that the next read of a file comes from
//! the disk again (a "cold" read, as the file benchmark needs). And its neighbour
//! `/proc/sys/vm/fault_around_bytes` (Linux keeps it in debugfs): 65536, a read
//! fault on a file mapping maps the 16 cached pages around it (`mm/filemap.rs`),
//! or 4096, one page per fault; no other size.
//!
//! ```text
//!   echo 3 > /proc/sys/vm/drop_caches
//!     -> page_cache::drop_clean_pages_everywhere()   every cache's clean pages freed
//! ```
//! Linux's values: 1 page cache, 2 slab objects (dentries and inodes), 3 both; 4
//! only silences the message. This kernel has no dentry or inode cache to drop, so
//! 2 and 4 drop nothing; anything else is EINVAL and drops nothing. Dirty pages
//! stay (write them first: `sync` or `fsync`), as do mapped pages and pages in use
//! by I/O. procfs (`fs/procfs/sys_vm.rs`) routes the file here and reads back the
//! last value written; the only thing touched is the page cache, through its own locks.

use alloc::string::String;

use super::FsError;
use crate::mm::{PAGE_SIZE, filemap, page_cache};

/// Applies one write of the knob: `text` is a number from 1 to 4, with surrounding
/// white space (`echo` adds a newline).
pub fn write(text: &str) -> Result<(), FsError> {
    let value: u32 = text.trim().parse().map_err(|_| FsError::Invalid)?;
    if !(1..=4).contains(&value) {
        return Err(FsError::Invalid);
    }
    if value & 1 != 0 {
        let nr_dropped = page_cache::drop_clean_pages_everywhere();
        if value & 4 == 0 {
            log::info!("drop_caches: {value}: {nr_dropped} clean page-cache pages dropped");
        }
    }
    Ok(())
}

/// The bytes fault-around maps when it is on: [`filemap::FAULT_AROUND_PAGES`] pages.
const FAULT_AROUND_ON_BYTES: u64 = filemap::FAULT_AROUND_PAGES * PAGE_SIZE;

/// `fault_around_bytes` when read: 65536 while fault-around is on, 4096 while off.
pub fn fault_around_read() -> String {
    let bytes = if filemap::is_fault_around_on() { FAULT_AROUND_ON_BYTES } else { PAGE_SIZE };
    alloc::format!("{bytes}\n")
}

/// Applies a write of `fault_around_bytes`: 4096 switches fault-around off, 65536
/// on; any other value is EINVAL (Linux rounds to a power of two; this kernel has
/// the two sizes).
pub fn fault_around_write(text: &str) -> Result<(), FsError> {
    match text.trim().parse::<u64>() {
        Ok(PAGE_SIZE) => filemap::set_fault_around(false),
        Ok(FAULT_AROUND_ON_BYTES) => filemap::set_fault_around(true),
        _ => return Err(FsError::Invalid),
    }
    Ok(())
}
