//! Reading swapload's output back, and the side-by-side table of both guests
//! (`--linux-peer`; bench's is in `bench_report`).
//!
//! swapload prints `key=value` words (see `kernel/user/src/bin/swapload.rs`):
//!
//! ```text
//! swapload: region_mib=256 ram_mib=120 free_mib=118
//! swapload: pass=write ms=7262 read=7 written=36657 majflt=7
//! swapload: ok, every page came back intact
//! ```
//!
//! and the Linux guest's `/init` adds `linux-peer: kernel 6.1.0-56-amd64, THP ...`.
//! A pass's swap throughput is the I/O it caused over its time:
//! (pages read + pages written) x 4 KiB / ms.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Outcome;
use super::initramfs::{InitLine, init_line};

/// One pass of swapload.
#[derive(Clone, Debug, PartialEq)]
pub struct Pass {
    /// `write`, `seq-read` or `random-read`.
    pub name: String,
    /// Its wall-clock time in the guest.
    pub ms: u64,
    /// Pages read from the swap disk meanwhile.
    pub pages_read: u64,
    /// Pages written to the swap disk meanwhile.
    pub pages_written: u64,
}

impl Pass {
    /// Returns the swap I/O rate in MiB/s, `None` for a pass of 0 ms.
    pub fn swap_mib_per_s(&self) -> Option<f64> {
        let mib = (self.pages_read + self.pages_written) as f64 * 4.0 / 1024.0;
        (self.ms > 0).then(|| mib / (self.ms as f64 / 1000.0))
    }
}

/// What one guest's serial output says about its swapload run.
#[derive(Debug, Default)]
pub struct SwaploadRun {
    /// `(ram_mib, free_mib)` from the first line.
    pub memory_mib: Option<(u64, u64)>,
    /// The passes, in the order they ran.
    pub passes: Vec<Pass>,
    /// swapload printed its "ok" line: every page came back intact.
    pub is_ok: bool,
    /// Linux only: the kernel release and THP mode.
    pub linux_kernel: Option<String>,
    /// Linux only: swapload's exit status as `/init` saw it.
    pub exit_status: Option<String>,
}

/// Returns the `key=value` words of `text`.
fn words(text: &str) -> BTreeMap<&str, &str> {
    text.split_whitespace().filter_map(|word| word.split_once('=')).collect()
}

/// Reads a guest's serial output.
pub fn parse(lines: &[String]) -> SwaploadRun {
    let mut run = SwaploadRun::default();
    for line in lines {
        match init_line(line) {
            Some(InitLine::Kernel(kernel)) => run.linux_kernel = Some(kernel.to_string()),
            Some(InitLine::ExitStatus(status)) => run.exit_status = Some(status.to_string()),
            None => {}
        }
        let Some(at) = line.find("swapload: ") else { continue };
        let rest = &line[at + "swapload: ".len()..];
        let kv = words(rest);
        let number = |key| kv.get(key).and_then(|v| v.parse::<u64>().ok());
        if rest.starts_with("ok") {
            run.is_ok = true;
        } else if let (Some(ram), Some(free)) = (number("ram_mib"), number("free_mib")) {
            run.memory_mib = Some((ram, free));
        } else if let (Some(name), Some(ms), Some(read), Some(written)) =
            (kv.get("pass"), number("ms"), number("read"), number("written"))
        {
            run.passes.push(Pass { name: name.to_string(), ms, pages_read: read, pages_written: written });
        }
    }
    run
}

/// Returns the sum of `passes` as one pass called "total".
fn total(passes: &[Pass]) -> Pass {
    passes.iter().fold(Pass { name: "total".into(), ms: 0, pages_read: 0, pages_written: 0 }, |sum, p| Pass {
        ms: sum.ms + p.ms,
        pages_read: sum.pages_read + p.pages_read,
        pages_written: sum.pages_written + p.pages_written,
        ..sum
    })
}

/// Returns a pass's four columns, or blanks.
fn columns(pass: Option<&Pass>) -> String {
    match pass {
        Some(p) => {
            let rate = p.swap_mib_per_s().map_or("-".into(), |r| format!("{r:.1}"));
            format!("{:>8} {:>7} {:>8} {:>7}", p.ms, p.pages_read, p.pages_written, rate)
        }
        None => format!("{:>8} {:>7} {:>8} {:>7}", "-", "-", "-", "-"),
    }
}

/// Returns ours/Linux of the two rates, as `1.23x`.
fn ratio(ours: Option<&Pass>, linux: Option<&Pass>) -> String {
    match (ours.and_then(Pass::swap_mib_per_s), linux.and_then(Pass::swap_mib_per_s)) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}x", a / b),
        _ => "-".into(),
    }
}

fn memory(run: &SwaploadRun) -> String {
    run.memory_mib.map_or("-".into(), |(ram, free)| format!("ram {ram} MiB, free {free} MiB at start"))
}

/// Returns the side-by-side table; `linux` is `None` when the Linux guest could not
/// run at all. `machine` describes what both guests ran on.
pub fn table(ours: &SwaploadRun, linux: Option<&SwaploadRun>, machine: &str) -> String {
    let empty = SwaploadRun::default();
    let theirs = linux.unwrap_or(&empty);
    let mut names: Vec<&str> = ours.passes.iter().map(|p| p.name.as_str()).collect();
    names.extend(theirs.passes.iter().map(|p| p.name.as_str()).filter(|n| !ours.passes.iter().any(|p| p.name == *n)));
    let find = |run: &SwaploadRun, name: &str| run.passes.iter().find(|p| p.name == name).cloned();
    let mut rows: Vec<(String, Option<Pass>, Option<Pass>)> =
        names.iter().map(|&n| (n.to_string(), find(ours, n), find(theirs, n))).collect();
    if !rows.is_empty() {
        let total_of = |run: &SwaploadRun| (!run.passes.is_empty()).then(|| total(&run.passes));
        rows.push(("total".into(), total_of(ours), total_of(theirs)));
    }
    let mut out = String::new();
    let _ = writeln!(out, "\nswapload side by side: {machine}");
    let _ =
        writeln!(out, "MiB/s = swap I/O (pages read + written) x 4 KiB / pass time; ours/Linux = ratio of the MiB/s\n");
    let _ = writeln!(out, "{:<12} {:-^33}  {:-^33}", "", " ours ", " Linux ");
    let head = format!("{:>8} {:>7} {:>8} {:>7}", "ms", "read", "written", "MiB/s");
    let _ = writeln!(out, "{:<12} {head}  {head}  {:>10}", "pass", "ours/Linux");
    for (name, o, l) in &rows {
        let _ = writeln!(
            out,
            "{name:<12} {}  {}  {:>10}",
            columns(o.as_ref()),
            columns(l.as_ref()),
            ratio(o.as_ref(), l.as_ref())
        );
    }
    let _ = writeln!(out, "\nours:  {}; swapload {}", memory(ours), verdict(ours));
    match linux {
        Some(l) => {
            let kernel = l.linux_kernel.as_deref().unwrap_or("(no version line)");
            let _ = writeln!(out, "Linux: {}; swapload {}", memory(l), verdict(l));
            let _ = writeln!(out, "Linux: {kernel}");
        }
        None => {
            let _ = writeln!(out, "Linux: did not run");
        }
    }
    out
}

/// Reads both consoles (`linux` is `None` when Linux did not run) into the table and
/// what went wrong on either side.
pub fn outcome(ours: &[String], linux: Option<&[String]>, machine: &str) -> Outcome {
    let ours = parse(ours);
    let linux = linux.map(parse);
    let ours_failure = (!ours.is_ok).then(|| verdict(&ours));
    let linux_failure =
        linux.as_ref().filter(|l| !l.is_ok || l.exit_status.as_deref() != Some("0")).map(verdict);
    Outcome { table: table(&ours, linux.as_ref(), machine), ours_failure, linux_failure }
}

/// Returns "ok" or what went wrong, in a few words.
pub fn verdict(run: &SwaploadRun) -> String {
    match (run.is_ok, run.exit_status.as_deref()) {
        (true, None | Some("0")) => "ok: every page came back intact".into(),
        (_, Some(status)) if status != "0" => format!("failed: exit status {status}"),
        _ if run.passes.is_empty() && run.memory_mib.is_none() => "did not start (no swapload output)".into(),
        _ => format!("did not finish: {} of 3 passes, no \"ok\" line", run.passes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    const OURS: &str = "\
[    0.110] INFO  kernel::mm::swap: swap: 131071 slots
swapload: region_mib=256 ram_mib=120 free_mib=118
swapload: pass=write ms=7262 read=7 written=36657 majflt=7
swapload: pass=seq-read ms=13991 read=65542 written=28897 majflt=65542
swapload: pass=random-read ms=8025 read=57254 written=6 majflt=57254
swapload: ok, every page came back intact
run: swapload exited with 0";

    #[test]
    fn passes_memory_and_the_ok_line_are_read() {
        let run = parse(&lines(OURS));
        assert_eq!(run.memory_mib, Some((120, 118)));
        assert!(run.is_ok);
        assert_eq!(run.passes.len(), 3);
        assert_eq!(run.passes[1], Pass { name: "seq-read".into(), ms: 13991, pages_read: 65542, pages_written: 28897 });
        assert_eq!(verdict(&run), "ok: every page came back intact");
    }

    #[test]
    fn throughput_is_swap_io_over_time() {
        let pass = Pass { name: "write".into(), ms: 2000, pages_read: 256, pages_written: 256 * 3 };
        assert_eq!(pass.swap_mib_per_s(), Some(2.0)); // 4 MiB in 2 s
        assert_eq!(Pass { ms: 0, ..pass }.swap_mib_per_s(), None);
    }

    #[test]
    fn linux_lines_and_a_failed_run() {
        let linux = "linux-peer: kernel 6.1.0-56-amd64, THP [always] madvise never\r\n\
                     swapload: region_mib=256 ram_mib=93 free_mib=71\n\
                     swapload: pass=write ms=4000 read=0 written=1024 majflt=0\n\
                     linux-peer: swapload exited with 1";
        let run = parse(&lines(linux));
        assert_eq!(run.linux_kernel.as_deref(), Some("6.1.0-56-amd64, THP [always] madvise never"));
        assert_eq!(run.exit_status.as_deref(), Some("1"));
        assert!(!run.is_ok);
        assert_eq!(verdict(&run), "failed: exit status 1");
        assert_eq!(verdict(&parse(&[])), "did not start (no swapload output)");
    }

    #[test]
    fn the_table_has_a_row_per_pass_with_the_ratio() {
        let ours = parse(&lines(OURS));
        let mut linux = parse(&lines(OURS));
        linux.passes[0].ms *= 2; // Linux twice as slow on the write pass
        let table = table(&ours, Some(&linux), "test machine");
        let write_row = table.lines().find(|l| l.starts_with("write")).unwrap();
        assert!(write_row.ends_with("2.00x"), "{write_row}");
        assert!(write_row.contains(" 19.7 "), "(7 + 36657) x 4 KiB / 7.262 s = 19.7 MiB/s: {write_row}");
        assert!(table.lines().any(|l| l.starts_with("seq-read") && l.ends_with("1.00x")));
        assert!(table.lines().any(|l| l.starts_with("total")));
        let alone = super::table(&ours, None, "test machine");
        assert!(alone.contains("Linux: did not run"));
    }
}
