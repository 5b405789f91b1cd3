//! Console output: `print!`/`println!` on COM1 and a `log` facade backend.
//!
//! Log lines look like `[    1.230] INFO  kernel::mm: message` (uptime from the
//! timer tick). The level defaults to `Info`; set it at build time with
//! `KERNEL_LOG=debug cargo run` or at run time with [`set_level`].

use core::fmt::{self, Write};
use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::arch::{serial, timer};

/// Prints to the serial console.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::klog::_print(format_args!($($arg)*)) };
}

/// Prints to the serial console, with a newline.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => { $crate::klog::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    serial::with_console(|port| {
        let _ = port.write_fmt(args);
    });
}

struct SerialLogger;

impl Log for SerialLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ms = timer::uptime_ms();
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARN ",
            Level::Info => "INFO ",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        serial::with_console(|port| {
            let _ = writeln!(
                port,
                "[{:5}.{:03}] {} {}: {}",
                ms / 1000,
                ms % 1000,
                level,
                record.target(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

static LOGGER: SerialLogger = SerialLogger;

/// Returns the level chosen at build time through `KERNEL_LOG` (default `info`).
fn build_time_level() -> LevelFilter {
    match option_env!("KERNEL_LOG") {
        Some("off") => LevelFilter::Off,
        Some("error") => LevelFilter::Error,
        Some("warn") => LevelFilter::Warn,
        Some("debug") => LevelFilter::Debug,
        Some("trace") => LevelFilter::Trace,
        _ => LevelFilter::Info,
    }
}

/// Initialises the serial port and installs the logger.
pub fn init() {
    serial::init();
    // A second call (never made) would fail harmlessly: the logger stays installed.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(build_time_level());
}

/// Changes the log level at run time.
pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}
