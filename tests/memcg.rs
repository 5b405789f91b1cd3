//! Memory limits (issue #15): `oom_score_adj` steers the OOM killer (-1000 is never
//! chosen), and a memory group over its `memory.max` reclaims its own pages and, when
//! that cannot help, gets its own OOM kill, leaving every other process alone.
//!
//! This image asks the runner for 64 MiB of RAM and 32 MiB of swap.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use kernel::mm::oom;
use kernel::mm::process_hooks;
use kernel::mm::vmstat::{self, SwapEvent};
use kernel::mm::memcg::{self, MemcgError};
use kernel::mm::{check, reclaim};
use kernel::proc::{self, Pid, sched, task, task::WaitStatus};

kernel::runner_args!(b"--memory 64M --swap-size 32M --timeout 240");

kernel::test_kernel!();

fn start(name: &str, args: &str) -> Pid {
    proc::spawn_with_args(name, args).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"))
}

/// Kills every user process left and reaps them all; waits for kswapd to rest.
fn end_all() {
    for p in process_hooks::user_processes() {
        task::kill(p.pid, format_args!("the test is over"));
    }
    task::wait_all(30_000).expect("every process exited");
    while reclaim::kswapd_state().1 {
        sched::yield_now();
    }
}

#[test_case]
fn oom_score_adj_is_checked() {
    let pid = start("sleeper", "");
    assert_eq!(task::set_oom_score_adj(pid, 1001), Err(abi::Errno::EINVAL));
    assert_eq!(task::set_oom_score_adj(pid, -1001), Err(abi::Errno::EINVAL));
    assert_eq!(task::set_oom_score_adj(999_999, 0), Err(abi::Errno::ESRCH));
    assert_eq!(task::set_oom_score_adj(pid, -500), Ok(0));
    assert_eq!(task::set_oom_score_adj(pid, 0), Ok(-500), "returns the old value");
    end_all();
}

#[test_case]
fn oom_score_adj_minus_1000_protects_the_process_that_would_be_chosen() {
    // Without an adjustment the hog, by far the largest, is the victim.
    let sleeper = start("sleeper", "");
    let hog = start("memhog", "");
    let (_, status) = proc::wait(Some(hog)).expect("wait");
    assert_eq!(status, WaitStatus::Killed(abi::SIGKILL), "memhog ends killed");
    assert_eq!(oom::last_victim(), hog, "the largest process was chosen");
    assert!(task::try_reap(sleeper).is_none(), "the sleeper was left alone");
    end_all();

    // With -1000 it is never chosen: the sleeper's processes go instead.
    let kills = vmstat::nr_events(SwapEvent::OomKill);
    let sleeper = start("sleeper", "");
    let hog = start("memhog", "");
    task::set_oom_score_adj(hog, -1000).expect("set");
    let (_, status) = proc::wait(Some(hog)).expect("wait");
    let victim = oom::last_victim();
    kernel::println!("memhog ({hog}) with adj -1000: {status:?}; last OOM victim pid {victim}; sleeper pid {sleeper}");
    assert!(vmstat::nr_events(SwapEvent::OomKill) > kills, "the OOM killer ran");
    assert_ne!(victim, hog, "-1000 is never chosen");
    assert!(victim >= sleeper, "a sleeper process was chosen instead");
    let (_, sleeper_status) = proc::wait(Some(sleeper)).expect("the sleeper was killed");
    assert_eq!(sleeper_status, WaitStatus::Killed(abi::SIGKILL));
    end_all();
    check::check_consistency().expect("consistent");
}

/// Starts `sleeper` (4 MiB, in the root group) and waits until it has filled its
/// pages and forked; returns its pid and resident pages.
fn start_sleeper() -> (Pid, u64) {
    let pid = start("sleeper", "");
    let mut rss = 0;
    while rss < 1024 || task::nr_tasks() < 3 {
        sched::yield_now();
        rss = task::ws_snapshot(pid).expect("sleeper alive").rss_pages;
    }
    (pid, rss)
}

#[test_case]
fn memcg_limits_are_checked() {
    assert_eq!(memcg::create(0, 0), Err(MemcgError::BadLimits));
    assert_eq!(memcg::create(100, 200), Err(MemcgError::BadLimits), "high above max");
    assert_eq!(memcg::stats(15), Err(MemcgError::NoSuchGroup));
    let pid = start("sleeper", "");
    assert_eq!(task::attach_memcg(pid, 15), Err(abi::Errno::EINVAL));
    end_all();
}

#[test_case]
fn a_group_over_high_reclaims_its_own_pages_first() {
    let (sleeper, sleeper_rss) = start_sleeper();
    let group = memcg::create(u64::MAX, 512).expect("group");
    let probe = start("wsprobe", "pages=1024 mapped=1024 rounds=3 write");
    task::attach_memcg(probe, group).expect("attach");
    let (_, status) = proc::wait(Some(probe)).expect("wait");
    assert_eq!(status, WaitStatus::Exited(0), "the group's process ran to the end");
    let stats = memcg::stats(group).expect("stats");
    kernel::println!("memory.high 512: {stats:?}; sleeper rss {sleeper_rss} -> {:?}", task::ws_snapshot(sleeper).map(|s| s.rss_pages));
    assert!(stats.nr_reclaimed >= 512, "local reclaim evicted the group's pages: {stats:?}");
    assert!(stats.peak_pages <= 512 + 16, "usage stayed near high: {stats:?}");
    assert_eq!(task::ws_snapshot(sleeper).expect("sleeper alive").rss_pages, sleeper_rss, "the process outside lost nothing");
    end_all();
    check::check_consistency().expect("consistent");
}

#[test_case]
fn a_group_over_max_is_oom_killed_alone_and_an_unlimited_process_is_untouched() {
    let (sleeper, sleeper_rss) = start_sleeper();
    let kills = vmstat::nr_events(SwapEvent::OomKill);
    let group = memcg::create(1024, 1024).expect("group");
    let hog = start("memhog", "");
    task::attach_memcg(hog, group).expect("attach");
    let (_, status) = proc::wait(Some(hog)).expect("wait");
    let stats = memcg::stats(group).expect("stats");
    kernel::println!("memory.max 1024: memhog {status:?}; {stats:?}");
    assert_eq!(status, WaitStatus::Killed(abi::SIGKILL), "memhog was killed");
    assert_eq!(oom::last_victim(), hog, "by its group's OOM kill");
    assert_eq!(stats.nr_oom_kills, 1, "{stats:?}");
    assert_eq!(vmstat::nr_events(SwapEvent::OomKill), kills + 1, "one kill in all");
    assert!(stats.peak_pages <= 1024 + 16, "usage stayed at max: {stats:?}");
    assert!(task::try_reap(sleeper).is_none(), "the unlimited process lives");
    assert_eq!(task::ws_snapshot(sleeper).expect("sleeper alive").rss_pages, sleeper_rss, "and lost no page");
    end_all();
    check::check_consistency().expect("consistent");
}

#[test_case]
fn the_syscalls_check_their_arguments_and_a_forked_child_stays_in_its_group() {
    let pid = start("memlimits", "");
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    assert_eq!(status, WaitStatus::Exited(0), "memlimits failed");
    end_all();
    check::check_consistency().expect("consistent");
}
