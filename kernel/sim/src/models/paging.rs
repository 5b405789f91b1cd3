//! Paging with any geometry: linear, multi-level and inverted (hashed) page tables.
//!
//! A [`Geometry`] is what a course states first: virtual address bits, physical
//! address bits, page size, PTE size. From it follow the offset bits, the VPN bits and
//! the number of frames. A virtual address splits into `VPN | offset`; the page table
//! maps the VPN to a frame number (PFN); the physical address is `PFN * page size +
//! offset`. Three ways to hold the table:
//!
//! - **linear**: an array indexed by VPN, one PTE per *virtual* page, mapped or not:
//!   `2^vpn_bits x pte_size` bytes per process (32-bit, 4 KiB pages, 4-byte PTEs: 4 MiB);
//! - **multi-level** ([`MultiLevel`]): the VPN splits into one index per level; each
//!   table below the top fills one page, and only tables that map something exist;
//! - **inverted** ([`Inverted`]): one entry per *physical* frame, `(pid, VPN, next)`,
//!   found through a hash anchor table: `hash(pid, VPN) = (VPN + pid) mod nr_frames`
//!   names the first entry of a chain. Its size depends only on physical memory.
//!
//! The model prints the geometry, the table memory each layout needs for the mapped
//! pages (or `--layout`), and translates addresses step by step through the chosen
//! table. Tests check the three tables agree, against hand-worked examples and
//! `mm_core::addr`'s x86-64 split.

use super::rng_from;
use crate::Model;
use crate::args::{ArgError, Args, arg_error, bytes, split_list};
use crate::exercise::Exercise;
use std::collections::{BTreeMap, BTreeSet};

/// The model's entry in the front end.
pub const MODEL: Model = Model {
    name: "paging",
    summary: "page tables of any geometry: linear, multi-level, inverted; table memory; translation",
    options: "\
  --va-bits N       virtual address bits (default 8)
  --pa-bits N       physical address bits (default 10)
  --page-size SIZE  page size, a power of two (default 64)
  --pte-size N      bytes per PTE (default 4)
  --table T         linear, multi or inverted: the table the translations walk (default linear)
  --levels N        levels of the multi-level table (default: the fewest with page-sized tables)
  --map LIST        mappings VPN:PFN, e.g. 3:12,0:5 (default random)
  --mapped N        how many random pages to map (default a quarter of the pages, at most 16)
  --addresses LIST  virtual addresses to translate (default random)
  --num N           how many random addresses (default 5)
  --layout LIST     regions START:SIZE whose pages count as mapped for the table memory,
                    e.g. 0:16K,0xffffc000:16K (default: the mapped pages)
  --pid N           the process, for the inverted table (default 1)",
    build_fn: exercise,
};

/// The sizes an exercise states up front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Bits of a virtual address.
    pub va_bits: u32,
    /// Bits of a physical address.
    pub pa_bits: u32,
    /// Bytes per page (a power of two).
    pub page_size: u64,
    /// Bytes per page-table entry.
    pub pte_size: u64,
}

impl Geometry {
    /// Returns the bits of the offset within a page.
    pub fn offset_bits(self) -> u32 {
        self.page_size.trailing_zeros()
    }
    /// Returns the bits of a virtual page number.
    pub fn vpn_bits(self) -> u32 {
        self.va_bits - self.offset_bits()
    }
    /// Returns the bits of a physical frame number.
    pub fn pfn_bits(self) -> u32 {
        self.pa_bits - self.offset_bits()
    }
    /// Returns the number of physical frames.
    pub fn nr_frames(self) -> u64 {
        1 << self.pfn_bits()
    }
    /// Returns the bits a page-sized table indexes: log2(page size / PTE size).
    pub fn bits_per_table(self) -> u32 {
        (self.page_size / self.pte_size).max(1).ilog2()
    }
    /// Returns the index bits of each level, top first, for `levels` levels: every level
    /// below the top indexes a page-sized table, the top takes the bits left.
    pub fn level_bits(self, levels: u32) -> Result<Vec<u32>, ArgError> {
        let lower = self
            .bits_per_table()
            .saturating_mul(levels.saturating_sub(1));
        if levels == 0 || lower >= self.vpn_bits() {
            return Err(arg_error(format!(
                "{levels} levels of {}-bit tables do not fit in {} VPN bits",
                self.bits_per_table(),
                self.vpn_bits()
            )));
        }
        let mut bits = vec![self.vpn_bits() - lower];
        bits.extend(std::iter::repeat_n(
            self.bits_per_table(),
            levels as usize - 1,
        ));
        Ok(bits)
    }
    /// Returns the fewest levels whose top table fits in a page.
    pub fn default_levels(self) -> u32 {
        self.vpn_bits()
            .div_ceil(self.bits_per_table().max(1))
            .max(1)
    }
    /// Returns the bytes of a linear table: one PTE per virtual page.
    pub fn linear_table_bytes(self) -> u64 {
        (1u64 << self.vpn_bits()).saturating_mul(self.pte_size)
    }
    /// Returns the bytes of an inverted table, entries and anchors.
    pub fn inverted_table_bytes(self) -> (u64, u64) {
        (
            self.nr_frames() * INVERTED_ENTRY_BYTES,
            self.nr_frames() * ANCHOR_BYTES,
        )
    }
    /// Checks the geometry makes sense.
    fn validate(self) -> Result<(), ArgError> {
        let ok = self.page_size.is_power_of_two()
            && self.page_size >= 2
            && self.offset_bits() < self.va_bits.min(self.pa_bits)
            && self.va_bits <= 64
            && self.pa_bits <= 30
            && self.pte_size > 0
            && self.pte_size <= self.page_size;
        if !ok {
            return Err(arg_error(
                "need a power-of-two page smaller than both address spaces, --pa-bits <= 30, 0 < --pte-size <= page",
            ));
        }
        Ok(())
    }
}

/// Bytes of one inverted-table entry: pid, VPN and the index of the next entry.
pub const INVERTED_ENTRY_BYTES: u64 = 8;
/// Bytes of one hash anchor (the index of a chain's first entry).
pub const ANCHOR_BYTES: u64 = 4;

/// Returns the bytes of a multi-level table mapping `vpns`, and the tables per level.
pub fn multi_level_bytes(
    geometry: Geometry,
    level_bits: &[u32],
    vpns: &BTreeSet<u64>,
) -> (u64, Vec<u64>) {
    let top_bytes = (1u64 << level_bits[0]) * geometry.pte_size;
    let mut nr_tables = vec![1];
    let mut shift = geometry.vpn_bits() - level_bits[0];
    for &bits in &level_bits[1..] {
        // A table at this level exists for each distinct prefix above it.
        let prefixes: BTreeSet<u64> = vpns.iter().map(|vpn| vpn >> shift).collect();
        nr_tables.push(prefixes.len() as u64);
        shift -= bits;
    }
    let lower_bytes: u64 = nr_tables[1..]
        .iter()
        .map(|n| n * (1u64 << geometry.bits_per_table()) * geometry.pte_size)
        .sum();
    (top_bytes + lower_bytes, nr_tables)
}

/// One table of a [`MultiLevel`] page table: where it is, and its valid entries.
#[derive(Clone, Debug, Default)]
struct Table {
    frame: u64,
    /// Index -> the next table's number, or at the last level the PFN.
    entries: BTreeMap<u64, u64>,
}

/// A multi-level page table whose tables sit in physical frames.
#[derive(Clone, Debug)]
pub struct MultiLevel {
    geometry: Geometry,
    level_bits: Vec<u32>,
    tables: Vec<Table>,
}

impl MultiLevel {
    /// Builds the table for `mappings` (VPN -> PFN); tables take frames from `free_frames`.
    pub fn build(
        geometry: Geometry,
        level_bits: Vec<u32>,
        mappings: &BTreeMap<u64, u64>,
        free_frames: &mut dyn Iterator<Item = u64>,
    ) -> Result<MultiLevel, ArgError> {
        let no_frame = || arg_error("physical memory is too small for the page tables");
        let root = Table {
            frame: free_frames.next().ok_or_else(no_frame)?,
            entries: BTreeMap::new(),
        };
        let mut table = MultiLevel {
            geometry,
            level_bits,
            tables: vec![root],
        };
        for (&vpn, &pfn) in mappings {
            let indices = table.indices(vpn);
            let mut at = 0;
            for &index in &indices[..indices.len() - 1] {
                at = match table.tables[at].entries.get(&index) {
                    Some(&next) => next as usize,
                    None => {
                        let frame = free_frames.next().ok_or_else(no_frame)?;
                        table.tables.push(Table {
                            frame,
                            entries: BTreeMap::new(),
                        });
                        let next = table.tables.len() - 1;
                        table.tables[at].entries.insert(index, next as u64);
                        next
                    }
                };
            }
            table.tables[at]
                .entries
                .insert(indices[indices.len() - 1], pfn);
        }
        Ok(table)
    }

    /// Returns the index of `vpn` at each level, top first.
    pub fn indices(&self, vpn: u64) -> Vec<u64> {
        let mut shift = self.geometry.vpn_bits();
        self.level_bits
            .iter()
            .map(|&bits| {
                shift -= bits;
                (vpn >> shift) & ((1 << bits) - 1)
            })
            .collect()
    }

    /// Walks the table for `vpn`; returns the PFN, or `None`, and the steps taken.
    pub fn walk(&self, vpn: u64) -> (Option<u64>, Vec<String>) {
        let mut steps = Vec::new();
        let (mut at, levels) = (0, self.level_bits.len());
        let mut high_bit = self.geometry.va_bits;
        for (level, index) in self.indices(vpn).into_iter().enumerate() {
            let low_bit = high_bit - self.level_bits[level];
            let table = &self.tables[at];
            let pte_pa = table.frame * self.geometry.page_size + index * self.geometry.pte_size;
            let prefix = format!(
                "level {} table in frame {}: index = VA bits {}..{} = {index}, entry at PA {pte_pa}",
                level + 1,
                table.frame,
                high_bit - 1,
                low_bit
            );
            high_bit = low_bit;
            match table.entries.get(&index) {
                None => {
                    steps.push(format!("{prefix}: invalid -> page fault"));
                    return (None, steps);
                }
                Some(&pfn) if level + 1 == levels => {
                    steps.push(format!("{prefix}: valid, PFN {pfn}"));
                    return (Some(pfn), steps);
                }
                Some(&next) => {
                    steps.push(format!(
                        "{prefix}: valid, next table in frame {}",
                        self.tables[next as usize].frame
                    ));
                    at = next as usize;
                }
            }
        }
        unreachable!("MultiLevel::walk: the last level returns")
    }
}

/// One entry of an inverted page table: who has this frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct InvertedEntry {
    pid: u64,
    vpn: u64,
    next: Option<u64>,
}

/// An inverted page table: entry `i` describes frame `i`; a hash anchor table starts
/// the chain of entries whose `(pid, VPN)` hash to it.
#[derive(Clone, Debug)]
pub struct Inverted {
    entries: Vec<Option<InvertedEntry>>,
    anchors: Vec<Option<u64>>,
}

impl Inverted {
    /// Creates an empty table for `nr_frames` frames.
    pub fn new(nr_frames: u64) -> Inverted {
        Inverted {
            entries: vec![None; nr_frames as usize],
            anchors: vec![None; nr_frames as usize],
        }
    }

    /// Returns the anchor a `(pid, vpn)` hashes to: `(vpn + pid) mod nr_frames`.
    pub fn hash(&self, pid: u64, vpn: u64) -> u64 {
        vpn.wrapping_add(pid) % self.anchors.len() as u64
    }

    /// Records that frame `pfn` holds page `vpn` of `pid` (at the head of its chain).
    pub fn insert(&mut self, pid: u64, vpn: u64, pfn: u64) {
        let bucket = self.hash(pid, vpn) as usize;
        self.entries[pfn as usize] = Some(InvertedEntry {
            pid,
            vpn,
            next: self.anchors[bucket],
        });
        self.anchors[bucket] = Some(pfn);
    }

    /// Looks `(pid, vpn)` up; returns the frame, or `None`, and the steps taken.
    pub fn lookup(&self, pid: u64, vpn: u64) -> (Option<u64>, Vec<String>) {
        let bucket = self.hash(pid, vpn);
        let mut steps = vec![format!(
            "hash(pid {pid}, VPN {vpn}) = ({vpn} + {pid}) mod {} = {bucket}",
            self.anchors.len()
        )];
        let mut cursor = self.anchors[bucket as usize];
        match cursor {
            None => steps.push(format!("anchor[{bucket}] is empty -> page fault")),
            Some(first) => steps.push(format!("anchor[{bucket}] -> entry {first}")),
        }
        while let Some(index) = cursor {
            let entry = self.entries[index as usize]
                .expect("Inverted::lookup: a chain names an empty entry");
            if entry.pid == pid && entry.vpn == vpn {
                steps.push(format!(
                    "entry {index}: pid {}, VPN {}: match -> PFN = entry number = {index}",
                    entry.pid, entry.vpn
                ));
                return (Some(index), steps);
            }
            let next = entry
                .next
                .map_or("end of chain -> page fault".to_string(), |n| {
                    format!("next entry {n}")
                });
            steps.push(format!(
                "entry {index}: pid {}, VPN {}: no match, {next}",
                entry.pid, entry.vpn
            ));
            cursor = entry.next;
        }
        (None, steps)
    }
}

/// Which table the translations walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TableKind {
    Linear,
    Multi,
    Inverted,
}

/// Parses `--map 3:12,0:5`.
fn parse_map(text: &str) -> Result<BTreeMap<u64, u64>, ArgError> {
    let mut map = BTreeMap::new();
    for item in split_list(text) {
        let bad = || arg_error(format!("--map: `{item}` is not VPN:PFN"));
        let (vpn, pfn) = item.split_once(':').ok_or_else(bad)?;
        let vpn = crate::args::parse_number(vpn).map_err(|_| bad())?;
        map.insert(vpn, crate::args::parse_number(pfn).map_err(|_| bad())?);
    }
    Ok(map)
}

/// Parses `--layout 0:16K,0xffffc000:16K` into the set of VPNs it covers.
fn parse_layout(text: &str, geometry: Geometry) -> Result<BTreeSet<u64>, ArgError> {
    let mut vpns = BTreeSet::new();
    for item in split_list(text) {
        let bad = || arg_error(format!("--layout: `{item}` is not START:SIZE"));
        let (start, size) = item.split_once(':').ok_or_else(bad)?;
        let start = crate::args::parse_number(start).map_err(|_| bad())?;
        let size = crate::args::parse_number(size).map_err(|_| bad())?;
        let (first, last) = (
            start >> geometry.offset_bits(),
            (start + size.max(1) - 1) >> geometry.offset_bits(),
        );
        if last >> geometry.vpn_bits() != 0 || last - first > 1 << 24 {
            return Err(arg_error(format!(
                "--layout: `{item}` is outside the address space or too large"
            )));
        }
        vpns.extend(first..=last);
    }
    Ok(vpns)
}

/// Builds the exercise from the options.
fn exercise(args: &Args) -> Result<Exercise, ArgError> {
    let mut rng = rng_from(args)?;
    let geometry = Geometry {
        va_bits: args.number_or("va-bits", 8)? as u32,
        pa_bits: args.number_or("pa-bits", 10)? as u32,
        page_size: args.number_or("page-size", 64)?,
        pte_size: args.number_or("pte-size", 4)?,
    };
    geometry.validate()?;
    let kind = match args.text("table").unwrap_or("linear") {
        "linear" => TableKind::Linear,
        "multi" => TableKind::Multi,
        "inverted" => TableKind::Inverted,
        other => {
            return Err(arg_error(format!(
                "--table {other}: use linear, multi or inverted"
            )));
        }
    };
    let levels = args
        .number("levels")?
        .map_or(geometry.default_levels(), |n| n as u32);
    let level_bits = geometry.level_bits(levels)?;
    let pid = args.number_or("pid", 1)?;
    let nr_vpages = 1u64 << geometry.vpn_bits().min(62);
    let mappings = match args.text("map") {
        Some(text) => parse_map(text)?,
        None => {
            let nr = args
                .number_or("mapped", (nr_vpages / 4).clamp(1, 16))?
                .min(nr_vpages)
                .min(geometry.nr_frames() / 2);
            // Distinct random frames for distinct random pages (at most half of each
            // are taken, so drawing again on a collision ends soon).
            let mut used = BTreeSet::new();
            let mut map = BTreeMap::new();
            while (map.len() as u64) < nr {
                let pfn = rng.below(geometry.nr_frames());
                let vpn = rng.below(nr_vpages);
                if !map.contains_key(&vpn) && used.insert(pfn) {
                    map.insert(vpn, pfn);
                }
            }
            map
        }
    };
    let pfns: BTreeSet<u64> = mappings.values().copied().collect();
    if mappings.keys().any(|&v| v >= nr_vpages)
        || pfns.iter().any(|&p| p >= geometry.nr_frames())
        || pfns.len() < mappings.len()
    {
        return Err(arg_error(
            "--map: a VPN or PFN is out of range, or two pages share a frame",
        ));
    }
    let vpn_list: Vec<u64> = mappings.keys().copied().collect();
    let num = args.number_or("num", 5)?;
    let addresses = match args.numbers("addresses")? {
        Some(list) => list,
        None => (0..num)
            .map(|_| {
                let vpn = if !vpn_list.is_empty() && rng.below(3) > 0 {
                    vpn_list[rng.below(vpn_list.len() as u64) as usize]
                } else {
                    rng.below(nr_vpages)
                };
                (vpn << geometry.offset_bits()) | rng.below(geometry.page_size)
            })
            .collect(),
    };
    if let Some(&va) = addresses
        .iter()
        .find(|&&va| geometry.va_bits < 64 && va >> geometry.va_bits != 0)
    {
        return Err(arg_error(format!(
            "address {va:#x} does not fit in {} bits",
            geometry.va_bits
        )));
    }
    let layout = match args.text("layout") {
        Some(text) => parse_layout(text, geometry)?,
        None => mappings.keys().copied().collect(),
    };

    let mut ex = Exercise::default();
    describe_geometry(&mut ex, geometry, &mappings, kind);
    ask_table_memory(&mut ex, geometry, &level_bits, &layout);
    let mut free_frames = (0..geometry.nr_frames()).filter(|f| !pfns.contains(f));
    let multi = if kind == TableKind::Multi {
        let multi = MultiLevel::build(geometry, level_bits.clone(), &mappings, &mut free_frames)?;
        ex.given(format!(
            "the multi-level table: {} levels of {:?} index bits, top table in frame {}",
            levels, level_bits, multi.tables[0].frame
        ));
        Some(multi)
    } else {
        None
    };
    let inverted = if kind == TableKind::Inverted {
        if geometry.pfn_bits() > 20 {
            return Err(arg_error(
                "--table inverted simulates at most 2^20 frames: lower --pa-bits",
            ));
        }
        let mut inverted = Inverted::new(geometry.nr_frames());
        mappings
            .iter()
            .for_each(|(&vpn, &pfn)| inverted.insert(pid, vpn, pfn));
        Some(inverted)
    } else {
        None
    };
    for &va in &addresses {
        let (vpn, offset) = (va >> geometry.offset_bits(), va & (geometry.page_size - 1));
        let mut work = vec![format!(
            "VPN = {va} >> {} = {vpn}, offset = {va} & {} = {offset}",
            geometry.offset_bits(),
            geometry.page_size - 1
        )];
        let pfn = match kind {
            TableKind::Linear => {
                let pfn = mappings.get(&vpn).copied();
                work.push(match pfn {
                    Some(pfn) => format!(
                        "PTE[{vpn}] (at PTBR + {vpn} x {}): valid, PFN {pfn}",
                        geometry.pte_size
                    ),
                    None => format!(
                        "PTE[{vpn}] (at PTBR + {vpn} x {}): invalid -> page fault",
                        geometry.pte_size
                    ),
                });
                pfn
            }
            TableKind::Multi => {
                let (pfn, steps) = multi.as_ref().expect("built above").walk(vpn);
                work.extend(steps);
                pfn
            }
            TableKind::Inverted => {
                let (pfn, steps) = inverted.as_ref().expect("built above").lookup(pid, vpn);
                work.extend(steps);
                pfn
            }
        };
        let answer = match pfn {
            Some(pfn) => {
                let pa = pfn * geometry.page_size + offset;
                work.push(format!(
                    "PA = PFN x {} + offset = {pfn} x {} + {offset} = {pa} ({pa:#x})",
                    geometry.page_size, geometry.page_size
                ));
                pa.to_string()
            }
            None => "fault".into(),
        };
        ex.ask(
            format!("VA {va:#x} ({va}): physical address, or fault?"),
            work,
            answer,
        );
    }
    Ok(ex)
}

/// Adds the geometry, and the mappings when they are few enough to list.
fn describe_geometry(
    ex: &mut Exercise,
    g: Geometry,
    mappings: &BTreeMap<u64, u64>,
    kind: TableKind,
) {
    ex.given(format!(
        "paging: {}-bit virtual addresses, {}-bit physical, pages of {}, {}-byte PTEs",
        g.va_bits,
        g.pa_bits,
        bytes(g.page_size),
        g.pte_size
    ));
    ex.given(format!(
        "  offset = low {} bits; VPN = high {} bits ({} virtual pages); PFN = {} bits ({} frames)",
        g.offset_bits(),
        g.vpn_bits(),
        if g.vpn_bits() < 63 {
            (1u64 << g.vpn_bits()).to_string()
        } else {
            format!("2^{}", g.vpn_bits())
        },
        g.pfn_bits(),
        g.nr_frames()
    ));
    let listed: Vec<String> = mappings
        .iter()
        .take(32)
        .map(|(v, p)| format!("{v}->{p}"))
        .collect();
    let more = if mappings.len() > 32 {
        format!(" ... ({} in all)", mappings.len())
    } else {
        String::new()
    };
    let name = match kind {
        TableKind::Linear => "linear",
        TableKind::Multi => "multi-level",
        TableKind::Inverted => "inverted",
    };
    ex.given(format!(
        "  mapped pages (VPN->PFN), looked up in the {name} table: {}{more}",
        listed.join(" ")
    ));
}

/// Asks for the table memory each layout needs for the pages in `layout`.
fn ask_table_memory(ex: &mut Exercise, g: Geometry, level_bits: &[u32], layout: &BTreeSet<u64>) {
    let linear = g.linear_table_bytes();
    ex.ask_named(
        "linear-bytes",
        "bytes of a linear page table, per process?",
        vec![format!(
            "2^{} entries x {} bytes = {}, mapped pages or not",
            g.vpn_bits(),
            g.pte_size,
            bytes(linear)
        )],
        linear.to_string(),
    );
    let (multi, nr_tables) = multi_level_bytes(g, level_bits, layout);
    let mut work = vec![format!(
        "{} levels of {:?} index bits; {} pages mapped",
        level_bits.len(),
        level_bits,
        layout.len()
    )];
    work.push(format!(
        "top table: 2^{} x {} = {}",
        level_bits[0],
        g.pte_size,
        bytes((1 << level_bits[0]) * g.pte_size)
    ));
    for (level, n) in nr_tables.iter().enumerate().skip(1) {
        work.push(format!(
            "level {}: {n} table(s) of {} (one per distinct index prefix)",
            level + 1,
            bytes(g.page_size.min((1 << g.bits_per_table()) * g.pte_size))
        ));
    }
    work.push(format!("total {}", bytes(multi)));
    ex.ask_named(
        "multi-bytes",
        format!(
            "bytes of a {}-level table for this layout?",
            level_bits.len()
        ),
        work,
        multi.to_string(),
    );
    let (entries, anchors) = g.inverted_table_bytes();
    ex.ask_named(
        "inverted-bytes",
        "bytes of an inverted table (one for the whole machine)?",
        vec![format!(
            "{} frames x {INVERTED_ENTRY_BYTES} bytes (pid, VPN, next) = {} + anchors {} x {ANCHOR_BYTES} = {}: {}",
            g.nr_frames(),
            bytes(entries),
            g.nr_frames(),
            bytes(anchors),
            bytes(entries + anchors)
        )],
        (entries + anchors).to_string(),
    );
}

#[cfg(test)]
mod tests;
