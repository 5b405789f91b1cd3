//! `vmstat [DELAY [COUNT]]`: procps's one-line-per-interval summary of processes,
//! memory, swap, I/O, interrupts and CPU, from `/proc/meminfo`, `/proc/vmstat` and
//! `/proc/stat`, in Linux's columns:
//! ```text
//! procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----
//!  r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st
//! ```
//! memory in KiB; si/so KiB swapped in/out per second; bi/bo KiB read/written
//! from/to disks per second; in/cs interrupts and context switches per second;
//! us/sy/id percent of the CPU's time. The first line averages since boot (as
//! procps does), the next ones cover each DELAY seconds. Without DELAY: one line.
//! A bad argument: a message and exit code 1.
#![no_std]
#![no_main]

use ulib::procfs::{self, field};

ulib::entry!(main);

/// The counters one line is the difference of.
#[derive(Clone, Copy, Default)]
struct Sample {
    ticks: u64,
    pswpin: u64,
    pswpout: u64,
    pgpgin: u64,
    pgpgout: u64,
    intr: u64,
    ctxt: u64,
    cpu: [u64; 4], // user, system, idle, iowait
}

/// Reads the counters, and the gauges of the line (r b swpd free buff cache).
fn sample() -> Result<(Sample, [u64; 6]), abi::Errno> {
    let mut buf = [0u8; 4096];
    let meminfo = procfs::read("/proc/meminfo", &mut buf)?;
    let swpd = field(meminfo, "SwapTotal") - field(meminfo, "SwapFree");
    let memory = [swpd, field(meminfo, "MemFree"), field(meminfo, "Buffers"), field(meminfo, "Cached")];
    let mut buf = [0u8; 4096];
    let vmstat = procfs::read("/proc/vmstat", &mut buf)?;
    let mut s = Sample {
        pswpin: field(vmstat, "pswpin"),
        pswpout: field(vmstat, "pswpout"),
        pgpgin: field(vmstat, "pgpgin"),
        pgpgout: field(vmstat, "pgpgout"),
        ..Default::default()
    };
    let mut buf = [0u8; 1024];
    let stat = procfs::read("/proc/stat", &mut buf)?;
    let cpu: [u64; 10] = {
        let mut words = stat.lines().next().unwrap_or("").split_whitespace().skip(1).map(|w| w.parse().unwrap_or(0));
        core::array::from_fn(|_| words.next().unwrap_or(0))
    };
    s.cpu = [cpu[0] + cpu[1], cpu[2] + cpu[5] + cpu[6], cpu[3], cpu[4]];
    s.ticks = cpu.iter().sum::<u64>().max(1);
    s.intr = field(stat, "intr");
    s.ctxt = field(stat, "ctxt");
    let gauges = [field(stat, "procs_running"), field(stat, "procs_blocked"), memory[0], memory[1], memory[2], memory[3]];
    Ok((s, gauges))
}

/// Prints the line for the interval from `old` to `new`.
fn print_line(old: &Sample, new: &Sample, g: &[u64; 6]) {
    let ticks = (new.ticks - old.ticks).max(1);
    let per_sec = |a: u64, b: u64| (b - a) * 100 / ticks; // 100 ticks a second (USER_HZ)
    let pct = |i: usize| (new.cpu[i] - old.cpu[i]) * 100 / ticks;
    ulib::println!(
        "{:>2} {:>2} {:>6} {:>6} {:>6} {:>6} {:>4} {:>4} {:>5} {:>5} {:>4} {:>4} {:>2} {:>2} {:>2} {:>2} {:>2}",
        g[0],
        g[1],
        g[2],
        g[3],
        g[4],
        g[5],
        per_sec(old.pswpin, new.pswpin) * 4,
        per_sec(old.pswpout, new.pswpout) * 4,
        per_sec(old.pgpgin, new.pgpgin),
        per_sec(old.pgpgout, new.pgpgout),
        per_sec(old.intr, new.intr),
        per_sec(old.ctxt, new.ctxt),
        pct(0),
        pct(1),
        pct(2),
        pct(3),
        0
    );
}

/// Parses a positive number argument, or prints why not.
fn number(arg: Option<&str>, what: &str, default: u64) -> Option<u64> {
    let Some(text) = arg else { return Some(default) };
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            ulib::eprintln!("vmstat: invalid {what} {text:?}\nusage: vmstat [DELAY [COUNT]]");
            None
        }
    }
}

fn main() -> i32 {
    if ulib::argv::argc() > 3 {
        ulib::eprintln!("usage: vmstat [DELAY [COUNT]]");
        return 1;
    }
    let Some(delay) = number(ulib::argv::arg(1), "delay", 0) else { return 1 };
    let default_count = if delay == 0 { 1 } else { u64::MAX };
    let Some(count) = number(ulib::argv::arg(2), "count", default_count) else { return 1 };
    ulib::println!("procs -----------memory---------- ---swap-- -----io---- -system-- ------cpu-----");
    ulib::println!(" r  b   swpd   free   buff  cache   si   so    bi    bo   in   cs us sy id wa st");
    let (mut last, gauges) = match sample() {
        Ok(s) => s,
        Err(e) => {
            ulib::eprintln!("vmstat: /proc: {e}");
            return 1;
        }
    };
    print_line(&Sample::default(), &last, &gauges);
    for _ in 1..count {
        if ulib::sleep_ms(delay * 1000).is_err() {
            return 1;
        }
        let Ok((now, gauges)) = sample() else { return 1 };
        print_line(&last, &now, &gauges);
        last = now;
    }
    0
}
