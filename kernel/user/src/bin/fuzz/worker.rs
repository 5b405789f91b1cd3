//! A worker: one seeded run of random operations, each checked against the model.
//!
//! [`Worker::run`] draws `ops` operations from the seed's generator (see
//! [`Worker::step`] for the mix) and checks every answer and every word it reads
//! against [`super::model`]. On the first difference it prints the seed, the
//! operation index, the last operations and the command that replays the run, and
//! exits with 1. Children (synchronous, background, and the ones that make a
//! forbidden access) are forked from here; see `children.rs`.

use ulib::syscall::{syscall2, syscall3, syscall6};
use ulib::{Errno, Pid, madv, map, nr, println, prot};

use super::files::FileModel;
use super::garbage;
use super::log::OpLog;
use super::model::{self, ARENA_BASE, LAST_WORD, MAX_BRK_PAGES, PAGE, PageModel, Rng};

/// How the run is set up (from the command line).
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// Pages in the arena.
    pub nr_arena: usize,
    /// Operations per seed.
    pub nr_ops: u64,
    /// Self-test: the model is told one wrong thing at this operation (0: never),
    /// and the run must then fail; it proves the checks can fail.
    pub lie_at: u64,
    /// Pages of ballast: private memory each worker fills once and checks at the
    /// end, so that the arena's working set pushes the machine into reclaim.
    pub nr_ballast: usize,
}

/// At most this many background children run at once.
pub const MAX_BACKGROUND: usize = 3;
/// Operations between two full verifications of every page.
const FULL_VERIFY_EVERY: u64 = 4096;
/// Operations between two progress lines of the top-level worker.
const PROGRESS_EVERY: u64 = 1 << 13;

/// One process's run: its generator, model and log.
pub struct Worker<'m> {
    pub(super) cfg: Config,
    pub(super) rng: Rng,
    /// The seed of the top-level run (what replays it).
    pub(super) top_seed: u64,
    /// This process's own seed (the top seed, or a background child's).
    pub(super) seed: u64,
    /// Every page's expected state: the arena, then the heap pages.
    pub(super) pages: &'m mut [PageModel],
    /// The first page above the initial break (page-aligned).
    pub(super) brk_base: u64,
    /// The current break.
    pub(super) brk: u64,
    pub(super) log: OpLog,
    pub(super) op_index: u64,
    /// Distinguishes the tags this process writes from its parent's and children's.
    pub(super) writer: u64,
    /// 0 for the top-level worker, 1 in a background child.
    pub(super) depth: u32,
    pub(super) background: [Pid; MAX_BACKGROUND],
    pub(super) nr_background: usize,
    /// Operations done in this process (the budget counts the top level only).
    pub(super) nr_done: u64,
    /// The worker's file and its mappings (`files.rs`).
    pub(super) file: FileModel,
}

/// The result of a raw syscall as the log records it: the value, or `-errno`.
pub fn as_logged(ret: Result<u64, Errno>) -> i64 {
    match ret {
        Ok(v) => v as i64,
        Err(e) => -i64::from(e.0),
    }
}

impl<'m> Worker<'m> {
    /// Returns a worker for `seed` over the model memory `pages`
    /// (`cfg.nr_arena + MAX_BRK_PAGES` entries).
    pub fn new(cfg: Config, seed: u64, pages: &'m mut [PageModel]) -> Worker<'m> {
        let brk0 = ulib::brk(0).unwrap_or(0);
        let brk_base = brk0.next_multiple_of(PAGE as usize) as u64;
        Worker {
            cfg,
            rng: Rng::new(seed),
            top_seed: seed,
            seed,
            pages,
            brk_base,
            brk: brk0 as u64,
            log: OpLog::new(),
            op_index: 0,
            writer: ulib::getpid() as u64,
            depth: 0,
            background: [0; MAX_BACKGROUND],
            nr_background: 0,
            nr_done: 0,
            file: FileModel::new(),
        }
    }

    /// Returns the address of page index `i` (arena first, then heap pages).
    pub fn addr(&self, i: usize) -> u64 {
        if i < self.cfg.nr_arena {
            ARENA_BASE + i as u64 * PAGE
        } else {
            self.brk_base + (i - self.cfg.nr_arena) as u64 * PAGE
        }
    }

    /// Returns true if the fuzzer may read page `p` (Linux allows it: on x86 every
    /// mapping but PROT_NONE is readable).
    pub fn may_read(&self, p: PageModel) -> bool {
        p.is_readable()
    }

    /// Prints the failure with everything needed to replay it, and exits with 1.
    pub fn fail(&self, what: core::fmt::Arguments) -> ! {
        println!("fuzz: MISMATCH in pid {} (seed {}, op {}): {}", ulib::getpid(), self.seed, self.op_index, what);
        if self.seed != self.top_seed {
            println!("fuzz: (a background child; its parent runs seed {})", self.top_seed);
        }
        self.log.print();
        println!(
            "fuzz: replay: cargo run --release -- --cmdline \"run=fuzz seed={} ops={} pages={}\"",
            self.top_seed, self.cfg.nr_ops, self.cfg.nr_arena
        );
        // Reap every child first: none is left to its grandparent as an orphan.
        while ulib::wait().is_ok() {}
        ulib::exit(1)
    }

    /// Runs `nr_ops` operations from a fresh arena, verifies everything, reaps its
    /// children and gives the memory back; exits the process with 1 on a mismatch.
    pub fn run(&mut self, nr_ops: u64) {
        self.reset_arena();
        self.start_file();
        let ballast = self.map_ballast();
        self.run_loop(nr_ops);
        self.check_ballast(ballast);
        self.finish_file();
        self.release_all();
    }

    /// Maps and fills the ballast (see [`Config::nr_ballast`]); returns its start.
    fn map_ballast(&self) -> *mut u64 {
        if self.cfg.nr_ballast == 0 {
            return core::ptr::null_mut();
        }
        let len = self.cfg.nr_ballast * ulib::PAGE_SIZE;
        let Ok(base) = ulib::mmap(len, prot::READ | prot::WRITE, map::PRIVATE) else {
            self.fail(format_args!("mmap of {} ballast pages failed", self.cfg.nr_ballast));
        };
        let base = base.cast::<u64>();
        for page in 0..self.cfg.nr_ballast {
            // SAFETY: a fresh private read-write mapping of `nr_ballast` pages that
            // nothing else refers to; one word per page is enough to make it resident.
            unsafe {
                let p = base.add(page * (LAST_WORD + 1));
                p.write_volatile(ulib::pattern::word(self.seed, p as u64));
            }
        }
        base
    }

    /// Checks every word of the ballast and unmaps it.
    fn check_ballast(&self, base: *mut u64) {
        if base.is_null() {
            return;
        }
        for page in 0..self.cfg.nr_ballast {
            // SAFETY: the ballast is still mapped read-write; nothing else refers to it.
            let (addr, found) = unsafe {
                let p = base.add(page * (LAST_WORD + 1));
                (p as u64, p.read_volatile())
            };
            let want = ulib::pattern::word(self.seed, addr);
            if found != want {
                self.fail(format_args!("ballast word {addr:#x} holds {found:#x}, expected {want:#x}"));
            }
        }
        // SAFETY: as above; no reference into it survives this call.
        if let Err(e) = unsafe { ulib::munmap(base.cast(), self.cfg.nr_ballast * ulib::PAGE_SIZE) } {
            self.fail(format_args!("munmap of the ballast: {e:?}"));
        }
    }

    /// Runs `nr_ops` operations on the memory as it is (a background child starts
    /// from its parent's), then verifies every page and reaps its children.
    pub fn run_loop(&mut self, nr_ops: u64) {
        for _ in 0..nr_ops {
            if self.depth == 0 && self.cfg.lie_at != 0 && self.op_index == self.cfg.lie_at {
                self.tell_the_model_a_lie();
            }
            self.step();
            self.op_index += 1;
            self.nr_done += 1;
            if self.op_index.is_multiple_of(FULL_VERIFY_EVERY) {
                self.verify_all();
            }
            if self.depth == 0 && self.op_index.is_multiple_of(PROGRESS_EVERY) {
                self.print_progress();
            }
        }
        self.verify_all();
        while self.nr_background > 0 {
            self.reap_one();
        }
    }

    /// Prints how far the run is and how much memory it holds.
    pub fn print_progress(&self) {
        let stat = ulib::memstat().unwrap_or_default();
        let ksm_sharing = ulib::ksm_ctl(ulib::ksm_op::PAGES_SHARING, 0).unwrap_or_default();
        println!(
            "fuzz: seed {}: {} operations; {} pages resident, {} in swap; machine: {} free frames, {} swap reads, {} swap writes, {} pages merged (ksm pages_sharing)",
            self.seed, self.op_index, stat.rss_pages, stat.swap_pages, stat.free_frames, stat.swap_reads, stat.swap_writes, ksm_sharing
        );
    }

    /// Draws one operation and does it.
    fn step(&mut self) {
        match self.rng.below(1000) {
            0..230 => self.op_write(),
            230..250 => self.op_file(),
            250..420 => self.op_verify(),
            420..450 => self.op_fill(),
            450..530 => self.op_mmap_fixed(),
            530..555 => self.op_mmap_anywhere(),
            555..600 => self.op_munmap(),
            600..690 => self.op_mprotect(),
            690..800 => self.op_madvise(),
            800..835 => self.op_garbage(),
            835..845 => self.op_huge(),
            845..850 => self.op_ksm(),
            850..900 => self.op_brk(),
            900..955 => self.op_syscall_writes(),
            955..962 => self.op_fork_sync(),
            962..966 => self.op_fork_background(),
            966..990 => self.op_reap(),
            _ => self.op_forbidden(),
        }
    }

    /// Unmaps the whole arena and sets the break to its base: a known start.
    fn reset_arena(&mut self) {
        let len = self.cfg.nr_arena as u64 * PAGE;
        // SAFETY: the arena holds no Rust object; only the model describes it.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, ARENA_BASE, len) });
        if ret.is_err() {
            self.fail(format_args!("munmap of the whole arena: {ret:?}"));
        }
        if ulib::brk(self.brk_base as usize).is_err() {
            self.fail(format_args!("brk to the heap base {:#x} failed", self.brk_base));
        }
        self.brk = self.brk_base;
        self.pages.fill(PageModel::default());
    }

    /// Gives back the arena and the heap (the driver checks that every frame returns).
    fn release_all(&mut self) {
        // SAFETY: as in `reset_arena`.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, ARENA_BASE, self.cfg.nr_arena as u64 * PAGE) });
        if ret.is_err() {
            self.fail(format_args!("final munmap of the arena: {ret:?}"));
        }
        let _ = ulib::brk(self.brk_base as usize);
        self.pages.fill(PageModel::default());
    }

    /// Returns the total number of page indices (arena + heap).
    pub fn nr_pages(&self) -> usize {
        self.cfg.nr_arena + MAX_BRK_PAGES
    }

    /// Returns a random range `[first, end)` of page indices: of the arena when
    /// `arena_only`, else of the arena or of the heap pages.
    fn pick_range(&mut self, max_len: u64, arena_only: bool) -> (usize, usize) {
        let (lo, hi) = if arena_only || self.rng.percent(85) {
            (0, self.cfg.nr_arena)
        } else {
            (self.cfg.nr_arena, self.nr_pages())
        };
        let first = lo + self.rng.below((hi - lo) as u64) as usize;
        let end = (first + self.rng.length(max_len) as usize).min(hi);
        (first, end)
    }

    /// Reads page `i`'s check words (the caller knows it is readable).
    pub fn read_words(&self, i: usize) -> (u64, u64) {
        let p = self.addr(i) as *const u64;
        // SAFETY: the model says page `i` is mapped readable; it holds no Rust
        // object (arena or heap pages, touched only through these accesses).
        unsafe { (p.read_volatile(), p.add(LAST_WORD).read_volatile()) }
    }

    /// Writes `tag`'s words into page `i` and records it (the caller knows it is writable).
    pub fn write_tag(&mut self, i: usize, tag: u64) {
        let addr = self.addr(i);
        let (first, last) = model::expected_words(tag, addr);
        let p = addr as *mut u64;
        // SAFETY: the model says page `i` is mapped writable; no Rust object lives there.
        unsafe {
            p.write_volatile(first);
            p.add(LAST_WORD).write_volatile(last);
        }
        self.pages[i].tag = tag;
    }

    /// Checks page `i` against the model if the fuzzer may read it.
    /// The self-test (`lie=N`): changes what the model expects of one readable page
    /// that holds data, then verifies it; the check must now fail (and exit 1).
    /// Nothing is changed in the kernel's memory: only the expectation is wrong.
    fn tell_the_model_a_lie(&mut self) {
        let Some(i) = (0..self.pages.len()).find(|&i| self.may_read(self.pages[i]) && self.pages[i].tag != 0) else {
            println!("fuzz: lie: no page with data yet at op {}; the lie is not told", self.op_index);
            return;
        };
        println!("fuzz: lie: the model now expects page {:#x} to hold other data", self.addr(i));
        self.pages[i].tag ^= 1;
        self.verify_page(i);
    }

    pub fn verify_page(&self, i: usize) {
        let p = self.pages[i];
        if !self.may_read(p) {
            return;
        }
        let addr = self.addr(i);
        let want = model::expected_words(p.tag, addr);
        let found = self.read_words(i);
        if found != want {
            self.fail(format_args!(
                "page {addr:#x} ({} {}, tag {:#x}) holds {:#x} .. {:#x}, expected {:#x} .. {:#x}",
                model::prot_name(p.prot),
                if p.is_shared { "shared" } else { "private" },
                p.tag,
                found.0,
                found.1,
                want.0,
                want.1
            ));
        }
    }

    /// Checks every written page the model says is readable (a page never written
    /// would only fault in the zero page; [`Self::op_verify`] reads those).
    pub fn verify_all(&self) {
        for i in 0..self.nr_pages() {
            if self.pages[i].tag != 0 {
                self.verify_page(i);
            }
        }
    }

    pub(super) fn op_write(&mut self) {
        let (first, end) = self.pick_range(16, false);
        self.log.push(self.op_index, "write", [self.addr(first), (end - first) as u64, 0, 0]);
        for i in first..end {
            if self.pages[i].is_writable() {
                let tag = model::make_tag(self.writer, self.op_index, i);
                self.write_tag(i, tag);
            }
        }
    }

    /// Writes every writable page of a long range: the memory pressure that makes
    /// reclaim and swap run.
    fn op_fill(&mut self) {
        let (first, end) = self.pick_range(512, false);
        self.log.push(self.op_index, "fill", [self.addr(first), (end - first) as u64, 0, 0]);
        for i in first..end {
            if self.pages[i].is_writable() {
                let tag = model::make_tag(self.writer, self.op_index, i);
                self.write_tag(i, tag);
            }
        }
    }

    fn op_verify(&mut self) {
        let (first, end) = self.pick_range(32, false);
        self.log.push(self.op_index, "verify", [self.addr(first), (end - first) as u64, 0, 0]);
        for i in first..end {
            self.verify_page(i);
        }
    }

    /// Returns a random protection (NONE, write-only and exec-only included).
    fn pick_prot(&mut self) -> u8 {
        const PROTS: [u64; 8] = [
            prot::NONE,
            prot::READ,
            prot::WRITE,
            prot::EXEC,
            prot::READ | prot::WRITE,
            prot::READ | prot::EXEC,
            prot::READ | prot::WRITE | prot::EXEC,
            prot::READ | prot::WRITE, // read-write twice as often: most memory is
        ];
        PROTS[self.rng.below(8) as usize] as u8
    }

    fn op_mmap_fixed(&mut self) {
        let (first, end) = self.pick_range(64, true);
        let is_shared = self.rng.percent(30);
        let prot_bits = self.pick_prot();
        let flags = map::ANONYMOUS | map::FIXED | if is_shared { map::SHARED } else { map::PRIVATE };
        let (addr, len) = (self.addr(first), (end - first) as u64 * PAGE);
        let slot = self.log.push(self.op_index, "mmap-fixed", [addr, len, u64::from(prot_bits), flags]);
        // SAFETY: MAP_FIXED replaces only arena pages, which hold no Rust object.
        let ret = Errno::from_ret(unsafe { syscall6(nr::MMAP, addr, len, u64::from(prot_bits), flags, u64::MAX, 0) });
        self.log.set_result(slot, as_logged(ret));
        if ret != Ok(addr) {
            self.fail(format_args!("mmap(MAP_FIXED {addr:#x}, {len:#x}) = {ret:?}, expected Ok({addr:#x})"));
        }
        self.pages[first..end].fill(PageModel::fresh(prot_bits, is_shared));
    }

    /// Maps where the kernel likes, checks the new pages read as zeros (no old
    /// contents from another process), writes and reads them, and unmaps them.
    fn op_mmap_anywhere(&mut self) {
        let nr = self.rng.length(16);
        let is_shared = self.rng.percent(30);
        let flags = map::ANONYMOUS | if is_shared { map::SHARED } else { map::PRIVATE };
        let len = nr * PAGE;
        let slot = self.log.push(self.op_index, "mmap", [0, len, prot::READ | prot::WRITE, flags]);
        // SAFETY: without MAP_FIXED, mmap only adds memory.
        let ret = Errno::from_ret(unsafe { syscall6(nr::MMAP, 0, len, prot::READ | prot::WRITE, flags, u64::MAX, 0) });
        self.log.set_result(slot, as_logged(ret));
        let Ok(addr) = ret else { self.fail(format_args!("mmap({len:#x}) = {ret:?}")) };
        let arena_end = ARENA_BASE + self.cfg.nr_arena as u64 * PAGE;
        if !addr.is_multiple_of(PAGE) || addr + len > 1 << 47 || (addr < arena_end && addr + len > ARENA_BASE) {
            self.fail(format_args!("mmap({len:#x}) placed at {addr:#x}: unaligned, outside user space, or over the arena"));
        }
        for page in 0..nr {
            let p = (addr + page * PAGE) as *mut u64;
            for w in 0..=LAST_WORD {
                // SAFETY: the mapping was just made readable and writable for us alone.
                let word = unsafe { p.add(w).read_volatile() };
                if word != 0 {
                    self.fail(format_args!("fresh page {:#x} word {w} holds {word:#x}, not 0", p as u64));
                }
            }
            // SAFETY: as above.
            unsafe { p.write_volatile(addr ^ page) };
        }
        for page in 0..nr {
            let p = (addr + page * PAGE) as *const u64;
            // SAFETY: as above.
            let word = unsafe { p.read_volatile() };
            if word != addr ^ page {
                self.fail(format_args!("page {:#x} of a new mapping lost its write", p as u64));
            }
        }
        // SAFETY: the mapping is ours alone and nothing refers to it any more.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, addr, len) });
        if ret != Ok(0) {
            self.fail(format_args!("munmap({addr:#x}, {len:#x}) = {ret:?}"));
        }
    }

    fn op_munmap(&mut self) {
        let (first, end) = self.pick_range(64, true);
        let (addr, len) = (self.addr(first), (end - first) as u64 * PAGE);
        let slot = self.log.push(self.op_index, "munmap", [addr, len, 0, 0]);
        // SAFETY: arena pages hold no Rust object.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, addr, len) });
        self.log.set_result(slot, as_logged(ret));
        if ret != Ok(0) {
            self.fail(format_args!("munmap({addr:#x}, {len:#x}) = {ret:?}, expected Ok(0)"));
        }
        self.pages[first..end].fill(PageModel::default());
    }

    fn op_mprotect(&mut self) {
        let (first, end) = self.pick_range(64, true);
        let range = &self.pages[first..end];
        let is_holed = model::has_hole(range);
        let prot_bits = self.pick_prot();
        let (addr, len) = (self.addr(first), (end - first) as u64 * PAGE);
        let slot = self.log.push(self.op_index, "mprotect", [addr, len, u64::from(prot_bits), 0]);
        // SAFETY: arena pages hold no Rust object; the model follows the protection.
        let ret = Errno::from_ret(unsafe { syscall3(nr::MPROTECT, addr, len, u64::from(prot_bits)) });
        self.log.set_result(slot, as_logged(ret));
        let linux = if is_holed { Err(Errno::ENOMEM) } else { Ok(0) };
        if ret != linux {
            self.fail(format_args!("mprotect({addr:#x}, {len:#x}, {}) = {ret:?}, Linux gives {linux:?}", model::prot_name(prot_bits)));
        }
        if is_holed {
            // Linux changes the mappings before the first hole and stops there; put
            // every mapped run back to what the model says, so model and kernel agree.
            self.restore_prot(first, end);
        } else {
            for p in &mut self.pages[first..end] {
                p.prot = prot_bits;
            }
        }
    }

    /// Sets every mapped run of equal protection in `[first, end)` back to the
    /// model's protection.
    fn restore_prot(&mut self, first: usize, end: usize) {
        let mut i = first;
        while i < end {
            let p = self.pages[i];
            let mut j = i + 1;
            while j < end && self.pages[j].is_mapped == p.is_mapped && self.pages[j].prot == p.prot {
                j += 1;
            }
            if p.is_mapped {
                let (addr, len) = (self.addr(i), (j - i) as u64 * PAGE);
                // SAFETY: arena pages; this only restores what the model says.
                let ret = Errno::from_ret(unsafe { syscall3(nr::MPROTECT, addr, len, u64::from(p.prot)) });
                if ret != Ok(0) {
                    self.fail(format_args!("restoring mprotect({addr:#x}, {len:#x}) = {ret:?}"));
                }
            }
            i = j;
        }
    }

    fn op_madvise(&mut self) {
        let (first, end) = self.pick_range(64, true);
        let advice = [madv::DONTNEED, madv::PAGEOUT, madv::WILLNEED, madv::HUGEPAGE, madv::NOHUGEPAGE, madv::MERGEABLE, madv::UNMERGEABLE]
            [self.rng.below(7) as usize];
        let range = &self.pages[first..end];
        let is_holed = model::has_hole(range);
        let (addr, len) = (self.addr(first), (end - first) as u64 * PAGE);
        let slot = self.log.push(self.op_index, "madvise", [addr, len, advice, 0]);
        // SAFETY: arena pages hold no Rust object; DONTNEED's zeros go into the model.
        let ret = Errno::from_ret(unsafe { syscall3(nr::MADVISE, addr, len, advice) });
        self.log.set_result(slot, as_logged(ret));
        let linux = if is_holed { Err(Errno::ENOMEM) } else { Ok(0) };
        if ret != linux {
            self.fail(format_args!("madvise({addr:#x}, {len:#x}, {advice}) = {ret:?}, Linux gives {linux:?}"));
        }
        if advice == madv::DONTNEED {
            // Private pages drop to zeros; shared ones keep the shared contents.
            for p in self.pages[first..end].iter_mut().filter(|p| p.is_mapped && !p.is_shared) {
                p.tag = 0;
            }
        }
    }

    /// Transparent huge pages in the mix: maps a 2 MiB-aligned block of the arena
    /// afresh (read-write, private), advises MADV_HUGEPAGE, writes a few of its
    /// pages (the first write maps one 2 MiB page), and half the time unmaps a
    /// piece of it, which splits the huge page; later ops (mprotect, madvise,
    /// fork, verify) then meet huge and split pages alike.
    fn op_huge(&mut self) {
        const PAGES_PER_HUGE: usize = 512;
        let nr_blocks = self.cfg.nr_arena / PAGES_PER_HUGE;
        if nr_blocks == 0 {
            return self.op_write();
        }
        let first = self.rng.below(nr_blocks as u64) as usize * PAGES_PER_HUGE;
        let end = first + PAGES_PER_HUGE;
        let (addr, len) = (self.addr(first), PAGES_PER_HUGE as u64 * PAGE);
        let rw = prot::READ | prot::WRITE;
        let flags = map::ANONYMOUS | map::FIXED | map::PRIVATE;
        let slot = self.log.push(self.op_index, "mmap-huge", [addr, len, rw, flags]);
        // SAFETY: MAP_FIXED replaces only arena pages, which hold no Rust object.
        let ret = Errno::from_ret(unsafe { syscall6(nr::MMAP, addr, len, rw, flags, u64::MAX, 0) });
        self.log.set_result(slot, as_logged(ret));
        if ret != Ok(addr) {
            self.fail(format_args!("mmap(MAP_FIXED {addr:#x}, 2 MiB) = {ret:?}"));
        }
        self.pages[first..end].fill(PageModel::fresh(rw as u8, false));
        let slot = self.log.push(self.op_index, "madvise-huge", [addr, len, madv::HUGEPAGE, 0]);
        // SAFETY: the advice changes no contents.
        let ret = Errno::from_ret(unsafe { syscall3(nr::MADVISE, addr, len, madv::HUGEPAGE) });
        self.log.set_result(slot, as_logged(ret));
        if ret != Ok(0) {
            self.fail(format_args!("madvise({addr:#x}, 2 MiB, HUGEPAGE) = {ret:?}"));
        }
        for _ in 0..4 {
            let i = first + self.rng.below(PAGES_PER_HUGE as u64) as usize;
            let tag = model::make_tag(self.writer, self.op_index, i);
            self.write_tag(i, tag);
        }
        if self.rng.percent(50) {
            let cut = first + self.rng.below(PAGES_PER_HUGE as u64) as usize;
            let cut_end = (cut + self.rng.length(16) as usize).min(end);
            let (cut_addr, cut_len) = (self.addr(cut), (cut_end - cut) as u64 * PAGE);
            let slot = self.log.push(self.op_index, "munmap-huge", [cut_addr, cut_len, 0, 0]);
            // SAFETY: arena pages hold no Rust object.
            let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, cut_addr, cut_len) });
            self.log.set_result(slot, as_logged(ret));
            if ret != Ok(0) {
                self.fail(format_args!("munmap({cut_addr:#x}, {cut_len:#x}) in a huge page = {ret:?}"));
            }
            self.pages[cut..cut_end].fill(PageModel::default());
        }
    }

    /// Same-page merging in the mix: advises MADV_MERGEABLE on a range, zeroes
    /// some of its writable pages (equal pages: tag 0, every byte zero) and runs a
    /// scan of up to 1024 pages (`ksm_ctl(SCAN)`, what ksmd does), which merges
    /// them; later writes copy them (COW), forks share them, verify reads them.
    fn op_ksm(&mut self) {
        let (first, end) = self.pick_range(64, true);
        let is_holed = model::has_hole(&self.pages[first..end]);
        let (addr, len) = (self.addr(first), (end - first) as u64 * PAGE);
        let slot = self.log.push(self.op_index, "madvise-mergeable", [addr, len, madv::MERGEABLE, 0]);
        // SAFETY: the advice changes no contents.
        let ret = Errno::from_ret(unsafe { syscall3(nr::MADVISE, addr, len, madv::MERGEABLE) });
        self.log.set_result(slot, as_logged(ret));
        let linux = if is_holed { Err(Errno::ENOMEM) } else { Ok(0) };
        if ret != linux {
            self.fail(format_args!("madvise({addr:#x}, {len:#x}, MERGEABLE) = {ret:?}, Linux gives {linux:?}"));
        }
        for i in first..end {
            if self.pages[i].is_writable() && self.rng.percent(50) {
                self.write_tag(i, 0);
            }
        }
        let nr_pages = 1 + self.rng.below(1024);
        let slot = self.log.push(self.op_index, "ksm-scan", [nr_pages, 0, 0, 0]);
        let ret = ulib::ksm_ctl(ulib::ksm_op::SCAN, nr_pages);
        self.log.set_result(slot, as_logged(ret));
        if ret.is_err() {
            self.fail(format_args!("ksm_ctl(SCAN, {nr_pages}) = {ret:?}"));
        }
    }

    fn op_garbage(&mut self) {
        let i = self.rng.below(garbage::NR_BAD_CALLS as u64) as usize;
        let call = garbage::bad_call(i, self.brk);
        let slot = self.log.push(self.op_index, call.what, [call.args[0], call.args[1], call.args[2], call.args[3]]);
        let ret = garbage::issue(&call);
        self.log.set_result(slot, as_logged(ret));
        if ret != call.linux {
            self.fail(format_args!("{}: {:?}, Linux gives {:?}", call.what, ret, call.linux));
        }
    }

    fn op_brk(&mut self) {
        let nr = self.rng.below(MAX_BRK_PAGES as u64 + 1);
        let may_unalign = nr > 0;
        let unaligned = if self.rng.percent(20) && may_unalign { self.rng.below(PAGE) } else { 0 };
        let target = self.brk_base + nr * PAGE - if unaligned > 0 { PAGE - unaligned } else { 0 };
        let slot = self.log.push(self.op_index, "brk", [target, self.brk, 0, 0]);
        let ret = ulib::brk(target as usize);
        self.log.set_result(slot, ret.map_or(-1, |b| b as i64));
        if ret != Ok(target as usize) {
            self.fail(format_args!("brk({target:#x}) from {:#x} = {ret:?}, Linux moves the break", self.brk));
        }
        let old_pages = (self.brk - self.brk_base).div_ceil(PAGE) as usize;
        let new_pages = (target - self.brk_base).div_ceil(PAGE) as usize;
        let base = self.cfg.nr_arena;
        let rw = (prot::READ | prot::WRITE) as u8;
        for i in new_pages..old_pages {
            self.pages[base + i] = PageModel::default();
        }
        for i in old_pages..new_pages {
            self.pages[base + i] = PageModel::fresh(rw, false);
        }
        self.brk = target;
    }

    /// Lets the kernel write into a random page (`clock_gettime`, `memstat`): Linux
    /// succeeds exactly when the page is writable, and says `EFAULT` otherwise.
    fn op_syscall_writes(&mut self) {
        let i = self.rng.below(self.nr_pages() as u64) as usize;
        let offset = 64 + 8 * self.rng.below(380);
        let addr = self.addr(i) + offset;
        let use_memstat = self.rng.percent(50);
        let kind = if use_memstat { "memstat into" } else { "clock_gettime into" };
        let slot = self.log.push(self.op_index, kind, [addr, 0, 0, 0]);
        // SAFETY: the kernel writes at most 112 bytes at `addr`, inside page `i`
        // between its check words; the page holds no Rust object.
        let ret = Errno::from_ret(unsafe {
            if use_memstat { syscall2(nr::MEMSTAT, addr, 0) } else { syscall2(nr::CLOCK_GETTIME, abi::CLOCK_MONOTONIC, addr) }
        });
        self.log.set_result(slot, as_logged(ret));
        let p = self.pages[i];
        let linux = if p.is_writable() { Ok(0) } else { Err(Errno::EFAULT) };
        if ret != linux {
            self.fail(format_args!("{kind} {addr:#x} ({} mapped {}) = {ret:?}, Linux gives {linux:?}", model::prot_name(p.prot), p.is_mapped));
        }
    }
}
