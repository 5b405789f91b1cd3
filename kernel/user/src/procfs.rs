//! Reading `/proc` without a heap: the tools (`vmstat`, `top`, `pmap`, `policy`,
//! `swapinfo`) read a file whole into a buffer of theirs and pick fields out of
//! the text, as procps does on Linux.

use core::fmt::{self, Write};

use abi::Errno;

use crate::fs::{self, o};

/// A short string built in place (a path such as `/proc/12/smaps`).
pub struct ShortString {
    bytes: [u8; 96],
    len: usize,
}

impl ShortString {
    /// Formats `args` (cut at 96 bytes).
    pub fn new(args: fmt::Arguments<'_>) -> ShortString {
        let mut s = ShortString { bytes: [0; 96], len: 0 };
        let _ = s.write_fmt(args);
        s
    }

    /// Returns the text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl Write for ShortString {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let n = text.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&text.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Reads the file at `path` into `buf` (cut at its size); returns the text.
pub fn read<'a>(path: &str, buf: &'a mut [u8]) -> Result<&'a str, Errno> {
    let fd = fs::with_cstr(path, |c| fs::open(c, o::RDONLY, 0))?;
    let n = fs::read_full(fd, buf);
    let _ = fs::close(fd);
    Ok(core::str::from_utf8(&buf[..n?]).unwrap_or(""))
}

/// Writes `text` to the file at `path` in one write (a `/proc/sys` knob).
pub fn write(path: &str, text: &str) -> Result<(), Errno> {
    let fd = fs::with_cstr(path, |c| fs::open(c, o::WRONLY, 0))?;
    let result = fs::write_all(fd, text.as_bytes());
    let _ = fs::close(fd);
    result
}

/// Returns the number after `name` on its line (`name 12`, `Name:   12 kB`), or 0.
pub fn field(text: &str, name: &str) -> u64 {
    crate::linux::field(text.as_bytes(), name).unwrap_or(0)
}

/// Calls `visit_fn` with the pid of every process in `/proc`.
pub fn for_each_pid(mut visit_fn: impl FnMut(u64)) -> Result<(), Errno> {
    let fd = fs::with_cstr("/proc", |c| fs::open(c, o::RDONLY | o::DIRECTORY, 0))?;
    let mut buf = [0u8; 2048];
    while let Ok(n) = fs::getdents64(fd, &mut buf) {
        if n == 0 {
            break;
        }
        for entry in fs::dirents(&buf[..n]) {
            if let Some(pid) = core::str::from_utf8(entry.name).ok().and_then(|name| name.parse().ok()) {
                visit_fn(pid);
            }
        }
    }
    let _ = fs::close(fd);
    Ok(())
}

/// Parses a PID argument: a positive number, or `None`.
pub fn parse_pid(text: &str) -> Option<u64> {
    text.parse().ok().filter(|&pid| pid > 0)
}
