//! Same-page merging (Linux's KSM): `madvise(MADV_MERGEABLE)` marks private
//! anonymous memory, and a scanner (the kernel thread `ksmd`, or [`scan`] called
//! directly) replaces every page whose bytes equal another's by one shared,
//! write-protected frame. A write to it faults and copies, through the ordinary
//! copy-on-write path (`cow::do_wp_fault`): the copy is an ordinary anonymous page.
//!
//! ```text
//!  process A  0x1000 [F1, RW] "hello.."        A 0x1000 [K, RO, COW] --+
//!  process B  0x9000 [F2, RW] "hello.."   ->   B 0x9000 [K, RO, COW] --+--> K = F1 ("hello..")
//!  process C  0x5000 [F3, RW] "hello.."        C 0x5000 [K, RO, COW] --+    F2, F3 freed
//!                                              stable index: K -> places (A's family, 0x1000),
//!                                                              (B's, 0x9000), (C's, 0x5000)
//! ```
//! How a page is merged (the pure indexes are `mm_core::ksm`, which has the diagram
//! of the scan's decision): a checksum finds candidates; the page is then
//! write-protected (its PTE read-only, the TLB flushed) and compared byte for byte
//! with the candidate under the locks, so a write racing with the scan either lands
//! before the compare (no merge) or faults after it (a COW copy).
//!
//! **The reverse map.** A merged frame is mapped at different addresses in
//! different fork families, so its descriptor cannot name one place as an ordinary
//! page does (`rmap.rs`). Its place word says "merged" (`FrameDesc::is_ksm`) and
//! [`STABLE`] lists its places, (family, page) pairs: `rmap::candidates` asks
//! [`places`], so reclaim (which swaps a merged page out once, turning every mapping
//! into the same swap entry), the reclaim probe and the audit find every mapping.
//! A place stays listed until the frame is freed, even after its PTE went (the
//! readers check each PTE): the list may be too long, never too short. When a
//! merged page comes back from swap, the first fault maps it at one place and the
//! second, from another family, makes it merged again (`rmap::map` ->
//! [`map_place`]). Compaction leaves merged pages where they are (`frame::is_movable`).
//!
//! **Knobs** (Linux's `/sys/kernel/mm/ksm/`): [`set_run`], [`set_pages_to_scan`],
//! [`set_sleep_millisecs`]; the `ksm_ctl` syscall (1035) sets them and runs a pass.
//! **Counters** ([`stats`]): pages_shared (merged frames), pages_sharing (mappings
//! beyond the first of each: the pages saved), pages_unshared (this scan's
//! unstable candidates), full_scans.
//!
//! Not done, as in Linux but simpler: no "volatile page" filter (Linux merges a page
//! only if its checksum did not change since the previous scan); the stable index is
//! a map by checksum, not a tree ordered by content; merged pages are never huge.
//!
//! Locks: [`SCANNER`] (sleeping), then one address space at a time, then [`STABLE`]
//! (`KsmStable`, under `rmap::FAMILIES`); see the lock order in [`crate::mm`].
#![deny(unsafe_code)]

use alloc::sync::Weak;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm_core::frame_table::MappingAdded;
use mm_core::ksm::{StableIndex, UnstableIndex};

use super::addr_space::{AddressSpace, VmError, VmFlags};
use super::frame::{self, FrameFlags, FrameState, NewPage};
use super::paging::{Pte, PteFlags};
use super::rmap::{self, FamilyPage, SpaceId, SpaceRef};
use super::{Frame, PAGE_SIZE, Page, VirtAddr, memops};
use crate::sync::{IrqMutex, LockRank, Mutex, WaitQueue};

/// The merged frames, by checksum, with their places.
static STABLE: IrqMutex<StableIndex<FamilyPage>> = IrqMutex::new_ranked(LockRank::KsmStable, StableIndex::new());

/// The scanner's state: where the scan goes on, and this scan's unmerged candidates.
static SCANNER: Mutex<Scanner> = Mutex::new(Scanner::new());

/// Is ksmd scanning (`/sys/kernel/mm/ksm/run`)? Off at boot, as in Linux.
static RUN: AtomicBool = AtomicBool::new(false);
/// Pages ksmd scans per pass (`pages_to_scan`; Linux's default is 100).
static PAGES_TO_SCAN: AtomicU64 = AtomicU64::new(100);
/// Milliseconds ksmd sleeps between passes (`sleep_millisecs`; Linux's default is 20).
static SLEEP_MILLISECS: AtomicU64 = AtomicU64::new(20);
/// Where ksmd waits while `run` is 0.
static KSMD_QUEUE: WaitQueue = WaitQueue::new();

static FULL_SCANS: AtomicU64 = AtomicU64::new(0);
static PAGES_SCANNED: AtomicU64 = AtomicU64::new(0);
static PAGES_MERGED: AtomicU64 = AtomicU64::new(0);
static PAGES_UNMERGED: AtomicU64 = AtomicU64::new(0);
static NR_UNSHARED: AtomicU64 = AtomicU64::new(0);

/// A page seen earlier in this scan, not merged yet.
struct Candidate {
    space: Weak<IrqMutex<AddressSpace>>,
    page: Page,
}

/// The scan's position and its unstable index.
struct Scanner {
    unstable: UnstableIndex<Candidate>,
    /// The next (space id, address) to look at.
    cursor: (SpaceId, u64),
}

impl Scanner {
    const fn new() -> Self {
        Self { unstable: UnstableIndex::new(), cursor: (0, 0) }
    }
}

/// The counters of `/sys/kernel/mm/ksm/` (and our own), at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KsmStats {
    /// Merged frames in use.
    pub pages_shared: u64,
    /// Mappings of merged frames beyond the first of each: the frames saved.
    pub pages_sharing: u64,
    /// Candidates of this scan not merged (yet).
    pub pages_unshared: u64,
    /// Scans that went over every mergeable page.
    pub full_scans: u64,
    /// Pages looked at since boot.
    pub pages_scanned: u64,
    /// Pages merged into another since boot (each freed a frame then).
    pub pages_merged: u64,
    /// Merged mappings broken by `MADV_UNMERGEABLE` (writes are COW faults).
    pub pages_unmerged: u64,
}

/// Returns the counters.
pub fn stats() -> KsmStats {
    let pfns = STABLE.lock().pfns();
    let map_counts: Vec<u32> = pfns.iter().map(|&pfn| frame::with_desc(Frame::from_pfn(pfn), |d| d.map_count())).collect();
    KsmStats {
        pages_shared: map_counts.iter().filter(|&&c| c > 0).count() as u64,
        pages_sharing: mm_core::ksm::pages_sharing(map_counts.into_iter()),
        pages_unshared: NR_UNSHARED.load(Ordering::Relaxed),
        full_scans: FULL_SCANS.load(Ordering::Relaxed),
        pages_scanned: PAGES_SCANNED.load(Ordering::Relaxed),
        pages_merged: PAGES_MERGED.load(Ordering::Relaxed),
        pages_unmerged: PAGES_UNMERGED.load(Ordering::Relaxed),
    }
}

/// Returns the counters as `/sys/kernel/mm/ksm/` names them, for `/proc/vmstat`.
pub fn vmstat_rows() -> [(&'static str, u64); 4] {
    let s = stats();
    [
        ("ksm_pages_shared", s.pages_shared),
        ("ksm_pages_sharing", s.pages_sharing),
        ("ksm_pages_unshared", s.pages_unshared),
        ("ksm_full_scans", s.full_scans),
    ]
}

/// Starts or stops ksmd (`run`: 1 or 0).
pub fn set_run(is_on: bool) {
    RUN.store(is_on, Ordering::Release);
    KSMD_QUEUE.wake_one();
}

/// Returns the knobs: (run, pages_to_scan, sleep_millisecs).
pub fn knobs() -> (bool, u64, u64) {
    (RUN.load(Ordering::Acquire), PAGES_TO_SCAN.load(Ordering::Relaxed), SLEEP_MILLISECS.load(Ordering::Relaxed))
}

/// Sets how many pages ksmd scans per pass (at least 1).
pub fn set_pages_to_scan(nr: u64) {
    PAGES_TO_SCAN.store(nr.max(1), Ordering::Relaxed);
}

/// Sets how long ksmd sleeps between passes, in milliseconds.
pub fn set_sleep_millisecs(ms: u64) {
    SLEEP_MILLISECS.store(ms, Ordering::Relaxed);
}

/// Starts the ksmd thread (it sleeps until `run` is set).
pub fn start_ksmd() {
    if let Err(e) = crate::sync::kthread::spawn("ksmd", ksmd_main) {
        log::warn!("ksm: ksmd not started ({e:?}); `ksm_ctl` passes still merge");
    }
}

extern "C" fn ksmd_main() -> ! {
    loop {
        KSMD_QUEUE.wait_until(|| RUN.load(Ordering::Acquire));
        scan(PAGES_TO_SCAN.load(Ordering::Relaxed));
        let ticks = (SLEEP_MILLISECS.load(Ordering::Relaxed) * crate::arch::timer::TICK_HZ / 1000).max(1);
        let _ = KSMD_QUEUE.wait_until_deadline(|| false, crate::arch::timer::ticks() + ticks);
    }
}

/// What one pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// Pages looked at.
    pub nr_scanned: u64,
    /// Pages merged into another (a frame freed each).
    pub nr_merged: u64,
    /// Full scans finished in this pass.
    pub nr_full_scans: u64,
}

/// Scans up to `nr_pages` mergeable pages from where the last pass stopped (at most
/// one full scan's end per pass). Call with no lock held; may sleep on the scanner.
pub fn scan(nr_pages: u64) -> PassReport {
    let mut scanner = SCANNER.lock();
    let mut report = PassReport::default();
    let mut spaces = rmap::all_spaces();
    spaces.sort_unstable_by_key(|r| r.id);
    let (first_id, first_addr) = scanner.cursor;
    for registered in spaces.iter().filter(|r| r.id >= first_id) {
        let from = if registered.id == first_id { first_addr } else { 0 };
        let ranges = mergeable_ranges(&registered.space.lock(), from);
        for (start, end) in ranges {
            let mut addr = start;
            while addr < end {
                if report.nr_scanned == nr_pages {
                    scanner.cursor = (registered.id, addr);
                    return report;
                }
                report.nr_scanned += 1;
                if scan_page(&mut scanner, &registered.space, Page::containing_address(VirtAddr::new(addr))) {
                    report.nr_merged += 1;
                }
                addr += PAGE_SIZE;
            }
        }
    }
    // Every space done: a full scan. Its candidates are stale by now.
    scanner.cursor = (0, 0);
    scanner.unstable.clear();
    NR_UNSHARED.store(0, Ordering::Relaxed);
    FULL_SCANS.fetch_add(1, Ordering::Relaxed);
    report.nr_full_scans = 1;
    report
}

/// Returns the `[start, end)` ranges of `space`'s mergeable private anonymous VMAs
/// at or above `from`.
fn mergeable_ranges(space: &AddressSpace, from: u64) -> Vec<(u64, u64)> {
    space
        .vmas()
        .iter()
        .filter(|v| v.flags.contains(VmFlags::MERGEABLE) && !v.flags.is_shared() && v.is_anonymous())
        .filter(|v| v.end.as_u64() > from)
        .map(|v| (v.start.as_u64().max(from), v.end.as_u64()))
        .collect()
}

/// Returns true if the frame may be merged into another: an ordinary 4 KiB
/// anonymous page mapped by one PTE and held by nothing else (not in the swap
/// cache, not under I/O, not part of a huge page, not MADV_FREE'd).
fn is_mergeable(frame: Frame) -> bool {
    frame::with_desc(frame, |d| {
        d.state() == FrameState::User
            && d.has_flags(FrameFlags::ALLOC_HEAD)
            && d.order() == 0
            && !d.is_ksm()
            && d.map_count() == 1
            && d.refcount() == 1
            && !d.flags().intersects(FrameFlags::LOCKED | FrameFlags::SWAP_CACHE | FrameFlags::FILE | FrameFlags::LAZYFREE)
    })
}

/// Returns the frame a present 4 KiB PTE maps at `page` if it may be merged.
fn mergeable_frame_at(space: &AddressSpace, page: Page) -> Option<(Pte, Frame)> {
    let pte = space.pte(page.start_address())?;
    if !pte.is_present() || pte.frame() == super::fault::zero_frame() || !is_mergeable(pte.frame()) {
        return None;
    }
    Some((pte, pte.frame()))
}

/// Looks at one page: merges it into a merged page with the same bytes, or with
/// this scan's earlier candidate with the same checksum, or records it as a
/// candidate. Returns true if it was merged (its frame freed).
fn scan_page(scanner: &mut Scanner, space_ref: &SpaceRef, page: Page) -> bool {
    PAGES_SCANNED.fetch_add(1, Ordering::Relaxed);
    let checksum = {
        let mut space = space_ref.lock();
        let Some((_, frame)) = mergeable_frame_at(&space, page) else {
            return false;
        };
        let checksum = memops::user_page_checksum(frame);
        if !STABLE.lock().with_checksum(checksum).is_empty() {
            return merge_into_stable(&mut space, page, checksum);
        }
        checksum
    };
    let me = Candidate { space: alloc::sync::Arc::downgrade(space_ref), page };
    let Some(other) = scanner.unstable.take(checksum) else {
        scanner.unstable.insert(checksum, me);
        NR_UNSHARED.store(scanner.unstable.len() as u64, Ordering::Relaxed);
        return false;
    };
    let is_self = other.page == page && other.space.ptr_eq(&me.space);
    if is_self || !promote(&other, checksum) {
        scanner.unstable.insert(checksum, me);
        NR_UNSHARED.store(scanner.unstable.len() as u64, Ordering::Relaxed);
        return false;
    }
    NR_UNSHARED.store(scanner.unstable.len() as u64, Ordering::Relaxed);
    merge_into_stable(&mut space_ref.lock(), page, checksum)
}

/// Makes the candidate's page a merged page (write-protected, into the stable
/// index with one place) if it is still mergeable with `checksum`. Returns true if
/// it did.
fn promote(candidate: &Candidate, checksum: u64) -> bool {
    let Some(space_ref) = candidate.space.upgrade() else {
        return false;
    };
    let mut space = space_ref.lock();
    let Some((pte, frame)) = mergeable_frame_at(&space, candidate.page) else {
        return false;
    };
    write_protect(&mut space, candidate.page, pte);
    // Read-only now: the bytes the checksum is taken from stay.
    if memops::user_page_checksum(frame) != checksum {
        return false; // written since the scan saw it: left read-only, a write fault reuses it
    }
    let at = space.family_page(candidate.page);
    let mut stable = STABLE.lock();
    frame::with_desc(frame, |d| d.make_ksm());
    stable.insert(frame.pfn(), checksum, alloc::vec![at]);
    true
}

/// Write-protects the PTE `pte` of `page` (the TLB entry flushed): the page's bytes
/// cannot change until a write fault, which the caller's lock holds off.
fn write_protect(space: &mut AddressSpace, page: Page, pte: Pte) {
    if pte.flags().contains(PteFlags::WRITABLE) {
        let flags = (pte.flags() - PteFlags::WRITABLE) | PteFlags::COW;
        space.replace_pte(page, Pte::new(pte.frame(), flags));
    }
}

/// Replaces the page at `page` of `space` by a merged frame with the same bytes
/// and checksum, if there is one: the page is write-protected, compared with each
/// candidate, then mapped to the merged frame and its own frame freed. Returns true
/// if it was merged. Called with the space locked.
fn merge_into_stable(space: &mut AddressSpace, page: Page, checksum: u64) -> bool {
    let Some((pte, frame)) = mergeable_frame_at(space, page) else {
        return false;
    };
    write_protect(space, page, pte);
    let at = space.family_page(page);
    let merged = {
        let mut stable = STABLE.lock();
        let found = stable.with_checksum(checksum).iter().map(|&pfn| Frame::from_pfn(pfn)).find(|&k| {
            // Take a reference only on a frame not on its way out (refcount 0: its
            // last holder is about to call `forget`), nor under I/O (LOCKED: an
            // eviction on another CPU unmaps it and hands its bytes to the disk).
            memops::user_pages_equal(frame, k)
                && frame::with_desc(k, |d| {
                    let is_live = d.refcount() > 0 && !d.has_flags(FrameFlags::LOCKED);
                    if is_live {
                        d.get_ref();
                        d.add_mapping(at);
                    }
                    is_live
                })
        });
        if let Some(k) = found {
            stable.add_place(k.pfn(), at);
        }
        found
    };
    let Some(k) = merged else {
        return false; // no equal page: stays write-protected, a write fault reuses it
    };
    let flags = (pte.flags() - PteFlags::WRITABLE - PteFlags::DIRTY) | PteFlags::COW;
    let old = space.replace_pte(page, Pte::new(k, flags));
    rmap::unmap(frame, at, old.flags().contains(PteFlags::DIRTY));
    PAGES_MERGED.fetch_add(1, Ordering::Relaxed);
    true
}

/// Records one more mapping of `frame` at `at` (swap-in, the undo of an eviction):
/// `rmap::map` for every frame, because a frame mapped at a second place becomes
/// a merged page here (see the module docs).
pub fn map_place(frame: Frame, at: FamilyPage) {
    map_place_if(frame, at, |_| true);
}

/// [`map_place`] if `is_mappable` says yes to `frame`'s descriptor, asked in the
/// same hold of the frame lock that adds the mapping; returns false (nothing done)
/// if it says no. A swap fault maps so (`rmap::map_if_still_cached`).
pub fn map_place_if(frame: Frame, at: FamilyPage, is_mappable: impl FnOnce(&frame::FrameDesc) -> bool) -> bool {
    let mut stable = STABLE.lock();
    let added = frame::with_desc(frame, |d| is_mappable(d).then(|| d.add_mapping_or_merge(at)));
    let Some(added) = added else { return false };
    match added {
        MappingAdded::AtItsPlace => {}
        MappingAdded::Merged => {
            let is_listed = stable.add_place(frame.pfn(), at);
            debug_assert!(is_listed, "ksm::map_place: merged {frame:?} is not in the stable index");
        }
        MappingAdded::BecameMerged { previous } => {
            // Mapped read-only by both (a slot shared by two families is never
            // mapped writable): the bytes are stable.
            let checksum = memops::user_page_checksum(frame);
            stable.insert(frame.pfn(), checksum, alloc::vec![previous, at]);
        }
    }
    true
}

/// Returns the places that may map merged `frame` (empty if it is not merged).
pub fn places(frame: Frame) -> Vec<FamilyPage> {
    STABLE.lock().node(frame.pfn()).map(|n| n.places.clone()).unwrap_or_default()
}

/// Forgets merged `frame`, whose last reference is gone (it is being freed).
pub fn forget(frame: Frame) {
    STABLE.lock().remove(frame.pfn());
}

/// Returns every merged frame with its places (for the audit).
pub fn snapshot() -> Vec<(Frame, Vec<FamilyPage>)> {
    let stable = STABLE.lock();
    stable.check_invariants();
    stable.pfns().into_iter().map(|pfn| (Frame::from_pfn(pfn), stable.node(pfn).map(|n| n.places.clone()).unwrap_or_default())).collect()
}

/// Gives every page of `[start, end)` that maps a merged frame its own copy
/// (same bytes, same PTE flags). Fails with ENOMEM if a frame cannot be had (the
/// pages done so far stay done).
pub fn unmerge_range(space: &mut AddressSpace, start: VirtAddr, end: VirtAddr) -> Result<(), VmError> {
    let mut addr = start;
    while addr < end {
        let page = Page::containing_address(addr);
        addr = addr + PAGE_SIZE;
        let Some(pte) = space.pte(page.start_address()) else {
            continue;
        };
        if !pte.is_present() || !frame::with_desc(pte.frame(), |d| d.is_ksm()) {
            continue;
        }
        break_share(space, page, pte)?;
    }
    Ok(())
}

/// Maps a private copy of the merged frame `pte` maps at `page` in its place.
fn break_share(space: &mut AddressSpace, page: Page, pte: Pte) -> Result<(), VmError> {
    let merged = pte.frame();
    let mut copy = NewPage::alloc().map_err(|_| VmError::NoMemory)?;
    copy.copy_from(merged); // read-only everywhere: nobody writes it meanwhile
    let copy = copy.into_mapped();
    let old = space.replace_pte(page, Pte::new(copy, pte.flags()));
    let at = space.family_page(page);
    rmap::map_new(copy, at);
    rmap::unmap(merged, at, old.flags().contains(PteFlags::DIRTY));
    PAGES_UNMERGED.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
