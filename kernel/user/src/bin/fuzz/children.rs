//! The operations that fork: synchronous children, background children, reaping,
//! and forbidden accesses that must get a child killed.
//!
//! - A *synchronous* child verifies every inherited page, writes some private pages
//!   (the parent must not see them) and a planned set of shared pages (the parent
//!   must see them, and applies the same plan to its model after the child exits 0).
//! - A *background* child first unmaps every shared page (the parent goes on
//!   writing those), then runs its own seeded worker loop on the inherited private
//!   pages while the parent runs on: the two copies diverge under reclaim, swap
//!   and `MADV_PAGEOUT` (issue #10 item 8's mix). At most
//!   [`MAX_BACKGROUND`](super::worker::MAX_BACKGROUND) run at once.
//! - A *forbidden* access is announced on the console, then done by a child, which
//!   must be killed (`wait4` status: signal 9).

use ulib::syscall::syscall2;
use ulib::{Errno, Fork, Pid, SIGKILL, WaitStatus, nr, println};

use super::model::{self, MAX_BRK_PAGES, PAGE, Rng};
use super::worker::{MAX_BACKGROUND, Worker};

/// Shared pages a synchronous child writes for its parent to see.
const MAX_SHARED_WRITES: usize = 8;
/// Private pages a synchronous child writes (its parent must not see them).
const NR_PRIVATE_WRITES: usize = 8;

impl Worker<'_> {
    /// Forks, or fails the run if the kernel refuses.
    pub(super) fn fork_or_fail(&self, what: &str) -> Fork {
        match ulib::fork() {
            Ok(side) => side,
            Err(e) => self.fail(format_args!("fork ({what}) failed with {e:?}")),
        }
    }

    /// Waits for `pid`; fails the run unless it ended with `want`.
    pub(super) fn expect_status(&self, pid: Pid, want: WaitStatus, what: &str) {
        match ulib::waitpid(pid) {
            Ok((reaped, status)) if reaped == pid && status == want => {}
            other => self.fail(format_args!("{what} child {pid}: wait4 gave {other:?}, expected {want:?}")),
        }
    }

    pub(super) fn op_fork_sync(&mut self) {
        let mut plan = [usize::MAX; MAX_SHARED_WRITES];
        for slot in plan.iter_mut() {
            let i = self.rng.below(self.cfg.nr_arena as u64) as usize;
            let p = self.pages[i];
            if p.is_shared && p.is_writable() {
                *slot = i;
            }
        }
        let private_seed = self.rng.next();
        let slot = self.log.push(self.op_index, "fork-sync", [plan.iter().filter(|&&i| i != usize::MAX).count() as u64, 0, 0, 0]);
        let child_writer = self.writer ^ 0x8000;
        match self.fork_or_fail("synchronous") {
            Fork::Child => {
                self.writer = ulib::getpid() as u64;
                self.nr_background = 0; // the parent's, not ours
                self.verify_all();
                let mut rng = Rng::new(private_seed);
                for _ in 0..NR_PRIVATE_WRITES {
                    let i = rng.below(self.nr_pages() as u64) as usize;
                    let p = self.pages[i];
                    if p.is_writable() && !p.is_shared {
                        self.write_tag(i, model::make_tag(self.writer, self.op_index, i));
                        self.verify_page(i);
                    }
                }
                for &i in plan.iter().filter(|&&i| i != usize::MAX) {
                    self.write_tag(i, model::make_tag(child_writer, self.op_index, i));
                }
                ulib::exit(0)
            }
            Fork::Parent(pid) => {
                self.log.set_result(slot, pid);
                self.expect_status(pid, WaitStatus::Exited(0), "synchronous");
                for &i in plan.iter().filter(|&&i| i != usize::MAX) {
                    self.pages[i].tag = model::make_tag(child_writer, self.op_index, i);
                    self.verify_page(i);
                }
            }
        }
    }

    pub(super) fn op_fork_background(&mut self) {
        if self.depth > 0 || self.nr_background == MAX_BACKGROUND {
            return;
        }
        let child_seed = self.rng.next();
        let nr_ops = 100 + self.rng.below(400);
        let slot = self.log.push(self.op_index, "fork-background", [child_seed, nr_ops, 0, 0]);
        match self.fork_or_fail("background") {
            Fork::Child => {
                self.depth = 1;
                self.seed = child_seed;
                self.rng = Rng::new(child_seed);
                self.writer = ulib::getpid() as u64;
                self.nr_background = 0;
                self.op_index = 0;
                self.unmap_shared();
                self.verify_all();
                self.run_loop(nr_ops);
                ulib::exit(0)
            }
            Fork::Parent(pid) => {
                self.log.set_result(slot, pid);
                self.background[self.nr_background] = pid;
                self.nr_background += 1;
            }
        }
    }

    /// Unmaps every shared arena page (a background child's first step).
    fn unmap_shared(&mut self) {
        for i in 0..self.cfg.nr_arena {
            if self.pages[i].is_mapped && self.pages[i].is_shared {
                // SAFETY: arena pages hold no Rust object.
                let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, self.addr(i), PAGE) });
                if ret != Ok(0) {
                    self.fail(format_args!("munmap of shared page {:#x} = {ret:?}", self.addr(i)));
                }
                self.pages[i] = model::PageModel::default();
            }
        }
    }

    pub(super) fn op_reap(&mut self) {
        if self.nr_background > 0 {
            self.reap_one();
        }
    }

    /// Waits for any background child; it must have exited 0.
    pub(super) fn reap_one(&mut self) {
        let slot = self.log.push(self.op_index, "reap", [0; 4]);
        let (pid, status) = match ulib::wait() {
            Ok(done) => done,
            Err(e) => self.fail(format_args!("wait4 with {} background children: {e:?}", self.nr_background)),
        };
        self.log.set_result(slot, pid);
        let Some(k) = self.background[..self.nr_background].iter().position(|&b| b == pid) else {
            self.fail(format_args!("wait4 reaped {pid}, not a background child"));
        };
        if status != WaitStatus::Exited(0) {
            self.fail(format_args!("background child {pid} ended {status:?} (its MISMATCH report is above)"));
        }
        self.nr_background -= 1;
        self.background[k] = self.background[self.nr_background];
    }

    /// Picks a page and an access Linux refuses, announces it, and lets a child do
    /// it: the child must be killed.
    pub(super) fn op_forbidden(&mut self) {
        // The heap pages include the first ones above the break: unmapped.
        for _ in 0..8 {
            let i = self.rng.below((self.cfg.nr_arena + MAX_BRK_PAGES) as u64) as usize;
            let p = self.pages[i];
            let is_write = self.rng.percent(50);
            let is_forbidden = if is_write { !p.is_writable() } else { !p.is_readable() };
            if !is_forbidden {
                continue;
            }
            let addr = self.addr(i) + 8 * self.rng.below(512);
            let what = if is_write { "write" } else { "read" };
            let slot = self.log.push(self.op_index, "forbidden", [addr, u64::from(is_write), u64::from(p.prot), 0]);
            println!(
                "fuzz: seed {} op {}: expecting a kill: {what} at {addr:#x} ({} {})",
                self.seed,
                self.op_index,
                if p.is_mapped { model::prot_name(p.prot) } else { "unmapped" },
                if p.is_shared { "shared" } else { "private" }
            );
            match self.fork_or_fail("forbidden access") {
                Fork::Child => {
                    let ptr = addr as *mut u64;
                    // SAFETY: deliberately forbidden: the kernel must kill this
                    // process before the access completes; no Rust object is there.
                    unsafe {
                        if is_write {
                            ptr.write_volatile(0xbad);
                        } else {
                            let _ = ptr.read_volatile();
                        }
                    }
                    println!("fuzz: FAIL: the {what} at {addr:#x} did not kill the child");
                    ulib::exit(3)
                }
                Fork::Parent(pid) => {
                    self.log.set_result(slot, pid);
                    self.expect_status(pid, WaitStatus::Killed(SIGKILL), "forbidden-access");
                }
            }
            return;
        }
    }
}
