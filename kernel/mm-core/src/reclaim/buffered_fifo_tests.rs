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
