//! `free [-m]`: memory and swap in use, from `/proc/meminfo`, in procps's layout
//! (KiB, or MiB with `-m`). An unknown option: a message and exit code 1.
#![no_std]
#![no_main]

use ulib::fs;

ulib::entry!(main);

/// Returns the number of the `Name:  N kB` line of `text`, 0 if absent.
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn main() -> i32 {
    let mut shift = 0; // KiB
    for arg in ulib::argv::args() {
        match arg {
            "-m" => shift = 10,
            "-k" => shift = 0,
            other => {
                ulib::eprintln!("free: invalid option {other:?}\nusage: free [-k|-m]");
                return 1;
            }
        }
    }
    let mut buf = [0u8; 2048];
    let text = match fs::with_cstr("/proc/meminfo", |c| fs::open(c, fs::o::RDONLY, 0)).and_then(|fd| {
        let n = fs::read_full(fd, &mut buf);
        let _ = fs::close(fd);
        n
    }) {
        Ok(n) => core::str::from_utf8(&buf[..n]).unwrap_or(""),
        Err(e) => {
            ulib::eprintln!("free: /proc/meminfo: {e}");
            return 1;
        }
    };
    let v = |name| field(text, name) >> shift;
    let (total, free, available) = (v("MemTotal"), v("MemFree"), v("MemAvailable"));
    let cache = v("Buffers") + v("Cached");
    let used = total.saturating_sub(free).saturating_sub(cache);
    ulib::println!("{:>7} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}", "", "total", "used", "free", "shared", "buff/cache", "available");
    ulib::println!("{:<7} {total:>11} {used:>11} {free:>11} {:>11} {cache:>11} {available:>11}", "Mem:", v("Shmem"));
    let (swap_total, swap_free) = (v("SwapTotal"), v("SwapFree"));
    ulib::println!("{:<7} {swap_total:>11} {:>11} {swap_free:>11}", "Swap:", swap_total - swap_free);
    0
}
