//! `exectest`: execve(2) from ring 3. Its errnos (ENOENT, ENOEXEC, EACCES,
//! EFAULT, E2BIG), fork + exec of the C program `argv_c` (argv and envp arrive
//! intact; the parent's memory is untouched), and the old address space freed:
//! the program touches 4 MiB, then execs itself with the free-frame count, and the
//! new program checks that those frames came back.
//!
//! `exectest bench N`: N rounds of fork + exec of `/bin/true_c` + wait, timed
//! (`cargo run --release -- --cmdline "run=exectest bench 100"`).
#![no_std]
#![no_main]

use core::ffi::CStr;

use ulib::{Errno, Fork, WaitStatus, check, expect_err, expect_ok, println};

ulib::entry!(main);

/// Pages the program touches before it execs itself.
const TOUCHED_PAGES: usize = 1024;

fn main() -> i32 {
    let mut buf = [0u8; 128];
    let args = ulib::args(&mut buf);
    // The mode is the first word that names one: `run=exectest bench 100` on the
    // kernel command line passes the whole line.
    let mut words = args.split_whitespace().skip_while(|w| *w != "freed" && *w != "bench");
    match words.next() {
        Some("freed") => check_freed(words.next().and_then(|w| w.parse().ok()).unwrap_or(0)),
        Some("bench") => bench(words.next().and_then(|w| w.parse().ok()).unwrap_or(100)),
        _ => {
            errnos();
            fork_exec_argv();
            exec_self_after_touching();
        }
    }
    0
}

/// Runs execve on `path` with `argv` (and an empty envp).
fn exec(path: &CStr, argv: &[*const u8]) -> Errno {
    let envp: [*const u8; 1] = [core::ptr::null()];
    // SAFETY: `path` is NUL-terminated and `argv` a NULL-terminated array (checked
    // by the callers), or bad on purpose in `errnos`.
    unsafe { ulib::execve(p(path), argv.as_ptr(), envp.as_ptr()) }
}

/// Returns the address of a C string, as execve takes it.
fn p(s: &CStr) -> *const u8 {
    s.as_ptr().cast()
}

fn errnos() {
    let argv: [*const u8; 2] = [p(c"x"), core::ptr::null()];
    expect_err("exec of a missing file", Err::<(), _>(exec(c"/bin/no-such-program", &argv)), Errno::ENOENT);
    expect_err("exec of a text file", Err::<(), _>(exec(c"/etc/motd", &argv)), Errno::ENOEXEC);
    expect_err("exec of a directory", Err::<(), _>(exec(c"/bin", &argv)), Errno::EACCES);
    expect_err("exec below a file", Err::<(), _>(exec(c"/etc/motd/x", &argv)), Errno::ENOTDIR);
    // SAFETY: bad pointers on purpose: the kernel must answer EFAULT.
    let bad_path = unsafe { ulib::execve(0x10 as *const u8, argv.as_ptr(), core::ptr::null()) };
    expect_err("exec with a bad path pointer", Err::<(), _>(bad_path), Errno::EFAULT);
    // SAFETY: as above.
    let bad_argv = unsafe { ulib::execve(p(c"/bin/true_c"), 0x10 as *const *const u8, core::ptr::null()) };
    expect_err("exec with a bad argv pointer", Err::<(), _>(bad_argv), Errno::EFAULT);
    let bad_string: [*const u8; 2] = [0x20 as *const u8, core::ptr::null()];
    expect_err("exec with a bad argv string", Err::<(), _>(exec(c"/bin/true_c", &bad_string)), Errno::EFAULT);
    // 200 strings of 1 KiB: more than the 128 KiB argv and envp may hold.
    let mut long = [b'a'; 1024];
    long[1023] = 0;
    let mut many = [long.as_ptr(); 201];
    many[200] = core::ptr::null();
    expect_err("exec with 200 KiB of arguments", Err::<(), _>(exec(c"/bin/true_c", &many)), Errno::E2BIG);
    // After all those failures the program still runs, its memory intact.
    check!(long[0] == b'a' && long[1023] == 0, "the caller's memory changed");
}

fn fork_exec_argv() {
    let marker = [0x5au8; 64];
    match expect_ok("fork", ulib::fork()) {
        Fork::Child => {
            let argv: [*const u8; 5] =
                [p(c"argv_c"), p(c"alpha"), p(c"beta gamma"), p(c""), core::ptr::null()];
            let envp: [*const u8; 3] = [p(c"KEY=value with spaces"), p(c"EMPTY="), core::ptr::null()];
            // SAFETY: NUL-terminated strings in NULL-terminated arrays.
            let e = unsafe { ulib::execve(p(c"/bin/argv_c"), argv.as_ptr(), envp.as_ptr()) };
            println!("FAIL: exec of /bin/argv_c: {:?}", e);
            ulib::exit(2);
        }
        Fork::Parent(child) => {
            let (pid, status) = expect_ok("wait", ulib::waitpid(child));
            check!(pid == child && status == WaitStatus::Exited(0), "argv_c ended {:?}", status);
            check!(marker.iter().all(|&b| b == 0x5a), "the parent's memory changed");
            println!("exectest: fork + exec of /bin/argv_c: exit 0, parent intact");
        }
    }
}

/// Returns the free frames, the pre-zeroed pool's included (`memstat` counts the
/// buddy allocator's and the per-CPU lists'; an idle CPU moves free frames into the
/// pool to zero them, and may do so between the two counts of this test).
fn free_frames() -> u64 {
    let mut text = [0u8; 4096];
    let len = ulib::linux::read_file(c"/proc/vmstat", &mut text).unwrap_or(0);
    let pooled = ulib::linux::field(&text[..len], "nr_prezeroed_pages").unwrap_or(0);
    expect_ok("memstat", ulib::memstat()).free_frames + pooled
}

/// Touches [`TOUCHED_PAGES`] pages, then execs itself with the free-frame count.
fn exec_self_after_touching() {
    let len = TOUCHED_PAGES * ulib::PAGE_SIZE;
    let area = expect_ok("mmap", ulib::mmap(len, ulib::prot::READ | ulib::prot::WRITE, ulib::map::PRIVATE | ulib::map::ANONYMOUS));
    for i in 0..TOUCHED_PAGES {
        // SAFETY: inside the fresh mapping of `len` bytes.
        unsafe { area.add(i * ulib::PAGE_SIZE).write_volatile(1) };
    }
    let free = free_frames();
    let mut word = [0u8; 24];
    let text = format_u64(free, &mut word);
    let argv: [*const u8; 4] = [p(c"exectest"), p(c"freed"), text.as_ptr(), core::ptr::null()];
    let e = exec(c"/bin/exectest", &argv);
    println!("FAIL: exec of /bin/exectest: {:?}", e);
    ulib::exit(1);
}

/// After the exec: the touched pages (and the old tables) are free again.
fn check_freed(free_before: u64) {
    let free_now = free_frames();
    // The new program's own pages (text, data, stack, tables) are a few dozen.
    let want = free_before + TOUCHED_PAGES as u64 - 64;
    check!(free_now >= want, "after exec {} frames free, want at least {} (before exec: {})", free_now, want, free_before);
    println!("exectest: exec freed the old address space: {} -> {} free frames", free_before, free_now);
    println!("exectest: every case matches Linux");
}

/// Writes `n` in decimal, NUL-terminated, into `buf`; returns the text with its NUL.
fn format_u64(mut n: u64, buf: &mut [u8; 24]) -> &[u8] {
    let mut at = buf.len() - 1;
    buf[at] = 0;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// `rounds` times: fork, exec `/bin/true_c` in the child, wait. Prints the mean.
fn bench(rounds: u64) {
    let start = ulib::now_ns();
    for _ in 0..rounds {
        match expect_ok("fork", ulib::fork()) {
            Fork::Child => {
                let argv: [*const u8; 2] = [p(c"true_c"), core::ptr::null()];
                let e = exec(c"/bin/true_c", &argv);
                println!("FAIL: exec of /bin/true_c: {:?}", e);
                ulib::exit(2);
            }
            Fork::Parent(child) => {
                let (_, status) = expect_ok("wait", ulib::waitpid(child));
                check!(status == WaitStatus::Exited(0), "true_c ended {:?}", status);
            }
        }
    }
    let ns = ulib::now_ns() - start;
    println!("exectest: fork + exec /bin/true_c + wait: {} rounds, {} us each", rounds, ns / rounds / 1000);
}
