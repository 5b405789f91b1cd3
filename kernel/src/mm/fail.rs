//! Fault injection: makes chosen frame allocations fail on purpose, so that the
//! paths that handle running out of memory run, and can be tested, without
//! actually running out (Linux's `fail_page_alloc`).
//!
//! The plan (`mm_core::fail_inject::FailPlan`: which sites, every Nth or P %
//! seeded, at most M times) comes from the kernel command line at boot,
//! `fail=user+pt,every=7` (syntax in `mm_core::fail_inject`), or from a test
//! through [`start`] and [`stop`]. [`frame::alloc_leaving`](super::frame::alloc_leaving)
//! asks [`should_fail`] before each allocation of a covered site; an injected
//! failure returns `OutOfMemory` exactly as an empty free list would, and the
//! caller's usual handling follows: reclaim and retry, `ENOMEM`, or the OOM killer.
//!
//! Lock state: [`PLAN`] is a leaf lock, taken with any other lock held.
#![deny(unsafe_code)]

use core::sync::atomic::{AtomicBool, Ordering};

pub use mm_core::fail_inject::{FailPlan, FailSite};

use crate::sync::IrqMutex;

/// The plan in force, if any.
static PLAN: IrqMutex<Option<FailPlan>> = IrqMutex::new_ranked(crate::sync::LockRank::FailPlan, None);
/// True while a plan is in force: the allocation fast path reads only this.
static IS_ON: AtomicBool = AtomicBool::new(false);

/// Starts the plan the command line gives (`fail=...`), if any. Called at the end
/// of boot, so the kernel's own start-up allocations are not failed.
pub fn init() {
    let Some(text) = crate::cmdline::value("fail") else { return };
    match FailPlan::parse(text) {
        Ok(plan) => {
            crate::println!("fail: injecting allocation failures: {text}");
            start(plan);
        }
        Err(e) => crate::println!("fail: ignoring fail={text}: {e}"),
    }
}

/// Puts `plan` in force (replacing any other).
pub fn start(plan: FailPlan) {
    *PLAN.lock() = Some(plan);
    IS_ON.store(true, Ordering::Release);
}

/// Ends fault injection; returns the plan's (covered allocations, failures injected).
pub fn stop() -> (u64, u64) {
    IS_ON.store(false, Ordering::Release);
    PLAN.lock().take().map_or((0, 0), |plan| plan.counts())
}

/// Returns the plan's (covered allocations, failures injected) so far; (0, 0) if none.
pub fn counts() -> (u64, u64) {
    PLAN.lock().as_ref().map_or((0, 0), |plan| plan.counts())
}

/// Returns true while a plan is in force (asks nothing of it: for paths that
/// leave every injected allocation to the general path).
#[inline]
pub fn is_armed() -> bool {
    IS_ON.load(Ordering::Acquire)
}

/// Decides whether this allocation at `site` fails (and counts it).
pub fn should_fail(site: FailSite) -> bool {
    if !IS_ON.load(Ordering::Acquire) {
        return false;
    }
    PLAN.lock().as_mut().is_some_and(|plan| plan.should_fail(site))
}
