//! The kernel's page tables on real memory: `mm_core::pagetable` walks them, this
//! file gives the walk its memory (the direct map) and keeps the kernel's root.
//!
//! [`DirectMapTables`] implements `TableMemory`: an entry of the table in frame `f`
//! is the u64 at `PHYS_MAP_BASE + f.start + 8 * index`; new tables are zeroed
//! frames in state `PageTable`, empty ones go back to the buddy allocator.
//!
//! The kernel's own tree (built by `kspace`) is [`KERNEL_PT`]. [`kmap`]/[`kunmap`]
//! change it and honour the TLB flush each change needs, so callers cannot forget.
//!
//! Locks: `KERNEL_PT` (see the lock order in [`crate::mm`]); tables are allocated inside.

use mm_core::pagetable::{MapError, PageSize, PageTable, TableMemory, UnmapError};
pub use mm_core::pte::{PageProt, Pte, PteFlags, SwapEntry};

use super::frame::{self, FrameState};
use super::{Frame, Order, Page, PhysAddr, VirtAddr, phys_to_virt};
use crate::arch::tlb;
use crate::sync::IrqMutex;

/// Page-table memory reached through the direct map.
///
/// `TableMemory` writes entries into whatever frame a walker names, so a value of
/// this type is a licence to change page tables: only [`DirectMapTables::new`],
/// which is `unsafe`, makes one.
pub struct DirectMapTables {
    _licence: (),
}

impl DirectMapTables {
    /// Returns access to page tables through the direct map.
    ///
    /// # Safety
    /// Every `PageTable` used with the value must have as its root a live table
    /// tree that the caller may change: the kernel's tree under `KERNEL_PT`'s lock,
    /// or an address space's tree under that space's lock (or one not yet shared).
    /// A tree built from any other frame would write page-table entries into it.
    pub const unsafe fn new() -> DirectMapTables {
        DirectMapTables { _licence: () }
    }

    fn entry_ptr(table: Frame, index: usize) -> *mut u64 {
        debug_assert!(index < 512);
        (phys_to_virt(table.start_address()).as_u64() + 8 * index as u64) as *mut u64
    }
}

impl TableMemory for DirectMapTables {
    fn read_entry(&self, table: Frame, index: usize) -> Pte {
        // SAFETY: the walker passes only live table frames (TableMemory's contract) and
        // indices below 512; the direct map covers every frame. Volatile: the CPU sets
        // Accessed/Dirty bits behind the compiler's back.
        Pte::from_bits(unsafe { Self::entry_ptr(table, index).read_volatile() })
    }

    fn write_entry(&mut self, table: Frame, index: usize, entry: Pte) {
        // SAFETY: as in `read_entry`; the caller holds the lock of the tree being changed.
        unsafe { Self::entry_ptr(table, index).write_volatile(entry.bits()) }
    }

    fn clear_entry_flags(&mut self, table: Frame, index: usize, flags: PteFlags) -> Pte {
        let entry = Self::entry_ptr(table, index);
        // SAFETY: as in `read_entry`: a live table entry, 8-byte aligned in the
        // direct map. The MMUs update entries with locked read-modify-writes, so an
        // atomic AND here keeps every bit they set meanwhile.
        let atomic = unsafe { core::sync::atomic::AtomicU64::from_ptr(entry) };
        Pte::from_bits(atomic.fetch_and(!flags.bits(), core::sync::atomic::Ordering::SeqCst))
    }

    fn alloc_table(&mut self) -> Option<Frame> {
        frame::alloc_zeroed(Order(0), FrameState::PageTable).ok()
    }

    fn free_table(&mut self, table: Frame) {
        // SAFETY: the walker frees a table it just unlinked from its tree (the
        // contract of `new`: the tree is the caller's), so nothing maps or uses it.
        if let Err(e) = unsafe { frame::free(table, Order(0)) } {
            panic!("paging: freeing page table {table:?}: {e:?}");
        }
    }
}

/// Creates a user page-table tree whose kernel half is the kernel's (PML4 entries
/// 256..511 copied), and the licence to change it; `None` without memory.
///
/// The pair is how code that may not say `unsafe` (the address-space modules) gets
/// page-table access: the licence comes only with a tree of its own.
pub fn new_user_tree() -> Option<(PageTable, DirectMapTables)> {
    let kernel = PageTable::from_root(kernel_root());
    // SAFETY: the new tree is fresh and the caller's alone; the kernel tree is only
    // read (its top-level entries copied).
    let mut tables = unsafe { DirectMapTables::new() };
    let pt = PageTable::new_sharing_kernel_half(&mut tables, &kernel);
    let _ = kernel.into_root(); // not ours to free
    Some((pt?, tables))
}

/// The kernel's own page-table tree (set by `kspace::init`).
pub static KERNEL_PT: IrqMutex<Option<PageTable>> = IrqMutex::new_ranked(crate::sync::LockRank::KernelPageTable, None);

/// Returns the kernel tree's root frame.
pub fn kernel_root() -> Frame {
    KERNEL_PT.lock().as_ref().expect("paging: kernel tables not built yet").root()
}

fn with_kernel_pt<R>(f: impl FnOnce(&mut PageTable, &mut DirectMapTables) -> R) -> R {
    let mut pt = KERNEL_PT.lock();
    // SAFETY: the kernel's own tree, under KERNEL_PT's lock.
    let mut mem = unsafe { DirectMapTables::new() };
    f(pt.as_mut().expect("paging: kernel tables not built yet"), &mut mem)
}

/// Maps `page` to `frame` in the kernel half with `flags` (GLOBAL is added).
pub fn kmap(page: Page, frame: Frame, flags: PteFlags) -> Result<(), MapError> {
    assert!(!page.start_address().is_lower_half(), "kmap: {page:?} is in the user half");
    with_kernel_pt(|pt, mem| pt.map(mem, page, frame, flags | PteFlags::GLOBAL)).map(tlb::flush)
}

/// Maps the 2 MiB page at `addr` to the 2 MiB block at `phys` in the kernel half.
pub fn kmap_huge(addr: VirtAddr, phys: PhysAddr, flags: PteFlags) -> Result<(), MapError> {
    assert!(!addr.is_lower_half(), "kmap_huge: {addr:?} is in the user half");
    with_kernel_pt(|pt, mem| pt.map_huge(mem, addr, phys, flags | PteFlags::GLOBAL)).map(tlb::flush)
}

/// Unmaps a kernel 4 KiB `page`, flushes it from the TLB and returns the frame it mapped.
pub fn kunmap(page: Page) -> Result<Frame, UnmapError> {
    let (frame, token) = with_kernel_pt(|pt, mem| pt.unmap(mem, page))?;
    let addr = token.into_inner();
    tlb::flush_page(addr);
    // Kernel mappings are shared by every CPU: shoot the page down everywhere.
    crate::arch::shootdown::flush_kernel_everywhere(addr);
    Ok(frame)
}

/// Unmaps a kernel 4 KiB `page` and flushes it from this CPU's TLB only; returns the
/// frame it mapped. The caller shoots the page down on the other CPUs
/// (`arch::shootdown::flush_kernel_pages_everywhere`, one IPI for a batch of pages)
/// before it frees or reuses the frame.
pub fn kunmap_local(page: Page) -> Result<Frame, UnmapError> {
    let (frame, token) = with_kernel_pt(|pt, mem| pt.unmap(mem, page))?;
    tlb::flush(token);
    Ok(frame)
}

/// Unmaps a kernel 2 MiB page, flushes it and returns its first frame.
pub fn kunmap_huge(addr: VirtAddr) -> Result<Frame, UnmapError> {
    let (frame, token) = with_kernel_pt(|pt, mem| pt.unmap_huge(mem, addr))?;
    let addr = token.into_inner();
    tlb::flush_page(addr);
    crate::arch::shootdown::flush_kernel_everywhere(addr);
    Ok(frame)
}

/// Translates a virtual address through the tree that CR3 holds now.
pub fn translate(addr: VirtAddr) -> Option<(PhysAddr, PteFlags, PageSize)> {
    let (root, _) = tlb::current_root();
    // SAFETY: CR3 names a live tree; translate only reads it.
    let mem = unsafe { DirectMapTables::new() };
    PageTable::from_root(root).translate(&mem, addr)
}

/// Returns the number of tables in the kernel tree (for tests: tables are freed).
pub fn kernel_table_count() -> usize {
    with_kernel_pt(|pt, mem| pt.check_invariants(mem))
}

/// Prints the 4-level walk of `addr` through the current tree, one line a level.
///
/// This is what the MMU does on a TLB miss: 9 bits of the address index each
/// table, the entry found gives the next table's frame, and a leaf (PS bit at
/// level 2 or 3, or any entry at level 1) gives the frame; the low bits are the offset.
pub fn print_walk(addr: VirtAddr) {
    let names = ["", "PT  ", "PD  ", "PDPT", "PML4"];
    let (mut table, _) = tlb::current_root();
    // SAFETY: CR3 names a live tree; the walk only reads it.
    let mem = unsafe { DirectMapTables::new() };
    crate::println!("walk of {addr} (CR3 -> PML4 in {:?}):", table);
    for level in (1..=4u8).rev() {
        let index = addr.table_index(level);
        let entry = mem.read_entry(table, index);
        let span = 12 + 9 * (u32::from(level) - 1);
        crate::println!(
            "  {}[{:3}]  (bits {}..{} of the address) = {:#018x}  {:?}",
            names[level as usize],
            index,
            span + 8,
            span,
            entry.bits(),
            entry.flags()
        );
        if !entry.is_present() {
            crate::println!("  -> not present: a page fault");
            return;
        }
        if level == 1 || entry.is_huge() {
            let offset = addr.as_u64() & ((1u64 << span) - 1);
            crate::println!(
                "  -> leaf: physical {:#x} = frame {:#x} + offset {:#x} ({} page)",
                entry.addr().as_u64() + offset,
                entry.addr().as_u64(),
                offset,
                match level {
                    1 => "4 KiB",
                    2 => "2 MiB",
                    _ => "1 GiB",
                }
            );
            return;
        }
        table = entry.frame();
    }
}
