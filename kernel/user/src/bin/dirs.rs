//! `dirs`: directories and names, each call with its errnos as Linux gives them
//! (mkdir(2), rmdir(2), unlink(2), rename(2), getdents64(2), chdir(2), getcwd(2),
//! openat(2), newfstatat(2)).
//!
//! Works under `/dirs` (removed at the end, so the program can run again); exits 1
//! at the first mismatch, naming it, or 0 when every case matches.
#![no_std]
#![no_main]

use core::ffi::CStr;

use ulib::fs::{self, AT_EMPTY_PATH, AT_FDCWD, SEEK_SET, o};
use ulib::{Errno, check, println};
use ulib::{expect_err as err, expect_ok as ok};

ulib::entry!(main);

fn touch(path: &CStr) {
    let fd = ok("create", fs::open(path, o::CREAT | o::WRONLY, 0o644));
    ok("close", fs::close(fd));
}

fn ino(path: &CStr) -> u64 {
    ok("stat", fs::stat(path)).st_ino
}

fn main() -> i32 {
    ok("mkdir /dirs", fs::mkdir(c"/dirs", 0o755));
    ok("chdir /dirs", fs::chdir(c"/dirs"));
    let mut cwd = [0u8; 64];
    check!(ok("getcwd", fs::getcwd(&mut cwd)) == "/dirs", "getcwd after chdir");
    mkdir_rmdir_unlink_cases();
    getdents_cases();
    many_entries();
    rename_cases();
    chdir_getcwd_cases();
    at_cases();
    ok("chdir /", fs::chdir(c"/"));
    ok("rmdir /dirs", fs::rmdir(c"/dirs"));
    err("/dirs is gone", fs::stat(c"/dirs"), Errno::ENOENT);
    println!("dirs: every case matches Linux");
    0
}

fn mkdir_rmdir_unlink_cases() {
    ok("mkdir d", fs::mkdir(c"d", 0o755));
    err("mkdir d again", fs::mkdir(c"d", 0o755), Errno::EEXIST);
    err("mkdir /", fs::mkdir(c"/", 0o755), Errno::EEXIST);
    err("mkdir d/.", fs::mkdir(c"d/.", 0o755), Errno::EEXIST);
    err("mkdir in a missing directory", fs::mkdir(c"nodir/x", 0o755), Errno::ENOENT);
    touch(c"d/f1");
    touch(c"d/f2");
    ok("mkdir d/sub", fs::mkdir(c"d/sub", 0o700));
    let st = ok("stat d/sub", fs::stat(c"d/sub"));
    check!(st.st_mode == abi::mode::S_IFDIR | 0o700, "directory mode {:o}", st.st_mode);
    check!(ok("stat d", fs::stat(c"d")).st_nlink == 3, "d has 2 + 1 subdirectory links");
    err("mkdir under a file", fs::mkdir(c"d/f1/x", 0o755), Errno::ENOTDIR);
    err("rmdir a non-empty directory", fs::rmdir(c"d"), Errno::ENOTEMPTY);
    err("rmdir a file", fs::rmdir(c"d/f1"), Errno::ENOTDIR);
    err("rmdir a missing name", fs::rmdir(c"d/none"), Errno::ENOENT);
    err("rmdir .", fs::rmdir(c"d/sub/."), Errno::EINVAL);
    err("rmdir ..", fs::rmdir(c"d/sub/.."), Errno::ENOTEMPTY);
    err("rmdir /", fs::rmdir(c"/"), Errno::EBUSY);
    err("unlink a directory", fs::unlink(c"d/sub"), Errno::EISDIR);
    err("unlink a file with a trailing slash", fs::unlink(c"d/f1/"), Errno::ENOTDIR);
    err("unlink a missing name", fs::unlink(c"d/none"), Errno::ENOENT);
    err("unlink the empty path", fs::unlink(c""), Errno::ENOENT);
    ok("rmdir d/sub/ (trailing slash)", fs::rmdir(c"d/sub/"));
    check!(ok("stat d", fs::stat(c"d")).st_nlink == 2, "rmdir drops the parent's link");
    // An open file that is unlinked stays readable until closed.
    let fd = ok("open d/f1", fs::open(c"d/f1", o::RDWR, 0));
    ok("write", ulib::write(fd, b"still here"));
    ok("unlink d/f1", fs::unlink(c"d/f1"));
    check!(ok("fstat", fs::fstat(fd)).st_nlink == 0, "an unlinked open file has no link");
    let mut buf = [0u8; 16];
    ok("rewind", fs::lseek(fd, 0, SEEK_SET));
    check!(ok("read", fs::read(fd, &mut buf)) == 10 && &buf[..10] == b"still here", "unlinked data readable");
    ok("close", fs::close(fd));
    ok("unlink d/f2", fs::unlink(c"d/f2"));
    ok("rmdir d", fs::rmdir(c"d"));
}

fn getdents_cases() {
    ok("mkdir g", fs::mkdir(c"g", 0o755));
    // Created in name order: tmpfs lists by name, ext2 (as Linux's) in creation
    // order, and the checks below hold for both.
    ok("mkdir g/a-dir", fs::mkdir(c"g/a-dir", 0o755));
    touch(c"g/b-file");
    let fd = ok("open g", fs::open(c"g", o::RDONLY | o::DIRECTORY, 0));
    let mut buf = [0u8; 256];
    let n = ok("getdents64", fs::getdents64(fd, &mut buf));
    let mut seen = 0;
    for (i, entry) in fs::dirents(&buf[..n]).enumerate() {
        let (name, kind, want_ino) = match i {
            0 => (&b"."[..], abi::DT_DIR, ino(c"g")),
            1 => (&b".."[..], abi::DT_DIR, ino(c".")),
            2 => (&b"a-dir"[..], abi::DT_DIR, ino(c"g/a-dir")),
            3 => (&b"b-file"[..], abi::DT_REG, ino(c"g/b-file")),
            _ => (&b"?"[..], 0, 0),
        };
        check!(entry.name == name && entry.kind == kind && entry.ino == want_ino, "entry {}: {:?}", i, entry);
        check!(entry.off == i as i64 + 1, "d_off of entry {} is {}", i, entry.off);
        seen += 1;
    }
    check!(seen == 4, "4 entries, saw {}", seen);
    check!(ok("getdents64 at the end", fs::getdents64(fd, &mut buf)) == 0, "0 at the end");
    ok("rewind the directory", fs::lseek(fd, 0, SEEK_SET));
    err("getdents64 into 8 bytes", fs::getdents64(fd, &mut buf[..8]), Errno::EINVAL);
    let n = ok("getdents64 into 24 bytes", fs::getdents64(fd, &mut buf[..24]));
    check!(n == 24 && fs::dirents(&buf[..n]).count() == 1, "one record fits in 24 bytes");
    ok("seek to entry 3", fs::lseek(fd, 3, SEEK_SET));
    let n = ok("getdents64 from 3", fs::getdents64(fd, &mut buf));
    check!(fs::dirents(&buf[..n]).next().is_some_and(|e| e.name == b"b-file"), "lseek to a d_off");
    let file = ok("open a file", fs::open(c"g/b-file", o::RDONLY, 0));
    err("getdents64 of a file", fs::getdents64(file, &mut buf), Errno::ENOTDIR);
    err("getdents64 of a bad fd", fs::getdents64(99, &mut buf), Errno::EBADF);
    ok("rewind", fs::lseek(fd, 0, SEEK_SET));
    // SAFETY: a bad buffer on purpose; the kernel must answer EFAULT.
    let raw = unsafe { ulib::syscall::syscall3(abi::nr::GETDENTS64, fd as u64, 0x10, 256) };
    err("getdents64 into a bad buffer", Errno::from_ret(raw), Errno::EFAULT);
    ok("close", fs::close(file));
    ok("close", fs::close(fd));
    ok("unlink", fs::unlink(c"g/b-file"));
    ok("rmdir", fs::rmdir(c"g/a-dir"));
    ok("rmdir", fs::rmdir(c"g"));
}

/// Writes `name-<i>` into `buf`, NUL-terminated; returns it as a `CStr`.
fn numbered(buf: &mut [u8; 32], i: usize) -> &CStr {
    let prefix = b"many/entry-";
    buf[..prefix.len()].copy_from_slice(prefix);
    let digits = [(i / 100) as u8, (i / 10 % 10) as u8, (i % 10) as u8];
    for (k, d) in digits.iter().enumerate() {
        buf[prefix.len() + k] = b'0' + d;
    }
    buf[prefix.len() + 3] = 0;
    CStr::from_bytes_until_nul(&buf[..]).unwrap_or(c"")
}

/// 150 entries, listed through a small buffer in many calls, each seen once.
fn many_entries() {
    const N: usize = 150;
    ok("mkdir many", fs::mkdir(c"many", 0o755));
    let mut name = [0u8; 32];
    for i in 0..N {
        touch(numbered(&mut name, i));
    }
    let fd = ok("open many", fs::open(c"many", o::RDONLY, 0));
    let mut seen = [false; N];
    let mut buf = [0u8; 200];
    let mut nr_calls = 0;
    loop {
        let n = ok("getdents64", fs::getdents64(fd, &mut buf));
        if n == 0 {
            break;
        }
        nr_calls += 1;
        for entry in fs::dirents(&buf[..n]) {
            if let Some(digits) = entry.name.strip_prefix(b"entry-") {
                let i = digits.iter().fold(0usize, |acc, d| acc * 10 + (d - b'0') as usize);
                check!(i < N && !seen[i], "entry {} listed twice or unknown", i);
                seen[i] = true;
            }
        }
    }
    check!(seen.iter().all(|&s| s), "every entry listed");
    check!(nr_calls > 10, "a 200-byte buffer takes many calls: {}", nr_calls);
    ok("close", fs::close(fd));
    err("rmdir a full directory", fs::rmdir(c"many"), Errno::ENOTEMPTY);
    for i in 0..N {
        ok("unlink", fs::unlink(numbered(&mut name, i)));
    }
    ok("rmdir many", fs::rmdir(c"many"));
}

fn rename_cases() {
    ok("mkdir r", fs::mkdir(c"r", 0o755));
    touch(c"r/f1");
    let f1 = ino(c"r/f1");
    ok("rename f1 f3", fs::rename(c"r/f1", c"r/f3"));
    err("the old name is gone", fs::stat(c"r/f1"), Errno::ENOENT);
    check!(ino(c"r/f3") == f1, "the new name is the same inode");
    touch(c"r/f2");
    let f2 = ino(c"r/f2");
    ok("rename over a file", fs::rename(c"r/f2", c"r/f3"));
    check!(ino(c"r/f3") == f2, "rename replaced the target");
    ok("rename onto itself", fs::rename(c"r/f3", c"r/f3"));
    ok("mkdir r/sub", fs::mkdir(c"r/sub", 0o755));
    err("rename a file over a directory", fs::rename(c"r/f3", c"r/sub"), Errno::EISDIR);
    err("rename a directory over a file", fs::rename(c"r/sub", c"r/f3"), Errno::ENOTDIR);
    err("rename a directory into itself", fs::rename(c"r", c"r/sub/x"), Errno::EINVAL);
    err("rename a directory into its own child", fs::rename(c"r/sub", c"r/sub/x"), Errno::EINVAL);
    ok("mkdir full", fs::mkdir(c"full", 0o755));
    touch(c"full/x");
    err("rename over a non-empty directory", fs::rename(c"r/sub", c"full"), Errno::ENOTEMPTY);
    ok("mkdir empty", fs::mkdir(c"empty", 0o755));
    let sub = ino(c"r/sub");
    ok("rename over an empty directory", fs::rename(c"r/sub", c"empty"));
    check!(ino(c"empty") == sub && fs::stat(c"r/sub").is_err(), "the directory moved");
    touch(c"empty/inner");
    let mut cwd = [0u8; 64];
    ok("chdir into the moved directory", fs::chdir(c"empty"));
    check!(ok("getcwd", fs::getcwd(&mut cwd)) == "/dirs/empty", "getcwd follows the move");
    ok("chdir ..", fs::chdir(c".."));
    err("rename a missing name", fs::rename(c"r/none", c"r/x"), Errno::ENOENT);
    err("rename into a missing directory", fs::rename(c"r/f3", c"nodir/x"), Errno::ENOENT);
    err("rename .", fs::rename(c"r/.", c"x"), Errno::EBUSY);
    err("rename a file to name/", fs::rename(c"r/f3", c"r/f4/"), Errno::ENOTDIR);
    let fd = ok("open f3", fs::open(c"r/f3", o::RDWR, 0));
    ok("write", ulib::write(fd, b"moved"));
    ok("rename across directories", fs::rename(c"r/f3", c"full/f3"));
    let mut buf = [0u8; 8];
    ok("rewind", fs::lseek(fd, 0, SEEK_SET));
    check!(ok("read", fs::read(fd, &mut buf)) == 5 && &buf[..5] == b"moved", "an open file survives rename");
    ok("close", fs::close(fd));
    for path in [c"full/f3", c"full/x", c"empty/inner"] {
        ok("unlink", fs::unlink(path));
    }
    for path in [c"full", c"empty", c"r"] {
        ok("rmdir", fs::rmdir(path));
    }
}

fn chdir_getcwd_cases() {
    let mut buf = [0u8; 64];
    ok("mkdir c", fs::mkdir(c"c", 0o755));
    ok("mkdir c/d", fs::mkdir(c"c/d", 0o755));
    ok("chdir c/d", fs::chdir(c"c/d"));
    check!(ok("getcwd", fs::getcwd(&mut buf)) == "/dirs/c/d", "getcwd two levels down");
    err("getcwd into 5 bytes", fs::getcwd(&mut buf[..5]), Errno::ERANGE);
    // SAFETY: a bad buffer on purpose: the kernel must answer EFAULT.
    let raw = unsafe { ulib::syscall::syscall2(abi::nr::GETCWD, 0x10, 64) };
    err("getcwd into a bad buffer", Errno::from_ret(raw), Errno::EFAULT);
    ok("chdir ../..", fs::chdir(c"../.."));
    check!(ok("getcwd", fs::getcwd(&mut buf)) == "/dirs", "back up with ..");
    ok("chdir /..", fs::chdir(c"/.."));
    check!(ok("getcwd", fs::getcwd(&mut buf)) == "/", "the root's parent is the root");
    ok("chdir /dirs", fs::chdir(c"/dirs"));
    touch(c"c/file");
    err("chdir to a file", fs::chdir(c"c/file"), Errno::ENOTDIR);
    err("chdir to a missing name", fs::chdir(c"c/none"), Errno::ENOENT);
    // A removed cwd: getcwd says ENOENT and nothing can be created in it.
    ok("chdir c/d", fs::chdir(c"c/d"));
    ok("rmdir the cwd", fs::rmdir(c"/dirs/c/d"));
    err("getcwd of a removed cwd", fs::getcwd(&mut buf), Errno::ENOENT);
    err("create in a removed cwd", fs::open(c"x", o::CREAT | o::WRONLY, 0), Errno::ENOENT);
    check!(ok("stat .", fs::stat(c".")).st_nlink == 0, "a removed directory has no links");
    ok("chdir /dirs", fs::chdir(c"/dirs"));
    ok("unlink", fs::unlink(c"c/file"));
    ok("rmdir", fs::rmdir(c"c"));
}

fn at_cases() {
    ok("mkdir at", fs::mkdir(c"at", 0o755));
    touch(c"at/f");
    let dir = ok("open at", fs::open(c"at", o::RDONLY | o::DIRECTORY, 0));
    let fd = ok("openat relative to a dirfd", fs::openat(dir, c"f", o::RDONLY, 0));
    check!(ok("fstat", fs::fstat(fd)).st_ino == ino(c"at/f"), "openat found at/f");
    err("openat relative to a file", fs::openat(fd, c"f", o::RDONLY, 0), Errno::ENOTDIR);
    err("openat relative to a bad fd", fs::openat(99, c"f", o::RDONLY, 0), Errno::EBADF);
    let abs = ok("openat of an absolute path ignores dirfd", fs::openat(99, c"/dirs/at/f", o::RDONLY, 0));
    let cwdrel = ok("openat AT_FDCWD", fs::openat(AT_FDCWD as i32, c"at/f", o::RDONLY, 0));
    check!(ok("fstatat", fs::fstatat(dir, c"f", 0)).st_ino == ino(c"at/f"), "newfstatat relative to a dirfd");
    check!(ok("fstatat AT_EMPTY_PATH", fs::fstatat(dir, c"", AT_EMPTY_PATH)).st_ino == ino(c"at"), "AT_EMPTY_PATH");
    err("fstatat an empty path without AT_EMPTY_PATH", fs::fstatat(dir, c"", 0), Errno::ENOENT);
    err("fstatat with an unknown flag", fs::fstatat(dir, c"f", 0x4), Errno::EINVAL);
    for fd in [fd, abs, cwdrel, dir] {
        ok("close", fs::close(fd));
    }
    ok("unlink", fs::unlink(c"at/f"));
    ok("rmdir", fs::rmdir(c"at"));
}
