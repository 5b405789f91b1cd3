//! What the readers of a program that prints one row per line share
//! (`bench_report` for bench, vmascale and thp, `files_report` for filebench): the
//! rows a guest printed with their measurements, its "done" line and `/init`'s lines
//! about it ([`RowOutput`]), the row names of both guests in one order
//! ([`row_names`]), the verdict, and the table's closing lines ([`write_verdicts`]).
//! Each report keeps what only its program prints and how its table reads.

use std::fmt::Write;

use super::Outcome;
use super::initramfs::{InitLine, init_line};

/// What a guest's serial output says about a row-per-line run, whatever a row
/// measures (`M`).
#[derive(Debug)]
pub struct RowOutput<M> {
    /// The rows and their measurements, in the order printed.
    pub rows: Vec<(String, M)>,
    /// The program printed its "done" line.
    pub is_done: bool,
    /// Linux only: the kernel release and THP mode.
    pub linux_kernel: Option<String>,
    /// Linux only: the program's exit status as `/init` saw it.
    pub exit_status: Option<String>,
}

impl<M> Default for RowOutput<M> {
    fn default() -> Self {
        RowOutput { rows: Vec::new(), is_done: false, linux_kernel: None, exit_status: None }
    }
}

impl<M: Copy> RowOutput<M> {
    /// Returns the measurement of the row `name`, if this run printed it.
    pub fn get(&self, name: &str) -> Option<M> {
        self.rows.iter().find(|(n, _)| n == name).map(|&(_, m)| m)
    }

    /// Keeps what `line` says if it is one of `/init`'s lines (the kernel, the exit status).
    pub fn read_init_line(&mut self, line: &str) {
        match init_line(line) {
            Some(InitLine::Kernel(kernel)) => self.linux_kernel = Some(kernel.to_string()),
            Some(InitLine::ExitStatus(status)) => self.exit_status = Some(status.to_string()),
            None => {}
        }
    }

    /// Returns true if the run printed rows and its "done" line, and (with
    /// `needs_status`, on Linux) `/init` saw it exit with 0.
    pub fn is_complete(&self, needs_status: bool) -> bool {
        self.is_done && !self.rows.is_empty() && (!needs_status || self.exit_status.as_deref() == Some("0"))
    }

    /// Returns "ok" or what went wrong, in a few words; `has_started` says whether
    /// the program printed anything of its run, `not_started` what it lacks if not.
    pub fn verdict(&self, has_started: bool, not_started: &str) -> String {
        match (self.is_done, self.exit_status.as_deref()) {
            (true, None | Some("0")) => format!("ok: {} rows, every check passed", self.rows.len()),
            (_, Some(status)) if status != "0" => format!("failed: exit status {status}"),
            _ if !has_started => format!("did not start ({not_started})"),
            _ => format!("did not finish: {} rows, no \"done\" line", self.rows.len()),
        }
    }
}

/// Returns the names of the rows of both runs: ours in the order printed, then those
/// only Linux printed.
pub fn row_names<'a, M: Copy>(ours: &'a RowOutput<M>, linux: &'a RowOutput<M>) -> Vec<&'a str> {
    let mut names: Vec<&str> = ours.rows.iter().map(|(n, _)| n.as_str()).collect();
    names.extend(linux.rows.iter().map(|(n, _)| n.as_str()).filter(|n| ours.get(n).is_none()));
    names
}

/// Writes the table's last lines: ours (`ours`, after `ours:  `), then Linux's
/// (`(line, kernel release)`) or that Linux did not run.
pub fn write_verdicts(out: &mut String, ours: &str, linux: Option<(String, Option<&str>)>) {
    let _ = writeln!(out, "\nours:  {ours}");
    match linux {
        Some((line, kernel)) => {
            let _ = writeln!(out, "Linux: {line}");
            let _ = writeln!(out, "Linux: {}", kernel.unwrap_or("(no version line)"));
        }
        None => {
            let _ = writeln!(out, "Linux: did not run");
        }
    }
}

/// Returns the comparison's [`Outcome`]: `table`, and `failure` of each side (called
/// with whether the side needs `/init`'s exit status, true for Linux).
pub fn outcome<R>(ours: &R, linux: Option<&R>, table: String, failure: impl Fn(&R, bool) -> Option<String>) -> Outcome {
    Outcome { table, ours_failure: failure(ours, false), linux_failure: linux.and_then(|l| failure(l, true)) }
}

/// Returns `text`'s lines, as the consoles hand them over (for the reports' tests).
#[cfg(test)]
pub fn lines(text: &str) -> Vec<String> {
    text.lines().map(String::from).collect()
}
