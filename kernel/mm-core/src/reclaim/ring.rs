//! The ring the FIFO, clock and aging policies keep their pages on, and the
//! per-page storage it lives in.
//!
//! A [`Ring`] is a circular, doubly-linked list of pages with a hand pointing at the
//! oldest. It owns no memory of its own: each page's two links (and the 8-bit age
//! the aging policy keeps) live in a [`RingLinks`] store, keyed by the page. The
//! kernel's store is the frame table itself: the `next`/`prev` links of an allocated
//! user frame are free for its owner, and the age sits in the descriptor's flags
//! word, so tracking a page allocates nothing and costs O(1) (Linux threads its LRU
//! lists through `struct page` the same way). The host uses [`VecLinks`], a `Vec`
//! indexed by page number, which behaves the same.
//!
//! Before this, the ring kept its nodes in a `Vec` reserved at 24 bytes a frame (one
//! heap block of 6 MiB at 1 GiB of RAM, more than the heap's largest block: a panic at
//! boot) and found them through a `BTreeMap` (one heap insertion per fault, and heap
//! growth exactly when memory is short: issue #10, item 1).

use alloc::vec::Vec;

/// Per-page storage for a [`Ring`]: two links and an 8-bit age per page.
///
/// A page is "on the ring" while it has links. The ring always sets both links of a
/// page at once when it puts it on, so `links` returns both or none.
pub trait RingLinks {
    /// Returns `(prev, next)` of `page`, or `None` if `page` is not on a ring.
    fn links(&self, page: u64) -> Option<(u64, u64)>;
    /// Puts `page` on the ring between `prev` and `next` (or moves its links there).
    fn set_links(&mut self, page: u64, prev: u64, next: u64);
    /// Takes `page` off the ring; its age is forgotten too.
    fn clear_links(&mut self, page: u64);
    /// Returns the age of `page` (0 if never set).
    fn age(&self, page: u64) -> u8;
    /// Sets the age of `page`, which is on the ring.
    fn set_age(&mut self, page: u64, age: u8);
}

/// One page's entry in a [`VecLinks`].
#[derive(Clone, Copy, Debug, Default)]
struct VecLink {
    prev: u64,
    next: u64,
    age: u8,
    is_linked: bool,
}

/// A [`RingLinks`] store in a `Vec` indexed by page number, as the frame table is
/// indexed by frame number: for the host (tests, the simulator). It grows to the
/// largest page number seen, so keep page numbers dense.
#[derive(Clone, Debug, Default)]
pub struct VecLinks {
    entries: Vec<VecLink>,
}

impl RingLinks for VecLinks {
    fn links(&self, page: u64) -> Option<(u64, u64)> {
        let entry = self.entries.get(usize::try_from(page).ok()?)?;
        entry.is_linked.then_some((entry.prev, entry.next))
    }
    fn set_links(&mut self, page: u64, prev: u64, next: u64) {
        let index = usize::try_from(page).expect("VecLinks: page number too large");
        if index >= self.entries.len() {
            self.entries.resize(index + 1, VecLink::default());
        }
        let entry = &mut self.entries[index];
        (entry.prev, entry.next, entry.is_linked) = (prev, next, true);
    }
    fn clear_links(&mut self, page: u64) {
        if let Some(entry) = usize::try_from(page).ok().and_then(|i| self.entries.get_mut(i)) {
            *entry = VecLink::default();
        }
    }
    fn age(&self, page: u64) -> u8 {
        usize::try_from(page).ok().and_then(|i| self.entries.get(i)).map_or(0, |e| e.age)
    }
    fn set_age(&mut self, page: u64, age: u8) {
        if let Some(entry) = usize::try_from(page).ok().and_then(|i| self.entries.get_mut(i)) {
            entry.age = age;
        }
    }
}

/// A circular list of pages with a hand pointing at the oldest one.
///
/// New pages go in just behind the hand, so the hand reaches them last.
#[derive(Clone, Debug, Default)]
pub struct Ring<L> {
    links: L,
    hand: Option<u64>,
    len: usize,
}

impl<L: RingLinks> Ring<L> {
    /// Creates an empty ring over `links`, which must hold no page yet.
    pub fn new(links: L) -> Ring<L> {
        Ring { links, hand: None, len: 0 }
    }

    /// Returns the per-page store (the aging policy keeps ages there).
    pub fn links_mut(&mut self) -> &mut L {
        &mut self.links
    }

    /// Returns the number of pages on the ring.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true if no page is on the ring.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns true if `page` is on the ring.
    pub fn contains(&self, page: u64) -> bool {
        self.links.links(page).is_some()
    }

    fn links_of(&self, page: u64) -> (u64, u64) {
        self.links.links(page).expect("Ring: a linked page's neighbour is not on the ring")
    }

    fn set_next(&mut self, page: u64, next: u64) {
        let (prev, _) = self.links_of(page);
        self.links.set_links(page, prev, next);
    }

    fn set_prev(&mut self, page: u64, prev: u64) {
        let (_, next) = self.links_of(page);
        self.links.set_links(page, prev, next);
    }

    /// Adds `page` just behind the hand (the newest position); no-op if present.
    pub fn insert_behind_hand(&mut self, page: u64) {
        if self.contains(page) {
            return;
        }
        match self.hand {
            None => {
                self.links.set_links(page, page, page);
                self.hand = Some(page);
            }
            Some(hand) => {
                let (newest, _) = self.links_of(hand);
                self.links.set_links(page, newest, hand);
                self.set_next(newest, page);
                self.set_prev(hand, page);
            }
        }
        self.len += 1;
    }

    /// Removes `page` if present; a hand pointing at it moves on to the next page.
    pub fn remove(&mut self, page: u64) {
        let Some((prev, next)) = self.links.links(page) else {
            return;
        };
        if next == page {
            self.hand = None;
        } else {
            self.set_next(prev, next);
            self.set_prev(next, prev);
            if self.hand == Some(page) {
                self.hand = Some(next);
            }
        }
        self.links.clear_links(page);
        self.len -= 1;
    }

    /// Returns the page under the hand.
    pub fn hand_page(&self) -> Option<u64> {
        self.hand
    }

    /// Moves the hand one page forward.
    pub fn advance(&mut self) {
        if let Some(hand) = self.hand {
            self.hand = Some(self.links_of(hand).1);
        }
    }

    /// Removes and returns the page under the hand; the hand moves to the next page.
    pub fn take_at_hand(&mut self) -> Option<u64> {
        let page = self.hand?;
        self.remove(page);
        Some(page)
    }

    /// Returns the page after `page` on the ring (`page` must be on it).
    pub fn next_of(&self, page: u64) -> u64 {
        self.links_of(page).1
    }

    /// Checks that the links form one cycle of `len()` pages through the hand, each
    /// back link matching; returns the first problem found.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let Some(hand) = self.hand else {
            return if self.len == 0 { Ok(()) } else { Err("pages but no hand") };
        };
        let mut page = hand;
        for _ in 0..self.len {
            let (_, next) = self.links.links(page).ok_or("a page on the cycle has no links")?;
            let (next_prev, _) = self.links.links(next).ok_or("a next link leads off the ring")?;
            if next_prev != page {
                return Err("broken back link");
            }
            page = next;
        }
        if page == hand { Ok(()) } else { Err("the cycle is not len() long") }
    }
}
