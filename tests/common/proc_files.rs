//! Reading and writing `/proc` files as text, for the procfs test images
//! (`tests/procfs.rs`, `tests/procfs_mem.rs`), which include this module with
//! `#[path = "common/proc_files.rs"] mod proc_files;`.

use alloc::string::String;
use alloc::vec::Vec;

use kernel::fs::{self, FsError, path};

/// Returns the whole text of `path`.
pub fn read(path_text: &str) -> Result<String, FsError> {
    let inode = path::resolve(&fs::root(), path_text)?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 512];
    loop {
        let n = inode.read_at(text.len() as u64, &mut chunk)?;
        if n == 0 {
            return Ok(String::from_utf8(text).expect("procfs text is UTF-8"));
        }
        text.extend_from_slice(&chunk[..n]);
    }
}

/// Writes `text` to the knob at `path`, as `echo text > path` does (at offset 0).
pub fn write(path_text: &str, text: &str) -> Result<usize, FsError> {
    path::resolve(&fs::root(), path_text)?.write_at(0, text.as_bytes())
}

/// Returns the number after `name` in the `Name:   123 kB` / `name 123` line of
/// `text` (leading blanks skipped, as zoneinfo indents its lines).
pub fn field(text: &str, name: &str) -> u64 {
    let line = text
        .lines()
        .map(str::trim_start)
        .find(|l| l.split([':', ' ', '\t']).next() == Some(name))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"));
    let value = line[name.len()..].trim_start_matches(':').split_whitespace().next().expect("a value");
    value.parse().unwrap_or_else(|_| panic!("{name}: {value:?} is not a number"))
}
