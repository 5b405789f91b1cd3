//! `top [-b] [-n N] [-d SECONDS]`: the processes, largest resident set first,
//! refreshed every second (or every SECONDS), with the machine's summary above,
//! in procps's layout; from `/proc/uptime`, `/proc/loadavg`, `/proc/stat`,
//! `/proc/meminfo` and each `/proc/PID/stat`. %CPU is the process's share of the
//! ticks of the interval (the first screen: of its whole life). `-n N`: N screens
//! then exit (tests); `-b`: no screen clearing between them (batch mode, as
//! procps). Ctrl-C leaves (the shell's foreground kill); there is no `q` key: the
//! console gives a program whole lines, not keys. A bad option: a message, exit 1.
#![no_std]
#![no_main]

use ulib::procfs::{self, ShortString, field};

ulib::entry!(main);

/// The most processes shown and remembered between screens.
const MAX_PROCS: usize = 64;

/// One process, from `/proc/PID/stat`.
#[derive(Clone, Copy, Default)]
struct Proc {
    pid: u64,
    name: [u8; 16],
    name_len: usize,
    state: u8,
    cpu_ticks: u64,
    vsize_kb: u64,
    rss_kb: u64,
}

/// Reads `/proc/PID/stat`; `None` if the process went away.
fn read_proc(pid: u64) -> Option<Proc> {
    let mut buf = [0u8; 1024];
    let text = procfs::read(ShortString::new(format_args!("/proc/{pid}/stat")).as_str(), &mut buf).ok()?;
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let name = &text.as_bytes()[open + 1..close];
    let f = |n| ulib::linux::stat_field(text.as_bytes(), n).unwrap_or(0);
    let mut p = Proc {
        pid,
        state: *text.as_bytes().get(close + 2)?,
        cpu_ticks: f(14) + f(15),
        vsize_kb: f(23) / 1024,
        rss_kb: f(24) * 4,
        ..Default::default()
    };
    p.name_len = name.len().min(p.name.len());
    p.name[..p.name_len].copy_from_slice(&name[..p.name_len]);
    Some(p)
}

/// The CPU's total ticks so far (the sum of /proc/stat's cpu line).
fn total_ticks(stat: &str) -> u64 {
    stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|w| w.parse::<u64>().ok()).sum()
}

/// Prints one screen; `prev` holds the processes' CPU ticks at the last one.
fn screen(prev: &mut [(u64, u64); MAX_PROCS], prev_total: &mut u64) -> Result<(), abi::Errno> {
    let (mut up_buf, mut load_buf, mut stat_buf, mut mem_buf) = ([0u8; 64], [0u8; 128], [0u8; 1024], [0u8; 2048]);
    let uptime = procfs::read("/proc/uptime", &mut up_buf)?;
    let loadavg = procfs::read("/proc/loadavg", &mut load_buf)?;
    let stat = procfs::read("/proc/stat", &mut stat_buf)?;
    let meminfo = procfs::read("/proc/meminfo", &mut mem_buf)?;
    let mut procs = [Proc::default(); MAX_PROCS];
    let mut n = 0;
    procfs::for_each_pid(|pid| {
        if n < MAX_PROCS
            && let Some(p) = read_proc(pid)
        {
            procs[n] = p;
            n += 1;
        }
    })?;
    let procs = &mut procs[..n];
    procs.sort_unstable_by(|a, b| b.rss_kb.cmp(&a.rss_kb).then(a.pid.cmp(&b.pid)));
    let total = total_ticks(stat);
    let interval = (total - *prev_total).max(1);
    let secs = uptime.split('.').next().unwrap_or("0");
    let mut load = loadavg.split_whitespace();
    let (l1, l5, l15) = (load.next().unwrap_or("?"), load.next().unwrap_or("?"), load.next().unwrap_or("?"));
    ulib::println!("top - up {secs} s, load average: {l1}, {l5}, {l15}");
    let running = procs.iter().filter(|p| p.state == b'R').count();
    ulib::println!("Tasks: {n:>3} total, {running:>3} running, {:>3} sleeping", n - running);
    let mib = |name| field(meminfo, name) as f64 / 1024.0;
    ulib::println!(
        "MiB Mem : {:>8.1} total, {:>8.1} free, {:>8.1} used, {:>8.1} buff/cache",
        mib("MemTotal"),
        mib("MemFree"),
        mib("MemTotal") - mib("MemFree") - mib("Cached"),
        mib("Cached")
    );
    ulib::println!(
        "MiB Swap: {:>8.1} total, {:>8.1} free, {:>8.1} used. {:>8.1} avail Mem",
        mib("SwapTotal"),
        mib("SwapFree"),
        mib("SwapTotal") - mib("SwapFree"),
        mib("MemAvailable")
    );
    ulib::println!();
    ulib::println!("  PID S    VIRT    RES  %CPU  %MEM     TIME COMMAND");
    let mem_total_kb = field(meminfo, "MemTotal").max(1);
    for p in procs.iter() {
        let before = prev.iter().find(|(pid, _)| *pid == p.pid).map_or(0, |&(_, t)| t);
        let cpu_tenths = (p.cpu_ticks - before.min(p.cpu_ticks)) * 1000 / interval;
        let mem_tenths = p.rss_kb * 1000 / mem_total_kb;
        let name = core::str::from_utf8(&p.name[..p.name_len]).unwrap_or("?");
        ulib::println!(
            "{:>5} {} {:>7} {:>6} {:>3}.{} {:>3}.{} {:>5}.{:02} {name}",
            p.pid,
            p.state as char,
            p.vsize_kb,
            p.rss_kb,
            cpu_tenths / 10,
            cpu_tenths % 10,
            mem_tenths / 10,
            mem_tenths % 10,
            p.cpu_ticks / 100,
            p.cpu_ticks % 100
        );
    }
    *prev = [(0, 0); MAX_PROCS];
    for (slot, p) in prev.iter_mut().zip(procs.iter()) {
        *slot = (p.pid, p.cpu_ticks);
    }
    *prev_total = total;
    Ok(())
}

/// Parses the number after an option, or prints why not.
fn option_number(option: &str, value: Option<&str>) -> Option<u64> {
    match value.and_then(|v| v.parse::<u64>().ok()).filter(|&n| n > 0) {
        Some(n) => Some(n),
        None => {
            ulib::eprintln!("top: {option} needs a positive number, got {value:?}\nusage: top [-b] [-n N] [-d SECONDS]");
            None
        }
    }
}

fn main() -> i32 {
    let (mut is_batch, mut iterations, mut delay_s) = (false, u64::MAX, 1);
    let mut args = ulib::argv::args();
    while let Some(arg) = args.next() {
        match arg {
            "-b" => is_batch = true,
            "-n" => match option_number("-n", args.next()) {
                Some(n) => iterations = n,
                None => return 1,
            },
            "-d" => match option_number("-d", args.next()) {
                Some(n) => delay_s = n,
                None => return 1,
            },
            other => {
                ulib::eprintln!("top: invalid option {other:?}\nusage: top [-b] [-n N] [-d SECONDS]");
                return 1;
            }
        }
    }
    let (mut prev, mut prev_total) = ([(0, 0); MAX_PROCS], 0);
    for i in 0..iterations {
        if i > 0 {
            if ulib::sleep_ms(delay_s * 1000).is_err() {
                return 1;
            }
            if !is_batch {
                ulib::print!("\x1b[H\x1b[2J");
            } else {
                ulib::println!();
            }
        }
        if let Err(e) = screen(&mut prev, &mut prev_total) {
            ulib::eprintln!("top: /proc: {e}");
            return 1;
        }
    }
    0
}
