//! The kernel command line: words the runner passed through QEMU's fw_cfg.
//!
//! `cargo run -- --bench` becomes the command line `bench`; `--cmdline "a b"` passes
//! arbitrary words. [`has`] asks whether a word is present, [`value`] reads a
//! `key=value` word.

use spin::Once;

const MAX_LEN: usize = 256;

struct CmdLine {
    bytes: [u8; MAX_LEN],
    len: usize,
}

static CMDLINE: Once<CmdLine> = Once::new();

/// Returns the command line (empty if the runner passed none).
pub fn get() -> &'static str {
    let line = CMDLINE.call_once(|| {
        let mut bytes = [0u8; MAX_LEN];
        let len = crate::arch::fw_cfg::read_file("opt/kernel/cmdline", &mut bytes).unwrap_or(0);
        CmdLine { bytes, len }
    });
    core::str::from_utf8(&line.bytes[..line.len]).unwrap_or("").trim_end_matches('\0')
}

/// Returns true if `word` is one of the command line's whitespace-separated words.
pub fn has(word: &str) -> bool {
    get().split_whitespace().any(|w| w == word)
}

/// Returns the value of the first `key=value` word, if there is one.
pub fn value(key: &str) -> Option<&'static str> {
    get().split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}
