//! Per-CPU slab magazines in front of kmalloc's caches: most small allocations and
//! frees touch only the running CPU's magazine for that size class, under that
//! CPU's own lock, and never the heap's one lock (`heap::KMALLOC`).
//!
//! ```text
//!  CPU 0: [kmalloc-8: o o o] [kmalloc-16: o] ... [kmalloc-4096: ]   lock MAGS[0]
//!  CPU 1: [kmalloc-8: o    ] [kmalloc-16:  ] ... [kmalloc-4096: o]  lock MAGS[1]
//!              |  ^  `batch` objects at a time, under KMALLOC
//!              v  |
//!        the kmalloc slab caches (KMALLOC)
//! ```
//! The pure part (the stack, the sizes: about 4 KiB of objects a magazine, half
//! moved at a time) is `mm_core::magazine`.
//!
//! - **Remote frees.** An object allocated on CPU 0 and freed on CPU 1 goes into
//!   CPU 1's magazine: a magazine is a set of free objects of its class, and a flush
//!   sends each to its own slab, found from the address by the slab code.
//! - **Checks.** A free is checked before it is kept: the address must be an object
//!   of that class's slabs (`SlabCache::check_object`: the slab's magic, the object
//!   alignment) and not already in this CPU's magazine (a double free: the object
//!   freed just before in every build, any object of the magazine in debug builds,
//!   where a linear search per free is affordable); a double free
//!   that reaches the slab later (the object was in another CPU's magazine, or freed
//!   twice with a flush between) is caught at the flush, with its address.
//! - **Memory.** Objects in magazines are "in use" in their slabs (`/proc/slabinfo`
//!   counts them as active, as Linux counts its per-CPU slabs' objects), and a slab
//!   with one object in a magazine cannot be given back. So `heap::shrink` (memory
//!   short: reclaim before the OOM killer, the audit) first empties every magazine
//!   ([`drain_all`]), and a heap allocation the buddy allocator cannot serve drains
//!   them and shrinks before it takes the emergency pool.
//! - **Counters** per CPU in `/proc/slabmaginfo`; the audit (`mm::check`) checks the
//!   counts and that no object sits in two magazines, then drains them.
//! - **On by default** since session 7: `slabmag=off` on the command line or
//!   [`set_enabled`] (the bench's A/B) turns them off, and objects go straight to
//!   the slab caches; [`turned_on`] / [`turned_off`] switch them for a test and
//!   back. (Session 6 left them off for `tests/pressure.rs`, whose setup filled a
//!   class "until its slabs had no free object": with magazines that never
//!   happens, slabinfo counting their objects as active; it fills with them off.)
//!
//! Locks: `MAGS[cpu]` (`SlabMag`), just above `heap::KMALLOC` (`Heap`), which the
//! refill and the flush take inside it; only a drain takes another CPU's.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm_core::kmalloc::{NR_SIZE_CLASSES, SIZE_CLASSES};
use mm_core::magazine::{Magazine, MagazineSizes};
use mm_core::slab::SlabError;

use crate::arch::smp::{MAX_CPUS, cpu_id};
use crate::sync::{IrqMutex, LockRank};

/// One CPU's magazines, one per kmalloc size class.
struct CpuMagazines {
    mags: [Magazine; NR_SIZE_CLASSES],
}

static MAGS: [IrqMutex<CpuMagazines>; MAX_CPUS] = [const {
    IrqMutex::new_ranked(LockRank::SlabMag, CpuMagazines { mags: [const { Magazine::new() }; NR_SIZE_CLASSES] })
}; MAX_CPUS];

/// The sizes of each class's magazines.
fn sizes(class: usize) -> MagazineSizes {
    MagazineSizes::for_object_size(SIZE_CLASSES[class])
}

/// What one CPU's magazines did.
struct CpuCounters {
    /// Allocations served from a magazine.
    alloc_hits: AtomicU64,
    /// Refills from the slab caches.
    refills: AtomicU64,
    /// Frees kept in a magazine.
    frees: AtomicU64,
    /// Flushes of a full magazine to the slab caches.
    flushes: AtomicU64,
    /// Objects given back by [`drain_all`].
    drained: AtomicU64,
    /// Objects in the magazines now.
    nr_cached: AtomicU64,
}

static COUNTERS: [CpuCounters; MAX_CPUS] = [const {
    CpuCounters {
        alloc_hits: AtomicU64::new(0),
        refills: AtomicU64::new(0),
        frees: AtomicU64::new(0),
        flushes: AtomicU64::new(0),
        drained: AtomicU64::new(0),
        nr_cached: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// Whether kmalloc goes through the magazines: on unless `slabmag=off`.
static IS_ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns the magazines on until the returned guard is dropped (then back to what
/// they were; off also drains them): for tests and measurements that need them even
/// under `slabmag=off`.
pub fn turned_on() -> super::Switched {
    super::Switched::new(set_enabled, is_enabled, true)
}

/// Turns the magazines off (drained) until the returned guard is dropped, then back
/// to what they were: for a test's setup that must see the slabs alone
/// (`tests/pressure.rs` fills a class's slabs to the last object).
pub fn turned_off() -> super::Switched {
    super::Switched::new(set_enabled, is_enabled, false)
}

/// Turns the magazines on or off; off also empties them into the slab caches.
pub fn set_enabled(is_on: bool) {
    IS_ENABLED.store(is_on, Ordering::Relaxed);
    if !is_on {
        drain_all();
    }
}

/// Returns true if kmalloc goes through the per-CPU magazines.
#[inline]
pub fn is_enabled() -> bool {
    IS_ENABLED.load(Ordering::Relaxed)
}

/// Allocates an object of size class `class` from the running CPU's magazine,
/// refilling it with `refill_fn(n, push)` (which allocates up to `n` objects from the
/// class's slab cache under the heap's lock and pushes each) when it is empty.
/// `None` if the magazine stays empty (the slab cache could not grow).
#[inline]
pub(super) fn alloc(class: usize, refill_fn: impl FnOnce(usize, &mut dyn FnMut(u64))) -> Option<u64> {
    let cpu = cpu_id();
    let mut mags = MAGS[cpu].lock();
    let mag = &mut mags.mags[class];
    if let Some(addr) = mag.pop() {
        COUNTERS[cpu].alloc_hits.fetch_add(1, Ordering::Relaxed);
        COUNTERS[cpu].nr_cached.fetch_sub(1, Ordering::Relaxed);
        return Some(addr);
    }
    let sizes = sizes(class);
    let mut nr = 0;
    refill_fn(sizes.batch, &mut |addr| {
        let is_pushed = mag.push(addr, sizes);
        debug_assert!(is_pushed, "slabmag: a refill overfilled an empty magazine");
        nr += 1;
    });
    COUNTERS[cpu].refills.fetch_add(1, Ordering::Relaxed);
    let addr = mag.pop()?;
    COUNTERS[cpu].alloc_hits.fetch_add(1, Ordering::Relaxed);
    COUNTERS[cpu].nr_cached.fetch_add(nr - 1, Ordering::Relaxed);
    Some(addr)
}

/// Keeps the object at `addr` of class `class`, which `check_fn` has found to be an
/// object of that class's slabs, in the running CPU's magazine; a full magazine
/// first gives `batch` of its oldest objects back with `flush_fn` (which frees them to
/// the slab cache under the heap's lock). A double free within this CPU's magazine
/// is refused: the object freed just before always, any object of the magazine in
/// debug builds.
pub(super) fn free(
    class: usize,
    addr: u64,
    flush_fn: impl FnOnce(&mut dyn FnMut(&mut dyn FnMut(u64))),
) -> Result<(), SlabError> {
    let cpu = cpu_id();
    let mut mags = MAGS[cpu].lock();
    let mag = &mut mags.mags[class];
    // The object freed twice in a row is caught in every build (one compare); the
    // search of the whole magazine, up to its capacity in words on every free,
    // only in debug builds, where the tests run (release: 1.4 M of `swapbench`'s
    // 339 M instructions went to it).
    if mag.is_newest(addr) || (cfg!(debug_assertions) && mag.contains(addr)) {
        return Err(SlabError::DoubleFree);
    }
    let sizes = sizes(class);
    if !mag.push(addr, sizes) {
        flush_fn(&mut |free_fn| mag.flush_oldest(sizes.batch, &mut *free_fn));
        COUNTERS[cpu].flushes.fetch_add(1, Ordering::Relaxed);
        COUNTERS[cpu].nr_cached.fetch_sub(sizes.batch as u64, Ordering::Relaxed);
        let is_pushed = mag.push(addr, sizes);
        debug_assert!(is_pushed, "slabmag: no room after a flush");
    }
    COUNTERS[cpu].frees.fetch_add(1, Ordering::Relaxed);
    COUNTERS[cpu].nr_cached.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// What [`drain_all_with`] hands its caller: a function that calls the function it
/// is given with each drained object's class and address.
pub(super) type Drainer<'a> = dyn FnMut(&mut dyn FnMut(usize, u64)) + 'a;

/// Empties every CPU's magazines with `free_fn(class, addr)` (which frees the object
/// to its slab cache under the heap's lock, taken once per CPU by the caller's
/// `with_fn`); returns the number of objects given back. Takes each CPU's lock in turn.
pub(super) fn drain_all_with(with_fn: &dyn Fn(&mut Drainer)) -> u64 {
    let mut nr_drained = 0;
    for (cpu, mags) in MAGS.iter().enumerate() {
        if COUNTERS[cpu].nr_cached.load(Ordering::Relaxed) == 0 {
            continue;
        }
        let mut mags = mags.lock();
        let nr: u64 = mags.mags.iter().map(|m| m.len() as u64).sum();
        with_fn(&mut |free_fn| {
            for (class, mag) in mags.mags.iter_mut().enumerate() {
                mag.flush_oldest(mag.len(), |a| free_fn(class, a));
            }
        });
        COUNTERS[cpu].drained.fetch_add(nr, Ordering::Relaxed);
        COUNTERS[cpu].nr_cached.fetch_sub(nr, Ordering::Relaxed);
        nr_drained += nr;
    }
    nr_drained
}

/// Empties every CPU's magazines into the slab caches; returns the objects given back.
pub fn drain_all() -> u64 {
    super::heap::drain_magazines()
}

/// Returns the objects in every CPU's magazines now (read without the locks).
pub fn nr_cached() -> u64 {
    COUNTERS.iter().map(|c| c.nr_cached.load(Ordering::Relaxed)).sum()
}

/// Checks that each CPU's count matches its magazines and that no object is in two
/// magazines (for `mm::check`); returns the objects cached, or what is wrong. Each
/// CPU's objects are copied out under its lock, and compared after: the set of
/// objects seen is on the heap, which must not be used under a magazine lock.
pub fn check() -> Result<u64, alloc::string::String> {
    let mut seen = alloc::collections::BTreeSet::new();
    for (cpu, mags) in MAGS.iter().enumerate() {
        let mut copy = [[0u64; mm_core::magazine::CAPACITY]; NR_SIZE_CLASSES];
        let mut lens = [0usize; NR_SIZE_CLASSES];
        let counted = {
            let mags = mags.lock();
            for (class, mag) in mags.mags.iter().enumerate() {
                lens[class] = mag.len();
                copy[class][..mag.len()].copy_from_slice(mag.objects());
            }
            COUNTERS[cpu].nr_cached.load(Ordering::Relaxed)
        };
        let nr: u64 = lens.iter().map(|&l| l as u64).sum();
        if nr != counted {
            return Err(alloc::format!("slabmag: cpu {cpu}'s magazines hold {nr} objects, its counter says {counted}"));
        }
        for class in 0..NR_SIZE_CLASSES {
            if let Some(&addr) = copy[class][..lens[class]].iter().find(|&&a| !seen.insert(a)) {
                return Err(alloc::format!("slabmag: object {addr:#x} of kmalloc-{} is in two magazines", SIZE_CLASSES[class]));
            }
        }
    }
    Ok(seen.len() as u64)
}

/// One CPU's counters, as `/proc/slabmaginfo` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    /// Objects in the magazines now.
    pub nr_cached: u64,
    /// Allocations served from a magazine.
    pub alloc_hits: u64,
    /// Refills from the slab caches.
    pub refills: u64,
    /// Frees kept in a magazine.
    pub frees: u64,
    /// Flushes of a full magazine.
    pub flushes: u64,
    /// Objects given back by a drain of every magazine.
    pub drained: u64,
}

/// Returns the counters of CPU `cpu`.
pub fn stats(cpu: usize) -> CpuStats {
    let c = &COUNTERS[cpu];
    CpuStats {
        nr_cached: c.nr_cached.load(Ordering::Relaxed),
        alloc_hits: c.alloc_hits.load(Ordering::Relaxed),
        refills: c.refills.load(Ordering::Relaxed),
        frees: c.frees.load(Ordering::Relaxed),
        flushes: c.flushes.load(Ordering::Relaxed),
        drained: c.drained.load(Ordering::Relaxed),
    }
}

/// Returns true if the object at `addr` is in some CPU's magazine (for tests).
pub fn contains(addr: u64) -> bool {
    MAGS.iter().any(|m| m.lock().mags.iter().any(|mag| mag.contains(addr)))
}
