//! `mmapfile`: mmap(2) of files from ring 3, the Pintos project 3 cases that a
//! private mapping covers (mmap-read, -close, -remove, -twice, -inherit, -zero,
//! -bad-fd, -misalign, -null, -overlap, -over-code, -over-data, -over-stk), xv6's
//! "a private mapping is not written back" and "a writable MAP_SHARED of an
//! O_RDONLY fd is refused", and an access past the end of the file killing the
//! process. Works in `/mmapfile` and removes it at the end.
#![no_std]
#![no_main]

use ulib::fs::{self, o};
use ulib::syscall::syscall6;
use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, map, nr, println, prot};
use ulib::{expect_err as err, expect_ok as ok};

ulib::entry!(main);

const PAGE: usize = PAGE_SIZE;
/// The size of the test file: two pages and a bit.
const SIZE: usize = 2 * PAGE + 100;

/// A static the over-data case maps over.
static DATA_WORD: [u8; 16] = [7; 16];

fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

fn mmap(addr: u64, len: usize, prot: u64, flags: u64, fd: i32, offset: u64) -> Result<*mut u8, Errno> {
    // SAFETY: MAP_FIXED is used only with MAP_FIXED_NOREPLACE below, which never
    // replaces a mapping of ours.
    let ret = unsafe { syscall6(nr::MMAP, addr, len as u64, prot, flags, fd as i64 as u64, offset) };
    Errno::from_ret(ret).map(|a| a as *mut u8)
}

fn munmap(addr: *mut u8, len: usize) {
    // SAFETY: only mappings this program made and no longer reads.
    let ret = unsafe { ulib::syscall::syscall2(nr::MUNMAP, addr as u64, len as u64) };
    check!(Errno::from_ret(ret).is_ok(), "munmap");
}

/// Reads byte `i` of a mapping.
fn at(base: *mut u8, i: usize) -> u8 {
    // SAFETY: callers stay inside the mapping's file bytes.
    unsafe { base.add(i).read_volatile() }
}

fn make_file(path: &core::ffi::CStr, len: usize) {
    let fd = ok("create", fs::open(path, o::CREAT | o::TRUNC | o::WRONLY, 0o644));
    let mut piece = [0u8; 1000];
    let mut done = 0;
    while done < len {
        let n = (len - done).min(piece.len());
        for (i, b) in piece[..n].iter_mut().enumerate() {
            *b = byte(done + i);
        }
        ok("write", fs::write_all(fd, &piece[..n]));
        done += n;
    }
    ok("close", fs::close(fd));
}

fn main() -> i32 {
    let _ = fs::mkdir(c"/mmapfile", 0o755);
    ok("chdir", fs::chdir(c"/mmapfile"));
    make_file(c"f", SIZE);
    errnos();
    read_close_remove_twice();
    private_writes_stay_private_and_fork_inherits();
    zero_length_and_past_eof_kill();
    overlaps();
    ok("unlink", fs::unlink(c"f"));
    ok("chdir", fs::chdir(c"/"));
    ok("rmdir", fs::rmdir(c"/mmapfile"));
    println!("mmapfile: every case matches Linux");
    0
}

fn errnos() {
    let fd = ok("open", fs::open(c"f", o::RDONLY, 0));
    let r = prot::READ;
    err("mmap of a closed fd (mmap-bad-fd)", mmap(0, PAGE, r, map::PRIVATE, 99, 0), Errno::EBADF);
    err("mmap at a misaligned offset (mmap-misalign)", mmap(0, PAGE, r, map::PRIVATE, fd, 100), Errno::EINVAL);
    err("mmap of length 0", mmap(0, 0, r, map::PRIVATE, fd, 0), Errno::EINVAL);
    // Pintos' mmap-null: no mapping at address 0 (Linux: below mmap_min_addr, EPERM).
    err("mmap of a file at address 0 (mmap-null)", mmap(0, PAGE, r, map::PRIVATE | map::FIXED_NOREPLACE, fd, 0), Errno::EPERM);
    let last_page = !(PAGE as u64 - 1); // the last page-aligned offset
    err("mmap at an offset whose end overflows", mmap(0, 2 * PAGE, r, map::PRIVATE, fd, last_page), Errno::EOVERFLOW);
    err("xv6: MAP_SHARED writable of an O_RDONLY fd", mmap(0, PAGE, r | prot::WRITE, map::SHARED, fd, 0), Errno::EACCES);
    let dir = ok("open a directory", fs::open(c".", o::RDONLY | o::DIRECTORY, 0));
    err("mmap of a directory", mmap(0, PAGE, r, map::PRIVATE, dir, 0), Errno::ENODEV);
    let [pr, pw] = ok("pipe", fs::pipe());
    err("mmap of a pipe", mmap(0, PAGE, r, map::PRIVATE, pr, 0), Errno::ENODEV);
    let wo = ok("open write-only", fs::open(c"f", o::WRONLY, 0));
    err("mmap of an O_WRONLY fd", mmap(0, PAGE, r, map::PRIVATE, wo, 0), Errno::EACCES);
    for f in [fd, dir, pr, pw, wo] {
        ok("close", fs::close(f));
    }
}

fn read_close_remove_twice() {
    make_file(c"g", SIZE);
    let fd = ok("open", fs::open(c"g", o::RDONLY, 0));
    let a = ok("mmap (mmap-read)", mmap(0, SIZE, prot::READ, map::PRIVATE, fd, 0));
    let b = ok("mmap again (mmap-twice)", mmap(0, SIZE, prot::READ, map::PRIVATE, fd, 0));
    let c = ok("mmap at offset one page", mmap(0, PAGE, prot::READ, map::PRIVATE, fd, PAGE as u64));
    check!(a != b, "two mappings at one address");
    ok("close (mmap-close)", fs::close(fd));
    ok("unlink (mmap-remove)", fs::unlink(c"g"));
    check!((0..SIZE).all(|i| at(a, i) == byte(i) && at(b, i) == byte(i)), "the mappings read the file");
    check!((0..PAGE).all(|i| at(c, i) == byte(PAGE + i)), "the offset mapping starts at page 1");
    check!((SIZE..3 * PAGE).all(|i| at(a, i) == 0), "the rest of the last page reads zeros");
    munmap(a, SIZE);
    munmap(b, SIZE);
    munmap(c, PAGE);
}

fn private_writes_stay_private_and_fork_inherits() {
    let fd = ok("open", fs::open(c"f", o::RDWR, 0));
    let a = ok("mmap private writable", mmap(0, SIZE, prot::READ | prot::WRITE, map::PRIVATE, fd, 0));
    // SAFETY: inside the mapping's first page.
    unsafe { a.write_volatile(0xee) };
    match ok("fork (mmap-inherit)", ulib::fork()) {
        Fork::Child => {
            let sees = at(a, 0) == 0xee && at(a, 1) == byte(1);
            // SAFETY: inside the mapping (the child's copy).
            unsafe { a.add(1).write_volatile(0xcc) };
            ulib::exit(if sees { 0 } else { 1 });
        }
        Fork::Parent(child) => {
            let (_, status) = ok("wait", ulib::waitpid(child));
            check!(status == WaitStatus::Exited(0), "the child did not see the mapping: {:?}", status);
            check!(at(a, 1) == byte(1), "the child's private write reached the parent");
        }
    }
    munmap(a, SIZE);
    let mut first = [0u8; 2];
    ok("pread via lseek", fs::lseek(fd, 0, fs::SEEK_SET));
    ok("read", fs::read_full(fd, &mut first));
    check!(first == [byte(0), byte(1)], "xv6: a private mapping was written back: {:?}", first);
    ok("close", fs::close(fd));
}

/// Forks a child that reads byte `offset` of `base`; returns how it ended.
fn child_touches(base: *mut u8, offset: usize) -> WaitStatus {
    match ok("fork", ulib::fork()) {
        Fork::Child => {
            let _ = at(base, offset);
            ulib::exit(0);
        }
        Fork::Parent(child) => ok("wait", ulib::waitpid(child)).1,
    }
}

fn zero_length_and_past_eof_kill() {
    make_file(c"empty", 0);
    let fd = ok("open", fs::open(c"empty", o::RDONLY, 0));
    let z = ok("mmap of an empty file (mmap-zero)", mmap(0, PAGE, prot::READ, map::PRIVATE, fd, 0));
    ok("close", fs::close(fd));
    check!(child_touches(z, 0) == WaitStatus::Killed(ulib::SIGKILL), "touching an empty file's mapping");
    munmap(z, PAGE);
    ok("unlink", fs::unlink(c"empty"));
    let fd = ok("open", fs::open(c"f", o::RDONLY, 0));
    let a = ok("mmap 4 pages of a 3-page file", mmap(0, 4 * PAGE, prot::READ, map::PRIVATE, fd, 0));
    ok("close", fs::close(fd));
    check!(child_touches(a, SIZE) == WaitStatus::Exited(0), "the last file page past the end reads");
    check!(child_touches(a, 3 * PAGE) == WaitStatus::Killed(ulib::SIGKILL), "a page past the end of the file");
    munmap(a, 4 * PAGE);
}

fn overlaps() {
    let fd = ok("open", fs::open(c"f", o::RDONLY, 0));
    let noreplace = map::PRIVATE | map::FIXED_NOREPLACE;
    let a = ok("mmap", mmap(0, PAGE, prot::READ, map::PRIVATE, fd, 0));
    err("over a file mapping (mmap-overlap)", mmap(a as u64, PAGE, prot::READ, noreplace, fd, 0), Errno::EEXIST);
    let code = (main as *const () as usize as u64) & !(PAGE as u64 - 1);
    err("over the code (mmap-over-code)", mmap(code, PAGE, prot::READ, noreplace, fd, 0), Errno::EEXIST);
    let data = (DATA_WORD.as_ptr() as u64) & !(PAGE as u64 - 1);
    err("over the data (mmap-over-data)", mmap(data, PAGE, prot::READ, noreplace, fd, 0), Errno::EEXIST);
    let local = 0u8;
    let stack = (&raw const local as u64) & !(PAGE as u64 - 1);
    err("over the stack (mmap-over-stk)", mmap(stack, PAGE, prot::READ, noreplace, fd, 0), Errno::EEXIST);
    check!(DATA_WORD[0] == 7 && at(a, 0) == byte(0), "memory changed");
    munmap(a, PAGE);
    ok("close", fs::close(fd));
}
