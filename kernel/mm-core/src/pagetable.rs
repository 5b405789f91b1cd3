//! The x86-64 4-level page-table walk, generic over how table memory is reached.
//!
//! [`PageTable`] names a tree by its root (PML4) frame and maps, unmaps, protects
//! and translates pages in it, and walks ranges of leaves for munmap, fork and
//! exit. It never touches memory itself: every read, write, allocation and release
//! of a table goes through a [`TableMemory`]. The kernel implements that trait with
//! its direct physical map; the host tests (`pagetable/tests.rs`) implement it with
//! a `HashMap` of emulated frames (redox `rmm`'s `EmulateArch` idea), so the whole
//! walk runs under `cargo test`.
//!
//! Key types: [`PageTable`], [`TableMemory`], [`PageSize`], the TLB tokens
//! [`Flush`] / [`FlushBatch`] / [`FlushPlan`] (in `pagetable/flush.rs`), the
//! fault path's one-walk [`LeafSlot`] (`pagetable/slot.rs`), and the
//! errors [`MapError`], [`UnmapError`], [`ProtectError`]. Neighbours: `addr`
//! (address types), `pte` (entry encoding, swap entries); in the kernel,
//! `arch::x86_64` turns flush tokens into `invlpg` / CR3 reloads and
//! `mm::addr_space` calls these operations under the address-space lock.
//!
//! Invariants the walk keeps (checked by [`PageTable::check_invariants`]):
//! * Intermediate entries are PRESENT | WRITABLE, plus USER once a user leaf has
//!   been mapped below them. The MMU ANDs W and U over all four levels (and ORs
//!   NX), so permissive upper levels let the leaf alone decide.
//! * No table except the root is empty: when an unmap empties a table, the walk
//!   goes back up, clears the parent entry and frees the table. The one exception
//!   is a level-3 table (PDPT) under an upper-half PML4 entry: the kernel half is
//!   shared by copying PML4 entries into every address space, so those PDPTs live
//!   forever (see [`PageTable::new_sharing_kernel_half`]).
//! * Only level-1 entries may be non-present and non-zero (swap entries).

use core::ops::Range;

use crate::addr::{Frame, HUGE_PAGE_SIZE, PAGE_SIZE, Page, PhysAddr, VirtAddr};
use crate::pte::{Pte, PteFlags};

mod flush;
mod fork;
mod huge;
mod slot;
mod walk;
pub use fork::ForkError;
pub use huge::SplitError;
pub use slot::LeafSlot;
pub use walk::{Walk, WalkStep};
pub use flush::{Flush, FlushBatch, FlushPages, FlushPlan};

/// Number of entries in one page table at any level.
pub const ENTRIES_PER_TABLE: usize = 512;
/// Size of a giant (1 GiB) page, mapped by a level-3 entry.
pub const GIANT_PAGE_SIZE: u64 = 1 << 30;
/// The first PML4 index of the kernel (upper) half.
pub const KERNEL_HALF_FIRST_INDEX: usize = 256;

/// Bits 0..48 of a virtual address: the part the four levels decode.
const LINEAR_MASK: u64 = (1 << 48) - 1;
/// Size of the lower (user) half in bytes.
const LOWER_HALF_SIZE: u64 = 1 << 47;

/// Access to the physical frames that hold page tables.
///
/// The walker only ever passes the root, a frame returned by
/// [`alloc_table`](Self::alloc_table), or a frame read from a present non-leaf
/// entry, never a freed one; an implementation over the direct map may rely on
/// that in its `SAFETY` argument. Indices are always below [`ENTRIES_PER_TABLE`].
pub trait TableMemory {
    /// Reads entry `index` of the page table in frame `table`.
    fn read_entry(&self, table: Frame, index: usize) -> Pte;
    /// Writes entry `index` of the page table in frame `table`.
    fn write_entry(&mut self, table: Frame, index: usize, entry: Pte);
    /// Clears `flags` in entry `index` of the page table in frame `table` and returns
    /// the entry as it was. The kernel does it with one atomic AND, so a bit the MMU
    /// of another CPU sets meanwhile (Accessed, Dirty) is never lost, as a read and
    /// a write could lose it (Linux's `ptep_test_and_clear_young`). This default
    /// reads and writes: right where nothing else writes the tables (host models).
    fn clear_entry_flags(&mut self, table: Frame, index: usize, flags: PteFlags) -> Pte {
        let old = self.read_entry(table, index);
        let mut new = old;
        new.remove_flags(flags);
        self.write_entry(table, index, new);
        old
    }
    /// Returns a zeroed frame for a new page table, or `None` when out of memory.
    fn alloc_table(&mut self) -> Option<Frame>;
    /// Releases a table frame whose entries are all zero and that nothing points to.
    ///
    /// The walker calls this before its caller has flushed the TLB, and the CPU's
    /// paging-structure caches may still point at the frame until then. On one CPU
    /// the frame may be reused once the returned flush token has been honoured;
    /// an SMP kernel should queue the frame and release it after the shootdown
    /// (Linux `tlb_remove_table`).
    fn free_table(&mut self, table: Frame);
}

/// The size of the page a leaf entry maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PageSize {
    /// A 4 KiB page, mapped by a level-1 (PT) entry.
    Size4KiB,
    /// A 2 MiB page, mapped by a level-2 (PD) entry with PS set.
    Size2MiB,
    /// A 1 GiB page, mapped by a level-3 (PDPT) entry with PS set.
    Size1GiB,
}

impl PageSize {
    /// Returns the page size in bytes.
    pub const fn size_bytes(self) -> u64 {
        match self {
            Self::Size4KiB => PAGE_SIZE,
            Self::Size2MiB => HUGE_PAGE_SIZE,
            Self::Size1GiB => GIANT_PAGE_SIZE,
        }
    }

    /// Returns the size of a leaf at table `level` (1, 2 or 3).
    const fn for_level(level: u8) -> Self {
        match level {
            1 => Self::Size4KiB,
            2 => Self::Size2MiB,
            3 => Self::Size1GiB,
            _ => panic!("PageSize::for_level: no leaves at this level"),
        }
    }
}

/// Why a mapping could not be created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// A new intermediate table was needed and [`TableMemory::alloc_table`] failed.
    FrameAllocationFailed,
    /// The entry already maps this frame.
    AlreadyMapped(Frame),
    /// The entry is non-present but in use (it holds this swap entry, say).
    EntryInUse(Pte),
    /// A huge leaf of this size already covers the address.
    HugeParent(PageSize),
    /// A 2 MiB mapping was asked for where a level-1 table already hangs.
    TableInTheWay,
    /// The virtual or physical address is not aligned to the page size.
    Unaligned,
}

/// Why a mapping could not be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmapError {
    /// No present leaf maps the address.
    NotMapped,
    /// The address is mapped by a leaf of this other size.
    SizeMismatch(PageSize),
    /// The address is not aligned to the page size asked for.
    Unaligned,
}

/// Why a mapping's flags could not be changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectError {
    /// No present leaf maps the page.
    NotMapped,
    /// The page is mapped by a leaf of this other size.
    SizeMismatch(PageSize),
}

/// A used leaf entry found by a range walk: present, or a swap entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeafEntry {
    /// The first virtual address the leaf maps (for a huge leaf, maybe below the range).
    pub addr: VirtAddr,
    /// The entry itself.
    pub pte: Pte,
    /// The size of the page the leaf maps.
    pub size: PageSize,
}

/// What [`PageTable::update_leaves`] does to one leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafAction {
    /// Leaves the entry as it is.
    Keep,
    /// Writes this entry instead (a leaf of the same size, or [`Pte::UNUSED`]).
    Replace(Pte),
    /// Clears the entry, and frees tables that become empty.
    Clear,
}

/// The tables visited from the root down to one entry: `tables[level]` is the
/// table at that level (`tables[4]` is the root); `tables[0]` is unused.
struct TablePath {
    tables: [Frame; 5],
}

impl TablePath {
    fn table(&self, level: u8) -> Frame {
        self.tables[usize::from(level)]
    }
}

/// Why a read-only descent stopped above the level it was asked for.
enum Stop {
    /// An entry on the way was unused.
    Missing,
    /// A huge leaf of this size covers the address.
    Huge(PageSize),
}

/// One x86-64 page-table tree (an address space), named by its PML4 frame.
///
/// Not `Clone`: two handles to one tree would let two owners free its tables.
#[derive(Debug, PartialEq, Eq)]
pub struct PageTable {
    root: Frame,
}

impl PageTable {
    /// Creates an empty tree, or returns `None` when no frame is left for the root.
    pub fn new<M: TableMemory>(mem: &mut M) -> Option<Self> {
        mem.alloc_table().map(Self::from_root)
    }

    /// Creates a tree whose upper half shares `kernel`'s PDPTs, for a new process.
    ///
    /// Copies PML4 entries 256..512. A PDPT the kernel creates later would be
    /// missing here, so the kernel calls [`populate_kernel_half`](Self::populate_kernel_half)
    /// on its own tree first.
    pub fn new_sharing_kernel_half<M: TableMemory>(mem: &mut M, kernel: &PageTable) -> Option<Self> {
        let table = Self::new(mem)?;
        for index in KERNEL_HALF_FIRST_INDEX..ENTRIES_PER_TABLE {
            let entry = mem.read_entry(kernel.root, index);
            mem.write_entry(table.root, index, entry);
        }
        Some(table)
    }

    /// Creates a PDPT under every unused upper-half PML4 entry (256 frames, 1 MiB).
    pub fn populate_kernel_half<M: TableMemory>(&mut self, mem: &mut M) -> Result<(), MapError> {
        for index in KERNEL_HALF_FIRST_INDEX..ENTRIES_PER_TABLE {
            if mem.read_entry(self.root, index).is_unused() {
                let pdpt = mem.alloc_table().ok_or(MapError::FrameAllocationFailed)?;
                mem.write_entry(self.root, index, Pte::new(pdpt, table_entry_flags(false)));
            }
        }
        Ok(())
    }

    /// Creates a handle to the tree whose PML4 is `root` (a zeroed or live table).
    pub const fn from_root(root: Frame) -> Self {
        Self { root }
    }

    /// Returns the PML4 frame (the value CR3 holds, minus PCID bits).
    pub const fn root(&self) -> Frame {
        self.root
    }

    /// Consumes the handle and returns the PML4 frame, for the caller to free.
    pub const fn into_root(self) -> Frame {
        self.root
    }

    /// Frees the root of a tree whose lower half is already empty (see
    /// [`free_user_tables`](Self::free_user_tables)).
    ///
    /// Kernel-half entries are cleared, not followed: the tables they point to are
    /// shared with every other address space. Panics if user tables remain.
    pub fn free_root<M: TableMemory>(self, mem: &mut M) {
        for index in 0..ENTRIES_PER_TABLE {
            if index < KERNEL_HALF_FIRST_INDEX {
                assert!(mem.read_entry(self.root, index).is_unused(), "free_root: user tables remain");
            } else {
                mem.write_entry(self.root, index, Pte::UNUSED);
            }
        }
        mem.free_table(self.root);
    }

    /// Returns the physical address, leaf flags and page size that `addr` translates to.
    ///
    /// Returns `None` if the address is not mapped (a swap entry counts as not
    /// mapped). Handles 4 KiB, 2 MiB and 1 GiB leaves; the returned flags are the
    /// leaf's, which by the invariant above are the effective permissions.
    pub fn translate<M: TableMemory>(&self, mem: &M, addr: VirtAddr) -> Option<(PhysAddr, PteFlags, PageSize)> {
        let mut table = self.root;
        for level in (1..=4).rev() {
            let entry = mem.read_entry(table, addr.table_index(level));
            if !entry.is_present() {
                return None;
            }
            if level == 1 || (level <= 3 && entry.is_huge()) {
                let size = PageSize::for_level(level);
                // A huge leaf keeps PAT in bit 12, inside the address field: mask it off.
                let base = entry.addr().align_down(size.size_bytes());
                let offset = addr.as_u64() & (size.size_bytes() - 1);
                return Some((base + offset, entry.flags(), size));
            }
            table = entry.frame();
        }
        unreachable!("translate: level 1 always returns")
    }

    // # The 4-level walk
    //
    // A canonical virtual address has 48 meaningful bits. The low 12 are the byte
    // offset inside a 4 KiB page; the 36 above them are four 9-bit indices, one per
    // table level, because a 4 KiB table holds 512 = 2^9 eight-byte entries:
    //
    //   virtual address 0x0000_0080_4020_3abc
    //   47      39 38      30 29      21 20      12 11          0
    //   000000001  000000001  000000001  000000011  1010_1011_1100
    //   PML4 = 1   PDPT = 1   PD = 1     PT = 3     offset = 0xabc
    //
    // CR3 names the PML4 frame. Entry 1 of the PML4 gives the PDPT's frame, entry 1
    // of the PDPT gives the PD, entry 1 of the PD gives the PT, and entry 3 of the PT
    // gives the data frame F; the byte is at F.start_address() + 0xabc. Each entry
    // therefore covers 512 GiB, 1 GiB, 2 MiB and 4 KiB respectively. A PD entry with
    // PS set stops the walk one level early and maps 2 MiB directly (offset = the
    // low 21 bits); a PDPT entry with PS maps 1 GiB (offset = the low 30 bits).
    //
    // `map` descends from the root, allocating each missing table on the way (a
    // zeroed table means "nothing mapped below"), and writes the leaf. Upper entries
    // get PRESENT | WRITABLE, plus USER for a user leaf, so the leaf decides.
    //
    // Why no flush: the MMU never caches a translation (nor a paging-structure
    // entry) whose P bit is 0 (Intel SDM vol. 3, 4.10.2.3), so filling an unused or
    // swap entry cannot leave anything stale behind. `map` still returns a `Flush`
    // so every operation looks alike; `ignore()` is correct for it on x86.

    /// Maps the 4 KiB `page` to `frame` with `flags` (PRESENT is added, HUGE is not allowed).
    ///
    /// Allocates missing intermediate tables; if that fails, frees the ones it made.
    pub fn map<M: TableMemory>(
        &mut self,
        mem: &mut M,
        page: Page,
        frame: Frame,
        flags: PteFlags,
    ) -> Result<Flush, MapError> {
        debug_assert!(!flags.contains(PteFlags::HUGE), "map: HUGE in a level-1 entry is the PAT bit");
        let flags = (flags - PteFlags::HUGE) | PteFlags::PRESENT;
        let addr = page.start_address();
        let path = self.descend_or_create(mem, addr, 1, flags.contains(PteFlags::USER))?;
        let old = mem.read_entry(path.table(1), addr.p1_index());
        if old.is_present() {
            return Err(MapError::AlreadyMapped(old.frame()));
        }
        if !old.is_unused() {
            return Err(MapError::EntryInUse(old));
        }
        mem.write_entry(path.table(1), addr.p1_index(), Pte::new(frame, flags));
        Ok(Flush::new(addr, PageSize::Size4KiB, flags.contains(PteFlags::GLOBAL)))
    }

    /// Maps the 2 MiB page at `addr` to the 2 MiB-aligned `phys` (PRESENT | HUGE are added).
    pub fn map_huge<M: TableMemory>(
        &mut self,
        mem: &mut M,
        addr: VirtAddr,
        phys: PhysAddr,
        flags: PteFlags,
    ) -> Result<Flush, MapError> {
        if !addr.is_aligned(HUGE_PAGE_SIZE) || !phys.is_aligned(HUGE_PAGE_SIZE) {
            return Err(MapError::Unaligned);
        }
        let flags = flags | PteFlags::PRESENT | PteFlags::HUGE;
        let path = self.descend_or_create(mem, addr, 2, flags.contains(PteFlags::USER))?;
        let old = mem.read_entry(path.table(2), addr.p2_index());
        if old.is_huge() {
            return Err(MapError::AlreadyMapped(old.frame()));
        }
        if old.is_present() {
            return Err(MapError::TableInTheWay);
        }
        if !old.is_unused() {
            return Err(MapError::EntryInUse(old));
        }
        mem.write_entry(path.table(2), addr.p2_index(), Pte::from_addr(phys, flags));
        Ok(Flush::new(addr, PageSize::Size2MiB, flags.contains(PteFlags::GLOBAL)))
    }

    /// Unmaps the 4 KiB `page` and returns the frame it mapped; frees emptied tables.
    pub fn unmap<M: TableMemory>(&mut self, mem: &mut M, page: Page) -> Result<(Frame, Flush), UnmapError> {
        let addr = page.start_address();
        let path = self.descend(mem, addr, 1).map_err(Stop::into_unmap_error)?;
        let old = mem.read_entry(path.table(1), addr.p1_index());
        if !old.is_present() {
            return Err(UnmapError::NotMapped);
        }
        mem.write_entry(path.table(1), addr.p1_index(), Pte::UNUSED);
        self.prune_upward(mem, &path, addr, 1);
        Ok((old.frame(), Flush::new(addr, PageSize::Size4KiB, is_global(old))))
    }

    /// Unmaps the 2 MiB page at `addr` and returns its first frame; frees emptied tables.
    pub fn unmap_huge<M: TableMemory>(&mut self, mem: &mut M, addr: VirtAddr) -> Result<(Frame, Flush), UnmapError> {
        if !addr.is_aligned(HUGE_PAGE_SIZE) {
            return Err(UnmapError::Unaligned);
        }
        let path = self.descend(mem, addr, 2).map_err(Stop::into_unmap_error)?;
        let old = mem.read_entry(path.table(2), addr.p2_index());
        if !old.is_present() {
            return Err(UnmapError::NotMapped);
        }
        if !old.is_huge() {
            return Err(UnmapError::SizeMismatch(PageSize::Size4KiB));
        }
        mem.write_entry(path.table(2), addr.p2_index(), Pte::UNUSED);
        self.prune_upward(mem, &path, addr, 2);
        Ok((old.frame(), Flush::new(addr, PageSize::Size2MiB, is_global(old))))
    }

    /// Replaces the flags of the 4 KiB leaf for `page`, keeping its frame.
    ///
    /// PRESENT is added; ACCESSED and DIRTY are kept from the old entry, because
    /// the MMU set them and reclaim must not lose a dirty bit. The returned flush
    /// is needed when rights shrink; when they only grow, skipping it costs at most
    /// one spurious fault (a fault re-walks the tables).
    pub fn protect<M: TableMemory>(&mut self, mem: &mut M, page: Page, flags: PteFlags) -> Result<Flush, ProtectError> {
        let addr = page.start_address();
        let path = self.descend(mem, addr, 1).map_err(|stop| match stop {
            Stop::Missing => ProtectError::NotMapped,
            Stop::Huge(size) => ProtectError::SizeMismatch(size),
        })?;
        let old = mem.read_entry(path.table(1), addr.p1_index());
        if !old.is_present() {
            return Err(ProtectError::NotMapped);
        }
        let hardware_bits = old.flags() & (PteFlags::ACCESSED | PteFlags::DIRTY);
        let flags = (flags - PteFlags::HUGE) | PteFlags::PRESENT | hardware_bits;
        if flags.contains(PteFlags::USER) {
            for level in 2..=4 {
                grant_user(mem, path.table(level), addr.table_index(level));
            }
        }
        mem.write_entry(path.table(1), addr.p1_index(), Pte::new(old.frame(), flags));
        let is_global = is_global(old) || flags.contains(PteFlags::GLOBAL);
        Ok(Flush::new(addr, PageSize::Size4KiB, is_global))
    }

    /// Returns the level-1 entry for `page` (present, swap or unused).
    ///
    /// Returns `None` when no level-1 table covers the page: nothing was ever
    /// mapped near it, or a huge leaf maps it ([`translate`](Self::translate) tells which).
    pub fn entry<M: TableMemory>(&self, mem: &M, page: Page) -> Option<Pte> {
        let addr = page.start_address();
        let path = self.descend(mem, addr, 1).ok()?;
        Some(mem.read_entry(path.table(1), addr.p1_index()))
    }

    /// Writes the level-1 entry for `page` and returns the old one.
    ///
    /// This is how the fault handler stores and replaces swap entries. Missing
    /// tables are allocated; writing [`Pte::UNUSED`] frees tables that become empty.
    /// The flush is needed only if the old entry was present.
    pub fn set_entry<M: TableMemory>(&mut self, mem: &mut M, page: Page, entry: Pte) -> Result<(Pte, Flush), MapError> {
        debug_assert!(!entry.is_huge(), "set_entry: HUGE in a level-1 entry is the PAT bit");
        let addr = page.start_address();
        let path = if entry.is_unused() {
            match self.descend(mem, addr, 1) {
                Ok(path) => path,
                Err(Stop::Missing) => return Ok((Pte::UNUSED, Flush::new(addr, PageSize::Size4KiB, false))),
                Err(Stop::Huge(size)) => return Err(MapError::HugeParent(size)),
            }
        } else {
            let is_user = entry.is_present() && entry.flags().contains(PteFlags::USER);
            self.descend_or_create(mem, addr, 1, is_user)?
        };
        let old = mem.read_entry(path.table(1), addr.p1_index());
        mem.write_entry(path.table(1), addr.p1_index(), entry);
        if entry.is_unused() {
            self.prune_upward(mem, &path, addr, 1);
        }
        Ok((old, Flush::new(addr, PageSize::Size4KiB, is_global(old))))
    }

    /// Maps the unused entries among the `nr_pages` pages from `start` that share
    /// `start`'s level-1 table (the window is cut at the table's end), each to what
    /// `fill_fn(page)` answers (`None`: leave it unused; PRESENT is added, HUGE is not
    /// allowed), with one walk for all of them; the table must exist already
    /// (nothing is mapped if it does not, or a huge leaf covers `start`). Returns how
    /// many entries were written. No flush: the entries were unused (see `map`).
    ///
    /// Fault-around maps a window of cached file pages this way.
    pub fn map_unused_in_table<M: TableMemory>(
        &mut self,
        mem: &mut M,
        start: Page,
        nr_pages: u64,
        mut fill_fn: impl FnMut(Page) -> Option<(Frame, PteFlags)>,
    ) -> usize {
        let addr = start.start_address();
        let Ok(path) = self.descend(mem, addr, 1) else { return 0 };
        let table = path.table(1);
        let first = addr.p1_index();
        let end = (first as u64 + nr_pages).min(512) as usize;
        let mut nr_mapped = 0;
        for index in first..end {
            if !mem.read_entry(table, index).is_unused() {
                continue;
            }
            let page = Page::containing_address(addr + (index - first) as u64 * PAGE_SIZE);
            if let Some((frame, flags)) = fill_fn(page) {
                debug_assert!(!flags.contains(PteFlags::HUGE), "map_unused_in_table: HUGE in a level-1 entry is the PAT bit");
                mem.write_entry(table, index, Pte::new(frame, (flags - PteFlags::HUGE) | PteFlags::PRESENT));
                nr_mapped += 1;
            }
        }
        nr_mapped
    }

    /// Calls `visit_fn` on every used leaf (present or swap) overlapping the range.
    ///
    /// The range is `nr_pages` 4 KiB pages from `start`, in address order. A huge
    /// leaf overlapping the range is visited once, whole, with its own start address.
    pub fn for_each_leaf<M: TableMemory>(
        &self,
        mem: &M,
        start: Page,
        nr_pages: u64,
        mut visit_fn: impl FnMut(LeafEntry),
    ) {
        let range = linear_range(start, nr_pages);
        if !range.is_empty() {
            visit_range(mem, self.root, 4, range, &mut visit_fn);
        }
    }

    /// Calls `update_fn` on every used leaf overlapping the range and applies its answer.
    ///
    /// Pushes a flush into `batch` for every present leaf that is replaced or
    /// cleared, and frees tables that become empty. Visits as [`for_each_leaf`](Self::for_each_leaf)
    /// does; replacing a huge leaf changes all of it. Used by fork (write-protect
    /// for COW) and mprotect.
    pub fn update_leaves<M: TableMemory>(
        &mut self,
        mem: &mut M,
        start: Page,
        nr_pages: u64,
        batch: &mut FlushBatch,
        mut update_fn: impl FnMut(LeafEntry) -> LeafAction,
    ) {
        let range = linear_range(start, nr_pages);
        if !range.is_empty() {
            update_range(mem, self.root, 4, range, batch, &mut update_fn);
        }
    }

    /// Clears every used leaf in the range, reporting each to `unmapped_fn`, and frees emptied tables.
    ///
    /// `unmapped_fn` receives present leaves (to free or unshare their frames) and
    /// swap entries (to free their slots). Fails, changing nothing, if a huge leaf
    /// sticks out of either end of the range.
    pub fn unmap_range<M: TableMemory>(
        &mut self,
        mem: &mut M,
        start: Page,
        nr_pages: u64,
        batch: &mut FlushBatch,
        mut unmapped_fn: impl FnMut(LeafEntry),
    ) -> Result<(), UnmapError> {
        let range = linear_range(start, nr_pages);
        if range.is_empty() {
            return Ok(());
        }
        for edge in [range.start, range.end] {
            let inside = VirtAddr::new_truncate(edge.min(range.end - 1));
            if let Some((_, _, size)) = self.translate(mem, inside)
                && edge % size.size_bytes() != 0
            {
                return Err(UnmapError::SizeMismatch(size));
            }
        }
        update_range(mem, self.root, 4, range, batch, &mut |leaf| {
            unmapped_fn(leaf);
            LeafAction::Clear
        });
        Ok(())
    }

    /// Unmaps the whole lower (user) half and frees all its tables, as at exit.
    ///
    /// Reports each leaf to `unmapped_fn` as [`unmap_range`](Self::unmap_range)
    /// does. Afterwards only the root and the shared kernel half remain.
    pub fn free_user_tables<M: TableMemory>(&mut self, mem: &mut M, unmapped_fn: impl FnMut(LeafEntry)) -> FlushBatch {
        let mut batch = FlushBatch::new();
        let nr_pages = LOWER_HALF_SIZE / PAGE_SIZE;
        self.unmap_range(mem, Page::containing_address(VirtAddr::new(0)), nr_pages, &mut batch, unmapped_fn)
            .expect("free_user_tables: no leaf can straddle the half boundary");
        batch
    }

    /// Checks the invariants listed in the module docs; panics on a violation.
    ///
    /// Returns the number of tables in the tree, root included.
    pub fn check_invariants<M: TableMemory>(&self, mem: &M) -> usize {
        check_table(mem, self.root, 4, 0).0
    }

    /// Walks down toward `addr` without allocating; returns the tables down to `target`.
    fn descend<M: TableMemory>(&self, mem: &M, addr: VirtAddr, target: u8) -> Result<TablePath, Stop> {
        let mut path = TablePath { tables: [self.root; 5] };
        for level in (target + 1..=4).rev() {
            let entry = mem.read_entry(path.table(level), addr.table_index(level));
            if !entry.is_present() {
                return Err(Stop::Missing);
            }
            if level <= 3 && entry.is_huge() {
                return Err(Stop::Huge(PageSize::for_level(level)));
            }
            path.tables[usize::from(level - 1)] = entry.frame();
        }
        Ok(path)
    }

    /// Walks down toward `addr`, allocating missing tables down to `target`.
    ///
    /// When `is_user`, existing upper entries on the way gain USER (not undone on
    /// error: by the leaf-decides invariant it grants nothing by itself). On
    /// allocation failure, frees the tables this call created (they are still empty).
    fn descend_or_create<M: TableMemory>(
        &mut self,
        mem: &mut M,
        addr: VirtAddr,
        target: u8,
        is_user: bool,
    ) -> Result<TablePath, MapError> {
        let mut path = TablePath { tables: [self.root; 5] };
        for level in (target + 1..=4).rev() {
            let (table, index) = (path.table(level), addr.table_index(level));
            let entry = mem.read_entry(table, index);
            let child = if entry.is_present() {
                if level <= 3 && entry.is_huge() {
                    return Err(MapError::HugeParent(PageSize::for_level(level)));
                }
                if is_user {
                    grant_user(mem, table, index);
                }
                entry.frame()
            } else {
                assert!(entry.is_unused(), "descend_or_create: non-present entry above level 1");
                let Some(child) = mem.alloc_table() else {
                    self.prune_upward(mem, &path, addr, level);
                    return Err(MapError::FrameAllocationFailed);
                };
                mem.write_entry(table, index, Pte::new(child, table_entry_flags(is_user)));
                child
            };
            path.tables[usize::from(level - 1)] = child;
        }
        Ok(path)
    }

    /// Frees the table at `level` on `path` if it is empty, then its parent, and so on.
    ///
    /// Stops at the first non-empty table, at a pinned kernel-half PDPT, or at the root.
    fn prune_upward<M: TableMemory>(&mut self, mem: &mut M, path: &TablePath, addr: VirtAddr, level: u8) {
        for level in level..4 {
            let table = path.table(level);
            if is_pinned(level, addr) || !is_table_empty(mem, table) {
                return;
            }
            mem.write_entry(path.table(level + 1), addr.table_index(level + 1), Pte::UNUSED);
            mem.free_table(table);
        }
    }
}

impl Stop {
    fn into_unmap_error(self) -> UnmapError {
        match self {
            Stop::Missing => UnmapError::NotMapped,
            Stop::Huge(size) => UnmapError::SizeMismatch(size),
        }
    }
}

/// Returns the flags of an intermediate entry above a user or kernel leaf.
fn table_entry_flags(is_user: bool) -> PteFlags {
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE;
    if is_user { flags | PteFlags::USER } else { flags }
}

/// Adds USER to the intermediate entry `index` of `table` if it lacks it.
///
/// Widening an upper entry needs no flush: a stale entry without USER only causes
/// a fault, and the fault re-walks the tables.
fn grant_user<M: TableMemory>(mem: &mut M, table: Frame, index: usize) {
    let mut entry = mem.read_entry(table, index);
    if !entry.flags().contains(PteFlags::USER) {
        entry.insert_flags(PteFlags::USER);
        mem.write_entry(table, index, entry);
    }
}

/// Returns true if `old` was a present GLOBAL translation.
fn is_global(old: Pte) -> bool {
    old.is_present() && old.flags().contains(PteFlags::GLOBAL)
}

/// Returns true if the table at `level` covering `addr` must never be freed:
/// a PDPT of the kernel half, shared by every address space's PML4.
fn is_pinned(level: u8, addr: VirtAddr) -> bool {
    level == 3 && !addr.is_lower_half()
}

/// Returns true if every entry of `table` is unused.
///
/// Costs up to 512 reads; a kernel that minds could keep a count per table
/// (Linux's `pt_frag_refcount`) instead.
fn is_table_empty<M: TableMemory>(mem: &M, table: Frame) -> bool {
    (0..ENTRIES_PER_TABLE).all(|index| mem.read_entry(table, index).is_unused())
}

/// Returns the bytes one entry of a table at `level` covers (4 KiB at level 1).
const fn entry_span(level: u8) -> u64 {
    PAGE_SIZE << (9 * (level as u32 - 1))
}

/// Returns the 48-bit linear range of `nr_pages` pages from `start`; panics past 2^48.
fn linear_range(start: Page, nr_pages: u64) -> Range<u64> {
    let lo = start.start_address().as_u64() & LINEAR_MASK;
    let hi = nr_pages.checked_mul(PAGE_SIZE).and_then(|len| lo.checked_add(len));
    match hi {
        Some(hi) if hi <= LINEAR_MASK + 1 => lo..hi,
        _ => panic!("linear_range: range runs past the end of the address space"),
    }
}

/// Returns the index range of the entries of a table at `level` that overlap `range`,
/// and the linear address the table starts at.
fn overlapping_entries(level: u8, range: &Range<u64>) -> (Range<usize>, u64) {
    let span = entry_span(level);
    let base = range.start & !(span * ENTRIES_PER_TABLE as u64 - 1);
    let first = ((range.start - base) / span) as usize;
    let last = ((range.end - 1 - base) / span) as usize;
    (first..last + 1, base)
}

/// Returns the leaf view of `entry` at `level`, or `None` if it points to a table.
fn as_leaf(entry: Pte, level: u8, entry_base: u64) -> Option<LeafEntry> {
    let is_leaf = level == 1 || (level <= 3 && entry.is_huge());
    is_leaf.then(|| LeafEntry {
        addr: VirtAddr::new_truncate(entry_base),
        pte: entry,
        size: PageSize::for_level(level),
    })
}

/// Calls `visit_fn` on each used leaf under `table` (at `level`) overlapping `range`.
fn visit_range<M: TableMemory>(
    mem: &M,
    table: Frame,
    level: u8,
    range: Range<u64>,
    visit_fn: &mut impl FnMut(LeafEntry),
) {
    let (indices, base) = overlapping_entries(level, &range);
    for index in indices {
        let entry = mem.read_entry(table, index);
        if entry.is_unused() {
            continue;
        }
        let entry_base = base + index as u64 * entry_span(level);
        match as_leaf(entry, level, entry_base) {
            Some(leaf) => visit_fn(leaf),
            None => {
                assert!(entry.is_present(), "for_each_leaf: non-present entry above level 1");
                let child_range = range.start.max(entry_base)..range.end.min(entry_base + entry_span(level));
                visit_range(mem, entry.frame(), level - 1, child_range, visit_fn);
            }
        }
    }
}

/// Applies `update_fn` to each used leaf under `table` (at `level`) overlapping
/// `range`, freeing child tables it empties. Returns true if it cleared any entry.
fn update_range<M: TableMemory>(
    mem: &mut M,
    table: Frame,
    level: u8,
    range: Range<u64>,
    batch: &mut FlushBatch,
    update_fn: &mut impl FnMut(LeafEntry) -> LeafAction,
) -> bool {
    let (indices, base) = overlapping_entries(level, &range);
    let mut has_cleared = false;
    for index in indices {
        let entry = mem.read_entry(table, index);
        if entry.is_unused() {
            continue;
        }
        let entry_base = base + index as u64 * entry_span(level);
        if let Some(leaf) = as_leaf(entry, level, entry_base) {
            let new = match update_fn(leaf) {
                LeafAction::Keep => continue,
                LeafAction::Replace(new) => new,
                LeafAction::Clear => Pte::UNUSED,
            };
            mem.write_entry(table, index, new);
            if entry.is_present() {
                batch.push(Flush::new(leaf.addr, leaf.size, is_global(entry)));
            }
            has_cleared |= new.is_unused();
            continue;
        }
        assert!(entry.is_present(), "update_leaves: non-present entry above level 1");
        let child = entry.frame();
        let child_range = range.start.max(entry_base)..range.end.min(entry_base + entry_span(level));
        if update_range(mem, child, level - 1, child_range, batch, update_fn) {
            has_cleared = true;
            let child_addr = VirtAddr::new_truncate(entry_base);
            if !is_pinned(level - 1, child_addr) && is_table_empty(mem, child) {
                mem.write_entry(table, index, Pte::UNUSED);
                mem.free_table(child);
            }
        }
    }
    has_cleared
}

/// Checks the invariants of `table` (at `level`, starting at linear `base`) and
/// everything below it. Returns the number of tables, this one included, and
/// whether any leaf below is a user leaf.
fn check_table<M: TableMemory>(mem: &M, table: Frame, level: u8, base: u64) -> (usize, bool) {
    let (mut nr_tables, mut has_user_leaf) = (1, false);
    for index in 0..ENTRIES_PER_TABLE {
        let entry = mem.read_entry(table, index);
        let entry_base = base + index as u64 * entry_span(level);
        if entry.is_unused() {
            continue;
        }
        if as_leaf(entry, level, entry_base).is_some() {
            has_user_leaf |= entry.is_present() && entry.flags().contains(PteFlags::USER);
            continue;
        }
        assert!(entry.is_present(), "check_invariants: non-present entry {entry:?} at level {level}");
        let flags = entry.flags();
        assert!(flags.contains(PteFlags::WRITABLE), "check_invariants: read-only table entry {entry:?}");
        assert!(!flags.contains(PteFlags::NO_EXECUTE), "check_invariants: NX table entry {entry:?}");
        let child_addr = VirtAddr::new_truncate(entry_base);
        assert!(
            is_pinned(level - 1, child_addr) || !is_table_empty(mem, entry.frame()),
            "check_invariants: empty level-{} table at {child_addr:?}",
            level - 1
        );
        let (nr_below, has_user_below) = check_table(mem, entry.frame(), level - 1, entry_base);
        assert!(
            !has_user_below || flags.contains(PteFlags::USER),
            "check_invariants: user leaf under kernel-only entry at {child_addr:?}"
        );
        nr_tables += nr_below;
        has_user_leaf |= has_user_below;
    }
    (nr_tables, has_user_leaf)
}

#[cfg(test)]
mod tests;
