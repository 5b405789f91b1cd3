//! LIRS (Jiang and Zhang, SIGMETRICS 2002): replacement by inter-reference recency,
//! which keeps most of a loop larger than memory resident where LRU keeps none of
//! it. Needs to see every access, so it runs in the simulator only (see [`super`]).
//!
//! Exact LRU ranks a page by its *recency* (the distinct pages used since its last
//! use). LIRS ranks it by its *inter-reference recency* (IRR: the distinct pages
//! used between its last two uses), which says how soon a page comes back, not
//! just how lately it was seen. Pages with a small IRR are LIR pages: always
//! resident, nearly all of memory. The others are HIR pages: a few frames (one in
//! [`HIR_SHARE`]) hold the last HIR pages used, in a FIFO queue Q, and the victim is
//! always Q's oldest. A HIR page whose new IRR is smaller than the recency of the
//! oldest LIR page becomes LIR, and that LIR page is demoted to HIR.
//!
//! The IRRs are not counted: stack S holds the pages in recency order (LIR pages,
//! resident HIR pages and *ghosts*, HIR pages evicted lately, names without a
//! frame), and S is *pruned* so its bottom is always a LIR page. A HIR page found
//! in S when used again was used more recently than the oldest LIR page was: its
//! IRR is smaller than that page's recency, so it becomes LIR. A HIR page not in S
//! stays HIR.
//!
//! On a loop over more pages than frames, the LIR pages are used once per pass,
//! so each keeps a small IRR and stays; the loop's remaining pages pass through
//! Q's few frames and fault each pass, but the LIR ones hit. LRU evicts every
//! page just before its next use and faults on every reference.
//!
//! Here S and Q are ordered maps keyed by a logical time stamp, and the number of
//! frames is not given: a page faulted in becomes LIR while the LIR pages are fewer
//! than the resident ones less their HIR share (memory still filling), HIR after.
//! S is emptied with the last resident page.
//!
//! **The ghosts are bounded**: at most as many as the most pages ever resident at
//! once (the memory size m, once memory has filled). Pruning alone does not bound
//! them: S reaches down to the oldest LIR page, and under weak locality (a LIR page
//! not used for a long time) every page used since is in S, a ghost once evicted,
//! so S grows with the distinct pages the string uses. The LIRS paper gives no
//! number for the non-resident entries (so says Caffeine's simulator, whose
//! `LirsPolicy` defaults to 2m and notes that the authors' reference code has a
//! similar limit; the paper's own text was not at hand here). m is the bound of
//! the authors' follow-up, CLOCK-Pro (Jiang, Chen and Zhang, USENIX 2005, and
//! [`super::ClockPro`] here): at most m non-resident cold pages, so at most 2m
//! names in all. It was chosen to match CLOCK-Pro before any replay, not tuned.
//! When a new ghost would make one too many, the ghost deepest in S (the largest
//! recency, the next to be pruned anyway) is forgotten.

use alloc::collections::BTreeMap;

use super::{PageProbe, ReplacementPolicy};

/// Resident HIR pages are kept at one in this many resident pages (at least 1):
/// the paper's 1 %.
pub const HIR_SHARE: usize = 100;

/// What a page is to LIRS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// Low IRR: resident, in S.
    Lir,
    /// High IRR, resident: in Q, and in S if used lately.
    ResidentHir,
    /// High IRR, evicted: in S only (a ghost).
    Ghost,
}

/// One page's entry.
#[derive(Clone, Copy, Debug)]
struct Entry {
    status: Status,
    /// Its stamp in S, if it is in S.
    in_stack: Option<u64>,
    /// Its stamp in Q, if it is in Q (resident HIR pages only).
    in_queue: Option<u64>,
}

/// LIRS: LIR pages (small inter-reference recency) resident, HIR pages in a small FIFO.
#[derive(Clone, Debug, Default)]
pub struct Lirs {
    entries: BTreeMap<u64, Entry>,
    /// Stack S: stamp -> page, the bottom (oldest) first.
    stack: BTreeMap<u64, u64>,
    /// The ghosts, by their stamp in S: stamp -> page, the deepest first.
    ghosts: BTreeMap<u64, u64>,
    /// The most pages resident at once so far: the ghosts' bound.
    nr_resident_max: usize,
    /// Queue Q: stamp -> page, the oldest (next victim) first.
    queue: BTreeMap<u64, u64>,
    nr_lir: usize,
    now: u64,
}

impl Lirs {
    /// Creates an empty LIRS policy.
    pub fn new() -> Lirs {
        Lirs::default()
    }

    /// Returns (LIR pages, resident HIR pages, ghosts in S).
    pub fn set_sizes(&self) -> (usize, usize, usize) {
        (self.nr_lir, self.queue.len(), self.ghosts.len())
    }

    /// Returns the most ghosts kept: the most pages resident at once so far.
    pub fn ghost_limit(&self) -> usize {
        self.nr_resident_max
    }

    /// Returns true if `page` is a LIR page.
    pub fn is_lir(&self, page: u64) -> bool {
        self.entries.get(&page).is_some_and(|e| e.status == Status::Lir)
    }

    /// Returns the most LIR pages `nr_resident` resident pages may hold.
    fn lir_limit(nr_resident: usize) -> usize {
        nr_resident.saturating_sub((nr_resident / HIR_SHARE).max(1))
    }

    fn stamp(&mut self) -> u64 {
        self.now += 1;
        self.now
    }

    /// Moves `page` (with an entry) to the top of S.
    fn move_to_stack_top(&mut self, page: u64) {
        let stamp = self.stamp();
        let entry = self.entries.get_mut(&page).expect("lirs: move_to_stack_top of an unknown page");
        if let Some(old) = entry.in_stack.replace(stamp) {
            self.stack.remove(&old);
        }
        self.stack.insert(stamp, page);
    }

    /// Moves `page` (with an entry, resident) to the tail of Q.
    fn move_to_queue_tail(&mut self, page: u64) {
        let stamp = self.stamp();
        let entry = self.entries.get_mut(&page).expect("lirs: move_to_queue_tail of an unknown page");
        if let Some(old) = entry.in_queue.replace(stamp) {
            self.queue.remove(&old);
        }
        self.queue.insert(stamp, page);
    }

    /// Takes `page` out of Q if it is there.
    fn out_of_queue(&mut self, page: u64) {
        if let Some(entry) = self.entries.get_mut(&page)
            && let Some(old) = entry.in_queue.take()
        {
            self.queue.remove(&old);
        }
    }

    /// Pops HIR pages off S's bottom until a LIR page is there (or S is empty);
    /// a ghost popped is forgotten.
    fn prune(&mut self) {
        while let Some((&stamp, &page)) = self.stack.first_key_value() {
            let entry = self.entries.get_mut(&page).expect("lirs: a page in S without an entry");
            if entry.status == Status::Lir {
                return;
            }
            self.stack.remove(&stamp);
            entry.in_stack = None;
            if entry.status == Status::Ghost {
                self.ghosts.remove(&stamp);
                self.entries.remove(&page);
            }
        }
    }

    /// Makes `page`, evicted from Q's head and in S, a ghost; while there are more
    /// ghosts than [`Lirs::ghost_limit`], forgets the deepest in S. S's bottom is a
    /// LIR page, so no ghost is at the bottom, but S is pruned as after any removal.
    fn make_ghost(&mut self, page: u64) {
        let entry = self.entries.get_mut(&page).expect("lirs: make_ghost of an unknown page");
        let stamp = entry.in_stack.expect("lirs: a ghost must be in S");
        entry.status = Status::Ghost;
        self.ghosts.insert(stamp, page);
        while self.ghosts.len() > self.ghost_limit() {
            let Some((stamp, page)) = self.ghosts.pop_first() else { break };
            self.stack.remove(&stamp);
            self.entries.remove(&page);
        }
        self.prune();
    }

    /// Demotes S's bottom LIR page to Q's tail, then prunes; false if S is empty.
    fn demote_bottom(&mut self) -> bool {
        let Some((_, page)) = self.stack.pop_first() else { return false };
        let entry = self.entries.get_mut(&page).expect("lirs: a page in S without an entry");
        debug_assert_eq!(entry.status, Status::Lir, "lirs: S's bottom is not LIR");
        entry.status = Status::ResidentHir;
        entry.in_stack = None;
        self.nr_lir -= 1;
        self.move_to_queue_tail(page);
        self.prune();
        true
    }

    /// Demotes LIR pages from S's bottom while they are over their limit.
    fn demote_excess(&mut self) {
        while self.nr_lir > Lirs::lir_limit(self.nr_tracked()) && self.demote_bottom() {}
    }

    /// `page`, a HIR page (resident or ghost) found in S, is used: it becomes LIR.
    fn promote(&mut self, page: u64) {
        self.out_of_queue(page);
        let entry = self.entries.get_mut(&page).expect("lirs: promoting an unknown page");
        if entry.status == Status::Ghost
            && let Some(stamp) = entry.in_stack
        {
            self.ghosts.remove(&stamp);
        }
        entry.status = Status::Lir;
        self.nr_lir += 1;
        self.move_to_stack_top(page);
        self.demote_excess();
    }

    /// Checks that the counts agree, S's bottom is LIR, Q holds exactly the
    /// resident HIR pages, S every LIR page and ghost, and the ghosts are within
    /// their bound.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let nr_lir = self.entries.values().filter(|e| e.status == Status::Lir).count();
        if nr_lir != self.nr_lir {
            return Err("nr_lir is off");
        }
        let nr_ghosts = self.entries.values().filter(|e| e.status == Status::Ghost).count();
        if nr_ghosts != self.ghosts.len() {
            return Err("the ghost index is off");
        }
        if self.ghosts.len() > self.ghost_limit() {
            return Err("more ghosts than their bound");
        }
        if self.nr_tracked() > self.nr_resident_max {
            return Err("more resident pages than the most seen");
        }
        if let Some((_, page)) = self.stack.first_key_value()
            && self.entries[page].status != Status::Lir
        {
            return Err("S's bottom is not a LIR page");
        }
        for (page, entry) in &self.entries {
            let in_q = entry.in_queue.is_some_and(|s| self.queue.get(&s) == Some(page));
            let in_s = entry.in_stack.is_some_and(|s| self.stack.get(&s) == Some(page));
            if in_q != (entry.status == Status::ResidentHir) {
                return Err("Q does not hold exactly the resident HIR pages");
            }
            if entry.status != Status::ResidentHir && !in_s {
                return Err("a LIR page or ghost is not in S");
            }
            if entry.status == Status::Ghost && entry.in_stack.is_none_or(|s| self.ghosts.get(&s) != Some(page)) {
                return Err("a ghost missing from the ghost index");
            }
            if entry.in_stack.is_some() != in_s || entry.in_queue.is_some() != in_q {
                return Err("a stamp names no place");
            }
        }
        if self.stack.len() + self.queue.len() < self.entries.len() {
            return Err("a stray entry");
        }
        Ok(())
    }
}

impl ReplacementPolicy for Lirs {
    fn name(&self) -> &'static str {
        "lirs"
    }
    fn nr_tracked(&self) -> usize {
        self.nr_lir + self.queue.len()
    }
    fn is_tracked(&mut self, page: u64) -> bool {
        self.entries.get(&page).is_some_and(|e| e.status != Status::Ghost)
    }
    /// A fault: a ghost becomes LIR; a page not in S becomes LIR while memory
    /// fills, else resident HIR.
    fn on_insert(&mut self, page: u64) {
        match self.entries.get(&page).map(|e| e.status) {
            Some(Status::Lir | Status::ResidentHir) => {}
            Some(Status::Ghost) => self.promote(page),
            None => {
                let is_lir = self.nr_lir < Lirs::lir_limit(self.nr_tracked() + 1);
                let status = if is_lir { Status::Lir } else { Status::ResidentHir };
                self.entries.insert(page, Entry { status, in_stack: None, in_queue: None });
                self.move_to_stack_top(page);
                if is_lir {
                    self.nr_lir += 1;
                } else {
                    self.move_to_queue_tail(page);
                }
                self.prune();
            }
        }
        self.nr_resident_max = self.nr_resident_max.max(self.nr_tracked());
    }
    fn on_access(&mut self, page: u64) {
        let Some(entry) = self.entries.get(&page).copied() else { return };
        match entry.status {
            Status::Ghost => {}
            Status::Lir => {
                self.move_to_stack_top(page);
                self.prune();
            }
            // In S, or the LIR pages are short of their limit (pages unmapped).
            Status::ResidentHir if entry.in_stack.is_some() || self.nr_lir < Lirs::lir_limit(self.nr_tracked()) => {
                self.promote(page);
            }
            Status::ResidentHir => {
                self.move_to_stack_top(page);
                self.move_to_queue_tail(page);
                self.prune(); // with no LIR page at all, S stays empty
            }
        }
    }
    fn on_remove(&mut self, page: u64) {
        let Some(entry) = self.entries.get(&page).copied() else { return };
        if entry.status == Status::Ghost {
            return;
        }
        self.out_of_queue(page);
        if let Some(stamp) = entry.in_stack {
            self.stack.remove(&stamp);
        }
        if entry.status == Status::Lir {
            self.nr_lir -= 1;
        }
        self.entries.remove(&page);
        self.prune();
    }
    /// Q's oldest page; it stays in S as a ghost if it is there (and the deepest
    /// ghost is forgotten if that makes one too many). With Q empty, S's bottom LIR
    /// page is demoted first.
    fn pick_victim(&mut self, _probe: &mut dyn PageProbe) -> Option<u64> {
        if self.queue.is_empty() {
            self.demote_bottom();
        }
        let (_, page) = self.queue.pop_first()?;
        let entry = self.entries.get_mut(&page).expect("lirs: a page in Q without an entry");
        entry.in_queue = None;
        if entry.in_stack.is_some() {
            self.make_ghost(page);
        } else {
            self.entries.remove(&page);
        }
        if self.nr_tracked() == 0 {
            self.entries.clear();
            self.stack.clear();
            self.ghosts.clear();
        }
        Some(page)
    }
}
