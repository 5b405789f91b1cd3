//! Per-CPU slab magazines (Bonwick and Adams, "Magazines and Vmem", 2001): the pure part.
//!
//! A magazine is a small stack of free objects of one slab cache, kept by one CPU in
//! front of the cache's slab lists. An allocation pops the running CPU's magazine,
//! a free pushes onto it; only when the magazine is empty (refill) or full (flush)
//! does the CPU take the cache's lock and move [`MagazineSizes::batch`] objects at
//! once. Linux's SLUB gets the same effect with a per-CPU slab, and its newer
//! "sheaves" are magazines again.
//!
//! ```text
//!   alloc: pop  <--  [ o7 o3 o9 ... ]  <-- push: free (any CPU's object)
//!                       |      ^
//!     full: flush batch |      |  empty: refill batch
//!                       v      |
//!             the slab cache (one lock for every CPU)
//! ```
//!
//! A magazine holds object addresses only: the objects stay "in use" in their slabs
//! while they wait, and go back to their own slab when flushed (the slab is found
//! from the address), so an object freed on another CPU than the one that allocated
//! it needs nothing special. This file holds the stack ([`Magazine`]) and the sizes;
//! the kernel (`kernel/src/mm/slabmag.rs`) keeps one magazine per CPU per kmalloc
//! class, behind a lock of that CPU.

/// The most objects one magazine holds.
pub const CAPACITY: usize = 32;

/// How many objects move between a magazine and its slab cache at a time, and how
/// many a magazine may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MagazineSizes {
    /// Objects moved per refill or flush.
    pub batch: usize,
    /// The most objects the magazine keeps (at most [`CAPACITY`]).
    pub limit: usize,
}

impl MagazineSizes {
    /// Returns the sizes for objects of `size_bytes`: a magazine holds about 4 KiB
    /// of objects (at least 4, at most [`CAPACITY`]), and moves half of that at a time,
    /// so a CPU that allocates and frees in turn stays on its own magazine, and one
    /// that only frees gives back half and keeps the other half warm.
    pub fn for_object_size(size_bytes: usize) -> MagazineSizes {
        let limit = (4096 / size_bytes.max(1)).clamp(4, CAPACITY);
        MagazineSizes { batch: limit / 2, limit }
    }
}

/// One CPU's magazine for one cache: a bounded stack of free objects' addresses,
/// most recently freed on top (cache-warm first).
#[derive(Clone, Debug)]
pub struct Magazine {
    objects: [u64; CAPACITY],
    len: usize,
}

impl Default for Magazine {
    fn default() -> Self {
        Self::new()
    }
}

impl Magazine {
    /// Returns an empty magazine.
    pub const fn new() -> Magazine {
        Magazine { objects: [0; CAPACITY], len: 0 }
    }

    /// Returns the number of objects in the magazine.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Returns true if the magazine holds no object.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Takes the most recently freed object, if any.
    #[inline]
    pub fn pop(&mut self) -> Option<u64> {
        self.len = self.len.checked_sub(1)?;
        Some(self.objects[self.len])
    }

    /// Puts an object in the magazine; returns false (and keeps nothing) if it
    /// already holds `sizes.limit` objects.
    #[inline]
    pub fn push(&mut self, addr: u64, sizes: MagazineSizes) -> bool {
        if self.len >= sizes.limit.min(CAPACITY) {
            return false;
        }
        self.objects[self.len] = addr;
        self.len += 1;
        true
    }

    /// Returns true if `addr` is in the magazine (the free path's double-free check:
    /// a linear search of at most [`CAPACITY`] words).
    pub fn contains(&self, addr: u64) -> bool {
        self.objects[..self.len].contains(&addr)
    }

    /// Returns true if `addr` is the object pushed last (the cheap double-free check:
    /// a free of the object just freed, as Linux's SLUB checks the freelist's head).
    #[inline]
    pub fn is_newest(&self, addr: u64) -> bool {
        self.len > 0 && self.objects[self.len - 1] == addr
    }

    /// Takes up to `n` of the oldest objects (the coldest), handing each to `f`.
    pub fn flush_oldest(&mut self, n: usize, mut f: impl FnMut(u64)) {
        let n = n.min(self.len);
        self.objects[..n].iter().for_each(|&a| f(a));
        self.objects.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Returns the objects in the magazine, oldest first.
    pub fn objects(&self) -> &[u64] {
        &self.objects[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::vec::Vec;

    #[test]
    fn sizes_hold_about_a_page_of_objects() {
        assert_eq!(MagazineSizes::for_object_size(8), MagazineSizes { batch: 16, limit: 32 });
        assert_eq!(MagazineSizes::for_object_size(256), MagazineSizes { batch: 8, limit: 16 });
        assert_eq!(MagazineSizes::for_object_size(4096), MagazineSizes { batch: 2, limit: 4 });
        assert_eq!(MagazineSizes::for_object_size(0), MagazineSizes { batch: 16, limit: 32 });
    }

    #[test]
    fn last_freed_is_first_allocated_and_a_full_magazine_refuses() {
        let sizes = MagazineSizes { batch: 2, limit: 4 };
        let mut mag = Magazine::new();
        assert_eq!(mag.pop(), None);
        for addr in [0x1000, 0x1040, 0x1080, 0x10c0] {
            assert!(mag.push(addr, sizes));
        }
        assert!(!mag.push(0x2000, sizes), "past the limit");
        assert_eq!(mag.len(), 4);
        assert!(mag.contains(0x1040) && !mag.contains(0x2000));
        assert!(mag.is_newest(0x10c0) && !mag.is_newest(0x1040) && !mag.is_newest(0x2000), "the newest is the last pushed");
        assert_eq!(mag.pop(), Some(0x10c0));
        let mut flushed = Vec::new();
        mag.flush_oldest(sizes.batch, |a| flushed.push(a));
        assert_eq!(flushed, [0x1000, 0x1040]);
        assert_eq!(mag.objects(), [0x1080]);
        mag.flush_oldest(9, |a| flushed.push(a));
        assert!(mag.is_empty());
    }

    /// Random allocs and frees through a magazine in front of a model slab cache
    /// (a set of free objects): no object is ever handed out twice, none is lost,
    /// and the magazine never holds more than its limit.
    #[test]
    fn random_traffic_loses_and_duplicates_nothing() {
        let sizes = MagazineSizes { batch: 3, limit: 6 };
        let mut cache: BTreeSet<u64> = (0..64).map(|i| 0x10_000 + i * 64).collect();
        let mut mag = Magazine::new();
        let mut live: Vec<u64> = Vec::new();
        let mut rng = crate::xorshift::XorShift(13);
        for _ in 0..10_000 {
            if rng.next_u64() % 2 == 0 {
                if mag.is_empty() {
                    for _ in 0..sizes.batch {
                        let Some(&a) = cache.iter().next() else { break };
                        cache.remove(&a);
                        assert!(mag.push(a, sizes));
                    }
                }
                if let Some(a) = mag.pop() {
                    assert!(!live.contains(&a), "{a:#x} handed out twice");
                    live.push(a);
                }
            } else if !live.is_empty() {
                let a = live.swap_remove(rng.below(live.len() as u64) as usize);
                assert!(!mag.contains(a));
                if !mag.push(a, sizes) {
                    mag.flush_oldest(sizes.batch, |o| assert!(cache.insert(o)));
                    assert!(mag.push(a, sizes));
                }
            }
            assert!(mag.len() <= sizes.limit);
            assert_eq!(cache.len() + mag.len() + live.len(), 64, "an object was lost");
        }
    }
}
