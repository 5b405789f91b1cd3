//! The fault fast path: the two faults a program takes most, the first write to an
//! anonymous page and the copy-on-write copy after fork, each done in one short
//! function that takes every lock once (Linux's `do_anonymous_page` and
//! `wp_page_copy` are the same idea). Everything else goes the general way
//! ([`super::handle_page_fault_after_read`]'s decision tree), unchanged.
//!
//! ```text
//!  try_fault(space, addr, error code)                the space's lock held
//!    refuse (None: the general path decides) unless all of:
//!      user address; error code "write, not present" or "write, present"
//!      no memory group (space.memcg == 0)
//!      the VMA found by the tree's one-entry cache or one lookup: anonymous,
//!        private, writable (so no stack growth, no file, no image)
//!      a level-1 table covers the page (so no huge page is possible, nor tables
//!        to create: `may_be_huge` wants no table)
//!      not present: the PTE is empty (no swap entry)
//!      a frame at hand: the pre-zeroed pool, or this CPU's page list (refilled
//!        from the buddy allocator when empty, as always); fault injection off
//!    write, not present  ->  zero it (unless pre-zeroed), write the PTE through
//!                            the walk's slot, map_new (rmap + policy, one hold
//!                            of each lock), rss and counters
//!    write, present      ->  decide's write-protect row (the frame lock once):
//!                            CopyOnWrite / ReplaceZeroPage: copy or zero into
//!                            the frame at hand, as above, then unmap the old
//!                            frame; MakeWritable: cow::do_wp_fault, as always
//! ```
//! Before the lock: a first write (write, not present) on a CPU whose last one was
//! mapped here as an anonymous page gets its zeroed frame in `fault_in`, before the
//! space's lock is taken ([`zeroed_before_lock`]), so two threads of one process
//! zero their pages at once and hold the lock they share only for the walk, the
//! PTE and the bookkeeping; a first write refused here frees that frame and stops
//! the guessing until the next anonymous page.
//!
//! What the general path does around the fault is shared, not skipped: `fault_in`
//! (retry.rs) enters the fast path before its retry loop, after the checks the
//! loop makes first (kswapd's wake-up at the watermarks, the heap's headroom; the
//! memory-group charge has nothing to do for a space the fast path takes), and does
//! what the loop does after a success (the resident limit, the fault traces); what
//! the fast path refuses or fails goes into the loop, which tries it again (through
//! `handle_page_fault_after_read`, which tries the fast path first too).
//! So is the OOM path: a fault that finds no frame at hand goes the general way,
//! which drains the pools, reclaims, or calls the OOM killer. The counts a
//! fault leaves (RSS, minor and COW faults, the pre-zeroed pool's counters, the
//! per-CPU list's hits, the frame's map count and place, the policy's ring) are
//! those the general path leaves; `mm::check` audits them.
//!
//! Counters: [`nr_fast_faults`] (faults resolved here), for tests and the book.
//!
//! Lock state: enters and returns with the address-space lock held. Under it, in
//! turn: the frame lock (COW: `decide`'s question), this CPU's page-list lock
//! (the frame lock inside it for a refill), the policy lock with the frame lock
//! inside it once (the mapping and the ring insert), the frame lock (COW: the old
//! frame's unmap); the lock order of `crate::mm` throughout.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mm_core::fault::{Access, FaultAction, allows, decide, leaf_flags_for};
use mm_core::pagetable::LeafSlot;

use crate::arch::smp::{MAX_CPUS, cpu_id};

use super::super::addr_space::{AddressSpace, Backing};
use super::super::frame::NewPage;
use super::super::paging::{Pte, PteFlags};
use super::super::{Page, VirtAddr, rmap};
use super::{FaultError, FaultOutcome, KernelFacts};

/// Error-code bits the fast path looks at: present, write, reserved bit, fetch.
const CODE_MASK: u64 = 0b1_1011;
/// "Write to a page not present" (from ring 3 or from the kernel's user copies).
const WRITE_NOT_PRESENT: u64 = 0b10;
/// "Write to a present page".
const WRITE_PRESENT: u64 = 0b11;

/// Faults the fast path resolved: anonymous first writes, and write-protect faults.
static NR_FAST_ANONYMOUS: AtomicU64 = AtomicU64::new(0);
static NR_FAST_WRITE_PROTECT: AtomicU64 = AtomicU64::new(0);
/// Frames zeroed before the space's lock ([`zeroed_before_lock`]): mapped, and freed unused.
static NR_ZEROED_EARLY: AtomicU64 = AtomicU64::new(0);
static NR_ZEROED_EARLY_UNUSED: AtomicU64 = AtomicU64::new(0);

/// Faults resolved by the fast path since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastFaults {
    /// First writes to anonymous pages (a zeroed frame mapped).
    pub anonymous: u64,
    /// Writes to write-protected pages (copy-on-write copies, zero-page
    /// replacements and reuses).
    pub write_protect: u64,
    /// Anonymous pages whose frame was zeroed before the space's lock was taken.
    pub zeroed_early: u64,
    /// Frames zeroed before the lock for a first write the fast path then refused
    /// (freed unused: the cost of guessing).
    pub zeroed_early_unused: u64,
}

/// Returns how many faults the fast path resolved since boot.
pub fn nr_fast_faults() -> FastFaults {
    FastFaults {
        anonymous: NR_FAST_ANONYMOUS.load(Ordering::Relaxed),
        write_protect: NR_FAST_WRITE_PROTECT.load(Ordering::Relaxed),
        zeroed_early: NR_ZEROED_EARLY.load(Ordering::Relaxed),
        zeroed_early_unused: NR_ZEROED_EARLY_UNUSED.load(Ordering::Relaxed),
    }
}

/// Returns true if a fault with `error_code` at `addr` may be one the fast path
/// takes (a write to a user address): what [`try_fault`] checks first, without
/// the space's lock, so that `fault_in` takes that lock twice only for the write
/// faults the fast path then refuses.
#[inline]
pub(super) fn may_take(addr: VirtAddr, error_code: u64) -> bool {
    let code = error_code & CODE_MASK;
    (code == WRITE_NOT_PRESENT || code == WRITE_PRESENT) && addr.is_lower_half()
}

/// Per CPU: whether the last first-write fault (write, not present) this CPU took
/// was resolved here as an anonymous page. While it is, the next one gets its
/// zeroed frame before the space's lock is taken ([`zeroed_before_lock`]); a
/// refused one (a file page, a swap entry, a memory group's space, no level-1
/// table yet) turns it off until the fast path maps an anonymous page again, so a
/// frame zeroed for nothing costs one refusal, not every one.
static ANONYMOUS_STREAK: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// For a first write (write, not present) while this CPU's last one was an
/// anonymous page: a zeroed frame taken and zeroed now, before `fault_in` takes
/// the space's lock, so that threads of one process faulting at once zero their
/// pages in parallel instead of one after another under the lock they share
/// (Linux's `do_anonymous_page` also allocates and zeroes before it takes the
/// page-table lock). `None` otherwise; [`try_fault`] then takes one under the lock.
#[inline]
pub(super) fn zeroed_before_lock(error_code: u64) -> Option<NewPage> {
    if error_code & CODE_MASK != WRITE_NOT_PRESENT || !ANONYMOUS_STREAK[cpu_id()].load(Ordering::Relaxed) {
        return None;
    }
    NewPage::take_listed_zeroed()
}

/// Records how the first-write fault just handled on this CPU went (see
/// [`ANONYMOUS_STREAK`]).
#[inline]
fn note_first_write(is_anonymous: bool) {
    ANONYMOUS_STREAK[cpu_id()].store(is_anonymous, Ordering::Relaxed);
}

/// Resolves the fault at `addr` if it is one the fast path takes (module docs);
/// `None` if not, with nothing changed: the caller takes the general path.
/// `zeroed` is a frame [`zeroed_before_lock`] took for a first write: used for
/// the anonymous page, or freed (a first write refused here).
#[inline(always)] // into `fault_in`: out of line, its frame costs the COW fault ~40 instructions
pub(super) fn try_fault(space: &mut AddressSpace, addr: VirtAddr, error_code: u64, zeroed: Option<NewPage>) -> Option<Result<FaultOutcome, FaultError>> {
    let code = error_code & CODE_MASK;
    let had_zeroed = zeroed.is_some();
    let result = try_fault_rows(space, addr, code, zeroed);
    if code == WRITE_NOT_PRESENT {
        let is_anonymous = matches!(result, Some(Ok(FaultOutcome::AnonymousPage)));
        // A frame zeroed before the lock means the streak was on: written only when
        // it changes (no store on the common fault, an anonymous page in a streak).
        if is_anonymous != had_zeroed {
            note_first_write(is_anonymous);
        }
        if had_zeroed {
            // Mapped if the anonymous row ran; freed (dropped unused) otherwise.
            let counter = if is_anonymous { &NR_ZEROED_EARLY } else { &NR_ZEROED_EARLY_UNUSED };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
    result
}

/// [`try_fault`]'s rows, with the error code masked.
#[inline(always)]
fn try_fault_rows(space: &mut AddressSpace, addr: VirtAddr, code: u64, zeroed: Option<NewPage>) -> Option<Result<FaultOutcome, FaultError>> {
    if !(code == WRITE_NOT_PRESENT || code == WRITE_PRESENT) || !addr.is_lower_half() || space.memcg != 0 {
        return None;
    }
    // Only the VMA's protection is kept: the anonymous row needs nothing else, and
    // the write-protect row finds the VMA again in the tree's cache (one compare),
    // so no copy of it is carried across the walk.
    let prot = {
        let vma = space.vmas.find_copy(addr)?;
        if vma.backing != Backing::Anonymous || vma.flags.is_shared() || !allows(vma.prot, Access::Write) {
            return None;
        }
        vma.prot
    };
    let page = Page::containing_address(addr);
    let slot = space.pt.leaf_slot(&space.tables, page)?;
    let pte = slot.read(&space.tables);
    if code == WRITE_NOT_PRESENT {
        if !pte.is_unused() {
            return None;
        }
        // decide_empty's row for a write to an anonymous page: MapZeroedFrame
        // with the VMA's protection's leaf flags (read here without the VMA copy).
        let flags = leaf_flags_for(prot);
        let new = match zeroed {
            Some(new) => new,
            None => NewPage::take_listed_zeroed()?,
        };
        map_new_page(space, slot, page, new, flags);
        NR_FAST_ANONYMOUS.fetch_add(1, Ordering::Relaxed);
        space.stats.minor_faults += 1;
        return Some(Ok(FaultOutcome::AnonymousPage));
    }
    if !pte.is_present() || pte.flags().contains(PteFlags::WRITABLE) {
        return None;
    }
    let outcome = write_protect_fault(space, addr, slot, pte)?;
    if outcome.is_ok() {
        NR_FAST_WRITE_PROTECT.fetch_add(1, Ordering::Relaxed);
        space.stats.minor_faults += 1;
    }
    Some(outcome)
}

/// A write to the present, read-only `pte` (at `slot`) at `addr`, in a private,
/// writable, anonymous VMA: what `decide` says, with the copy into a frame at hand;
/// the rest (a reuse in place, or no frame at hand) as `cow::do_wp_fault` does it.
/// `None` (nothing changed) if the tree has no VMA at `addr`, which
/// [`try_fault`] has just found.
#[inline(never)]
fn write_protect_fault(space: &mut AddressSpace, addr: VirtAddr, slot: LeafSlot, pte: Pte) -> Option<Result<FaultOutcome, FaultError>> {
    let vma = space.vmas.find_copy(addr)?;
    Some(write_protect_fault_in(space, slot, pte, &vma))
}

/// [`write_protect_fault`] with the VMA found.
#[inline]
fn write_protect_fault_in(space: &mut AddressSpace, slot: LeafSlot, pte: Pte, vma: &super::Vma) -> Result<FaultOutcome, FaultError> {
    let action = decide(Some(vma), Access::Write, Some(pte), &KernelFacts);
    let (flags, is_zero_page) = match action {
        FaultAction::CopyOnWrite { flags } => (flags, false),
        FaultAction::ReplaceZeroPage { flags } => (flags, true),
        _ => return super::super::cow::do_wp_fault(space, slot, pte, action),
    };
    let Some(new) = NewPage::take_listed() else {
        return super::super::cow::do_wp_fault(space, slot, pte, action);
    };
    Ok(super::super::cow::map_private_copy(space, slot, pte, new, flags, is_zero_page))
}

/// Maps the zeroed `new` at `page` through `slot` (the entry was empty) with
/// `flags`, and records it: RSS, the reverse map and the policy.
#[inline]
fn map_new_page(space: &mut AddressSpace, slot: LeafSlot, page: Page, new: NewPage, flags: PteFlags) {
    let entry = Pte::new(new.frame(), (flags - PteFlags::HUGE) | PteFlags::PRESENT);
    let (old, flush) = space.pt.write_slot(&mut space.tables, slot, entry);
    debug_assert!(old.is_unused(), "fault::fast: {page:?} held {old:?}");
    flush.ignore(); // the entry was empty: nothing cached
    let frame = new.into_mapped();
    space.stats.rss_pages += 1;
    rmap::map_new(frame, space.family_page(page));
}
