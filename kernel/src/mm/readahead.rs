//! File readahead in the kernel: before `read_at` copies pages `[first, last]` of a
//! file, the cache's [`ReadaheadWindow`](mm_core::file_readahead::ReadaheadWindow)
//! (the pure, host-tested policy) says which pages to read ahead, and they are read
//! into the cache here, flagged READAHEAD until a read uses them (counted as
//! readahead pages and hits in `page_cache::stats`).
//!
//! Readahead never waits for memory: a page it cannot get a frame for is skipped
//! (it is a guess; the reader will read it on demand). It stops at the end of the
//! file and at the first page already cached.

use super::PAGE_SIZE;
use super::page_cache::PageCache;

/// Reads ahead what the file's window asks for, before a read of pages `[first, last]`.
pub fn before_read(cache: &PageCache, first: u64, last: u64) {
    let Some((start, nr_pages)) = cache.readahead.lock().on_read(first, last) else { return };
    let end_page = cache.size().div_ceil(PAGE_SIZE);
    for index in start..(start + u64::from(nr_pages)).min(end_page) {
        if !cache.read_ahead_page(index) {
            break;
        }
    }
}
