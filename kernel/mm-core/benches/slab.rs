//! Host benchmark: a 64-byte alloc+free pair through [`Kmalloc`] against
//! `linked_list_allocator::Heap`, the usual first kernel heap in Rust hobby kernels.
//!
//! Run with `cargo bench -p mm-core --bench slab`. All contenders get the same request
//! sequences. Scenarios: an empty heap; a realistic live set (a few thousand objects of
//! mixed sizes, built by churn, so the linked list is fragmented); and batches of 1000
//! allocations followed by their 1000 frees on top of that live set.
//!
//! kmalloc runs over two backends. `VecBackend` keeps memory in a `Vec<u64>` at made-up
//! addresses: safe, but every word access pays an index computation and a bounds check.
//! `RawBackend` uses real host addresses inside a leaked buffer and dereferences them, as
//! the kernel's backend does through the direct map; it is the fair one against
//! `linked_list_allocator`, which also works on raw pointers.

use std::alloc::Layout;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::Instant;

use linked_list_allocator::Heap;
use mm_core::addr::{Order, PAGE_SIZE};
use mm_core::kmalloc::Kmalloc;
use mm_core::slab::{MAX_SLAB_ORDER, SlabBackend, SlabInfo};
use mm_core::xorshift::XorShift;

/// Bytes of "RAM" each allocator gets.
const ARENA_BYTES: u64 = 64 << 20;
/// Objects alive during the realistic scenarios.
const NR_LIVE_OBJECTS: usize = 4000;
/// Timed rounds per measurement; the fastest counts (the machine may be shared).
const NR_ROUNDS: usize = 9;
/// Alloc+free pairs per round of the pair scenarios.
const NR_PAIRS_PER_ROUND: u64 = 1_000_000;
/// Objects per batch, and batches per round, of the batch scenario.
const BATCH_LEN: usize = 1000;
const NR_BATCHES_PER_ROUND: u64 = 100;

/// A bump + per-order free-list page allocator handing out naturally aligned blocks of
/// `[base, base + ARENA_BYTES)`.
struct PageArena {
    base: u64,
    next_unused_page: u64,
    free_blocks: [Vec<u64>; MAX_SLAB_ORDER as usize + 1],
}

impl PageArena {
    /// Creates an arena at `base`, which must be aligned to the largest slab.
    fn new(base: u64) -> Self {
        assert_eq!(base % Order(MAX_SLAB_ORDER).size_bytes(), 0, "PageArena::new: misaligned base");
        PageArena { base, next_unused_page: 0, free_blocks: Default::default() }
    }

    fn alloc_pages(&mut self, order: Order) -> Option<u64> {
        if let Some(addr) = self.free_blocks[order.0 as usize].pop() {
            return Some(addr);
        }
        let nr_pages = order.nr_frames();
        let first = self.next_unused_page.next_multiple_of(nr_pages);
        if (first + nr_pages) * PAGE_SIZE > ARENA_BYTES {
            return None;
        }
        for gap_page in self.next_unused_page..first {
            self.free_blocks[0].push(self.base + gap_page * PAGE_SIZE);
        }
        self.next_unused_page = first + nr_pages;
        Some(self.base + first * PAGE_SIZE)
    }

    fn free_pages(&mut self, addr: u64, order: Order) {
        self.free_blocks[order.0 as usize].push(addr);
    }
}

/// Memory in a `Vec<u64>` at made-up addresses; each access indexes and bounds-checks.
struct VecBackend {
    pages: PageArena,
    words: Vec<u64>,
}

impl VecBackend {
    fn new() -> Self {
        VecBackend {
            pages: PageArena::new(0x7700_0000_0000),
            words: vec![0; ARENA_BYTES as usize / 8],
        }
    }
}

impl SlabBackend for VecBackend {
    fn alloc_pages(&mut self, order: Order) -> Option<u64> {
        self.pages.alloc_pages(order)
    }

    fn free_pages(&mut self, addr: u64, order: Order) {
        self.pages.free_pages(addr, order);
    }

    #[inline]
    fn read_word(&self, addr: u64) -> u64 {
        self.words.get((addr.wrapping_sub(self.pages.base) / 8) as usize).copied().unwrap_or(0)
    }

    #[inline]
    fn write_word(&mut self, addr: u64, value: u64) {
        self.words[((addr - self.pages.base) / 8) as usize] = value;
    }
}

/// Memory at real host addresses in a leaked buffer, dereferenced directly (as the
/// kernel does through its direct map).
struct RawBackend {
    pages: PageArena,
}

impl RawBackend {
    fn new() -> Self {
        let align_bytes = Order(MAX_SLAB_ORDER).size_bytes();
        let buffer = vec![0u64; ((ARENA_BYTES + align_bytes) / 8) as usize].leak();
        let base = (buffer.as_mut_ptr().expose_provenance() as u64).next_multiple_of(align_bytes);
        RawBackend { pages: PageArena::new(base) }
    }

    /// Returns the pointer for `addr`, which must lie in the arena.
    #[inline]
    fn word_ptr(&self, addr: u64) -> *mut u64 {
        debug_assert!(addr.wrapping_sub(self.pages.base) < ARENA_BYTES && addr % 8 == 0);
        std::ptr::with_exposed_provenance_mut(addr as usize)
    }
}

impl SlabBackend for RawBackend {
    fn alloc_pages(&mut self, order: Order) -> Option<u64> {
        self.pages.alloc_pages(order)
    }

    fn free_pages(&mut self, addr: u64, order: Order) {
        self.pages.free_pages(addr, order);
    }

    #[inline]
    fn read_word(&self, addr: u64) -> u64 {
        // SAFETY:
        // 1. `addr` is inside the leaked arena, whose provenance `new` exposed: the slab
        //    code touches only blocks this backend handed out, plus the header of an
        //    address passed to `free`, and this benchmark frees only its own objects.
        // 2. `addr` is 8-byte aligned (slab words are) and the arena is zero-initialized.
        unsafe { self.word_ptr(addr).read() }
    }

    #[inline]
    fn write_word(&mut self, addr: u64, value: u64) {
        // SAFETY: as in `read_word`; nothing else reads or writes the arena meanwhile.
        unsafe { self.word_ptr(addr).write(value) }
    }
}

/// The interface every contender is driven through (8-byte alignment throughout).
trait BenchAllocator {
    type Handle: Copy;
    fn alloc(&mut self, size_bytes: usize) -> Self::Handle;
    fn free(&mut self, handle: Self::Handle, size_bytes: usize);
}

/// Our slab-based kmalloc over backend `B`.
struct SlabHeap<B> {
    kmalloc: Kmalloc,
    backend: B,
}

impl<B: SlabBackend> BenchAllocator for SlabHeap<B> {
    type Handle = u64;

    #[inline]
    fn alloc(&mut self, size_bytes: usize) -> u64 {
        self.kmalloc.alloc(&mut self.backend, size_bytes, 8).expect("kmalloc: out of memory")
    }

    #[inline]
    fn free(&mut self, addr: u64, size_bytes: usize) {
        self.kmalloc.free(&mut self.backend, addr, size_bytes, 8).expect("kmalloc: bad free");
    }
}

/// `linked_list_allocator::Heap`: first fit over an address-ordered list of holes.
struct ListHeap(Heap);

impl ListHeap {
    fn new() -> Self {
        let memory = vec![std::mem::MaybeUninit::<u8>::uninit(); ARENA_BYTES as usize].leak();
        ListHeap(Heap::from_slice(memory))
    }
}

impl BenchAllocator for ListHeap {
    type Handle = NonNull<u8>;

    #[inline]
    fn alloc(&mut self, size_bytes: usize) -> NonNull<u8> {
        let layout = Layout::from_size_align(size_bytes, 8).unwrap();
        self.0.allocate_first_fit(layout).expect("linked_list_allocator: out of memory")
    }

    #[inline]
    fn free(&mut self, ptr: NonNull<u8>, size_bytes: usize) {
        let layout = Layout::from_size_align(size_bytes, 8).unwrap();
        // SAFETY: `ptr` came from `allocate_first_fit` on this heap with this same layout,
        // and each handle is freed exactly once.
        unsafe { self.0.deallocate(ptr, layout) }
    }
}


/// Returns a kernel-like request size: mostly small, some medium, a few page-sized.
fn random_size(rng: &mut XorShift) -> usize {
    (match rng.below(100) {
        0..70 => 8 + rng.below(121),
        70..95 => 129 + rng.below(896),
        _ => 1025 + rng.below(3072),
    }) as usize
}

/// Builds the realistic live set by churn: allocates and frees random sizes until about
/// [`NR_LIVE_OBJECTS`] objects are alive and the free space is fragmented.
fn build_live_set<A: BenchAllocator>(heap: &mut A) -> Vec<(A::Handle, usize)> {
    let mut rng = XorShift(0x0bad_5eed_1234_5678);
    let mut live = Vec::new();
    for _ in 0..12 * NR_LIVE_OBJECTS {
        if live.len() < NR_LIVE_OBJECTS && (live.is_empty() || rng.below(100) < 60) {
            let size_bytes = random_size(&mut rng);
            live.push((heap.alloc(size_bytes), size_bytes));
        } else {
            let (handle, size_bytes) = live.swap_remove(rng.below(live.len() as u64) as usize);
            heap.free(handle, size_bytes);
        }
    }
    live
}

/// Returns the best ns per 64-byte alloc+free pair, freeing each object at once.
fn time_pairs<A: BenchAllocator>(heap: &mut A) -> f64 {
    best_of_rounds(|| {
        for _ in 0..NR_PAIRS_PER_ROUND {
            let handle = black_box(heap.alloc(black_box(64)));
            heap.free(handle, 64);
        }
        NR_PAIRS_PER_ROUND
    })
}

/// Returns the best ns per pair for batches: [`BATCH_LEN`] 64-byte allocs, then their frees.
fn time_batches<A: BenchAllocator>(heap: &mut A) -> f64 {
    let mut batch = Vec::with_capacity(BATCH_LEN);
    best_of_rounds(|| {
        for _ in 0..NR_BATCHES_PER_ROUND {
            batch.extend((0..BATCH_LEN).map(|_| black_box(heap.alloc(black_box(64)))));
            for handle in batch.drain(..) {
                heap.free(handle, 64);
            }
        }
        NR_BATCHES_PER_ROUND * BATCH_LEN as u64
    })
}

/// Runs `round_fn` (which returns how many pairs it did) once to warm up, then
/// [`NR_ROUNDS`] times, and returns the fastest round's ns per pair.
fn best_of_rounds(mut round_fn: impl FnMut() -> u64) -> f64 {
    round_fn();
    (0..NR_ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let nr_pairs = round_fn();
            start.elapsed().as_nanos() as f64 / nr_pairs as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn print_row(scenario: &str, [vec_ns, raw_ns, list_ns]: [f64; 3]) {
    println!(
        "{scenario:<36} {vec_ns:>8.1} {raw_ns:>8.1} {list_ns:>12.1}   {:>6.1}x {:>6.1}x",
        list_ns / vec_ns,
        list_ns / raw_ns
    );
}

fn main() {
    println!(
        "64-byte alloc+free pair: ns per pair, fastest of {NR_ROUNDS} rounds (lower is better)"
    );
    println!(
        "{:<36} {:>8} {:>8} {:>12}   {:>7} {:>7}",
        "scenario", "kmalloc", "kmalloc", "linked_list", "ratio", "ratio"
    );
    println!(
        "{:<36} {:>8} {:>8} {:>12}   {:>7} {:>7}",
        "", "Vec", "raw ptr", "allocator", "Vec", "raw"
    );

    let mut vec_heap = SlabHeap { kmalloc: Kmalloc::new(), backend: VecBackend::new() };
    let mut raw_heap = SlabHeap { kmalloc: Kmalloc::new(), backend: RawBackend::new() };
    let mut list_heap = ListHeap::new();
    let empty = [time_pairs(&mut vec_heap), time_pairs(&mut raw_heap), time_pairs(&mut list_heap)];
    print_row("empty heap", empty);

    let nr_live = build_live_set(&mut vec_heap).len();
    build_live_set(&mut raw_heap);
    let list_live = build_live_set(&mut list_heap);
    let live = [time_pairs(&mut vec_heap), time_pairs(&mut raw_heap), time_pairs(&mut list_heap)];
    print_row(&format!("live set of {nr_live} mixed-size objects"), live);
    let batches =
        [time_batches(&mut vec_heap), time_batches(&mut raw_heap), time_batches(&mut list_heap)];
    print_row(&format!("  same, batches of {BATCH_LEN}"), batches);

    let nr_live_bytes: usize = list_live.iter().map(|&(_, size_bytes)| size_bytes).sum();
    let nr_slab_pages: u64 = raw_heap.kmalloc.slabinfo().map(|info| info.nr_pages()).sum();
    println!(
        "\nlive set: {nr_live} objects, {} KiB requested; kmalloc holds {} KiB of slabs; \
         linked_list_allocator reports {} KiB used",
        nr_live_bytes / 1024,
        nr_slab_pages * PAGE_SIZE / 1024,
        list_heap.0.used() / 1024,
    );
    println!("\n{}", SlabInfo::HEADER);
    for info in raw_heap.kmalloc.slabinfo() {
        println!("{info}");
    }
}
