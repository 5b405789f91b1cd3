//! `/proc/PID/smaps` and `/proc/PID/smaps_rollup`: per VMA (or summed over all of
//! them), what of it is in memory, shared with other processes, dirty, in swap.
//!
//! Made by walking the process's page table (Linux's `smaps_pte_range`): each
//! present leaf adds its size to Rss and, divided by the number of page-table
//! entries that map its frame (the frame table's map count), to Pss, the
//! "proportional set size": a page mapped by three processes counts a third to
//! each, so the Pss of every process adds up to the memory really used. A page is
//! *Shared* when more than one PTE maps it, else *Private*; *Dirty* when its PTE's
//! Dirty bit is set or it is a dirty page-cache page; *Referenced* when its PTE's
//! Accessed bit is set; *Anonymous* unless it is a page-cache page (frame flag
//! FILE) or a page of a shared anonymous mapping (`MAP_SHARED | MAP_ANONYMOUS`):
//! Linux keeps those in shmem, its in-memory file system, so they are file pages
//! to it, counted in smaps_rollup's Pss_Shmem, status's RssShmem and meminfo's
//! Shmem ([`shmem_in`]), never in Anonymous or AnonPages. A swap entry adds a page to Swap and, divided by the slot's share count,
//! to SwapPss. The shared zero page is not counted (Linux's `vm_normal_page`
//! leaves it out too). Layout (`fs/proc/task_mmu.c`): the maps line, then
//! `Name:` padded to 16 columns, the value right-aligned in 8, ` kB`.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use mm_core::pagetable::PageSize;
use mm_core::vma::{Vma, VmFlags, VmProt};

use crate::mm::frame::{self, FrameFlags};
use crate::mm::paging::{Pte, PteFlags};
use crate::mm::{PAGE_SIZE, fault, swap};
use crate::proc::task;

/// Pss is kept in bytes shifted left by this, as Linux's `PSS_SHIFT`, so that
/// the thirds of a page add up without rounding at each page.
pub(super) const PSS_SHIFT: u32 = 12;

/// What a range of a process's memory holds, in bytes (Pss shifted by [`PSS_SHIFT`]).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MemCounts {
    pub resident: u64,
    pub pss: u64,
    pub pss_anon: u64,
    pub pss_file: u64,
    pub pss_shmem: u64,
    pub shared_clean: u64,
    pub shared_dirty: u64,
    pub private_clean: u64,
    pub private_dirty: u64,
    pub referenced: u64,
    pub anonymous: u64,
    pub anon_huge: u64,
    pub swap: u64,
    pub swap_pss: u64,
}

impl MemCounts {
    /// Counts one present leaf of `size_bytes` bytes, of a shared anonymous
    /// mapping if `is_shmem`.
    fn add_present(&mut self, pte: Pte, size_bytes: u64, is_shmem: bool) {
        let frame = pte.frame();
        if frame == fault::zero_frame() {
            return;
        }
        let (map_count, is_file, is_frame_dirty) =
            frame::with_desc(frame, |d| (d.map_count(), d.has_flags(FrameFlags::FILE), d.has_flags(FrameFlags::DIRTY)));
        let map_count = u64::from(map_count).max(1);
        let is_dirty = pte.flags().contains(PteFlags::DIRTY) || is_frame_dirty;
        let pss = (size_bytes << PSS_SHIFT) / map_count;
        self.resident += size_bytes;
        self.pss += pss;
        if is_file {
            self.pss_file += pss;
        } else if is_shmem {
            self.pss_shmem += pss;
        } else {
            self.pss_anon += pss;
            self.anonymous += size_bytes;
            if size_bytes > PAGE_SIZE {
                self.anon_huge += size_bytes;
            }
        }
        let bucket = match (map_count > 1, is_dirty) {
            (true, false) => &mut self.shared_clean,
            (true, true) => &mut self.shared_dirty,
            (false, false) => &mut self.private_clean,
            (false, true) => &mut self.private_dirty,
        };
        *bucket += size_bytes;
        if pte.flags().contains(PteFlags::ACCESSED) {
            self.referenced += size_bytes;
        }
    }

    /// Counts one leaf (present or swap) of `vma`.
    fn add_leaf(&mut self, pte: Pte, size: PageSize, vma: &Vma) {
        let size_bytes = size.size_bytes();
        if pte.is_present() {
            self.add_present(pte, size_bytes, is_shmem(vma));
        } else if let Some(entry) = pte.as_swap() {
            let nr_refs = u64::from(swap::slot_refs(entry.slot())).max(1);
            self.swap += PAGE_SIZE;
            self.swap_pss += (PAGE_SIZE << PSS_SHIFT) / nr_refs;
        }
    }
}

/// The VMAs of process `pid` with what each holds; `None` if there is no such process.
pub(super) fn vma_counts(pid: u64) -> Option<Vec<(Vma, MemCounts)>> {
    let space = task::TASKS.lock().get(&pid)?.space.clone()?;
    let space = space.lock();
    // Each leaf is added to its VMA as the walk meets it: no list of every leaf
    // (a process of 64 MiB has 16384; a list of them is a 384 KiB allocation the
    // heap may not have while that process swaps).
    let mut all: Vec<(Vma, MemCounts)> = space.vmas().iter().map(|vma| (*vma, MemCounts::default())).collect();
    space.for_each_user_leaf(|page, pte, size| {
        let addr = page.start_address();
        let i = all.partition_point(|(vma, _)| vma.start <= addr);
        if let Some((vma, counts)) = i.checked_sub(1).map(|i| &mut all[i])
            && addr < vma.end
        {
            counts.add_leaf(pte, size, vma);
        }
    });
    Some(all)
}

/// Returns true if `vma` is a shared anonymous mapping: shmem, to Linux.
pub(super) fn is_shmem(vma: &Vma) -> bool {
    vma.flags.is_shared() && vma.is_anonymous()
}

/// What the shared anonymous mappings of `space` hold: (resident pages, the pages'
/// proportional share in pages shifted left by [`PSS_SHIFT`]). A frame mapped by
/// three processes adds one to each one's resident pages and a third to each
/// one's share, so the shares of every process add up to the frames (meminfo's
/// Shmem). Walks the page table only if the space has such a mapping.
pub(super) fn shmem_in(space: &crate::mm::addr_space::AddressSpace) -> (u64, u64) {
    let shmem_vmas: Vec<Vma> = space.vmas().iter().filter(|v| is_shmem(v)).copied().collect();
    if shmem_vmas.is_empty() {
        return (0, 0);
    }
    let mut counts = MemCounts::default();
    space.for_each_user_leaf(|page, pte, size| {
        let addr = page.start_address();
        if pte.is_present() && shmem_vmas.iter().any(|v| v.start <= addr && addr < v.end) {
            counts.add_present(pte, size.size_bytes(), true);
        }
    });
    (counts.resident / PAGE_SIZE, counts.pss_shmem / PAGE_SIZE)
}

/// Writes one `Name:     value kB` line (bytes in, kB out).
fn line(text: &mut String, name: &str, bytes: u64) {
    let _ = writeln!(text, "{:<16}{:>8} kB", alloc::format!("{name}:"), bytes >> 10);
}

/// Writes the lines of `counts` that smaps and smaps_rollup share.
fn write_counts(text: &mut String, c: &MemCounts, is_rollup: bool) {
    line(text, "Rss", c.resident);
    line(text, "Pss", c.pss >> PSS_SHIFT);
    if is_rollup {
        line(text, "Pss_Anon", c.pss_anon >> PSS_SHIFT);
        line(text, "Pss_File", c.pss_file >> PSS_SHIFT);
        line(text, "Pss_Shmem", c.pss_shmem >> PSS_SHIFT);
    }
    line(text, "Shared_Clean", c.shared_clean);
    line(text, "Shared_Dirty", c.shared_dirty);
    line(text, "Private_Clean", c.private_clean);
    line(text, "Private_Dirty", c.private_dirty);
    line(text, "Referenced", c.referenced);
    line(text, "Anonymous", c.anonymous);
    line(text, "AnonHugePages", c.anon_huge);
    line(text, "Swap", c.swap);
    line(text, "SwapPss", c.swap_pss >> PSS_SHIFT);
    line(text, "Locked", 0); // no mlock in this kernel
}

/// Returns Linux's two-letter `VmFlags` of `vma` (`fs/proc/task_mmu.c` `show_smap_vma_flags`).
fn vm_flags(vma: &Vma) -> String {
    let mut words: Vec<&str> = Vec::new();
    let has = |p| vma.prot.contains(p);
    for (is_set, word) in [
        (has(VmProt::READ), "rd"),
        (has(VmProt::WRITE), "wr"),
        (has(VmProt::EXEC), "ex"),
        (vma.flags.is_shared(), "sh"),
        (true, "mr"),
        (true, "mw"),
        (true, "me"),
        (vma.flags.contains(VmFlags::GROWS_DOWN), "gd"),
        (vma.flags.contains(VmFlags::DONT_FORK), "dc"),
        (vma.is_anonymous(), "ac"),
        (vma.flags.contains(VmFlags::HUGEPAGE), "hg"),
        (vma.flags.contains(VmFlags::NO_HUGEPAGE), "nh"),
    ] {
        if is_set {
            words.push(word);
        }
    }
    let mut text = words.join(" ");
    text.push(' ');
    text
}

/// `/proc/PID/smaps`: per VMA, its maps line and what it holds.
pub(super) fn smaps(pid: u64) -> Option<String> {
    let mut text = String::new();
    for (vma, counts) in vma_counts(pid)? {
        let _ = writeln!(text, "{}", super::pid::maps_line(&vma));
        line(&mut text, "Size", vma.len_bytes());
        line(&mut text, "KernelPageSize", PAGE_SIZE);
        line(&mut text, "MMUPageSize", PAGE_SIZE);
        write_counts(&mut text, &counts, false);
        let _ = writeln!(text, "VmFlags: {}", vm_flags(&vma));
    }
    Some(text)
}

/// `/proc/PID/smaps_rollup`: the smaps counts summed over every VMA, under one
/// line spanning them all.
pub(super) fn smaps_rollup(pid: u64) -> Option<String> {
    let all = vma_counts(pid)?;
    let mut sum = MemCounts::default();
    for (_, c) in &all {
        sum.resident += c.resident;
        sum.pss += c.pss;
        sum.pss_anon += c.pss_anon;
        sum.pss_file += c.pss_file;
        sum.pss_shmem += c.pss_shmem;
        sum.shared_clean += c.shared_clean;
        sum.shared_dirty += c.shared_dirty;
        sum.private_clean += c.private_clean;
        sum.private_dirty += c.private_dirty;
        sum.referenced += c.referenced;
        sum.anonymous += c.anonymous;
        sum.anon_huge += c.anon_huge;
        sum.swap += c.swap;
        sum.swap_pss += c.swap_pss;
    }
    let (start, end) = match (all.first(), all.last()) {
        (Some((first, _)), Some((last, _))) => (first.start.as_u64(), last.end.as_u64()),
        _ => (0, 0),
    };
    let mut text = String::new();
    let _ = writeln!(text, "{start:08x}-{end:08x} ---p 00000000 00:00 0{:>27}[rollup]", "");
    write_counts(&mut text, &sum, true);
    Some(text)
}
