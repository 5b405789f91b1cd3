//! `/proc/sys/vm/drop_caches`: a write of `1` or `3` drops every clean, unmapped,
//! unused page-cache page, as on Linux, so that the next read of a file comes from
//! the disk again (a "cold" read, as the file benchmark needs).
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

use super::FsError;
use crate::mm::page_cache;

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
