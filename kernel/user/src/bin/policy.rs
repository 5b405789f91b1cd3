//! `policy [NAME]`: the page-replacement policies and the one in force, from
//! `/proc/sys/vm/page_replacement`; with NAME, switches to it at once (every
//! resident page is handed over to the new policy). An unknown name: the kernel
//! refuses it (EINVAL), a message, exit code 1.
#![no_std]
#![no_main]

use ulib::procfs;

ulib::entry!(main);

const KNOB: &str = "/proc/sys/vm/page_replacement";

/// Prints the policies, marking the current one.
fn show() -> i32 {
    let mut buf = [0u8; 256];
    match procfs::read(KNOB, &mut buf) {
        Ok(text) => {
            for word in text.split_whitespace() {
                match word.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                    Some(current) => ulib::println!("* {current}"),
                    None => ulib::println!("  {word}"),
                }
            }
            0
        }
        Err(e) => {
            ulib::eprintln!("policy: {KNOB}: {e}");
            1
        }
    }
}

fn main() -> i32 {
    match (ulib::argv::arg(1), ulib::argv::argc()) {
        (None, _) => show(),
        (Some(name), 2) if !name.starts_with('-') => match procfs::write(KNOB, name) {
            Ok(()) => {
                ulib::println!("policy: now {name}");
                0
            }
            Err(e) => {
                ulib::eprintln!("policy: {name:?}: {e} (the policies: `policy`)");
                1
            }
        },
        _ => {
            ulib::eprintln!("usage: policy [NAME]");
            1
        }
    }
}
