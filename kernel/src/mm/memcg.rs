//! Memory groups: cgroup v2's `memory.high` and `memory.max`, simplified.
//!
//! A group is a set of processes with a limit on the pages they hold in memory
//! together. Each address space names its group (`AddressSpace::memcg`; 0 is the
//! root group, unlimited); `fork` copies it, so children inherit it; a process is
//! put in a group by the `memcg_attach` syscall or [`attach`] (at spawn). Groups
//! are made by `memcg_create` / [`create`] with two limits in pages:
//!
//! ```text
//!  usage = sum of the resident pages (RSS) of the group's processes
//!  before every fault of a member (fault_in, no lock held):
//!    usage >= high:  local replacement: evict the group's *own* pages, those of
//!                    the faulting process first, coldest first (Accessed bit clear
//!                    since the last working-set sample), down to below high;
//!                    then go on (high is a soft limit: the fault proceeds)
//!    usage >= max:   the same, but the fault may proceed only below max; if nothing
//!                    of the group could be evicted (swap full), the group's own OOM
//!                    kill: the baddest *member* dies (oom::kill_in), nobody else
//! ```
//! What is simplified: usage is RSS (a page shared copy-on-write by two members
//! counts twice; swap and kernel memory are not charged); the check runs before a
//! fault, so usage may pass `max` by the pages of one fault; there is no hierarchy.
//!
//! The groups live in a fixed table of atomics ([`MAX_GROUPS`]), so no lock is
//! needed: limits are read and written whole, usage is recomputed from the spaces.
//! What it touches: address spaces (one lock at a time), reclaim (`evict_frames`),
//! the OOM killer; called with no lock held.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicU64, Ordering};

use super::fault::FaultError;
use super::oom::{self, OomOutcome};
use super::process_hooks;
use super::rmap::SpaceRef;
use super::{reclaim, wss};

/// A memory group's number (0: the root group, unlimited).
pub type GroupId = u32;

/// How many groups there can be (ids 1..MAX_GROUPS).
pub const MAX_GROUPS: usize = 16;
/// Pages local reclaim frees beyond what is needed, so that not every fault reclaims.
const RECLAIM_BATCH: u64 = 32;
/// Rounds of reclaim or OOM waits one fault makes before it gives up.
const MAX_ROUNDS: u32 = 16;

/// One group's limits and counters (a slot of [`GROUPS`]; `max == 0`: unused).
struct GroupSlot {
    max_pages: AtomicU64,
    high_pages: AtomicU64,
    peak_pages: AtomicU64,
    nr_reclaimed: AtomicU64,
    nr_oom_kills: AtomicU64,
}

static GROUPS: [GroupSlot; MAX_GROUPS] = [const {
    GroupSlot {
        max_pages: AtomicU64::new(0),
        high_pages: AtomicU64::new(0),
        peak_pages: AtomicU64::new(0),
        nr_reclaimed: AtomicU64::new(0),
        nr_oom_kills: AtomicU64::new(0),
    }
}; MAX_GROUPS];

/// A group's figures (for the syscall, tests and /proc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// `memory.max`, pages.
    pub max_pages: u64,
    /// `memory.high`, pages.
    pub high_pages: u64,
    /// Resident pages of its processes now.
    pub usage_pages: u64,
    /// The most usage seen at a check.
    pub peak_pages: u64,
    /// Pages its local reclaim evicted.
    pub nr_reclaimed: u64,
    /// Its own OOM kills.
    pub nr_oom_kills: u64,
}

/// Why a group could not be made or used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemcgError {
    /// A limit of 0, or high above max.
    BadLimits,
    /// All [`MAX_GROUPS`] slots are in use.
    NoFreeGroup,
    /// No such group.
    NoSuchGroup,
}

/// Creates a group with `memory.max` = `max_pages` and `memory.high` = `high_pages`
/// (`u64::MAX` for either: no limit); returns its id.
pub fn create(max_pages: u64, high_pages: u64) -> Result<GroupId, MemcgError> {
    if max_pages == 0 || high_pages == 0 || high_pages > max_pages {
        return Err(MemcgError::BadLimits);
    }
    for (id, slot) in GROUPS.iter().enumerate().skip(1) {
        if slot.max_pages.compare_exchange(0, max_pages, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            slot.high_pages.store(high_pages, Ordering::Release);
            HAS_GROUPS.store(true, Ordering::Release);
            for counter in [&slot.peak_pages, &slot.nr_reclaimed, &slot.nr_oom_kills] {
                counter.store(0, Ordering::Relaxed);
            }
            return Ok(id as GroupId);
        }
    }
    Err(MemcgError::NoFreeGroup)
}

/// Set once the first group is created (never cleared): until then [`charge`] has
/// nothing to check.
static HAS_GROUPS: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn slot(group: GroupId) -> Result<&'static GroupSlot, MemcgError> {
    let slot = GROUPS.get(group as usize).filter(|_| group != 0).ok_or(MemcgError::NoSuchGroup)?;
    if slot.max_pages.load(Ordering::Acquire) == 0 {
        return Err(MemcgError::NoSuchGroup);
    }
    Ok(slot)
}

/// Puts the process owning `space` in `group` (0: the root group).
pub fn attach(space: &SpaceRef, group: GroupId) -> Result<(), MemcgError> {
    if group != 0 {
        slot(group)?;
    }
    space.lock().memcg = group;
    Ok(())
}

/// Returns the spaces of `group`'s live processes.
fn members(group: GroupId) -> alloc::vec::Vec<process_hooks::UserProcess> {
    process_hooks::user_processes().into_iter().filter(|p| p.space.lock().memcg == group).collect()
}

/// Returns the resident pages of `group`'s processes.
fn usage(group: GroupId) -> u64 {
    members(group).iter().map(|p| p.space.lock().stats.rss_pages).sum()
}

/// Returns `group`'s figures.
pub fn stats(group: GroupId) -> Result<GroupStats, MemcgError> {
    let slot = slot(group)?;
    Ok(GroupStats {
        max_pages: slot.max_pages.load(Ordering::Acquire),
        high_pages: slot.high_pages.load(Ordering::Acquire),
        usage_pages: usage(group),
        peak_pages: slot.peak_pages.load(Ordering::Relaxed),
        nr_reclaimed: slot.nr_reclaimed.load(Ordering::Relaxed),
        nr_oom_kills: slot.nr_oom_kills.load(Ordering::Relaxed),
    })
}

/// Evicts up to `nr_wanted` of `group`'s own pages, `first`'s before the other
/// members', coldest first; returns the pages freed.
fn reclaim_local(group: GroupId, first: &SpaceRef, nr_wanted: u64) -> u64 {
    let mut spaces = alloc::vec![first.clone()];
    spaces.extend(members(group).into_iter().map(|p| p.space).filter(|s| !SpaceRef::ptr_eq(s, first)));
    let mut nr_freed = 0;
    for space in spaces {
        if nr_freed >= nr_wanted {
            break;
        }
        let frames = wss::resident_frames_coldest_first(&space.lock());
        let nr_take = ((nr_wanted - nr_freed) as usize).min(frames.len());
        nr_freed += reclaim::evict_frames(&frames[..nr_take]).nr_freed();
    }
    nr_freed
}

/// Checks `space`'s group before a fault (see the module docs): reclaims the
/// group's own pages over `high`, and at `max` with nothing to evict kills a member.
/// `Err(Killed)`: the faulting process was the one chosen. Call with no lock held.
#[inline]
pub fn charge(space: &SpaceRef) -> Result<(), FaultError> {
    // The fault path's common case: no group was ever made, so every process is in
    // the unlimited root group; say so with one load, inline, without the space's lock.
    if !HAS_GROUPS.load(Ordering::Acquire) {
        return Ok(());
    }
    charge_in_group(space)
}

/// [`charge`] once some group exists.
#[inline(never)]
fn charge_in_group(space: &SpaceRef) -> Result<(), FaultError> {
    let group = space.lock().memcg;
    if group == 0 {
        return Ok(());
    }
    let Ok(slot) = slot(group) else { return Ok(()) };
    let (max, high) = (slot.max_pages.load(Ordering::Acquire), slot.high_pages.load(Ordering::Acquire));
    for _ in 0..MAX_ROUNDS {
        let usage = usage(group);
        slot.peak_pages.fetch_max(usage, Ordering::Relaxed);
        if usage < high && usage < max {
            return Ok(());
        }
        let target = high.min(max).saturating_sub(RECLAIM_BATCH);
        let nr_freed = reclaim_local(group, space, usage - target);
        slot.nr_reclaimed.fetch_add(nr_freed, Ordering::Relaxed);
        if usage < max || nr_freed > 0 {
            // Over high only: the soft limit did its work. At max: look again.
            if usage < max {
                return Ok(());
            }
            continue;
        }
        // At max with nothing evictable: the group's own OOM kill.
        let scope = alloc::format!("memcg {group} (max {max} pages, usage {usage})");
        let outcome = oom::kill_in(&scope, |p| p.space.lock().memcg == group);
        if matches!(outcome, OomOutcome::Killed(_) | OomOutcome::KilledCurrent) {
            slot.nr_oom_kills.fetch_add(1, Ordering::Relaxed);
        }
        match outcome {
            OomOutcome::KilledCurrent => return Err(FaultError::Killed),
            OomOutcome::AlreadyDying(pid) if pid == process_hooks::current_pid() => return Err(FaultError::Killed),
            OomOutcome::Killed(_) | OomOutcome::AlreadyDying(_) => crate::sync::hooks::yield_now(),
            OomOutcome::NoVictim => return Err(FaultError::OutOfMemory),
        }
    }
    Ok(())
}
