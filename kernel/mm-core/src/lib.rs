//! `mm-core`: the kernel's memory-management algorithms, with no hardware in them.
//!
//! Everything here works on frame numbers, page numbers and plain data, so it builds
//! for the kernel (`x86_64-unknown-none`) and for the host, where `cargo test` runs
//! its unit and randomized tests natively. The kernel crate wraps these types with
//! locks and the direct physical map; it is the only crate that says `unsafe`.
//!
//! | module | what it holds |
//! |---|---|
//! | [`addr`] | `PhysAddr`, `VirtAddr`, `Frame`, `Page`, `Order` |
//! | [`buddy`] | `BuddyAllocator`: free lists of 2^order-frame blocks, split and merge |
//! | [`elf`] | `parse`: an ELF64 executable's entry point and `LoadSegment`s, checked |
//! | [`initial_stack`] | `build`: a new program's argc, argv, envp and auxiliary vector (`InitialStack`), and `parse` |
//! | [`fail_inject`] | `FailPlan`: which allocations fault injection fails (every Nth, or P % seeded) |
//! | [`fault`] | the page-fault decision table: `decide` (zero page, COW copy or reuse, swap cache, refuse) |
//! | [`fault_code`] | `PageFaultCode`: the page-fault error code's bits (present, write, user, fetch, ...)
//! | [`fork_family`] | fork families (`FamilyTable`) and the `FamilyPage` a mapped user frame records: the reverse map |
//! | [`frame_table`] | `FrameDesc` (one per physical frame), `FrameState`, `FrameFlags` |
//! | [`ksm`] | same-page merging: `page_checksum`, the stable index (merged frames and their places), the unstable index |
//! | [`kmalloc`] | `Kmalloc`: twelve size classes (8..4096 bytes) of slab caches, `size_class_for` |
//! | [`line_discipline`] | `LineDiscipline`: the console's canonical mode (echo, erase, Ctrl-C, Ctrl-D, whole lines) |
//! | [`pagetable`] | `PageTable` over `TableMemory`: the 4-level walk; TLB `Flush` tokens |
//! | [`pcp`] | `PcpList`, `PcpSizes`: per-CPU lists of single free frames in front of the buddy (Linux's pcp lists) |
//! | [`pcid`] | `PcidAllocator`: a TLB tag per live address space, never shared |
//! | [`pte`] | `Pte`, `PteFlags`, `SwapEntry` in non-present PTEs, `PageProt` |
//! | [`reclaim`] | page-replacement policies (FIFO, clock, LRU, OPT) and a simulator |
//! | [`slab`] | `SlabCache` over a `SlabBackend`: on-slab headers, intrusive free lists, `SlabInfo` |
//! | [`swap_header`] | `SwapHeader`: the swap area's header page (signature, version, size), checked |
//! | [`swap_cache`] | the swap cache's reference rules: `SlotState` and its events' verdicts |
//! | [`swap_map`] | `SwapMap`: the swap area's slot bitmap and share counts |
//! | [`file_readahead`] | `ReadaheadWindow`: which pages of a file a sequential read reads ahead (adaptive) |
//! | [`swap_readahead`] | `ReadaheadWindow`: how many slots a major fault reads (adaptive) |
//! | [`vma`] | `Vma`, `VmaTree`: an address space's mapped areas |
//! | [`watermarks`] | `compute`: reclaim's min/low/high from the memory size and `watermark_scale_factor` (Linux's rule) |
//! | [`xorshift`] | `XorShift`: a deterministic PRNG for randomized tests and benches |
//!
//! Tests: each module's host tests sit in `#[cfg(test)] mod tests`, inline while they
//! are short; when they would push the file past about 800 lines they move to
//! `foo/tests.rs` next to `foo.rs` (`slab`, `buddy`, `pagetable`, `reclaim`, `vma`,
//! `elf`). No `#[path]` attributes: a module's files are where Rust looks for them.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

extern crate alloc;

pub mod addr;
pub mod buddy;
pub mod elf;
pub mod fail_inject;
pub mod fault;
pub mod fault_code;
pub mod fork_family;
pub mod initial_stack;
pub mod frame_table;
pub mod kmalloc;
pub mod ksm;
pub mod magazine;
pub mod line_discipline;
pub mod pagetable;
pub mod pcid;
pub mod pcp;
pub mod pte;
pub mod reclaim;
pub mod slab;
pub mod swap_area;
pub mod swap_cache;
pub mod swap_header;
pub mod swap_map;
pub mod file_readahead;
pub mod swap_readahead;
pub mod vma;
pub mod watermarks;
pub mod xorshift;
