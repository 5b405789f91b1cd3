use super::*;
use crate::xorshift::XorShift;
use alloc::vec;
use alloc::vec::Vec;
use std::collections::BTreeSet;

/// The state most tests allocate with.
const K: FrameState = FrameState::Kernel;

fn frame(pfn: u64) -> Frame {
    Frame::from_pfn(pfn)
}

/// Returns the number of free blocks of each order.
fn counts(buddy: &BuddyAllocator<'_>) -> [u64; NR_ORDERS] {
    buddy.buddyinfo().nr_free_blocks
}

#[test]
fn alloc_splits_a_large_block_into_buddies() {
    let mut descs = vec![FrameDesc::new(); 1024];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    buddy.add_free_range(frame(0), 1024).unwrap();
    assert_eq!(counts(&buddy), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(buddy.alloc(Order(0), K), Ok(frame(0)));
    // The upper halves 512, 256, ..., 1 were left on the lists, one per order.
    assert_eq!(counts(&buddy), [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]);
    assert_eq!(buddy.alloc(Order(3), K), Ok(frame(8)));
    assert!(buddy.desc(frame(8)).has_flags(FrameFlags::ALLOC_HEAD));
    assert_eq!(buddy.desc(frame(8)).refcount(), 1);
    assert!((8..16).all(|pfn| buddy.desc(frame(pfn)).state() == K));
    assert_eq!(buddy.desc(frame(9)).refcount(), 0);
    buddy.check_invariants().unwrap();
}

#[test]
fn free_merges_buddies_back_into_one_block() {
    let mut descs = vec![FrameDesc::new(); 1024];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    buddy.add_free_range(frame(0), 1024).unwrap();
    let blocks: Vec<_> = (0..4).map(|_| buddy.alloc(Order(2), K).unwrap()).collect();
    for block in blocks.into_iter().rev() {
        buddy.free(block, Order(2)).unwrap();
        buddy.check_invariants().unwrap();
    }
    assert_eq!(counts(&buddy), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(buddy.nr_free_frames(), 1024);
}

#[test]
fn buddy_is_found_by_xor_of_the_order_bit() {
    let mut descs = vec![FrameDesc::new(); 4];
    let mut buddy = BuddyAllocator::new(&mut descs, 0x100);
    buddy.add_free_range(frame(0x100), 4).unwrap();
    for pfn in 0x100..0x104 {
        assert_eq!(buddy.alloc(Order(0), K), Ok(frame(pfn)));
    }
    // 0x101 ^ 1 = 0x100 and 0x102 ^ 1 = 0x103: both buddies allocated, no merge.
    buddy.free(frame(0x101), Order(0)).unwrap();
    buddy.free(frame(0x102), Order(0)).unwrap();
    assert_eq!(&counts(&buddy)[..3], &[2, 0, 0]);
    // 0x100 merges with 0x101; the order-1 buddy 0x100 ^ 2 = 0x102 is only half free.
    buddy.free(frame(0x100), Order(0)).unwrap();
    assert_eq!(&counts(&buddy)[..3], &[1, 1, 0]);
    // 0x103 merges with 0x102, then 0x102 with 0x100 at order 1.
    buddy.free(frame(0x103), Order(0)).unwrap();
    assert_eq!(&counts(&buddy)[..3], &[0, 0, 1]);
    assert!(buddy.desc(frame(0x100)).has_flags(FrameFlags::BUDDY_HEAD));
    buddy.check_invariants().unwrap();
}

#[test]
fn freeing_a_frame_still_in_use_is_reported_and_changes_nothing() {
    // Issue #10: the buddy must refuse a frame that is still mapped, still
    // referenced by someone else, locked for I/O or in the swap cache.
    use crate::addr::{Page, VirtAddr};
    use crate::fork_family::{FamilyId, FamilyPage};
    let mut descs = vec![FrameDesc::new(); 16];
    let mut buddy = BuddyAllocator::new(&mut descs, 0x40);
    buddy.add_free_range(frame(0x40), 16).unwrap();
    let block = buddy.alloc(Order(1), FrameState::User).unwrap();
    let before = buddy.buddyinfo();
    let tail = frame(block.pfn() + 1);
    let at = FamilyPage { family: FamilyId::new(1).unwrap(), page: Page::containing_address(VirtAddr::new(0x1000)) };

    buddy.desc_mut(tail).add_mapping(at);
    let err = buddy.free(block, Order(1)).unwrap_err();
    assert!(matches!(err, FreeError::InUse { frame, map_count: 1, .. } if frame == tail), "{err:?}");
    assert!(alloc::format!("{err}").contains("map count 1"), "{err}");
    buddy.desc_mut(tail).remove_mapping(at);

    buddy.desc_mut(block).get_ref();
    assert!(matches!(buddy.free(block, Order(1)), Err(FreeError::InUse { refcount: 2, .. })));
    buddy.desc_mut(block).put_ref();

    for flag in [FrameFlags::LOCKED, FrameFlags::SWAP_CACHE] {
        buddy.desc_mut(block).insert_flags(flag);
        assert!(matches!(buddy.free(block, Order(1)), Err(FreeError::InUse { .. })), "{flag:?}");
        buddy.desc_mut(block).remove_flags(flag);
    }
    assert_eq!(buddy.buddyinfo(), before, "a refused free changed the lists");
    buddy.check_invariants().unwrap();
    // Owner's reference only (1), or all references dropped (0): freed.
    buddy.free(block, Order(1)).unwrap();
    buddy.check_invariants().unwrap();
}

#[test]
fn double_free_is_reported_and_lists_are_unchanged() {
    let mut descs = vec![FrameDesc::new(); 64];
    let mut buddy = BuddyAllocator::new(&mut descs, 0x40);
    buddy.add_free_range(frame(0x40), 64).unwrap();
    let a = buddy.alloc(Order(0), K).unwrap();
    let b = buddy.alloc(Order(0), K).unwrap();
    buddy.free(a, Order(0)).unwrap();
    let before = buddy.buddyinfo();
    assert_eq!(buddy.free(a, Order(0)), Err(FreeError::AlreadyFree(a)));
    assert_eq!(buddy.buddyinfo(), before);
    buddy.check_invariants().unwrap();
    // After b's free merges a away, a is a tail of a free block: still detected.
    buddy.free(b, Order(0)).unwrap();
    let before = buddy.buddyinfo();
    assert_eq!(buddy.free(a, Order(0)), Err(FreeError::AlreadyFree(a)));
    assert_eq!(buddy.free(b, Order(0)), Err(FreeError::AlreadyFree(b)));
    assert_eq!(buddy.buddyinfo(), before);
    buddy.check_invariants().unwrap();
}

#[test]
fn bad_frees_are_reported_with_the_frame() {
    let mut descs = vec![FrameDesc::new(); 64];
    let mut buddy = BuddyAllocator::new(&mut descs, 0x40);
    buddy.add_free_range(frame(0x40), 32).unwrap(); // 0x60..0x80 stays Reserved
    let block = buddy.alloc(Order(2), K).unwrap();
    let before = buddy.buddyinfo();
    let wrong_order = FreeError::WrongOrder { frame: block, allocated: Order(2) };
    assert_eq!(buddy.free(block, Order(1)), Err(wrong_order));
    assert_eq!(buddy.free(block + 1, Order(0)), Err(FreeError::NotAllocated(block + 1)));
    assert_eq!(buddy.free(frame(0x60), Order(0)), Err(FreeError::NotAllocated(frame(0x60))));
    assert_eq!(buddy.free(frame(0x50), Order(0)), Err(FreeError::AlreadyFree(frame(0x50))));
    assert_eq!(buddy.free(frame(0x3f), Order(0)), Err(FreeError::OutOfRange(frame(0x3f))));
    assert_eq!(buddy.free(frame(0x80), Order(0)), Err(FreeError::OutOfRange(frame(0x80))));
    assert_eq!(buddy.buddyinfo(), before);
    buddy.check_invariants().unwrap();
    buddy.free(block, Order(2)).unwrap();
    assert_eq!(buddy.nr_free_frames(), 32);
}

#[test]
fn out_of_memory_returns_an_error() {
    let mut descs = vec![FrameDesc::new(); 16];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    assert_eq!(buddy.alloc(Order(0), K), Err(AllocError::OutOfMemory));
    buddy.add_free_range(frame(0), 16).unwrap();
    assert_eq!(buddy.alloc(Order(5), K), Err(AllocError::OutOfMemory));
    assert_eq!(buddy.alloc(Order(11), K), Err(AllocError::OrderTooLarge(Order(11))));
    let invalid = AllocError::InvalidState(FrameState::Free);
    assert_eq!(buddy.alloc(Order(0), FrameState::Free), Err(invalid));
    for _ in 0..16 {
        buddy.alloc(Order(0), FrameState::User).unwrap();
    }
    assert_eq!(buddy.alloc(Order(0), K), Err(AllocError::OutOfMemory));
    assert_eq!(buddy.buddyinfo().nr_used_frames, 16);
    buddy.check_invariants().unwrap();
}

#[test]
fn add_free_range_builds_maximal_aligned_blocks() {
    let mut descs = vec![FrameDesc::new(); 4096];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    // 3 | 4..8 | 8..16 | ... | 1024..2048 | 2048..2050 | 2050
    buddy.add_free_range(frame(3), 2048).unwrap();
    assert_eq!(counts(&buddy), [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    buddy.check_invariants().unwrap();
    // Managed frames cannot be added twice; a range past the table is refused whole.
    assert_eq!(buddy.add_free_range(frame(0), 4), Err(FreeError::NotReserved(frame(3))));
    assert_eq!(buddy.add_free_range(frame(4000), 97), Err(FreeError::OutOfRange(frame(4096))));
    // Filling the gaps merges across range boundaries.
    buddy.add_free_range(frame(0), 3).unwrap();
    buddy.add_free_range(frame(2051), 4096 - 2051).unwrap();
    assert_eq!(counts(&buddy), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4]);
    buddy.check_invariants().unwrap();
}

#[test]
fn blocks_are_physically_aligned_with_an_unaligned_base() {
    let base_pfn = 0x1003;
    let mut descs = vec![FrameDesc::new(); 3000];
    let mut buddy = BuddyAllocator::new(&mut descs, base_pfn);
    buddy.add_free_range(frame(base_pfn), 3000).unwrap();
    for order in (0..=MAX_ORDER).rev() {
        if let Ok(block) = buddy.alloc(Order(order), K) {
            assert_eq!(block.pfn() % Order(order).nr_frames(), 0, "order {order}");
        }
    }
    buddy.check_invariants().unwrap();
}

#[test]
fn buddyinfo_display_prints_counts_and_totals() {
    let mut descs = vec![FrameDesc::new(); 1024];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    buddy.add_free_range(frame(0), 1024).unwrap();
    buddy.alloc(Order(9), K).unwrap();
    let text = alloc::format!("{}", buddy.buddyinfo());
    let mut lines = text.lines();
    let counts_line: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&counts_line[..4], &["Node", "0,", "zone", "Normal"]);
    assert_eq!(&counts_line[4..], &["0", "0", "0", "0", "0", "0", "0", "0", "0", "1", "0"]);
    let expected = "frames: 1024 managed (4096 KiB), 512 free (2048 KiB), 512 used (2048 KiB)";
    assert_eq!(lines.next(), Some(expected));
}


/// Picks an order, mostly small ones, like a kernel does.
fn random_order(rng: &mut XorShift) -> Order {
    Order(match rng.below(10) {
        0..=5 => rng.below(3),
        6..=8 => 3 + rng.below(4),
        _ => 7 + rng.below(4),
    } as u8)
}

/// Tries a free that must fail; checks that it fails and changes nothing.
fn expect_rejected(buddy: &mut BuddyAllocator<'_>, frame: Frame, order: Order) {
    let before = buddy.buddyinfo();
    assert!(buddy.free(frame, order).is_err(), "free({frame:?}, {order:?}) accepted");
    assert_eq!(buddy.buddyinfo(), before);
}

#[test]
fn random_alloc_free_matches_reference_model() {
    const BASE_PFN: u64 = 0x8_0005;
    const NR_FRAMES: u64 = 6144;
    // Usable RAM with holes, as (start offset, nr_frames) from BASE_PFN.
    const RANGES: [(u64, u64); 4] = [(0, 1500), (1600, 2600), (4207, 1700), (5910, 234)];
    let is_usable_fn =
        |pfn: u64| RANGES.iter().any(|&(s, n)| (s..s + n).contains(&(pfn - BASE_PFN)));

    let mut descs = vec![FrameDesc::new(); NR_FRAMES as usize];
    let mut buddy = BuddyAllocator::new(&mut descs, BASE_PFN);
    for (start, nr_frames) in RANGES {
        buddy.add_free_range(frame(BASE_PFN + start), nr_frames).unwrap();
    }
    let initial = buddy.buddyinfo();
    buddy.check_invariants().unwrap();

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut live: Vec<(Frame, Order)> = Vec::new();
    let mut model: BTreeSet<u64> = BTreeSet::new(); // every allocated pfn
    let mut nr_oom = 0;
    for step in 0..50_000 {
        let is_alloc = live.is_empty() || rng.below(100) < 52;
        if is_alloc {
            let order = random_order(&mut rng);
            match buddy.alloc(order, FrameState::User) {
                Ok(block) => {
                    assert_eq!(block.pfn() % order.nr_frames(), 0, "unaligned block");
                    for pfn in block.pfn()..block.pfn() + order.nr_frames() {
                        assert!(is_usable_fn(pfn), "step {step}: handed out hole {pfn:#x}");
                        assert!(model.insert(pfn), "step {step}: {pfn:#x} allocated twice");
                    }
                    live.push((block, order));
                }
                Err(AllocError::OutOfMemory) => nr_oom += 1,
                Err(e) => panic!("step {step}: {e:?}"),
            }
        } else {
            let (block, order) = live.swap_remove(rng.below(live.len() as u64) as usize);
            buddy.free(block, order).unwrap();
            for pfn in block.pfn()..block.pfn() + order.nr_frames() {
                assert!(model.remove(&pfn));
            }
            if step % 7 == 0 {
                expect_rejected(&mut buddy, block, order); // double free
            }
        }
        if step % 11 == 0 && !live.is_empty() {
            let (block, order) = live[rng.below(live.len() as u64) as usize];
            expect_rejected(&mut buddy, block, Order((order.0 + 1) % (MAX_ORDER + 1)));
            if order.0 > 0 {
                expect_rejected(&mut buddy, block + order.nr_frames() / 2, Order(0));
            }
            let pfn = BASE_PFN - 3 + rng.below(NR_FRAMES + 6);
            if !model.contains(&pfn) {
                expect_rejected(&mut buddy, frame(pfn), Order(0)); // free, hole or outside
            }
        }
        assert_eq!(buddy.nr_free_frames() + model.len() as u64, initial.nr_free_frames);
        buddy.check_invariants().unwrap_or_else(|e| panic!("step {step}: {e:?}"));
    }
    assert!(nr_oom > 0 && !live.is_empty(), "the test should reach memory pressure");

    while !live.is_empty() {
        let (block, order) = live.swap_remove(rng.below(live.len() as u64) as usize);
        buddy.free(block, order).unwrap();
        buddy.check_invariants().unwrap();
    }
    assert_eq!(buddy.buddyinfo(), initial, "everything merges back into maximal blocks");
}

#[test]
fn split_allocated_turns_a_block_into_frames_freed_one_by_one() {
    let mut descs = vec![FrameDesc::new(); 1024];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    buddy.add_free_range(frame(0), 1024).unwrap();
    let block = buddy.alloc(Order(9), FrameState::User).unwrap();
    assert!(buddy.desc(block).is_compound_head());
    assert!(!buddy.desc(block + 1).is_compound_head());
    assert_eq!(buddy.split_allocated(block + 1, Order(9)), Err(FreeError::NotAllocated(block + 1)));
    assert_eq!(buddy.split_allocated(block, Order(3)), Err(FreeError::WrongOrder { frame: block, allocated: Order(9) }));
    buddy.split_allocated(block, Order(9)).unwrap();
    assert!(!buddy.desc(block).is_compound_head());
    for i in 0..512 {
        let desc = buddy.desc(block + i);
        assert!(desc.has_flags(FrameFlags::ALLOC_HEAD) && desc.order() == 0 && desc.refcount() == 1, "frame {i}");
        assert_eq!(desc.state(), FrameState::User);
    }
    // Freed in any order, the frames merge back into the order-9 block.
    for i in (0..512).rev().step_by(2).chain((0..512).step_by(2)) {
        buddy.free(block + i, Order(0)).unwrap();
    }
    buddy.check_invariants().unwrap();
    assert_eq!(buddy.nr_free_frames(), 1024);
    assert_eq!(counts(&buddy), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn recycle_single_checks_like_free_and_leaves_a_fresh_allocation() {
    let mut descs = vec![FrameDesc::new(); 64];
    let mut buddy = BuddyAllocator::new(&mut descs, 0);
    buddy.add_free_range(frame(0), 64).unwrap();
    let user = buddy.alloc(Order(0), FrameState::User).unwrap();
    buddy.desc_mut(user).get_ref();
    buddy.desc_mut(user).insert_flags(FrameFlags::DIRTY);
    let free_before = buddy.nr_free_frames();
    // Two references: refused, nothing changed.
    assert!(matches!(buddy.recycle_single(user), Err(FreeError::InUse { refcount: 2, .. })));
    assert_eq!(buddy.desc(user).refcount(), 2);
    buddy.desc_mut(user).put_ref();
    buddy.desc_mut(user).put_ref(); // a user frame is freed at refcount 0
    assert_eq!(buddy.recycle_single(user), Ok(FrameState::User));
    let desc = buddy.desc(user);
    assert_eq!((desc.refcount(), desc.map_count(), desc.order()), (1, 0, 0));
    assert_eq!(desc.flags(), FrameFlags::ALLOC_HEAD, "DIRTY is gone: a fresh allocation");
    assert_eq!(buddy.nr_free_frames(), free_before, "still allocated: the per-CPU list holds it");
    buddy.check_invariants().unwrap();
    // Refused like free: a free frame, a block of order > 0, a tail.
    let block = buddy.alloc(Order(1), K).unwrap();
    assert_eq!(buddy.recycle_single(block), Err(FreeError::WrongOrder { frame: block, allocated: Order(1) }));
    assert_eq!(buddy.recycle_single(block + 1), Err(FreeError::NotAllocated(block + 1)));
    assert_eq!(buddy.recycle_single(frame(63)), Err(FreeError::AlreadyFree(frame(63))));
    // The recycled frame frees as any fresh allocation.
    buddy.free(user, Order(0)).unwrap();
    buddy.free(block, Order(1)).unwrap();
    assert_eq!(buddy.nr_free_frames(), 64);
}
