//! Unit tests of the decision table, row by row, and the test-only switch that
//! injects a classic bug into the decisions (for the model test to catch).

use std::cell::Cell;

use super::*;
use crate::addr::VirtAddr;
use crate::swap_cache::CachedPage;
use crate::vma::VmFlags;

/// A bug the model test can inject into the real decision code (test builds only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InjectedBug {
    /// Copy-on-write reuses the frame in place without checking who else maps it.
    CowReuseWithoutCountCheck,
    /// Copy-on-write checks only the map count: a swap PTE of another process that
    /// still names the frame's slot is forgotten.
    CowReuseIgnoringSwapSharers,
    /// A cached page whose last swap PTE went away is never dropped: a leak.
    SwapCacheKeepsOrphans,
}

std::thread_local! {
    /// The bug injected on this thread (tests run on many threads at once).
    static INJECTED: Cell<Option<InjectedBug>> = const { Cell::new(None) };
}

/// Returns true if `bug` is injected on this thread.
pub(crate) fn injected(bug: InjectedBug) -> bool {
    INJECTED.with(|b| b.get() == Some(bug))
}

/// Runs `f` with `bug` injected on this thread.
pub(crate) fn with_bug<R>(bug: InjectedBug, f: impl FnOnce() -> R) -> R {
    INJECTED.with(|b| b.set(Some(bug)));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    INJECTED.with(|b| b.set(None));
    result.unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// Facts for one decision: a fixed answer to each question.
struct Facts {
    zero: Frame,
    frame_use: FrameUse,
    cache: SwapCacheLookup,
}

impl FaultFacts for Facts {
    fn is_zero_page(&self, frame: Frame) -> bool {
        frame == self.zero
    }
    fn frame_use(&self, _: Frame) -> FrameUse {
        self.frame_use
    }
    fn swap_cache(&self, _: SwapEntry) -> SwapCacheLookup {
        self.cache
    }
}

const ZERO: Frame = Frame::from_pfn(1);
const DATA: Frame = Frame::from_pfn(2);

fn facts(map_count: u32, refcount: u32, slot_refs: Option<u16>) -> Facts {
    Facts { zero: ZERO, frame_use: FrameUse { map_count, refcount, slot_refs }, cache: SwapCacheLookup::NotCached }
}

fn vma(prot: VmProt, flags: VmFlags) -> Vma {
    Vma::new(VirtAddr::new(0x1000), VirtAddr::new(0x9000), prot, flags, Backing::Anonymous)
}

fn cow_pte(frame: Frame) -> Pte {
    Pte::new(frame, fork_flags(leaf_flags_for(VmProt::READ_WRITE), false))
}

#[test]
fn refusals_come_first() {
    let f = facts(1, 1, None);
    assert_eq!(decide(None, Access::Read, None, &f), FaultAction::Refuse(Refusal::NoVma));
    let ro = vma(VmProt::READ, VmFlags::empty());
    assert_eq!(decide(Some(&ro), Access::Write, None, &f), FaultAction::Refuse(Refusal::NotAllowed));
    assert_eq!(decide(Some(&ro), Access::Exec, None, &f), FaultAction::Refuse(Refusal::NotAllowed));
    let none = vma(VmProt::NONE, VmFlags::empty());
    assert_eq!(decide(Some(&none), Access::Read, Some(cow_pte(DATA)), &f), FaultAction::Refuse(Refusal::NotAllowed));
}

#[test]
fn a_first_read_maps_the_zero_page_and_a_first_write_a_zeroed_frame() {
    let f = facts(1, 1, None);
    let rw = vma(VmProt::READ_WRITE, VmFlags::empty());
    let flags = leaf_flags_for(VmProt::READ_WRITE);
    assert_eq!(decide(Some(&rw), Access::Read, None, &f), FaultAction::MapZeroPage { flags: flags - PteFlags::WRITABLE });
    assert_eq!(decide(Some(&rw), Access::Write, Some(Pte::from_bits(0)), &f), FaultAction::MapZeroedFrame { flags });
    let shared = vma(VmProt::READ_WRITE, VmFlags::SHARED);
    assert_eq!(decide(Some(&shared), Access::Read, None, &f), FaultAction::MapZeroedFrame { flags });
    let image = Vma { backing: Backing::Image { id: 3, offset: 0 }, ..rw };
    assert_eq!(decide(Some(&image), Access::Read, None, &f), FaultAction::MapImagePage { flags });
    let file = Vma { backing: Backing::File { cache: 2, offset: 0 }, ..shared };
    assert_eq!(decide(Some(&file), Access::Write, None, &f), FaultAction::MapFilePage { flags });
}

#[test]
fn a_write_to_a_cow_page_copies_unless_the_writer_is_its_only_user() {
    let rw = vma(VmProt::READ_WRITE, VmFlags::empty());
    let pte = cow_pte(DATA);
    let mut writable = pte;
    writable.set_flags((pte.flags() | PteFlags::WRITABLE) - PteFlags::COW);
    let copy = FaultAction::CopyOnWrite { flags: writable.flags() };
    let reuse = FaultAction::MakeWritable { pte: writable, because: WritableBecause::SoleOwner };
    assert_eq!(decide(Some(&rw), Access::Write, Some(pte), &facts(2, 2, None)), copy);
    assert_eq!(decide(Some(&rw), Access::Write, Some(pte), &facts(1, 1, None)), reuse);
    // In the swap cache, with another swap PTE naming the slot: still shared.
    assert_eq!(decide(Some(&rw), Access::Write, Some(pte), &facts(1, 2, Some(2))), copy);
    assert_eq!(decide(Some(&rw), Access::Write, Some(pte), &facts(1, 2, Some(1))), reuse);
    // A reference beyond the PTEs (an I/O pin): copy.
    assert_eq!(decide(Some(&rw), Access::Write, Some(pte), &facts(1, 2, None)), copy);
    let shared = vma(VmProt::READ_WRITE, VmFlags::SHARED);
    let shared_write = FaultAction::MakeWritable { pte: writable, because: WritableBecause::SharedMapping };
    assert_eq!(decide(Some(&shared), Access::Write, Some(pte), &facts(5, 5, None)), shared_write);
    let zero = Pte::new(ZERO, leaf_flags_for(VmProt::READ_WRITE) - PteFlags::WRITABLE);
    let flags = leaf_flags_for(VmProt::READ_WRITE);
    assert_eq!(decide(Some(&rw), Access::Write, Some(zero), &facts(0, 0, None)), FaultAction::ReplaceZeroPage { flags });
    assert_eq!(decide(Some(&rw), Access::Read, Some(pte), &facts(2, 2, None)), FaultAction::FlushStaleTlb);
}

#[test]
fn a_swap_pte_reads_waits_or_maps_the_cached_page() {
    let rw = vma(VmProt::READ_WRITE, VmFlags::empty());
    let entry = SwapEntry::new(0, 7);
    let mut f = facts(0, 0, None);
    assert_eq!(decide(Some(&rw), Access::Read, Some(Pte::swap(entry)), &f), FaultAction::ReadFromSwap(entry));
    f.cache = SwapCacheLookup::Locked;
    assert_eq!(decide(Some(&rw), Access::Read, Some(Pte::swap(entry)), &f), FaultAction::WaitForIo);
    let idle = CachedPage { map_count: 0, is_locked: false, is_dirty: false };
    f.cache = SwapCacheLookup::Cached { frame: DATA, slot: SlotState::new(2, Some(idle)) };
    let flags = leaf_flags_for(VmProt::READ_WRITE);
    let mapped = decide(Some(&rw), Access::Read, Some(Pte::swap(entry)), &f);
    assert_eq!(mapped, FaultAction::MapSwapCache { frame: DATA, flags });
    f.cache = SwapCacheLookup::Cached { frame: DATA, slot: SlotState::new(3, Some(idle)) };
    let cow = fork_flags(flags, false);
    assert_eq!(decide(Some(&rw), Access::Read, Some(Pte::swap(entry)), &f), FaultAction::MapSwapCache { frame: DATA, flags: cow });
    let bad = Pte::from_bits(0x10);
    assert_eq!(decide(Some(&rw), Access::Read, Some(bad), &f), FaultAction::CorruptPte(bad));
}

#[test]
fn the_injected_bug_changes_the_answer_on_this_thread_only() {
    assert!(!facts(2, 2, None).frame_use.is_exclusive());
    with_bug(InjectedBug::CowReuseWithoutCountCheck, || assert!(facts(2, 2, None).frame_use.is_exclusive()));
    assert!(!facts(2, 2, None).frame_use.is_exclusive());
}
