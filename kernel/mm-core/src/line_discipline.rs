//! The console's line discipline: from keystrokes to the lines `read(0, ...)` returns.
//!
//! A terminal sends one byte per key. In *canonical* mode (what a shell reads in,
//! Linux's `n_tty` with `ICANON`), the kernel keeps the line being typed, echoes
//! what it can show, applies the editing keys, and hands a reader only complete
//! lines:
//!
//! ```text
//!   key            byte      what happens
//!   ----------     ----      ------------------------------------------------
//!   a letter       0x20..    appended to the line, echoed
//!   Enter          \r or \n  the line + '\n' becomes readable (\r is turned
//!                            into \n, as ICRNL does), "\n" echoed
//!   Backspace      0x7f 0x08 the last byte of the line is erased, "\b \b" echoed
//!   Ctrl-U         0x15      the whole line is erased
//!   Ctrl-C         0x03      the line is dropped, "^C\n" echoed, and the caller
//!                            is told to interrupt the foreground job (ISIG)
//!   Ctrl-D         0x04      the line so far becomes readable *without* a newline;
//!                            on an empty line, that is a read of 0 bytes: end of file
//! ```
//! Readable input is a queue of [`Chunk`]s; a read takes bytes from the first chunk
//! only, so one read never returns more than one line (as on Linux), and an empty
//! chunk (Ctrl-D on an empty line) is a read of 0 bytes, after which reading goes
//! on with what was typed next.
//!
//! The kernel side (`kernel/src/tty.rs`) feeds bytes from the serial interrupt,
//! prints the echo, kills the foreground job on an interrupt, and lets readers
//! sleep until [`LineDiscipline::has_input`].

use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// The longest line: bytes beyond it are dropped (Linux's `N_TTY_BUF_SIZE` is 4096).
pub const MAX_LINE: usize = 4095;
/// The most completed lines kept for readers; further lines are dropped.
pub const MAX_CHUNKS: usize = 64;

/// Ctrl-C.
pub const CTRL_C: u8 = 0x03;
/// Ctrl-D.
pub const CTRL_D: u8 = 0x04;
/// Ctrl-U.
pub const CTRL_U: u8 = 0x15;
/// Backspace as most terminals send it (DEL).
pub const DEL: u8 = 0x7f;
/// Backspace as some terminals send it (BS).
pub const BS: u8 = 0x08;

/// One piece of readable input: a line with its `\n`, the part of a line before a
/// Ctrl-D, or nothing (end of file).
type Chunk = Vec<u8>;

/// What the caller must do after feeding a byte.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Feedback {
    /// Bytes to print back to the terminal.
    pub echo: Vec<u8>,
    /// Ctrl-C was typed: interrupt the foreground job.
    pub is_interrupt: bool,
    /// New input became readable: wake the readers.
    pub has_new_input: bool,
}

/// The state of a canonical-mode terminal.
#[derive(Debug, Default)]
pub struct LineDiscipline {
    /// The line being typed.
    line: Vec<u8>,
    /// Completed input, oldest first.
    ready: VecDeque<Chunk>,
}

impl LineDiscipline {
    /// Creates an empty discipline: no line typed, nothing to read.
    pub const fn new() -> Self {
        Self { line: Vec::new(), ready: VecDeque::new() }
    }

    /// Processes one received byte and says what to echo and whom to tell.
    pub fn feed(&mut self, byte: u8) -> Feedback {
        let mut feedback = Feedback::default();
        match byte {
            b'\r' | b'\n' => {
                self.line.push(b'\n');
                feedback.echo.push(b'\n');
                feedback.has_new_input = self.complete_line();
            }
            CTRL_D => feedback.has_new_input = self.complete_line(),
            CTRL_C => {
                self.line.clear();
                feedback.echo.extend_from_slice(b"^C\n");
                feedback.is_interrupt = true;
            }
            CTRL_U => {
                for _ in 0..self.line.len() {
                    feedback.echo.extend_from_slice(b"\x08 \x08");
                }
                self.line.clear();
            }
            DEL | BS => {
                if self.line.pop().is_some() {
                    feedback.echo.extend_from_slice(b"\x08 \x08");
                }
            }
            byte if self.line.len() < MAX_LINE && (byte >= 0x20 || byte == b'\t') => {
                self.line.push(byte);
                feedback.echo.push(byte);
            }
            _ => {} // other control bytes, or the line is full: ignored
        }
        feedback
    }

    /// Moves the typed line (maybe empty) to the readable queue; false if the
    /// queue was full and the line was dropped.
    fn complete_line(&mut self) -> bool {
        let line = core::mem::take(&mut self.line);
        if self.ready.len() >= MAX_CHUNKS {
            return false;
        }
        self.ready.push_back(line);
        true
    }

    /// Returns true if a read would return at once (a line, or an end of file).
    pub fn has_input(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Copies up to `buf.len()` bytes of the first readable chunk into `buf` and
    /// returns how many; 0 with no input or at an end of file (the caller tells the
    /// two apart with [`has_input`](Self::has_input) before).
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let Some(chunk) = self.ready.front_mut() else {
            return 0;
        };
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        chunk.drain(..n);
        if chunk.is_empty() {
            self.ready.pop_front();
        }
        n
    }

    /// Returns the line being typed (not yet readable).
    pub fn pending_line(&self) -> &[u8] {
        &self.line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(ld: &mut LineDiscipline, bytes: &[u8]) -> Vec<u8> {
        bytes.iter().flat_map(|&b| ld.feed(b).echo).collect()
    }

    fn read_all(ld: &mut LineDiscipline, len: usize) -> Vec<u8> {
        let mut buf = alloc::vec![0u8; len];
        let n = ld.read(&mut buf);
        buf.truncate(n);
        buf
    }

    #[test]
    fn a_line_is_readable_only_after_enter() {
        let mut ld = LineDiscipline::new();
        assert_eq!(feed_all(&mut ld, b"ls -l"), b"ls -l");
        assert!(!ld.has_input());
        assert!(ld.feed(b'\r').has_new_input);
        assert_eq!(read_all(&mut ld, 100), b"ls -l\n");
        assert!(!ld.has_input());
    }

    #[test]
    fn one_read_returns_at_most_one_line() {
        let mut ld = LineDiscipline::new();
        feed_all(&mut ld, b"one\ntwo\n");
        assert_eq!(read_all(&mut ld, 100), b"one\n");
        assert_eq!(read_all(&mut ld, 2), b"tw");
        assert_eq!(read_all(&mut ld, 100), b"o\n");
    }

    #[test]
    fn backspace_erases_and_echoes_an_erase() {
        let mut ld = LineDiscipline::new();
        let echo = feed_all(&mut ld, b"cax\x7f\x08t\n");
        assert_eq!(echo, b"cax\x08 \x08\x08 \x08t\n");
        assert_eq!(read_all(&mut ld, 100), b"ct\n");
        // Backspace on an empty line erases nothing and echoes nothing.
        assert_eq!(ld.feed(DEL).echo, b"");
    }

    #[test]
    fn ctrl_c_drops_the_line_and_asks_for_an_interrupt() {
        let mut ld = LineDiscipline::new();
        feed_all(&mut ld, b"runaway");
        let feedback = ld.feed(CTRL_C);
        assert!(feedback.is_interrupt);
        assert_eq!(feedback.echo, b"^C\n");
        assert!(!ld.has_input());
        feed_all(&mut ld, b"ok\n");
        assert_eq!(read_all(&mut ld, 100), b"ok\n");
    }

    #[test]
    fn ctrl_d_on_an_empty_line_is_end_of_file_then_reading_goes_on() {
        let mut ld = LineDiscipline::new();
        assert!(ld.feed(CTRL_D).has_new_input);
        feed_all(&mut ld, b"after\n");
        assert!(ld.has_input());
        assert_eq!(read_all(&mut ld, 100), b"");
        assert_eq!(read_all(&mut ld, 100), b"after\n");
    }

    #[test]
    fn ctrl_d_after_text_makes_it_readable_without_a_newline() {
        let mut ld = LineDiscipline::new();
        feed_all(&mut ld, b"abc");
        ld.feed(CTRL_D);
        assert_eq!(read_all(&mut ld, 100), b"abc");
    }

    #[test]
    fn ctrl_u_erases_the_whole_line() {
        let mut ld = LineDiscipline::new();
        feed_all(&mut ld, b"rm x");
        let echo = ld.feed(CTRL_U).echo;
        assert_eq!(echo.len(), 4 * 3);
        feed_all(&mut ld, b"ls\n");
        assert_eq!(read_all(&mut ld, 100), b"ls\n");
    }

    #[test]
    fn a_full_line_drops_further_bytes_but_still_ends() {
        let mut ld = LineDiscipline::new();
        for _ in 0..MAX_LINE + 10 {
            ld.feed(b'x');
        }
        assert_eq!(ld.pending_line().len(), MAX_LINE);
        ld.feed(b'\n');
        assert_eq!(read_all(&mut ld, 8192).len(), MAX_LINE + 1);
    }
}
