use super::*;
use core::sync::atomic::{AtomicU64, Ordering};
use std::vec;
use std::vec::Vec;

/// Host memory standing in for RAM: a `Vec<u64>` arena at a fake address, with a
/// bump + per-order free-list page allocator handing out naturally aligned blocks.
///
/// It checks its callers: every write must land in a block that is out, every
/// `free_pages` must match an `alloc_pages`. Freed blocks are poisoned. Reads outside
/// the arena return 0.
pub(crate) struct HostBackend {
    words: Vec<u64>,
    /// Per page: `FREE_PAGE`, `TAIL_PAGE` (inside a block that is out), or the order
    /// of the block that is out and starts here.
    page_state: Vec<u8>,
    free_blocks: [Vec<u64>; MAX_SLAB_ORDER as usize + 1],
    next_unused_page: u64,
    pub(crate) nr_pages_out: u64,
    pub(crate) page_limit: u64,
}

const BASE: u64 = 0x7700_0000_0000;
const POISON: u64 = 0xdead_dead_dead_dead;
const FREE_PAGE: u8 = 0xff;
const TAIL_PAGE: u8 = 0xfe;

impl HostBackend {
    /// Creates an arena of `nr_pages` pages, all free.
    pub(crate) fn new(nr_pages: u64) -> Self {
        HostBackend {
            words: vec![POISON; (nr_pages * PAGE_SIZE / 8) as usize],
            page_state: vec![FREE_PAGE; nr_pages as usize],
            free_blocks: Default::default(),
            next_unused_page: 0,
            nr_pages_out: 0,
            page_limit: nr_pages,
        }
    }

    /// Returns the index of the `unit_bytes`-sized unit (page or word) holding `addr`.
    fn index(addr: u64, unit_bytes: u64) -> usize {
        ((addr - BASE) / unit_bytes) as usize
    }
}

impl SlabBackend for HostBackend {
    fn alloc_pages(&mut self, order: Order) -> Option<u64> {
        let nr_pages = order.nr_frames();
        if self.nr_pages_out + nr_pages > self.page_limit {
            return None;
        }
        let addr = match self.free_blocks[order.0 as usize].pop() {
            Some(addr) => addr,
            None => {
                let first = align_up(self.next_unused_page, nr_pages);
                if first + nr_pages > self.page_state.len() as u64 {
                    return None;
                }
                for gap_page in self.next_unused_page..first {
                    self.free_blocks[0].push(BASE + gap_page * PAGE_SIZE);
                }
                self.next_unused_page = first + nr_pages;
                BASE + first * PAGE_SIZE
            }
        };
        let first = Self::index(addr, PAGE_SIZE);
        let pages = &mut self.page_state[first..first + nr_pages as usize];
        assert!(
            pages.iter().all(|&state| state == FREE_PAGE),
            "HostBackend: block already out"
        );
        pages.fill(TAIL_PAGE);
        pages[0] = order.0;
        self.nr_pages_out += nr_pages;
        Some(addr)
    }

    fn free_pages(&mut self, addr: u64, order: Order) {
        let first = Self::index(addr, PAGE_SIZE);
        assert_eq!(
            self.page_state[first], order.0,
            "HostBackend: free_pages of a block not out"
        );
        self.page_state[first..first + order.nr_frames() as usize].fill(FREE_PAGE);
        let first_word = Self::index(addr, 8);
        self.words[first_word..first_word + (order.size_bytes() / 8) as usize].fill(POISON);
        self.free_blocks[order.0 as usize].push(addr);
        self.nr_pages_out -= order.nr_frames();
    }

    fn read_word(&self, addr: u64) -> u64 {
        assert_eq!(addr % 8, 0, "HostBackend: unaligned read");
        let index = addr.wrapping_sub(BASE) / 8;
        self.words.get(index as usize).copied().unwrap_or(0)
    }

    fn write_word(&mut self, addr: u64, value: u64) {
        assert_eq!(addr % 8, 0, "HostBackend: unaligned write");
        let state = self.page_state[Self::index(addr, PAGE_SIZE)];
        assert!(state != FREE_PAGE, "HostBackend: write to a page not out: {addr:#x}");
        self.words[Self::index(addr, 8)] = value;
    }
}

/// Allocates `nr` objects from `cache`, checking invariants after each.
fn alloc_n(cache: &mut SlabCache, backend: &mut HostBackend, nr: u64) -> Vec<u64> {
    let objects = (0..nr).map(|_| cache.alloc(backend).unwrap()).collect();
    cache.check_invariants(backend);
    objects
}

#[test]
fn alloc_fills_a_slab_then_moves_it_to_full() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-64", 64, 64, None);
    assert_eq!((cache.order(), cache.nr_objects_per_slab()), (Order(0), 63));
    let first = cache.alloc(&mut backend).unwrap();
    assert_eq!((cache.info().nr_partial_slabs, backend.nr_pages_out), (1, 1));
    let mut objects = alloc_n(&mut cache, &mut backend, 62);
    objects.push(first);
    let info = cache.info();
    assert_eq!((info.nr_full_slabs, info.nr_partial_slabs, info.nr_empty_slabs), (1, 0, 0));
    assert!(objects.iter().all(|&o| o & !(PAGE_SIZE - 1) == first & !(PAGE_SIZE - 1)));
    let next_slab_object = cache.alloc(&mut backend).unwrap();
    assert_ne!(next_slab_object & !(PAGE_SIZE - 1), first & !(PAGE_SIZE - 1));
    assert_eq!((cache.info().nr_full_slabs, cache.info().nr_partial_slabs), (1, 1));
    cache.check_invariants(&backend);
}

#[test]
fn free_moves_a_full_slab_back_to_partial_then_empty() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-512", 512, 512, None);
    let nr = cache.nr_objects_per_slab();
    let objects = alloc_n(&mut cache, &mut backend, nr);
    assert_eq!(cache.info().nr_full_slabs, 1);
    cache.free(&mut backend, objects[3]).unwrap();
    assert_eq!((cache.info().nr_full_slabs, cache.info().nr_partial_slabs), (0, 1));
    assert_eq!(
        cache.alloc(&mut backend).unwrap(),
        objects[3],
        "the freed object is reused first"
    );
    for &object in &objects {
        cache.free(&mut backend, object).unwrap();
        cache.check_invariants(&backend);
    }
    let info = cache.info();
    assert_eq!((info.nr_active_objects, info.nr_partial_slabs, info.nr_empty_slabs), (0, 0, 1));
    assert_eq!(backend.nr_pages_out, 2, "the one empty slab (order 1) is kept as reserve");
}

#[test]
fn empty_slabs_beyond_the_reserve_go_back_to_the_backend() {
    let mut backend = HostBackend::new(256);
    let mut cache = SlabCache::new("test-256", 256, 256, None);
    let nr = 4 * cache.nr_objects_per_slab();
    let objects = alloc_n(&mut cache, &mut backend, nr);
    assert_eq!((cache.info().nr_slabs(), backend.nr_pages_out), (4, 4));
    for &object in &objects {
        cache.free(&mut backend, object).unwrap();
    }
    cache.check_invariants(&backend);
    assert_eq!(
        (cache.info().nr_empty_slabs, backend.nr_pages_out),
        (MAX_EMPTY_SLABS, MAX_EMPTY_SLABS)
    );
    assert_eq!(cache.shrink(&mut backend), MAX_EMPTY_SLABS);
    assert_eq!((cache.info().nr_slabs(), backend.nr_pages_out), (0, 0));
    cache.check_invariants(&backend);
}

static NR_CONSTRUCTED: AtomicU64 = AtomicU64::new(0);
const CONSTRUCTED: u64 = 0xc0c0_c0c0_0000_0000;

fn construct_three_words(backend: &mut dyn SlabBackend, object: u64) {
    NR_CONSTRUCTED.fetch_add(1, Ordering::Relaxed);
    for word in 0..3 {
        backend.write_word(object + 8 * word, CONSTRUCTED ^ object ^ word);
    }
}

#[test]
fn constructor_runs_once_per_object_at_slab_creation() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-ctor", 24, 8, Some(construct_three_words));
    assert_eq!(cache.stride_bytes(), 32, "24-byte objects plus an out-of-object free pointer");
    let nr = cache.nr_objects_per_slab();
    let objects = alloc_n(&mut cache, &mut backend, nr);
    assert_eq!(NR_CONSTRUCTED.load(Ordering::Relaxed), nr);
    for round in 0..3 {
        for &object in objects.iter().skip(round) {
            cache.free(&mut backend, object).unwrap();
        }
        for _ in round..objects.len() {
            cache.alloc(&mut backend).unwrap();
        }
    }
    cache.check_invariants(&backend);
    assert_eq!(NR_CONSTRUCTED.load(Ordering::Relaxed), nr, "reuse does not construct again");
    for &object in &objects {
        for word in 0..3 {
            assert_eq!(backend.read_word(object + 8 * word), CONSTRUCTED ^ object ^ word);
        }
    }
}

#[test]
fn double_free_is_detected_and_changes_nothing() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-16", 16, 16, None);
    let objects = alloc_n(&mut cache, &mut backend, 4);
    cache.free(&mut backend, objects[0]).unwrap();
    assert_eq!(
        cache.free(&mut backend, objects[0]),
        Err(SlabError::DoubleFree),
        "free-list head"
    );
    cache.free(&mut backend, objects[1]).unwrap();
    assert_eq!(
        cache.free(&mut backend, objects[0]),
        Err(SlabError::DoubleFree),
        "deeper in the list"
    );
    cache.check_invariants(&backend);
    cache.free(&mut backend, objects[2]).unwrap();
    cache.free(&mut backend, objects[3]).unwrap();
    assert_eq!(cache.free(&mut backend, objects[3]), Err(SlabError::DoubleFree), "empty slab");
    cache.check_invariants(&backend);
    assert_eq!(cache.nr_active_objects(), 0);
    let again = alloc_n(&mut cache, &mut backend, 4);
    assert_eq!(
        again.iter().collect::<std::collections::BTreeSet<_>>().len(),
        4,
        "no object handed out twice"
    );
}

#[test]
fn user_data_that_looks_like_a_free_pointer_is_still_freed() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-32", 32, 32, None);
    let objects = alloc_n(&mut cache, &mut backend, 3);
    cache.free(&mut backend, objects[2]).unwrap();
    // Forge the first word of a live object into a valid-looking encoded free pointer.
    let slab = objects[0] & !(PAGE_SIZE - 1);
    backend.write_word(objects[0], encode_free_ptr(objects[2] - slab, objects[0]));
    cache.free(&mut backend, objects[0]).unwrap();
    backend.write_word(objects[1], encode_free_ptr(NIL, objects[1]));
    cache.free(&mut backend, objects[1]).unwrap();
    cache.check_invariants(&backend);
}

#[test]
fn foreign_and_misaligned_addresses_are_rejected() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-96", 96, 32, None);
    let mut other = SlabCache::new("test-other-96", 96, 32, None);
    let object = cache.alloc(&mut backend).unwrap();
    let other_object = other.alloc(&mut backend).unwrap();
    let raw_page = backend.alloc_pages(Order(0)).unwrap();
    let slab = object & !(PAGE_SIZE - 1);
    assert_eq!(cache.free(&mut backend, other_object), Err(SlabError::NotInCache));
    assert_eq!(cache.free(&mut backend, raw_page + 64), Err(SlabError::NotInCache));
    assert_eq!(cache.free(&mut backend, 0x10), Err(SlabError::NotInCache));
    assert_eq!(cache.free(&mut backend, object + 8), Err(SlabError::Misaligned));
    assert_eq!(cache.free(&mut backend, slab), Err(SlabError::Misaligned), "the header");
    assert_eq!(
        cache.free(&mut backend, slab + PAGE_SIZE - 8),
        Err(SlabError::Misaligned),
        "the tail"
    );
    cache.check_invariants(&backend);
    other.check_invariants(&backend);
    cache.free(&mut backend, object).unwrap();
    cache.shrink(&mut backend);
    assert_eq!(cache.free(&mut backend, object), Err(SlabError::NotInCache), "slab given back");
}

#[test]
fn check_object_tells_an_object_from_a_foreign_or_misaligned_address() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-check-96", 96, 32, None);
    let mut other = SlabCache::new("test-check-other-96", 96, 32, None);
    let object = cache.alloc(&mut backend).unwrap();
    let other_object = other.alloc(&mut backend).unwrap();
    let slab = object & !(PAGE_SIZE - 1);
    assert_eq!(cache.check_object(&backend, object), Ok(()));
    assert_eq!(cache.check_object(&backend, other_object), Err(SlabError::NotInCache));
    assert_eq!(cache.check_object(&backend, object + 8), Err(SlabError::Misaligned));
    assert_eq!(cache.check_object(&backend, slab), Err(SlabError::Misaligned), "the header");
    assert_eq!(cache.nr_active_objects(), 1, "a check changes nothing");
    cache.free(&mut backend, object).unwrap();
    cache.shrink(&mut backend);
    assert_eq!(cache.check_object(&backend, object), Err(SlabError::NotInCache), "slab given back");
}

#[test]
fn out_of_memory_is_reported_and_leaves_the_cache_consistent() {
    let mut backend = HostBackend::new(64);
    backend.page_limit = 2;
    let mut cache = SlabCache::new("test-1024", 1024, 1024, None);
    assert_eq!(cache.order(), Order(2));
    assert_eq!(cache.alloc(&mut backend), Err(SlabError::OutOfMemory));
    backend.page_limit = 4;
    let nr = cache.nr_objects_per_slab();
    let objects = alloc_n(&mut cache, &mut backend, nr);
    assert_eq!(cache.alloc(&mut backend), Err(SlabError::OutOfMemory));
    cache.check_invariants(&backend);
    for &object in &objects {
        cache.free(&mut backend, object).unwrap();
    }
    assert_eq!(cache.shrink(&mut backend), 4);
}

#[test]
fn odd_sizes_round_up_and_object_starts_are_exact() {
    let cache = SlabCache::new("test-12", 12, 4, None);
    assert_eq!((cache.align_bytes(), cache.stride_bytes()), (8, 16));
    let cache = SlabCache::new("test-40", 40, 64, None);
    assert_eq!((cache.stride_bytes(), cache.nr_objects_per_slab()), (64, 63));
    let cache = SlabCache::new("test-0", 0, 1, None);
    assert_eq!(cache.stride_bytes(), 8);
    for stride in [8, 24, 40, 96, 192, 4096, 4104] {
        let cache = SlabCache::new("test-stride", stride, 8, None);
        for offset in 0..cache.nr_objects_per_slab() * stride as u64 {
            let is_start = cache.is_object_start(cache.first_object_offset + offset);
            assert_eq!(is_start, offset % stride as u64 == 0);
        }
    }
}

#[test]
#[should_panic(expected = "free list corrupted")]
fn write_after_free_is_caught_by_the_next_alloc() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-64-uaf", 64, 64, None);
    let objects = alloc_n(&mut cache, &mut backend, 2);
    cache.free(&mut backend, objects[1]).unwrap();
    backend.write_word(objects[1], 0x4141_4141_4141_4141);
    let _ = cache.alloc(&mut backend);
}

#[test]
fn slabinfo_counts_objects_and_slabs() {
    let mut backend = HostBackend::new(64);
    let mut cache = SlabCache::new("test-2048", 2048, 2048, None);
    let objects = alloc_n(&mut cache, &mut backend, 20);
    cache.free(&mut backend, objects[0]).unwrap();
    let info = cache.info();
    assert_eq!(
        (info.nr_active_objects, info.nr_total_objects, info.nr_objects_per_slab),
        (19, 30, 15)
    );
    assert_eq!((info.nr_pages_per_slab, info.nr_full_slabs, info.nr_partial_slabs), (8, 0, 2));
    assert_eq!(info.nr_pages(), backend.nr_pages_out);
    let line = std::format!("{info}");
    assert!(
        line.starts_with("test-2048") && line.contains(" 19 ") && line.contains(" 30 "),
        "{line}"
    );
}
