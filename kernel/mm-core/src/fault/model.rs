//! A small memory manager simulated on the host, built from mm-core's own pieces,
//! for the model test (`model_tests.rs`).
//!
//! | piece | here |
//! |---|---|
//! | physical frames | a [`BuddyAllocator`] over a frame table of [`FrameDesc`]s; a page's contents are one `u64` |
//! | page tables | [`PageTable`] over [`Memory`] (a `TableMemory` whose tables are boxed arrays, frames from the same buddy) |
//! | VMAs, fork families | [`VmaTree`], [`FamilyTable`] |
//! | swap | a [`SwapMap`], a slot -> frame cache, a slot -> contents "disk" |
//! | decisions | [`decide`], [`fork_flags`], `protect_flags` and the [`SlotState`] verdicts: the code the kernel runs |
//!
//! Each operation does what the kernel's does (`mm/fault.rs`, `mm/cow.rs`,
//! `mm/swap/*.rs`, `mm/rmap.rs`), in the same order, minus locks and I/O: the
//! decisions are asked of the shared code and only their execution is simulated.
//! Nothing runs concurrently, so no frame is ever LOCKED when a fault looks at it.

use std::boxed::Box;
use std::collections::{BTreeMap, HashMap};
use std::format;
use std::string::String;
use std::vec::Vec;

use super::{Access, FaultAction, FaultFacts, FrameUse, SwapCacheLookup, decide, fork_flags};
use crate::addr::{Frame, Order, Page, VirtAddr};
use crate::fork_family::{FamilyId, FamilyPage, FamilyTable};
use crate::buddy::BuddyAllocator;
use crate::frame_table::{FrameDesc, FrameFlags, FrameState};
use crate::pagetable::{ENTRIES_PER_TABLE, FlushBatch, PageTable, TableMemory};
use crate::pte::{Pte, PteFlags, SwapEntry};
use crate::swap_cache::{CacheVerdict, CachedPage, SlotState};
use crate::swap_map::{SwapMap, SwapSlot};
use crate::vma::{Backing, Vma, VmFlags, VmProt, VmaTree};

/// Frames of the simulated machine.
pub(super) const NR_FRAMES: u64 = 512;
/// The first frame number.
const BASE_PFN: u64 = 0x100;
/// Slots of the simulated swap area (slot 0 is the header).
pub(super) const NR_SLOTS: u32 = 256;

/// Each process's layout: (start, pages, protection, flags).
pub(super) const LAYOUT: [(u64, u64, VmProt, VmFlags); 3] = [
    (0x10_0000, 8, VmProt::READ_WRITE, VmFlags::empty()),
    (0x20_0000, 2, VmProt::READ, VmFlags::empty()),
    (0x30_0000, 2, VmProt::READ_WRITE, VmFlags::SHARED),
];

/// A value per frame of the machine, in a vector indexed by frame number (a hash
/// map was most of the test's time).
pub(super) struct FrameMap<T> {
    slots: Vec<Option<T>>,
    len: usize,
}

impl<T> FrameMap<T> {
    fn new() -> Self {
        FrameMap { slots: (0..NR_FRAMES).map(|_| None).collect(), len: 0 }
    }

    fn index_of(frame: Frame) -> usize {
        (frame.pfn() - BASE_PFN) as usize
    }

    pub(super) fn get(&self, frame: Frame) -> Option<&T> {
        self.slots.get(Self::index_of(frame))?.as_ref()
    }

    fn insert(&mut self, frame: Frame, value: T) {
        if self.slots[Self::index_of(frame)].replace(value).is_none() {
            self.len += 1;
        }
    }

    fn remove(&mut self, frame: Frame) -> Option<T> {
        let old = self.slots[Self::index_of(frame)].take();
        self.len -= usize::from(old.is_some());
        old
    }

    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Returns the frames that have a value, in frame order.
    pub(super) fn frames(&self) -> impl Iterator<Item = Frame> + '_ {
        let at = |i: usize| Frame::from_pfn(BASE_PFN + i as u64);
        self.slots.iter().enumerate().filter(|(_, v)| v.is_some()).map(move |(i, _)| at(i))
    }
}

impl<T> core::ops::Index<&Frame> for FrameMap<T> {
    type Output = T;
    fn index(&self, frame: &Frame) -> &T {
        self.get(*frame).unwrap_or_else(|| panic!("model: nothing at {frame:?}"))
    }
}

/// Physical memory: the buddy allocator, page-table contents, data-page contents.
pub(super) struct Memory<'a> {
    pub(super) buddy: BuddyAllocator<'a>,
    tables: FrameMap<Box<[u64; ENTRIES_PER_TABLE]>>,
    /// Contents of every user frame (and of the zero page): one word stands for 4 KiB.
    pub(super) contents: FrameMap<u64>,
}

impl TableMemory for Memory<'_> {
    fn read_entry(&self, table: Frame, index: usize) -> Pte {
        Pte::from_bits(self.tables[&table][index])
    }

    fn write_entry(&mut self, table: Frame, index: usize, entry: Pte) {
        let i = FrameMap::<()>::index_of(table);
        self.tables.slots[i].as_mut().expect("model: write_entry to a non-table")[index] = entry.bits();
    }

    fn alloc_table(&mut self) -> Option<Frame> {
        let frame = self.buddy.alloc(Order(0), FrameState::PageTable).ok()?;
        self.tables.insert(frame, Box::new([0; ENTRIES_PER_TABLE]));
        Some(frame)
    }

    fn free_table(&mut self, table: Frame) {
        let contents = self.tables.remove(table).expect("model: free_table of a non-table");
        assert!(contents.iter().all(|&e| e == 0), "model: freeing a non-empty table");
        self.buddy.desc_mut(table).put_ref();
        self.buddy.free(table, Order(0)).expect("model: free_table");
    }
}

impl Memory<'_> {
    /// Returns the number of live page tables.
    pub(super) fn nr_tables(&self) -> usize {
        self.tables.len()
    }
}

/// One simulated process.
pub(super) struct Proc {
    pub(super) pt: PageTable,
    pub(super) vmas: VmaTree,
    pub(super) family: FamilyId,
}

/// The swap area: slot counts, the swap cache, and the "disk".
pub(super) struct Swap {
    pub(super) map: SwapMap,
    pub(super) cache: BTreeMap<u32, Frame>,
    pub(super) disk: HashMap<u32, u64>,
}

/// The simulated memory manager.
pub(super) struct Sim<'a> {
    pub(super) mem: Memory<'a>,
    pub(super) procs: BTreeMap<usize, Proc>,
    pub(super) families: FamilyTable<usize>,
    pub(super) swap: Swap,
    pub(super) zero: Frame,
    /// How many times each decision was carried out (by row name), and other events.
    pub(super) counts: BTreeMap<&'static str, u64>,
    next_id: usize,
}

/// The simulation's answers to the decision table's questions.
struct SimFacts<'s, 'a> {
    sim: &'s Sim<'a>,
}

impl FaultFacts for SimFacts<'_, '_> {
    fn is_zero_page(&self, frame: Frame) -> bool {
        frame == self.sim.zero
    }

    fn frame_use(&self, frame: Frame) -> FrameUse {
        let d = self.sim.mem.buddy.desc(frame);
        let slot_refs = d.has_flags(FrameFlags::SWAP_CACHE).then(|| self.sim.slot_refs(d.private()));
        FrameUse { map_count: d.map_count(), refcount: d.refcount(), slot_refs }
    }

    fn swap_cache(&self, entry: SwapEntry) -> SwapCacheLookup {
        let slot = entry.slot() as u32;
        let Some(&frame) = self.sim.swap.cache.get(&slot) else { return SwapCacheLookup::NotCached };
        let state = self.sim.slot_state(slot);
        match state.page {
            Some(page) if page.is_locked => SwapCacheLookup::Locked,
            _ => SwapCacheLookup::Cached { frame, slot: state },
        }
    }
}

/// Returns the name of the table's row `action` is, for the coverage counts.
fn row_name(action: FaultAction) -> &'static str {
    match action {
        FaultAction::Refuse(_) => "Refuse",
        FaultAction::MapZeroPage { .. } => "MapZeroPage",
        FaultAction::MapZeroedFrame { .. } => "MapZeroedFrame",
        FaultAction::MapImagePage { .. } => "MapImagePage",
        FaultAction::MapFilePage { .. } => "MapFilePage",
        FaultAction::MakeWritable { because: super::WritableBecause::SoleOwner, .. } => "SoleOwner",
        FaultAction::MakeWritable { because: super::WritableBecause::SharedMapping, .. } => "SharedMapping",
        FaultAction::ReplaceZeroPage { .. } => "ReplaceZeroPage",
        FaultAction::CopyOnWrite { .. } => "CopyOnWrite",
        FaultAction::MapSwapCache { flags, .. } if flags.contains(PteFlags::WRITABLE) => "MapSwapCacheWritable",
        FaultAction::MapSwapCache { .. } => "MapSwapCacheCow",
        FaultAction::ReadFromSwap(_) => "ReadFromSwap",
        FaultAction::WaitForIo => "WaitForIo",
        FaultAction::FlushStaleTlb => "FlushStaleTlb",
        FaultAction::CorruptPte(_) => "CorruptPte",
    }
}

/// Returns true if the MMU lets `access` through `pte` without a fault.
fn mmu_allows(pte: Pte, access: Access) -> bool {
    let flags = pte.flags();
    pte.is_present()
        && flags.contains(PteFlags::USER)
        && match access {
            Access::Read => true,
            Access::Write => flags.contains(PteFlags::WRITABLE),
            Access::Exec => !flags.contains(PteFlags::NO_EXECUTE),
        }
}

impl<'a> Sim<'a> {
    /// Creates a machine over the frame table `descs` (of [`NR_FRAMES`] entries).
    pub(super) fn new(descs: &'a mut [FrameDesc]) -> Sim<'a> {
        let mut buddy = BuddyAllocator::new(descs, BASE_PFN);
        buddy.add_free_range(Frame::from_pfn(BASE_PFN), NR_FRAMES).expect("model: free range");
        let zero = buddy.alloc(Order(0), FrameState::Kernel).expect("model: zero page");
        let mut contents = FrameMap::new();
        contents.insert(zero, 0);
        let mem = Memory { buddy, tables: FrameMap::new(), contents };
        let swap = Swap { map: SwapMap::new(NR_SLOTS), cache: BTreeMap::new(), disk: HashMap::new() };
        Sim { mem, procs: BTreeMap::new(), families: FamilyTable::new(), swap, zero, counts: BTreeMap::new(), next_id: 1 }
    }

    /// Creates a process with the [`LAYOUT`], in a new family; returns its id.
    pub(super) fn spawn(&mut self) -> usize {
        let id = self.next_id;
        self.next_id += 1;
        let pt = PageTable::new(&mut self.mem).expect("model: out of frames for a root table");
        let mut vmas = VmaTree::new();
        for (start, nr_pages, prot, flags) in LAYOUT {
            let (start, end) = (VirtAddr::new(start), VirtAddr::new(start + nr_pages * 4096));
            vmas.insert(Vma::new(start, end, prot, flags, Backing::Anonymous)).expect("model: layout");
        }
        let family = self.families.create(id).expect("model: family ids");
        self.procs.insert(id, Proc { pt, vmas, family });
        id
    }

    /// Returns the PTE of `page` in process `id`.
    pub(super) fn pte(&self, id: usize, page: Page) -> Option<Pte> {
        self.procs[&id].pt.entry(&self.mem, page)
    }

    fn set_pte(&mut self, id: usize, page: Page, pte: Pte) {
        let proc = self.procs.get_mut(&id).expect("model: no such process");
        proc.pt.set_entry(&mut self.mem, page, pte).expect("model: out of frames for a table").1.ignore();
    }

    fn family_page(&self, id: usize, page: Page) -> FamilyPage {
        FamilyPage { family: self.procs[&id].family, page }
    }

    /// Returns the references to `slot` (0: free).
    pub(super) fn slot_refs(&self, slot: u32) -> u16 {
        self.swap.map.count(SwapSlot::from_index(slot)).unwrap_or(0)
    }

    /// The swap cache's view of `slot`, as `SwapState::slot_state` in the kernel.
    pub(super) fn slot_state(&self, slot: u32) -> SlotState {
        let page = self.swap.cache.get(&slot).map(|&frame| {
            let d = self.mem.buddy.desc(frame);
            CachedPage {
                map_count: d.map_count(),
                is_locked: d.has_flags(FrameFlags::LOCKED),
                is_dirty: d.has_flags(FrameFlags::DIRTY),
            }
        });
        SlotState::new(self.slot_refs(slot), page)
    }

    /// Performs `access` at `addr` in process `id` (a write stores `value`), faulting
    /// as the MMU would; returns the value read (0 for a write), or the refusal.
    pub(super) fn access(&mut self, id: usize, addr: VirtAddr, access: Access, value: u64) -> Result<u64, String> {
        let page = Page::containing_address(addr);
        for _ in 0..4 {
            let pte = self.pte(id, page);
            if let Some(pte) = pte.filter(|&pte| mmu_allows(pte, access)) {
                return Ok(self.touch(id, page, pte, access, value));
            }
            let vma = self.procs[&id].vmas.find(addr).copied();
            let action = decide(vma.as_ref(), access, pte, &SimFacts { sim: self });
            self.carry_out(id, page, pte, action)?;
        }
        panic!("model: process {id} faults forever at {addr:?}");
    }

    /// The access the MMU lets through: reads the frame, or writes it and sets Dirty.
    fn touch(&mut self, id: usize, page: Page, pte: Pte, access: Access, value: u64) -> u64 {
        if access != Access::Write {
            return self.mem.contents[&pte.frame()];
        }
        self.mem.contents.insert(pte.frame(), value);
        let mut dirty = pte;
        dirty.insert_flags(PteFlags::DIRTY | PteFlags::ACCESSED);
        self.set_pte(id, page, dirty);
        0
    }

    /// Carries out a fault decision (the kernel's `handle_page_fault` and helpers).
    fn carry_out(&mut self, id: usize, page: Page, pte: Option<Pte>, action: FaultAction) -> Result<(), String> {
        let at = self.family_page(id, page);
        *self.counts.entry(row_name(action)).or_default() += 1;
        match action {
            FaultAction::Refuse(why) => return Err(format!("SIGSEGV: {why:?}")),
            FaultAction::MapZeroPage { flags } => self.set_pte(id, page, Pte::new(self.zero, flags)),
            FaultAction::MapZeroedFrame { flags } | FaultAction::ReplaceZeroPage { flags } => {
                let new = self.alloc_user(0);
                self.set_pte(id, page, Pte::new(new, flags));
                self.mem.buddy.desc_mut(new).add_mapping(at);
            }
            FaultAction::MakeWritable { pte, .. } => self.set_pte(id, page, pte),
            FaultAction::CopyOnWrite { flags } => {
                let old = pte.expect("model: a COW fault has a PTE");
                let new = self.alloc_user(self.mem.contents[&old.frame()]);
                self.set_pte(id, page, Pte::new(new, flags));
                self.mem.buddy.desc_mut(new).add_mapping(at);
                self.unmap_frame(old.frame(), at, old.flags().contains(PteFlags::DIRTY));
            }
            FaultAction::MapSwapCache { frame, flags } => {
                let entry = pte.and_then(Pte::as_swap).expect("model: a swap fault has a swap PTE");
                self.set_pte(id, page, Pte::new(frame, flags));
                let d = self.mem.buddy.desc_mut(frame);
                d.get_ref();
                d.add_mapping(at);
                self.put_swap_pte(entry);
            }
            FaultAction::ReadFromSwap(entry) => self.read_into_cache(entry.slot() as u32),
            other => panic!("model: unexpected decision {other:?} at {page:?}"),
        }
        Ok(())
    }

    /// Allocates a user frame holding `contents`, with the allocation's reference.
    fn alloc_user(&mut self, contents: u64) -> Frame {
        let frame = self.mem.buddy.alloc(Order(0), FrameState::User).expect("model: out of frames");
        self.mem.contents.insert(frame, contents);
        frame
    }

    fn free_user(&mut self, frame: Frame) {
        self.mem.contents.remove(frame);
        self.mem.buddy.free(frame, Order(0)).expect("model: free_user");
    }

    /// A PTE at `at` that mapped `frame` is gone (`rmap::unmap` + `put_user_page`).
    fn unmap_frame(&mut self, frame: Frame, at: FamilyPage, is_dirty: bool) {
        let d = self.mem.buddy.desc_mut(frame);
        if is_dirty && d.has_flags(FrameFlags::SWAP_CACHE) {
            d.insert_flags(FrameFlags::DIRTY);
        }
        let map_count = d.remove_mapping(at);
        if d.put_ref() == 0 {
            self.free_user(frame);
            return;
        }
        let (is_cached, slot) = (d.has_flags(FrameFlags::SWAP_CACHE), d.private());
        if map_count == 0 && is_cached {
            self.apply(slot, SlotState::on_last_unmap);
        }
    }

    /// Asks the swap cache's rule `event` about `slot` (which a frame caches),
    /// applies its verdict, and checks that the slot is now in the state the rule
    /// says (`SlotState::after`).
    fn apply(&mut self, slot: u32, event: impl FnOnce(SlotState) -> CacheVerdict) {
        let before = self.slot_state(slot);
        let verdict = event(before);
        if verdict == CacheVerdict::Drop {
            let frame = self.swap.cache[&slot];
            self.cache_remove(slot, frame);
        }
        let after = self.slot_state(slot);
        assert_eq!(after, before.after(verdict), "model: slot {slot} after {verdict:?}");
    }

    fn cache_insert(&mut self, slot: u32, frame: Frame) {
        assert!(self.swap.cache.insert(slot, frame).is_none(), "model: slot {slot} cached twice");
        let d = self.mem.buddy.desc_mut(frame);
        d.insert_flags(FrameFlags::SWAP_CACHE);
        d.set_private(slot);
    }

    /// Takes `frame` out of the cache: drops the cache's slot and frame references.
    fn cache_remove(&mut self, slot: u32, frame: Frame) {
        assert_eq!(self.swap.cache.remove(&slot), Some(frame), "model: slot {slot} not cached by {frame:?}");
        self.swap.map.put(SwapSlot::from_index(slot)).expect("model: the cache's slot reference");
        let d = self.mem.buddy.desc_mut(frame);
        d.remove_flags(FrameFlags::SWAP_CACHE | FrameFlags::DIRTY);
        d.set_private(0);
        if d.put_ref() == 0 {
            self.free_user(frame);
        }
    }

    /// A swap PTE naming `entry` went away (`swap::put_swap_pte`).
    fn put_swap_pte(&mut self, entry: SwapEntry) {
        let slot = entry.slot() as u32;
        self.swap.map.put(SwapSlot::from_index(slot)).expect("model: put_swap_pte");
        if self.swap.cache.contains_key(&slot) {
            self.apply(slot, SlotState::on_swap_pte_dropped);
        }
    }

    /// Reads `slot` into a new frame in the swap cache (`read_into_cache`).
    fn read_into_cache(&mut self, slot: u32) {
        if self.swap.cache.contains_key(&slot) {
            return;
        }
        let frame = self.alloc_user(self.swap.disk[&slot]);
        self.swap.map.dup(SwapSlot::from_index(slot)).expect("model: reading a free slot");
        self.cache_insert(slot, frame);
    }

    /// Readahead of `slot`: read it into the cache if it holds a page not cached,
    /// keep it there if the readahead rule says so. Returns true if it was read.
    pub(super) fn read_ahead(&mut self, slot: u32) -> bool {
        if self.slot_refs(slot) == 0 || self.swap.cache.contains_key(&slot) {
            return false;
        }
        self.read_into_cache(slot);
        self.apply(slot, |state| state.on_readahead_done(true));
        true
    }

    /// Swaps `frame` out (`swap::evict`): every PTE becomes a swap entry, the page
    /// is written if the slot does not hold it, the frame leaves if nobody mapped
    /// it again. Returns false if it is not an evictable page or swap is full.
    pub(super) fn evict(&mut self, frame: Frame) -> bool {
        let d = self.mem.buddy.desc_mut(frame);
        if frame == self.zero || d.state() != FrameState::User || d.refcount() == 0 {
            return false;
        }
        d.insert_flags(FrameFlags::LOCKED);
        let slot = if d.has_flags(FrameFlags::SWAP_CACHE) {
            d.private()
        } else {
            let Some(slot) = self.swap.map.alloc() else {
                self.mem.buddy.desc_mut(frame).remove_flags(FrameFlags::LOCKED);
                return false;
            };
            self.cache_insert(slot.index(), frame);
            let d = self.mem.buddy.desc_mut(frame);
            d.get_ref();
            d.insert_flags(FrameFlags::DIRTY);
            slot.index()
        };
        let entry = SwapEntry::new(0, u64::from(slot));
        let mut is_dirty = false;
        if let Some(at) = self.mem.buddy.desc(frame).family_page() {
            for id in self.families.members(at.family).to_vec() {
                let Some(pte) = self.pte(id, at.page).filter(|p| p.is_present() && p.frame() == frame) else { continue };
                self.set_pte(id, at.page, Pte::swap(entry));
                self.swap.map.dup(SwapSlot::from_index(slot)).expect("model: slot count");
                is_dirty |= pte.flags().contains(PteFlags::DIRTY);
                let d = self.mem.buddy.desc_mut(frame);
                d.remove_mapping(at);
                d.put_ref();
            }
        }
        let d = self.mem.buddy.desc_mut(frame);
        is_dirty |= d.has_flags(FrameFlags::DIRTY);
        d.remove_flags(FrameFlags::DIRTY);
        if is_dirty {
            self.swap.disk.insert(slot, self.mem.contents[&frame]);
        }
        self.mem.buddy.desc_mut(frame).remove_flags(FrameFlags::LOCKED);
        self.apply(slot, SlotState::on_eviction_done);
        true
    }

    /// Duplicates process `id` copy-on-write (`cow::fork`); returns the child's id.
    pub(super) fn fork(&mut self, id: usize) -> usize {
        let vmas: Vec<Vma> = self.procs[&id].vmas.iter().copied().collect();
        for vma in vmas.iter().filter(|v| v.flags.is_shared()) {
            for i in 0..vma.nr_pages() {
                self.populate(id, vma.start + i * 4096);
            }
        }
        let child_id = self.next_id;
        self.next_id += 1;
        let family = self.procs[&id].family;
        self.families.join(family, child_id);
        let mut child_pt = PageTable::new(&mut self.mem).expect("model: out of frames for a root table");
        let mut batch = FlushBatch::new();
        let Sim { mem, procs, swap, zero, .. } = self;
        let parent = procs.get_mut(&id).expect("model: no such process");
        for vma in &vmas {
            let is_shared = vma.flags.is_shared();
            let page = Page::containing_address(vma.start);
            let mut mappings = Vec::new();
            parent
                .pt
                .fork_range(mem, &mut child_pt, page, vma.nr_pages(), &mut batch, |leaf| {
                    if !leaf.pte.is_present() {
                        let entry = leaf.pte.as_swap().expect("model: fork of a non-swap, non-present PTE");
                        swap.map.dup(SwapSlot::from_index(entry.slot() as u32)).ok()?;
                        return Some((leaf.pte, leaf.pte));
                    }
                    let mut pte = leaf.pte;
                    pte.set_flags(fork_flags(pte.flags(), is_shared));
                    if pte.frame() != *zero {
                        mappings.push((pte.frame(), Page::containing_address(leaf.addr)));
                    }
                    Some((pte, pte))
                })
                .expect("model: fork_range");
            for (frame, page) in mappings {
                let d = mem.buddy.desc_mut(frame);
                d.get_ref();
                d.add_mapping(FamilyPage { family, page });
            }
        }
        drop(batch); // nothing to flush: the simulated MMU has no TLB
        let vmas = parent.vmas.clone();
        self.procs.insert(child_id, Proc { pt: child_pt, vmas, family });
        child_id
    }

    /// Gives the page at `addr` of a shared VMA its frame (`fault::populate_page`).
    fn populate(&mut self, id: usize, addr: VirtAddr) {
        let page = Page::containing_address(addr);
        if self.pte(id, page).is_some_and(|p| !p.is_unused()) {
            return;
        }
        let vma = *self.procs[&id].vmas.find(addr).expect("model: populate outside a VMA");
        let action = super::decide_empty(&vma, Access::Write);
        self.carry_out(id, page, None, action).expect("model: populate");
    }

    /// Unmaps the page at `addr` of process `id` (`munmap` of one page).
    pub(super) fn munmap(&mut self, id: usize, addr: VirtAddr) {
        let page = Page::containing_address(addr);
        let proc = self.procs.get_mut(&id).expect("model: no such process");
        proc.vmas.unmap_range(addr, addr + 4096).expect("model: munmap range");
        self.drop_pte(id, page);
    }

    /// Changes the protection of the page at `addr` of process `id` (`mprotect` of
    /// one page); false if the page is not mapped (ENOMEM, nothing changes).
    pub(super) fn mprotect(&mut self, id: usize, addr: VirtAddr, prot: VmProt) -> bool {
        let proc = self.procs.get_mut(&id).expect("model: no such process");
        let Ok(changed) = proc.vmas.protect_range(addr, addr + 4096, prot) else { return false };
        for piece in changed {
            for i in 0..piece.nr_pages() {
                let page = Page::containing_address(piece.start + i * 4096);
                let Some(mut pte) = self.pte(id, page).filter(|p| p.is_present()) else { continue };
                pte.set_flags(super::protect_flags(pte.flags(), prot, piece.flags.is_shared()));
                self.set_pte(id, page, pte);
            }
        }
        true
    }

    /// Clears the PTE of `page` in process `id`, dropping what it held.
    fn drop_pte(&mut self, id: usize, page: Page) {
        let Some(pte) = self.pte(id, page).filter(|p| !p.is_unused()) else { return };
        let at = self.family_page(id, page);
        self.set_pte(id, page, Pte::UNUSED);
        match pte.as_swap() {
            Some(entry) => self.put_swap_pte(entry),
            None if pte.frame() == self.zero => {}
            None => self.unmap_frame(pte.frame(), at, pte.flags().contains(PteFlags::DIRTY)),
        }
    }

    /// Ends process `id`: every page dropped, its tables freed, it leaves its family.
    pub(super) fn exit(&mut self, id: usize) {
        for (start, nr_pages, _, _) in LAYOUT {
            for i in 0..nr_pages {
                self.drop_pte(id, Page::containing_address(VirtAddr::new(start + i * 4096)));
            }
        }
        let mut proc = self.procs.remove(&id).expect("model: no such process");
        drop(proc.pt.free_user_tables(&mut self.mem, |leaf| panic!("model: a leaf left at exit: {leaf:?}")));
        proc.pt.free_root(&mut self.mem);
        self.families.leave(proc.family, |&member| member == id);
    }
}
