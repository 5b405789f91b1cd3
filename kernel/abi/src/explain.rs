//! What `explain` (syscall [`EXPLAIN`](crate::nr::EXPLAIN)) fills in: the page-table
//! walk for one address of one process, the VMA and the frame there, and what the
//! next fault there would do for a read, a write and an instruction fetch.
//!
//! The kernel computes the "next fault" answers with the fault handler's own
//! decision function (`mm_core::fault::decide`), so `explain` cannot tell a
//! student something the handler would not do. Codes are in [`next_fault`].

/// "No frame" / "no slot" / "no file" in an [`Explain`] field.
pub const NONE: u64 = u64::MAX;

/// What the next fault at the address would do (the `on_*` fields of [`Explain`]).
pub mod next_fault {
    /// No fault: the entry already allows the access.
    pub const NO_FAULT: u64 = 0;
    /// Map the shared zero page read-only (a read of an untouched anonymous page).
    pub const ZERO_PAGE: u64 = 1;
    /// Map a fresh zeroed frame (a write of an untouched anonymous page).
    pub const ZEROED_FRAME: u64 = 2;
    /// Map a zeroed 2 MiB huge page with one PD entry.
    pub const HUGE_PAGE: u64 = 3;
    /// Fill a fresh frame from the program image (a first touch of text or data).
    pub const IMAGE_PAGE: u64 = 4;
    /// Copy-on-write: the frame is shared, copy it for the writer.
    pub const COW_COPY: u64 = 5;
    /// Copy-on-write reuse: the writer is the sole owner, make the PTE writable.
    pub const COW_REUSE: u64 = 6;
    /// A shared mapping's page: make the PTE writable, the frame stays shared.
    pub const SHARED_WRITE: u64 = 7;
    /// The PTE maps the zero page: map a fresh zeroed frame instead.
    pub const REPLACE_ZERO_PAGE: u64 = 8;
    /// Read the page from swap slot `arg` (a major fault; not in the swap cache).
    pub const SWAP_IN: u64 = 9;
    /// Map the page of swap slot `arg` from the swap cache (no I/O).
    pub const SWAP_CACHE_HIT: u64 = 10;
    /// The page is locked for I/O: wait for it, then fault again.
    pub const WAIT_FOR_IO: u64 = 11;
    /// No VMA, but the stack may grow down to cover the address: grow it, map a page.
    pub const STACK_GROWTH: u64 = 12;
    /// A huge leaf that does not allow the access: split it, then decide on 4 KiB.
    pub const SPLIT_HUGE: u64 = 13;
    /// Segmentation fault: no VMA covers the address.
    pub const SEGV_NO_VMA: u64 = 14;
    /// Segmentation fault: the VMA's protection does not allow the access.
    pub const SEGV_PROTECTION: u64 = 15;
    /// Segmentation fault: a kernel address (user code may never touch it).
    pub const SEGV_KERNEL_ADDRESS: u64 = 16;
    /// A non-present PTE that is neither empty nor a swap entry: a kernel bug.
    pub const CORRUPT_PTE: u64 = 17;
    /// A file mapping whose page is in the page cache: map it (minor fault; a write
    /// to a private mapping copies it).
    pub const FILE_CACHED: u64 = 18;
    /// A file mapping whose page is not cached: read it from the disk into the page
    /// cache, then map it (major fault).
    pub const FILE_READ: u64 = 19;

    /// Returns a one-line description of `code` for a student.
    pub fn describe(code: u64) -> &'static str {
        match code {
            NO_FAULT => "no fault: the entry already allows it",
            ZERO_PAGE => "map the shared zero page, read-only (nothing allocated)",
            ZEROED_FRAME => "allocate a fresh zeroed frame and map it",
            HUGE_PAGE => "allocate a zeroed 2 MiB huge page, map it with one PD entry",
            IMAGE_PAGE => "allocate a frame, fill it from the program image",
            COW_COPY => "copy-on-write: copy the shared frame for the writer",
            COW_REUSE => "copy-on-write reuse: sole owner, make the PTE writable",
            SHARED_WRITE => "shared mapping: make the PTE writable, frame stays shared",
            REPLACE_ZERO_PAGE => "replace the zero page by a fresh zeroed frame",
            SWAP_IN => "major fault: read the page back from swap slot",
            SWAP_CACHE_HIT => "minor fault: map the page from the swap cache, slot",
            WAIT_FOR_IO => "wait for the page's I/O to finish, then fault again",
            STACK_GROWTH => "grow the stack down to here, then map a page",
            SPLIT_HUGE => "split the huge page into 512 small ones, then decide again",
            SEGV_NO_VMA => "SIGSEGV: no VMA covers the address",
            SEGV_PROTECTION => "SIGSEGV: the VMA's protection forbids it",
            SEGV_KERNEL_ADDRESS => "SIGSEGV: a kernel address",
            CORRUPT_PTE => "kernel bug: a corrupt PTE",
            FILE_CACHED => "minor fault: map the file's page from the page cache (a private write copies it)",
            FILE_READ => "major fault: read the file's page from the disk into the page cache, then map it",
            _ => "unknown",
        }
    }
}

/// What a VMA's pages come from (the `backing` field of [`Explain`]).
pub mod backing {
    /// No VMA.
    pub const NONE: u64 = 0;
    /// Anonymous memory: zeros at first, then swap.
    pub const ANONYMOUS: u64 = 1;
    /// A program image (an ELF segment): `backing_id` is its object, `backing_offset` the byte offset.
    pub const IMAGE: u64 = 2;
    /// A file through the page cache: `backing_id` is the cache, `backing_offset` the byte offset.
    pub const FILE: u64 = 3;
}

/// The state of a frame (the `frame_state` field of [`Explain`]; the kernel's `FrameState`).
pub mod frame_state {
    /// On a buddy free list.
    pub const FREE: u64 = 0;
    /// Not usable RAM.
    pub const RESERVED: u64 = 1;
    /// The kernel's own (its image, stacks, buffers, the zero page).
    pub const KERNEL: u64 = 2;
    /// The slab allocator's.
    pub const SLAB: u64 = 3;
    /// A page table.
    pub const PAGE_TABLE: u64 = 4;
    /// A user page (anonymous, swap cache or page cache).
    pub const USER: u64 = 5;
    /// Not a frame the frame table describes (memory-mapped I/O, a hole).
    pub const NOT_RAM: u64 = 6;

    /// Returns the state's name.
    pub fn name(state: u64) -> &'static str {
        ["free", "reserved", "kernel", "slab", "page table", "user", "not RAM"].get(state as usize).copied().unwrap_or("?")
    }
}

/// The frame-table flag bits in `frame_flags` (the kernel's `FrameFlags`), with their names.
pub const FRAME_FLAG_NAMES: [(u64, &str); 8] = [
    (1 << 0, "buddy-head"),
    (1 << 1, "alloc-head"),
    (1 << 2, "file"),
    (1 << 3, "dirty"),
    (1 << 4, "swap-cache"),
    (1 << 5, "locked"),
    (1 << 6, "readahead"),
    (1 << 7, "lazyfree"),
];

/// The VMA flag bits in `vma_flags` (the kernel's `VmFlags`), with their names.
pub const VMA_FLAG_NAMES: [(u64, &str); 7] = [
    (1 << 0, "shared"),
    (1 << 1, "grows-down"),
    (1 << 2, "stack"),
    (1 << 3, "heap"),
    (1 << 4, "dont-fork"),
    (1 << 5, "hugepage"),
    (1 << 6, "nohugepage"),
];

/// Everything `explain` says about one address of one process.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Explain {
    /// The address asked about.
    pub addr: u64,
    /// How many levels the walk read (1..=4): it stops at a non-present entry or a huge leaf.
    pub nr_levels: u64,
    /// The raw entries read, PML4 first (`entries[..nr_levels]` are valid).
    pub entries: [u64; 4],
    /// The VMA covering the address: start (0 and `vma_end` 0 if none).
    pub vma_start: u64,
    /// The VMA's end (exclusive).
    pub vma_end: u64,
    /// The VMA's protection, [`prot`](crate::prot) bits.
    pub vma_prot: u64,
    /// The VMA's flags ([`VMA_FLAG_NAMES`]).
    pub vma_flags: u64,
    /// What the VMA's pages come from ([`backing`]).
    pub backing: u64,
    /// The backing object's id (an image), or [`NONE`].
    pub backing_id: u64,
    /// The byte offset of the VMA's first page in its backing object.
    pub backing_offset: u64,
    /// The frame number (PFN) the address is in: the PTE's frame, or the swap
    /// cache's frame for a swap entry; [`NONE`] if there is none.
    pub frame: u64,
    /// The frame's state ([`frame_state`]).
    pub frame_state: u64,
    /// References held on the frame.
    pub refcount: u64,
    /// PTEs that map the frame.
    pub map_count: u64,
    /// The frame's flags ([`FRAME_FLAG_NAMES`]).
    pub frame_flags: u64,
    /// The swap slot: named by the swap PTE, or held by the frame in the swap cache; or [`NONE`].
    pub swap_slot: u64,
    /// The page cache (a file's) id of a page-cache frame, or [`NONE`].
    pub file_id: u64,
    /// The frame's page index in that file.
    pub file_index: u64,
    /// What the next fault would do on a read, a write, an instruction fetch ([`next_fault`]).
    pub on_access: [u64; 3],
    /// The argument of each answer (the swap slot for SWAP_IN / SWAP_CACHE_HIT), else 0.
    pub on_access_arg: [u64; 3],
}

impl Explain {
    /// The struct's size in 8-byte words.
    pub const WORDS: usize = 27;
    /// Index of a read in `on_access`.
    pub const READ: usize = 0;
    /// Index of a write in `on_access`.
    pub const WRITE: usize = 1;
    /// Index of an instruction fetch in `on_access`.
    pub const EXEC: usize = 2;

    /// Returns the struct as its words, in field order (its `repr(C)` layout).
    pub fn to_words(&self) -> [u64; Self::WORDS] {
        let e = &self.entries;
        let (a, g) = (&self.on_access, &self.on_access_arg);
        [
            self.addr, self.nr_levels, e[0], e[1], e[2], e[3], self.vma_start, self.vma_end, self.vma_prot,
            self.vma_flags, self.backing, self.backing_id, self.backing_offset, self.frame, self.frame_state,
            self.refcount, self.map_count, self.frame_flags, self.swap_slot, self.file_id, self.file_index, a[0],
            a[1], a[2], g[0], g[1], g[2],
        ]
    }

    /// Returns the struct whose words are `w` (the inverse of [`to_words`](Self::to_words)).
    pub fn from_words(w: &[u64; Self::WORDS]) -> Explain {
        Explain {
            addr: w[0],
            nr_levels: w[1],
            entries: [w[2], w[3], w[4], w[5]],
            vma_start: w[6],
            vma_end: w[7],
            vma_prot: w[8],
            vma_flags: w[9],
            backing: w[10],
            backing_id: w[11],
            backing_offset: w[12],
            frame: w[13],
            frame_state: w[14],
            refcount: w[15],
            map_count: w[16],
            frame_flags: w[17],
            swap_slot: w[18],
            file_id: w[19],
            file_index: w[20],
            on_access: [w[21], w[22], w[23]],
            on_access_arg: [w[24], w[25], w[26]],
        }
    }
}

// 27 u64 with no padding: the kernel copies exactly these words out.
const _: () = assert!(core::mem::size_of::<Explain>() == Explain::WORDS * 8);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_round_trips_through_its_words() {
        extern crate std;
        let mut e = Explain { addr: 1, nr_levels: 2, entries: [3, 4, 5, 6], vma_start: 7, vma_end: 8, ..Default::default() };
        (e.vma_prot, e.vma_flags, e.backing, e.backing_id, e.backing_offset) = (9, 10, 11, 12, 13);
        (e.frame, e.frame_state, e.refcount, e.map_count, e.frame_flags) = (14, 15, 16, 17, 18);
        (e.swap_slot, e.file_id, e.file_index) = (19, 20, 21);
        (e.on_access, e.on_access_arg) = ([22, 23, 24], [25, 26, 27]);
        let words = e.to_words();
        assert_eq!(words.to_vec(), (1..=27).collect::<std::vec::Vec<u64>>(), "words in field order");
        assert_eq!(Explain::from_words(&words), e);
    }
}
