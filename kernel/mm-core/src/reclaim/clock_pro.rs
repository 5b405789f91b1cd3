//! CLOCK-Pro (Jiang, Chen and Zhang, USENIX 2005): LIRS approximated on one clock
//! with Accessed bits, as a kernel could run it (see [`super`] and [`super::Lirs`]).
//!
//! Every page is on one circular list in the order it was last moved to the *head*
//! (the place just behind the hot hand). A page is
//! - *hot* (LIRS's LIR: used twice within a short time), resident;
//! - *cold* (HIR), resident, possibly in its *test period*: used again while in
//!   it, the page has a short reuse distance and becomes hot;
//! - a *ghost*: a cold page evicted during its test period, a name without a frame,
//!   kept until the test period ends. The ghosts are bounded: the paper keeps at
//!   most m non-resident cold pages (m the memory size), and the test hand here
//!   keeps them at most the resident pages (m once memory is full), so the clock
//!   never holds more than 2m names ([`super::Lirs`] takes the same bound).
//!
//! Three hands go round, each caring for some pages:
//! - The **cold hand** finds the victim among resident cold pages: one not used since
//!   the hand last passed goes (a ghost if in its test period); a used one becomes
//!   hot if in its test period, else starts one; both move to the head.
//! - The **hot hand** keeps the hot pages at their share: an unused hot page is
//!   demoted to cold, a used one passed; a cold page it passes ends its test period
//!   (and a ghost is forgotten): its reuse distance would now exceed the hot pages'.
//! - The **test hand** ends test periods when there are more ghosts than resident
//!   pages.
//!
//! The cold pages' share `cold_target` adapts: one more when a page is used in its
//! test period (a bigger cold share would have kept it), one less when a test
//! period ends unused. A page faulted in is cold and in its test period; its
//! Accessed bit is the fault's own, so the cold hand clears it at its first pass
//! without counting it (as 2Q's probation does). A fault on a ghost makes the page
//! hot at once (its reuse distance is shorter than the oldest hot page's).
//!
//! Here the pages and links live in an ordered map keyed by page (the simulator's
//! page numbers). The kernel would need a name for a ghost once its frame is gone
//! (a frame number is reused at once), which it does not keep: so this runs in
//! the simulator only, for now.

use alloc::collections::BTreeMap;

use super::{PageProbe, ReplacementPolicy};

/// What a page on the clock is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Hot,
    Cold,
    Ghost,
}

/// One page on the clock.
#[derive(Clone, Copy, Debug)]
struct Node {
    prev: u64,
    next: u64,
    kind: Kind,
    /// In its test period (ghosts always are).
    in_test: bool,
    /// Faulted in and not yet passed by the cold hand: its Accessed bit is the fault's.
    is_new: bool,
}

/// Which hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hand {
    Hot,
    Cold,
    Test,
}

/// CLOCK-Pro: hot, cold and ghost pages on one clock with three hands.
#[derive(Clone, Debug)]
pub struct ClockPro {
    nodes: BTreeMap<u64, Node>,
    /// The hands: hot, cold, test; `None` exactly when the clock is empty.
    hands: [Option<u64>; 3],
    nr_hot: usize,
    nr_cold: usize,
    nr_ghosts: usize,
    cold_target: usize,
}

impl Default for ClockPro {
    fn default() -> ClockPro {
        ClockPro::new()
    }
}

impl ClockPro {
    /// Creates an empty clock.
    pub fn new() -> ClockPro {
        ClockPro { nodes: BTreeMap::new(), hands: [None; 3], nr_hot: 0, nr_cold: 0, nr_ghosts: 0, cold_target: 1 }
    }

    /// Returns (hot pages, resident cold pages, ghosts, the cold target).
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        (self.nr_hot, self.nr_cold, self.nr_ghosts, self.cold_target)
    }

    /// Returns true if `page` is hot.
    pub fn is_hot(&self, page: u64) -> bool {
        self.nodes.get(&page).is_some_and(|n| n.kind == Kind::Hot)
    }

    fn hand(&self, hand: Hand) -> Option<u64> {
        self.hands[hand as usize]
    }

    fn node(&mut self, page: u64) -> &mut Node {
        self.nodes.get_mut(&page).expect("clock-pro: a page on the clock without a node")
    }

    /// Moves `hand` to the page after the one it points at.
    fn advance(&mut self, hand: Hand) {
        if let Some(page) = self.hand(hand) {
            self.hands[hand as usize] = Some(self.nodes[&page].next);
        }
    }

    /// Links `page` (its node made by the caller, links ignored) at the head: just
    /// behind the hot hand; on an empty clock every hand points at it.
    fn link_at_head(&mut self, page: u64) {
        let Some(next) = self.hand(Hand::Hot) else {
            let node = self.node(page);
            (node.prev, node.next) = (page, page);
            self.hands = [Some(page); 3];
            return;
        };
        let prev = self.nodes[&next].prev;
        let node = self.node(page);
        (node.prev, node.next) = (prev, next);
        self.node(prev).next = page;
        self.node(next).prev = page;
    }

    /// Takes `page` off the circle (its node stays); a hand on it moves on.
    fn unlink(&mut self, page: u64) {
        let Node { prev, next, .. } = self.nodes[&page];
        for hand in &mut self.hands {
            if *hand == Some(page) {
                *hand = (next != page).then_some(next);
            }
        }
        if next != page {
            self.node(prev).next = next;
            self.node(next).prev = prev;
        }
    }

    fn move_to_head(&mut self, page: u64) {
        self.unlink(page);
        self.link_at_head(page);
    }

    /// Forgets a ghost.
    fn drop_ghost(&mut self, page: u64) {
        self.unlink(page);
        self.nodes.remove(&page);
        self.nr_ghosts -= 1;
    }

    /// A test period ended without a use: one cold page fewer wanted.
    fn test_expired(&mut self) {
        self.cold_target = self.cold_target.saturating_sub(1).max(1);
    }

    /// A page was used in its test period: one cold page more wanted.
    fn test_hit(&mut self) {
        let nr_resident = self.nr_hot + self.nr_cold;
        self.cold_target = (self.cold_target + 1).min(nr_resident.saturating_sub(1).max(1));
    }

    /// Returns true while there are more hot pages than their share.
    fn has_too_many_hot(&self) -> bool {
        let nr_resident = self.nr_hot + self.nr_cold;
        self.nr_hot > 0 && self.nr_hot > nr_resident.saturating_sub(self.cold_target)
    }

    /// Runs the hot hand until it has demoted one hot page (ending the test
    /// periods it passes), or found none to demote.
    fn run_hot_hand(&mut self, probe: &mut dyn PageProbe) {
        // Each node is passed at most twice (a used hot page loses its bit the first time).
        for _ in 0..2 * self.nodes.len() + 1 {
            if self.nr_hot == 0 {
                return;
            }
            let Some(page) = self.hand(Hand::Hot) else { return };
            let node = self.nodes[&page];
            self.advance(Hand::Hot);
            match node.kind {
                Kind::Hot if probe.test_and_clear_referenced(page) => {}
                Kind::Hot => {
                    *self.node(page) = Node { kind: Kind::Cold, in_test: false, is_new: false, ..node };
                    self.nr_hot -= 1;
                    self.nr_cold += 1;
                    return;
                }
                Kind::Cold if node.in_test => {
                    self.node(page).in_test = false;
                    self.test_expired();
                }
                Kind::Cold => {}
                Kind::Ghost => {
                    self.drop_ghost(page);
                    self.test_expired();
                }
            }
        }
    }

    /// Runs the test hand until there are no more ghosts than resident pages.
    fn run_test_hand(&mut self) {
        for _ in 0..self.nodes.len() + 1 {
            if self.nr_ghosts <= self.nr_hot + self.nr_cold {
                return;
            }
            let Some(page) = self.hand(Hand::Test) else { return };
            let node = self.nodes[&page];
            self.advance(Hand::Test);
            match node.kind {
                Kind::Ghost => {
                    self.drop_ghost(page);
                    self.test_expired();
                }
                Kind::Cold if node.in_test => {
                    self.node(page).in_test = false;
                    self.test_expired();
                }
                _ => {}
            }
        }
    }

    /// Checks the circle (every node on it once, links both ways), the counts and
    /// the hands.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let Some(start) = self.hands[0] else {
            return if self.nodes.is_empty() && self.hands == [None; 3] { Ok(()) } else { Err("hands without nodes") };
        };
        let (mut page, mut nr_seen) = (start, 0);
        let mut counts = [0usize; 3];
        loop {
            let node = self.nodes.get(&page).ok_or("a link to no node")?;
            if self.nodes.get(&node.next).ok_or("a next to no node")?.prev != page {
                return Err("links disagree");
            }
            counts[node.kind as usize] += 1;
            if node.kind == Kind::Ghost && !node.in_test {
                return Err("a ghost out of its test period");
            }
            nr_seen += 1;
            if nr_seen > self.nodes.len() {
                return Err("the circle is longer than the nodes");
            }
            page = node.next;
            if page == start {
                break;
            }
        }
        if nr_seen != self.nodes.len() || counts != [self.nr_hot, self.nr_cold, self.nr_ghosts] {
            return Err("counts are off");
        }
        if self.hands.iter().any(|h| h.is_none_or(|p| !self.nodes.contains_key(&p))) {
            return Err("a hand off the clock");
        }
        if self.nr_ghosts > self.nr_hot + self.nr_cold {
            return Err("more ghosts than resident pages");
        }
        Ok(())
    }
}

impl ClockPro {
    /// Evicts `page`, the resident cold page under the cold hand: a ghost if in
    /// its test period, forgotten if not; returns it.
    fn evict_at_cold_hand(&mut self, page: u64) -> u64 {
        self.advance(Hand::Cold);
        self.nr_cold -= 1;
        if self.nodes[&page].in_test {
            self.node(page).kind = Kind::Ghost;
            self.nr_ghosts += 1;
        } else {
            self.unlink(page);
            self.nodes.remove(&page);
        }
        if self.nr_tracked() == 0 {
            *self = ClockPro { cold_target: self.cold_target, ..ClockPro::new() };
        } else {
            self.run_test_hand();
        }
        page
    }
}

impl ReplacementPolicy for ClockPro {
    fn name(&self) -> &'static str {
        "clock-pro"
    }
    fn nr_tracked(&self) -> usize {
        self.nr_hot + self.nr_cold
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.nodes.get(&page).is_some_and(|n| n.kind != Kind::Ghost)
    }
    /// A ghost faulted back becomes hot; any other new page cold, in its test period.
    fn on_insert(&mut self, page: u64) {
        match self.nodes.get(&page).map(|n| n.kind) {
            Some(Kind::Hot | Kind::Cold) => {}
            Some(Kind::Ghost) => {
                *self.node(page) = Node { kind: Kind::Hot, in_test: false, is_new: false, ..self.nodes[&page] };
                self.nr_ghosts -= 1;
                self.nr_hot += 1;
                self.test_hit();
                self.move_to_head(page);
            }
            None => {
                let node = Node { prev: page, next: page, kind: Kind::Cold, in_test: true, is_new: true };
                self.nodes.insert(page, node);
                self.nr_cold += 1;
                self.link_at_head(page);
            }
        }
    }
    fn on_access(&mut self, _page: u64) {}
    fn on_remove(&mut self, page: u64) {
        let Some(node) = self.nodes.get(&page).copied() else { return };
        match node.kind {
            Kind::Ghost => return,
            Kind::Hot => self.nr_hot -= 1,
            Kind::Cold => self.nr_cold -= 1,
        }
        self.unlink(page);
        self.nodes.remove(&page);
        self.run_test_hand();
    }
    fn pick_victim(&mut self, probe: &mut dyn PageProbe) -> Option<u64> {
        while self.has_too_many_hot() {
            let nr_hot = self.nr_hot;
            self.run_hot_hand(probe);
            if self.nr_hot == nr_hot {
                break;
            }
        }
        // Each resident page is passed by the cold hand at most three times (new,
        // test started, promoted); the bound only guards against a broken probe.
        for _ in 0..4 * self.nodes.len() + 4 {
            if self.nr_cold == 0 {
                self.run_hot_hand(probe);
                if self.nr_cold == 0 {
                    return None;
                }
            }
            let page = self.hand(Hand::Cold)?;
            let node = self.nodes[&page];
            if node.kind != Kind::Cold {
                self.advance(Hand::Cold);
                continue;
            }
            let was_used = probe.test_and_clear_referenced(page);
            if node.is_new {
                self.node(page).is_new = false;
                self.advance(Hand::Cold);
            } else if was_used && node.in_test {
                self.node(page).kind = Kind::Hot;
                self.node(page).in_test = false;
                self.nr_cold -= 1;
                self.nr_hot += 1;
                self.test_hit();
                self.move_to_head(page);
                if self.has_too_many_hot() {
                    self.run_hot_hand(probe);
                }
            } else if was_used {
                self.node(page).in_test = true;
                self.move_to_head(page);
            } else {
                return Some(self.evict_at_cold_hand(page));
            }
        }
        // Only a probe that sets bits while we look gets here: take the next cold page.
        while self.nodes.get(&self.hand(Hand::Cold)?)?.kind != Kind::Cold {
            self.advance(Hand::Cold);
        }
        let page = self.hand(Hand::Cold)?;
        Some(self.evict_at_cold_hand(page))
    }
}
