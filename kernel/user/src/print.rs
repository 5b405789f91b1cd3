//! The console: [`print!`](crate::print!) and [`println!`](crate::println!) on fd 1,
//! [`eprint!`](crate::eprint!) and [`eprintln!`](crate::eprintln!) on fd 2.
//!
//! Each macro call formats into a small buffer on the stack and hands it to the
//! kernel in as few `write`s as possible (one for a line under 256 bytes), so lines
//! from processes running at the same time do not interleave mid-line.

use core::fmt::{self, Write};

/// Standard output: the kernel's console.
pub const STDOUT: i32 = 1;

/// Formats into a fixed buffer and writes it out whenever it fills up.
struct Console {
    fd: i32,
    buf: [u8; 256],
    len: usize,
}

impl Console {
    /// Writes out whatever is buffered; a console error is dropped (where would it go?).
    fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            match crate::sys::write(self.fd, &self.buf[done..self.len]) {
                Ok(n) if n > 0 => done += n,
                _ => break,
            }
        }
        self.len = 0;
    }
}

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &byte in s.as_bytes() {
            if self.len == self.buf.len() {
                self.flush();
            }
            self.buf[self.len] = byte;
            self.len += 1;
        }
        Ok(())
    }
}

/// Prints formatted text on standard output; the macros call this.
pub fn _print(args: fmt::Arguments<'_>) {
    _print_to(STDOUT, args);
}

/// Standard error.
pub const STDERR: i32 = 2;

/// Prints formatted text on file descriptor `fd`; the macros call this.
pub fn _print_to(fd: i32, args: fmt::Arguments<'_>) {
    let mut console = Console { fd, buf: [0; 256], len: 0 };
    let _ = console.write_fmt(args);
    console.flush();
}

/// Prints to the console, like `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::print::_print(format_args!($($arg)*)) };
}

/// Prints to the console with a newline, like `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::print::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints to standard error, like `std::eprint!`.
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::print::_print_to($crate::print::STDERR, format_args!($($arg)*)) };
}

/// Prints to standard error with a newline, like `std::eprintln!`.
#[macro_export]
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::print::_print_to($crate::print::STDERR, format_args!("{}\n", format_args!($($arg)*))) };
}
