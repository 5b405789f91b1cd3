//! Reading `filebench`'s output back, and the file I/O table of both guests side by
//! side with the measured speed ratios (`--linux-peer=files`).
//!
//! filebench prints one line per row (see `kernel/user/src/bin/filebench.rs`): the
//! name padded, then a throughput (`mibps=`, higher is faster) or a time per
//! operation (`us=`, lower is faster); a row a kernel cannot run is a `note:`:
//!
//! ```text
//! filebench: row=write + fsync (64 MiB)                  mibps=19.1
//! filebench: row=fork + exec + wait, bin/true_c (per round)  us=1867.95
//! filebench: note: mmap MAP_SHARED of a file: ENODEV here: no shared-mapping row
//! filebench: done in 7648 ms
//! ```
//!
//! "done" is its last line: the run reached its end with every check passed. The
//! table's last column is the *speed* of ours against Linux's, so that both kinds
//! of row read the same way: above 1 we are faster (MiB/s: ours / Linux's; µs:
//! Linux's / ours).

use std::fmt::Write;

use super::Outcome;
use super::row_output::{self, RowOutput};

/// The start of a row line.
const ROW: &str = "filebench: row=";
/// The start of a note line.
const NOTE: &str = "filebench: note: ";
/// The start of the last line.
const DONE: &str = "filebench: done";
/// How a failed check starts (`ulib::check!`).
const FAIL: &str = "FAIL: ";

/// A row's measurement.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// Throughput in MiB/s: higher is faster.
    MibPerSec(f64),
    /// Microseconds per operation: lower is faster.
    Micros(f64),
}

impl Measure {
    /// Returns the value and its unit, for the table.
    fn show(self) -> String {
        match self {
            Measure::MibPerSec(v) => format!("{v:.1} MiB/s"),
            Measure::Micros(v) => format!("{v:.2} us"),
        }
    }
}

/// What one guest's serial output says about its filebench run.
#[derive(Debug, Default)]
pub struct FilesRun {
    /// The rows and their measurements, the "done" line, `/init`'s lines.
    pub output: RowOutput<Measure>,
    /// The notes: rows this kernel could not run, and why.
    pub notes: Vec<String>,
    /// The first failed check, if one failed.
    pub failure: Option<String>,
}

/// Reads a row line's `(name, measure)`, if `line` holds one.
fn row(line: &str) -> Option<(String, Measure)> {
    let rest = line[line.find(ROW)? + ROW.len()..].trim_end();
    let (name, value) = rest.rsplit_once(' ')?;
    let (unit, number) = value.split_once('=')?;
    let number: f64 = number.parse().ok()?;
    let measure = match unit {
        "mibps" => Measure::MibPerSec(number),
        "us" => Measure::Micros(number),
        _ => return None,
    };
    (number.is_finite() && !name.trim().is_empty()).then(|| (name.trim().to_string(), measure))
}

/// Reads a guest's serial output.
pub fn parse(lines: &[String]) -> FilesRun {
    let mut run = FilesRun::default();
    for line in lines {
        run.output.read_init_line(line);
        if let Some(row) = row(line) {
            run.output.rows.push(row);
        } else if let Some(at) = line.find(NOTE) {
            run.notes.push(line[at + NOTE.len()..].trim().to_string());
        } else if line.contains(DONE) {
            run.output.is_done = true;
        } else if let Some(at) = line.find(FAIL).filter(|_| run.failure.is_none()) {
            run.failure = Some(line[at + FAIL.len()..].trim().to_string());
        } else if line.contains("linux-peer: ") && line.contains(" failed") {
            run.notes.push(line[line.find("linux-peer: ").unwrap_or(0)..].trim().to_string());
        }
    }
    run
}

/// Returns the speed of ours against Linux's as `0.51x` (above 1: ours is faster),
/// or `-` without both numbers of one kind.
fn speed_ratio(ours: Option<Measure>, linux: Option<Measure>) -> String {
    match (ours, linux) {
        (Some(Measure::MibPerSec(o)), Some(Measure::MibPerSec(l))) if l > 0.0 => format!("{:.2}x", o / l),
        (Some(Measure::Micros(o)), Some(Measure::Micros(l))) if o > 0.0 => format!("{:.2}x", l / o),
        _ => "-".into(),
    }
}

/// Returns the side-by-side table; `linux` is `None` when the Linux guest could not
/// run at all. `machine` describes what both guests ran on.
pub fn table(ours: &FilesRun, linux: Option<&FilesRun>, machine: &str) -> String {
    let empty = FilesRun::default();
    let theirs = linux.unwrap_or(&empty);
    let mut out = String::new();
    let _ = writeln!(out, "\nfilebench side by side: {machine}, ext2 on virtio-blk");
    let _ = writeln!(out, "each row measured in its own guest; speed ours/Linux above 1: we are faster");
    let _ = writeln!(out, "(MiB/s rows: ours / Linux; us rows: Linux / ours)\n");
    let _ = writeln!(out, "{:<52} {:>14} {:>14} {:>11}", "row", "ours", "Linux", "speed o/L");
    let column = |m: Option<Measure>| m.map_or("-".to_string(), Measure::show);
    for name in row_output::row_names(&ours.output, &theirs.output) {
        let (o, l) = (ours.output.get(name), theirs.output.get(name));
        let _ = writeln!(out, "{name:<52} {:>14} {:>14} {:>11}", column(o), column(l), speed_ratio(o, l));
    }
    for (who, run) in [("ours", ours), ("Linux", theirs)] {
        for note in &run.notes {
            let _ = writeln!(out, "note, {who}: {note}");
        }
    }
    let line = |run: &FilesRun| format!("filebench {}", verdict(run));
    row_output::write_verdicts(&mut out, &line(ours), linux.map(|l| (line(l), l.output.linux_kernel.as_deref())));
    out
}

/// Returns "ok" or what went wrong, in a few words.
pub fn verdict(run: &FilesRun) -> String {
    if let Some(failure) = &run.failure {
        return format!("failed a check: {failure}");
    }
    run.output.verdict(!run.output.rows.is_empty(), "no filebench rows")
}

/// Reads both consoles (`linux` is `None` when Linux did not run) into the table and
/// what went wrong on either side.
pub fn outcome(ours: &[String], linux: Option<&[String]>, machine: &str) -> Outcome {
    let ours = parse(ours);
    let linux = linux.map(parse);
    let failure = |run: &FilesRun, needs_status: bool| {
        (run.failure.is_some() || !run.output.is_complete(needs_status)).then(|| verdict(run))
    };
    row_output::outcome(&ours, linux.as_ref(), table(&ours, linux.as_ref(), machine), failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux_peer::row_output::lines;

    const OURS: &str = "\
filebench: a 64 MiB file in 64 KiB calls, in the current directory
filebench: row=write + fsync (64 MiB)                     mibps=20.0
[    3.490] INFO  kernel::fs::drop_caches: drop_caches: 3: 16384 clean page-cache pages dropped
filebench: row=cold sequential read (64 MiB, caches dropped) mibps=40.0
filebench: row=map + read fault, cached file (per page)   us=50.00
filebench: note: mmap MAP_SHARED of a file: ENODEV here: no shared-mapping row
filebench: row=fork + exec + wait, bin/true_c (per round) us=2000.00
filebench: done in 7648 ms
run: filebench exited with 0";

    const LINUX: &str = "\
linux-peer: kernel 6.1.0-57-amd64, THP always [madvise] never\r
filebench: a 64 MiB file in 64 KiB calls, in the current directory\r
filebench: row=write + fsync (64 MiB)                     mibps=80.0\r
filebench: row=cold sequential read (64 MiB, caches dropped) mibps=40.0\r
filebench: row=map + read fault, cached file (per page)   us=5.00\r
filebench: row=map + read fault, fault-around off (per page) us=20.00\r
filebench: row=mmap MAP_SHARED write + msync (64 MiB)     mibps=100.0\r
filebench: row=fork + exec + wait, bin/true_c (per round) us=1000.00\r
filebench: done in 5000 ms\r
linux-peer: filebench exited with 0\r";

    #[test]
    fn rows_of_both_kinds_notes_and_the_done_line_are_read() {
        let run = parse(&lines(OURS));
        assert_eq!(run.output.rows.len(), 4);
        assert_eq!(run.output.rows[0], ("write + fsync (64 MiB)".to_string(), Measure::MibPerSec(20.0)));
        assert_eq!(run.output.get("fork + exec + wait, bin/true_c (per round)"), Some(Measure::Micros(2000.0)));
        assert_eq!(run.notes, ["mmap MAP_SHARED of a file: ENODEV here: no shared-mapping row"]);
        assert!(run.output.is_done && run.failure.is_none());
        let linux = parse(&lines(LINUX));
        assert_eq!((linux.output.rows.len(), linux.output.exit_status.as_deref()), (6, Some("0")));
        assert_eq!(linux.output.linux_kernel.as_deref(), Some("6.1.0-57-amd64, THP always [madvise] never"));
    }

    #[test]
    fn lines_that_are_not_rows_are_not_taken_for_rows() {
        assert_eq!(row("filebench: row=no number here"), None);
        assert_eq!(row("filebench: row=x mibps=fast"), None);
        assert_eq!(row("filebench: row=x ns=12.5"), None, "an unknown unit");
        assert_eq!(row("filebench: row= us=1.0"), None);
        assert_eq!(row("noise filebench: row=a b  us=1.5\r"), Some(("a b".into(), Measure::Micros(1.5))));
    }

    #[test]
    fn the_table_gives_each_row_the_speed_of_ours_against_linux() {
        let table = table(&parse(&lines(OURS)), Some(&parse(&lines(LINUX))), "test machine");
        let row_of = |start: &str| table.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        let write = row_of("write + fsync");
        assert!(write.contains(" 20.0 MiB/s ") && write.contains(" 80.0 MiB/s ") && write.ends_with(" 0.25x"), "{write}");
        assert!(row_of("cold sequential read").ends_with(" 1.00x"));
        assert!(row_of("map + read fault, cached").ends_with(" 0.10x"), "10x the time: a tenth of the speed");
        assert!(row_of("fork + exec").ends_with(" 0.50x"));
        let shared = row_of("mmap MAP_SHARED");
        assert!(shared.contains(" - ") && shared.ends_with(" -"), "only Linux has it: {shared}");
        assert!(table.contains("note, ours: mmap MAP_SHARED of a file: ENODEV"), "{table}");
        assert!(table.contains("Linux: 6.1.0-57-amd64") && table.contains("test machine"));
        assert!(super::table(&parse(&lines(OURS)), None, "m").contains("Linux: did not run"));
    }

    #[test]
    fn a_failed_check_or_a_run_cut_short_is_a_failure() {
        let ok = outcome(&lines(OURS), Some(&lines(LINUX)), "m");
        assert_eq!((ok.ours_failure, ok.linux_failure), (None, None));
        let bad = OURS.replace("filebench: done in 7648 ms", "FAIL: cold read: the word at offset 0x1000 is 0x0");
        let failed = outcome(&lines(&bad), Some(&lines(LINUX)), "m");
        assert_eq!(failed.ours_failure.as_deref(), Some("failed a check: cold read: the word at offset 0x1000 is 0x0"));
        let cut: Vec<String> = lines(LINUX).into_iter().filter(|l| !l.contains("done")).collect();
        assert_eq!(outcome(&lines(OURS), Some(&cut), "m").linux_failure.as_deref(), Some("did not finish: 6 rows, no \"done\" line"));
        let status = LINUX.replace("exited with 0", "exited with 1");
        assert_eq!(outcome(&lines(OURS), Some(&lines(&status)), "m").linux_failure.as_deref(), Some("failed: exit status 1"));
        assert_eq!(verdict(&parse(&[])), "did not start (no filebench rows)");
    }
}
