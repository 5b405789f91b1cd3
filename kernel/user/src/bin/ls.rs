//! `ls [DIR]...`: the names in each directory (the current one without an
//! argument), one per line, `.` and `..` left out. A name that is not a directory
//! is printed as itself; one that does not exist: a message and exit code 1.
#![no_std]
#![no_main]

use ulib::fs::{self, o};

ulib::entry!(main);

/// Lists `path`; returns the error that stopped it.
fn list(path: &str) -> Result<(), ulib::Errno> {
    let st = fs::with_cstr(path, fs::stat)?;
    if st.st_mode & abi::mode::S_IFMT != abi::mode::S_IFDIR {
        ulib::println!("{path}");
        return Ok(());
    }
    let fd = fs::with_cstr(path, |c| fs::open(c, o::RDONLY | o::DIRECTORY, 0))?;
    let mut buf = [0u8; 4096];
    let result = loop {
        match fs::getdents64(fd, &mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                for entry in fs::dirents(&buf[..n]) {
                    if entry.name != b"." && entry.name != b".." {
                        ulib::println!("{}", core::str::from_utf8(entry.name).unwrap_or("?"));
                    }
                }
            }
            Err(e) => break Err(e),
        }
    };
    let _ = fs::close(fd);
    result
}

fn main() -> i32 {
    let mut status = 0;
    let mut nr = 0;
    for path in ulib::argv::args() {
        nr += 1;
        if let Err(e) = list(path) {
            ulib::eprintln!("ls: {path}: {e}");
            status = 1;
        }
    }
    if nr == 0
        && let Err(e) = list(".")
    {
        ulib::eprintln!("ls: .: {e}");
        status = 1;
    }
    status
}
