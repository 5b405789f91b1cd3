//! Running on Linux: reading Linux's own memory counters from `/proc`.
//!
//! A ulib program is a static ELF executable that speaks Linux's syscall ABI (the
//! numbers and conventions of [`abi`]), so the very same file runs on this kernel
//! and on Linux. The swap benchmark relies on that: `cargo run --release --
//! --linux-peer` boots a Linux guest with the `swapload` program in its initramfs.
//! There `memstat` does not exist (`ENOSYS`), and the program reads `/proc/vmstat`
//! instead, with the calls below; on this kernel there is no `/proc` and `read_file`
//! answers `ENOENT`. The
//! fault-path benchmark `bench` does the same (`--linux-peer=bench`): free memory
//! from `/proc/meminfo`, its resident pages from `/proc/self/statm`, its minor
//! faults from `/proc/self/stat`.

use core::ffi::CStr;

use abi::{Errno, nr};

use crate::syscall::{syscall1, syscall3};

/// Reads the file at `path` into `buf`; returns the number of bytes read (at most
/// `buf.len()`: a longer file is cut).
pub fn read_file(path: &CStr, buf: &mut [u8]) -> Result<usize, Errno> {
    const O_RDONLY: u64 = 0;
    // SAFETY: `path` is NUL-terminated and valid for reads; open writes no memory of ours.
    let fd = Errno::from_ret(unsafe { syscall3(nr::OPEN, path.as_ptr() as u64, O_RDONLY, 0) })?;
    let mut len = 0;
    let result = loop {
        let rest = &mut buf[len..];
        if rest.is_empty() {
            break Ok(len);
        }
        // SAFETY: `rest` is valid for writes of `rest.len()` bytes.
        match Errno::from_ret(unsafe { syscall3(nr::READ, fd, rest.as_mut_ptr() as u64, rest.len() as u64) }) {
            Ok(0) => break Ok(len),
            Ok(n) => len += n as usize,
            Err(e) => break Err(e),
        }
    };
    // SAFETY: close touches no memory of ours.
    unsafe { syscall1(nr::CLOSE, fd) };
    result
}

/// Returns the number after `name` on the line of `text` that starts with it, as in
/// `/proc/vmstat` (`pswpin 1234`) or `/proc/meminfo` (`MemTotal:  123 kB`).
pub fn field(text: &[u8], name: &str) -> Option<u64> {
    let text = core::str::from_utf8(text).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = rest.strip_prefix(':').unwrap_or(rest);
        if !rest.starts_with(char::is_whitespace) {
            return None; // a longer name that starts with `name`
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Returns the `index`-th (from 0) whitespace-separated number of `text`, as in
/// `/proc/self/statm` (`size resident shared text lib data dt`, in pages).
pub fn number_at(text: &[u8], index: usize) -> Option<u64> {
    core::str::from_utf8(text).ok()?.split_whitespace().nth(index)?.parse().ok()
}

/// Returns field `number` of a `/proc/PID/stat` line, numbered from 1 as in
/// proc(5) (field 10 is `minflt`). The second field, the command name in
/// parentheses, may itself hold spaces and parentheses, so fields are counted from
/// the last `)`: field 3 is the first word after it.
pub fn stat_field(text: &[u8], number: usize) -> Option<u64> {
    let text = core::str::from_utf8(text).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    after_name.split_whitespace().nth(number.checked_sub(3)?)?.parse().ok()
}
