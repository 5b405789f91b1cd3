//! `files`: the fd syscalls on tmpfs files, each with its errnos as Linux gives them
//! (open(2), read(2), write(2), lseek(2), stat(2), ftruncate(2), dup(2), close(2)).
//!
//! Works in its own directory `/files` (removed at the end, so the program can run
//! again), and exits 1 at the first mismatch, naming it, or 0 when every case
//! matches. The same binary would pass on Linux on a tmpfs (`/files` writable).
#![no_std]
#![no_main]

use ulib::fs::{self, SEEK_CUR, SEEK_END, SEEK_SET, o};
use ulib::{Errno, Fork, WaitStatus, check, println};
use ulib::{expect_err as err, expect_ok as ok};

ulib::entry!(main);

const S_IFMT: u32 = 0o170000;

/// Returns the bytes of `fd` from offset 0 (at most `buf.len()`), restoring nothing.
fn contents(fd: i32, buf: &mut [u8]) -> &[u8] {
    ok("lseek to 0", fs::lseek(fd, 0, SEEK_SET));
    let n = ok("read back", fs::read_full(fd, buf));
    &buf[..n]
}

fn main() -> i32 {
    let mut args = [0u8; 128];
    if ulib::args(&mut args).split_whitespace().any(|w| w == "bench") {
        return throughput();
    }
    ok("mkdir /files", fs::mkdir(c"/files", 0o755));
    ok("chdir /files", fs::chdir(c"/files"));
    open_cases();
    read_write_cases();
    lseek_and_hole_cases();
    truncate_cases();
    fd_table_cases();
    console_cases();
    fork_shares_offsets();
    big_file_round_trip();
    ok("unlink a", fs::unlink(c"a"));
    ok("chdir /", fs::chdir(c"/"));
    ok("rmdir /files", fs::rmdir(c"/files"));
    println!("files: every case matches Linux");
    0
}

fn open_cases() {
    err("open a missing file", fs::open(c"missing", o::RDONLY, 0), Errno::ENOENT);
    let fd = ok("open O_CREAT", fs::open(c"a", o::CREAT | o::RDWR, 0o640));
    check!(fd == 3, "the first free fd is 3, got {}", fd);
    let st = ok("fstat", fs::fstat(fd));
    check!(st.st_mode == abi::mode::S_IFREG | 0o640, "mode {:o}", st.st_mode);
    check!(st.st_size == 0 && st.st_nlink == 1, "new file: size {} nlink {}", st.st_size, st.st_nlink);
    check!(ok("stat by path", fs::stat(c"/files/a")).st_ino == st.st_ino, "stat and fstat disagree on the inode");
    check!(ok("stat with . and ..", fs::stat(c"//files/../files/./a")).st_ino == st.st_ino, "./.. lookup");
    err("open O_CREAT|O_EXCL existing", fs::open(c"a", o::CREAT | o::EXCL | o::WRONLY, 0), Errno::EEXIST);
    err("open O_DIRECTORY of a file", fs::open(c"a", o::DIRECTORY, 0), Errno::ENOTDIR);
    err("open a file with a trailing slash", fs::open(c"a/", o::RDONLY, 0), Errno::ENOTDIR);
    err("open through a file", fs::open(c"a/b", o::RDONLY, 0), Errno::ENOTDIR);
    err("open a directory O_RDWR", fs::open(c".", o::RDWR, 0), Errno::EISDIR);
    err("open a directory O_WRONLY", fs::open(c"/", o::WRONLY, 0), Errno::EISDIR);
    err("open O_CREAT of an existing directory", fs::open(c"/files", o::CREAT | o::RDONLY, 0), Errno::EISDIR);
    err("open O_CREAT|O_DIRECTORY", fs::open(c"new", o::CREAT | o::DIRECTORY, 0), Errno::EINVAL);
    err("open O_CREAT in a missing directory", fs::open(c"nodir/x", o::CREAT | o::WRONLY, 0), Errno::ENOENT);
    err("open O_CREAT of name/", fs::open(c"new/", o::CREAT | o::WRONLY, 0), Errno::EISDIR);
    err("open the empty path", fs::open(c"", o::RDONLY, 0), Errno::ENOENT);
    // SAFETY: the pointer is bad on purpose: the kernel must answer EFAULT.
    let bad = unsafe { ulib::syscall::syscall3(abi::nr::OPEN, 0x10, 0, 0) };
    err("open with a bad path pointer", Errno::from_ret(bad), Errno::EFAULT);
    let mut long = [b'x'; 300];
    long[299] = 0;
    let long_name = core::ffi::CStr::from_bytes_until_nul(&long).unwrap_or(c"");
    err("open a 299-byte name", fs::open(long_name, o::CREAT | o::WRONLY, 0), Errno::ENAMETOOLONG);
    let dir = ok("open . O_RDONLY", fs::open(c".", o::RDONLY, 0));
    err("read a directory", fs::read(dir, &mut [0u8; 8]), Errno::EISDIR);
    ok("close the directory", fs::close(dir));
    ok("close a", fs::close(fd));
    err("close it again", fs::close(fd), Errno::EBADF);
    err("close -1", fs::close(-1), Errno::EBADF);
    err("close 100000", fs::close(100_000), Errno::EBADF);
}

fn read_write_cases() {
    let fd = ok("open O_RDWR|O_TRUNC", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    check!(ok("write", ulib::write(fd, b"hello world")) == 11, "short write");
    check!(ok("lseek SEEK_CUR", fs::lseek(fd, 0, SEEK_CUR)) == 11, "offset after write");
    ok("lseek SEEK_SET", fs::lseek(fd, 0, SEEK_SET));
    let mut buf = [0u8; 64];
    check!(ok("read 5", fs::read(fd, &mut buf[..5])) == 5 && &buf[..5] == b"hello", "read 5");
    check!(ok("read the rest", fs::read(fd, &mut buf)) == 6 && &buf[..6] == b" world", "read rest");
    check!(ok("read at end of file", fs::read(fd, &mut buf)) == 0, "read at EOF is 0");
    err("read into a null buffer", fs::lseek(fd, 0, SEEK_SET).and_then(|_| raw_read(fd, 0, 4)), Errno::EFAULT);
    err("read into a kernel address", raw_read(fd, 0xffff_8000_0000_0000, 4), Errno::EFAULT);
    err("write from a null buffer", raw_write(fd, 0, 4), Errno::EFAULT);
    ok("close", fs::close(fd));
    let ro = ok("open O_RDONLY", fs::open(c"a", o::RDONLY, 0));
    err("write to an O_RDONLY fd", ulib::write(ro, b"x"), Errno::EBADF);
    let wo = ok("open O_WRONLY", fs::open(c"a", o::WRONLY, 0));
    err("read from an O_WRONLY fd", fs::read(wo, &mut buf), Errno::EBADF);
    ok("write 123 at 0", ulib::write(wo, b"123"));
    let app = ok("open O_APPEND", fs::open(c"a", o::WRONLY | o::APPEND, 0));
    ok("append 45", ulib::write(app, b"45"));
    check!(ok("offset after append", fs::lseek(app, 0, SEEK_CUR)) == 13, "append offset is the end");
    ok("lseek the append fd to 0", fs::lseek(app, 0, SEEK_SET));
    ok("append !", ulib::write(app, b"!"));
    check!(contents(ro, &mut buf) == b"123lo world45!", "O_APPEND writes at the end whatever the offset");
    let tr = ok("open O_TRUNC", fs::open(c"a", o::WRONLY | o::TRUNC, 0));
    check!(ok("fstat", fs::fstat(ro)).st_size == 0, "O_TRUNC empties the file");
    for fd in [ro, wo, app, tr] {
        ok("close", fs::close(fd));
    }
    err("read a closed fd", fs::read(ro, &mut buf), Errno::EBADF);
    err("write a closed fd", ulib::write(wo, b"x"), Errno::EBADF);
}

fn raw_read(fd: i32, addr: u64, len: u64) -> Result<u64, Errno> {
    // SAFETY: the kernel must refuse the bad address without writing anything.
    Errno::from_ret(unsafe { ulib::syscall::syscall3(abi::nr::READ, fd as u64, addr, len) })
}

fn raw_write(fd: i32, addr: u64, len: u64) -> Result<u64, Errno> {
    // SAFETY: write only reads our memory.
    Errno::from_ret(unsafe { ulib::syscall::syscall3(abi::nr::WRITE, fd as u64, addr, len) })
}

fn lseek_and_hole_cases() {
    let fd = ok("open", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    ok("write", ulib::write(fd, b"0123456789"));
    check!(ok("SEEK_END -1", fs::lseek(fd, -1, SEEK_END)) == 9, "SEEK_END");
    check!(ok("SEEK_CUR -2", fs::lseek(fd, -2, SEEK_CUR)) == 7, "SEEK_CUR");
    err("seek before 0", fs::lseek(fd, -8, SEEK_CUR), Errno::EINVAL);
    err("whence 7", fs::lseek(fd, 0, 7), Errno::EINVAL);
    err("lseek a bad fd", fs::lseek(77, 0, SEEK_SET), Errno::EBADF);
    check!(ok("seek past the end", fs::lseek(fd, 10_000, SEEK_SET)) == 10_000, "seek past end");
    check!(ok("fstat", fs::fstat(fd)).st_size == 10, "seeking does not grow the file");
    ok("write after the hole", ulib::write(fd, b"z"));
    let st = ok("fstat", fs::fstat(fd));
    check!(st.st_size == 10_001, "size after the hole: {}", st.st_size);
    check!(st.st_blocks == 16, "pages 0 and 2 hold data, 1 is a hole: {} blocks", st.st_blocks);
    let mut buf = [0xffu8; 100];
    ok("seek into the hole", fs::lseek(fd, 5000, SEEK_SET));
    check!(ok("read the hole", fs::read(fd, &mut buf)) == 100 && buf.iter().all(|&b| b == 0), "a hole reads as zeros");
    ok("close", fs::close(fd));
}

fn truncate_cases() {
    let fd = ok("open", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    ok("write", ulib::write(fd, b"12345"));
    ok("ftruncate to 3", fs::ftruncate(fd, 3));
    ok("ftruncate to 5", fs::ftruncate(fd, 5));
    let mut buf = [0u8; 16];
    check!(contents(fd, &mut buf) == b"123\0\0", "a cut tail reads back as zeros after growing");
    ok("ftruncate to 8192", fs::ftruncate(fd, 8192));
    check!(ok("fstat", fs::fstat(fd)).st_size == 8192, "ftruncate grows");
    check!(ok("fstat", fs::fstat(fd)).st_blocks == 8, "growing adds a hole, no page");
    err("ftruncate negative", fs::ftruncate(fd, -1), Errno::EINVAL);
    err("ftruncate a bad fd", fs::ftruncate(55, 0), Errno::EBADF);
    let ro = ok("open O_RDONLY", fs::open(c"a", o::RDONLY, 0));
    err("ftruncate an O_RDONLY fd", fs::ftruncate(ro, 0), Errno::EINVAL);
    let dir = ok("open .", fs::open(c".", o::RDONLY, 0));
    err("ftruncate a directory", fs::ftruncate(dir, 0), Errno::EINVAL);
    ok("fsync", fs::fsync(fd));
    err("fsync a bad fd", fs::fsync(55), Errno::EBADF);
    // sync(2): every dirty page of every file written; nothing else runs to dirty more.
    ok("write before sync", fs::write_all(fd, b"dirty"));
    fs::sync();
    let mut meminfo = [0u8; 2048];
    let len = ok("read /proc/meminfo", ulib::linux::read_file(c"/proc/meminfo", &mut meminfo));
    check!(ulib::linux::field(&meminfo[..len], "Dirty") == Some(0), "Dirty after sync(2) is not 0 kB");
    ok("ftruncate to 0", fs::ftruncate(fd, 0));
    check!(ok("fstat", fs::fstat(fd)).st_blocks == 0, "truncate to 0 frees every page");
    for fd in [fd, ro, dir] {
        ok("close", fs::close(fd));
    }
}

fn fd_table_cases() {
    let fd = ok("open", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    let copy = ok("dup", fs::dup(fd));
    check!(copy == fd + 1, "dup takes the lowest free fd");
    ok("write through the first", ulib::write(fd, b"abc"));
    check!(ok("offset of the dup", fs::lseek(copy, 0, SEEK_CUR)) == 3, "dup shares the offset");
    check!(ok("dup2 to 10", fs::dup2(fd, 10)) == 10, "dup2 returns newfd");
    check!(ok("dup2 onto itself", fs::dup2(fd, fd)) == fd, "dup2(fd, fd)");
    err("dup2 of a bad fd", fs::dup2(99, 5), Errno::EBADF);
    err("dup2 onto itself, bad fd", fs::dup2(99, 99), Errno::EBADF);
    err("dup2 beyond the limit", fs::dup2(fd, 1_000_000), Errno::EBADF);
    err("dup2 to a negative fd", fs::dup2(fd, -1), Errno::EBADF);
    err("dup a bad fd", fs::dup(-1), Errno::EBADF);
    let other = ok("open a second file", fs::open(c"b", o::CREAT | o::RDWR, 0o600));
    ok("dup2 over an open fd", fs::dup2(fd, other));
    check!(ok("fstat", fs::fstat(other)).st_ino == ok("fstat", fs::fstat(fd)).st_ino, "dup2 replaced the fd");
    // Unlink while open: the data stays reachable through the fd.
    ok("unlink b", fs::unlink(c"b"));
    err("stat b", fs::stat(c"b"), Errno::ENOENT);
    // EMFILE: fill the table.
    let mut nr_opened = 0;
    let limit = loop {
        match fs::open(c"a", o::RDONLY, 0) {
            Ok(_) => nr_opened += 1,
            Err(e) => break e,
        }
    };
    check!(limit == Errno::EMFILE, "the fd table fills with EMFILE, got {:?}", limit);
    check!(nr_opened + 7 == 1024, "1024 fds in all, opened {} after 7", nr_opened);
    err("dup with a full table", fs::dup(fd), Errno::EMFILE);
    for n in 3..1024 {
        let _ = fs::close(n);
    }
    err("fd 1023 closed", fs::close(1023), Errno::EBADF);
}

fn console_cases() {
    let mut buf = [0u8; 8];
    // A read of the console waits for a typed line (see kernel/src/tty.rs); one of
    // zero bytes returns at once.
    check!(ok("read fd 0", fs::read(0, &mut buf[..0])) == 0, "a zero-byte read of the console returns 0");
    check!(ok("fstat 1", fs::fstat(1)).st_mode & S_IFMT == abi::mode::S_IFCHR, "fd 1 is a character device");
    err("lseek the console", fs::lseek(1, 0, SEEK_SET), Errno::ESPIPE);
    err("fsync the console", fs::fsync(1), Errno::EINVAL);
    // Send our own println! output into a file through fd 1, then put the console back.
    let fd = ok("open", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    let saved = ok("dup 1", fs::dup(1));
    ok("dup2 the file onto 1", fs::dup2(fd, 1));
    println!("into the file");
    ok("dup2 the console back", fs::dup2(saved, 1));
    ok("close the saved console", fs::close(saved));
    let mut text = [0u8; 32];
    check!(contents(fd, &mut text) == b"into the file\n", "println! through fd 1 went to the file");
    ok("close", fs::close(fd));
}

fn fork_shares_offsets() {
    let fd = ok("open", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    match ok("fork", ulib::fork()) {
        Fork::Child => {
            let _ = ulib::write(fd, b"child");
            let made = fs::open(c"/files/fromchild", o::CREAT | o::WRONLY, 0o644);
            let _ = made.and_then(|f| ulib::write(f, b"made by the child"));
            ulib::exit(0)
        }
        Fork::Parent(pid) => {
            check!(ok("wait", ulib::waitpid(pid)).1 == WaitStatus::Exited(0), "child failed");
        }
    }
    check!(ok("offset after the child wrote", fs::lseek(fd, 0, SEEK_CUR)) == 5, "fork shares the offset");
    let mine = ok("open the child's file", fs::open(c"fromchild", o::RDONLY, 0));
    let mut buf = [0u8; 32];
    check!(contents(mine, &mut buf) == b"made by the child", "a file outlives the process that wrote it");
    ok("close", fs::close(mine));
    ok("unlink", fs::unlink(c"fromchild"));
    ok("close", fs::close(fd));
}

/// 100 KiB of a pattern, written in 3000-byte pieces and read back in 777-byte ones.
fn big_file_round_trip() {
    const SIZE: usize = 100 * 1024;
    let byte = |i: usize| (i * 7 + i / 4096) as u8;
    let fd = ok("open", fs::open(c"a", o::RDWR | o::TRUNC, 0));
    let mut piece = [0u8; 3000];
    let mut at = 0;
    while at < SIZE {
        let n = (SIZE - at).min(piece.len());
        for (i, b) in piece[..n].iter_mut().enumerate() {
            *b = byte(at + i);
        }
        ok("write a piece", fs::write_all(fd, &piece[..n]));
        at += n;
    }
    let st = ok("fstat", fs::fstat(fd));
    // st_blocks counts the data, plus on ext2 the indirect block that maps blocks
    // 12 on (one 4 KiB block: 8 sectors), as Linux counts it.
    let data_sectors = (SIZE / 512) as i64;
    let is_counted = st.st_blocks == data_sectors || st.st_blocks == data_sectors + 8;
    check!(st.st_size == SIZE as i64 && is_counted, "100 KiB file: {:?}", st);
    ok("rewind", fs::lseek(fd, 0, SEEK_SET));
    let mut at = 0;
    let mut buf = [0u8; 777];
    loop {
        let n = ok("read a piece", fs::read(fd, &mut buf));
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            check!(b == byte(at + i), "byte {} of the big file is wrong", at + i);
        }
        at += n;
    }
    check!(at == SIZE, "read back {} bytes of {}", at, SIZE);
    ok("close", fs::close(fd));
}

/// `files bench`: writes a 16 MiB file in 64 KiB writes, fsyncs it, reads it back
/// in 64 KiB reads, and prints both rates (tmpfs: memory copies and page
/// allocation, nothing on a disk).
fn throughput() -> i32 {
    const SIZE: usize = 16 << 20;
    const BUF_BYTES: usize = 64 * 1024;
    let base = ok("mmap a buffer", ulib::mmap(BUF_BYTES, ulib::prot::READ | ulib::prot::WRITE, ulib::map::PRIVATE));
    // SAFETY: a fresh private mapping of BUF_BYTES, never unmapped, referenced only here.
    let buf = unsafe { core::slice::from_raw_parts_mut(base, BUF_BYTES) };
    let mib_per_s = |ns: u64| (SIZE as u64 >> 20) * 1_000_000_000 / ns.max(1);
    let fd = ok("create", fs::open(c"/bench.dat", o::CREAT | o::RDWR | o::TRUNC, 0o644));
    buf.fill(0x5a);
    let start = ulib::now_ns();
    for _ in 0..SIZE / buf.len() {
        ok("write", fs::write_all(fd, buf));
    }
    ok("fsync", fs::fsync(fd));
    let write_ns = ulib::now_ns() - start;
    ok("rewind", fs::lseek(fd, 0, SEEK_SET));
    let start = ulib::now_ns();
    let mut total = 0;
    loop {
        match ok("read", fs::read(fd, buf)) {
            0 => break,
            n => total += n,
        }
    }
    let read_ns = ulib::now_ns() - start;
    check!(total == SIZE, "read back {} of {} bytes", total, SIZE);
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"/bench.dat"));
    println!("files bench: 16 MiB write+fsync {} MiB/s, read {} MiB/s (64 KiB calls, tmpfs)", mib_per_s(write_ns), mib_per_s(read_ns));
    0
}
