//! Host tests of [`BufferedFifo`]: hand-made strings with answers worked out by hand
//! (the comments show the lists after each reference), and the protocol with the
//! caller (unmap, rescue, clean) step by step.

use alloc::vec::Vec;

use super::{BufferedFifo, Fifo, NoBitsProbe, PageRef, ReplacementPolicy, SimResult, reads, simulate};

#[test]
fn a_page_touched_on_the_clean_list_is_rescued_not_faulted() {
    // 4 frames; the lists hold max(1, tracked / 4) = 1 page. "F" = FIFO, "C" = clean.
    //   1: fault  F[]        C[1]   (1 is the oldest: unmapped at once)
    //   2 3 4: faults        F[2 3 4] C[1]
    //   1: rescue F[2 3 4 1] C[]
    //   5: fault, no list page: FIFO head 2 evicted; F[4 1 5] C[3]
    //   2: fault, evicts 3 (clean head); F[1 5 2] C[4]
    //   3: fault, evicts 4; F[5 2 3] C[1]
    //   1: rescue F[5 2 3 1] C[]
    let refs = reads(&[1, 2, 3, 4, 1, 5, 2, 3, 1]);
    let result = simulate(&mut BufferedFifo::new(), 4, &refs);
    assert_eq!(result, SimResult { faults: 7, hits: 0, evictions: 3, dirty_writebacks: 0, rescues: 2 });
}

#[test]
fn dirty_pages_wait_on_the_dirty_list_and_are_written_when_evicted_from_it() {
    // Every page written, 4 frames: the list page is a dirty one.
    //   1 2 3 4: faults, F[2 3 4] D[1];  5: evicts D's 1 (a write-back), F[3 4 5] D[2]
    //   6: evicts 2 (a write-back), F[4 5 6] D[3];  3: rescue, F[4 5 6 3] D[]
    let refs: Vec<PageRef> = [1, 2, 3, 4, 5, 6, 3].into_iter().map(PageRef::write).collect();
    let result = simulate(&mut BufferedFifo::new(), 4, &refs);
    assert_eq!(result, SimResult { faults: 6, hits: 0, evictions: 2, dirty_writebacks: 2, rescues: 1 });
}

#[test]
fn the_caller_protocol_unmaps_rescues_cleans_and_evicts_clean_first() {
    let mut vms = BufferedFifo::new();
    for page in 10..18 {
        vms.on_insert(page);
    }
    // 8 pages: the lists want 2, the FIFO's oldest.
    let mut out = [0; 8];
    assert_eq!(vms.take_for_buffering(&mut out), 2);
    assert_eq!(&out[..2], &[10, 11]);
    assert_eq!(vms.nr_tracked(), 6, "untracked while the caller unmaps them");
    vms.on_buffered(10, true);
    vms.on_buffered(11, false);
    assert_eq!(vms.list_sizes(), (6, 1, 1));
    assert_eq!(vms.take_for_buffering(&mut out), 0, "the lists hold their share");
    // A fault on 10 (dirty list) maps it back: a rescue, to the FIFO's newest end.
    assert!(vms.on_soft_fault(10));
    assert!(!vms.on_soft_fault(12), "12 is mapped, in the FIFO: no rescue");
    assert_eq!(vms.nr_rescued(), 1);
    assert_eq!(vms.list_sizes(), (7, 1, 0));
    // Refill: 12 goes, dirty; the writer cleans it onto the clean list behind 11.
    assert_eq!(vms.take_for_buffering(&mut out), 1);
    assert_eq!(out[0], 12);
    vms.on_buffered(12, true);
    assert_eq!(vms.nr_dirty_buffered(), 1);
    assert_eq!(vms.take_for_cleaning(&mut out), 1);
    vms.on_cleaned(12);
    // Victims: the clean list's head first, then the FIFO in arrival order, 10 last.
    let order: Vec<u64> = core::iter::from_fn(|| vms.pick_victim(&mut NoBitsProbe)).collect();
    assert_eq!(order, [11, 12, 13, 14, 15, 16, 17, 10]);
}

#[test]
fn buffering_faults_less_than_fifo_when_a_hot_page_is_reused_after_leaving_the_fifo() {
    // The hot page 0 is written between reads of a loop of 6 on 6 frames: FIFO
    // evicts it every round; page buffering unmaps it and the next touch rescues it.
    let mut refs = Vec::new();
    for _ in 0..20 {
        for page in 1..=6 {
            refs.push(PageRef::write(0));
            refs.push(PageRef::read(page));
        }
    }
    let buffered = simulate(&mut BufferedFifo::new(), 6, &refs);
    let fifo = simulate(&mut Fifo::new(), 6, &refs);
    assert!(buffered.rescues > 0);
    assert!(buffered.faults < fifo.faults, "buffered {buffered:?} fifo {fifo:?}");
}

#[test]
fn a_process_over_its_limit_gives_up_its_own_oldest_pages_not_anothers() {
    const A: u64 = 7;
    const B: u64 = 9;
    let mut vms = BufferedFifo::new();
    for page in [20, 21] {
        vms.on_insert(page);
        assert!(!vms.claim_for(page, B, 10));
    }
    for page in 1..=3 {
        vms.on_insert(page);
        assert!(!vms.claim_for(page, A, 3), "{page}: within the limit");
    }
    for page in [4, 5] {
        vms.on_insert(page);
        assert!(vms.claim_for(page, A, 3), "{page}: over the limit");
    }
    assert_eq!(vms.resident_set(A), Some((5, 3)));
    let mut out = [0; 8];
    assert_eq!(vms.take_over_limit(&mut out), 2);
    assert_eq!(&out[..2], &[1, 2], "A's two oldest: local replacement");
    assert_eq!(vms.resident_set(A), Some((3, 3)));
    assert_eq!(vms.resident_set(B), Some((2, 10)), "B keeps every page");
    assert_eq!(vms.nr_tracked(), 5, "the two are untracked until reported back");
    vms.on_buffered(1, false);
    vms.on_buffered(2, true);
    assert_eq!(vms.list_sizes(), (0, 1, 1), "onto the global lists");
    assert_eq!(vms.take_over_limit(&mut out), 0);
    // A touches 1 again: a rescue (no I/O), back into A's ring, which is over again.
    assert!(vms.on_soft_fault(1));
    assert!(vms.claim_for(1, A, 3));
    assert_eq!(vms.take_over_limit(&mut out), 1);
    assert_eq!(out[0], 3, "A's ring is 3 4 5 1: 3 is its oldest");
    vms.on_buffered(3, false);
    assert_eq!(vms.nr_rescued(), 1);
    assert_eq!(vms.nr_tracked(), 7);
}

#[test]
fn resident_sets_free_their_slot_when_empty_and_give_victims_when_the_fifo_is_empty() {
    let mut vms = BufferedFifo::new();
    for page in 1..=4 {
        vms.on_insert(page);
        vms.claim_for(page, 1, 100);
    }
    for page in 5..=6 {
        vms.on_insert(page);
        vms.claim_for(page, 2, 100);
    }
    // No list page, an empty global FIFO: the largest set's oldest goes.
    assert_eq!(vms.pick_victim(&mut NoBitsProbe), Some(1));
    for page in [5, 6] {
        vms.on_remove(page);
    }
    assert_eq!(vms.resident_set(2), None, "an empty set holds no slot");
    assert_eq!(vms.nr_tracked(), 3);
    // Every other slot can be used, and one more process is simply not limited.
    for owner in 10..9 + super::buffered_fifo::MAX_SETS as u64 {
        vms.on_insert(owner * 100);
        vms.claim_for(owner * 100, owner, 0);
    }
    vms.on_insert(99_999);
    assert!(!vms.claim_for(99_999, 99_999, 0), "no slot: global, no limit");
    // Handing over gives every page back.
    let mut nr = 0;
    while vms.take_for_hand_over().is_some() {
        nr += 1;
    }
    assert_eq!(nr, 3 + (super::buffered_fifo::MAX_SETS - 1) + 1);
    assert_eq!(vms.nr_tracked(), 0);
}
