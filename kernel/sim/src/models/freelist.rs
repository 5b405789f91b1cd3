//! Free-space management: a free list with headers, splitting and coalescing, and the
//! four classic fits, next to the kernel's own buddy allocator on the same requests.
//!
//! [`FreeList`] manages a heap `[base, base + size)`. An allocation of `n` bytes takes
//! `n + header` rounded up to the alignment from a free chunk chosen by the [`Fit`]:
//! first (lowest address), best (smallest that fits), worst (largest), next (first at
//! or after where the last search ended, wrapping). The chunk is split when the rest
//! could hold a header; otherwise the whole chunk is handed out and the slack is
//! internal waste. A free puts the chunk back, merging it with free neighbours
//! (coalescing) unless `--no-coalesce`.
//!
//! The fifth strategy is not simulated: it is `mm_core::buddy::BuddyAllocator`, the
//! kernel's frame allocator, with one "frame" standing for `--unit` bytes of this heap.
//! The summary compares all five on the same stream: failed requests, holes, largest
//! free block, internal waste. Segmentation ([`super::segmentation`]) uses the free
//! list to place segments in physical memory.

use super::{between, rng_from};
use crate::Model;
use crate::args::{ArgError, Args, arg_error, split_list};
use crate::exercise::Exercise;
use mm_core::addr::{Frame, Order};
use mm_core::buddy::{BuddyAllocator, MAX_ORDER};
use mm_core::frame_table::{FrameDesc, FrameState};
use std::collections::BTreeMap;

/// The model's entry in the front end.
pub const MODEL: Model = Model {
    name: "freelist",
    summary: "free-space management: best/worst/first/next fit and the kernel's buddy, fragmentation",
    options: "\
  --policy P        best, worst, first or next: the one traced step by step (default best)
  --size N          heap size in bytes (default 256)
  --base N          heap start address (default 1000)
  --header N        header bytes in front of each allocated chunk (default 0)
  --align N         chunk sizes are rounded up to a multiple of N (default 1)
  --no-coalesce     freed chunks are not merged with free neighbours
  --ops LIST        requests: +N allocates N bytes, -K frees the K-th allocation (from 0),
                    e.g. +10,+20,-0,+5 (default random)
  --num N           how many random requests (default 10)
  --unit N          bytes per buddy frame (default 4); a request takes 2^k frames",
    build_fn: exercise,
};

/// How a free chunk is chosen among those that fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fit {
    /// The smallest chunk that fits (lowest address on a tie).
    Best,
    /// The largest chunk.
    Worst,
    /// The lowest-addressed chunk that fits.
    First,
    /// The first that fits at or after where the last allocation ended, wrapping around.
    Next,
}

impl Fit {
    /// Every fit, in the order of the summary table.
    pub const ALL: [Fit; 4] = [Fit::Best, Fit::Worst, Fit::First, Fit::Next];

    /// Returns the fit's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fit::Best => "best",
            Fit::Worst => "worst",
            Fit::First => "first",
            Fit::Next => "next",
        }
    }

    /// Parses a name given on the command line.
    pub fn parse(name: &str) -> Result<Fit, ArgError> {
        Fit::ALL
            .into_iter()
            .find(|fit| fit.name() == name)
            .ok_or_else(|| arg_error(format!("--policy {name}: use best, worst, first or next")))
    }
}

/// A free chunk: `[start, start + len)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First byte.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
}

impl Chunk {
    /// Returns the first byte after the chunk.
    pub fn end(self) -> u64 {
        self.start + self.len
    }
}

/// An allocated chunk: where it is, and how much of it was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Allocated {
    chunk: Chunk,
    requested: u64,
}

/// Fragmentation figures of a heap at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fragmentation {
    /// Free chunks (holes).
    pub nr_holes: u64,
    /// Largest free chunk, bytes.
    pub largest_free: u64,
    /// All free bytes.
    pub total_free: u64,
    /// Allocated bytes beyond what was requested (headers, rounding, unsplit slack).
    pub internal_waste: u64,
}

/// A heap managed by a free list.
#[derive(Clone, Debug)]
pub struct FreeList {
    fit: Fit,
    header: u64,
    align: u64,
    is_coalescing: bool,
    base: u64,
    size: u64,
    /// Free chunks, sorted by address.
    free: Vec<Chunk>,
    /// Allocated chunks by the address handed out (after the header).
    allocated: BTreeMap<u64, Allocated>,
    /// Where next fit starts its search.
    next_cursor: u64,
}

impl FreeList {
    /// Creates a heap of `size` bytes at `base`, all free.
    pub fn new(
        fit: Fit,
        base: u64,
        size: u64,
        header: u64,
        align: u64,
        is_coalescing: bool,
    ) -> FreeList {
        let free = if size > 0 {
            vec![Chunk {
                start: base,
                len: size,
            }]
        } else {
            Vec::new()
        };
        let align = align.max(1);
        FreeList {
            fit,
            header,
            align,
            is_coalescing,
            base,
            size,
            free,
            allocated: BTreeMap::new(),
            next_cursor: base,
        }
    }

    /// Returns the free chunks, by address.
    pub fn free_chunks(&self) -> &[Chunk] {
        &self.free
    }

    /// Returns the bytes a request of `requested` takes: header plus payload, aligned.
    pub fn chunk_size(&self, requested: u64) -> u64 {
        (requested + self.header).div_ceil(self.align) * self.align
    }

    /// Allocates `requested` bytes; returns the address after the header, or `None`.
    pub fn alloc(&mut self, requested: u64) -> Option<u64> {
        let need = self.chunk_size(requested.max(1));
        let index = self.choose(need)?;
        let chunk = self.free[index];
        let min_rest = (self.header + 1).div_ceil(self.align) * self.align;
        let taken = if chunk.len - need >= min_rest {
            need
        } else {
            chunk.len
        };
        if taken == chunk.len {
            self.free.remove(index);
        } else {
            self.free[index] = Chunk {
                start: chunk.start + taken,
                len: chunk.len - taken,
            };
        }
        self.next_cursor = chunk.start + taken;
        let ptr = chunk.start + self.header;
        self.allocated.insert(
            ptr,
            Allocated {
                chunk: Chunk {
                    start: chunk.start,
                    len: taken,
                },
                requested,
            },
        );
        Some(ptr)
    }

    /// Returns the index in `free` of the chunk the fit chooses for `need` bytes.
    fn choose(&self, need: u64) -> Option<usize> {
        let fits = self.free.iter().enumerate().filter(|(_, c)| c.len >= need);
        match self.fit {
            Fit::First => fits.map(|(i, _)| i).next(),
            Fit::Best => fits.min_by_key(|(_, c)| c.len).map(|(i, _)| i),
            Fit::Worst => fits
                .max_by_key(|(i, c)| (c.len, usize::MAX - i))
                .map(|(i, _)| i),
            Fit::Next => {
                let (after, before): (Vec<_>, Vec<_>) = fits
                    .map(|(i, c)| (i, *c))
                    .partition(|(_, c)| c.end() > self.next_cursor);
                after.into_iter().chain(before).map(|(i, _)| i).next()
            }
        }
    }

    /// Frees the allocation at `ptr`; returns false if `ptr` is not allocated.
    pub fn free(&mut self, ptr: u64) -> bool {
        let Some(allocated) = self.allocated.remove(&ptr) else {
            return false;
        };
        let index = self
            .free
            .partition_point(|c| c.start < allocated.chunk.start);
        self.free.insert(index, allocated.chunk);
        if self.is_coalescing {
            if index + 1 < self.free.len() && self.free[index].end() == self.free[index + 1].start {
                self.free[index].len += self.free.remove(index + 1).len;
            }
            if index > 0 && self.free[index - 1].end() == self.free[index].start {
                self.free[index - 1].len += self.free.remove(index).len;
            }
        }
        true
    }

    /// Returns the fragmentation figures now.
    pub fn fragmentation(&self) -> Fragmentation {
        Fragmentation {
            nr_holes: self.free.len() as u64,
            largest_free: self.free.iter().map(|c| c.len).max().unwrap_or(0),
            total_free: self.free.iter().map(|c| c.len).sum(),
            internal_waste: self
                .allocated
                .values()
                .map(|a| a.chunk.len - a.requested)
                .sum(),
        }
    }

    /// Returns the free list as text: `[1000+10] [1030+226]`.
    pub fn describe(&self) -> String {
        if self.free.is_empty() {
            return "(empty)".into();
        }
        self.free
            .iter()
            .map(|c| format!("[{}+{}]", c.start, c.len))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Checks that free and allocated chunks tile the heap exactly; panics if not.
    pub fn check_invariants(&self) {
        let mut all: Vec<Chunk> = self.free.clone();
        all.extend(self.allocated.values().map(|a| a.chunk));
        all.sort_by_key(|c| c.start);
        let mut at = self.base;
        for chunk in &all {
            assert_eq!(
                chunk.start, at,
                "FreeList::check_invariants: gap or overlap at {at}"
            );
            at = chunk.end();
        }
        assert_eq!(
            at,
            self.base + self.size,
            "FreeList::check_invariants: chunks do not cover the heap"
        );
        assert!(
            self.free.windows(2).all(|w| w[0].start < w[1].start),
            "FreeList: free list unsorted"
        );
        if self.is_coalescing {
            assert!(
                self.free.windows(2).all(|w| w[0].end() < w[1].start),
                "FreeList: adjacent free chunks"
            );
        }
    }
}

/// The kernel's buddy allocator over a heap of frames of `unit` bytes each.
///
/// The allocator borrows its frame table, as in the kernel: make the table with
/// [`BuddyHeap::table`], then the heap over it.
pub struct BuddyHeap<'a> {
    buddy: BuddyAllocator<'a>,
    unit: u64,
    allocated: BTreeMap<u64, (Order, u64)>,
}

impl<'a> BuddyHeap<'a> {
    /// Returns a frame table for a heap of `size` bytes: `size / unit` descriptors.
    pub fn table(size: u64, unit: u64) -> Vec<FrameDesc> {
        vec![FrameDesc::new(); (size / unit.max(1)) as usize]
    }

    /// Creates the heap over `table`, every frame free.
    pub fn new(table: &'a mut [FrameDesc], unit: u64) -> BuddyHeap<'a> {
        let nr_frames = table.len() as u64;
        let mut buddy = BuddyAllocator::new(table, 0);
        buddy
            .add_free_range(Frame::from_pfn(0), nr_frames)
            .expect("BuddyHeap::new: a fresh table");
        BuddyHeap {
            buddy,
            unit: unit.max(1),
            allocated: BTreeMap::new(),
        }
    }

    /// Returns the order a request of `requested` bytes takes.
    pub fn order_for(&self, requested: u64) -> Order {
        let frames = requested.max(1).div_ceil(self.unit);
        Order(frames.next_power_of_two().trailing_zeros() as u8)
    }

    /// Allocates `requested` bytes; returns the offset of the block, or `None`.
    pub fn alloc(&mut self, requested: u64) -> Option<u64> {
        let order = self.order_for(requested);
        if order.0 > MAX_ORDER {
            return None;
        }
        let frame = self.buddy.alloc(order, FrameState::Kernel).ok()?;
        let offset = frame.pfn() * self.unit;
        self.allocated.insert(offset, (order, requested));
        Some(offset)
    }

    /// Frees the block at `offset`; returns false if it is not allocated.
    pub fn free(&mut self, offset: u64) -> bool {
        let Some((order, _)) = self.allocated.remove(&offset) else {
            return false;
        };
        let frame = Frame::from_pfn(offset / self.unit);
        self.buddy.free(frame, order).is_ok()
    }

    /// Returns the free blocks per order, smallest first.
    pub fn free_blocks(&self) -> [u64; MAX_ORDER as usize + 1] {
        self.buddy
            .check_invariants()
            .expect("BuddyHeap: the buddy allocator's invariants");
        self.buddy.buddyinfo().nr_free_blocks
    }

    /// Returns the fragmentation figures now (a hole is a free block).
    pub fn fragmentation(&self) -> Fragmentation {
        let unit = self.unit;
        let blocks = self.free_blocks();
        let orders = (0..blocks.len()).filter(|&k| blocks[k] > 0);
        Fragmentation {
            nr_holes: blocks.iter().sum(),
            largest_free: orders.clone().max().map_or(0, |k| unit << k),
            total_free: orders.map(|k| blocks[k] * (unit << k)).sum(),
            internal_waste: self
                .allocated
                .values()
                .map(|(order, req)| (order.nr_frames() * unit) - req)
                .sum(),
        }
    }
}

/// One request of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Allocate this many bytes.
    Alloc(u64),
    /// Free the allocation made by the K-th `Alloc` (counting from 0).
    Free(usize),
}

/// Parses `+10,+20,-0`.
fn parse_ops(text: &str) -> Result<Vec<Request>, ArgError> {
    let nr_allocs = std::cell::Cell::new(0);
    split_list(text)
        .map(|op| {
            let bad = || arg_error(format!("--ops: `{op}` is not +BYTES or -INDEX"));
            let (sign, number) = op.split_at(1);
            let value: u64 = crate::args::parse_number(number).map_err(|_| bad())?;
            match sign {
                "+" => {
                    nr_allocs.set(nr_allocs.get() + 1);
                    Ok(Request::Alloc(value))
                }
                "-" if (value as usize) < nr_allocs.get() => Ok(Request::Free(value as usize)),
                "-" => Err(arg_error(format!(
                    "--ops: `{op}` frees an allocation not made yet"
                ))),
                _ => Err(bad()),
            }
        })
        .collect()
}

/// Returns `num` random requests: allocations of 1..=size/8 bytes, frees of live ones.
fn random_ops(rng: &mut mm_core::xorshift::XorShift, num: u64, size: u64) -> Vec<Request> {
    let (mut ops, mut live, mut nr_allocs) = (Vec::new(), Vec::new(), 0);
    for _ in 0..num {
        if live.is_empty() || rng.below(100) < 55 {
            ops.push(Request::Alloc(between(rng, 1, (size / 8).max(1))));
            live.push(nr_allocs);
            nr_allocs += 1;
        } else {
            let k = live.swap_remove(rng.below(live.len() as u64) as usize);
            ops.push(Request::Free(k));
        }
    }
    ops
}

/// Replays `ops` on a heap; returns the fragmentation and the number of failed requests.
fn replay(
    ops: &[Request],
    alloc_fn: &mut dyn FnMut(u64) -> Option<u64>,
    free_fn: &mut dyn FnMut(u64),
) -> u64 {
    let mut ptrs: Vec<Option<u64>> = Vec::new();
    let mut nr_failed = 0;
    for op in ops {
        match *op {
            Request::Alloc(n) => {
                let ptr = alloc_fn(n);
                nr_failed += u64::from(ptr.is_none());
                ptrs.push(ptr);
            }
            Request::Free(k) => {
                if let Some(ptr) = ptrs[k].take() {
                    free_fn(ptr);
                }
            }
        }
    }
    nr_failed
}

/// Builds the exercise from the options.
fn exercise(args: &Args) -> Result<Exercise, ArgError> {
    let mut rng = rng_from(args)?;
    let fit = Fit::parse(args.text("policy").unwrap_or("best"))?;
    let size = args.number_or("size", 256)?;
    let base = args.number_or("base", 1000)?;
    let header = args.number_or("header", 0)?;
    let align = args.number_or("align", 1)?;
    let unit = args.number_or("unit", 4)?;
    let is_coalescing = !args.flag("no-coalesce");
    if size == 0 || align == 0 || unit == 0 || size > 1 << 24 || size / unit > 1 << 20 {
        return Err(arg_error(
            "need --size in 1..=16M, --align >= 1, --unit >= 1 and size/unit <= 1M frames",
        ));
    }
    let num = args.number_or("num", 10)?;
    let ops = match args.text("ops") {
        Some(text) => parse_ops(text)?,
        None => random_ops(&mut rng, num, size),
    };

    let mut ex = Exercise::default();
    ex.given(format!(
        "free list: heap [{base}, {}) ({size} bytes), header {header} bytes, align {align}, {} fit, coalescing {}",
        base + size,
        fit.name(),
        if is_coalescing { "on" } else { "off" }
    ));
    ex.given(format!(
        "  free list: {}",
        FreeList::new(fit, base, size, header, align, true).describe()
    ));
    ex.given("an allocation returns the address after its header, or NULL; a free returns its chunk to the list");
    let mut list = FreeList::new(fit, base, size, header, align, is_coalescing);
    let mut ptrs: Vec<Option<u64>> = Vec::new();
    for op in &ops {
        match *op {
            Request::Alloc(n) => {
                let need = list.chunk_size(n.max(1));
                let before = list.describe();
                let ptr = list.alloc(n);
                let mut work = vec![
                    format!(
                        "needs {n} + header {header} = {} bytes, rounded to a multiple of {align}: {need}",
                        n + header
                    ),
                    format!("free list before: {before}"),
                ];
                let answer = match ptr {
                    Some(p) => {
                        work.push(format!(
                            "{} fit takes the chunk at {}",
                            fit.name(),
                            p - header
                        ));
                        work.push(format!("free list after:  {}", list.describe()));
                        p.to_string()
                    }
                    None => {
                        work.push(format!("no free chunk has {need} bytes"));
                        "NULL".into()
                    }
                };
                ex.ask(
                    format!("ptr[{}] = alloc({n}): address?", ptrs.len()),
                    work,
                    answer,
                );
                ptrs.push(ptr);
            }
            Request::Free(k) => {
                let work = match ptrs[k].take() {
                    Some(ptr) => {
                        list.free(ptr);
                        vec![format!("free list after:  {}", list.describe())]
                    }
                    None => vec!["ptr was NULL: nothing to free".into()],
                };
                let holes = list.free_chunks().len();
                ex.ask(
                    format!("free(ptr[{k}]): how many free chunks now?"),
                    work,
                    holes.to_string(),
                );
            }
        }
        list.check_invariants();
    }
    summarize(
        &mut ex,
        &ops,
        base,
        size,
        header,
        align,
        is_coalescing,
        unit,
    );
    Ok(ex)
}

/// Adds the side-by-side table of the five strategies on the same stream.
#[allow(clippy::too_many_arguments)]
fn summarize(
    ex: &mut Exercise,
    ops: &[Request],
    base: u64,
    size: u64,
    header: u64,
    align: u64,
    coalesce: bool,
    unit: u64,
) {
    ex.sum_up(format!(
        "the same {} requests under each strategy (buddy: {unit}-byte frames, no header):",
        ops.len()
    ));
    ex.sum_up(format!(
        "{:<8} {:>7} {:>6} {:>13} {:>11} {:>15}",
        "strategy", "failed", "holes", "largest free", "total free", "internal waste"
    ));
    let row_fn = |name: &str, failed: u64, f: Fragmentation| {
        format!(
            "{name:<8} {failed:>7} {:>6} {:>13} {:>11} {:>15}",
            f.nr_holes, f.largest_free, f.total_free, f.internal_waste
        )
    };
    for fit in Fit::ALL {
        let list = std::cell::RefCell::new(FreeList::new(fit, base, size, header, align, coalesce));
        let failed = replay(ops, &mut |n| list.borrow_mut().alloc(n), &mut |p| {
            list.borrow_mut().free(p);
        });
        ex.sum_up(row_fn(fit.name(), failed, list.borrow().fragmentation()));
    }
    let mut table = BuddyHeap::table(size, unit);
    let buddy = std::cell::RefCell::new(BuddyHeap::new(&mut table, unit));
    let failed = replay(ops, &mut |n| buddy.borrow_mut().alloc(n), &mut |p| {
        buddy.borrow_mut().free(p);
    });
    ex.sum_up(row_fn("buddy", failed, buddy.borrow().fragmentation()));
    ex.sum_up(format!(
        "buddy free blocks by order 0..: {:?}",
        buddy.borrow().free_blocks()
    ));
}

#[cfg(test)]
mod tests;
