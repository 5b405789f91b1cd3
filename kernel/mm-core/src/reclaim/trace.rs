//! Reference-string traces: the text format the kernel's recorder and the replay
//! tool share, and the comparison the replay tool prints (every policy against OPT
//! over a range of frame counts, and FIFO's anomalies).
//!
//! A trace is text, one reference per line: `r PAGE` or `w PAGE`, the page number
//! in hexadecimal (a virtual page number, address >> 12). Blank lines and lines
//! starting with `#` are ignored, and so is everything outside the frame
//! `@@trace begin` ... `@@trace end` if the text has one (a serial log holds the
//! kernel's other output around it); inside a frame, a line that does not start
//! with `r ` or `w ` is the console's other output and is skipped too. Page numbers are renumbered densely in order
//! of first use, so the host policies' per-page stores stay small.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use super::{ActiveInactive, BufferedFifo, Clock, ClockPro, Fifo, Lirs, Lru, LruApprox, Opt, PageRef, Random, ReplacementPolicy, SegmentedFifo, TwoHandClock, TwoQueue, simulate};

/// The line that opens a trace inside a longer log.
pub const TRACE_BEGIN: &str = "@@trace begin";
/// The line that closes it.
pub const TRACE_END: &str = "@@trace end";

/// What is wrong with a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// Line `.0` (from 1) is not `r PAGE` or `w PAGE`.
    BadLine(usize),
    /// `@@trace begin` without `@@trace end`.
    Unterminated,
}

/// Parses a trace (see the module docs) into a reference string with dense page numbers.
pub fn parse(text: &str) -> Result<Vec<PageRef>, TraceError> {
    let framed = text.lines().position(|line| line.trim() == TRACE_BEGIN);
    let (first_line, lines): (usize, Vec<&str>) = match framed {
        Some(at) => {
            let body: Vec<&str> = text.lines().skip(at + 1).take_while(|line| line.trim() != TRACE_END).collect();
            if at + 1 + body.len() >= text.lines().count() {
                return Err(TraceError::Unterminated);
            }
            (at + 2, body)
        }
        None => (1, text.lines().collect()),
    };
    let mut dense_of: BTreeMap<u64, u64> = BTreeMap::new();
    let mut refs = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let line = line.trim();
        let is_foreign = framed.is_some() && !line.starts_with("r ") && !line.starts_with("w ");
        if line.is_empty() || line.starts_with('#') || is_foreign {
            continue;
        }
        let bad = TraceError::BadLine(first_line + index);
        let (kind, page) = line.split_once(' ').ok_or(bad)?;
        let page = u64::from_str_radix(page.trim(), 16).map_err(|_| bad)?;
        let next_id = dense_of.len() as u64;
        let page = *dense_of.entry(page).or_insert(next_id);
        refs.push(match kind {
            "r" => PageRef::read(page),
            "w" => PageRef::write(page),
            _ => return Err(bad),
        });
    }
    Ok(refs)
}

/// Returns every policy, OPT last (it needs the reference string up front).
pub fn all_policies(refs: &[PageRef]) -> Vec<Box<dyn ReplacementPolicy>> {
    alloc::vec![
        Box::new(Fifo::new()),
        Box::new(Random::new(0x9e37_79b9_7f4a_7c15)),
        Box::new(Clock::second_chance()),
        Box::new(Clock::enhanced()),
        Box::new(TwoHandClock::new(4)),
        Box::new(ActiveInactive::new()),
        Box::new(TwoQueue::new()),
        Box::new(SegmentedFifo::new()),
        Box::new(BufferedFifo::new()),
        Box::new(LruApprox::new()),
        Box::new(Lru::new()),
        Box::new(Lirs::new()),
        Box::new(ClockPro::new()),
        Box::new(Opt::new(refs)),
    ]
}

/// The faults of every policy of [`all_policies`] at one frame count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRow {
    /// The frame count.
    pub nr_frames: usize,
    /// Faults per policy, in [`all_policies`] order (OPT last).
    pub faults: Vec<u64>,
}

impl FaultRow {
    /// Returns OPT's faults (the floor).
    pub fn opt_faults(&self) -> u64 {
        *self.faults.last().expect("FaultRow: no OPT column")
    }
}

/// Replays `refs` through every policy at each frame count.
pub fn fault_table(refs: &[PageRef], frame_counts: impl IntoIterator<Item = usize>) -> Vec<FaultRow> {
    frame_counts
        .into_iter()
        .map(|nr_frames| FaultRow {
            nr_frames,
            faults: all_policies(refs).iter_mut().map(|policy| simulate(policy.as_mut(), nr_frames, refs).faults).collect(),
        })
        .collect()
}

/// Returns the frame counts at which column `column` of `table` faults *more* than
/// at the frame count before it (Belady's anomaly), with both fault counts.
pub fn anomalies(table: &[FaultRow], column: usize) -> Vec<(usize, u64, u64)> {
    table
        .windows(2)
        .filter(|pair| pair[1].faults[column] > pair[0].faults[column])
        .map(|pair| (pair[1].nr_frames, pair[0].faults[column], pair[1].faults[column]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small trace checked into the repository (see its header for its origin).
    const SMALL_TRACE: &str = include_str!("../../traces/small.trace");

    #[test]
    fn a_framed_trace_in_a_log_parses_with_dense_pages() {
        let log = "boot noise\n@@trace begin\n# pid 3\nr 7f001\nprogram says hi\nw 7f000\nr 7f001\n@@trace end\nmore noise\n";
        assert_eq!(parse(log), Ok(alloc::vec![PageRef::read(0), PageRef::write(1), PageRef::read(0)]));
        assert_eq!(parse("r 1\nx 2\n"), Err(TraceError::BadLine(2)));
        assert_eq!(parse("@@trace begin\nr 1\nw zz\n@@trace end\n"), Err(TraceError::BadLine(3)));
        assert_eq!(parse("@@trace begin\nr 1\n"), Err(TraceError::Unterminated));
    }

    #[test]
    fn replay_of_the_checked_in_trace_puts_opt_at_the_floor_and_finds_fifo_s_anomaly() {
        let refs = parse(SMALL_TRACE).expect("the checked-in trace parses");
        let table = fault_table(&refs, 2..=6);
        for row in &table {
            assert!(row.faults.iter().all(|&f| f >= row.opt_faults()), "OPT is the floor: {row:?}");
        }
        // The trace opens with Belady's string, repeated: FIFO faults more with 4
        // frames than with 3 there, and the rest does not undo it.
        let fifo = anomalies(&table, 0);
        assert!(fifo.iter().any(|&(frames, _, _)| frames == 4), "FIFO's anomaly at 4 frames: {fifo:?}");
        let lru_column = table[0].faults.len() - 4;
        assert!(anomalies(&table, lru_column).is_empty(), "LRU is a stack algorithm");
    }
}
