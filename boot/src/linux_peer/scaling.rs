//! `--linux-peer=pagefault`: will-it-scale's page_fault1 and page_fault2 on 1 CPU
//! and on 2, on our kernel and on Linux, in one run, and the scaling table.
//!
//! ```text
//! for CPUs in 1, 2 (or --smp N > 2):   our kernel  -smp CPUs  run=pagefault_c
//!                                      Linux       -smp CPUs  /mnt: pagefault_c
//! pagefault_c runs as many tasks as CPUs online (sched_getaffinity), processes
//! then threads, and prints one line per row (kernel/user/c/pagefault.c):
//!   pagefault: row=page_fault1 processes tasks=2 faults_per_s=123456 (...)
//! ```
//!
//! The table gives each row's faults per second on each guest and CPU count, and
//! the scaling ratio: the faults per second of N tasks on N CPUs over those of one
//! task on one CPU (N.00 would be perfect scaling). Under TCG on a loaded host the
//! absolute numbers swing; the ratios of the two kernels in the same run are what
//! compares.

use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;

use super::initramfs::{InitLine, init_line};
use super::{Program, boot_linux, machine};
use crate::options::Options;
use crate::qemu;

/// The start of a row line.
const ROW: &str = "pagefault: row=";
/// What precedes a row's faults per second.
const PER_S: &str = " faults_per_s=";
/// The last line of a run that passed every check.
const DONE: &str = "pagefault: done";

/// What one guest's console says about one run of pagefault_c.
#[derive(Debug, Default)]
pub struct ScalingRun {
    /// `(row, faults per second)`, the row as `page_fault1 processes`.
    pub rows: Vec<(String, f64)>,
    /// pagefault_c printed its "done" line.
    pub is_done: bool,
    /// Linux only: the kernel release line.
    pub linux_kernel: Option<String>,
    /// Linux only: the exit status `/init` saw.
    pub exit_status: Option<String>,
}

impl ScalingRun {
    /// Returns the faults per second of `row`, if this run printed it.
    fn per_s(&self, row: &str) -> Option<f64> {
        self.rows.iter().find(|(r, _)| r == row).map(|&(_, v)| v)
    }

    /// Returns "ok" or what went wrong.
    fn verdict(&self) -> String {
        match (self.is_done, self.exit_status.as_deref()) {
            (_, Some(status)) if status != "0" => format!("failed: exit status {status}"),
            (true, _) => format!("ok: {} rows, every check passed", self.rows.len()),
            _ if self.rows.is_empty() => "did not start (no pagefault output)".into(),
            _ => format!("did not finish: {} rows, no \"done\" line", self.rows.len()),
        }
    }
}

/// Reads a row line's `(row, faults per second)`: the row is the test and the mode
/// (`tasks=` left out, as it is the CPU count).
fn row(line: &str) -> Option<(String, f64)> {
    let rest = &line[line.find(ROW)? + ROW.len()..];
    let (head, tail) = rest.split_once(PER_S)?;
    let per_s: f64 = tail.split_whitespace().next()?.parse().ok()?;
    let name: Vec<&str> = head.split_whitespace().filter(|w| !w.starts_with("tasks=")).collect();
    (per_s.is_finite() && !name.is_empty()).then(|| (name.join(" "), per_s))
}

/// Reads one guest's console.
pub fn parse(lines: &[String]) -> ScalingRun {
    let mut run = ScalingRun::default();
    for line in lines {
        match init_line(line) {
            Some(InitLine::Kernel(kernel)) => run.linux_kernel = Some(kernel.to_string()),
            Some(InitLine::ExitStatus(status)) => run.exit_status = Some(status.to_string()),
            None => {}
        }
        if let Some(row) = row(line) {
            run.rows.push(row);
        } else if line.contains(DONE) {
            run.is_done = true;
        }
    }
    run
}

/// The runs of one kernel: on 1 CPU and on N.
pub struct Pair {
    /// The run on one CPU.
    pub one: ScalingRun,
    /// The run on N CPUs.
    pub many: ScalingRun,
}

/// Returns `x` rounded, or `-`.
fn number(x: Option<f64>) -> String {
    x.map_or("-".into(), |x| format!("{x:.0}"))
}

/// Returns many / one as `1.85`, or `-`.
fn scaling(pair: &Pair, row: &str) -> String {
    match (pair.one.per_s(row), pair.many.per_s(row)) {
        (Some(one), Some(many)) if one > 0.0 => format!("{:.2}", many / one),
        _ => "-".into(),
    }
}

/// Returns the table: each row's faults per second and scaling on both kernels.
pub fn table(ours: &Pair, linux: Option<&Pair>, nr_cpus: u32, machine: &str) -> String {
    let mut rows: Vec<&str> = Vec::new();
    for run in [Some(&ours.one), Some(&ours.many), linux.map(|l| &l.one), linux.map(|l| &l.many)].into_iter().flatten() {
        for (r, _) in &run.rows {
            if !rows.contains(&r.as_str()) {
                rows.push(r);
            }
        }
    }
    let empty = Pair { one: ScalingRun::default(), many: ScalingRun::default() };
    let theirs = linux.unwrap_or(&empty);
    let n = nr_cpus;
    let mut out = String::new();
    let _ = writeln!(out, "\npage_fault scaling side by side: {machine}");
    let _ = writeln!(out, "faults per second, summed over the tasks (as many as CPUs); {n}/1: {n} CPUs over 1 ({n}.00 is perfect)\n");
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>10} {:>6}   {:>10} {:>10} {:>6}",
        "row", "ours 1", format!("ours {n}"), format!("{n}/1"), "Linux 1", format!("Linux {n}"), format!("{n}/1")
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{r:<24} {:>10} {:>10} {:>6}   {:>10} {:>10} {:>6}",
            number(ours.one.per_s(r)),
            number(ours.many.per_s(r)),
            scaling(ours, r),
            number(theirs.one.per_s(r)),
            number(theirs.many.per_s(r)),
            scaling(theirs, r)
        );
    }
    let _ = writeln!(out, "\nours:  1 CPU {}; {n} CPUs {}", ours.one.verdict(), ours.many.verdict());
    match linux {
        Some(l) => {
            let _ = writeln!(out, "Linux: 1 CPU {}; {n} CPUs {}", l.one.verdict(), l.many.verdict());
            let _ = writeln!(out, "Linux: {}", l.one.linux_kernel.as_deref().unwrap_or("(no version line)"));
        }
        None => {
            let _ = writeln!(out, "Linux: did not run");
        }
    }
    out
}

/// Returns why `run` is not a complete run, if it is not (`needs_status`: Linux's
/// `/init` must also have seen exit status 0).
fn failure(run: &ScalingRun, needs_status: bool) -> Option<String> {
    let ok = run.is_done && !run.rows.is_empty() && (!needs_status || run.exit_status.as_deref() == Some("0"));
    (!ok).then(|| run.verdict())
}

/// Builds our guest's QEMU command for the options given, and the root disk it made.
pub type OurKernel<'a> = dyn FnMut(&Options) -> Result<(Command, Option<PathBuf>), String> + 'a;

/// Runs pagefault_c on both kernels with 1 CPU and with `max(2, --smp)`, prints
/// the table, and returns the runner's exit code. `our_kernel` builds our guest's
/// QEMU command for the options it is given (and the root disk it made, checked
/// with e2fsck after the run).
pub fn run(
    opts: &Options,
    our_kernel: &mut OurKernel<'_>,
) -> Result<i32, String> {
    let many = opts.nr_cpus.max(2);
    let mut ours = Vec::new();
    let mut linux = Vec::new();
    let mut failures = Vec::new();
    for nr_cpus in [1, many] {
        let mut o = opts.clone();
        o.nr_cpus = nr_cpus;
        eprintln!("linux-peer: our kernel runs pagefault_c on {}", machine(&o));
        let (cmd, root) = our_kernel(&o)?;
        let captured = qemu::run_capturing(&o, cmd)?;
        let code = qemu::exit_code(&captured.ending);
        if code != qemu::EXIT_SUCCESS {
            failures.push(format!("our kernel, {nr_cpus} CPUs: runner exit code {code}"));
        }
        if let Some(report) = root.and_then(|root| crate::root_disk::check(&root).err()) {
            failures.push(format!("our kernel, {nr_cpus} CPUs: root disk: {report}"));
        }
        ours.push(parse(&captured.lines));
        eprintln!("linux-peer: Linux runs pagefault_c on {}", machine(&o));
        match boot_linux(&o, Program::Pagefault) {
            Ok(lines) => linux.push(parse(&lines)),
            Err(e) => failures.push(format!("Linux, {nr_cpus} CPUs: {e}")),
        }
    }
    let pair = |mut runs: Vec<ScalingRun>| {
        let many = runs.pop()?;
        Some(Pair { one: runs.pop()?, many })
    };
    let ours = pair(ours).expect("two runs of ours");
    let linux = pair(linux);
    let mut on_many = opts.clone();
    on_many.nr_cpus = many;
    let header = format!("{}; the same with 1 CPU", machine(&on_many));
    print!("{}", table(&ours, linux.as_ref(), many, &header));
    for (who, run) in [("our kernel, 1 CPU", &ours.one), ("our kernel, N CPUs", &ours.many)] {
        failures.extend(failure(run, false).map(|f| format!("{who}: {f}")));
    }
    match &linux {
        Some(l) => {
            for (who, run) in [("Linux, 1 CPU", &l.one), ("Linux, N CPUs", &l.many)] {
                failures.extend(failure(run, true).map(|f| format!("{who}: {f}")));
            }
        }
        None => failures.push("Linux did not run on both CPU counts".into()),
    }
    if failures.is_empty() {
        return Ok(qemu::EXIT_SUCCESS);
    }
    eprintln!("linux-peer: FAILED: {}", failures.join("; "));
    Ok(qemu::EXIT_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    fn run_of(tasks: u32, rates: [f64; 2], linux: bool) -> ScalingRun {
        let mut text = format!(
            "pagefault: page_fault1/2 against 1 CPUs online\n\
             pagefault: row=page_fault1 processes tasks={tasks} faults_per_s={} (9 faults)\n\
             pagefault: row=page_fault2 threads tasks={tasks} faults_per_s={} (9 faults)\n\
             pagefault: done\n",
            rates[0],
            rates[1]
        );
        if linux {
            text = format!("linux-peer: kernel 6.1.0-56-amd64, THP [never]\r\n{text}linux-peer: pagefault_c exited with 0\r\n");
        }
        parse(&lines(&text))
    }

    #[test]
    fn rows_are_read_without_their_task_count() {
        assert_eq!(row("pagefault: row=page_fault1 processes tasks=2 faults_per_s=123456 (99 faults)"),
                   Some(("page_fault1 processes".into(), 123456.0)));
        assert_eq!(row("[ 1.0] pagefault: row=page_fault2 threads tasks=1 faults_per_s=7\r"),
                   Some(("page_fault2 threads".into(), 7.0)));
        assert_eq!(row("pagefault: row=page_fault1 processes tasks=2 faults_per_s=fast"), None);
        assert_eq!(row("pagefault: row=tasks=2 faults_per_s=5"), None, "no name");
        let run = run_of(1, [1000.0, 500.0], true);
        assert!(run.is_done);
        assert_eq!(run.exit_status.as_deref(), Some("0"));
        assert_eq!(run.per_s("page_fault2 threads"), Some(500.0));
    }

    #[test]
    fn the_table_gives_each_kernels_scaling_ratio() {
        let ours = Pair { one: run_of(1, [1000.0, 500.0], false), many: run_of(2, [1900.0, 600.0], false) };
        let linux = Pair { one: run_of(1, [2000.0, 1000.0], true), many: run_of(2, [3000.0, 2000.0], true) };
        let table = table(&ours, Some(&linux), 2, "test machine");
        let line = |start: &str| table.lines().find(|l| l.starts_with(start)).unwrap().to_string();
        let pf1: Vec<String> = line("page_fault1 processes").split_whitespace().map(String::from).collect();
        assert_eq!(pf1[2..], ["1000", "1900", "1.90", "2000", "3000", "1.50"]);
        let pf2: Vec<String> = line("page_fault2 threads").split_whitespace().map(String::from).collect();
        assert_eq!(pf2[2..], ["500", "600", "1.20", "1000", "2000", "2.00"]);
        assert!(table.contains("test machine") && table.contains("Linux: 6.1.0-56-amd64"), "{table}");
        let alone = super::table(&ours, None, 2, "m");
        assert!(alone.contains("Linux: did not run"), "{alone}");
        assert!(alone.lines().any(|l| l.starts_with("page_fault1 processes") && l.trim_end().ends_with("-")));
    }

    #[test]
    fn an_unfinished_or_failed_run_is_a_failure() {
        assert_eq!(failure(&run_of(1, [1.0, 1.0], true), true), None);
        let cut = parse(&lines("pagefault: row=page_fault1 processes tasks=1 faults_per_s=5\n"));
        assert_eq!(failure(&cut, false).as_deref(), Some("did not finish: 1 rows, no \"done\" line"));
        let failed = parse(&lines("pagefault: done\nlinux-peer: pagefault_c exited with 1\n"));
        assert_eq!(failure(&failed, true).as_deref(), Some("failed: exit status 1"));
        assert_eq!(failure(&parse(&[]), false).as_deref(), Some("did not start (no pagefault output)"));
    }
}
