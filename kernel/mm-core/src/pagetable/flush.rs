//! TLB flush tokens for [`PageTable`](super::PageTable) operations.
//!
//! The MMU caches translations in the TLB, and x86 does not keep the TLB coherent
//! with page-table writes: after an entry is removed or narrowed, the old
//! translation stays usable until the kernel invalidates it. So every operation
//! that may leave a stale translation returns a `#[must_use]` token (rust-osdev
//! x86_64's `MapperFlush` idea): one [`Flush`] per page, or a [`FlushBatch`] for a
//! range that ends as a [`FlushPlan`]. mm-core only records what to flush; the
//! kernel's `arch::x86_64::tlb` executes it (`invlpg`, CR3 reload, CR4.PGE toggle,
//! and IPIs to other CPUs once there are any).

use super::PageSize;
use crate::addr::VirtAddr;

/// A TLB entry that may be stale: the kernel must `invlpg` this address.
///
/// `invlpg` of any address inside a huge page drops the whole huge-page entry, and
/// also drops the paging-structure-cache entries of freed tables, so one `invlpg`
/// of [`page`](Self::page) is always enough. The kernel consumes the token with
/// [`into_inner`](Self::into_inner); callers about to reload CR3 anyway use
/// [`ignore`](Self::ignore) or collect tokens in a [`FlushBatch`].
#[must_use = "the TLB may still hold the old translation: invlpg it, batch it, or ignore() it"]
#[derive(Debug, PartialEq, Eq)]
pub struct Flush {
    page: VirtAddr,
    size: PageSize,
    is_global: bool,
}

impl Flush {
    /// Creates the token for a changed translation of the page at `page`.
    pub(super) const fn new(page: VirtAddr, size: PageSize, is_global: bool) -> Self {
        Self { page, size, is_global }
    }

    /// Returns the start address of the page whose translation changed.
    pub const fn page(&self) -> VirtAddr {
        self.page
    }

    /// Returns the size of the page whose translation changed.
    pub const fn size(&self) -> PageSize {
        self.size
    }

    /// Returns true if the old translation was GLOBAL (a CR3 reload keeps it).
    pub const fn is_global(&self) -> bool {
        self.is_global
    }

    /// Consumes the token and returns the address to `invlpg`.
    pub const fn into_inner(self) -> VirtAddr {
        self.page
    }

    /// Consumes the token without flushing: the caller flushes the whole TLB itself,
    /// or the change needs no flush (see [`PageTable::map`](super::PageTable::map)).
    pub fn ignore(self) {}
}

/// Collects [`Flush`] tokens of a range operation and decides how to flush them.
///
/// Up to [`CEILING`](Self::CEILING) pages are flushed one by one; past that a full
/// flush is cheaper (Linux `tlb_single_page_flush_ceiling` is 33).
#[must_use = "the collected pages must be flushed: call into_plan()"]
#[derive(Debug)]
pub struct FlushBatch {
    pages: [VirtAddr; FlushBatch::CEILING],
    nr_pages: usize,
    is_over_ceiling: bool,
    has_global: bool,
}

impl FlushBatch {
    /// The most pages flushed individually before switching to a full flush.
    pub const CEILING: usize = 32;

    /// Creates an empty batch.
    pub const fn new() -> Self {
        Self { pages: [VirtAddr::new(0); Self::CEILING], nr_pages: 0, is_over_ceiling: false, has_global: false }
    }

    /// Adds one page's flush to the batch.
    pub fn push(&mut self, flush: Flush) {
        self.has_global |= flush.is_global;
        if self.nr_pages < Self::CEILING {
            self.pages[self.nr_pages] = flush.page;
            self.nr_pages += 1;
        } else {
            self.is_over_ceiling = true;
        }
    }

    /// Returns true if nothing needs flushing.
    pub const fn is_empty(&self) -> bool {
        self.nr_pages == 0
    }

    /// Consumes the batch and returns what the kernel must do to the TLB.
    pub fn into_plan(self) -> FlushPlan {
        if self.is_over_ceiling {
            FlushPlan::All { has_global: self.has_global }
        } else if self.nr_pages == 0 {
            FlushPlan::Nothing
        } else {
            FlushPlan::Pages(FlushPages { pages: self.pages, next: 0, end: self.nr_pages })
        }
    }
}

impl Default for FlushBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// How to flush the TLB after a batch of changes.
#[allow(
    clippy::large_enum_variant,
    reason = "lives for one match on the stack; boxing would allocate on the flush path"
)]
#[must_use = "the TLB may still hold old translations"]
#[derive(Debug)]
pub enum FlushPlan {
    /// No present translation changed.
    Nothing,
    /// `invlpg` each address the iterator yields.
    Pages(FlushPages),
    /// Flush everything: reload CR3, and if `has_global`, also toggle CR4.PGE,
    /// because a CR3 reload keeps GLOBAL entries.
    All {
        /// True if any dropped translation was GLOBAL.
        has_global: bool,
    },
}

/// The addresses of a [`FlushPlan::Pages`], yielded in the order they were pushed.
#[derive(Debug)]
pub struct FlushPages {
    pages: [VirtAddr; FlushBatch::CEILING],
    next: usize,
    end: usize,
}

impl Iterator for FlushPages {
    type Item = VirtAddr;

    fn next(&mut self) -> Option<VirtAddr> {
        (self.next < self.end).then(|| {
            self.next += 1;
            self.pages[self.next - 1]
        })
    }
}
