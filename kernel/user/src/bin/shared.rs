//! `shared`: a `MAP_SHARED` page is one page in parent and child, a `MAP_PRIVATE`
//! page is not, and timer preemption interleaves two processes that never yield.
//!
//! Before forking, the parent maps one shared and one private page and writes a
//! value into each. The child checks it sees both, writes its own value into the
//! private page, then spins (no `sched_yield`, only volatile reads) counting loops
//! in the shared page until the parent's flag appears, and answers with a reply.
//! The parent meanwhile spins too, for 50 ms by `now_ns` and then until the child's
//! loop counter moved (at most 5 s): it moves only if the timer preempted the
//! parent and the two really share the page. Then it plays [`NR_ROUNDS`] rounds of
//! ping-pong with the child (flag k, reply k), both sides spinning, reaps the
//! child (exit 0), and checks its private page still holds its own value.
//! Every spin gives up after [`SPIN_LIMIT_NS`] with a `FAIL` instead of hanging.
//! Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

/// How long the parent spins before it raises the first flag.
const PARENT_SPIN_NS: u64 = 50_000_000;
/// How long any spin waits for the other side before failing: 5 s, 500 ticks.
const SPIN_LIMIT_NS: u64 = 5_000_000_000;
/// Flag/reply round trips; each one needs two preemptions.
const NR_ROUNDS: u64 = 5;

/// Word indices in the shared page.
const SPINS: usize = 0;
const FLAG: usize = 1;
const REPLY: usize = 2;
const BEFORE_FORK: usize = 3;

const SHARED_VALUE: u64 = 0x5348_4152_4544; // "SHARED"
const PARENT_PRIVATE: u64 = 0x5041_5245_4e54; // "PARENT"
const CHILD_PRIVATE: u64 = 0x0043_4849_4c44; // "CHILD"

/// Returns what the child answers to flag `round`.
fn reply_to(round: u64) -> u64 {
    round * 1000 + 7
}

/// One word of a mapped page, accessed only with volatile loads and stores, so that
/// every spin really re-reads memory the other process writes.
#[derive(Clone, Copy)]
struct Word(*mut u64);

impl Word {
    fn at(page: *mut u8, index: usize) -> Word {
        assert!(index < PAGE_SIZE / 8, "word {index} is outside the page");
        Word((page as *mut u64).wrapping_add(index))
    }

    fn get(self) -> u64 {
        // SAFETY: `at` only builds words inside a mapped read-write page that stays
        // mapped for the life of the process; u64 accesses are aligned.
        unsafe { self.0.read_volatile() }
    }

    fn set(self, value: u64) {
        // SAFETY: as in `get`.
        unsafe { self.0.write_volatile(value) }
    }
}

/// Spins until `word` holds `value`, without yielding; false after [`SPIN_LIMIT_NS`].
fn spin_until(word: Word, value: u64, count: Option<Word>) -> bool {
    let start = ulib::now_ns();
    let mut nr_loops = 0u64;
    while word.get() != value {
        nr_loops += 1;
        if let Some(counter) = count {
            counter.set(counter.get() + 1);
        }
        // Reading the clock is a syscall: do it rarely, so this is mostly a pure spin.
        if nr_loops.is_multiple_of(4096) && ulib::now_ns() - start > SPIN_LIMIT_NS {
            return false;
        }
    }
    true
}

fn main() -> i32 {
    let shared_page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap shared");
    let private_page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap private");
    let [spins, flag, reply, before_fork] = [SPINS, FLAG, REPLY, BEFORE_FORK].map(|i| Word::at(shared_page, i));
    let private = Word::at(private_page, 0);
    before_fork.set(SHARED_VALUE);
    private.set(PARENT_PRIVATE);

    let child_pid = match ulib::fork().expect("fork") {
        Fork::Child => ulib::exit(child(spins, flag, reply, before_fork, private)),
        Fork::Parent(pid) => pid,
    };

    // Spin without yielding: the child can only run if the timer preempts us. The
    // clock is a syscall, and only user mode is preempted: read it rarely.
    // Spin at least PARENT_SPIN_NS, and on until the child's counter moved (at
    // most SPIN_LIMIT_NS): on a loaded host QEMU can deliver no tick for 50 ms.
    let start = ulib::now_ns();
    loop {
        for _ in 0..4096 {
            core::hint::black_box(reply.get());
        }
        let spun_ns = ulib::now_ns() - start;
        if (spun_ns >= PARENT_SPIN_NS && spins.get() > 0) || spun_ns >= SPIN_LIMIT_NS {
            break;
        }
    }
    let child_spins = spins.get();
    println!(
        "shared: parent spun {} ms without yielding; meanwhile the child spun {} times on the shared page",
        (ulib::now_ns() - start) / 1_000_000,
        child_spins
    );
    check!(child_spins > 0, "the child never ran while the parent spun 5 s (no preemption, or the page is not shared)");
    check!(reply.get() == 0, "the child replied before any flag");
    check!(private.get() == PARENT_PRIVATE, "the child's private write reached the parent");

    let t0 = ulib::now_ns();
    for round in 1..=NR_ROUNDS {
        flag.set(round);
        check!(spin_until(reply, reply_to(round), None), "no reply to flag {} within 5 s", round);
    }
    let round_trip_us = (ulib::now_ns() - t0) / NR_ROUNDS / 1000;
    println!("shared: {} flag/reply round trips between spinning processes, {} us each", NR_ROUNDS, round_trip_us);

    let (pid, status) = ulib::wait().expect("wait");
    check!(pid == child_pid, "reaped {}, expected {}", pid, child_pid);
    check!(status == WaitStatus::Exited(0), "child {} {}", pid, status);
    check!(ulib::wait() == Err(Errno::ECHILD), "a second child to wait for");
    check!(private.get() == PARENT_PRIVATE, "the private page reads {:#x} after the child's write", private.get());
    println!("shared: the shared page carried every flag and reply; the private page kept the parent's value");
    0
}

/// The child: checks what it inherited, writes privately, answers every flag.
fn child(spins: Word, flag: Word, reply: Word, before_fork: Word, private: Word) -> i32 {
    check!(before_fork.get() == SHARED_VALUE, "child: the shared page lost the parent's pre-fork write");
    check!(private.get() == PARENT_PRIVATE, "child: the private page lost the parent's pre-fork write");
    private.set(CHILD_PRIVATE);
    for round in 1..=NR_ROUNDS {
        check!(spin_until(flag, round, Some(spins)), "child: no flag {} within 5 s", round);
        reply.set(reply_to(round));
    }
    check!(private.get() == CHILD_PRIVATE, "child: lost its own private write");
    0
}
