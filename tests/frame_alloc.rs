//! The frame table and buddy allocator on real memory.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec::Vec;

use kernel::mm::frame::{self, AllocError, FrameState, FreeError, MAX_ORDER, OwnedFrames};
use kernel::mm::{Frame, Order, frame_ptr, pcp, zero_pool};

#[path = "common/only_this_cpu.rs"]
mod only_this_cpu;
use only_this_cpu::OnlyThisCpuIdles;

kernel::test_kernel!();

#[test_case]
fn frame_table_costs_at_most_32_bytes_a_frame() {
    let info = frame::table_info();
    assert!(core::mem::size_of::<frame::FrameDesc>() <= 32);
    assert!(info.size_bytes <= info.nr_frames * 32 + 4096);
    assert!(info.overhead_basis_points() < 100, "frame table above 1% of RAM");
    frame::check_invariants().expect("invariants after boot");
}

/// Stops background zeroing and waits until the pool has given every frame back,
/// the one an idle CPU may be zeroing too: with several CPUs an idle one fills the
/// pool from the buddy allocator at any time (`mm::zero_pool`), and an allocation
/// that finds the buddy short drains it, so pictures of the buddy allocator taken
/// meanwhile differ (seen with `--smp 2`: 4060 frames more allocated than free).
fn stop_background_zeroing() {
    zero_pool::set_enabled(false);
    while zero_pool::nr_pooled() > 0 {
        zero_pool::drain();
        core::hint::spin_loop();
    }
}

#[test_case]
fn allocating_every_frame_then_freeing_all_restores_buddyinfo() {
    stop_background_zeroing();
    // Single frames freed land on the per-CPU lists, not the buddy's: empty them
    // first and last, so both pictures are of the buddy allocator alone.
    pcp::drain_all();
    let before = frame::buddyinfo();
    // Take every free frame, largest blocks first, keeping the list in a buddy block
    // of its own (a heap Vec would itself need frames while we drain them).
    let list = OwnedFrames::new_zeroed(Order(8)).expect("no room for the frame list");
    let slots = list.as_ptr() as *mut (u64, u8);
    let capacity = list.size_bytes() as usize / core::mem::size_of::<(u64, u8)>();
    let mut nr_blocks = 0;
    let mut nr_frames = 0;
    for order in (0..=MAX_ORDER).rev() {
        while let Ok(f) = frame::alloc(Order(order), FrameState::Kernel) {
            assert!(nr_blocks < capacity, "frame list overflow");
            // SAFETY: slot `nr_blocks` is inside the owned block and properly aligned.
            unsafe { slots.add(nr_blocks).write((f.pfn(), order)) };
            nr_blocks += 1;
            nr_frames += 1u64 << order;
        }
    }
    assert_eq!(frame::nr_free_frames(), 0, "frames left after draining");
    assert_eq!(frame::alloc(Order(0), FrameState::Kernel), Err(AllocError::OutOfMemory));
    assert_eq!(nr_frames + list.size_bytes() / 4096, before.nr_free_frames);
    frame::check_invariants().expect("invariants when empty");
    for i in 0..nr_blocks {
        // SAFETY: slot `i` was written above.
        let (pfn, order) = unsafe { slots.add(i).read() };
        // SAFETY: test frames, allocated here and never mapped or used.
        unsafe { frame::free(Frame::from_pfn(pfn), Order(order)) }.expect("free of a drained block");
    }
    drop(list);
    pcp::drain_all();
    let after = frame::buddyinfo();
    assert_eq!(after, before, "buddyinfo differs after freeing everything");
    frame::check_invariants().expect("invariants after refilling");
    zero_pool::set_enabled(true);
}

#[test_case]
fn double_free_is_detected_with_the_frame_number() {
    stop_background_zeroing();
    let before = frame::buddyinfo();
    let f = frame::alloc(Order(2), FrameState::Kernel).unwrap();
    // SAFETY: test frames, allocated here and never mapped or used.
    unsafe { frame::free(f, Order(2)) }.unwrap();
    // SAFETY: test frames, allocated here and never mapped or used.
    assert_eq!(unsafe { frame::free(f, Order(2)) }, Err(FreeError::AlreadyFree(f)));
    assert_eq!(frame::buddyinfo(), before, "a rejected free changed the allocator");
    frame::check_invariants().unwrap();
    zero_pool::set_enabled(true);
}

#[test_case]
fn freeing_a_reserved_or_wrong_order_frame_is_refused() {
    // SAFETY: test frames, allocated here and never mapped or used.
    assert!(matches!(unsafe { frame::free(Frame::from_pfn(0), Order(0)) }, Err(FreeError::NotAllocated(_))));
    let f = frame::alloc(Order(1), FrameState::Kernel).unwrap();
    // SAFETY: test frames, allocated here and never mapped or used.
    assert!(matches!(unsafe { frame::free(f, Order(0)) }, Err(FreeError::WrongOrder { .. })));
    // SAFETY: test frames, allocated here and never mapped or used.
    unsafe { frame::free(f, Order(1)) }.unwrap();
}

#[test_case]
fn order_above_max_is_an_error_not_a_panic() {
    assert_eq!(
        frame::alloc(Order(MAX_ORDER + 1), FrameState::Kernel),
        Err(AllocError::OrderTooLarge(Order(MAX_ORDER + 1)))
    );
}

#[test_case]
fn zeroed_frames_read_back_zero_after_dirty_use() {
    let mut seen = Vec::new();
    for _ in 0..8 {
        let f = frame::alloc(Order(0), FrameState::Kernel).unwrap();
        // SAFETY: we own the frame; fill it with a pattern through the direct map.
        unsafe { core::ptr::write_bytes(frame_ptr(f), 0xa5, 4096) };
        seen.push(f);
    }
    for f in seen.drain(..) {
        // SAFETY: test frames, allocated here and never mapped or used.
        unsafe { frame::free(f, Order(0)) }.unwrap();
    }
    for _ in 0..8 {
        let f = frame::alloc_zeroed(Order(0), FrameState::Kernel).unwrap();
        // SAFETY: we own the frame and it is 4096 bytes in the direct map.
        let bytes = unsafe { core::slice::from_raw_parts(frame_ptr(f), 4096) };
        assert!(bytes.iter().all(|&b| b == 0), "alloc_zeroed returned dirty memory");
        seen.push(f);
    }
    for f in seen {
        // SAFETY: test frames, allocated here and never mapped or used.
        unsafe { frame::free(f, Order(0)) }.unwrap();
    }
}

#[test_case]
fn allocated_frames_carry_their_state_and_refcount() {
    let _lists = pcp::turned_on(); // on even under pcp=off
    let f = frame::alloc(Order(0), FrameState::User).unwrap();
    frame::with_desc(f, |d| {
        assert_eq!(d.state(), FrameState::User);
        assert_eq!(d.refcount(), 1);
        d.get_ref();
    });
    assert_eq!(frame::with_desc(f, |d| d.put_ref()), 1);
    // SAFETY: test frames, allocated here and never mapped or used.
    unsafe { frame::free(f, Order(0)) }.unwrap();
    // A freed single frame waits on this CPU's list, its descriptor ready for the
    // next allocation...
    assert!(pcp::contains(f), "{f:?} is not on a per-CPU list");
    assert_eq!(frame::with_desc(f, |d| (d.state(), d.refcount())), (FrameState::User, 1));
    // ... until the lists are drained.
    pcp::drain_all();
    assert_eq!(frame::with_desc(f, |d| d.state()), FrameState::Free);
}

/// Issue #13: a frame on a per-CPU list looks like a fresh allocation in the frame
/// table; reclaim, after a failed eviction, re-tracked any "live" user frame, so it
/// linked a free listed frame into the policy's ring (the `memcg` image's "set_next
/// of a frame not on the ring" with `pcp=on`). The scans must see it as free.
#[test_case]
fn a_frame_on_a_per_cpu_list_is_never_taken_for_a_live_page() {
    let _lists = pcp::turned_on(); // on even under pcp=off
    assert!(pcp::is_enabled());
    let (user_before, census_before) = (frame::nr_frames_in_state(FrameState::User), frame::mem_census());
    let f = frame::alloc(Order(0), FrameState::User).unwrap();
    let t = frame::alloc(Order(0), FrameState::PageTable).unwrap();
    // SAFETY: test frames, allocated here and never mapped or used.
    unsafe { frame::free(f, Order(0)) }.unwrap();
    // SAFETY: as above.
    unsafe { frame::free(t, Order(0)) }.unwrap();
    assert!(pcp::contains(f) && pcp::contains(t), "the frames are not on a per-CPU list");
    // What reclaim does with a victim it failed to evict: track it again if live.
    kernel::mm::reclaim::track(f);
    let is_tracked = kernel::mm::reclaim::is_tracked(f);
    if is_tracked {
        kernel::mm::reclaim::untrack(f); // leave the ring sound for the tests after
    }
    assert!(!is_tracked, "reclaim linked the free listed {f:?} into the policy's ring");
    assert_eq!(frame::nr_frames_in_state(FrameState::User), user_before, "a listed frame counted as a user page");
    assert_eq!(frame::mem_census().nr_page_table, census_before.nr_page_table, "a listed frame counted as a page table");
    kernel::mm::check::check_consistency().expect("audit with frames on the lists");
}

#[test_case]
fn a_freed_single_frame_is_the_next_one_this_cpu_allocates() {
    // As on one CPU: this task stays on its CPU (whose list it checks), and no other
    // CPU allocates or fills the zero pool between the two free counts (`--smp 2`:
    // "a listed frame is free memory", 62 361 for 62 363).
    let _only_this_cpu = OnlyThisCpuIdles::new();
    let cpu = kernel::arch::smp::cpu_id();
    let _lists = pcp::turned_on(); // on even under pcp=off
    let f = frame::alloc(Order(0), FrameState::Kernel).unwrap();
    let before = pcp::stats(cpu);
    let free_before = frame::nr_free_frames_exact();
    // SAFETY: test frames, allocated here and never mapped or used.
    unsafe { frame::free(f, Order(0)) }.unwrap();
    assert_eq!(frame::nr_free_frames_exact(), free_before + 1, "a listed frame is free memory");
    assert_eq!(frame::alloc(Order(0), FrameState::Kernel), Ok(f), "last freed, first allocated (cache-warm)");
    let after = pcp::stats(cpu);
    assert_eq!((after.frees - before.frees, after.alloc_hits - before.alloc_hits), (1, 1));
    // SAFETY: as above.
    unsafe { frame::free(f, Order(0)) }.unwrap();
}

#[test_case]
fn a_double_free_of_a_listed_frame_is_refused() {
    let _lists = pcp::turned_on(); // on even under pcp=off
    let f = frame::alloc(Order(0), FrameState::Kernel).unwrap();
    // SAFETY: test frames, allocated here and never mapped or used.
    unsafe { frame::free(f, Order(0)) }.unwrap();
    let listed = pcp::nr_listed();
    // SAFETY: as above; the second free is the bug under test, and must be refused.
    assert_eq!(unsafe { frame::free(f, Order(0)) }, Err(FreeError::AlreadyFree(f)));
    assert_eq!(pcp::nr_listed(), listed, "the refused free listed the frame twice");
    kernel::mm::check::check_consistency().expect("audit after a refused double free");
}

#[test_case]
fn frames_on_a_per_cpu_list_never_make_an_allocation_fail() {
    let _lists = pcp::turned_on(); // on even under pcp=off
    // Park frames on this CPU's Kernel list: freed there, they look allocated.
    let sizes = pcp::sizes();
    let mut parked = Vec::new();
    for _ in 0..sizes.high {
        parked.push(frame::alloc(Order(0), FrameState::Kernel).unwrap());
    }
    for f in parked {
        // SAFETY: test frames, allocated here and never mapped or used.
        unsafe { frame::free(f, Order(0)) }.unwrap();
    }
    assert!(pcp::nr_listed() > 0, "nothing parked on the lists");
    // Now take every free frame as page tables (another list): the last ones can only
    // come from the Kernel list, by the drain an allocation does before it fails.
    let list = OwnedFrames::new_zeroed(Order(8)).expect("no room for the frame list");
    let slots = list.as_ptr() as *mut u64;
    let capacity = list.size_bytes() as usize / 8;
    let mut nr = 0;
    while let Ok(f) = frame::alloc_leaving(Order(0), FrameState::PageTable, frame::Reserve::None) {
        assert!(nr < capacity, "frame list overflow");
        // SAFETY: slot `nr` is inside the owned block and aligned.
        unsafe { slots.add(nr).write(f.pfn()) };
        nr += 1;
    }
    let (free_left, listed_left) = (frame::nr_free_frames(), pcp::nr_listed());
    for i in 0..nr {
        // SAFETY: slot `i` was written above; test frames, never mapped.
        unsafe { frame::free(Frame::from_pfn(slots.add(i).read()), Order(0)) }.expect("free");
    }
    drop(list);
    assert_eq!((free_left, listed_left), (0, 0), "free frames left on the lists when an allocation failed");
    frame::check_invariants().unwrap();
}

#[test_case]
fn freeing_a_mapped_user_frame_is_refused_with_its_state() {
    // Issue #10: the buddy allocator checks map and reference counts on free, as
    // Linux's bad_page does; the mapped page must survive the attempt.
    use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
    // The free count must not move: no other CPU allocating or zeroing meanwhile
    // (with `--smp 2` it moved by one).
    let _only_this_cpu = OnlyThisCpuIdles::new();
    let space = AddressSpace::new().expect("space");
    let addr = space.lock().mmap(0, 4096, VmProt::READ_WRITE, MapRequest::default()).expect("mmap");
    kernel::mm::fault::handle_page_fault(&mut space.lock(), addr, 0b110).expect("write fault");
    let frame = space.lock().pte(addr).expect("pte").frame();
    let free_before = frame::nr_free_frames();
    let err = frame::free_unreferenced_user_frame(frame).unwrap_err();
    assert!(matches!(err, FreeError::InUse { state: FrameState::User, refcount: 1, map_count: 1, .. }), "{err:?}");
    // SAFETY: deliberately wrong, and refused: the frame table sees the mapping.
    let err = unsafe { frame::free(frame, Order(0)) }.unwrap_err();
    assert_eq!(frame::nr_free_frames(), free_before, "a refused free changed the allocator");
    assert!(alloc::format!("{err}").contains("map count 1"), "{err}");
    kernel::mm::check::check_consistency().expect("the mapped page is intact");
    drop(space);
    frame::check_invariants().expect("invariants");
}

#[test_case]
fn a_refill_hands_out_a_block_in_address_order_and_every_frame_frees_alone() {
    // A per-CPU list's refill takes power-of-two blocks from the buddy allocator and
    // splits them into single allocations (`frame::alloc_refill_block`): from an
    // empty list, the first frames come out consecutive and rising, and each is an
    // allocation of its own that frees alone (the buddy's checks pass).
    // On its CPU, with no other CPU allocating in between (any `--smp`).
    let _only_this_cpu = OnlyThisCpuIdles::new();
    let cpu = kernel::arch::smp::cpu_id();
    let _lists = pcp::turned_on(); // on even under pcp=off
    stop_background_zeroing();
    pcp::drain_all();
    let refills_before = pcp::stats(cpu).refills;
    let frames: Vec<Frame> = (0..4).map(|_| frame::alloc(Order(0), FrameState::Kernel).expect("frame")).collect();
    assert_eq!(pcp::stats(cpu).refills - refills_before, 1, "four frames took more than one refill");
    let pfns: Vec<u64> = frames.iter().map(|f| f.pfn()).collect();
    assert_eq!(pfns, (0..4).map(|i| pfns[0] + i).collect::<Vec<u64>>(), "not one block in address order");
    for f in frames {
        // SAFETY: test frames, allocated here and never mapped or used.
        unsafe { frame::free(f, Order(0)) }.expect("a frame of a split block frees alone");
    }
    pcp::drain_all();
    frame::check_invariants().unwrap();
    zero_pool::set_enabled(true);
}
