//! `vmrw`: `process_vm_readv`/`process_vm_writev` between a parent and its child.
//!
//! The parent fills 4 pages `D` (a fifth, unmapped, leaves a hole after them) and
//! forks: the child shares `D` copy-on-write, rewrites page 1 with its own pattern,
//! maps 8 more pages `S`, fills and pages them out to swap, checks that it may *not*
//! read its parent (`EPERM`), and waits. The parent then, from the outside:
//! 1. reads the child's `D` into two local buffers split mid-page: pages 0, 2, 3 hold
//!    the parent's pattern (shared COW frames), page 1 the child's;
//! 2. writes a new pattern into the child's page 0, still shared COW with the parent:
//!    the child gets its own copy, the parent's page 0 is unchanged; reads it back;
//! 3. reads the swapped-out `S` (swapped in on the child's behalf);
//! 4. reads across the end of `D` (a partial transfer: 4096 of 8192), from the hole
//!    (`EFAULT`), two iovecs where the second is in the hole (the first's bytes);
//!    writes to the hole and to the child's code (`EFAULT`); flags 1 (`EINVAL`); a pid
//!    that does not exist (`ESRCH`);
//! 5. lets the child check its own view (page 0 = the written pattern, page 1 its
//!    own, pages 2-3 the parent's, `S` intact) and exit; gets `ESRCH` for it once it
//!    has exited (a zombie) and after it is reaped.
//!
//! Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, IoVec, PAGE_SIZE, WaitStatus, check, madv, map, pattern, println, prot};

ulib::entry!(main);

const PARENT_SEED: u64 = 0x9a;
const CHILD_SEED: u64 = 0xc1;
const WRITTEN_SEED: u64 = 0x33;
const SWAPPED_SEED: u64 = 0x5a;
const NR_SWAPPED: usize = 8;
const READY: u64 = 1;
const DONE: u64 = 2;

/// The shared page the two processes signal through: state, S's address, EPERM seen.
struct Mailbox(*mut u64);

impl Mailbox {
    fn get(&self, i: usize) -> u64 {
        // SAFETY: a MAP_SHARED page mapped for the whole run; words 0..3 are used.
        unsafe { self.0.add(i).read_volatile() }
    }
    fn set(&self, i: usize, value: u64) {
        // SAFETY: as in `get`.
        unsafe { self.0.add(i).write_volatile(value) }
    }
    fn wait_for(&self, state: u64) {
        while self.get(0) != state {
            ulib::yield_now();
        }
    }
}

/// Returns the first word of `buf` that differs from `seed`'s pattern as it would be
/// at address `at` (the data was copied from there): (index, found, expected).
fn mismatch(buf: *const u64, nr_words: usize, seed: u64, at: u64) -> Option<(usize, u64, u64)> {
    (0..nr_words).find_map(|i| {
        // SAFETY: `buf` holds `nr_words` words (a mapping of ours).
        let found = unsafe { buf.add(i).read_volatile() };
        let expected = pattern::word(seed, at + i as u64 * 8);
        (found != expected).then_some((i, found, expected))
    })
}

/// Reads the child's `remote` ranges into `local` ones: `process_vm_readv`.
fn read(pid: i64, local: &[IoVec], remote: &[IoVec], flags: u64) -> Result<usize, Errno> {
    // SAFETY: every local iovec of this program points into the parent's private
    // `local` mapping, which no Rust reference points into.
    unsafe { ulib::process_vm_readv(pid, local, remote, flags) }
}

fn iov(base: u64, len: usize) -> IoVec {
    IoVec { base, len: len as u64 }
}

fn map_pages(nr_pages: usize, flags: u64) -> *mut u64 {
    ulib::mmap(nr_pages * PAGE_SIZE, prot::READ | prot::WRITE, flags).expect("mmap") as *mut u64
}

fn child(mailbox: &Mailbox, parent: i64, d: *mut u64) -> i32 {
    let d_addr = d as u64;
    // SAFETY: page 1 of D is ours (a private mapping); no reference points into it.
    unsafe { pattern::fill(d.add(PAGE_SIZE / 8), 1, CHILD_SEED) };
    let s = map_pages(NR_SWAPPED, map::PRIVATE);
    // SAFETY: a fresh private mapping; PAGEOUT keeps its contents.
    unsafe {
        pattern::fill(s, NR_SWAPPED, SWAPPED_SEED);
        ulib::madvise(s as *mut u8, NR_SWAPPED * PAGE_SIZE, madv::PAGEOUT).expect("madvise(PAGEOUT)");
    }
    let mut word = [0u8; 8];
    let up = ulib::process_vm_read(parent, &mut word, d_addr);
    mailbox.set(2, u64::from(up == Err(Errno::EPERM)));
    mailbox.set(1, s as u64);
    mailbox.set(0, READY);
    mailbox.wait_for(DONE);
    // Our own view, after the parent's reads and write.
    let page = |i: usize| (d as u64 + (i * PAGE_SIZE) as u64) as *const u64;
    let w = PAGE_SIZE / 8;
    check!(mismatch(page(0), w, WRITTEN_SEED, d_addr).is_none(), "child: page 0 lacks the parent's write");
    check!(mismatch(page(1), w, CHILD_SEED, page(1) as u64).is_none(), "child: page 1 changed");
    check!(mismatch(page(2), 2 * w, PARENT_SEED, page(2) as u64).is_none(), "child: pages 2-3 changed");
    check!(mismatch(s, NR_SWAPPED * w, SWAPPED_SEED, s as u64).is_none(), "child: S changed");
    0
}

fn main() -> i32 {
    let me = ulib::getpid();
    let mailbox = Mailbox(map_pages(1, map::SHARED));
    let d = map_pages(5, map::PRIVATE);
    let d_addr = d as u64;
    let hole = d_addr + 4 * PAGE_SIZE as u64;
    // SAFETY: page 4 of our fresh mapping; nothing points into it.
    unsafe { ulib::munmap(hole as *mut u8, PAGE_SIZE) }.expect("munmap");
    // SAFETY: pages 0..4 of the mapping, ours alone.
    unsafe { pattern::fill(d, 4, PARENT_SEED) };
    let pid = match ulib::fork().expect("fork") {
        Fork::Child => return child(&mailbox, me, d),
        Fork::Parent(pid) => pid,
    };
    mailbox.wait_for(READY);
    check!(mailbox.get(2) == 1, "the child could read its parent (EPERM expected)");
    let w = PAGE_SIZE / 8;
    let local = map_pages(NR_SWAPPED, map::PRIVATE);
    let l = local as u64;

    // 1. All of D, into two local buffers split in the middle of a page.
    let split = 5000;
    let locals = [iov(l, split), iov(l + split as u64, 4 * PAGE_SIZE - split)];
    let n = read(pid, &locals, &[iov(d_addr, 4 * PAGE_SIZE)], 0);
    check!(n == Ok(4 * PAGE_SIZE), "read D: {:?}", n);
    let at = |i: usize| d_addr + (i * PAGE_SIZE) as u64;
    let lp = |i: usize| (l + (i * PAGE_SIZE) as u64) as *const u64;
    check!(mismatch(lp(0), w, PARENT_SEED, at(0)).is_none(), "read D: page 0 (shared COW)");
    check!(mismatch(lp(1), w, CHILD_SEED, at(1)).is_none(), "read D: page 1 (the child's own)");
    check!(mismatch(lp(2), 2 * w, PARENT_SEED, at(2)).is_none(), "read D: pages 2-3");
    println!("vmrw: read the child's 4 pages: 3 shared copy-on-write, 1 its own");

    // 2. Write into the child's page 0, shared COW with ours.
    for i in 0..w {
        // SAFETY: page 0 of `local`.
        unsafe { local.add(i).write_volatile(pattern::word(WRITTEN_SEED, at(0) + i as u64 * 8)) };
    }
    let n = ulib::process_vm_writev(pid, &[iov(l, PAGE_SIZE)], &[iov(at(0), PAGE_SIZE)], 0);
    check!(n == Ok(PAGE_SIZE), "write page 0: {:?}", n);
    // SAFETY: our D pages 0..4 are mapped.
    check!(unsafe { pattern::first_mismatch(d, 4, PARENT_SEED) }.is_none(), "our D changed: the write broke COW in the caller");
    let n = read(pid, &[iov(l + PAGE_SIZE as u64, PAGE_SIZE)], &[iov(at(0), PAGE_SIZE)], 0);
    check!(n == Ok(PAGE_SIZE) && mismatch(lp(1), w, WRITTEN_SEED, at(0)).is_none(), "read back page 0: {:?}", n);
    println!("vmrw: wrote the child's copy-on-write page 0: the child has its own copy now, ours is unchanged");

    // 3. The swapped-out pages.
    let s = mailbox.get(1);
    let before = ulib::memstat().expect("memstat").swap_reads;
    let n = read(pid, &[iov(l, NR_SWAPPED * PAGE_SIZE)], &[iov(s, NR_SWAPPED * PAGE_SIZE)], 0);
    check!(n == Ok(NR_SWAPPED * PAGE_SIZE), "read S: {:?}", n);
    check!(mismatch(local, NR_SWAPPED * w, SWAPPED_SEED, s).is_none(), "read S: wrong data");
    let reads = ulib::memstat().expect("memstat").swap_reads - before;
    check!(reads > 0, "S was not read from swap");
    println!("vmrw: read {} swapped-out pages of the child ({} pages read from swap)", NR_SWAPPED, reads);

    // 4. Unmapped ranges, bad arguments.
    let across = read(pid, &[iov(l, 2 * PAGE_SIZE)], &[iov(at(3), 2 * PAGE_SIZE)], 0);
    check!(across == Ok(PAGE_SIZE), "read across the end of D: {:?} (a partial 4096 expected)", across);
    let in_hole = read(pid, &[iov(l, PAGE_SIZE)], &[iov(hole, PAGE_SIZE)], 0);
    check!(in_hole == Err(Errno::EFAULT), "read the hole: {:?}", in_hole);
    let two = read(pid, &[iov(l, 200)], &[iov(at(2), 100), iov(hole, 10)], 0);
    check!(two == Ok(100), "the first iovec then the hole: {:?}", two);
    let flagged = read(pid, &[iov(l, 8)], &[iov(at(0), 8)], 1);
    check!(flagged == Err(Errno::EINVAL), "flags 1: {:?}", flagged);
    let to_hole = ulib::process_vm_writev(pid, &[iov(l, 8)], &[iov(hole, 8)], 0);
    check!(to_hole == Err(Errno::EFAULT), "write the hole: {:?}", to_hole);
    let to_code = ulib::process_vm_writev(pid, &[iov(l, 8)], &[iov(main as *const () as u64, 8)], 0);
    check!(to_code == Err(Errno::EFAULT), "write the child's code: {:?}", to_code);
    let mut word = [0u8; 8];
    check!(ulib::process_vm_read(100_000, &mut word, d_addr) == Err(Errno::ESRCH), "pid 100000 exists?");
    println!("vmrw: partial read 4096 of 8192, EFAULT in the hole and on code, EINVAL for flags, ESRCH for no process");

    // 5. The child checks its own view and exits; then it is gone.
    mailbox.set(0, DONE);
    // Until it exits the child is readable; once it has exited (a zombie, not yet
    // reaped) it is ESRCH.
    let mut exited = ulib::process_vm_read(pid, &mut word, d_addr);
    while exited == Ok(8) {
        ulib::yield_now();
        exited = ulib::process_vm_read(pid, &mut word, d_addr);
    }
    check!(exited == Err(Errno::ESRCH), "read an exited child: {:?}", exited);
    let (_, status) = ulib::waitpid(pid).expect("waitpid");
    check!(status == WaitStatus::Exited(0), "the child's own view was wrong: {:?}", status);
    let dead = ulib::process_vm_read(pid, &mut word, d_addr);
    check!(dead == Err(Errno::ESRCH), "read a reaped child: {:?}", dead);
    // SAFETY: our D pages 0..4 are mapped.
    check!(unsafe { pattern::first_mismatch(d, 4, PARENT_SEED) }.is_none(), "our D changed");
    println!("vmrw: the child saw the write and kept its data; a reaped child is ESRCH");
    0
}
