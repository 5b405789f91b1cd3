//! Fork families, and the (family, page) word a mapped user frame keeps in its
//! descriptor: the pure part of the anonymous reverse map (the kernel's half, which
//! walks the page tables, is `kernel/src/mm/rmap.rs`).
//!
//! A private anonymous page keeps its virtual address in every process that
//! inherits it by `fork` (this kernel has no `mremap`), so "who maps this frame?"
//! needs only two facts per frame, as Linux's `anon_vma` + `page->index`:
//! - **which family**: the address spaces that can share anonymous frames, i.e. a
//!   process created by exec/spawn and every descendant it forked ([`FamilyId`]);
//! - **which page**: the frame's virtual page, the same in every member.
//!
//! Together they are a [`FamilyPage`], packed into one `u64` of the frame
//! descriptor (`FrameDesc::family_page`):
//!
//! ```text
//!  63            36 35                                 0
//! +----------------+------------------------------------+
//! | family id (28) |  virtual page number (36 bits)     |      0 = not mapped
//! +----------------+------------------------------------+
//! ```
//! The kernel keeps its families in a [`FamilyTable`]: id -> members. An id is an
//! index into the table, so finding a family is one array access; a family dies
//! with its last member and its id is handed out again.

use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroU32;

use crate::addr::{Page, VirtAddr};

/// Names a fork family: a small non-zero integer, at most [`FamilyId::MAX`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FamilyId(NonZeroU32);

impl FamilyId {
    /// Bits a family id takes in a [`FamilyPage`] word.
    pub const BITS: u32 = 28;
    /// The largest family id.
    pub const MAX: u32 = (1 << Self::BITS) - 1;

    /// Returns the id `n`, or `None` if `n` is 0 or above [`FamilyId::MAX`].
    pub const fn new(n: u32) -> Option<Self> {
        match NonZeroU32::new(n) {
            Some(n) if n.get() <= Self::MAX => Some(Self(n)),
            _ => None,
        }
    }

    /// Returns the id as a number.
    pub const fn get(self) -> u32 {
        self.0.get()
    }

    /// Returns the table index of this id.
    fn index(self) -> usize {
        self.0.get() as usize - 1
    }
}

impl fmt::Debug for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FamilyId({})", self.0)
    }
}

/// Where a mapped anonymous frame is: its fork family and its virtual page. Every
/// PTE that maps the frame is in a member of `family`, at `page`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FamilyPage {
    /// The family whose members may map the frame.
    pub family: FamilyId,
    /// The frame's virtual page, in every member.
    pub page: Page,
}

impl FamilyPage {
    /// Bits the virtual page number takes: 48-bit addresses minus the 12-bit offset.
    pub const VPN_BITS: u32 = 36;
    const VPN_MASK: u64 = (1 << Self::VPN_BITS) - 1;

    /// Returns the packed word (never 0).
    pub const fn pack(self) -> u64 {
        let vpn = (self.page.start_address().as_u64() >> 12) & Self::VPN_MASK;
        ((self.family.get() as u64) << Self::VPN_BITS) | vpn
    }

    /// Unpacks a word made by [`pack`](Self::pack); 0 (no place) gives `None`.
    pub const fn unpack(word: u64) -> Option<Self> {
        let Some(family) = FamilyId::new((word >> Self::VPN_BITS) as u32) else {
            return None;
        };
        // Bit 47 of the address is extended into bits 63..48: the address is canonical.
        let page = Page::containing_address(VirtAddr::new_truncate((word & Self::VPN_MASK) << 12));
        Some(Self { family, page })
    }
}

/// Fork families and their members, by id.
///
/// A family is created with its first member ([`create`](Self::create)), others
/// [`join`](Self::join) it, and it dies when its last member
/// [`leave`](Self::leave)s; its id is then free for the next `create`. The kernel
/// guarantees no frame names a dead family: a frame names a family only while a
/// PTE maps it, and a space leaves only after its last PTE is gone.
#[derive(Debug, Default)]
pub struct FamilyTable<M> {
    /// Members of family `index + 1`; empty for a free id.
    families: Vec<Vec<M>>,
    /// Ids of dead families, to hand out again (last freed first).
    free_ids: Vec<FamilyId>,
}

impl<M> FamilyTable<M> {
    /// Creates an empty table.
    pub const fn new() -> Self {
        Self { families: Vec::new(), free_ids: Vec::new() }
    }

    /// Creates a family whose only member is `member`; returns its id, or `None` if
    /// [`FamilyId::MAX`] families are alive.
    pub fn create(&mut self, member: M) -> Option<FamilyId> {
        let id = match self.free_ids.pop() {
            Some(id) => id,
            None => {
                let id = FamilyId::new(u32::try_from(self.families.len() + 1).ok()?)?;
                self.families.push(Vec::new());
                id
            }
        };
        self.families[id.index()].push(member);
        Some(id)
    }

    /// Adds `member` to the live family `id`.
    ///
    /// # Panics
    /// If `id` is not a live family.
    pub fn join(&mut self, id: FamilyId, member: M) {
        match self.families.get_mut(id.index()) {
            Some(members) if !members.is_empty() => members.push(member),
            _ => panic!("FamilyTable::join: {id:?} is not a live family"),
        }
    }

    /// Removes the first member of family `id` for which `is_it_fn` is true. Returns
    /// true if that was the last member: the family is dead and its id free.
    ///
    /// # Panics
    /// If family `id` has no such member.
    pub fn leave(&mut self, id: FamilyId, is_it_fn: impl FnMut(&M) -> bool) -> bool {
        let members = self.families.get_mut(id.index()).unwrap_or_else(|| panic!("FamilyTable::leave: no {id:?}"));
        let i = members.iter().position(is_it_fn).unwrap_or_else(|| panic!("FamilyTable::leave: not a member of {id:?}"));
        members.swap_remove(i);
        if !members.is_empty() {
            return false;
        }
        members.shrink_to_fit();
        self.free_ids.push(id);
        true
    }

    /// Returns the members of family `id` (none if it is dead).
    pub fn members(&self, id: FamilyId) -> &[M] {
        self.families.get(id.index()).map_or(&[], Vec::as_slice)
    }

    /// Returns every live family with its members, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (FamilyId, &[M])> {
        self.families.iter().enumerate().filter(|(_, m)| !m.is_empty()).map(|(i, m)| {
            let id = FamilyId::new(i as u32 + 1).expect("FamilyTable::iter: ids fit");
            (id, m.as_slice())
        })
    }

    /// Returns the number of live families.
    pub fn nr_families(&self) -> usize {
        self.families.len() - self.free_ids.len()
    }

    /// Checks that the free ids are exactly the empty slots, each listed once.
    ///
    /// # Panics
    /// On a violation, naming it.
    pub fn check_invariants(&self) {
        let mut is_listed = alloc::vec![false; self.families.len()];
        for id in &self.free_ids {
            assert!(self.families[id.index()].is_empty(), "FamilyTable: free {id:?} has members");
            assert!(!is_listed[id.index()], "FamilyTable: {id:?} freed twice");
            is_listed[id.index()] = true;
        }
        for (i, members) in self.families.iter().enumerate() {
            assert!(members.is_empty() == is_listed[i], "FamilyTable: id {} is empty but not free", i + 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::xorshift::XorShift;

    fn page(addr: u64) -> Page {
        Page::containing_address(VirtAddr::new(addr))
    }

    #[test]
    fn family_ids_are_small_and_non_zero() {
        assert_eq!(FamilyId::new(0), None);
        assert_eq!(FamilyId::new(FamilyId::MAX + 1), None);
        assert_eq!(FamilyId::new(FamilyId::MAX).map(FamilyId::get), Some(FamilyId::MAX));
    }

    #[test]
    fn family_page_round_trips_through_its_word() {
        let max = FamilyId::new(FamilyId::MAX).unwrap();
        let one = FamilyId::new(1).unwrap();
        for (family, addr) in [
            (one, 0x1000),
            (one, 0x0000_7fff_ffff_f000), // the top user page: all 35 user bits set
            (max, 0x40_0000),
            (max, 0xffff_ffff_8000_0000), // an upper-half page comes back canonical
            (FamilyId::new(0x123_4567).unwrap(), 0x7eff_ffff_8000),
        ] {
            let at = FamilyPage { family, page: page(addr) };
            let word = at.pack();
            assert_ne!(word, 0);
            assert_eq!(FamilyPage::unpack(word), Some(at), "{at:?} -> {word:#x}");
        }
        assert_eq!(FamilyPage::unpack(0), None);
        assert_eq!(FamilyPage { family: max, page: page(0) }.pack(), u64::from(FamilyId::MAX) << 36);
    }

    #[test]
    fn a_family_dies_with_its_last_member_and_its_id_is_reused() {
        let mut table = FamilyTable::new();
        let a = table.create(1u64).unwrap();
        let b = table.create(2).unwrap();
        assert_ne!(a, b);
        table.join(a, 3);
        assert_eq!(table.members(a), [1, 3]);
        assert!(!table.leave(a, |&m| m == 1));
        assert_eq!(table.members(a), [3]);
        assert!(table.leave(a, |&m| m == 3));
        assert_eq!((table.members(a), table.nr_families()), (&[][..], 1));
        table.check_invariants();
        assert_eq!(table.create(4), Some(a));
        assert_eq!(table.iter().map(|(id, m)| (id, m.to_vec())).collect::<Vec<_>>(), [(a, vec![4]), (b, vec![2])]);
    }

    #[test]
    #[should_panic(expected = "not a live family")]
    fn joining_a_dead_family_panics() {
        let mut table = FamilyTable::new();
        let a = table.create(1u64).unwrap();
        table.leave(a, |_| true);
        table.join(a, 2);
    }

    /// Random create/join/leave against a map of id -> members.
    #[test]
    fn random_membership_matches_a_reference_model() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut table = FamilyTable::new();
        let mut model: BTreeMap<FamilyId, Vec<u64>> = BTreeMap::new();
        let (mut next_member, mut max_live) = (0u64, 0);
        for _ in 0..20_000 {
            next_member += 1;
            let live: Vec<FamilyId> = model.keys().copied().collect();
            match rng.below(3) {
                0 => {
                    let id = table.create(next_member).unwrap();
                    assert!(model.insert(id, vec![next_member]).is_none(), "{id:?} handed out while alive");
                }
                1 if !live.is_empty() => {
                    let id = live[rng.below(live.len() as u64) as usize];
                    table.join(id, next_member);
                    model.get_mut(&id).unwrap().push(next_member);
                }
                _ if !live.is_empty() => {
                    let id = live[rng.below(live.len() as u64) as usize];
                    let members = model.get_mut(&id).unwrap();
                    let gone = members.remove(rng.below(members.len() as u64) as usize);
                    let is_dead = members.is_empty();
                    assert_eq!(table.leave(id, |&m| m == gone), is_dead);
                    if is_dead {
                        model.remove(&id);
                    }
                }
                _ => {}
            }
            table.check_invariants();
            max_live = max_live.max(model.len());
            assert_eq!(table.nr_families(), model.len());
            for (id, members) in table.iter() {
                let mut sorted = members.to_vec();
                sorted.sort_unstable();
                assert_eq!(Some(&sorted), model.get(&id));
            }
        }
        // Ids are reused: never more slots than families alive at once.
        assert_eq!(table.families.len(), max_live);
    }
}
