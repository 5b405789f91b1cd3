//! kmalloc: the kernel's general-purpose allocator, twelve size classes of slab caches.
//!
//! [`Kmalloc`] owns one [`SlabCache`] per size class ("kmalloc-8" ... "kmalloc-4096") and
//! routes each request to the smallest class that fits its size and alignment
//! ([`size_class_for`]). Requests above 4096 bytes or aligned above 4096 get `None` there:
//! the kernel's heap (`mm/heap.rs`, the `GlobalAlloc`) sends those straight to the buddy
//! allocator. Like Rust's `GlobalAlloc`, free is told the size and alignment again, so no
//! per-object size is stored. Neighbours: [`crate::slab`] (the caches, [`SlabBackend`]).
//!
//! Locking: none here; the kernel heap holds the one IRQ-safe spinlock around every call.
//!
//! A class's object alignment is the largest power of two dividing its size (capped at
//! 4096), so 96 is 32-aligned and 192 is 64-aligned; a request aligned beyond its size's
//! class moves up to the first class aligned enough. Memory lost per class:
//!
//! ```text
//!  class        align  slab order   objects  slab overhead      worst rounding loss
//!                      (pages)      /slab    (header+tail)      (request = previous class + 1)
//!  kmalloc-8        8  0 (1)          508      32 B  0.8 %         7 B (1 B in 8)
//!  kmalloc-16      16  0 (1)          254      32 B  0.8 %         7 B  44 %
//!  kmalloc-32      32  0 (1)          127      32 B  0.8 %        15 B  47 %
//!  kmalloc-64      64  0 (1)           63      64 B  1.6 %        31 B  48 %
//!  kmalloc-96      32  0 (1)           42      64 B  1.6 %        31 B  32 %
//!  kmalloc-128    128  0 (1)           31     128 B  3.1 %        31 B  24 %
//!  kmalloc-192     64  0 (1)           21      64 B  1.6 %        63 B  33 %
//!  kmalloc-256    256  0 (1)           15     256 B  6.3 %        63 B  25 %
//!  kmalloc-512    512  1 (2)           15     512 B  6.3 %       255 B  50 %
//!  kmalloc-1024  1024  2 (4)           15    1024 B  6.3 %       511 B  50 %
//!  kmalloc-2048  2048  3 (8)           15    2048 B  6.3 %      1023 B  50 %
//!  kmalloc-4096  4096  3 (8)            7    4096 B 12.5 %      2047 B  50 %
//! ```
//!
//! Slab overhead is the on-slab header rounded up to the class alignment, plus any tail
//! too short for an object; for the big power-of-two classes the header costs a whole
//! object slot, which is why they use multi-page slabs (Linux SLUB keeps that metadata in
//! `struct page` instead). The 96 and 192 classes (as in Linux) cut the worst rounding
//! loss between 64, 128 and 256 from 50 % to about a third.

use core::fmt;

use crate::slab::{SlabBackend, SlabCache, SlabError, SlabInfo};

/// Number of kmalloc size classes.
pub const NR_SIZE_CLASSES: usize = 12;
/// The object size of each class, ascending.
pub const SIZE_CLASSES: [usize; NR_SIZE_CLASSES] =
    [8, 16, 32, 64, 96, 128, 192, 256, 512, 1024, 2048, 4096];
/// The largest size (and alignment) kmalloc serves; larger requests go to the buddy allocator.
pub const KMALLOC_MAX_SIZE: usize = 4096;
/// The cache name of each class.
const CACHE_NAMES: [&str; NR_SIZE_CLASSES] = [
    "kmalloc-8",
    "kmalloc-16",
    "kmalloc-32",
    "kmalloc-64",
    "kmalloc-96",
    "kmalloc-128",
    "kmalloc-192",
    "kmalloc-256",
    "kmalloc-512",
    "kmalloc-1024",
    "kmalloc-2048",
    "kmalloc-4096",
];

/// Returns the object alignment of a class of `class_size_bytes`: the largest power of two
/// dividing it, capped at [`KMALLOC_MAX_SIZE`].
pub const fn class_align(class_size_bytes: usize) -> usize {
    let align = 1 << class_size_bytes.trailing_zeros();
    if align > KMALLOC_MAX_SIZE { KMALLOC_MAX_SIZE } else { align }
}

/// Returns the index into [`SIZE_CLASSES`] of the smallest class holding `size_bytes`
/// bytes aligned to `align_bytes` (a power of two, as in `Layout`; 0 counts as 1).
///
/// A zero-size request gets the 8-byte class. Returns `None` when the size or alignment
/// exceeds [`KMALLOC_MAX_SIZE`] (or the alignment is not a power of two): the caller
/// then allocates whole pages from the buddy allocator.
#[inline]
pub const fn size_class_for(size_bytes: usize, align_bytes: usize) -> Option<usize> {
    if size_bytes > KMALLOC_MAX_SIZE || align_bytes > KMALLOC_MAX_SIZE {
        return None;
    }
    if align_bytes != 0 && !align_bytes.is_power_of_two() {
        return None;
    }
    let mut class = 0;
    while class < NR_SIZE_CLASSES {
        let class_size = SIZE_CLASSES[class];
        if class_size >= size_bytes && class_align(class_size) >= align_bytes {
            return Some(class);
        }
        class += 1;
    }
    None
}

/// The error type of [`Kmalloc`] operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmallocError {
    /// No size class fits: the size or alignment is above [`KMALLOC_MAX_SIZE`].
    TooLarge,
    /// The size class's cache failed (out of memory, or a bad free).
    Slab(SlabError),
}

impl From<SlabError> for KmallocError {
    fn from(error: SlabError) -> Self {
        KmallocError::Slab(error)
    }
}

impl fmt::Display for KmallocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KmallocError::TooLarge => f.write_str("no kmalloc size class fits"),
            KmallocError::Slab(error) => write!(f, "kmalloc: {error}"),
        }
    }
}

/// The kmalloc size classes: one slab cache per class.
#[derive(Debug)]
pub struct Kmalloc {
    caches: [SlabCache; NR_SIZE_CLASSES],
}

/// Creates the cache of size class `class`.
const fn class_cache(class: usize) -> SlabCache {
    SlabCache::new(CACHE_NAMES[class], SIZE_CLASSES[class], class_align(SIZE_CLASSES[class]), None)
}

impl Kmalloc {
    /// Creates the twelve empty caches; usable in a `static` (no pages are taken yet).
    pub const fn new() -> Self {
        Kmalloc {
            caches: [
                class_cache(0),
                class_cache(1),
                class_cache(2),
                class_cache(3),
                class_cache(4),
                class_cache(5),
                class_cache(6),
                class_cache(7),
                class_cache(8),
                class_cache(9),
                class_cache(10),
                class_cache(11),
            ],
        }
    }

    /// Returns the address of a new object of at least `size_bytes` bytes, aligned to
    /// `align_bytes`.
    ///
    /// # Errors
    /// [`KmallocError::TooLarge`] when [`size_class_for`] finds no class, or
    /// `Slab(OutOfMemory)` when the class's cache cannot grow.
    #[inline]
    pub fn alloc<B: SlabBackend>(
        &mut self,
        backend: &mut B,
        size_bytes: usize,
        align_bytes: usize,
    ) -> Result<u64, KmallocError> {
        let class = size_class_for(size_bytes, align_bytes).ok_or(KmallocError::TooLarge)?;
        Ok(self.caches[class].alloc(backend)?)
    }

    /// Frees the object at `addr`, allocated with the same `size_bytes` and `align_bytes`.
    ///
    /// # Errors
    /// [`KmallocError::TooLarge`] for a layout no class serves, or the cache's error:
    /// `NotInCache` when `addr` is not an object of that layout's class (a wrong layout
    /// or a foreign address), `Misaligned`, `DoubleFree`. Nothing changes on error.
    #[inline]
    pub fn free<B: SlabBackend>(
        &mut self,
        backend: &mut B,
        addr: u64,
        size_bytes: usize,
        align_bytes: usize,
    ) -> Result<(), KmallocError> {
        let class = size_class_for(size_bytes, align_bytes).ok_or(KmallocError::TooLarge)?;
        Ok(self.caches[class].free(backend, addr)?)
    }

    /// Returns a new object of size class `class` (`< NR_SIZE_CLASSES`, as
    /// [`size_class_for`] returns it): for a caller that chose the class itself.
    ///
    /// # Errors
    /// `Slab(OutOfMemory)` when the class's cache cannot grow.
    #[inline]
    pub fn alloc_class<B: SlabBackend>(&mut self, backend: &mut B, class: usize) -> Result<u64, KmallocError> {
        Ok(self.caches[class].alloc(backend)?)
    }

    /// Frees the object at `addr` of size class `class` (see [`Kmalloc::free`]).
    ///
    /// # Errors
    /// The cache's: `NotInCache`, `Misaligned`, `DoubleFree`; nothing changes on error.
    #[inline]
    pub fn free_class<B: SlabBackend>(&mut self, backend: &mut B, class: usize, addr: u64) -> Result<(), KmallocError> {
        Ok(self.caches[class].free(backend, addr)?)
    }

    /// Gives every empty slab of every class back to `backend`; returns the pages freed.
    pub fn shrink<B: SlabBackend>(&mut self, backend: &mut B) -> u64 {
        self.caches.iter_mut().map(|cache| cache.shrink(backend)).sum()
    }

    /// Returns the caches, smallest class first.
    pub fn caches(&self) -> &[SlabCache; NR_SIZE_CLASSES] {
        &self.caches
    }

    /// Returns the statistics of every class, smallest first (see [`SlabInfo::HEADER`]).
    pub fn slabinfo(&self) -> impl Iterator<Item = SlabInfo> + '_ {
        self.caches.iter().map(SlabCache::info)
    }

    /// Checks every cache's invariants (see [`SlabCache::check_invariants`]); panics if broken.
    pub fn check_invariants<B: SlabBackend>(&self, backend: &B) {
        for cache in &self.caches {
            cache.check_invariants(backend);
        }
    }
}

impl Default for Kmalloc {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xorshift::XorShift;
    use crate::addr::Order;
    use crate::slab::tests::HostBackend;
    use std::collections::BTreeMap;
    use std::vec::Vec;

    /// `Kmalloc::new` must stay usable in a `static` (the kernel heap's).
    const _: Kmalloc = Kmalloc::new();

    #[test]
    fn size_class_for_picks_the_smallest_class_that_fits() {
        let class_size = |size, align| size_class_for(size, align).map(|class| SIZE_CLASSES[class]);
        assert_eq!(class_size(1, 1), Some(8));
        assert_eq!(class_size(8, 8), Some(8));
        assert_eq!(class_size(9, 8), Some(16));
        assert_eq!(class_size(65, 8), Some(96));
        assert_eq!(class_size(96, 64), Some(128), "96 is only 32-aligned");
        assert_eq!(class_size(130, 8), Some(192));
        assert_eq!(class_size(130, 128), Some(256), "192 is only 64-aligned");
        assert_eq!(class_size(8, 4096), Some(4096));
        assert_eq!(class_size(4096, 1), Some(4096));
        assert_eq!(class_size(4097, 1), None);
        assert_eq!(class_size(8, 8192), None);
        assert_eq!(class_size(8, 24), None, "not a power of two");
    }

    #[test]
    fn zero_size_requests_use_the_8_byte_class() {
        assert_eq!(size_class_for(0, 1), Some(0));
        assert_eq!(size_class_for(0, 0), Some(0));
        let mut backend = HostBackend::new(64);
        let mut kmalloc = Kmalloc::new();
        let addr = kmalloc.alloc(&mut backend, 0, 1).unwrap();
        assert_eq!(kmalloc.caches()[0].nr_active_objects(), 1);
        kmalloc.free(&mut backend, addr, 0, 1).unwrap();
        kmalloc.check_invariants(&backend);
    }

    #[test]
    fn class_geometry_matches_the_documented_waste_table() {
        let expected: [(u8, u64, u64); NR_SIZE_CLASSES] = [
            (0, 508, 32),
            (0, 254, 32),
            (0, 127, 32),
            (0, 63, 64),
            (0, 42, 64),
            (0, 31, 128),
            (0, 21, 64),
            (0, 15, 256),
            (1, 15, 512),
            (2, 15, 1024),
            (3, 15, 2048),
            (3, 7, 4096),
        ];
        let kmalloc = Kmalloc::new();
        for (cache, &(order, nr_objects, overhead_bytes)) in kmalloc.caches().iter().zip(&expected)
        {
            assert_eq!((cache.order(), cache.nr_objects_per_slab()), (Order(order), nr_objects));
            let slab_bytes = cache.order().size_bytes();
            assert_eq!(slab_bytes - nr_objects * cache.stride_bytes() as u64, overhead_bytes);
            assert_eq!(cache.stride_bytes(), cache.object_size_bytes(), "{}", cache.name());
        }
    }

    #[test]
    fn alignment_is_honoured_for_every_class() {
        let mut backend = HostBackend::new(1024);
        let mut kmalloc = Kmalloc::new();
        let mut live = Vec::new();
        for &class_size in &SIZE_CLASSES {
            let mut align = 1;
            while align <= KMALLOC_MAX_SIZE {
                for size in [class_size / 2 + 1, class_size] {
                    let addr = kmalloc.alloc(&mut backend, size, align).unwrap();
                    let class = size_class_for(size, align).unwrap();
                    assert_eq!(addr % class_align(SIZE_CLASSES[class]) as u64, 0);
                    assert_eq!(addr % align as u64, 0, "size {size} align {align}");
                    live.push((addr, size, align));
                }
                align *= 2;
            }
        }
        kmalloc.check_invariants(&backend);
        for (addr, size, align) in live {
            kmalloc.free(&mut backend, addr, size, align).unwrap();
        }
        kmalloc.shrink(&mut backend);
        assert_eq!(backend.nr_pages_out, 0);
    }

    #[test]
    fn free_with_a_wrong_layout_or_foreign_address_is_rejected() {
        let mut backend = HostBackend::new(64);
        let mut kmalloc = Kmalloc::new();
        let addr = kmalloc.alloc(&mut backend, 64, 8).unwrap();
        let small = kmalloc.alloc(&mut backend, 32, 8).unwrap();
        let not_in_cache = Err(KmallocError::Slab(SlabError::NotInCache));
        assert_eq!(kmalloc.free(&mut backend, addr, 32, 8), not_in_cache);
        assert_eq!(kmalloc.free(&mut backend, addr, 128, 8), not_in_cache);
        assert_eq!(kmalloc.free(&mut backend, small, 64, 8), not_in_cache);
        assert_eq!(kmalloc.free(&mut backend, addr, 8192, 8), Err(KmallocError::TooLarge));
        assert_eq!(kmalloc.alloc(&mut backend, 8192, 8), Err(KmallocError::TooLarge));
        kmalloc.check_invariants(&backend);
        kmalloc.free(&mut backend, addr, 60, 4).unwrap();
        let double_free = Err(KmallocError::Slab(SlabError::DoubleFree));
        assert_eq!(kmalloc.free(&mut backend, addr, 64, 8), double_free);
        kmalloc.free(&mut backend, small, 32, 8).unwrap();
    }

    #[test]
    fn slabinfo_lists_every_class_in_order() {
        let mut backend = HostBackend::new(64);
        let mut kmalloc = Kmalloc::new();
        let addr = kmalloc.alloc(&mut backend, 100, 8).unwrap();
        let names: Vec<_> = kmalloc.slabinfo().map(|info| info.name).collect();
        assert_eq!(names, CACHE_NAMES);
        let info = kmalloc.slabinfo().find(|info| info.nr_active_objects == 1).unwrap();
        assert_eq!(
            (info.name, info.nr_total_objects, info.nr_partial_slabs),
            ("kmalloc-128", 31, 1)
        );
        kmalloc.free(&mut backend, addr, 100, 8).unwrap();
    }


    /// What the reference model knows about one live object.
    #[derive(Clone, Copy)]
    struct LiveObject {
        size_bytes: usize,
        align_bytes: usize,
        footprint_bytes: u64,
        pattern: u64,
    }

    /// Returns the word the test stores at word `index` of an object with `pattern`.
    fn pattern_word(pattern: u64, index: u64) -> u64 {
        pattern ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    /// Returns a random request: mostly small sizes and alignments, sometimes up to 4096.
    fn random_layout(rng: &mut XorShift) -> (usize, usize) {
        let size = if rng.below(4) == 0 { rng.below(4097) } else { rng.below(257) };
        let align = if rng.below(8) == 0 { 1 << rng.below(13) } else { 1 << rng.below(4) };
        (size as usize, align)
    }

    /// Allocates one random object, checks it against the model, and fills it with a pattern.
    fn alloc_one(
        kmalloc: &mut Kmalloc,
        backend: &mut HostBackend,
        live: &mut BTreeMap<u64, LiveObject>,
        rng: &mut XorShift,
    ) -> u64 {
        let (size_bytes, align_bytes) = random_layout(rng);
        let addr = kmalloc.alloc(backend, size_bytes, align_bytes).unwrap();
        let class = size_class_for(size_bytes, align_bytes).unwrap();
        let footprint_bytes = SIZE_CLASSES[class] as u64;
        assert_eq!(addr % align_bytes as u64, 0, "alignment");
        if let Some((&below, object)) = live.range(..addr).next_back() {
            assert!(below + object.footprint_bytes <= addr, "overlaps the object below");
        }
        if let Some((&above, _)) = live.range(addr..).next() {
            assert!(addr + footprint_bytes <= above, "overlaps the object above");
        }
        let pattern = rng.next_u64();
        for index in 0..footprint_bytes / 8 {
            backend.write_word(addr + 8 * index, pattern_word(pattern, index));
        }
        live.insert(addr, LiveObject { size_bytes, align_bytes, footprint_bytes, pattern });
        addr
    }

    /// Checks the pattern of the live object at `addr` is intact, then frees it.
    fn free_one(
        kmalloc: &mut Kmalloc,
        backend: &mut HostBackend,
        live: &mut BTreeMap<u64, LiveObject>,
        addr: u64,
    ) {
        let object = live.remove(&addr).unwrap();
        for index in 0..object.footprint_bytes / 8 {
            let word = backend.read_word(addr + 8 * index);
            assert_eq!(
                word,
                pattern_word(object.pattern, index),
                "object {addr:#x} word {index} clobbered"
            );
        }
        kmalloc.free(backend, addr, object.size_bytes, object.align_bytes).unwrap();
    }

    #[test]
    fn randomized_alloc_free_matches_a_reference_model() {
        const NR_STEPS: u64 = 40_000;
        let mut backend = HostBackend::new(16 * 1024);
        let mut kmalloc = Kmalloc::new();
        let mut rng = XorShift(0x5eed_1234_abcd_0001);
        let mut live = BTreeMap::new();
        let mut addrs = Vec::new();
        for step in 0..NR_STEPS {
            // Drift between growing and shrinking phases so slabs fill and empty.
            let alloc_percent = if (step / 5000) % 2 == 0 { 65 } else { 35 };
            if addrs.is_empty() || rng.below(100) < alloc_percent {
                addrs.push(alloc_one(&mut kmalloc, &mut backend, &mut live, &mut rng));
            } else {
                let addr = addrs.swap_remove(rng.below(addrs.len() as u64) as usize);
                let object = live[&addr];
                free_one(&mut kmalloc, &mut backend, &mut live, addr);
                if rng.below(16) == 0 {
                    let again =
                        kmalloc.free(&mut backend, addr, object.size_bytes, object.align_bytes);
                    let is_rejected = matches!(
                        again,
                        Err(KmallocError::Slab(SlabError::DoubleFree | SlabError::NotInCache))
                    );
                    assert!(is_rejected, "double free at step {step} gave {again:?}");
                }
            }
            kmalloc.check_invariants(&backend);
        }
        let nr_active: u64 = kmalloc.slabinfo().map(|info| info.nr_active_objects).sum();
        assert_eq!(nr_active, live.len() as u64);
        for addr in addrs {
            free_one(&mut kmalloc, &mut backend, &mut live, addr);
        }
        kmalloc.check_invariants(&backend);
        let nr_pages_kept: u64 = kmalloc.slabinfo().map(|info| info.nr_pages()).sum();
        assert_eq!(kmalloc.shrink(&mut backend), nr_pages_kept);
        assert_eq!(backend.nr_pages_out, 0, "every page back to the backend");
        assert!(kmalloc.slabinfo().all(|info| info.nr_slabs() == 0));
    }
}
