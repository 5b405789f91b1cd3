//! TLB invalidation and address-space switches.
//!
//! The TLB caches translations; after a PTE is removed or narrowed the CPU may keep
//! using the old one until told otherwise. The page-table code in `mm-core` returns
//! a `#[must_use]` [`Flush`] token for every such change; this module is where the
//! token is honoured:
//! * one page: `invlpg addr` (also drops GLOBAL entries for that page);
//! * everything: reload CR3 (drops all non-global entries of the current PCID);
//! * everything including GLOBAL entries: toggle CR4.PGE off and on.
//!
//! Adding a mapping where there was none needs no flush on x86: the TLB never
//! caches "not present".

use core::sync::atomic::{AtomicU64, Ordering};

use mm_core::pagetable::{Flush, FlushPlan};
use x86_64::registers::control::{Cr4, Cr4Flags};

use mm_core::addr::{Frame, VirtAddr};

static NR_PAGE_FLUSHES: AtomicU64 = AtomicU64::new(0);
static NR_FULL_FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Invalidates the TLB entry for the page holding `addr`.
#[inline]
pub fn flush_page(addr: VirtAddr) {
    NR_PAGE_FLUSHES.fetch_add(1, Ordering::Relaxed);
    // SAFETY: invlpg only drops a cached translation.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) addr.as_u64(), options(nostack, preserves_flags)) };
}

/// Honours one flush token.
#[inline]
pub fn flush(token: Flush) {
    flush_page(token.into_inner());
}

/// Reloads CR3: every non-global translation of the current address space is dropped.
pub fn flush_all() {
    NR_FULL_FLUSHES.fetch_add(1, Ordering::Relaxed);
    let (root, pcid) = current_root();
    // SAFETY: reloading the current root changes no mapping, only empties the TLB.
    unsafe { write_cr3(root, pcid, false) };
}

/// Drops every translation, GLOBAL ones included, by toggling CR4.PGE.
pub fn flush_all_including_global() {
    NR_FULL_FLUSHES.fetch_add(1, Ordering::Relaxed);
    let cr4 = Cr4::read();
    if cr4.contains(Cr4Flags::PAGE_GLOBAL) {
        // SAFETY: clearing and restoring PGE flushes the whole TLB and changes nothing else.
        unsafe {
            Cr4::write(cr4 - Cr4Flags::PAGE_GLOBAL);
            Cr4::write(cr4);
        }
    } else {
        flush_all();
    }
}

/// Carries out a batched flush plan.
pub fn flush_plan(plan: FlushPlan) {
    match plan {
        FlushPlan::Nothing => {}
        FlushPlan::Pages(pages) => pages.for_each(flush_page),
        FlushPlan::All { has_global: true } => flush_all_including_global(),
        FlushPlan::All { has_global: false } => flush_all(),
    }
}

/// Returns (page flushes, full flushes) done so far.
pub fn stats() -> (u64, u64) {
    (NR_PAGE_FLUSHES.load(Ordering::Relaxed), NR_FULL_FLUSHES.load(Ordering::Relaxed))
}

/// Returns the current root table frame and PCID.
pub fn current_root() -> (Frame, u16) {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effects.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack, preserves_flags)) };
    let pcid = if super::cpu::pcid_enabled() { (cr3 & 0xfff) as u16 } else { 0 };
    (Frame::from_pfn((cr3 & 0x000f_ffff_ffff_f000) >> 12), pcid)
}

/// Loads `root` into CR3 with `pcid`; with `keep_tlb` (PCID only) the TLB entries
/// tagged with `pcid` are kept (CR3 bit 63).
///
/// # Safety
/// `root` must be a valid PML4 that maps the kernel half exactly like the current
/// one (the code running now, its stack and data must stay mapped).
pub unsafe fn write_cr3(root: Frame, pcid: u16, keep_tlb: bool) {
    let pcid_bits = if super::cpu::pcid_enabled() { u64::from(pcid & 0xfff) | (u64::from(keep_tlb) << 63) } else { 0 };
    let value = root.start_address().as_u64() | pcid_bits;
    // SAFETY: the caller guarantees the new root keeps the kernel mapped.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) value, options(nostack, preserves_flags)) };
}
