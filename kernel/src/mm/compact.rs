//! Compaction: moving user pages out of a 2 MiB-aligned block of physical memory
//! so that the block becomes free and the buddy allocator can hand it out whole
//! (for a transparent huge page).
//!
//! ```text
//!  block B (512 frames):  [F . U U . K ...]   F free, U movable user page, K anything else
//!  1. pick B: no K frame in it, the fewest U frames (frame::block_census)
//!  2. for each U: a new frame D outside B; copy U to D; every PTE that maps U
//!     (found by the reverse map, each space locked) now maps D with the same
//!     flags, flushed from the TLB; U's references move to D; U is freed
//!  3. all 512 frames free: the buddy allocator merges them into one order-9 block
//! ```
//! Movable means a mapped 4 KiB user frame whose only references are its PTEs
//! (`frame::is_movable`): pinned pages (a `process_vm_readv` copy in progress),
//! pages locked for I/O or in the swap cache, huge pages, page tables and every
//! kernel frame stay where they are, and a block holding one is not chosen.
//! A page whose space cannot be locked (busy) is not moved: the block fails (a
//! counted failure). The page cache (another engineer's) can join by giving its
//! frames a way to be found and rewritten: [`migrate_frame`] needs only "every
//! place that maps this frame" and "rewrite that place".
//!
//! Triggered when a huge-page fault finds no free order-9 block
//! (`thp::try_huge_fault`, with the faulting space already locked: it is passed in
//! so its PTEs can be rewritten) and by an explicit request, [`compact_memory`].
//! Counted: pages migrated, blocks freed, failures.
//!
//! Single CPU: while the spaces are locked (IRQs off), no user code runs, so the
//! copy cannot miss a write. With several CPUs user code of a locked space may run
//! on another CPU, so every PTE of the page is first write-protected and shot down
//! (`arch::shootdown`), then copied, then pointed at the new frame (Linux makes them
//! migration entries, non-present; read-only suffices here, since a read of the old
//! frame during the copy sees the same bytes).
//!
//! Locks: entered with at most the faulting space locked; other spaces by
//! `try_lock`; then `FAMILIES`, the policy and the frame lock, in the order `crate::mm` gives.
#![deny(unsafe_code)]

use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use super::addr_space::AddressSpace;
use super::frame::{self, FrameFlags, NewPage};
use super::paging::Pte;
use super::rmap::{self, FamilyPage};
use super::thp::PAGES_PER_HUGE;
use super::Frame;

static PAGES_MIGRATED: AtomicU64 = AtomicU64::new(0);
static BLOCKS_FREED: AtomicU64 = AtomicU64::new(0);
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// Compaction's counters (Linux's `compact_migrate_scanned` family, simplified).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactCounters {
    /// User pages moved to another frame.
    pub pages_migrated: u64,
    /// 2 MiB blocks made wholly free.
    pub blocks_freed: u64,
    /// Blocks given up (a page could not be moved, or no frame to move it to).
    pub failures: u64,
}

/// Returns the counters.
pub fn counters() -> CompactCounters {
    CompactCounters {
        pages_migrated: PAGES_MIGRATED.load(Ordering::Relaxed),
        blocks_freed: BLOCKS_FREED.load(Ordering::Relaxed),
        failures: FAILURES.load(Ordering::Relaxed),
    }
}

/// Prints the counters.
pub fn print_counters() {
    let c = counters();
    crate::println!("compaction: {} pages migrated, {} blocks freed, {} failures", c.pages_migrated, c.blocks_freed, c.failures);
}

/// Why a page or a block could not be moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompactError {
    /// The frame is not movable any more (pinned, in the swap cache, unmapped...).
    NotMovable(Frame),
    /// An address space that maps the page is locked by someone else.
    Busy(Frame),
    /// No free frame outside the block to move a page to.
    NoFrame,
    /// The block holds a frame compaction leaves alone.
    UnmovableBlock,
    /// No block is made only of free and movable frames.
    NoCandidate,
}

/// Frees one 2 MiB block for a huge page: tries the candidate blocks with the
/// fewest pages to move first (up to three). `current` is the caller's locked
/// space, if any. Returns the block's first frame.
pub fn compact_one_block(mut current: Option<&mut AddressSpace>) -> Result<Frame, CompactError> {
    // Pre-zeroed frames (`zero_pool.rs`) are free memory held aside: a block with
    // one in it could never be freed whole, so they go back to the buddy first; so
    // do the frames on the per-CPU lists (`pcp.rs`), which look allocated.
    super::zero_pool::drain();
    super::pcp::drain_all();
    let mut candidates = candidate_blocks();
    candidates.sort_by_key(|&(_, nr_movable)| nr_movable);
    for &(first, _) in candidates.iter().take(3) {
        if compact_block(first, current.as_deref_mut()).is_ok() {
            return Ok(first);
        }
    }
    Err(CompactError::NoCandidate)
}

/// The explicit request (Linux's `/proc/sys/vm/compact_memory`): compacts every
/// candidate block once; returns how many blocks were freed.
pub fn compact_memory() -> u64 {
    super::zero_pool::drain();
    super::pcp::drain_all();
    candidate_blocks().into_iter().filter(|&(first, _)| compact_block(first, None).is_ok()).count() as u64
}

/// Returns the 2 MiB blocks made only of free and movable frames, with at least
/// one movable, and how many movable frames each holds.
fn candidate_blocks() -> Vec<(Frame, u64)> {
    let (first, nr) = frame::managed_frames();
    let start = first.pfn().next_multiple_of(PAGES_PER_HUGE);
    let end = first.pfn() + nr;
    (start..end.saturating_sub(PAGES_PER_HUGE - 1))
        .step_by(PAGES_PER_HUGE as usize)
        .map(Frame::from_pfn)
        .filter_map(|block| {
            let census = frame::block_census(block, PAGES_PER_HUGE)?;
            (census.nr_unmovable == 0 && census.nr_movable > 0).then_some((block, census.nr_movable))
        })
        .collect()
}

/// Moves every movable page out of the block at `first` (2 MiB-aligned); returns
/// the number moved. On success all of its frames are free.
pub fn compact_block(first: Frame, mut current: Option<&mut AddressSpace>) -> Result<u64, CompactError> {
    let range = first.pfn()..first.pfn() + PAGES_PER_HUGE;
    let census = frame::block_census(first, PAGES_PER_HUGE).ok_or(CompactError::UnmovableBlock)?;
    if census.nr_unmovable > 0 {
        FAILURES.fetch_add(1, Ordering::Relaxed);
        return Err(CompactError::UnmovableBlock);
    }
    // Frames allocated as destinations that fell inside the block: held until the
    // end so the allocator does not offer them again, then freed with it.
    let mut set_aside: Vec<NewPage> = Vec::new();
    let mut nr_moved = 0;
    let mut result = Ok(());
    for pfn in range.clone() {
        let frame = Frame::from_pfn(pfn);
        if frame::is_movable(frame) {
            match migrate_frame(frame, &range, current.as_deref_mut(), &mut set_aside) {
                Ok(()) => nr_moved += 1,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
    }
    drop(set_aside);
    // The moved pages' old frames were freed onto this CPU's per-CPU list (`pcp.rs`):
    // back to the buddy allocator, so the block can merge whole.
    super::pcp::drain_all();
    PAGES_MIGRATED.fetch_add(nr_moved, Ordering::Relaxed);
    let is_free = frame::block_census(first, PAGES_PER_HUGE).is_some_and(|c| c.nr_free == PAGES_PER_HUGE);
    match result {
        Ok(()) if is_free => {
            BLOCKS_FREED.fetch_add(1, Ordering::Relaxed);
            Ok(nr_moved)
        }
        Ok(()) => {
            FAILURES.fetch_add(1, Ordering::Relaxed);
            Err(CompactError::UnmovableBlock) // something was allocated in it meanwhile
        }
        Err(e) => {
            FAILURES.fetch_add(1, Ordering::Relaxed);
            Err(e)
        }
    }
}

/// Moves the user page in `src` to a new frame outside `block`, rewriting every
/// PTE that maps it (see the module docs). Changes nothing if it fails.
pub fn migrate_frame(
    src: Frame,
    block: &Range<u64>,
    current: Option<&mut AddressSpace>,
    set_aside: &mut Vec<NewPage>,
) -> Result<(), CompactError> {
    let candidates = rmap::candidates(src);
    let current_id = current.as_ref().map(|s| s.id());
    // Lock every other space of the family that may map it (try_lock: never wait).
    let mut guards = Vec::new();
    for c in &candidates {
        if Some(c.id) != current_id {
            guards.push((c.page, c.space.try_lock().ok_or(CompactError::Busy(src))?));
        }
    }
    let page = candidates.first().map(|c| c.page).ok_or(CompactError::NotMovable(src))?;
    // The PTEs that map it: in the current space and in the locked others.
    let in_current = current.as_ref().and_then(|s| rmap::pte_mapping(s, page, src));
    let in_others: Vec<(usize, Pte)> =
        guards.iter().enumerate().filter_map(|(i, (p, g))| rmap::pte_mapping(g, *p, src).map(|pte| (i, pte))).collect();
    let nr_ptes = in_others.len() as u32 + u32::from(in_current.is_some());
    let (map_count, refcount, flags, place) = frame::with_desc(src, |d| (d.map_count(), d.refcount(), d.flags(), d.family_page()));
    if !frame::is_movable(src) || nr_ptes != map_count || refcount != map_count {
        return Err(CompactError::NotMovable(src));
    }
    let at: FamilyPage = place.ok_or(CompactError::NotMovable(src))?;
    // A destination outside the block.
    let mut dest = loop {
        let new = NewPage::alloc().map_err(|_| CompactError::NoFrame)?;
        if block.contains(&new.frame().pfn()) {
            set_aside.push(new);
            continue;
        }
        break new;
    };
    // With several CPUs, user code of these spaces runs on other CPUs without their
    // locks: write-protect every PTE (a downgrade, so shot down on every CPU that has
    // the space loaded) before the copy, so that no write lands in `src` after it.
    // A write meanwhile faults and waits for the space lock; by then the PTE names
    // `dest`, writable again. The entries read back carry the latest Dirty bit.
    let (mut in_current, mut in_others) = (in_current, in_others);
    let mut current = current;
    if crate::arch::smp::nr_online() > 1 {
        let read_only = |pte: Pte| Pte::new(src, pte.flags() - super::paging::PteFlags::WRITABLE);
        if let (Some(space), Some(pte)) = (current.as_deref_mut(), in_current) {
            in_current = Some(space.replace_pte(page, read_only(pte)));
        }
        for (i, pte) in in_others.iter_mut() {
            *pte = guards[*i].1.replace_pte(page, read_only(*pte));
        }
    }
    dest.copy_from(src);
    let dest = dest.into_mapped();
    frame::map_new_user_page(dest, at);
    for _ in 1..nr_ptes {
        frame::add_mapping_refs(&[(dest, at)]);
    }
    if flags.contains(FrameFlags::LAZYFREE) {
        frame::with_desc(dest, |d| d.insert_flags(FrameFlags::LAZYFREE));
    }
    // Every PTE now names the new frame, with its flags (Dirty, Accessed) kept.
    if let (Some(space), Some(pte)) = (current, in_current) {
        space.replace_pte(page, Pte::new(dest, pte.flags()));
    }
    for (i, pte) in in_others {
        guards[i].1.replace_pte(page, Pte::new(dest, pte.flags()));
    }
    super::reclaim::track(dest);
    // The old frame's references go; the last one frees it.
    for _ in 0..nr_ptes {
        let (refcount, _, _) = frame::drop_mapping_ref(src, at, false);
        if refcount == 0 {
            rmap::free_user_frame(src);
        }
    }
    Ok(())
}
