//! Segmentation: code, heap and stack segments with base, size, growth direction and
//! protection; translation of a trace; external fragmentation as segments come and go.
//!
//! The top two bits of a virtual address select the segment (00 code, 01 heap, 11
//! stack; 10 is unused), the rest is the offset in it. A segment that grows up maps
//! offset `o` to `base + o` when `o < size`. The stack grows down: its offset counts
//! back from the top of the segment's quarter of the address space, `o - max` (a
//! negative number), and it maps to `base + (o - max)` when `|o - max| <= size`. Every
//! segment carries protection bits (code `r-x`, heap and stack `rw-`): a write to code
//! is a protection fault even inside its bounds.
//!
//! `--churn N` shows what segments cost physical memory: processes arrive (three
//! segments each, placed with a free list, [`super::freelist`]) and leave, until
//! memory has enough free bytes for a new process but no holes big enough.

use super::freelist::{Fit, FreeList};
use super::{between, rng_from};
use crate::Model;
use crate::args::{ArgError, Args, arg_error, bytes, split_list};
use crate::exercise::Exercise;

/// The model's entry in the front end.
pub const MODEL: Model = Model {
    name: "segmentation",
    summary: "code/heap/stack segments: growth direction, protection, faults, external fragmentation",
    options: "\
  --asize SIZE      virtual address space size, a power of two (default 16K)
  --psize SIZE      physical memory size (default 64K)
  --code BASE:SIZE  the code segment, r-x, grows up (default 32K:2K)
  --heap BASE:SIZE  the heap segment, rw-, grows up (default 34K:3K)
  --stack BASE:SIZE the stack segment, rw-, grows down from BASE (default 28K:2K)
  --addresses LIST  accesses: r:ADDR, w:ADDR or x:ADDR (r when omitted), e.g. x:100,w:4200,15K
  --num N           how many random accesses (default 5)
  --churn N         then N processes arrive and leave, placing segments in physical memory
  --fit F           best, worst, first or next: how churn places segments (default first)",
    build_fn: exercise,
};

/// What an access does: read, write or execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessKind {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

impl AccessKind {
    /// Returns the letter of the access: `r`, `w` or `x`.
    fn letter(self) -> char {
        match self {
            AccessKind::Read => 'r',
            AccessKind::Write => 'w',
            AccessKind::Exec => 'x',
        }
    }
}

/// One segment register: base, size, growth direction, protection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Name: code, heap or stack.
    pub name: &'static str,
    /// Physical base (for the stack: the top; it grows down from here).
    pub base: u64,
    /// Size in bytes.
    pub size: u64,
    /// True when the segment grows toward lower addresses (the stack).
    pub grows_down: bool,
    /// The accesses allowed, `"r-x"` style.
    pub prot: &'static str,
}

impl Segment {
    /// Returns true if the protection bits allow `kind`.
    fn allows(self, kind: AccessKind) -> bool {
        self.prot.contains(kind.letter())
    }

    /// Returns the physical range `[low, high)` the segment occupies.
    pub fn physical_range(self) -> (u64, u64) {
        if self.grows_down {
            (self.base - self.size, self.base)
        } else {
            (self.base, self.base + self.size)
        }
    }
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SegFault {
    /// Outside the segment's size, or in the unused segment.
    Bounds,
    /// Inside the segment, but the protection bits forbid the access.
    Protection,
}

/// The segment registers of one process, and the address space they split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentTable {
    /// Virtual address space size (a power of two); each segment gets a quarter.
    pub asize: u64,
    /// Segments selected by 00, 01, 10, 11 (10 unused).
    pub segments: [Option<Segment>; 4],
}

impl SegmentTable {
    /// Returns the largest size of one segment: a quarter of the address space.
    pub fn max_segment(self) -> u64 {
        self.asize / 4
    }

    /// Translates `va` for `kind`; returns the physical address and the steps taken.
    pub fn translate(self, va: u64, kind: AccessKind) -> (Result<u64, SegFault>, Vec<String>) {
        let max = self.max_segment();
        let (selector, offset) = (va / max, va % max);
        let mut steps = vec![format!(
            "top 2 bits = {selector:02b}, offset = {va} mod {max} = {offset}"
        )];
        let Some(segment) = self.segments.get(selector as usize).copied().flatten() else {
            steps.push(format!(
                "segment {selector:02b} is not in use: segmentation fault"
            ));
            return (Err(SegFault::Bounds), steps);
        };
        let pa = if segment.grows_down {
            let back = max - offset;
            steps.push(format!(
                "{} grows down: negative offset = {offset} - {max} = -{back}",
                segment.name
            ));
            if back > segment.size {
                steps.push(format!(
                    "|-{back}| > size {}: segmentation fault",
                    segment.size
                ));
                return (Err(SegFault::Bounds), steps);
            }
            steps.push(format!(
                "|-{back}| <= size {}: PA = {} - {back} = {}",
                segment.size,
                segment.base,
                segment.base - back
            ));
            segment.base - back
        } else {
            if offset >= segment.size {
                steps.push(format!(
                    "{}: offset {offset} >= size {}: segmentation fault",
                    segment.name, segment.size
                ));
                return (Err(SegFault::Bounds), steps);
            }
            steps.push(format!(
                "{}: offset {offset} < size {}: PA = {} + {offset} = {}",
                segment.name,
                segment.size,
                segment.base,
                segment.base + offset
            ));
            segment.base + offset
        };
        if !segment.allows(kind) {
            steps.push(format!(
                "{} is {}: a {} access is a protection fault",
                segment.name,
                segment.prot,
                kind.letter()
            ));
            return (Err(SegFault::Protection), steps);
        }
        (Ok(pa), steps)
    }
}

/// Parses `BASE:SIZE`.
fn parse_segment(text: &str, name: &str) -> Result<(u64, u64), ArgError> {
    let bad = || arg_error(format!("--{name}: `{text}` is not BASE:SIZE"));
    let (base, size) = text.split_once(':').ok_or_else(bad)?;
    Ok((
        crate::args::parse_number(base).map_err(|_| bad())?,
        crate::args::parse_number(size).map_err(|_| bad())?,
    ))
}

/// Parses `x:100,w:4200,15K`.
fn parse_accesses(text: &str) -> Result<Vec<(AccessKind, u64)>, ArgError> {
    split_list(text)
        .map(|item| {
            let (kind, address) = match item.split_once(':') {
                Some(("r", a)) => (AccessKind::Read, a),
                Some(("w", a)) => (AccessKind::Write, a),
                Some(("x", a)) => (AccessKind::Exec, a),
                Some(_) => {
                    return Err(arg_error(format!(
                        "--addresses: `{item}`: use r:, w: or x:"
                    )));
                }
                None => (AccessKind::Read, item),
            };
            Ok((
                kind,
                crate::args::parse_number(address)
                    .map_err(|e| arg_error(format!("--addresses: {e}")))?,
            ))
        })
        .collect()
}

/// Builds the segment table from the options (random sizes and bases with --seed).
fn segment_table(
    args: &Args,
    rng: &mut mm_core::xorshift::XorShift,
    asize: u64,
    psize: u64,
) -> Result<SegmentTable, ArgError> {
    let is_random = args.number("seed")?.is_some();
    let max = asize / 4;
    let specs = [
        ("code", "r-x", false, (32 << 10, 2 << 10)),
        ("heap", "rw-", false, (34 << 10, 3 << 10)),
        ("stack", "rw-", true, (28 << 10, 2 << 10)),
    ];
    let mut segments: [Option<Segment>; 4] = [None; 4];
    let mut taken: Vec<(u64, u64)> = Vec::new();
    for (slot, (name, prot, grows_down, default)) in [0, 1, 3].into_iter().zip(specs) {
        let (base, size) = match args.text(name) {
            Some(text) => parse_segment(text, name)?,
            None if is_random && psize < asize => {
                return Err(arg_error("random segments need --psize at least --asize"));
            }
            None if is_random => {
                let size = between(rng, max / 8, max / 2);
                let mut tries = 0;
                loop {
                    let low = rng.below(psize - size + 1);
                    if !taken.iter().any(|&(l, h)| low < h && l < low + size) {
                        break (if grows_down { low + size } else { low }, size);
                    }
                    tries += 1;
                    if tries > 1000 {
                        return Err(arg_error("could not place random segments: raise --psize"));
                    }
                }
            }
            None => default,
        };
        let segment = Segment {
            name,
            base,
            size,
            grows_down,
            prot,
        };
        let (low, high) = if grows_down {
            (base.checked_sub(size), Some(base))
        } else {
            (Some(base), base.checked_add(size))
        };
        match (low, high) {
            (Some(low), Some(high)) if high <= psize && size <= max => taken.push((low, high)),
            _ => {
                return Err(arg_error(format!(
                    "--{name}: must lie in physical memory ({psize}) and be at most {max} bytes"
                )));
            }
        }
        segments[slot] = Some(segment);
    }
    Ok(SegmentTable { asize, segments })
}

/// Builds the exercise from the options.
fn exercise(args: &Args) -> Result<Exercise, ArgError> {
    let mut rng = rng_from(args)?;
    let asize = args.number_or("asize", 16 << 10)?;
    let psize = args.number_or("psize", 64 << 10)?;
    if !asize.is_power_of_two() || asize < 4 || psize == 0 || psize > 1 << 32 {
        return Err(arg_error(
            "need a power-of-two --asize >= 4 and 0 < --psize <= 4G",
        ));
    }
    let table = segment_table(args, &mut rng, asize, psize)?;
    let accesses = match args.text("addresses") {
        Some(text) => parse_accesses(text)?,
        None => {
            let num = args.number_or("num", 5)?;
            let kinds = [AccessKind::Read, AccessKind::Write, AccessKind::Exec];
            (0..num)
                .map(|_| (kinds[rng.below(3) as usize], rng.below(asize)))
                .collect()
        }
    };
    let mut ex = Exercise::default();
    ex.given(format!(
        "segmentation: address space {}, physical memory {}; the top 2 bits select the segment",
        bytes(asize),
        bytes(psize)
    ));
    ex.given(format!(
        "  {:<8} {:>4} {:>8} {:>6} {:>5} {:>5}",
        "segment", "bits", "base", "size", "grows", "prot"
    ));
    for (selector, segment) in table.segments.iter().enumerate() {
        ex.given(match segment {
            Some(s) => format!(
                "  {:<8} {selector:>4b} {:>8} {:>6} {:>5} {:>5}",
                s.name,
                s.base,
                s.size,
                if s.grows_down { "down" } else { "up" },
                s.prot
            ),
            None => format!("  {:<8} {selector:>4b}   (not in use)", "-"),
        });
    }
    for &(kind, va) in &accesses {
        if va >= asize {
            return Err(arg_error(format!(
                "--addresses: {va} is outside the {asize}-byte address space"
            )));
        }
        let (result, work) = table.translate(va, kind);
        let answer = match result {
            Ok(pa) => pa.to_string(),
            Err(SegFault::Bounds) => "fault".into(),
            Err(SegFault::Protection) => "protection".into(),
        };
        ex.ask(
            format!(
                "{}:{va} ({va:#x}): physical address, fault or protection?",
                kind.letter()
            ),
            work,
            answer,
        );
    }
    if let Some(nr_events) = args.number("churn")? {
        churn(
            &mut ex,
            &mut rng,
            Fit::parse(args.text("fit").unwrap_or("first"))?,
            asize,
            psize,
            nr_events.min(10_000),
        );
    } else {
        args.text("fit");
    }
    Ok(ex)
}

/// Runs processes in and out of physical memory and asks about the holes left.
fn churn(
    ex: &mut Exercise,
    rng: &mut mm_core::xorshift::XorShift,
    fit: Fit,
    asize: u64,
    psize: u64,
    nr_events: u64,
) {
    let mut memory = FreeList::new(fit, 0, psize, 0, 1, true);
    let mut live: Vec<(u64, Vec<u64>)> = Vec::new();
    let (mut next_pid, mut nr_refused, mut nr_fragmented) = (1, 0, 0);
    ex.given(format!(
        "churn: processes with 3 segments of 1..={} bytes arrive and leave; {} fit places them",
        asize / 4,
        fit.name()
    ));
    for _ in 0..nr_events {
        if live.is_empty() || rng.below(100) < 60 {
            let sizes: Vec<u64> = (0..3).map(|_| between(rng, 1, asize / 4)).collect();
            let placed: Vec<Option<u64>> = sizes.iter().map(|&size| memory.alloc(size)).collect();
            if placed.iter().all(Option::is_some) {
                ex.given(format!(
                    "  pid {next_pid} arrives: segments {sizes:?} at {:?}",
                    placed.iter().flatten().collect::<Vec<_>>()
                ));
                live.push((next_pid, placed.into_iter().flatten().collect()));
            } else {
                placed.into_iter().flatten().for_each(|p| {
                    memory.free(p);
                });
                let (need, free) = (sizes.iter().sum::<u64>(), memory.fragmentation().total_free);
                nr_refused += 1;
                let why = if free >= need {
                    nr_fragmented += 1;
                    format!(
                        "{free} bytes are free but not in holes big enough: external fragmentation"
                    )
                } else {
                    format!("only {free} bytes are free")
                };
                ex.given(format!(
                    "  pid {next_pid} needs {sizes:?} ({need} bytes): refused, {why}"
                ));
            }
            next_pid += 1;
        } else {
            let (pid, segments) = live.swap_remove(rng.below(live.len() as u64) as usize);
            segments.into_iter().for_each(|p| {
                memory.free(p);
            });
            ex.given(format!("  pid {pid} exits"));
        }
        memory.check_invariants();
    }
    let f = memory.fragmentation();
    ex.given(format!("  free list at the end: {}", memory.describe()));
    ex.ask_named(
        "holes",
        "how many holes (free chunks) at the end?",
        vec![],
        f.nr_holes.to_string(),
    );
    ex.ask_named(
        "largest-free",
        "largest free chunk at the end?",
        vec![format!("{} bytes free in all", f.total_free)],
        f.largest_free.to_string(),
    );
    ex.ask_named(
        "fragmented",
        "arrivals refused although enough bytes were free?",
        vec![format!("{nr_refused} refused in all")],
        nr_fragmented.to_string(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build;
    use mm_core::xorshift::XorShift;

    #[test]
    fn ostep_example_stack_heap_code_and_faults() {
        let ex = build(
            "segmentation",
            &["--addresses", "r:15K,w:4200,r:7K,x:100,w:100,r:10K,r:12K"],
        )
        .unwrap();
        let answers: Vec<&str> = ex.questions.iter().map(|q| q.answer.as_str()).collect();
        // 15K: stack, 3072 - 4096 = -1024 -> 28K - 1K = 27K. 4200: heap 34K + 104.
        // 7K: heap offset 3072 >= 3K. 100: code; a write to code is a protection fault.
        // 10K: selector 10, unused. 12K: stack offset 0 -> -4096, beyond its 2K.
        assert_eq!(
            answers,
            [
                "27648",
                "34920",
                "fault",
                "32868",
                "protection",
                "fault",
                "fault"
            ]
        );
        assert!(
            ex.worked()
                .contains("stack grows down: negative offset = 3072 - 4096 = -1024")
        );
    }

    #[test]
    fn bounds_are_never_exceeded_without_a_fault() {
        let mut rng = XorShift(0x5e6);
        for seed in 0..300 {
            let args = Args::parse(&["--seed".to_string(), seed.to_string()]).unwrap();
            let asize = 1 << (4 + rng.below(12));
            let table = segment_table(&args, &mut rng, asize, asize * 4).unwrap();
            for _ in 0..200 {
                let va = rng.below(asize);
                let (result, _) = table.translate(va, AccessKind::Read);
                let Ok(pa) = result else { continue };
                let segment = table.segments[(va / table.max_segment()) as usize].unwrap();
                let (low, high) = segment.physical_range();
                assert!(
                    low <= pa && pa < high,
                    "seed {seed}: {va} -> {pa} outside {segment:?}"
                );
            }
        }
    }

    #[test]
    fn churn_reports_external_fragmentation() {
        let ex = build(
            "segmentation",
            &[
                "--seed", "1", "--num", "0", "--churn", "60", "--psize", "32K",
            ],
        )
        .unwrap();
        let fragmented: u64 = ex.answer("fragmented").unwrap().parse().unwrap();
        assert!(fragmented > 0, "{}", ex.worked());
        assert!(ex.worked().contains("external fragmentation"));
        let holes: u64 = ex.answer("holes").unwrap().parse().unwrap();
        assert!(holes >= 1);
    }

    #[test]
    fn bad_segments_are_refused() {
        assert!(
            build("segmentation", &["--stack", "1K:2K"]).is_err(),
            "a stack growing below 0"
        );
        assert!(
            build("segmentation", &["--heap", "34K:5K"]).is_err(),
            "larger than a quarter"
        );
        assert!(build("segmentation", &["--addresses", "q:5"]).is_err());
    }
}
