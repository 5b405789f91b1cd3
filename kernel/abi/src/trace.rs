//! What `fault_trace` (syscall [`FAULT_TRACE`](crate::nr::FAULT_TRACE)) reads: the
//! kernel's ring of the last page faults, one [`FaultTraceRecord`] each.
//!
//! ```text
//!  fault_trace(OFF, ..)               tracing off (the ring is kept)
//!  fault_trace(ON, ..)                the ring emptied, tracing on
//!  fault_trace(READ, pid, buf, n)     up to n records, oldest first (pid 0: every
//!                                     process), copied to buf; returns how many
//! ```

/// `fault_trace` operations (its first argument).
pub mod op {
    /// Stop recording faults.
    pub const OFF: u64 = 0;
    /// Empty the ring and record faults from now on.
    pub const ON: u64 = 1;
    /// Copy the recorded faults out.
    pub const READ: u64 = 2;
}

/// How a traced fault ended (the kernel's `FaultOutcome`, or a bad access).
pub mod outcome {
    /// A bad access: the process was killed (or a syscall returned EFAULT).
    pub const BAD_ACCESS: u64 = 0;
    /// A zeroed frame was mapped (a write of untouched anonymous memory).
    pub const ANONYMOUS_PAGE: u64 = 1;
    /// The shared zero page was mapped read-only.
    pub const ZERO_PAGE: u64 = 2;
    /// A frame was filled from the program image.
    pub const IMAGE_PAGE: u64 = 3;
    /// Copy-on-write: copied.
    pub const COW_COPY: u64 = 4;
    /// Copy-on-write: the last reference, reused.
    pub const COW_REUSE: u64 = 5;
    /// A shared mapping's page made writable.
    pub const SHARED_WRITE: u64 = 6;
    /// The stack grew.
    pub const STACK_GROWTH: u64 = 7;
    /// A stale TLB entry, flushed.
    pub const SPURIOUS: u64 = 8;
    /// Read back from the swap disk (a major fault).
    pub const SWAP_IN: u64 = 9;
    /// Found in the swap cache (no I/O).
    pub const SWAP_CACHE_HIT: u64 = 10;
    /// A transparent huge page was mapped.
    pub const HUGE_PAGE: u64 = 11;
    /// A page-cache page of a mapped file was mapped.
    pub const FILE_PAGE: u64 = 12;
    /// A write to a private file mapping copied the page-cache page.
    pub const FILE_COPY: u64 = 13;

    /// Returns a short name of `code` for a table.
    pub fn name(code: u64) -> &'static str {
        [
            "bad access (killed)",
            "anonymous page",
            "zero page",
            "image page",
            "cow copy",
            "cow reuse",
            "shared write",
            "stack growth",
            "spurious",
            "swap-in (major)",
            "swap cache hit",
            "huge page",
            "file page",
            "file copy",
        ]
        .get(code as usize)
        .copied()
        .unwrap_or("?")
    }
}

/// One traced fault.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultTraceRecord {
    /// Uptime in milliseconds.
    pub ms: u64,
    /// The faulting process.
    pub pid: u64,
    /// The faulting address.
    pub addr: u64,
    /// What was attempted: 0 read, 1 write, 2 instruction fetch.
    pub access: u64,
    /// How it ended ([`outcome`]).
    pub outcome: u64,
}

impl FaultTraceRecord {
    /// The record's size in 8-byte words.
    pub const WORDS: usize = 5;

    /// Returns the record as its words, in field order.
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        [self.ms, self.pid, self.addr, self.access, self.outcome]
    }
}

const _: () = assert!(core::mem::size_of::<FaultTraceRecord>() == FaultTraceRecord::WORDS * 8);
