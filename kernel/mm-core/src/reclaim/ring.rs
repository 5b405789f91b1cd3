//! The ring the FIFO, clock and aging policies keep their pages on, and the
//! per-page storage it lives in.
//!
//! A [`Ring`] is a circular, doubly-linked list of pages with a hand pointing at the
//! oldest. It owns no memory of its own: each page's two links (and the 8-bit age
//! the aging policy keeps) live in a [`RingStore`], keyed by the page. Each ring
//! operation opens the store once ([`RingStore::open`]) and works on the
//! [`RingLinks`] view it gets: the kernel's view holds the frame-table lock, so an
//! insertion (six link reads and writes) costs one lock acquisition, not six. The
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


/// The bookkeeping of a policy whose tracked pages are exactly the pages on one
/// [`Ring`] (the field named `$ring`): counting, membership, insertion behind the
/// hand with age `$new_age`, removal; accesses the kernel does not see are ignored.
/// FIFO, random, clock, the two-handed clock and LRU aging share it; each writes
/// only what makes it different (its name and how it picks a victim).
macro_rules! tracked_on_one_ring {
    ($ring:ident, $new_age:expr) => {
        fn nr_tracked(&self) -> usize {
            self.$ring.len()
        }
        fn is_tracked(&mut self, page: u64) -> bool {
            self.$ring.contains(page)
        }
        fn on_insert(&mut self, page: u64) {
            self.$ring.insert_behind_hand(page, $new_age);
        }
        fn on_access(&mut self, _page: u64) {}
        fn on_remove(&mut self, page: u64) {
            self.$ring.remove(page);
        }
        fn on_remove_all(&mut self, pages: &[u64]) {
            self.$ring.remove_all(pages);
        }
    };
}
pub(crate) use tracked_on_one_ring;

use alloc::rc::Rc;
use alloc::vec::Vec;
use core::cell::{RefCell, RefMut};

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
    /// Sets the `next` link of `page`, which is on the ring, keeping its `prev`.
    /// A store that can write one link alone overrides this (the kernel's frame
    /// table: one descriptor write instead of a read and a write of both).
    fn set_next(&mut self, page: u64, next: u64) {
        let (prev, _) = links_of(self, page);
        self.set_links(page, prev, next);
    }
    /// Sets the `prev` link of `page`, which is on the ring, keeping its `next`.
    fn set_prev(&mut self, page: u64, prev: u64) {
        let (_, next) = links_of(self, page);
        self.set_links(page, prev, next);
    }
    /// Puts `page`, on no ring, between `prev` and `next`, neighbours on the ring
    /// (the same page when the ring holds one), with age `age`: the writes of an
    /// insertion. A store that can make them in one pass overrides this (the
    /// kernel's frame table: the fault path inserts a page per fault).
    fn link_between(&mut self, page: u64, prev: u64, next: u64, age: u8) {
        self.set_links(page, prev, next);
        self.set_next(prev, page);
        self.set_prev(next, page);
        self.set_age(page, age);
    }
}

/// One page's entry in a [`VecLinks`].
#[derive(Clone, Copy, Debug, Default)]
struct VecLink {
    prev: u64,
    next: u64,
    age: u8,
    is_linked: bool,
}

/// Where a [`Ring`] keeps its links: opened once per ring operation.
///
/// The view must not be kept across calls into other code (the kernel's holds a
/// lock); the ring opens it inside each of its methods only.
pub trait RingStore {
    /// The per-page view of the store while it is open.
    type Links<'a>: RingLinks
    where
        Self: 'a;
    /// Opens the store for one ring operation.
    fn open(&mut self) -> Self::Links<'_>;
}

/// Implements [`RingLinks`] for handles to a store (`&mut T`, `RefMut<T>`): every
/// method, the store's own `set_next`/`set_prev` included, goes to the store.
macro_rules! forward_ring_links {
    ($($handle:ty),*) => {$(
        impl<T: RingLinks + ?Sized> RingLinks for $handle {
            fn links(&self, page: u64) -> Option<(u64, u64)> {
                (**self).links(page)
            }
            fn set_next(&mut self, page: u64, next: u64) {
                (**self).set_next(page, next);
            }
            fn set_prev(&mut self, page: u64, prev: u64) {
                (**self).set_prev(page, prev);
            }
            fn set_links(&mut self, page: u64, prev: u64, next: u64) {
                (**self).set_links(page, prev, next);
            }
            fn link_between(&mut self, page: u64, prev: u64, next: u64, age: u8) {
                (**self).link_between(page, prev, next, age);
            }
            fn clear_links(&mut self, page: u64) {
                (**self).clear_links(page);
            }
            fn age(&self, page: u64) -> u8 {
                (**self).age(page)
            }
            fn set_age(&mut self, page: u64, age: u8) {
                (**self).set_age(page, age);
            }
        }
    )*};
}
forward_ring_links!(&mut T, RefMut<'_, T>);

/// A [`RingStore`] whose clones all open the *same* per-page storage.
///
/// Policies with several lists (active and inactive, the FIFO and its second-chance
/// lists) keep one [`Ring`] per list over clones of one store: a page is on at most
/// one list at a time, so its one pair of links is enough, and its age byte says
/// which list it is on. The kernel's frame table is such a store (every handle opens
/// the same table); on the host it is [`SharedVecLinks`]. A plain [`VecLinks`] is not:
/// its clone is a copy.
pub trait SharedRingStore: RingStore + Clone {}

/// A [`VecLinks`] behind a shared handle: the host's [`SharedRingStore`].
#[derive(Clone, Debug, Default)]
pub struct SharedVecLinks {
    shared: Rc<RefCell<VecLinks>>,
}

impl RingStore for SharedVecLinks {
    type Links<'a> = RefMut<'a, VecLinks>;
    fn open(&mut self) -> RefMut<'_, VecLinks> {
        self.shared.borrow_mut()
    }
}

impl SharedRingStore for SharedVecLinks {}

/// A [`RingLinks`] store in a `Vec` indexed by page number, as the frame table is
/// indexed by frame number: for the host (tests, the simulator). It grows to the
/// largest page number seen, so keep page numbers dense.
#[derive(Clone, Debug, Default)]
pub struct VecLinks {
    entries: Vec<VecLink>,
}

impl RingStore for VecLinks {
    type Links<'a> = &'a mut VecLinks;
    fn open(&mut self) -> &mut VecLinks {
        self
    }
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
pub struct Ring<S> {
    store: S,
    hand: Option<u64>,
    len: usize,
}

/// Returns `(prev, next)` of `page`, which must be on the ring.
fn links_of<L: RingLinks + ?Sized>(links: &L, page: u64) -> (u64, u64) {
    links.links(page).expect("Ring: a linked page's neighbour is not on the ring")
}

fn set_next(links: &mut impl RingLinks, page: u64, next: u64) {
    links.set_next(page, next);
}

fn set_prev(links: &mut impl RingLinks, page: u64, prev: u64) {
    links.set_prev(page, prev);
}

impl<S: RingStore> Ring<S> {
    /// Creates an empty ring over `store`, which must hold no page yet.
    pub fn new(store: S) -> Ring<S> {
        Ring { store, hand: None, len: 0 }
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
    pub fn contains(&mut self, page: u64) -> bool {
        self.store.open().links(page).is_some()
    }

    /// Adds `page` just behind the hand (the newest position) with age `age`; no-op
    /// if present. Returns true if it was added.
    pub fn insert_behind_hand(&mut self, page: u64, age: u8) -> bool {
        let mut links = self.store.open();
        if links.links(page).is_some() {
            return false;
        }
        match self.hand {
            None => {
                links.set_links(page, page, page);
                links.set_age(page, age);
                self.hand = Some(page);
            }
            Some(hand) => {
                let (newest, _) = links_of(&links, hand);
                links.link_between(page, newest, hand, age);
            }
        }
        self.len += 1;
        true
    }

    /// Removes `page` if present; a hand pointing at it moves on to the next page.
    pub fn remove(&mut self, page: u64) {
        let mut links = self.store.open();
        Self::unlink(&mut links, &mut self.hand, &mut self.len, page);
    }

    /// Removes each of `pages` that is present, as [`remove`](Self::remove) does,
    /// with the store opened once (the kernel's: one frame-lock acquisition).
    pub fn remove_all(&mut self, pages: &[u64]) {
        let mut links = self.store.open();
        for &page in pages {
            Self::unlink(&mut links, &mut self.hand, &mut self.len, page);
        }
    }

    /// Takes `page` off the ring through `links`, if it is on it.
    fn unlink(links: &mut impl RingLinks, hand: &mut Option<u64>, len: &mut usize, page: u64) {
        let Some((prev, next)) = links.links(page) else {
            return;
        };
        if next == page {
            *hand = None;
        } else {
            set_next(links, prev, next);
            set_prev(links, next, prev);
            if *hand == Some(page) {
                *hand = Some(next);
            }
        }
        links.clear_links(page);
        *len -= 1;
    }

    /// Returns the page under the hand.
    pub fn hand_page(&self) -> Option<u64> {
        self.hand
    }

    /// Moves the hand one page forward.
    pub fn advance(&mut self) {
        if let Some(hand) = self.hand {
            self.hand = Some(links_of(&self.store.open(), hand).1);
        }
    }

    /// Removes and returns the page under the hand; the hand moves to the next page.
    pub fn take_at_hand(&mut self) -> Option<u64> {
        let page = self.hand?;
        self.remove(page);
        Some(page)
    }

    /// Returns the page `nr_steps` after the hand (the hand itself for 0), walking the
    /// ring in one opening of the store; `None` if the ring is empty.
    pub fn nth_from_hand(&mut self, nr_steps: usize) -> Option<u64> {
        let links = self.store.open();
        let mut page = self.hand?;
        for _ in 0..nr_steps % self.len {
            page = links_of(&links, page).1;
        }
        Some(page)
    }

    /// Fills `out` with the pages from the hand on, in ring order (the hand's page
    /// first), without moving the hand or changing any page; returns how many it
    /// wrote (at most the ring's length). One opening of the store.
    pub fn pages_from_hand(&mut self, out: &mut [u64]) -> usize {
        let links = self.store.open();
        let Some(mut page) = self.hand else { return 0 };
        let nr_pages = out.len().min(self.len);
        for slot in &mut out[..nr_pages] {
            *slot = page;
            page = links_of(&links, page).1;
        }
        nr_pages
    }

    /// Returns the page after `page` on the ring (`page` must be on it).
    pub fn next_of(&mut self, page: u64) -> u64 {
        links_of(&self.store.open(), page).1
    }

    /// Returns the age of `page`.
    pub fn age(&mut self, page: u64) -> u8 {
        self.store.open().age(page)
    }

    /// Replaces the age of `page` (on the ring) with `age_fn(age)` and returns the
    /// page after it, in one opening of the store (for a walk around the ring).
    pub fn update_age(&mut self, page: u64, age_fn: impl FnOnce(u8) -> u8) -> u64 {
        let mut links = self.store.open();
        let age = age_fn(links.age(page));
        links.set_age(page, age);
        links_of(&links, page).1
    }

    /// Returns the page with the smallest age (the least recently used by the aging
    /// policy's measure), the first from the hand among equals
    /// (the oldest), walking the whole ring in one opening of the store.
    pub fn smallest_age_page(&mut self) -> Option<u64> {
        let links = self.store.open();
        let mut page = self.hand?;
        let mut best = (links.age(page), page);
        for _ in 1..self.len {
            page = links_of(&links, page).1;
            let age = links.age(page);
            if age < best.0 {
                best = (age, page);
            }
        }
        Some(best.1)
    }

    /// Checks that the links form one cycle of `len()` pages through the hand, each
    /// back link matching; returns the first problem found.
    pub fn check_invariants(&mut self) -> Result<(), &'static str> {
        let links = self.store.open();
        let Some(hand) = self.hand else {
            return if self.len == 0 { Ok(()) } else { Err("pages but no hand") };
        };
        let mut page = hand;
        for _ in 0..self.len {
            let (_, next) = links.links(page).ok_or("a page on the cycle has no links")?;
            let (next_prev, _) = links.links(next).ok_or("a next link leads off the ring")?;
            if next_prev != page {
                return Err("broken back link");
            }
            page = next;
        }
        if page == hand { Ok(()) } else { Err("the cycle is not len() long") }
    }
}
