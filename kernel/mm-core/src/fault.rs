//! The page-fault decision table: from what the VMA allows, what the PTE holds,
//! what was attempted and who else uses the page, what the fault handler must do.
//!
//! The kernel's `mm/fault.rs` (and `mm/cow.rs`, `mm/swap/swapin.rs`) gathers the
//! facts under its locks, asks [`decide`], and carries the answer out; the host
//! model test (`fault/model_tests.rs`) asks the same function and carries the
//! answer out on a simulated memory. This module only decides: it touches no page
//! table, no frame and no slot.
//!
//! ```text
//!  VMA        PTE                    access      facts asked            -> FaultAction
//!  none       -                      any         -                      -> Refuse(NoVma)
//!  prot says no                      any         -                      -> Refuse(NotAllowed)
//!  anonymous  empty                  read/exec   (private VMA)          -> MapZeroPage (read-only)
//!  anonymous  empty                  write, or any access to a shared   -> MapZeroedFrame
//!  image      empty                  any         -                      -> MapImagePage
//!  file       empty                  any         -                      -> MapFilePage (page cache)
//!  shared     present RO, not zero   write       -                      -> MakeWritable(SharedWrite)
//!  any        present RO, zero page  write       is it the zero page    -> ReplaceZeroPage
//!  private    present RO             write       frame_use: exclusive   -> MakeWritable(SoleOwner)
//!  private    present RO             write       frame_use: shared      -> CopyOnWrite
//!  any        present, allows it     any         -                      -> FlushStaleTlb (spurious)
//!  any        swap entry S           any         S not cached           -> ReadFromSwap(S)
//!                                                S cached, LOCKED       -> WaitForIo
//!                                                S cached               -> MapSwapCache (RO + COW unless
//!                                                                           this PTE is its only user)
//! ```
//! Two PTE-flag rules that feed the table live here too: [`fork_flags`] (what fork
//! leaves in both copies: private writable pages become read-only and COW) and
//! [`protect_flags`] (what mprotect leaves: write permission is only ever added in
//! a shared VMA; a private page gets it back at its next write fault, above).
//!
//! "Exclusive" is [`FrameUse::is_exclusive`]: one PTE maps the frame and nothing
//! else (another PTE, a swap PTE naming its slot) can see the page. Reusing a
//! frame without that check is the classic copy-on-write bug: the other sharer
//! sees the write. The model test injects exactly that bug to show it is caught.
#![forbid(unsafe_code)]

use crate::addr::Frame;
use crate::pte::{Pte, PteFlags, SwapEntry};
use crate::swap_cache::SlotState;
use crate::vma::{Backing, Vma, VmProt};

#[cfg(test)]
mod model;
#[cfg(test)]
mod model_tests;
#[cfg(test)]
pub(crate) mod tests;

/// What the faulting instruction tried to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load.
    Read,
    /// A store.
    Write,
    /// An instruction fetch.
    Exec,
}

impl Access {
    /// Decodes the access from an x86 page-fault error code (through
    /// [`PageFaultCode`](crate::fault_code::PageFaultCode), where its bits are named):
    /// an instruction fetch, else a write, else a read.
    pub fn from_error_code(error_code: u64) -> Access {
        let code = crate::fault_code::PageFaultCode(error_code);
        if code.is_fetch() {
            Access::Exec
        } else if code.is_write() {
            Access::Write
        } else {
            Access::Read
        }
    }

    /// Returns the access as a verb phrase for a kill message ("write to").
    pub fn verb(self) -> &'static str {
        match self {
            Access::Read => "read from",
            Access::Write => "write to",
            Access::Exec => "execute at",
        }
    }
}

/// Returns true if `prot` allows `access`.
///
/// Any protection but PROT_NONE allows reads: x86 page tables cannot express
/// write-only or execute-only pages (a present user page is readable), and Linux
/// on x86 lets PROT_WRITE and PROT_EXEC pages be read, so we do too.
#[inline]
pub fn allows(prot: VmProt, access: Access) -> bool {
    match access {
        Access::Read => prot != VmProt::NONE,
        Access::Write => prot.contains(VmProt::WRITE),
        Access::Exec => prot.contains(VmProt::EXEC),
    }
}

/// Returns the leaf flags for a user page of a VMA with `prot`.
///
/// PROT_NONE pages keep a present entry without USER, so their contents survive
/// until the protection is restored; user accesses fault and the VMA check refuses.
#[inline]
pub fn leaf_flags_for(prot: VmProt) -> PteFlags {
    let mut flags = PteFlags::PRESENT;
    if prot != VmProt::NONE {
        flags |= PteFlags::USER;
    }
    if prot.contains(VmProt::WRITE) {
        flags |= PteFlags::WRITABLE;
    }
    if !prot.contains(VmProt::EXEC) {
        flags |= PteFlags::NO_EXECUTE;
    }
    flags
}

/// Returns the flags `fork` gives both copies of a present PTE: a private writable
/// page becomes read-only and copy-on-write; a shared mapping's page, or one
/// already read-only, keeps its flags.
pub fn fork_flags(flags: PteFlags, is_shared_vma: bool) -> PteFlags {
    if !is_shared_vma && flags.contains(PteFlags::WRITABLE) {
        (flags - PteFlags::WRITABLE) | PteFlags::COW
    } else {
        flags
    }
}

/// Returns the flags `mprotect` to `prot` gives a present PTE with flags `old` in a
/// VMA that is shared or not.
///
/// Execute and user access follow the protection at once. In a private VMA write
/// permission is never added here: the next write faults and [`decide`] grants it,
/// copying first if the page is shared copy-on-write. In a shared VMA every mapper
/// writes the same frame, so write permission follows the protection.
pub fn protect_flags(old: PteFlags, prot: VmProt, is_shared_vma: bool) -> PteFlags {
    let target = leaf_flags_for(prot);
    let mut flags = (old - (PteFlags::USER | PteFlags::NO_EXECUTE | PteFlags::WRITABLE)) | (target - PteFlags::WRITABLE);
    if !target.contains(PteFlags::WRITABLE) {
        flags.remove(PteFlags::COW);
    } else if is_shared_vma || old.contains(PteFlags::WRITABLE) {
        flags.insert(PteFlags::WRITABLE);
    }
    flags
}

/// Who uses a frame that a present PTE maps, as far as a write fault cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameUse {
    /// PTEs that map the frame.
    pub map_count: u32,
    /// References held on the frame: its PTEs, plus one while it is in the swap cache.
    pub refcount: u32,
    /// If the frame is in the swap cache: the share count of its slot (the cache's
    /// reference, plus one per swap PTE still naming the slot).
    pub slot_refs: Option<u16>,
}

impl FrameUse {
    /// Returns true if exactly one PTE holds the frame and nothing else shares the
    /// page, so a write may go to it in place (no copy-on-write copy is needed).
    ///
    /// A frame in the swap cache is shared with every swap PTE still naming its
    /// slot (they will map this frame, or read the slot): it is exclusive only if
    /// the cache holds the slot's only reference.
    pub fn is_exclusive(self) -> bool {
        #[cfg(test)]
        if tests::injected(tests::InjectedBug::CowReuseWithoutCountCheck) {
            return true;
        }
        #[cfg(test)]
        if tests::injected(tests::InjectedBug::CowReuseIgnoringSwapSharers) {
            return self.map_count == 1;
        }
        if self.map_count != 1 {
            return false;
        }
        match self.slot_refs {
            None => self.refcount == 1,
            Some(slot_refs) => self.refcount == 2 && slot_refs == 1,
        }
    }
}

/// What the swap cache holds for the slot a swap PTE names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapCacheLookup {
    /// No frame caches the slot: it must be read from the disk.
    NotCached,
    /// A frame caches the slot but is LOCKED for I/O (being read or written).
    Locked,
    /// `frame` caches the slot; `slot` says who else uses it.
    Cached {
        /// The caching frame.
        frame: Frame,
        /// The slot's references and the page's state.
        slot: SlotState,
    },
}

/// The facts [`decide`] may ask for, gathered by the caller from its frame table
/// and swap cache. Each is asked only on the row of the table that needs it.
pub trait FaultFacts {
    /// Returns true if `frame` is the shared zero page.
    fn is_zero_page(&self, frame: Frame) -> bool;
    /// Returns who uses `frame` (asked for a write to a private read-only page).
    fn frame_use(&self, frame: Frame) -> FrameUse;
    /// Returns what the swap cache holds for `entry` (asked for a swap PTE).
    fn swap_cache(&self, entry: SwapEntry) -> SwapCacheLookup;
}

/// Why a fault is refused (the process gets SIGSEGV).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No VMA covers the address.
    NoVma,
    /// The VMA's protection does not allow the access.
    NotAllowed,
}

/// Why a present read-only PTE may be made writable in place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WritableBecause {
    /// The writer holds the only reference (copy-on-write with nothing to copy for).
    SoleOwner,
    /// The page belongs to a shared mapping: every mapper writes the same frame.
    SharedMapping,
}

/// What the fault handler must do (see the table in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Refuse the access: SIGSEGV.
    Refuse(Refusal),
    /// Map the shared zero page with `flags` (read-only) into the empty PTE.
    MapZeroPage {
        /// The PTE's flags (never WRITABLE).
        flags: PteFlags,
    },
    /// Map a fresh zeroed frame with `flags` into the empty PTE.
    MapZeroedFrame {
        /// The PTE's flags.
        flags: PteFlags,
    },
    /// Map a fresh frame filled from the program image with `flags` into the empty PTE.
    MapImagePage {
        /// The PTE's flags.
        flags: PteFlags,
    },
    /// Map the file's page-cache page (private: read-only, a write copies it; shared:
    /// writable only once the write marked the page dirty) with at most `flags`.
    MapFilePage {
        /// The VMA's PTE flags (the kernel removes WRITABLE where the rule says).
        flags: PteFlags,
    },
    /// Replace the present PTE by `pte`: the same frame, now writable.
    MakeWritable {
        /// The new PTE.
        pte: Pte,
        /// Why no copy is needed.
        because: WritableBecause,
    },
    /// The PTE maps the zero page and the access is a write: map a fresh zeroed
    /// frame with `flags` instead.
    ReplaceZeroPage {
        /// The new PTE's flags.
        flags: PteFlags,
    },
    /// Copy the shared frame to a fresh one, map the copy with `flags`, and drop
    /// this PTE's reference to the old frame.
    CopyOnWrite {
        /// The new PTE's flags.
        flags: PteFlags,
    },
    /// Map `frame` (in the swap cache for the PTE's entry) with `flags`, and drop the
    /// swap PTE's reference to its slot.
    MapSwapCache {
        /// The cached frame.
        frame: Frame,
        /// The PTE's flags: read-only and COW unless this PTE is the page's only user.
        flags: PteFlags,
    },
    /// The page is only on the disk: read `entry`'s slot into the swap cache (with
    /// no lock held), then fault again.
    ReadFromSwap(SwapEntry),
    /// The page's frame is under I/O: let the I/O finish, then fault again.
    WaitForIo,
    /// The PTE already allows the access: a stale TLB entry, to flush.
    FlushStaleTlb,
    /// A non-present PTE that is neither empty nor a swap entry: a corrupt table.
    CorruptPte(Pte),
}

/// Decides how to resolve a fault by `access` on a page of `vma` (`None`: no VMA
/// covers it) whose PTE is `pte` (`None`: no page table holds it yet).
///
/// The address must be a user address; stack growth has been tried already.
pub fn decide(vma: Option<&Vma>, access: Access, pte: Option<Pte>, facts: &impl FaultFacts) -> FaultAction {
    let Some(vma) = vma else {
        return FaultAction::Refuse(Refusal::NoVma);
    };
    if !allows(vma.prot, access) {
        return FaultAction::Refuse(Refusal::NotAllowed);
    }
    let pte = match pte {
        Some(pte) if !pte.is_unused() => pte,
        _ => return decide_empty(vma, access),
    };
    if !pte.is_present() {
        return match pte.as_swap() {
            Some(entry) => decide_swapped(vma, entry, facts),
            None => FaultAction::CorruptPte(pte),
        };
    }
    if access == Access::Write && !pte.flags().contains(PteFlags::WRITABLE) {
        return decide_write_protected(vma, pte, facts);
    }
    FaultAction::FlushStaleTlb
}

/// The PTE is empty: what a first touch maps (also used by MAP_POPULATE and fork's
/// population of shared pages, with the access they pretend to make).
#[inline]
pub fn decide_empty(vma: &Vma, access: Access) -> FaultAction {
    let flags = leaf_flags_for(vma.prot);
    match vma.backing {
        Backing::Image { .. } => FaultAction::MapImagePage { flags },
        Backing::File { .. } => FaultAction::MapFilePage { flags },
        Backing::Anonymous if access != Access::Write && !vma.flags.is_shared() => {
            FaultAction::MapZeroPage { flags: flags - PteFlags::WRITABLE }
        }
        Backing::Anonymous => FaultAction::MapZeroedFrame { flags },
    }
}

/// A write to a present read-only PTE in a VMA that allows writes.
fn decide_write_protected(vma: &Vma, pte: Pte, facts: &impl FaultFacts) -> FaultAction {
    let old = pte.frame();
    let flags = (pte.flags() | PteFlags::WRITABLE) - PteFlags::COW;
    if facts.is_zero_page(old) {
        return FaultAction::ReplaceZeroPage { flags: flags - PteFlags::DIRTY - PteFlags::ACCESSED };
    }
    let mut writable = pte;
    writable.set_flags(flags);
    if vma.flags.is_shared() {
        return FaultAction::MakeWritable { pte: writable, because: WritableBecause::SharedMapping };
    }
    if facts.frame_use(old).is_exclusive() {
        return FaultAction::MakeWritable { pte: writable, because: WritableBecause::SoleOwner };
    }
    FaultAction::CopyOnWrite { flags: flags - PteFlags::DIRTY - PteFlags::ACCESSED }
}

/// A fault on a swap PTE naming `entry`.
fn decide_swapped(vma: &Vma, entry: SwapEntry, facts: &impl FaultFacts) -> FaultAction {
    let (frame, slot) = match facts.swap_cache(entry) {
        SwapCacheLookup::NotCached => return FaultAction::ReadFromSwap(entry),
        SwapCacheLookup::Locked => return FaultAction::WaitForIo,
        SwapCacheLookup::Cached { frame, slot } => (frame, slot),
    };
    let mut flags = leaf_flags_for(vma.prot);
    if vma.prot.contains(VmProt::WRITE) && !vma.flags.is_shared() && !slot.is_only_user_of_swap_pte() {
        flags = (flags - PteFlags::WRITABLE) | PteFlags::COW;
    }
    FaultAction::MapSwapCache { frame, flags }
}
