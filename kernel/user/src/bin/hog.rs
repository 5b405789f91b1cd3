//! `hog [MIB|PERCENT%] [shared]`: a memory hog for the walkthrough: maps MIB MiB
//! (default 64; `125%`: 1.25 times MemTotal of `/proc/meminfo`) of
//! anonymous memory, writes every page, says where it is, then keeps touching the
//! pages one pass after another, sleeping a little between passes, until it is
//! killed. More than the machine's free memory makes it swap (watch `vmstat 1`,
//! `free -m`); `kill` gives it all back. With `shared` the mapping is
//! `MAP_SHARED | MAP_ANONYMOUS`: its pages show in meminfo's Shmem and the
//! process's RssShmem instead of AnonPages and RssAnon.
//!
//! ```text
//!  $ hog 64 &
//!  hog: pid 9 holds 64 MiB at 0x7ff000000000..0x7ff004000000; touching it until killed
//! ```
//! The memory goes at [`HINT`] when that range is free (the hint of mmap(2); the
//! kernel places it elsewhere otherwise), so a script can name a page of it:
//! `explain 0x100000000000 $!`.
//! A bad size: a message and exit code 1; no memory: exit code 2.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, println, prot};

ulib::entry!(main);

/// Where the memory goes if that range is free: 16 TiB, easy to type.
const HINT: u64 = 0x1000_0000_0000;

/// Pause between two passes over the memory, in milliseconds.
const PASS_PAUSE_MS: u64 = 200;

fn main() -> i32 {
    let is_shared = match ulib::argv::arg(2) {
        None => false,
        Some("shared") => true,
        Some(_) => return usage(),
    };
    let mib = match ulib::argv::arg(1).map(parse_size) {
        None => 64,
        Some(Some(mib)) if (1..=4096).contains(&mib) => mib,
        _ => return usage(),
    };
    let len = mib << 20;
    let flags = if is_shared { map::SHARED } else { map::PRIVATE } | map::ANONYMOUS;
    // SAFETY: a new anonymous mapping (not MAP_FIXED: nothing existing is replaced).
    let ret = unsafe { ulib::syscall::syscall6(abi::nr::MMAP, HINT, len as u64, prot::READ | prot::WRITE, flags, u64::MAX, 0) };
    let base = match ulib::Errno::from_ret(ret) {
        Ok(addr) => addr as *mut u8,
        Err(e) => {
            ulib::eprintln!("hog: mmap of {mib} MiB: {e}");
            return 2;
        }
    };
    let pid = ulib::getpid();
    touch_all(base, len, 1);
    println!("hog: pid {pid} holds {mib} MiB at {:#x}..{:#x}; touching it until killed", base as u64, base as u64 + len as u64);
    let mut pass = 2;
    loop {
        touch_all(base, len, pass);
        let _ = ulib::sleep_ms(PASS_PAUSE_MS);
        pass += 1;
    }
}

/// Says how to call hog; returns its exit code, 1.
fn usage() -> i32 {
    ulib::eprintln!("usage: hog [MIB|PERCENT%] [shared]   (1..=4096 MiB, default 64; 125%: 1.25 x MemTotal)");
    1
}

/// Writes `pass` into the first word of every page of `[base, base + len)`.
fn touch_all(base: *mut u8, len: usize, pass: u64) {
    for offset in (0..len).step_by(PAGE_SIZE) {
        // SAFETY: the page is inside the mapping this program made and never unmaps.
        unsafe { base.add(offset).cast::<u64>().write_volatile(pass) };
    }
}

/// Parses `MIB`, or `PERCENT%` of MemTotal (from `/proc/meminfo`), into MiB.
fn parse_size(text: &str) -> Option<usize> {
    let Some(percent) = text.strip_suffix('%') else { return text.parse().ok() };
    let percent: usize = percent.parse().ok()?;
    let mut buf = [0u8; 2048];
    let meminfo = ulib::procfs::read("/proc/meminfo", &mut buf).ok()?;
    let total_kb = ulib::procfs::field(meminfo, "MemTotal") as usize;
    Some(total_kb * percent / 100 / 1024)
}
