//! The slab heap behind `GlobalAlloc`: Box, Vec and BTreeMap work, memory is reused,
//! typed caches work, failure is an error.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use kernel::mm::frame;
use kernel::mm::heap::{self, KmemCache};
use kernel::mm::slabmag;

kernel::test_kernel!();

/// Returns the number of live kmalloc objects over all classes.
fn nr_live_objects() -> u64 {
    heap::kmalloc_slabinfo().iter().map(|s| s.nr_active_objects).sum()
}

#[test_case]
fn box_vec_and_btreemap_work() {
    let b = Box::new(41u64);
    assert_eq!(*b + 1, 42);
    let v: Vec<u32> = (0..1000).collect();
    assert_eq!(v.iter().sum::<u32>(), 499_500);
    let mut m = BTreeMap::new();
    for i in 0..300u32 {
        m.insert(i, i * 3);
    }
    assert_eq!(m[&100], 300);
}

#[test_case]
fn alignment_up_to_4096_is_honoured() {
    #[repr(align(4096))]
    struct Page([u8; 4096]);
    #[repr(align(512))]
    struct Odd([u8; 100]);
    let p = Box::new(Page([7; 4096]));
    let o = Box::new(Odd([1; 100]));
    assert_eq!(&*p as *const Page as usize % 4096, 0);
    assert_eq!(&*o as *const Odd as usize % 512, 0);
    assert_eq!(p.0[4095], 7);
    assert_eq!(o.0[99], 1);
}

#[test_case]
fn zero_sized_and_large_allocations_work() {
    let z: Box<()> = Box::new(());
    let empty: Vec<u64> = Vec::with_capacity(0);
    drop((z, empty));
    let (nr_large, _) = heap::large_alloc_stats();
    let big = alloc::vec![0xabu8; 3 << 20]; // 3 MiB: a 4 MiB buddy block
    assert_eq!(heap::large_alloc_stats().0, nr_large + 1);
    assert!(big.iter().all(|&b| b == 0xab));
    drop(big);
    assert_eq!(heap::large_alloc_stats().0, nr_large);
}

#[test_case]
fn stress_of_short_and_long_lived_objects_reuses_memory() {
    heap::shrink(); // empties the per-CPU magazines too: their objects count as live
    let objects_before = nr_live_objects();
    let free_before = frame::nr_free_frames_exact();
    let mut long_lived: Vec<Box<[u64; 8]>> = Vec::new();
    let mut grow: Vec<u64> = Vec::new();
    let mut seed = 0x1234_5678u64;
    for round in 0..20_000u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let short = Box::new([round; 8]); // short-lived: freed at the end of the iteration
        let size = 1 + (seed % 900) as usize;
        let scratch: Vec<u8> = alloc::vec![round as u8; size];
        assert_eq!(scratch[size - 1], round as u8);
        if seed % 7 == 0 {
            long_lived.push(short);
        }
        if long_lived.len() > 500 {
            let victim = (seed as usize) % long_lived.len();
            let gone = long_lived.swap_remove(victim);
            assert!(gone.iter().all(|&w| w == gone[0]), "heap object corrupted");
        }
        grow.push(round);
    }
    assert_eq!(grow.len(), 20_000);
    assert!(long_lived.iter().all(|b| b.iter().all(|&w| w == b[0])));
    drop((long_lived, grow));
    heap::check_invariants();
    slabmag::drain_all();
    assert_eq!(nr_live_objects(), objects_before, "objects leaked");
    heap::shrink();
    assert_eq!(frame::nr_free_frames_exact(), free_before, "frames leaked by the heap");
}

#[test_case]
fn allocation_failure_is_an_error() {
    let mut v: Vec<u8> = Vec::new();
    assert!(v.try_reserve(1 << 40).is_err(), "a 1 TiB reservation succeeded");
    // Larger than the biggest buddy block (4 MiB): refused, not a panic.
    let mut w: Vec<u8> = Vec::new();
    assert!(w.try_reserve_exact(8 << 20).is_err());
}

struct Task {
    id: u64,
    name: [u8; 24],
    stack_top: u64,
}

static TASK_CACHE: KmemCache<Task> = KmemCache::new("task");

#[test_case]
fn typed_cache_hands_out_and_takes_back_objects() {
    let before = TASK_CACHE.info().nr_active_objects;
    let tasks: Vec<_> = (0..100)
        .map(|i| TASK_CACHE.alloc(Task { id: i, name: [b'a'; 24], stack_top: i * 4096 }).unwrap())
        .collect();
    assert_eq!(TASK_CACHE.info().nr_active_objects, before + 100);
    assert!(tasks.iter().enumerate().all(|(i, t)| t.id == i as u64 && t.stack_top == t.id * 4096 && t.name[23] == b'a'));
    drop(tasks);
    assert_eq!(TASK_CACHE.info().nr_active_objects, before);
    TASK_CACHE.shrink();
    assert_eq!(TASK_CACHE.info().nr_total_objects, 0);
}

/// Returns the address of a value.
fn addr_of<T>(value: &T) -> u64 {
    value as *const T as u64
}

#[test_case]
fn a_freed_object_is_the_next_one_this_cpu_allocates() {
    let _magazines = slabmag::turned_on(); // on even under slabmag=off
    let before = slabmag::stats(0);
    let a = Box::new([7u64; 8]); // kmalloc-64
    let addr = addr_of(&*a);
    drop(a);
    assert!(slabmag::contains(addr), "the object went to this CPU's magazine");
    let b = Box::new([9u64; 8]);
    assert_eq!(addr_of(&*b), addr, "last freed, first allocated (cache-warm)");
    assert!(b.iter().all(|&w| w == 9));
    let after = slabmag::stats(0);
    assert!(after.frees > before.frees && after.alloc_hits > before.alloc_hits, "{before:?} -> {after:?}");
}

#[test_case]
fn a_full_magazine_flushes_and_a_shrink_empties_them_all() {
    let _magazines = slabmag::turned_on(); // on even under slabmag=off
    let before = slabmag::stats(0);
    let boxes: Vec<Box<[u64; 16]>> = (0..300).map(|i| Box::new([i; 16])).collect(); // kmalloc-128
    assert!(boxes.iter().enumerate().all(|(i, b)| b[15] == i as u64));
    drop(boxes);
    let after = slabmag::stats(0);
    assert!(after.refills > before.refills, "300 allocations never refilled the magazine");
    assert!(after.flushes > before.flushes, "300 frees never flushed the magazine");
    assert!(slabmag::nr_cached() > 0, "the last frees stay in the magazine");
    heap::shrink();
    assert_eq!(slabmag::nr_cached(), 0, "a shrink leaves objects in a magazine");
    heap::check_invariants();
    kernel::mm::check::check_consistency().expect("audit after the magazines drained");
}

#[test_case]
fn with_the_magazines_off_objects_go_straight_to_the_slabs() {
    slabmag::set_enabled(false);
    assert_eq!(slabmag::nr_cached(), 0, "turning them off empties them");
    // (Not counted by the slabs' live objects: kernel threads allocate and free
    // meanwhile, and with the magazines off their frees show there at once.)
    let before = slabmag::stats(0);
    let a = Box::new([1u64; 8]);
    let addr = addr_of(&*a);
    drop(a);
    assert!(!slabmag::contains(addr), "the object went to a magazine while they are off");
    assert_eq!(slabmag::stats(0), before, "the magazines were used while off");
    slabmag::set_enabled(true);
    let b = Box::new([2u64; 8]);
    let addr = addr_of(&*b);
    drop(b);
    assert!(slabmag::contains(addr), "on again, a free goes to the magazine");
    slabmag::set_enabled(false); // back to the default
}
