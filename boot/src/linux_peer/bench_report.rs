//! Reading `bench`'s output back, and the fault-path table of both guests side by
//! side with the measured ratios (`--linux-peer=bench`).
//!
//! bench prints one line per operation (see `kernel/user/src/bin/bench.rs`), the
//! name padded, then the ns per operation:
//!
//! ```text
//! bench: op=anonymous write fault (per page)         ns=4321.5
//! bench: warm-up wrote 58365 pages (227 MiB) first, 49032 ns per page
//! bench: done in 4553 ms
//! ```
//!
//! "done" is its last line: the run reached its end with every check passed. The
//! Linux guest's `/init` adds its kernel line and the exit status (`initramfs`).
//! The ratio is ours / Linux: below 1 we are faster.

use std::fmt::Write;

use super::Outcome;
use super::row_output::{self, RowOutput};

/// The start of a row line.
const ROW: &str = "bench: op=";
/// What separates a row's name from its ns.
const NS: &str = " ns=";
/// The start of the warm-up line.
const WARM_UP: &str = "bench: warm-up ";
/// The start of a line giving a fault row as a multiple of its floor (our kernel only).
const FLOOR: &str = "bench: floor: ";
/// The start of the last line.
const DONE: &str = "bench: done";

/// What one guest's serial output says about its bench run.
#[derive(Debug, Default)]
pub struct BenchRun {
    /// The operations and their ns per operation, the "done" line, `/init`'s lines.
    pub output: RowOutput<f64>,
    /// The warm-up line, after `bench: warm-up `.
    pub warm_up: Option<String>,
    /// Each fault row as a multiple of its floor, as bench printed it (after `bench: floor: `).
    pub floors: Vec<String>,
}

/// Reads a row line's `(name, ns)`, if `line` holds one.
fn row(line: &str) -> Option<(String, f64)> {
    let rest = &line[line.find(ROW)? + ROW.len()..];
    let (name, ns) = rest.rsplit_once(NS)?;
    let ns: f64 = ns.trim().parse().ok()?;
    (ns.is_finite() && !name.trim().is_empty()).then(|| (name.trim().to_string(), ns))
}

/// Reads a guest's serial output.
pub fn parse(lines: &[String]) -> BenchRun {
    let mut run = BenchRun::default();
    for line in lines {
        run.output.read_init_line(line);
        if let Some(row) = row(line) {
            run.output.rows.push(row);
        } else if let Some(at) = line.find(FLOOR) {
            run.floors.push(line[at + FLOOR.len()..].trim().to_string());
        } else if let Some(at) = line.find(WARM_UP) {
            run.warm_up = Some(line[at + WARM_UP.len()..].trim().to_string());
        } else if line.contains(DONE) {
            run.output.is_done = true;
        }
    }
    run
}

/// Returns ours / Linux as `0.51x`, or `-` without both numbers.
fn ratio(ours: Option<f64>, linux: Option<f64>) -> String {
    match (ours, linux) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

/// Returns `ns` with one decimal, or `-`.
fn ns_column(ns: Option<f64>) -> String {
    ns.map_or("-".into(), |ns| format!("{ns:.1}"))
}

/// Returns the side-by-side table; `linux` is `None` when the Linux guest could not
/// run at all. `machine` describes what both guests ran on.
pub fn table(ours: &BenchRun, linux: Option<&BenchRun>, machine: &str) -> String {
    let empty = BenchRun::default();
    let theirs = linux.unwrap_or(&empty);
    let mut out = String::new();
    let _ = writeln!(out, "\nbench side by side: {machine}");
    let _ = writeln!(out, "ns per operation, each measured in its own guest; ours/Linux below 1: we are faster\n");
    let _ = writeln!(out, "{:<40} {:>12} {:>12} {:>11}", "operation", "ours ns", "Linux ns", "ours/Linux");
    for name in row_output::row_names(&ours.output, &theirs.output) {
        let (o, l) = (ours.output.get(name), theirs.output.get(name));
        let _ = writeln!(out, "{name:<40} {:>12} {:>12} {:>11}", ns_column(o), ns_column(l), ratio(o, l));
    }
    if !ours.floors.is_empty() {
        let _ = writeln!(out, "\nours against its floors (measured in the same run):");
        for floor in &ours.floors {
            let _ = writeln!(out, "  {floor}");
        }
    }
    let warm_up = |run: &BenchRun| run.warm_up.as_deref().map_or(String::new(), |w| format!("; warm-up {w}"));
    let line = |run: &BenchRun| format!("bench {}{}", verdict(run), warm_up(run));
    row_output::write_verdicts(&mut out, &line(ours), linux.map(|l| (line(l), l.output.linux_kernel.as_deref())));
    out
}

/// Returns "ok" or what went wrong, in a few words.
pub fn verdict(run: &BenchRun) -> String {
    run.output.verdict(!run.output.rows.is_empty() || run.warm_up.is_some(), "no bench output")
}

/// Reads both consoles (`linux` is `None` when Linux did not run) into the table and
/// what went wrong on either side.
pub fn outcome(ours: &[String], linux: Option<&[String]>, machine: &str) -> Outcome {
    let ours = parse(ours);
    let linux = linux.map(parse);
    let failure = |run: &BenchRun, needs_status: bool| (!run.output.is_complete(needs_status)).then(|| verdict(run));
    row_output::outcome(&ours, linux.as_ref(), table(&ours, linux.as_ref(), machine), failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linux_peer::row_output::lines;

    const OURS: &str = "\
[    0.110] INFO  kernel::mm::swap: swap: 65535 slots
bench: warm-up wrote 58365 pages (227 MiB) first, 49032 ns per page
bench: user-mode fault paths (ns per operation)
bench: op=anonymous write fault (per page)         ns=4300.5
bench: op=read fault, zero page (per page)         ns=2100.0
bench: op=fork, 64 MiB touched (per fork)          ns=2500000.0
bench: op=exception round trip (int3)              ns=1000.0
bench: floor: anonymous write fault (per page)     2.1x its floor (2000 ns: int3 round trip + page zero)
bench: done in 4553 ms
run: bench exited with 0";

    const LINUX: &str = "\
linux-peer: kernel 6.1.0-56-amd64, THP always madvise [never]\r
bench: warm-up wrote 40000 pages (156 MiB) first, 30000 ns per page\r
bench: op=anonymous write fault (per page)         ns=8601.0\r
bench: op=read fault, zero page (per page)         ns=2100.0\r
bench: op=fork, 64 MiB touched (per fork)          ns=2000000.0\r
bench: op=null syscall (getpid)                    ns=400.0\r
bench: done in 6000 ms\r
linux-peer: bench exited with 0\r";

    #[test]
    fn rows_warm_up_and_the_done_line_are_read() {
        let run = parse(&lines(OURS));
        assert_eq!(run.output.rows.len(), 4);
        assert_eq!(run.floors, ["anonymous write fault (per page)     2.1x its floor (2000 ns: int3 round trip + page zero)"]);
        assert_eq!(run.output.rows[0], ("anonymous write fault (per page)".to_string(), 4300.5));
        assert_eq!(run.output.get("fork, 64 MiB touched (per fork)"), Some(2_500_000.0));
        assert_eq!(run.warm_up.as_deref(), Some("wrote 58365 pages (227 MiB) first, 49032 ns per page"));
        assert!(run.output.is_done);
        assert_eq!(run.output.exit_status, None, "our kernel's run line is not /init's");
        let linux = parse(&lines(LINUX));
        assert_eq!(linux.output.exit_status.as_deref(), Some("0"));
        assert_eq!(linux.output.linux_kernel.as_deref(), Some("6.1.0-56-amd64, THP always madvise [never]"));
        assert_eq!(linux.output.get("null syscall (getpid)"), Some(400.0));
    }

    #[test]
    fn lines_that_are_not_rows_are_not_taken_for_rows() {
        assert_eq!(row("bench: op=no number here"), None);
        assert_eq!(row("bench: op= ns=12.5"), None);
        assert_eq!(row("bench: op=x ns=fast"), None);
        assert_eq!(row("bench: user-mode fault paths (ns per operation)"), None);
        assert_eq!(row("noise bench: op=null syscall (getpid) ns=183.0"), Some(("null syscall (getpid)".into(), 183.0)));
    }

    #[test]
    fn the_table_has_each_row_with_its_measured_ratio() {
        let table = table(&parse(&lines(OURS)), Some(&parse(&lines(LINUX))), "test machine");
        let row_of = |start: &str| table.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        let write = row_of("anonymous write fault");
        assert!(write.contains(" 4300.5 ") && write.contains(" 8601.0 ") && write.ends_with(" 0.50x"), "{write}");
        assert!(row_of("read fault").ends_with(" 1.00x"));
        assert!(row_of("fork").ends_with(" 1.25x"));
        let getpid = row_of("null syscall");
        assert!(getpid.contains(" - ") && getpid.ends_with(" -"), "only Linux printed it: {getpid}");
        assert!(table.contains("test machine"));
        assert!(table.contains("ours against its floors") && table.contains("2.1x its floor"), "{table}");
        assert!(row_of("exception round trip").ends_with(" -"), "only ours has a floor row");
        assert!(table.contains("Linux: 6.1.0-56-amd64"));
        assert!(super::table(&parse(&lines(OURS)), None, "m").contains("Linux: did not run"));
    }

    #[test]
    fn a_run_that_did_not_finish_is_a_failure() {
        let ok = outcome(&lines(OURS), Some(&lines(LINUX)), "m");
        assert_eq!((ok.ours_failure, ok.linux_failure), (None, None));
        let cut: Vec<String> = lines(LINUX).into_iter().filter(|l| !l.contains("done")).collect();
        let crashed = outcome(&lines(OURS), Some(&cut), "m");
        assert_eq!(crashed.linux_failure.as_deref(), Some("did not finish: 4 rows, no \"done\" line"));
        let failed = LINUX.replace("exited with 0", "exited with 1");
        assert_eq!(outcome(&lines(OURS), Some(&lines(&failed)), "m").linux_failure.as_deref(), Some("failed: exit status 1"));
        assert_eq!(verdict(&parse(&[])), "did not start (no bench output)");
        assert!(outcome(&[], None, "m").ours_failure.is_some());
    }
}
