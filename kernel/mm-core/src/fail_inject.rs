//! Fault injection for memory allocations: which allocations to fail, and when
//! (Linux's `fail_page_alloc` / `failslab` idea, `Documentation/fault-injection`).
//!
//! A [`FailPlan`] names the allocation *sites* it covers and a *rule*: fail every
//! Nth allocation at those sites, or each one with probability P (from a seeded
//! [`XorShift`], so a run is reproducible), optionally at most `times` failures in
//! all. The kernel parses it from its command line (`fail=...`) or a test builds
//! one, and asks [`FailPlan::should_fail`] before each covered allocation; an
//! injected failure looks to the caller exactly like running out of frames.
//!
//! The text form (`fail=` on the kernel command line):
//!
//! ```text
//!  fail=SITES,every=N[,times=M]
//!  fail=SITES,percent=P[,seed=S][,times=M]
//!  SITES = user | pt | stack | all, joined with '+'   e.g. user+pt
//! ```
//! `user`: user pages (anonymous, COW copies, swap-in and readahead frames);
//! `pt`: page-table pages; `stack`: kernel stacks (fork, spawn). `every=1` fails
//! every covered allocation; `percent` is 1..=100; the seed defaults to 1.
//!
//! The kernel heap (`GlobalAlloc`) is not a site: most of its callers (`Box`,
//! `Vec::push`, `BTreeMap::insert`) cannot see a failure and would panic; they are
//! protected by the heap's emergency pool instead.

use core::fmt;

use crate::xorshift::XorShift;

/// An allocation site fault injection can cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FailSite {
    /// A user page: demand-zero, COW copy, swap-in, readahead.
    UserPage = 0,
    /// A page-table page.
    PageTable = 1,
    /// A kernel-stack frame.
    KernelStack = 2,
}

impl FailSite {
    /// Every site, in the order of their bits.
    pub const ALL: [FailSite; 3] = [FailSite::UserPage, FailSite::PageTable, FailSite::KernelStack];

    /// Returns the name used in the text form.
    pub const fn name(self) -> &'static str {
        match self {
            FailSite::UserPage => "user",
            FailSite::PageTable => "pt",
            FailSite::KernelStack => "stack",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// When a covered allocation fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailRule {
    /// Every `n`th covered allocation (the `n`th, `2n`th, ...).
    Every(u64),
    /// Each covered allocation with probability `percent`/100.
    Percent {
        /// The failure probability in percent, 1..=100.
        percent: u8,
        /// The seeded generator that draws the decisions.
        rng: XorShift,
    },
}

/// Which allocations fail and when; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailPlan {
    sites: u8,
    rule: FailRule,
    /// Failures still allowed (`None`: unlimited).
    times_left: Option<u64>,
    nr_seen: u64,
    nr_injected: u64,
}

/// Why a `fail=` text was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailParseError(pub &'static str);

impl fmt::Display for FailParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (syntax: SITES,every=N[,times=M] or SITES,percent=P[,seed=S][,times=M]; SITES = user|pt|stack|all joined with '+')", self.0)
    }
}

impl FailPlan {
    /// Creates a plan failing every `n`th allocation (`n` >= 1) at `sites`.
    pub fn every(sites: &[FailSite], n: u64) -> FailPlan {
        FailPlan::new(sites, FailRule::Every(n.max(1)))
    }

    /// Creates a plan failing each allocation at `sites` with probability
    /// `percent`/100 (clamped to 1..=100), drawn from a generator seeded with `seed`.
    pub fn percent(sites: &[FailSite], percent: u8, seed: u64) -> FailPlan {
        FailPlan::new(sites, FailRule::Percent { percent: percent.clamp(1, 100), rng: XorShift(seed.max(1)) })
    }

    fn new(sites: &[FailSite], rule: FailRule) -> FailPlan {
        let sites = sites.iter().fold(0, |bits, site| bits | site.bit());
        FailPlan { sites, rule, times_left: None, nr_seen: 0, nr_injected: 0 }
    }

    /// Returns the plan with at most `times` failures in all.
    pub fn times(mut self, times: u64) -> FailPlan {
        self.times_left = Some(times);
        self
    }

    /// Parses the text form (see the module docs), e.g. `user+pt,every=7`.
    pub fn parse(text: &str) -> Result<FailPlan, FailParseError> {
        let mut parts = text.split(',');
        let mut sites = 0u8;
        for name in parts.next().unwrap_or("").split('+') {
            sites |= match name {
                "all" => FailSite::ALL.iter().fold(0, |bits, s| bits | s.bit()),
                _ => FailSite::ALL.iter().find(|s| s.name() == name).ok_or(FailParseError("unknown site"))?.bit(),
            };
        }
        let (mut every, mut percent, mut seed, mut times) = (None, None, 1u64, None);
        for part in parts {
            let (key, value) = part.split_once('=').ok_or(FailParseError("expected key=value"))?;
            let value: u64 = value.parse().map_err(|_| FailParseError("not a number"))?;
            match key {
                "every" if value >= 1 => every = Some(value),
                "percent" if (1..=100).contains(&value) => percent = Some(value as u8),
                "seed" => seed = value,
                "times" => times = Some(value),
                "every" | "percent" => return Err(FailParseError("every must be >= 1, percent 1..=100")),
                _ => return Err(FailParseError("unknown key")),
            }
        }
        let rule = match (every, percent) {
            (Some(n), None) => FailRule::Every(n),
            (None, Some(percent)) => FailRule::Percent { percent, rng: XorShift(seed.max(1)) },
            _ => return Err(FailParseError("give exactly one of every= and percent=")),
        };
        Ok(FailPlan { sites, rule, times_left: times, nr_seen: 0, nr_injected: 0 })
    }

    /// Returns true if the plan covers `site`.
    pub fn covers(&self, site: FailSite) -> bool {
        self.sites & site.bit() != 0
    }

    /// Decides whether the next allocation at `site` fails, and counts it.
    pub fn should_fail(&mut self, site: FailSite) -> bool {
        if !self.covers(site) || self.times_left == Some(0) {
            return false;
        }
        self.nr_seen += 1;
        let is_failing = match &mut self.rule {
            FailRule::Every(n) => self.nr_seen.is_multiple_of(*n),
            FailRule::Percent { percent, rng } => rng.below(100) < u64::from(*percent),
        };
        if is_failing {
            self.nr_injected += 1;
            if let Some(left) = &mut self.times_left {
                *left -= 1;
            }
        }
        is_failing
    }

    /// Returns (covered allocations seen, failures injected).
    pub fn counts(&self) -> (u64, u64) {
        (self.nr_seen, self.nr_injected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_nth_covered_allocation_fails_and_other_sites_never() {
        let mut plan = FailPlan::parse("user+pt,every=3").unwrap();
        let fails: std::vec::Vec<bool> = (0..6).map(|_| plan.should_fail(FailSite::UserPage)).collect();
        assert_eq!(fails, [false, false, true, false, false, true]);
        assert!(!plan.should_fail(FailSite::KernelStack), "stack is not covered");
        let fails: std::vec::Vec<bool> = (0..3).map(|_| plan.should_fail(FailSite::PageTable)).collect();
        assert_eq!(fails, [false, false, true], "pt shares the count: the 9th covered allocation fails");
        assert_eq!(plan.counts(), (9, 3));
    }

    #[test]
    fn percent_is_reproducible_from_the_seed_and_near_its_rate() {
        let run = |seed| {
            let mut plan = FailPlan::parse(&std::format!("all,percent=10,seed={seed}")).unwrap();
            (0..10_000).map(|_| plan.should_fail(FailSite::UserPage)).collect::<std::vec::Vec<bool>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
        let nr_failed = run(7).iter().filter(|&&f| f).count();
        assert!((800..1200).contains(&nr_failed), "{nr_failed} of 10 000 at 10 %");
    }

    #[test]
    fn times_caps_the_failures() {
        let mut plan = FailPlan::parse("stack,every=1,times=2").unwrap();
        let nr_failed = (0..10).filter(|_| plan.should_fail(FailSite::KernelStack)).count();
        assert_eq!(nr_failed, 2);
        assert!(FailPlan::every(&[FailSite::UserPage], 1).times(1).should_fail(FailSite::UserPage));
    }

    #[test]
    fn bad_text_is_refused_with_the_syntax() {
        for bad in ["", "disk,every=2", "user", "user,every=0", "user,percent=101", "user,every=2,percent=5", "user,every=x", "user,often=2"] {
            let error = FailPlan::parse(bad).err().unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(std::format!("{error}").contains("syntax"), "{bad:?}: {error}");
        }
        assert!(FailPlan::parse("all,percent=100,seed=3,times=5").is_ok());
    }
}
