//! `pmap [-x] PID`: the memory map of a process, from `/proc/PID/smaps`, in
//! procps's layout. Plain: address, size, mode, mapping; `-x` adds the resident
//! and dirty KiB of each mapping (procps's `Address Kbytes RSS Dirty Mode
//! Mapping`) and a total line. Mode is r/w/x, then `s` for a shared mapping, `-`
//! else. Mapping: `[ anon ]`, `[ stack ]`, `[ heap ]`. A bad PID or option: a
//! message and exit code 1.
#![no_std]
#![no_main]

use ulib::procfs::{self, ShortString, field};

ulib::entry!(main);

/// The smaps text (a process may have many VMAs; no heap here).
static mut SMAPS: [u8; 256 * 1024] = [0; 256 * 1024];

/// One mapping, from its smaps entry.
struct Mapping<'a> {
    start: u64,
    size_kb: u64,
    rss_kb: u64,
    dirty_kb: u64,
    perms: &'a str,
    name: &'a str,
}

/// Calls `visit_fn` with each mapping of an smaps text.
fn for_each_mapping<'a>(smaps: &'a str, mut visit_fn: impl FnMut(&Mapping<'a>)) {
    let mut lines = smaps.lines().peekable();
    while let Some(head) = lines.next() {
        let mut words = head.split_whitespace();
        let (Some(range), Some(perms)) = (words.next(), words.next()) else { continue };
        let name = words.nth(3).unwrap_or("");
        let start = range.split('-').next().and_then(|s| u64::from_str_radix(s, 16).ok()).unwrap_or(0);
        let mut m = Mapping { start, size_kb: 0, rss_kb: 0, dirty_kb: 0, perms, name };
        // The field lines are `Key: value`; the next mapping's line starts with its range.
        let is_field = |l: &&str| l.split_once(':').is_some_and(|(key, _)| !key.contains([' ', '-']));
        while let Some(line) = lines.next_if(is_field) {
            let (key, _) = line.split_once(':').unwrap_or(("", ""));
            let value = field(line, key);
            match key {
                "Size" => m.size_kb = value,
                "Rss" => m.rss_kb = value,
                "Shared_Dirty" | "Private_Dirty" => m.dirty_kb += value,
                _ => {}
            }
        }
        visit_fn(&m);
    }
}

/// Returns pmap's 5-letter mode of `perms` (`rw-p` -> `rw---`, `r--s` -> `r--s-`).
fn mode(perms: &str) -> ShortString {
    let b = perms.as_bytes();
    let shared = if b.get(3) == Some(&b's') { 's' } else { '-' };
    let c = |i: usize| b.get(i).map_or('-', |&c| c as char);
    ShortString::new(format_args!("{}{}{}{shared}-", c(0), c(1), c(2)))
}

/// Returns pmap's name for a mapping.
fn mapping_name(name: &str) -> ShortString {
    match name {
        "" => ShortString::new(format_args!("[ anon ]")),
        n if n.starts_with('[') => ShortString::new(format_args!("[ {} ]", n.trim_matches(['[', ']']))),
        n => ShortString::new(format_args!("{n}")),
    }
}

fn main() -> i32 {
    let (mut is_extended, mut pid) = (false, None);
    for arg in ulib::argv::args() {
        match arg {
            "-x" => is_extended = true,
            a if a.starts_with('-') => {
                ulib::eprintln!("pmap: invalid option {a:?}\nusage: pmap [-x] PID");
                return 1;
            }
            a => match procfs::parse_pid(a) {
                Some(p) if pid.is_none() => pid = Some(p),
                _ => {
                    ulib::eprintln!("pmap: invalid PID {a:?}\nusage: pmap [-x] PID");
                    return 1;
                }
            },
        }
    }
    let Some(pid) = pid else {
        ulib::eprintln!("usage: pmap [-x] PID");
        return 1;
    };
    let mut status_buf = [0u8; 1024];
    let Ok(status) = procfs::read(ShortString::new(format_args!("/proc/{pid}/status")).as_str(), &mut status_buf) else {
        ulib::eprintln!("pmap: no process {pid}");
        return 1;
    };
    let name = status.lines().next().and_then(|l| l.strip_prefix("Name:")).unwrap_or("?").trim();
    // SAFETY: the program has one thread and this is the only use of SMAPS.
    let buf = unsafe { &mut *core::ptr::addr_of_mut!(SMAPS) };
    let Ok(smaps) = procfs::read(ShortString::new(format_args!("/proc/{pid}/smaps")).as_str(), buf) else {
        ulib::eprintln!("pmap: no process {pid}");
        return 1;
    };
    ulib::println!("{pid}:   {name}");
    if is_extended {
        ulib::println!("Address           Kbytes     RSS   Dirty Mode  Mapping");
    }
    let (mut size, mut rss, mut dirty) = (0, 0, 0);
    for_each_mapping(smaps, |m| {
        let (mode, name) = (mode(m.perms), mapping_name(m.name));
        if is_extended {
            ulib::println!("{:016x} {:>7} {:>7} {:>7} {} {}", m.start, m.size_kb, m.rss_kb, m.dirty_kb, mode.as_str(), name.as_str());
        } else {
            ulib::println!("{:016x} {:>6}K {} {}", m.start, m.size_kb, mode.as_str(), name.as_str());
        }
        size += m.size_kb;
        rss += m.rss_kb;
        dirty += m.dirty_kb;
    });
    if is_extended {
        ulib::println!("---------------- ------- ------- ------- ");
        ulib::println!("total kB         {size:>7} {rss:>7} {dirty:>7}");
    } else {
        ulib::println!(" total {size:>16}K");
    }
    0
}
