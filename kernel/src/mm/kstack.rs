//! Kernel stacks with guard pages, in their own area of the kernel half.
//!
//! The area at `KSTACK_BASE` is cut into 64 KiB slots. A stack of `n` pages takes
//! one slot and maps its top `n` pages; the pages below, the lowest at least, stay
//! unmapped. A stack overflow therefore touches an unmapped page: the #PF cannot
//! be delivered on the dead stack, the CPU raises a double fault on its IST stack,
//! and the handler finds the guard in `arch::stack_guard` and names the stack.
//!
//! ```text
//!   slot base                                                    slot base + 64 KiB
//!   | guard (unmapped) ... | page | page | ... | page |  <- stack top (grows down)
//! ```

use super::frame::{self, FrameState};
use super::layout::{KSTACK_BASE, KSTACK_SLOT_SIZE, NR_KSTACK_SLOTS};
use super::paging::{self, PteFlags};
use super::{Order, PAGE_SIZE, Page, VirtAddr};
use crate::arch::stack_guard;
use crate::sync::IrqMutex;

/// Which slots are taken.
static SLOTS: IrqMutex<[u64; NR_KSTACK_SLOTS / 64]> = IrqMutex::new_ranked(crate::sync::LockRank::KernelStackSlots, [0; NR_KSTACK_SLOTS / 64]);

/// The most pages a stack may have (one page of the slot is always the guard).
pub const MAX_STACK_PAGES: u64 = KSTACK_SLOT_SIZE / PAGE_SIZE - 1;

/// Why a stack could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StackError {
    /// Every slot is in use.
    NoSlot,
    /// No frame (or page-table frame) was left.
    OutOfMemory,
    /// The size is 0 or above [`MAX_STACK_PAGES`].
    BadSize,
}

/// A kernel stack: mapped pages with an unmapped guard below. Unmapped and freed on drop.
#[derive(Debug)]
pub struct KernelStack {
    slot: usize,
    nr_pages: u64,
    name: &'static str,
}

fn slot_base(slot: usize) -> u64 {
    KSTACK_BASE + slot as u64 * KSTACK_SLOT_SIZE
}

fn take_slot() -> Option<usize> {
    let mut slots = SLOTS.lock();
    let (word, bits) = slots.iter_mut().enumerate().find(|(_, w)| **w != u64::MAX)?;
    let bit = bits.trailing_ones() as usize;
    *bits |= 1 << bit;
    Some(word * 64 + bit)
}

fn release_slot(slot: usize) {
    SLOTS.lock()[slot / 64] &= !(1 << (slot % 64));
}

impl KernelStack {
    /// Allocates and maps a stack of `nr_pages` pages called `name`.
    pub fn new(nr_pages: u64, name: &'static str) -> Result<Self, StackError> {
        if nr_pages == 0 || nr_pages > MAX_STACK_PAGES {
            return Err(StackError::BadSize);
        }
        let slot = take_slot().ok_or(StackError::NoSlot)?;
        let stack = KernelStack { slot, nr_pages: 0, name };
        let mut stack = stack;
        let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE;
        for i in 0..nr_pages {
            let frame = frame::alloc_zeroed_leaving(Order(0), FrameState::Kernel, frame::Reserve::Heap).map_err(|_| StackError::OutOfMemory)?;
            let page = Page::containing_address(VirtAddr::new(stack.top() - (i + 1) * PAGE_SIZE));
            if paging::kmap(page, frame, flags).is_err() {
                // SAFETY: allocated just above and not mapped (kmap failed).
                unsafe { frame::free(frame, Order(0)) }.expect("kstack: freeing an unmapped frame");
                return Err(StackError::OutOfMemory); // `stack` drops and undoes the rest
            }
            stack.nr_pages = i + 1;
        }
        stack_guard::register(slot_base(slot), stack.bottom(), name);
        Ok(stack)
    }

    /// Returns the highest address + 1: the initial stack pointer.
    pub fn top(&self) -> u64 {
        slot_base(self.slot) + KSTACK_SLOT_SIZE
    }

    /// Returns the lowest mapped address.
    pub fn bottom(&self) -> u64 {
        self.top() - self.nr_pages * PAGE_SIZE
    }

    /// Returns the guard region below the stack as `[start, end)`.
    pub fn guard(&self) -> (u64, u64) {
        (slot_base(self.slot), self.bottom())
    }

    /// Returns the stack's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl Drop for KernelStack {
    fn drop(&mut self) {
        stack_guard::unregister(slot_base(self.slot));
        // Unmapped here first, then shot down on the other CPUs in one batch (one IPI
        // each, not one per page), and only then are the frames freed.
        const BATCH: usize = crate::arch::shootdown::MAX_PAGES;
        let mut next = 0;
        while next < self.nr_pages {
            let mut pages = [VirtAddr::new(0); BATCH];
            let mut frames = [None; BATCH];
            let n = (self.nr_pages - next).min(BATCH as u64) as usize;
            for j in 0..n {
                pages[j] = VirtAddr::new(self.top() - (next + j as u64 + 1) * PAGE_SIZE);
                frames[j] = Some(paging::kunmap_local(Page::containing_address(pages[j])).expect("kstack: stack page not mapped"));
            }
            crate::arch::shootdown::flush_kernel_pages_everywhere(&pages[..n]);
            for frame in frames.into_iter().flatten() {
                // SAFETY: the stack is being dropped (nothing runs on it) and its page
                // was unmapped and flushed from every CPU's TLB.
                unsafe { frame::free(frame, Order(0)) }.expect("kstack: stack frame not allocated");
            }
            next += n as u64;
        }
        release_slot(self.slot);
    }
}
