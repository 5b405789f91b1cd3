//! `pipes`: pipe(2) between processes, with Linux's errnos and end-of-file rules.
//!
//! A child sends 256 KiB (64 times the pipe's buffer) to its parent and the parent
//! 64 KiB back, both checked byte by byte; end of file once every writer is gone;
//! EPIPE once every reader is gone (this kernel has no SIGPIPE: the write fails as
//! on Linux for a process that ignores the signal); a writer blocked on a full pipe
//! woken by the reader's close; `PIPE_BUF`-byte writes from two writers never
//! interleaved; `O_NONBLOCK` giving EAGAIN. Exits 1 at the first mismatch, 0 when
//! all match.
//!
//! `pipes hang` (for the kernel's kill test) blocks forever reading a pipe whose
//! write end it holds itself, printing `pipes: blocking` first.
#![no_std]
#![no_main]

use ulib::fs::{self, SEEK_SET, o};
use ulib::{Errno, Fork, WaitStatus, check, println};
use ulib::{expect_err as err, expect_ok as ok};

ulib::entry!(main);

/// The byte at position `i` of a test stream `seed`.
fn byte(seed: usize, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9) ^ seed) as u8
}

/// Runs `child` in a child process (it exits with what `child` returns); returns its pid.
fn spawn(child: impl FnOnce() -> i32) -> ulib::Pid {
    match ok("fork", ulib::fork()) {
        Fork::Child => ulib::exit(child()),
        Fork::Parent(pid) => pid,
    }
}

fn expect_exit_0(pid: ulib::Pid, what: &str) {
    let (_, status) = ok("wait", ulib::waitpid(pid));
    check!(status == WaitStatus::Exited(0), "{}: child {}", what, status);
}

fn main() -> i32 {
    let mut args = [0u8; 128];
    if ulib::args(&mut args).split_whitespace().any(|w| w == "hang") {
        hang();
    }
    errno_cases();
    eof_and_epipe();
    nonblocking();
    big_transfer_both_ways();
    blocked_writer_gets_epipe();
    pipe_buf_writes_are_atomic();
    println!("pipes: every case matches Linux");
    0
}

fn hang() -> ! {
    let [r, _w] = ok("pipe", fs::pipe());
    println!("pipes: blocking");
    let mut buf = [0u8; 8];
    let got = fs::read(r, &mut buf);
    println!("FAIL: a read with our own writer open returned {:?}", got);
    ulib::exit(1)
}

fn errno_cases() {
    // SAFETY: a bad pointer on purpose; the kernel must answer EFAULT and open nothing.
    let raw = unsafe { ulib::syscall::syscall1(abi::nr::PIPE, 0x10) };
    err("pipe into a bad pointer", Errno::from_ret(raw), Errno::EFAULT);
    let [r, w] = ok("pipe", fs::pipe());
    check!(r == 3 && w == 4, "pipe took fds {} and {}; the failed one leaked fds", r, w);
    err("pipe2 with an unknown flag", fs::pipe2(0x1), Errno::EINVAL);
    err("read the write end", fs::read(w, &mut [0u8; 4]), Errno::EBADF);
    err("write the read end", ulib::write(r, b"x"), Errno::EBADF);
    err("lseek a pipe", fs::lseek(r, 0, SEEK_SET), Errno::ESPIPE);
    err("fsync a pipe", fs::fsync(w), Errno::EINVAL);
    err("getdents64 of a pipe", fs::getdents64(r, &mut [0u8; 64]), Errno::ENOTDIR);
    err("ftruncate a pipe", fs::ftruncate(w, 0), Errno::EINVAL);
    let st = ok("fstat", fs::fstat(r));
    check!(st.st_mode & 0o170000 == abi::mode::S_IFIFO, "a pipe is S_IFIFO: {:o}", st.st_mode);
    check!(ok("write", ulib::write(w, b"abc")) == 3, "write 3");
    let mut buf = [0u8; 8];
    check!(ok("read", fs::read(r, &mut buf)) == 3 && &buf[..3] == b"abc", "read what was written");
    check!(ok("read 0 bytes", fs::read(r, &mut buf[..0])) == 0, "a 0-byte read returns at once");
    ok("close", fs::close(r));
    ok("close", fs::close(w));
}

fn eof_and_epipe() {
    let [r, w] = ok("pipe", fs::pipe());
    ok("write", ulib::write(w, b"last"));
    ok("close the write end", fs::close(w));
    let mut buf = [0u8; 8];
    check!(ok("read what is left", fs::read(r, &mut buf)) == 4, "bytes written before the close stay");
    check!(ok("read at end of file", fs::read(r, &mut buf)) == 0, "no writer: end of file");
    ok("close", fs::close(r));
    let [r, w] = ok("pipe", fs::pipe());
    ok("close the read end", fs::close(r));
    err("write with no reader", ulib::write(w, b"x"), Errno::EPIPE);
    ok("close", fs::close(w));
    // A reader blocked in read sees end of file when the last writer (a child) goes.
    let [r, w] = ok("pipe", fs::pipe());
    let pid = spawn(|| {
        for _ in 0..20 {
            ulib::yield_now(); // let the parent block first
        }
        0 // exiting closes the child's copy of the write end
    });
    ok("close the parent's write end", fs::close(w));
    check!(ok("blocking read", fs::read(r, &mut buf)) == 0, "the child's exit ends the file");
    expect_exit_0(pid, "eof child");
    ok("close", fs::close(r));
}

fn nonblocking() {
    let [r, w] = ok("pipe2 O_NONBLOCK", fs::pipe2(o::NONBLOCK));
    err("read an empty non-blocking pipe", fs::read(r, &mut [0u8; 4]), Errno::EAGAIN);
    let block = [7u8; 6000];
    let n = ok("write more than fits", ulib::write(w, &block));
    check!(n == 4096, "a non-blocking write takes what fits: {}", n);
    err("write a full non-blocking pipe", ulib::write(w, b"x"), Errno::EAGAIN);
    ok("close", fs::close(w));
    let mut buf = [0u8; 5000];
    check!(ok("read", fs::read_full(r, &mut buf)) == 4096, "the 4096 bytes, then end of file");
    ok("close", fs::close(r));
}

fn big_transfer_both_ways() {
    const TO_PARENT: usize = 256 * 1024;
    const TO_CHILD: usize = 64 * 1024;
    let [from_child, child_out] = ok("pipe", fs::pipe());
    let [child_in, to_child] = ok("pipe", fs::pipe());
    let start_ns = ulib::now_ns();
    let pid = spawn(|| {
        let _ = fs::close(from_child);
        let _ = fs::close(to_child);
        let mut piece = [0u8; 1000];
        let mut at = 0;
        while at < TO_PARENT {
            let n = (TO_PARENT - at).min(piece.len());
            for (i, b) in piece[..n].iter_mut().enumerate() {
                *b = byte(1, at + i);
            }
            if fs::write_all(child_out, &piece[..n]).is_err() {
                return 2;
            }
            at += n;
        }
        let _ = fs::close(child_out);
        let mut buf = [0u8; 1500];
        let mut at = 0;
        loop {
            match fs::read(child_in, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if (0..n).any(|i| buf[i] != byte(2, at + i)) {
                        return 3;
                    }
                    at += n;
                }
                Err(_) => return 4,
            }
        }
        if at == TO_CHILD { 0 } else { 5 }
    });
    ok("close the child's ends", fs::close(child_out).and(fs::close(child_in)));
    let mut buf = [0u8; 3000];
    let mut at = 0;
    loop {
        let n = ok("read from the child", fs::read(from_child, &mut buf));
        if n == 0 {
            break;
        }
        for (i, &b) in buf[..n].iter().enumerate() {
            check!(b == byte(1, at + i), "byte {} from the child is wrong", at + i);
        }
        at += n;
    }
    check!(at == TO_PARENT, "got {} bytes of {} from the child", at, TO_PARENT);
    let elapsed_us = (ulib::now_ns() - start_ns) / 1000;
    let mut piece = [0u8; 700];
    let mut at = 0;
    while at < TO_CHILD {
        let n = (TO_CHILD - at).min(piece.len());
        for (i, b) in piece[..n].iter_mut().enumerate() {
            *b = byte(2, at + i);
        }
        ok("write to the child", fs::write_all(to_child, &piece[..n]));
        at += n;
    }
    ok("close", fs::close(to_child));
    expect_exit_0(pid, "transfer child");
    ok("close", fs::close(from_child));
    println!("pipes: {} KiB from child to parent and {} KiB back, intact", TO_PARENT / 1024, TO_CHILD / 1024);
    // Fork, pattern generation and checking included: a rough figure, not a benchmark.
    let kib_per_s = (TO_PARENT as u64 / 1024) * 1_000_000 / elapsed_us.max(1);
    println!("pipes: child to parent: {} KiB in {} us ({} KiB/s, checking included)", TO_PARENT / 1024, elapsed_us, kib_per_s);
}

fn blocked_writer_gets_epipe() {
    let [r, w] = ok("pipe", fs::pipe());
    let pid = spawn(|| {
        let _ = fs::close(r);
        let block = [1u8; 3000];
        // 3000 fits; the second write of 3000 takes 1096 and blocks on a full pipe
        // until the reader closes, then returns what it wrote.
        let first = ulib::write(w, &block);
        let second = ulib::write(w, &block);
        let third = ulib::write(w, &block);
        let ok = first == Ok(3000) && second == Ok(1096) && third == Err(Errno::EPIPE);
        if !ok {
            println!("FAIL: blocked writer: {:?} {:?} {:?}", first, second, third);
        }
        if ok { 0 } else { 1 }
    });
    ok("close the parent's write end", fs::close(w));
    // Wait until the child has filled the pipe, then go away without reading.
    while ok("fstat", fs::fstat(r)).st_size < 4096 {
        ulib::yield_now();
    }
    for _ in 0..10 {
        ulib::yield_now(); // the child is asleep in its second write now
    }
    ok("close the only read end", fs::close(r));
    expect_exit_0(pid, "blocked writer");
}

fn pipe_buf_writes_are_atomic() {
    const BLOCKS: usize = 16;
    let [r, w] = ok("pipe", fs::pipe());
    let writer = |value: u8| {
        move || {
            let _ = fs::close(r);
            let block = [value; abi::PIPE_BUF];
            for _ in 0..BLOCKS {
                if ulib::write(w, &block) != Ok(abi::PIPE_BUF) {
                    return 1;
                }
                ulib::yield_now();
            }
            0
        }
    };
    let a = spawn(writer(b'a'));
    let b = spawn(writer(b'b'));
    ok("close the parent's write end", fs::close(w));
    let mut block = [0u8; abi::PIPE_BUF];
    let mut nr_blocks = 0;
    loop {
        let n = ok("read a block", fs::read_full(r, &mut block));
        if n == 0 {
            break;
        }
        check!(n == abi::PIPE_BUF, "a short tail of {} bytes", n);
        check!(block.iter().all(|&x| x == block[0]), "block {} mixes two writers", nr_blocks);
        nr_blocks += 1;
    }
    check!(nr_blocks == 2 * BLOCKS, "{} blocks of {}", nr_blocks, 2 * BLOCKS);
    expect_exit_0(a, "writer a");
    expect_exit_0(b, "writer b");
    ok("close", fs::close(r));
}
