//! `/proc/sys/vm/`: the knobs of the memory manager that are real in this kernel.
//! Reading one shows its value; writing one (`echo VALUE > knob`, one value per
//! write, a trailing newline allowed) applies it at once, or, for a value out of
//! range, fails with EINVAL and changes nothing.
//!
//! ```text
//!  page_replacement       [clock] eclock fifo ...  the replacement policy (`mm::reclaim::set_policy`),
//!                         switched at run time; the brackets mark the one in force
//!  page-cluster           log2 of the largest swap readahead (Linux's; 0: one page, no readahead)
//!  read_ahead_kb          the largest file readahead window in KiB (Linux keeps one per disk)
//!  drop_caches            write 1 (or 3): drop every clean, unmapped page-cache page
//!  transparent_hugepage   always [madvise] never: when faults map huge pages (`mm::thp`)
//!  load_control           1/0: the load controller that swaps whole processes out under thrashing
//!  watermark_scale_factor 1..=3000 (default 10): the gap between the watermarks min, low
//!                         and high in 1/10000 of memory (`mm_core::watermarks`); a write
//!                         recomputes low and high (see them in /proc/zoneinfo)
//! ```
//! `transparent_hugepage` is `/sys/kernel/mm/transparent_hugepage/enabled` on
//! Linux; this kernel has no sysfs, and a mount of its own for one file would teach
//! nothing, so it lives with the other memory knobs here, in sysfs's format (the
//! choices, the one in force in brackets) so that a parser of Linux's file reads it.
//! `page_replacement` is ours (Linux has one policy), in the same format.
//! Linux's `overcommit_memory` is absent: there is no overcommit accounting to turn.

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU64, Ordering};

use crate::fs::FsError;
use crate::mm::{PAGE_SIZE, page_cache, reclaim, swap, thp};
use crate::proc::load_control;

/// Returns `text` without the blanks around it (`echo` adds a newline).
fn value(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// Parses a decimal number, or EINVAL.
fn number(text: &str) -> Result<u64, FsError> {
    value(text).parse().map_err(|_| FsError::Invalid)
}

/// Returns `names` in sysfs's choice format, `[chosen]` in brackets: `a [b] c\n`.
fn choices<'a>(names: impl Iterator<Item = &'a str>, chosen: &str) -> String {
    let words: alloc::vec::Vec<String> =
        names.map(|n| if n == chosen { format!("[{n}]") } else { String::from(n) }).collect();
    format!("{}\n", words.join(" "))
}

pub(super) fn page_replacement() -> String {
    choices(reclaim::PolicyKind::ALL.iter().map(|k| k.name()), reclaim::policy_kind().name())
}

pub(super) fn set_page_replacement(text: &str) -> Result<(), FsError> {
    let kind = reclaim::PolicyKind::parse(value(text)).ok_or(FsError::Invalid)?;
    reclaim::set_policy(kind);
    Ok(())
}

pub(super) fn page_cluster() -> String {
    format!("{}\n", swap::readahead_max_pages().ilog2())
}

pub(super) fn set_page_cluster(text: &str) -> Result<(), FsError> {
    let order = number(text)?;
    if order >= 32 || !swap::set_readahead_max_pages(1 << order) {
        return Err(FsError::Invalid);
    }
    Ok(())
}

pub(super) fn read_ahead_kb() -> String {
    format!("{}\n", u64::from(page_cache::readahead_max_pages()) * PAGE_SIZE / 1024)
}

/// The largest `read_ahead_kb` accepted: 16 MiB (Linux allows more; a window is
/// read into frames at once, so a huge one is only a way to empty memory).
const MAX_READ_AHEAD_KB: u64 = 16 * 1024;

pub(super) fn set_read_ahead_kb(text: &str) -> Result<(), FsError> {
    let kb = number(text)?;
    if kb > MAX_READ_AHEAD_KB || kb % (PAGE_SIZE / 1024) != 0 {
        return Err(FsError::Invalid);
    }
    page_cache::set_readahead_max_pages((kb * 1024 / PAGE_SIZE) as u32);
    Ok(())
}

/// The last value written to `drop_caches` (Linux's `sysctl_drop_caches`: reading
/// the file shows it).
static LAST_DROP_CACHES: AtomicU64 = AtomicU64::new(0);

pub(super) fn drop_caches() -> String {
    format!("{}\n", LAST_DROP_CACHES.load(Ordering::Relaxed))
}

/// Linux's values: 1 drops the clean unmapped page cache, 2 (dentries and inodes)
/// and 4 (silence) drop nothing here, 3 is 1 and 2 (`fs/drop_caches.rs` does it).
pub(super) fn set_drop_caches(text: &str) -> Result<(), FsError> {
    let value = number(text)?;
    crate::fs::drop_caches::write(text)?;
    LAST_DROP_CACHES.store(value, Ordering::Relaxed);
    Ok(())
}

pub(super) fn transparent_hugepage() -> String {
    let modes = [thp::ThpMode::Always, thp::ThpMode::Madvise, thp::ThpMode::Never];
    choices(modes.iter().map(|m| m.name()), thp::mode().name())
}

pub(super) fn set_transparent_hugepage(text: &str) -> Result<(), FsError> {
    thp::set_mode(thp::ThpMode::parse(value(text)).ok_or(FsError::Invalid)?);
    Ok(())
}

pub(super) fn load_control() -> String {
    format!("{}\n", u8::from(load_control::is_enabled()))
}

pub(super) fn set_load_control(text: &str) -> Result<(), FsError> {
    match number(text)? {
        0 => load_control::set_enabled(false),
        1 => load_control::set_enabled(true),
        _ => return Err(FsError::Invalid),
    }
    Ok(())
}

pub(super) fn watermark_scale_factor() -> String {
    format!("{}\n", reclaim::watermark_scale_factor())
}

/// Linux's range, 1..=3000; anything else (0, 3001, not a number) is EINVAL.
pub(super) fn set_watermark_scale_factor(text: &str) -> Result<(), FsError> {
    if reclaim::set_watermark_scale_factor(number(text)?) { Ok(()) } else { Err(FsError::Invalid) }
}

pub(super) fn vms_resident_limit() -> String {
    format!("{}\n", reclaim::resident_limit::default_limit())
}

/// The default resident-set limit of `policy=vms`, in pages (0: half the managed
/// frames); EINVAL below `resident_limit::MIN_LIMIT`.
pub(super) fn set_vms_resident_limit(text: &str) -> Result<(), FsError> {
    if reclaim::resident_limit::set_default_limit(number(text)?) { Ok(()) } else { Err(FsError::Invalid) }
}
