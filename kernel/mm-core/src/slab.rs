//! Slab caches: many objects of one size carved out of naturally aligned page blocks.
//!
//! A [`SlabCache`] serves fixed-size objects (task structs, VMA nodes, the kmalloc size
//! classes) from *slabs*, blocks of `2^order` pages taken from the page allocator. It
//! never dereferences a pointer: every word it reads or writes goes through a
//! [`SlabBackend`], which the kernel implements over the direct physical map
//! (`mm/heap.rs`, unsafe there) and the tests implement over a host `Vec<u64>`. Nor does
//! it allocate from `alloc`: this *is* the kernel heap, so its state is a few words in
//! the cache plus an on-slab header in every slab.
//!
//! Key types: [`SlabCache`], [`SlabBackend`], [`SlabError`], [`SlabInfo`] (one
//! `/proc/slabinfo` line). Neighbours: [`crate::addr`] supplies [`Order`] and
//! [`PAGE_SIZE`]; [`crate::kmalloc`] builds the general-purpose size classes from twelve
//! caches; a kernel backend's `alloc_pages` is the buddy allocator.
//!
//! Locking: none here. The kernel keeps a cache (or the whole kmalloc) behind one
//! IRQ-safe spinlock; every method enters and returns with that lock held.
//!
//! ```text
//!   slab base: aligned to the slab size (2^order pages), so  slab = addr & !(slab_size - 1)
//!   v
//!   +-------------+-----+----------+----------+-----+------------+------+
//!   | header 32 B | pad | object 0 | object 1 | ... | object n-1 | tail |
//!   +-------------+-----+----------+----------+-----+------------+------+
//!   header words:  magic | free-list head offset << 32 | nr_inuse | next slab | prev slab
//!   a free object: its first word (in a cache with a constructor, the word just after
//!                  the object) holds the next free object's offset in the slab, encoded;
//!                  offset 0 (the header) ends the list
//! ```

use core::fmt;

use crate::addr::{Order, PAGE_SIZE, align_down, align_up};

/// Memory as the slab allocator sees it: page blocks to carve up, and words to read and write.
///
/// Addresses are plain `u64` object addresses; the kernel uses direct-map virtual
/// addresses. The slab code only touches words inside blocks it got from `alloc_pages`
/// and has not yet given back, except that `free` reads the would-be slab header of the
/// address it is handed.
pub trait SlabBackend {
    /// Returns the address of a naturally aligned block of `2^order` pages (never 0), or
    /// `None` when out of memory.
    fn alloc_pages(&mut self, order: Order) -> Option<u64>;
    /// Gives back a block that `alloc_pages(order)` returned.
    fn free_pages(&mut self, addr: u64, order: Order);
    /// Returns the word at `addr` (8-byte aligned). `free` of a foreign address reads the
    /// header of a slab that may not exist: a backend that can tell should return 0.
    fn read_word(&self, addr: u64) -> u64;
    /// Stores `value` at `addr` (8-byte aligned, inside a block the cache holds).
    fn write_word(&mut self, addr: u64, value: u64);
}

/// An object constructor: runs once on each object (by address) when its slab is created.
///
/// Objects go back to the cache in constructed state (Bonwick's rule), so the cache keeps
/// its free pointer outside the object and never touches the object's bytes.
pub type CtorFn = fn(&mut dyn SlabBackend, u64);

/// The largest slab order a cache chooses (8 pages), like Linux's `PAGE_ALLOC_COSTLY_ORDER`.
pub const MAX_SLAB_ORDER: u8 = 3;
/// Number of empty slabs a cache keeps for its next growth; further ones go back at once.
pub const MAX_EMPTY_SLABS: u64 = 1;
/// Size of the on-slab header; the first object starts at the next multiple of the alignment.
pub const HEADER_SIZE_BYTES: u64 = 32;

/// The "no slab" address in list links, and the "no object" offset in free pointers.
const NIL: u64 = 0;
/// Offsets of the header words inside a slab.
const HDR_MAGIC: u64 = 0;
const HDR_COUNTERS: u64 = 8;
const HDR_NEXT: u64 = 16;
const HDR_PREV: u64 = 24;
/// Mixed into every cache's magic, and into every stored free pointer.
const SLAB_MAGIC: u64 = 0x51ab_cace_0000_0001;
const FREE_PTR_SALT: u64 = 0xa5f1_3e9c_0000_0000;

/// Indices of the three slab lists; which one a slab is on follows from its `nr_inuse`.
const FULL: usize = 0;
const PARTIAL: usize = 1;
const EMPTY: usize = 2;

/// The error type of [`SlabCache`] operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabError {
    /// The backend had no pages for a new slab.
    OutOfMemory,
    /// The address is not inside a slab of this cache.
    NotInCache,
    /// The address is inside one of this cache's slabs but not at the start of an object.
    Misaligned,
    /// The object is already free.
    DoubleFree,
}

impl fmt::Display for SlabError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlabError::OutOfMemory => "out of memory for a new slab",
            SlabError::NotInCache => "address is not in a slab of this cache",
            SlabError::Misaligned => "address is not the start of an object",
            SlabError::DoubleFree => "object is already free",
        })
    }
}

/// A doubly linked list of slabs, threaded through the `next`/`prev` header words.
#[derive(Clone, Copy, Debug)]
struct SlabList {
    head: u64,
    nr_slabs: u64,
}

/// A cache of equally sized objects, kept in slabs on full, partial and empty lists.
///
/// Drop a cache only after every object is freed and [`SlabCache::shrink`] has run;
/// otherwise its slabs leak (it cannot free pages without a backend).
#[derive(Debug)]
pub struct SlabCache {
    name: &'static str,
    object_size_bytes: u64,
    align_bytes: u64,
    /// Distance between consecutive objects: size (plus free pointer) rounded to the alignment.
    stride_bytes: u64,
    /// `ceil(2^64 / stride_bytes)`: makes "is this offset a multiple of the stride" a multiply.
    stride_reciprocal: u64,
    /// Where the free pointer sits inside an object's stride: 0, or just past the object.
    free_ptr_offset: u64,
    first_object_offset: u64,
    /// `nr_objects_per_slab * stride_bytes`: objects live at offsets `first + [0, this)`.
    object_area_bytes: u64,
    order: Order,
    slab_size_bytes: u64,
    nr_objects_per_slab: u64,
    /// Written to the header of every slab; tells this cache's slabs from anything else.
    magic: u64,
    ctor_fn: Option<CtorFn>,
    lists: [SlabList; 3],
    nr_active_objects: u64,
}

/// Returns the smallest order (up to [`MAX_SLAB_ORDER`]) whose slab wastes at most 1/16
/// of itself on header and tail, else 1/8, 1/4, 1/2 (Linux `calc_slab_order`).
const fn choose_slab_order(first_object_offset: u64, stride_bytes: u64) -> u8 {
    let mut fraction = 16;
    while fraction >= 2 {
        let mut order = 0;
        while order <= MAX_SLAB_ORDER {
            let slab_size = PAGE_SIZE << order;
            if slab_size >= first_object_offset + stride_bytes {
                let nr_objects = (slab_size - first_object_offset) / stride_bytes;
                if (slab_size - nr_objects * stride_bytes) * fraction <= slab_size {
                    return order;
                }
            }
            order += 1;
        }
        fraction /= 2;
    }
    MAX_SLAB_ORDER
}

/// Returns the 64-bit FNV-1a hash of `name`.
const fn fnv1a(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let (mut hash, mut i) = (0xcbf2_9ce4_8422_2325_u64, 0);
    while i < bytes.len() {
        hash = (hash ^ bytes[i] as u64).wrapping_mul(0x0000_0100_0000_01b3);
        i += 1;
    }
    hash
}

/// Returns header word `HDR_COUNTERS`: the free-list head (an offset in the slab, 0 for
/// none) and the number of objects in use, packed so that one load and one store cover
/// both (SLUB packs `freelist` and `counters` likewise, to swap them in one cmpxchg).
#[inline]
fn pack_counters(head_offset: u64, nr_inuse: u64) -> u64 {
    head_offset << 32 | nr_inuse
}

/// Returns `(head_offset, nr_inuse)` from a counters word (the inverse of `pack_counters`).
#[inline]
fn unpack_counters(counters: u64) -> (u64, u64) {
    (counters >> 32, counters & 0xffff_ffff)
}

/// Returns the stored form of the free pointer `next_offset`, kept in the word at `at`.
///
/// Mixing in the salt and the word's own address (Linux `SLAB_FREELIST_HARDENED`) makes a
/// scrubbed, stale or overwritten word very unlikely to decode to a valid offset.
#[inline]
fn encode_free_ptr(next_offset: u64, at: u64) -> u64 {
    next_offset ^ at ^ FREE_PTR_SALT
}

/// Returns the free pointer stored as `word` at `at` (the inverse of `encode_free_ptr`).
#[inline]
fn decode_free_ptr(word: u64, at: u64) -> u64 {
    word ^ at ^ FREE_PTR_SALT
}

impl SlabCache {
    /// Creates an empty cache of `object_size_bytes`-byte objects aligned to `align_bytes`.
    ///
    /// The cache gets no pages until its first `alloc`. Its slab order is the smallest that
    /// wastes little (see `choose_slab_order`). Two caches with the same name and geometry
    /// share a magic, so they cannot tell each other's slabs apart: give caches unique names.
    ///
    /// # Panics
    /// If `align_bytes` is not a power of two or exceeds [`PAGE_SIZE`], or if one object
    /// does not fit in a slab of order [`MAX_SLAB_ORDER`].
    pub const fn new(
        name: &'static str,
        object_size_bytes: usize,
        align_bytes: usize,
        ctor_fn: Option<CtorFn>,
    ) -> Self {
        assert!(align_bytes.is_power_of_two(), "SlabCache::new: alignment not a power of two");
        assert!(align_bytes as u64 <= PAGE_SIZE, "SlabCache::new: alignment above a page");
        let max_slab_bytes = PAGE_SIZE << MAX_SLAB_ORDER;
        assert!(object_size_bytes as u64 <= max_slab_bytes, "SlabCache::new: object too large");
        let size = object_size_bytes as u64;
        let align = if align_bytes < 8 { 8 } else { align_bytes as u64 };
        let (free_ptr_offset, footprint) = match ctor_fn {
            None => (0, if size < 8 { 8 } else { size }),
            Some(_) => (align_up(size, 8), align_up(size, 8) + 8),
        };
        let stride_bytes = align_up(footprint, align);
        let first_object_offset = align_up(HEADER_SIZE_BYTES, align);
        let order = choose_slab_order(first_object_offset, stride_bytes);
        let slab_size_bytes = PAGE_SIZE << order;
        assert!(
            first_object_offset + stride_bytes <= slab_size_bytes,
            "SlabCache::new: object too large for a slab"
        );
        let nr_objects_per_slab = (slab_size_bytes - first_object_offset) / stride_bytes;
        SlabCache {
            name,
            object_size_bytes: size,
            align_bytes: align,
            stride_bytes,
            stride_reciprocal: u64::MAX / stride_bytes + 1,
            free_ptr_offset,
            first_object_offset,
            object_area_bytes: nr_objects_per_slab * stride_bytes,
            order: Order(order),
            slab_size_bytes,
            nr_objects_per_slab,
            magic: (SLAB_MAGIC ^ fnv1a(name) ^ (stride_bytes << 8) ^ order as u64) | 1,
            ctor_fn,
            lists: [SlabList { head: NIL, nr_slabs: 0 }; 3],
            nr_active_objects: 0,
        }
    }

    /// Returns the cache's name, as shown in slabinfo.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Returns the object size the cache was created with.
    pub fn object_size_bytes(&self) -> usize {
        self.object_size_bytes as usize
    }

    /// Returns the alignment every object has (at least 8).
    pub fn align_bytes(&self) -> usize {
        self.align_bytes as usize
    }

    /// Returns the distance between neighbouring objects in a slab.
    pub fn stride_bytes(&self) -> usize {
        self.stride_bytes as usize
    }

    /// Returns the order of the page blocks the cache's slabs live in.
    pub fn order(&self) -> Order {
        self.order
    }

    /// Returns how many objects one slab holds.
    pub fn nr_objects_per_slab(&self) -> u64 {
        self.nr_objects_per_slab
    }

    /// Returns how many objects are allocated right now.
    pub fn nr_active_objects(&self) -> u64 {
        self.nr_active_objects
    }

    /// Returns the cache's statistics, one `/proc/slabinfo` line.
    pub fn info(&self) -> SlabInfo {
        let nr_slabs: u64 = self.lists.iter().map(|list| list.nr_slabs).sum();
        SlabInfo {
            name: self.name,
            object_size_bytes: self.object_size_bytes as usize,
            stride_bytes: self.stride_bytes as usize,
            nr_active_objects: self.nr_active_objects,
            nr_total_objects: nr_slabs * self.nr_objects_per_slab,
            nr_objects_per_slab: self.nr_objects_per_slab,
            nr_pages_per_slab: self.order.nr_frames(),
            nr_full_slabs: self.lists[FULL].nr_slabs,
            nr_partial_slabs: self.lists[PARTIAL].nr_slabs,
            nr_empty_slabs: self.lists[EMPTY].nr_slabs,
        }
    }

    // The slab allocator (Bonwick, "The Slab Allocator: An Object-Caching Kernel Memory
    // Allocator", USENIX 1994; Linux SLAB, then SLUB).
    //
    // A general-purpose heap searches for a hole that fits and splits and merges blocks;
    // its cost grows with fragmentation. Kernels allocate a few object sizes over and
    // over, so Bonwick gave each size its own cache. A cache takes whole page blocks
    // ("slabs") from the page allocator, cuts each into equal objects, and keeps the free
    // ones on a list: alloc pops, free pushes, both O(1), and an object never straddles
    // anything or leaves an odd-sized hole.
    //
    // Three ideas make it cheap:
    //  * The free list is intrusive. A free object's memory is unused, so its first word
    //    holds the next free object's offset in the slab (SLUB's "free pointer"):
    //    bookkeeping per object costs no memory. A cache with a constructor keeps
    //    constructed state in free objects (the constructor ran once, at slab creation),
    //    so its free pointer lives in an extra word after the object instead, as in SLUB
    //    when s->ctor is set.
    //  * The slab's own bookkeeping is an on-slab header at its start (Bonwick's small-
    //    object layout): a magic naming the owning cache, the free-list head and number
    //    in use (packed in one word), and links to the neighbouring slabs on its list.
    //    Slabs are naturally aligned buddy blocks, so free finds the header by masking
    //    the object's address: no lookup.
    //  * Slabs sit on three lists by fullness. Alloc takes from a partial slab first,
    //    which packs objects into few slabs so the others can empty out; then from an
    //    empty one; only then grows. A slab that empties goes back to the page allocator,
    //    except for a reserve of MAX_EMPTY_SLABS that stops a loop of alloc-one/free-one
    //    at a slab boundary from calling the page allocator every time.
    //
    // Free trusts nothing it is handed: the header magic must be this cache's, the
    // address must start an object, and the slab must have objects in use. A double free
    // is caught cheaply because alloc scrubs the free-pointer word of the object it hands
    // out: a live object's free-pointer word almost never decodes to a plausible free
    // pointer (0 or an object offset), and only when it does is the slab's free list
    // walked to confirm. Free pointers are offsets, so even a corrupted one cannot lead
    // outside its slab. Errors are returned before anything is written.

    /// Returns the address of a free object, growing the cache by a slab if none is free.
    ///
    /// Takes from the first partial slab, else the first empty slab, else a new slab from
    /// `backend`. The object's contents are unspecified (constructed state if the cache
    /// has a constructor).
    ///
    /// # Errors
    /// [`SlabError::OutOfMemory`] when a new slab is needed and the backend has no pages.
    ///
    /// # Panics
    /// If the slab's free list is corrupted (a write to an object after it was freed).
    #[inline]
    pub fn alloc<B: SlabBackend>(&mut self, backend: &mut B) -> Result<u64, SlabError> {
        let slab = match self.lists[PARTIAL].head {
            NIL => match self.lists[EMPTY].head {
                NIL => self.grow(backend)?,
                empty => empty,
            },
            partial => partial,
        };
        let (head_offset, nr_inuse) = unpack_counters(backend.read_word(slab + HDR_COUNTERS));
        debug_assert!(head_offset != NIL, "SlabCache::alloc: a non-full slab without free objects");
        let object = slab + head_offset;
        let free_ptr_addr = object + self.free_ptr_offset;
        let next_offset = decode_free_ptr(backend.read_word(free_ptr_addr), free_ptr_addr);
        assert!(
            next_offset == NIL || self.is_object_start(next_offset),
            "SlabCache::alloc: free list corrupted (write after free?)"
        );
        backend.write_word(free_ptr_addr, 0);
        backend.write_word(slab + HDR_COUNTERS, pack_counters(next_offset, nr_inuse + 1));
        self.relist(backend, slab, nr_inuse, nr_inuse + 1);
        self.nr_active_objects += 1;
        Ok(object)
    }

    /// Returns the object at `addr` to the cache.
    ///
    /// If its slab becomes empty and the cache already keeps [`MAX_EMPTY_SLABS`] empty
    /// slabs, the slab goes back to `backend`.
    ///
    /// # Errors
    /// [`SlabError::NotInCache`], [`SlabError::Misaligned`] or [`SlabError::DoubleFree`];
    /// the cache is left untouched.
    #[inline]
    pub fn free<B: SlabBackend>(&mut self, backend: &mut B, addr: u64) -> Result<(), SlabError> {
        let slab = align_down(addr, self.slab_size_bytes);
        if backend.read_word(slab + HDR_MAGIC) != self.magic {
            return Err(SlabError::NotInCache);
        }
        let offset = addr - slab;
        if !self.is_object_start(offset) {
            return Err(SlabError::Misaligned);
        }
        let (head_offset, nr_inuse) = unpack_counters(backend.read_word(slab + HDR_COUNTERS));
        let free_ptr_addr = addr + self.free_ptr_offset;
        let maybe_next = decode_free_ptr(backend.read_word(free_ptr_addr), free_ptr_addr);
        let looks_free = maybe_next == NIL || self.is_object_start(maybe_next);
        if nr_inuse == 0 || (looks_free && self.is_on_free_list(backend, slab, head_offset, offset))
        {
            return Err(SlabError::DoubleFree);
        }
        backend.write_word(free_ptr_addr, encode_free_ptr(head_offset, free_ptr_addr));
        backend.write_word(slab + HDR_COUNTERS, pack_counters(offset, nr_inuse - 1));
        self.nr_active_objects -= 1;
        if nr_inuse == 1 && self.lists[EMPTY].nr_slabs >= MAX_EMPTY_SLABS {
            self.unlink(backend, slab, self.list_for(nr_inuse));
            self.release(backend, slab);
        } else {
            self.relist(backend, slab, nr_inuse, nr_inuse - 1);
        }
        Ok(())
    }

    /// Checks, without changing anything, that `addr` could be an object of this
    /// cache: its slab carries this cache's magic and it starts an object. (Not
    /// whether it is free: for a per-CPU cache in front of this one, which keeps
    /// freed objects before they reach [`free`](Self::free).)
    ///
    /// # Errors
    /// [`SlabError::NotInCache`] or [`SlabError::Misaligned`].
    #[inline]
    pub fn check_object<B: SlabBackend>(&self, backend: &B, addr: u64) -> Result<(), SlabError> {
        let slab = align_down(addr, self.slab_size_bytes);
        if backend.read_word(slab + HDR_MAGIC) != self.magic {
            return Err(SlabError::NotInCache);
        }
        if !self.is_object_start(addr - slab) {
            return Err(SlabError::Misaligned);
        }
        Ok(())
    }

    /// Gives every empty slab back to `backend` and returns the number of pages freed.
    pub fn shrink<B: SlabBackend>(&mut self, backend: &mut B) -> u64 {
        let mut nr_pages = 0;
        while self.lists[EMPTY].head != NIL {
            let slab = self.lists[EMPTY].head;
            self.unlink(backend, slab, EMPTY);
            self.release(backend, slab);
            nr_pages += self.order.nr_frames();
        }
        nr_pages
    }

    /// Takes a block from `backend`, runs the constructor on every object, threads them
    /// on the free list in address order, writes the header and puts the slab on the
    /// empty list.
    #[cold]
    fn grow<B: SlabBackend>(&mut self, backend: &mut B) -> Result<u64, SlabError> {
        let slab = backend.alloc_pages(self.order).ok_or(SlabError::OutOfMemory)?;
        assert!(
            slab != NIL && slab % self.slab_size_bytes == 0,
            "SlabCache::grow: backend returned a misaligned block"
        );
        let end_offset = self.first_object_offset + self.object_area_bytes;
        let mut offset = self.first_object_offset;
        while offset < end_offset {
            if let Some(ctor_fn) = self.ctor_fn {
                ctor_fn(backend, slab + offset);
            }
            let next_offset = if offset + self.stride_bytes < end_offset {
                offset + self.stride_bytes
            } else {
                NIL
            };
            let free_ptr_addr = slab + offset + self.free_ptr_offset;
            backend.write_word(free_ptr_addr, encode_free_ptr(next_offset, free_ptr_addr));
            offset += self.stride_bytes;
        }
        backend.write_word(slab + HDR_MAGIC, self.magic);
        backend.write_word(slab + HDR_COUNTERS, pack_counters(self.first_object_offset, 0));
        self.push_front(backend, slab, EMPTY);
        Ok(slab)
    }

    /// Clears the magic of an unlinked slab (so stale frees into it fail) and gives its
    /// pages back.
    fn release<B: SlabBackend>(&mut self, backend: &mut B, slab: u64) {
        backend.write_word(slab + HDR_MAGIC, 0);
        backend.free_pages(slab, self.order);
    }

    /// Returns the list a slab with `nr_inuse` objects in use belongs on.
    #[inline]
    fn list_for(&self, nr_inuse: u64) -> usize {
        match nr_inuse {
            0 => EMPTY,
            n if n == self.nr_objects_per_slab => FULL,
            _ => PARTIAL,
        }
    }

    /// Moves `slab` to the list for `new_inuse` if that differs from the one for `old_inuse`.
    #[inline]
    fn relist<B: SlabBackend>(
        &mut self,
        backend: &mut B,
        slab: u64,
        old_inuse: u64,
        new_inuse: u64,
    ) {
        let (from, to) = (self.list_for(old_inuse), self.list_for(new_inuse));
        if from != to {
            self.unlink(backend, slab, from);
            self.push_front(backend, slab, to);
        }
    }

    /// Removes `slab` from list `kind`.
    fn unlink<B: SlabBackend>(&mut self, backend: &mut B, slab: u64, kind: usize) {
        let next = backend.read_word(slab + HDR_NEXT);
        let prev = backend.read_word(slab + HDR_PREV);
        if prev == NIL {
            self.lists[kind].head = next;
        } else {
            backend.write_word(prev + HDR_NEXT, next);
        }
        if next != NIL {
            backend.write_word(next + HDR_PREV, prev);
        }
        self.lists[kind].nr_slabs -= 1;
    }

    /// Puts `slab` at the head of list `kind`, where alloc looks first.
    fn push_front<B: SlabBackend>(&mut self, backend: &mut B, slab: u64, kind: usize) {
        let head = self.lists[kind].head;
        backend.write_word(slab + HDR_NEXT, head);
        backend.write_word(slab + HDR_PREV, NIL);
        if head != NIL {
            backend.write_word(head + HDR_PREV, slab);
        }
        self.lists[kind].head = slab;
        self.lists[kind].nr_slabs += 1;
    }

    /// Returns true if `offset` (from a slab's base) is the first byte of an object.
    ///
    /// Free runs this on every call, and a 64-bit `%` costs tens of cycles, so the
    /// multiple-of-the-stride test is Lemire, Kaser and Kurz's ("Faster remainder by direct
    /// computation", 2019): for `n, d < 2^32` and `c = ceil(2^64 / d)`, `d` divides `n`
    /// exactly when `n * c mod 2^64 < c`. Offsets in a slab are far below `2^32`.
    #[inline]
    fn is_object_start(&self, offset: u64) -> bool {
        let offset_in_area = offset.wrapping_sub(self.first_object_offset);
        offset_in_area < self.object_area_bytes
            && offset_in_area.wrapping_mul(self.stride_reciprocal) < self.stride_reciprocal
    }

    /// Returns true if the object at `offset` is on `slab`'s free list starting at `head_offset`.
    fn is_on_free_list<B: SlabBackend>(
        &self,
        backend: &B,
        slab: u64,
        head_offset: u64,
        offset: u64,
    ) -> bool {
        let mut is_found = false;
        self.walk_free_list(backend, slab, head_offset, |object| {
            is_found |= object == slab + offset
        });
        is_found
    }

    /// Calls `visit_fn` on the address of each object on `slab`'s free list starting at
    /// `head_offset`, and returns how many there were.
    ///
    /// # Panics
    /// If an entry is not an object, or the list is longer than the slab holds (a
    /// cycle): the free list is corrupted.
    fn walk_free_list<B: SlabBackend>(
        &self,
        backend: &B,
        slab: u64,
        head_offset: u64,
        mut visit_fn: impl FnMut(u64),
    ) -> u64 {
        let (mut offset, mut nr_free) = (head_offset, 0);
        while offset != NIL {
            nr_free += 1;
            self.ensure(self.is_object_start(offset), "free list entry is not an object");
            self.ensure(nr_free <= self.nr_objects_per_slab, "free list has a cycle");
            visit_fn(slab + offset);
            let free_ptr_addr = slab + offset + self.free_ptr_offset;
            offset = decode_free_ptr(backend.read_word(free_ptr_addr), free_ptr_addr);
        }
        nr_free
    }

    /// Panics with `"SlabCache <name>: <what>"` unless `is_ok`: a broken invariant.
    #[track_caller]
    fn ensure(&self, is_ok: bool, what: &str) {
        assert!(is_ok, "SlabCache {}: {what}", self.name);
    }

    /// Checks the cache's structure and panics with `"SlabCache <name>: ..."` if broken.
    ///
    /// Checks: every slab on each list is aligned, carries this cache's magic, has a
    /// correct back link and an `nr_inuse` that belongs on that list; each list's length
    /// matches its count; each free list holds only objects, ends, and has exactly
    /// `nr_objects_per_slab - nr_inuse` entries; the `nr_inuse` sum is `nr_active_objects`;
    /// at most [`MAX_EMPTY_SLABS`] slabs are empty. No object can be on two free lists:
    /// free pointers are offsets inside their own slab, a slab sits on one list once (a
    /// repeat would be a cycle, longer than the count), and a repeat inside one free list
    /// would be a cycle, longer than the slab.
    pub fn check_invariants<B: SlabBackend>(&self, backend: &B) {
        let mut nr_inuse_total = 0;
        for (kind, list) in self.lists.iter().enumerate() {
            let (mut slab, mut prev, mut nr_slabs) = (list.head, NIL, 0);
            while slab != NIL {
                nr_slabs += 1;
                self.ensure(nr_slabs <= list.nr_slabs, "slab list longer than its count");
                self.ensure(slab % self.slab_size_bytes == 0, "slab misaligned");
                self.ensure(backend.read_word(slab + HDR_MAGIC) == self.magic, "slab magic");
                self.ensure(backend.read_word(slab + HDR_PREV) == prev, "slab back link");
                let (head_offset, nr_inuse) =
                    unpack_counters(backend.read_word(slab + HDR_COUNTERS));
                self.ensure(self.list_for(nr_inuse) == kind, "slab on the wrong list");
                let nr_free = self.walk_free_list(backend, slab, head_offset, |_| ());
                self.ensure(
                    nr_free + nr_inuse == self.nr_objects_per_slab,
                    "free + in use != capacity",
                );
                nr_inuse_total += nr_inuse;
                (prev, slab) = (slab, backend.read_word(slab + HDR_NEXT));
            }
            self.ensure(nr_slabs == list.nr_slabs, "slab list shorter than its count");
        }
        self.ensure(nr_inuse_total == self.nr_active_objects, "nr_active_objects");
        self.ensure(self.lists[EMPTY].nr_slabs <= MAX_EMPTY_SLABS, "too many empty slabs");
    }
}

/// A cache's statistics, like one line of Linux's `/proc/slabinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlabInfo {
    /// The cache's name.
    pub name: &'static str,
    /// The object size the cache was created with.
    pub object_size_bytes: usize,
    /// The space each object takes in a slab (size, free pointer, alignment padding).
    pub stride_bytes: usize,
    /// Objects allocated now.
    pub nr_active_objects: u64,
    /// Object slots in all the cache's slabs.
    pub nr_total_objects: u64,
    /// Object slots per slab.
    pub nr_objects_per_slab: u64,
    /// Pages per slab (`2^order`).
    pub nr_pages_per_slab: u64,
    /// Slabs with every object in use.
    pub nr_full_slabs: u64,
    /// Slabs with some objects in use.
    pub nr_partial_slabs: u64,
    /// Slabs with no object in use, kept for the next growth.
    pub nr_empty_slabs: u64,
}

impl SlabInfo {
    /// The column titles matching the `Display` output.
    pub const HEADER: &'static str =
        "# name          active    total objsize stride per-slab pages : slabs full partial empty";

    /// Returns the number of slabs on all three lists.
    pub fn nr_slabs(&self) -> u64 {
        self.nr_full_slabs + self.nr_partial_slabs + self.nr_empty_slabs
    }

    /// Returns the number of pages in all the cache's slabs.
    pub fn nr_pages(&self) -> u64 {
        self.nr_slabs() * self.nr_pages_per_slab
    }
}

impl fmt::Display for SlabInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<14} {:>7} {:>8} {:>7} {:>6} {:>8} {:>5} : {:>5} {:>4} {:>7} {:>5}",
            self.name,
            self.nr_active_objects,
            self.nr_total_objects,
            self.object_size_bytes,
            self.stride_bytes,
            self.nr_objects_per_slab,
            self.nr_pages_per_slab,
            self.nr_slabs(),
            self.nr_full_slabs,
            self.nr_partial_slabs,
            self.nr_empty_slabs
        )
    }
}

#[cfg(test)]
pub(crate) mod tests;
