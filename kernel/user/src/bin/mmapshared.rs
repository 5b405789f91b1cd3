//! `mmapshared`: MAP_SHARED mappings of files from ring 3 (the page cache mapped
//! into the process): the Pintos project 3 cases mmap-write, -exit, -unmap,
//! -shuffle, -inherit (a shared mapping), -remove (shared), xv6 mmaptest's "two
//! files at once" and "fork inheritance", `read`/`write` and the mapping seeing the
//! same bytes, msync's errnos, MS_ASYNC's writes on the disk after fsync, a file
//! written with write(2) reading back through read(2) and a mapping before and
//! after drop_caches, and a truncate killing an access past the new end.
//! Works in `/mmapshared`; leaves `/mmapshared/exit.bin` for the host to read back
//! (`tests/mmap_files.rs` asks the runner to check it with debugfs).
//!
//! Modes for `tests/mmap_files.rs`, which counts the page writes around them:
//! `clean PATH` maps PATH shared and writable, reads every page and exits (mmap-clean:
//! nothing may be written back); `dirty PATH N` writes one byte into page N through
//! a shared mapping and calls msync(MS_SYNC) (exactly that page is written).
#![no_std]
#![no_main]

use ulib::fs::{self, o};
use ulib::syscall::{syscall3, syscall6};
use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, map, nr, println, prot};
use ulib::{expect_err as err, expect_ok as ok};

ulib::entry!(main);

const PAGE: usize = PAGE_SIZE;
const RW: u64 = prot::READ | prot::WRITE;
/// The size of most test files: three pages and a bit.
const SIZE: usize = 3 * PAGE + 100;

fn byte(i: usize) -> u8 {
    (i % 251) as u8
}

fn mmap(len: usize, prot: u64, flags: u64, fd: i32, offset: u64) -> Result<*mut u8, Errno> {
    // SAFETY: no MAP_FIXED: mmap only adds a new mapping.
    let ret = unsafe { syscall6(nr::MMAP, 0, len as u64, prot, flags, fd as i64 as u64, offset) };
    Errno::from_ret(ret).map(|a| a as *mut u8)
}

fn munmap(addr: *mut u8, len: usize) {
    // SAFETY: only mappings this program made and no longer reads.
    let ret = unsafe { ulib::syscall::syscall2(nr::MUNMAP, addr as u64, len as u64) };
    check!(Errno::from_ret(ret).is_ok(), "munmap");
}

fn msync(addr: u64, len: usize, flags: u64) -> Result<u64, Errno> {
    // SAFETY: msync changes no memory.
    Errno::from_ret(unsafe { syscall3(nr::MSYNC, addr, len as u64, flags) })
}

fn at(base: *mut u8, i: usize) -> u8 {
    // SAFETY: callers stay inside the mapping.
    unsafe { base.add(i).read_volatile() }
}

fn put(base: *mut u8, i: usize, value: u8) {
    // SAFETY: callers stay inside a writable mapping.
    unsafe { base.add(i).write_volatile(value) }
}

/// Creates `path` with `len` zero bytes (ftruncate) and returns an O_RDWR fd.
fn zero_file(path: &core::ffi::CStr, len: usize) -> i32 {
    let fd = ok("create", fs::open(path, o::CREAT | o::TRUNC | o::RDWR, 0o644));
    ok("ftruncate", fs::ftruncate(fd, len as i64));
    fd
}

/// Reads `path` whole with read(2) and checks that byte `i` is `want(i)`.
fn file_is(path: &core::ffi::CStr, len: usize, want: impl Fn(usize) -> u8) -> bool {
    let fd = ok("open", fs::open(path, o::RDONLY, 0));
    let size = ok("fstat", fs::fstat(fd)).st_size as usize;
    let mut buf = [0u8; 512];
    let mut done = 0;
    let mut is_same = size == len;
    while done < len {
        let n = ok("read", fs::read(fd, &mut buf));
        if n == 0 {
            break;
        }
        is_same &= buf[..n].iter().enumerate().all(|(k, &b)| b == want(done + k));
        done += n;
    }
    ok("close", fs::close(fd));
    is_same && done == len
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

fn main() -> i32 {
    let mut buf = [0u8; 128];
    let args = ulib::args(&mut buf);
    let mut words = args.split_whitespace().skip_while(|w| *w != "clean" && *w != "dirty");
    match (words.next(), words.next()) {
        (Some("clean"), Some(path)) => return fs::with_cstr(path, |p| Ok(map_and_read(p))).unwrap_or(1),
        (Some("dirty"), Some(path)) => {
            let page = words.next().and_then(|w| w.parse().ok()).unwrap_or(0);
            return fs::with_cstr(path, |p| Ok(write_one_page(p, page))).unwrap_or(1);
        }
        _ => {}
    }
    let _ = fs::mkdir(c"/mmapshared", 0o755);
    ok("chdir", fs::chdir(c"/mmapshared"));
    write_then_read_after_munmap();
    written_back_after_exit();
    unmap_then_access_kills();
    shuffle();
    inherit_shared_and_private();
    two_files_and_close_and_remove();
    read_write_and_mapping_agree();
    msync_errnos();
    ms_async_reaches_the_disk();
    written_file_reads_back_everywhere();
    truncate_kills_past_the_new_end();
    ok("chdir", fs::chdir(c"/"));
    println!("mmapshared: every case matches Linux");
    0
}

/// mmap-clean: map shared and writable, read every page, exit.
fn map_and_read(path: &core::ffi::CStr) -> i32 {
    let fd = ok("open", fs::open(path, o::RDWR, 0));
    let size = ok("fstat", fs::fstat(fd)).st_size as usize;
    let a = ok("mmap shared", mmap(size, RW, map::SHARED, fd, 0));
    let sum: u64 = (0..size).step_by(PAGE / 4).map(|i| u64::from(at(a, i))).sum();
    ok("msync", msync(a as u64, size, abi::ms::SYNC));
    munmap(a, size);
    ok("close", fs::close(fd));
    println!("mmapshared: read {} pages through a shared mapping (sum {sum})", size.div_ceil(PAGE));
    0
}

/// Writes one byte into page `page` of `path` through a shared mapping, msync.
fn write_one_page(path: &core::ffi::CStr, page: usize) -> i32 {
    let fd = ok("open", fs::open(path, o::RDWR, 0));
    let size = ok("fstat", fs::fstat(fd)).st_size as usize;
    let a = ok("mmap shared", mmap(size, RW, map::SHARED, fd, 0));
    (0..size).step_by(PAGE).for_each(|i| {
        at(a, i); // every page mapped, read-only
    });
    put(a, page * PAGE + 1, !at(a, page * PAGE + 1));
    ok("msync MS_SYNC", msync(a as u64, size, abi::ms::SYNC));
    munmap(a, size);
    ok("close", fs::close(fd));
    0
}

/// mmap-write: bytes written through the mapping are in the file after munmap.
fn write_then_read_after_munmap() {
    let fd = zero_file(c"w", SIZE);
    let a = ok("mmap shared (mmap-write)", mmap(SIZE, RW, map::SHARED, fd, 0));
    check!((0..SIZE).all(|i| at(a, i) == 0), "a new file maps zeros");
    (0..SIZE).for_each(|i| put(a, i, byte(i)));
    munmap(a, SIZE);
    ok("close", fs::close(fd));
    check!(file_is(c"w", SIZE, byte), "mmap-write: read(2) after munmap sees the writes");
    ok("unlink", fs::unlink(c"w"));
}

/// mmap-exit: a child writes through a shared mapping and exits without munmap.
fn written_back_after_exit() {
    let fd = zero_file(c"exit.bin", SIZE);
    match ok("fork", ulib::fork()) {
        Fork::Child => {
            let a = ok("mmap shared", mmap(SIZE, RW, map::SHARED, fd, 0));
            (0..SIZE).for_each(|i| put(a, i, byte(i)));
            ulib::exit(0); // no munmap, no msync, no close
        }
        Fork::Parent(child) => {
            let (_, status) = ok("wait", ulib::waitpid(child));
            check!(status == WaitStatus::Exited(0), "the writer: {:?}", status);
        }
    }
    ok("close", fs::close(fd));
    check!(file_is(c"exit.bin", SIZE, byte), "mmap-exit: the file holds what the exited child wrote");
    // exit.bin stays: the host reads it back after the run.
}

/// mmap-unmap: an access after munmap kills.
fn unmap_then_access_kills() {
    let fd = zero_file(c"u", PAGE);
    let a = ok("mmap shared", mmap(PAGE, RW, map::SHARED, fd, 0));
    put(a, 0, 1);
    munmap(a, PAGE);
    check!(child_touches(a, 0) == WaitStatus::Killed(ulib::SIGKILL), "mmap-unmap: an access after munmap");
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"u"));
}

/// mmap-shuffle: many swaps of bytes through the mapping, then the file matches
/// the same swaps done on a copy in memory.
fn shuffle() {
    const LEN: usize = 2 * PAGE;
    let fd = zero_file(c"s", LEN);
    let a = ok("mmap shared", mmap(LEN, RW, map::SHARED, fd, 0));
    let mut copy = [0u8; LEN];
    for (i, b) in copy.iter_mut().enumerate() {
        *b = byte(i);
        put(a, i, *b);
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..5000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (i, j) = ((x % LEN as u64) as usize, ((x >> 32) % LEN as u64) as usize);
        copy.swap(i, j);
        let (bi, bj) = (at(a, i), at(a, j));
        put(a, i, bj);
        put(a, j, bi);
    }
    munmap(a, LEN);
    ok("close", fs::close(fd));
    check!(file_is(c"s", LEN, |i| copy[i]), "mmap-shuffle: the file holds the shuffled bytes");
    ok("unlink", fs::unlink(c"s"));
}

/// mmap-inherit with a shared mapping: the child's writes reach the parent and the
/// file; a private mapping of the same file keeps the child's write to itself.
fn inherit_shared_and_private() {
    let fd = zero_file(c"i", SIZE);
    let shared = ok("mmap shared", mmap(SIZE, RW, map::SHARED, fd, 0));
    let private = ok("mmap private", mmap(SIZE, RW, map::PRIVATE, fd, 0));
    put(shared, 0, 0x11);
    match ok("fork (mmap-inherit)", ulib::fork()) {
        Fork::Child => {
            let sees = at(shared, 0) == 0x11 && at(private, 0) == 0x11;
            put(shared, PAGE + 5, 0x22);
            put(private, 2 * PAGE, 0x33);
            ulib::exit(if sees { 0 } else { 1 });
        }
        Fork::Parent(child) => {
            let (_, status) = ok("wait", ulib::waitpid(child));
            check!(status == WaitStatus::Exited(0), "the child did not see the mappings: {:?}", status);
        }
    }
    check!(at(shared, PAGE + 5) == 0x22, "xv6: the child's shared write reaches the parent");
    check!(at(private, PAGE + 5) == 0x22, "a private page never written shows the file");
    check!(at(private, 2 * PAGE) == 0, "the child's private write stays in the child");
    munmap(shared, SIZE);
    munmap(private, SIZE);
    ok("close", fs::close(fd));
    let want = |i| match i {
        0 => 0x11,
        _ if i == PAGE + 5 => 0x22,
        _ => 0,
    };
    check!(file_is(c"i", SIZE, want), "the file holds the shared writes only");
    ok("unlink", fs::unlink(c"i"));
}

/// xv6: two files mapped at once; mmap-close and mmap-remove for shared mappings.
fn two_files_and_close_and_remove() {
    let (f1, f2) = (zero_file(c"a", PAGE), zero_file(c"b", 2 * PAGE));
    let a = ok("mmap a", mmap(PAGE, RW, map::SHARED, f1, 0));
    let b = ok("mmap b", mmap(2 * PAGE, RW, map::SHARED, f2, 0));
    ok("close a (mmap-close)", fs::close(f1));
    ok("close b", fs::close(f2));
    ok("unlink b (mmap-remove)", fs::unlink(c"b"));
    (0..PAGE).for_each(|i| put(a, i, b'a'));
    (0..2 * PAGE).for_each(|i| put(b, i, b'b'));
    check!((0..PAGE).all(|i| at(a, i) == b'a') && (0..2 * PAGE).all(|i| at(b, i) == b'b'), "two files at once");
    munmap(a, PAGE);
    munmap(b, 2 * PAGE);
    check!(file_is(c"a", PAGE, |_| b'a'), "the first file holds its writes");
    ok("unlink", fs::unlink(c"a"));
}

/// One page cache: write(2) shows in the mapping at once, a store shows in read(2).
fn read_write_and_mapping_agree() {
    let fd = zero_file(c"r", PAGE);
    let a = ok("mmap shared", mmap(PAGE, RW, map::SHARED, fd, 0));
    let private = ok("mmap private", mmap(PAGE, prot::READ, map::PRIVATE, fd, 0));
    check!(at(private, 10) == 0, "private read before the write");
    ok("lseek", fs::lseek(fd, 10, fs::SEEK_SET));
    ok("write", fs::write_all(fd, b"xyz"));
    check!(at(a, 10) == b'x' && at(a, 12) == b'z', "write(2) shows in the shared mapping");
    check!(at(private, 11) == b'y', "and in an unwritten private page (it is the cache page)");
    put(a, 100, b'q');
    let mut one = [0u8; 1];
    ok("lseek", fs::lseek(fd, 100, fs::SEEK_SET));
    ok("read", fs::read_full(fd, &mut one));
    check!(one == *b"q", "a store shows in read(2)");
    munmap(a, PAGE);
    munmap(private, PAGE);
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"r"));
}

/// Drops the clean cached pages (`/proc/sys/vm/drop_caches`): a read after it
/// comes from the disk.
fn drop_caches() {
    let fd = ok("open drop_caches", fs::open(c"/proc/sys/vm/drop_caches", o::WRONLY, 0));
    ok("write 1 to drop_caches", fs::write_all(fd, b"1\n"));
    ok("close", fs::close(fd));
}

/// Byte `i` of the files the write-path cases write (differs from [`byte`]).
fn byte2(i: usize) -> u8 {
    (i % 253) as u8 ^ 0xa5
}

/// msync(MS_ASYNC) starts the write-back and returns; after fsync the bytes are
/// on the disk: read(2) after drop_caches (which keeps dirty pages) sees them.
fn ms_async_reaches_the_disk() {
    let fd = zero_file(c"async", SIZE);
    let a = ok("mmap shared", mmap(SIZE, RW, map::SHARED, fd, 0));
    (0..SIZE).for_each(|i| put(a, i, byte2(i)));
    ok("msync MS_ASYNC", msync(a as u64, SIZE, abi::ms::ASYNC));
    ok("fsync after MS_ASYNC", fs::fsync(fd));
    munmap(a, SIZE);
    drop_caches();
    check!(file_is(c"async", SIZE, byte2), "MS_ASYNC then fsync: the disk holds the writes");
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"async"));
}

/// The write path: write(2) in uneven pieces (a hole, a partial last page), then
/// fsync; read(2), a mapping, and read(2) and a mapping after drop_caches (the disk's
/// copy) all see the same bytes.
fn written_file_reads_back_everywhere() {
    const LEN: usize = 40 * PAGE + 1234;
    const HOLE: core::ops::Range<usize> = 20 * PAGE + 5..23 * PAGE + 7;
    let want = |i: usize| if HOLE.contains(&i) { 0 } else { byte2(i) };
    let fd = ok("create", fs::open(c"written", o::CREAT | o::TRUNC | o::RDWR, 0o644));
    let mut buf = [0u8; 3000];
    let mut at_byte = 0;
    while at_byte < LEN {
        if HOLE.contains(&at_byte) {
            at_byte = HOLE.end;
            ok("lseek past the hole", fs::lseek(fd, at_byte as i64, fs::SEEK_SET));
        }
        let n = buf.len().min(LEN - at_byte).min(if at_byte < HOLE.start { HOLE.start - at_byte } else { usize::MAX });
        buf[..n].iter_mut().enumerate().for_each(|(k, b)| *b = byte2(at_byte + k));
        ok("write", fs::write_all(fd, &buf[..n]));
        at_byte += n;
    }
    ok("fsync", fs::fsync(fd));
    let agree = |what: &str| {
        check!(file_is(c"written", LEN, want), "{what}: read(2) sees what write(2) wrote");
        let m = ok("mmap private", mmap(LEN, prot::READ, map::PRIVATE, fd, 0));
        check!((0..LEN).all(|i| at(m, i) == want(i)), "{what}: a mapping sees what write(2) wrote");
        munmap(m, LEN);
    };
    agree("cached");
    drop_caches();
    agree("after drop_caches");
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"written"));
}

/// msync(2)'s errnos (Linux's), and MS_SYNC / MS_ASYNC / MS_INVALIDATE accepted.
fn msync_errnos() {
    let fd = zero_file(c"m", 2 * PAGE);
    let a = ok("mmap shared", mmap(2 * PAGE, RW, map::SHARED, fd, 0)) as u64;
    put(a as *mut u8, 0, 7);
    ok("msync MS_SYNC", msync(a, 2 * PAGE, abi::ms::SYNC));
    ok("msync MS_ASYNC", msync(a, PAGE, abi::ms::ASYNC));
    ok("msync MS_INVALIDATE", msync(a, PAGE, abi::ms::INVALIDATE));
    ok("msync of length 0", msync(a, 0, abi::ms::SYNC));
    err("msync unaligned", msync(a + 1, PAGE, abi::ms::SYNC), Errno::EINVAL);
    err("msync bad flags", msync(a, PAGE, 8), Errno::EINVAL);
    err("msync MS_SYNC|MS_ASYNC", msync(a, PAGE, abi::ms::SYNC | abi::ms::ASYNC), Errno::EINVAL);
    err("msync past the mapping", msync(a, 3 * PAGE, abi::ms::SYNC), Errno::ENOMEM);
    munmap(a as *mut u8, 2 * PAGE);
    err("msync of an unmapped range", msync(a, PAGE, abi::ms::SYNC), Errno::ENOMEM);
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"m"));
}

/// A truncate unmaps the pages past the new end: touching one kills (SIGBUS in
/// Linux); the page before the end still reads.
fn truncate_kills_past_the_new_end() {
    let fd = zero_file(c"t", SIZE);
    let a = ok("mmap shared", mmap(SIZE, RW, map::SHARED, fd, 0));
    (0..SIZE).step_by(PAGE).for_each(|i| put(a, i, 9));
    ok("ftruncate to one page", fs::ftruncate(fd, PAGE as i64));
    check!(child_touches(a, 0) == WaitStatus::Exited(0), "the page before the new end reads");
    check!(child_touches(a, 2 * PAGE) == WaitStatus::Killed(ulib::SIGKILL), "a page past the new end kills");
    check!(at(a, 0) == 9, "the first page kept its byte");
    munmap(a, SIZE);
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"t"));
}
