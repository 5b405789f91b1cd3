//! `ps`: one line per process, from `/proc/PID/status`: pid, parent, state,
//! resident and swapped memory (KiB), name. An argument: a message and exit code 1.
#![no_std]
#![no_main]

use ulib::fs::{self, o};

ulib::entry!(main);

/// Returns the value of the `Name:\tvalue` line of `text`.
fn field<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map_or("?", |v| v.trim())
}

/// Returns the number of a `Name:  N kB` line, "?" kept as 0.
fn kb(text: &str, name: &str) -> u64 {
    field(text, name).split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Prints the line of process `pid`; nothing if it went away meanwhile.
fn show(pid: &str) {
    let mut path = [0u8; 32];
    let prefix = b"/proc/";
    let suffix = b"/status";
    let len = prefix.len() + pid.len() + suffix.len();
    if len >= path.len() {
        return;
    }
    path[..prefix.len()].copy_from_slice(prefix);
    path[prefix.len()..prefix.len() + pid.len()].copy_from_slice(pid.as_bytes());
    path[prefix.len() + pid.len()..len].copy_from_slice(suffix);
    let Ok(path) = core::str::from_utf8(&path[..len]) else { return };
    let mut buf = [0u8; 1024];
    let Ok(fd) = fs::with_cstr(path, |c| fs::open(c, o::RDONLY, 0)) else { return };
    let n = fs::read_full(fd, &mut buf).unwrap_or(0);
    let _ = fs::close(fd);
    let text = core::str::from_utf8(&buf[..n]).unwrap_or("");
    let state = field(text, "State").chars().next().unwrap_or('?');
    ulib::println!(
        "{:>5} {:>5} {} {:>8} {:>8} {}",
        pid,
        field(text, "PPid"),
        state,
        kb(text, "VmRSS"),
        kb(text, "VmSwap"),
        field(text, "Name")
    );
}

fn main() -> i32 {
    if let Some(arg) = ulib::argv::arg(1) {
        ulib::eprintln!("ps: no options are supported ({arg:?})");
        return 1;
    }
    let fd = match fs::with_cstr("/proc", |c| fs::open(c, o::RDONLY | o::DIRECTORY, 0)) {
        Ok(fd) => fd,
        Err(e) => {
            ulib::eprintln!("ps: /proc: {e}");
            return 1;
        }
    };
    ulib::println!("{:>5} {:>5} S {:>8} {:>8} CMD", "PID", "PPID", "RSS(kB)", "SWAP(kB)");
    let mut buf = [0u8; 4096];
    while let Ok(n) = fs::getdents64(fd, &mut buf) {
        if n == 0 {
            break;
        }
        for entry in fs::dirents(&buf[..n]) {
            let name = core::str::from_utf8(entry.name).unwrap_or("");
            if !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()) {
                show(name);
            }
        }
    }
    let _ = fs::close(fd);
    0
}
