//! `cat [FILE]...`: copies each file (standard input without one, or for `-`) to
//! standard output. A file that cannot be opened or read: a message on standard
//! error, the others are still copied, and the exit code is 1 (as coreutils does).
#![no_std]
#![no_main]

use ulib::fs;

ulib::entry!(main);

/// Copies `fd` to standard output; returns the error that stopped it, if any.
fn copy(fd: i32) -> Result<(), ulib::Errno> {
    let mut buf = [0u8; 4096];
    loop {
        let n = fs::read(fd, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        fs::write_all(1, &buf[..n])?;
    }
}

fn main() -> i32 {
    let mut status = 0;
    let mut nr_files = 0;
    for path in ulib::argv::args() {
        nr_files += 1;
        let result = if path == "-" { copy(0) } else { cat_path(path) };
        if let Err(e) = result {
            ulib::eprintln!("cat: {path}: {e}");
            status = 1;
        }
    }
    if nr_files == 0
        && let Err(e) = copy(0)
    {
        ulib::eprintln!("cat: -: {e}");
        status = 1;
    }
    status
}

/// Opens `path` and copies it.
fn cat_path(path: &str) -> Result<(), ulib::Errno> {
    let fd = fs::with_cstr(path, |c| fs::open(c, fs::o::RDONLY, 0))?;
    let result = copy(fd);
    let _ = fs::close(fd);
    result
}
