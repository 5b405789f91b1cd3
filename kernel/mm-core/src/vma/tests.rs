//! Unit tests of [`super::VmaTree`] and a randomized test against a page-by-page model.

use super::*;
use std::collections::BTreeMap as StdBTreeMap;
use std::format;
use std::string::ToString;
use std::vec;
use crate::xorshift::XorShift;

/// Returns the address of page `n` (in units of `PAGE_SIZE`).
fn page(n: u64) -> VirtAddr {
    VirtAddr::new(n * PAGE_SIZE)
}

/// Returns a private anonymous VMA over pages `[first, end)`.
fn anon(first: u64, end: u64, prot: VmProt) -> Vma {
    Vma::anonymous(page(first), page(end), prot)
}

/// Returns the `(start page, end page, prot)` of every VMA, for compact assertions.
fn layout(tree: &VmaTree) -> Vec<(u64, u64, VmProt)> {
    tree.iter().map(|v| (v.start.as_u64() / PAGE_SIZE, v.end.as_u64() / PAGE_SIZE, v.prot)).collect()
}

const RW: VmProt = VmProt::READ_WRITE;
const RO: VmProt = VmProt::READ;

#[test]
fn find_is_start_inclusive_and_end_exclusive() {
    let mut tree = VmaTree::new();
    tree.insert(anon(16, 18, RW)).unwrap();
    assert!(tree.find(page(16)).is_some(), "start is inclusive");
    assert!(tree.find(VirtAddr::new(page(16).as_u64() - 1)).is_none(), "byte before start");
    assert!(tree.find(page(18)).is_none(), "end is exclusive");
    assert!(tree.find(VirtAddr::new(page(18).as_u64() - 1)).is_some(), "last byte is inside");
    assert!(VmaTree::new().find(page(1)).is_none());
}

#[test]
fn insert_rejects_bad_ranges_and_leaves_the_tree_unchanged() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 20, RW)).unwrap();
    let before = layout(&tree);
    assert_eq!(tree.insert(anon(19, 21, RO)), Err(VmaError::Overlap));
    assert_eq!(tree.insert(anon(5, 11, RO)), Err(VmaError::Overlap));
    assert_eq!(tree.insert(anon(12, 13, RO)), Err(VmaError::Overlap));
    assert_eq!(tree.insert(anon(0, 30, RO)), Err(VmaError::Overlap));
    assert_eq!(tree.insert(anon(30, 30, RO)), Err(VmaError::Empty));
    assert_eq!(tree.insert(anon(31, 30, RO)), Err(VmaError::OutOfRange));
    let unaligned = Vma::anonymous(VirtAddr::new(0x1_0001), page(40), RO);
    assert_eq!(tree.insert(unaligned), Err(VmaError::Unaligned));
    assert_eq!(layout(&tree), before);
    tree.check_invariants();
}

#[test]
fn insert_merges_compatible_neighbours_only() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 12, RW)).unwrap();
    tree.insert(anon(14, 16, RW)).unwrap();
    tree.insert(anon(12, 14, RW)).unwrap();
    assert_eq!(layout(&tree), vec![(10, 16, RW)], "filling the hole joins all three");
    tree.insert(anon(16, 17, RO)).unwrap();
    let stack = Vma::new(page(17), page(18), RW, VmFlags::STACK | VmFlags::GROWS_DOWN, Backing::Anonymous);
    tree.insert(stack).unwrap();
    assert_eq!(tree.len(), 3, "different protection or flags stay apart");
    tree.check_invariants();
}

#[test]
fn image_vmas_merge_only_when_offsets_are_contiguous() {
    let image =
        |first, end, id, offset| Vma::new(page(first), page(end), RO, VmFlags::empty(), Backing::Image { id, offset });
    let mut tree = VmaTree::new();
    tree.insert(image(0x400, 0x402, 7, 0)).unwrap();
    tree.insert(image(0x402, 0x403, 7, 2 * PAGE_SIZE)).unwrap();
    assert_eq!(tree.len(), 1);
    tree.insert(image(0x403, 0x404, 7, 9 * PAGE_SIZE)).unwrap();
    tree.insert(image(0x404, 0x405, 8, 10 * PAGE_SIZE)).unwrap();
    assert_eq!(tree.len(), 3, "a jump in offset or another image does not merge");
    tree.check_invariants();
}

#[test]
fn split_at_cuts_a_vma_and_merge_around_rejoins_it() {
    let mut tree = VmaTree::new();
    let image = Vma::new(page(0x400), page(0x408), RO, VmFlags::empty(), Backing::Image { id: 1, offset: 0x1000 });
    tree.insert(image).unwrap();
    assert_eq!(tree.split_at(page(0x403)), Ok(()));
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.find(page(0x405)).unwrap().backing, Backing::Image { id: 1, offset: 0x4000 });
    assert_eq!(tree.split_at(page(0x403)), Ok(()), "splitting at a boundary is a no-op");
    assert_eq!(tree.len(), 2);
    assert_eq!(tree.split_at(page(0x409)), Err(VmaError::NotFound));
    assert_eq!(tree.split_at(VirtAddr::new(0x403_001)), Err(VmaError::Unaligned));
    assert!(tree.merge_around(page(0x403)));
    assert!(!tree.merge_around(page(0x403)));
    assert_eq!(tree.iter().copied().collect::<Vec<_>>(), vec![image]);
    tree.check_invariants();
}

#[test]
fn unmapping_the_middle_punches_a_hole() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 20, RW)).unwrap();
    let removed = tree.unmap_range(page(13), page(15)).unwrap();
    assert_eq!(removed, vec![anon(13, 15, RW)]);
    assert_eq!(layout(&tree), vec![(10, 13, RW), (15, 20, RW)]);
    assert!(tree.find(page(14)).is_none());
    tree.check_invariants();
}

#[test]
fn unmapping_across_vmas_returns_the_clipped_pieces() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 14, RW)).unwrap();
    tree.insert(anon(14, 16, RO)).unwrap();
    tree.insert(anon(18, 22, RW)).unwrap();
    let removed = tree.unmap_range(page(12), page(20)).unwrap();
    assert_eq!(removed, vec![anon(12, 14, RW), anon(14, 16, RO), anon(18, 20, RW)]);
    assert_eq!(layout(&tree), vec![(10, 12, RW), (20, 22, RW)]);
    tree.check_invariants();
}

#[test]
fn unmapping_a_hole_succeeds_and_removes_nothing() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 12, RW)).unwrap();
    assert_eq!(tree.unmap_range(page(20), page(30)), Ok(Vec::new()));
    assert_eq!(tree.unmap_range(page(20), page(20)), Err(VmaError::Empty));
    assert_eq!(tree.unmap_range(page(20), VirtAddr::new(0x1e_001)), Err(VmaError::Unaligned));
    assert_eq!(tree.len(), 1);
}

#[test]
fn protecting_the_middle_and_back_merges_into_one_vma() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 20, RW)).unwrap();
    let changed = tree.protect_range(page(13), page(15), RO).unwrap();
    assert_eq!(changed, vec![anon(13, 15, RW)], "pieces come back with their old protection");
    assert_eq!(layout(&tree), vec![(10, 13, RW), (13, 15, RO), (15, 20, RW)]);
    tree.check_invariants();
    let changed = tree.protect_range(page(13), page(15), RW).unwrap();
    assert_eq!(changed, vec![anon(13, 15, RO)]);
    assert_eq!(layout(&tree), vec![(10, 20, RW)]);
    tree.check_invariants();
}

#[test]
fn protect_reports_only_pieces_whose_protection_changed() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 12, RO)).unwrap();
    tree.insert(anon(12, 14, RW)).unwrap();
    let changed = tree.protect_range(page(11), page(14), RO).unwrap();
    assert_eq!(changed, vec![anon(12, 14, RW)]);
    assert_eq!(layout(&tree), vec![(10, 14, RO)]);
    assert_eq!(tree.protect_range(page(10), page(14), RO), Ok(Vec::new()));
    tree.check_invariants();
}

#[test]
fn protect_of_a_range_with_a_hole_fails_and_changes_nothing() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 12, RW)).unwrap();
    tree.insert(anon(13, 15, RW)).unwrap();
    let before = layout(&tree);
    assert_eq!(tree.protect_range(page(11), page(14), RO), Err(VmaError::NotFound));
    assert_eq!(tree.protect_range(page(9), page(11), RO), Err(VmaError::NotFound));
    assert_eq!(tree.protect_range(page(14), page(16), RO), Err(VmaError::NotFound));
    assert_eq!(layout(&tree), before);
    tree.check_invariants();
}

#[test]
fn gap_search_takes_the_highest_fit_below_existing_vmas() {
    let mut tree = VmaTree::new();
    let (lo, hi) = (page(0x100), page(0x200));
    assert_eq!(tree.find_gap_top_down(4 * PAGE_SIZE, PAGE_SIZE, lo, hi), Some(page(0x1fc)));
    tree.insert(anon(0x1f0, 0x200, RW)).unwrap();
    tree.insert(anon(0x1e0, 0x1ee, RW)).unwrap();
    // The two-page hole at 0x1ee is too small for four pages but fits two.
    assert_eq!(tree.find_gap_top_down(4 * PAGE_SIZE, PAGE_SIZE, lo, hi), Some(page(0x1dc)));
    assert_eq!(tree.find_gap_top_down(2 * PAGE_SIZE, PAGE_SIZE, lo, hi), Some(page(0x1ee)));
    // Alignment to 16 pages skips down to the next 64 KiB boundary that fits.
    assert_eq!(tree.find_gap_top_down(PAGE_SIZE, 16 * PAGE_SIZE, lo, hi), Some(page(0x1d0)));
}

#[test]
fn gap_search_respects_its_limits() {
    let mut tree = VmaTree::new();
    tree.insert(anon(0x110, 0x1f0, RW)).unwrap();
    let (lo, hi) = (page(0x100), page(0x200));
    assert_eq!(tree.find_gap_top_down(16 * PAGE_SIZE, PAGE_SIZE, lo, hi), Some(page(0x1f0)));
    assert_eq!(tree.find_gap_top_down(16 * PAGE_SIZE, PAGE_SIZE, lo, page(0x1ff)), Some(page(0x100)));
    assert_eq!(tree.find_gap_top_down(17 * PAGE_SIZE, PAGE_SIZE, lo, hi), None);
    assert_eq!(tree.find_gap_top_down(PAGE_SIZE, PAGE_SIZE, page(0x120), page(0x1e0)), None);
    assert_eq!(tree.find_gap_top_down(0, PAGE_SIZE, lo, hi), None, "zero length");
    assert_eq!(tree.find_gap_top_down(100, PAGE_SIZE, lo, hi), None, "unaligned length");
    assert_eq!(tree.find_gap_top_down(PAGE_SIZE, 3 * PAGE_SIZE, lo, hi), None, "align not a power of two");
    assert_eq!(tree.find_gap_top_down(PAGE_SIZE, PAGE_SIZE, hi, lo), None, "inverted limits");
    let user_top = VirtAddr::new(0x7fff_ffff_f000);
    assert_eq!(tree.find_gap_top_down(PAGE_SIZE, PAGE_SIZE, lo, user_top), Some(page(0x7_ffff_fffe)));
}

#[test]
fn is_range_free_sees_partial_overlaps() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 20, RW)).unwrap();
    assert!(tree.is_range_free(page(0), page(10)));
    assert!(tree.is_range_free(page(20), page(30)));
    assert!(!tree.is_range_free(page(19), page(21)));
    assert!(!tree.is_range_free(page(5), page(11)));
    assert!(!tree.is_range_free(page(12), page(13)));
    assert!(!tree.is_range_free(page(0), page(30)));
}

#[test]
fn display_looks_like_proc_maps() {
    let mut tree = VmaTree::new();
    let code = Backing::Image { id: 3, offset: 0x1000 };
    tree.insert(Vma::new(page(0x400), page(0x402), VmProt::READ_EXEC, VmFlags::empty(), code)).unwrap();
    tree.insert(Vma::new(page(0x600), page(0x601), RW, VmFlags::HEAP, Backing::Anonymous)).unwrap();
    tree.insert(Vma::new(page(0x700), page(0x702), RW, VmFlags::SHARED, Backing::Anonymous)).unwrap();
    let stack = VmFlags::STACK | VmFlags::GROWS_DOWN;
    tree.insert(Vma::new(page(0x7_ffff_fffd), page(0x7_ffff_ffff), RW, stack, Backing::Anonymous)).unwrap();
    let expected = "\
0000000000400000-0000000000402000 r-xp image3@0x1000
0000000000600000-0000000000601000 rw-p anon [heap]
0000000000700000-0000000000702000 rw-s anon
00007fffffffd000-00007ffffffff000 rw-p anon [stack]
";
    assert_eq!(tree.to_string(), expected);
    assert_eq!(anon(0x400, 0x402, VmProt::NONE).to_string(), "0000000000400000-0000000000402000 ---p anon");
    assert_eq!(format!("{:?}", VmFlags::SHARED | VmFlags::HEAP), "VmFlags(SHARED | HEAP)");
}

// ---------------------------------------------------------------------------
// Randomized test: a page-by-page reference model.

/// The attributes the model keeps for one mapped page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PageAttrs {
    prot: VmProt,
    flags: VmFlags,
    /// The backing of this page alone (an image offset is this page's offset).
    backing: Backing,
}

/// The reference model: page number -> attributes, one entry per mapped page.
type Model = StdBTreeMap<u64, PageAttrs>;


/// First page number of the playground and its size in pages.
const BASE_PAGE: u64 = 0x400;
const NR_PAGES: u64 = 64;

/// Returns the VMAs the model says the tree must hold: maximal runs of mergeable pages.
fn expected_vmas(model: &Model) -> Vec<Vma> {
    let mut vmas: Vec<Vma> = Vec::new();
    for (&n, attrs) in model {
        let next = Vma::new(page(n), page(n + 1), attrs.prot, attrs.flags, attrs.backing);
        match vmas.last_mut() {
            Some(last) if last.can_merge_with(&next) => last.end = next.end,
            _ => vmas.push(next),
        }
    }
    vmas
}

/// Expands VMAs into the model's page-by-page form.
fn pages_of(vmas: &[Vma]) -> Model {
    let mut pages = Model::new();
    for vma in vmas {
        for i in 0..vma.nr_pages() {
            let attrs = PageAttrs { prot: vma.prot, flags: vma.flags, backing: vma.backing.advanced_by(i * PAGE_SIZE) };
            pages.insert(vma.start.as_u64() / PAGE_SIZE + i, attrs);
        }
    }
    pages
}

/// Returns the highest fit by trying every aligned start, top down.
fn brute_force_gap(model: &Model, nr_pages: u64, align_pages: u64, lo: u64, hi: u64) -> Option<VirtAddr> {
    (lo..=hi.checked_sub(nr_pages)?)
        .rev()
        .filter(|first| first % align_pages == 0)
        .find(|first| (*first..first + nr_pages).all(|n| !model.contains_key(&n)))
        .map(page)
}

/// Picks a random range of pages, mostly inside the playground.
fn random_range(rng: &mut XorShift) -> (u64, u64) {
    let first = BASE_PAGE - 4 + rng.below(NR_PAGES + 8);
    (first, first + 1 + rng.below(12))
}

fn random_insert(tree: &mut VmaTree, model: &mut Model, rng: &mut XorShift) {
    let (first, end) = random_range(rng);
    let prot = VmProt::from_bits_truncate(rng.below(8) as u8);
    let flags = if rng.below(4) == 0 { VmFlags::SHARED } else { VmFlags::empty() };
    let backing = match rng.below(3) {
        0 => Backing::Anonymous,
        1 => Backing::Image { id: 1, offset: first * PAGE_SIZE },
        _ => Backing::Image { id: 1 + rng.below(2) as u32, offset: rng.below(4) * PAGE_SIZE },
    };
    let vma = Vma::new(page(first), page(end), prot, flags, backing);
    let is_free = (first..end).all(|n| !model.contains_key(&n));
    let result = tree.insert(vma);
    if is_free {
        assert_eq!(result, Ok(()));
        model.extend(pages_of(&[vma]));
    } else {
        assert_eq!(result, Err(VmaError::Overlap));
    }
}

fn random_unmap(tree: &mut VmaTree, model: &mut Model, rng: &mut XorShift) {
    let (first, end) = random_range(rng);
    let removed = tree.unmap_range(page(first), page(end)).unwrap();
    let expected: Model = model.range(first..end).map(|(&n, &a)| (n, a)).collect();
    assert_eq!(pages_of(&removed), expected, "unmap_range returned the wrong pieces");
    model.retain(|n, _| !(first..end).contains(n));
}

fn random_protect(tree: &mut VmaTree, model: &mut Model, rng: &mut XorShift) {
    let (first, end) = random_range(rng);
    let prot = VmProt::from_bits_truncate(rng.below(8) as u8);
    let result = tree.protect_range(page(first), page(end), prot);
    if !(first..end).all(|n| model.contains_key(&n)) {
        assert_eq!(result, Err(VmaError::NotFound));
        return;
    }
    let changed = result.unwrap();
    let expected: Model = model.range(first..end).filter(|(_, a)| a.prot != prot).map(|(&n, &a)| (n, a)).collect();
    assert_eq!(pages_of(&changed), expected, "protect_range returned the wrong pieces");
    for n in first..end {
        model.get_mut(&n).unwrap().prot = prot;
    }
}

/// Checks the queries (`find`, `is_range_free`, `find_gap_top_down`) against the model.
fn check_queries(tree: &VmaTree, model: &Model, rng: &mut XorShift) {
    let n = BASE_PAGE - 2 + rng.below(NR_PAGES + 4);
    let addr = page(n) + rng.below(PAGE_SIZE);
    let found = tree.find(addr).map(|v| v.prot);
    assert_eq!(found, model.get(&n).map(|a| a.prot), "find({addr:?})");
    let (first, end) = random_range(rng);
    let is_free = (first..end).all(|n| !model.contains_key(&n));
    assert_eq!(tree.is_range_free(page(first), page(end)), is_free);
    let nr_pages = 1 + rng.below(6);
    let align_pages = 1 << rng.below(3);
    let lo = BASE_PAGE - 2 + rng.below(NR_PAGES / 2);
    let hi = lo + 1 + rng.below(NR_PAGES);
    let found = tree.find_gap_top_down(nr_pages * PAGE_SIZE, align_pages * PAGE_SIZE, page(lo), page(hi));
    assert_eq!(
        found,
        brute_force_gap(model, nr_pages, align_pages, lo, hi),
        "gap {nr_pages} pages in {lo:#x}..{hi:#x}"
    );
}

#[test]
fn random_operations_match_a_page_by_page_model() {
    for seed in [0x9e37_79b9_7f4a_7c15, 0x1234_5678, 0xdead_beef_cafe] {
        let mut rng = XorShift(seed);
        let mut tree = VmaTree::new();
        let mut model = Model::new();
        for step in 0..3000 {
            match rng.below(10) {
                0..=3 => random_insert(&mut tree, &mut model, &mut rng),
                4..=5 => random_unmap(&mut tree, &mut model, &mut rng),
                _ => random_protect(&mut tree, &mut model, &mut rng),
            }
            tree.check_invariants();
            let actual: Vec<Vma> = tree.iter().copied().collect();
            assert_eq!(actual, expected_vmas(&model), "seed {seed:#x} step {step}: tree differs from model");
            check_queries(&tree, &model, &mut rng);
        }
    }
}

#[test]
fn update_flags_splits_at_the_edges_skips_holes_and_merges_back() {
    let mut tree = VmaTree::new();
    tree.insert(anon(10, 20, RW)).unwrap();
    tree.insert(anon(30, 40, RW)).unwrap();
    // Pages 15..35: the tail of the first VMA, a hole, the head of the second.
    let is_full = tree.update_flags(page(15), page(35), VmFlags::DONT_FORK, VmFlags::empty()).unwrap();
    assert!(!is_full, "the range has a hole");
    let flagged: Vec<(u64, u64)> = tree
        .iter()
        .filter(|v| v.flags.contains(VmFlags::DONT_FORK))
        .map(|v| (v.start.as_u64() / PAGE_SIZE, v.end.as_u64() / PAGE_SIZE))
        .collect();
    assert_eq!(flagged, vec![(15, 20), (30, 35)]);
    assert_eq!(tree.len(), 4);
    tree.check_invariants();
    // Clearing the flag again makes the pieces equal to their neighbours: merged.
    assert!(tree.update_flags(page(10), page(20), VmFlags::empty(), VmFlags::DONT_FORK).unwrap());
    assert_eq!(layout(&tree), vec![(10, 20, RW), (30, 35, RW), (35, 40, RW)]);
    tree.check_invariants();
    assert_eq!(tree.update_flags(page(1), page(1), VmFlags::DONT_FORK, VmFlags::empty()), Err(VmaError::Empty));
}

#[test]
fn the_vma_limit_refuses_splits_inserts_and_holes_that_would_exceed_it() {
    let mut tree = VmaTree::new();
    tree.set_max_count(3);
    tree.insert(anon(0, 16, VmProt::READ_WRITE)).unwrap();
    // Two splits: 1 -> 3 VMAs, at the limit.
    tree.protect_range(page(4), page(8), VmProt::READ).unwrap();
    assert_eq!(tree.len(), 3);
    let before = layout(&tree);
    // Another hole in the middle of a VMA would make 4: refused, nothing changed.
    assert_eq!(tree.protect_range(page(10), page(12), VmProt::READ), Err(VmaError::TooMany));
    assert_eq!(tree.unmap_range(page(1), page(2)), Err(VmaError::TooMany));
    assert_eq!(tree.update_flags(page(1), page(2), VmFlags::DONT_FORK, VmFlags::empty()), Err(VmaError::TooMany));
    assert_eq!(tree.insert(anon(32, 33, VmProt::READ)), Err(VmaError::TooMany));
    assert_eq!(layout(&tree), before);
    // Changes that do not add VMAs still work at the limit: a whole VMA goes, an edge is trimmed.
    tree.unmap_range(page(12), page(16)).unwrap();
    tree.protect_range(page(4), page(8), VmProt::READ_WRITE).unwrap();
    tree.check_invariants();
    assert_eq!(tree.len(), 1);
    // A new VMA that merges into its neighbour is still one more VMA before the merge: with room it goes in.
    tree.insert(anon(12, 13, VmProt::READ_WRITE)).unwrap();
    assert_eq!(tree.len(), 1);
}

#[test]
fn the_default_vma_limit_is_linux_max_map_count() {
    assert_eq!(VmaTree::new().max_count, 65_530);
    assert_eq!(MAX_MAP_COUNT, 65_530);
}

/// The search as it was before the gap index: walk the VMAs from the top down,
/// one step per VMA passed. The model the index is checked against.
fn linear_gap_search(tree: &VmaTree, len: u64, align: u64, lo: VirtAddr, hi: VirtAddr) -> Option<VirtAddr> {
    let fit = |start: u64, end: u64| gap_index::highest_fit(start, end, len, align.max(PAGE_SIZE));
    let mut gap_end = hi.as_u64();
    for vma in tree.iter().rev().filter(|vma| vma.start < hi) {
        if let Some(found) = fit(vma.end.as_u64().max(lo.as_u64()), gap_end) {
            return Some(VirtAddr::new(found));
        }
        gap_end = gap_end.min(vma.start.as_u64());
        if gap_end <= lo.as_u64() {
            return None;
        }
    }
    fit(lo.as_u64(), gap_end).map(VirtAddr::new)
}

#[test]
fn the_gap_index_finds_what_the_linear_walk_finds_in_a_large_random_space() {
    // Thousands of VMAs over a 1 GiB window, mapped and unmapped at random, with
    // searches of every size and alignment between; after each step the index is
    // checked against the VMAs (check_invariants) and each answer against the walk.
    let mut rng = XorShift(0x5eed_9a95);
    let mut tree = VmaTree::new();
    let base = 0x4000_0000u64 / PAGE_SIZE;
    let window = 0x4000_0000u64 / PAGE_SIZE;
    for step in 0..6000 {
        let first = base + rng.below(window);
        let max_len = if rng.below(8) == 0 { 4096 } else { 16 };
        let end = first + 1 + rng.below(max_len);
        if rng.below(3) == 0 {
            tree.unmap_range(page(first), page(end)).unwrap();
        } else if tree.is_range_free(page(first), page(end)) {
            let prot = VmProt::from_bits_truncate(rng.below(8) as u8);
            tree.insert(anon(first, end, prot)).unwrap();
        }
        if step % 50 == 0 {
            tree.check_invariants();
        }
        for _ in 0..4 {
            let max_pages = if rng.below(4) == 0 { 8192 } else { 32 };
            let len = (1 + rng.below(max_pages)) * PAGE_SIZE;
            let align = PAGE_SIZE << rng.below(10);
            let lo = page(base - 16 + rng.below(window / 2));
            let hi = page(lo.as_u64() / PAGE_SIZE + 1 + rng.below(window));
            assert_eq!(
                tree.find_gap_top_down(len, align, lo, hi),
                linear_gap_search(&tree, len, align, lo, hi),
                "step {step}: {len:#x} bytes aligned {align:#x} in {lo:?}..{hi:?}"
            );
        }
    }
    tree.check_invariants();
    assert!(tree.len() > 1000, "the test should build a large space, got {} VMAs", tree.len());
}

#[test]
fn find_copy_sees_every_change_of_the_tree() {
    let mut tree = VmaTree::new();
    tree.insert(anon(16, 32, RW)).unwrap();
    assert_eq!(tree.find_copy(page(20)).map(|v| v.prot), Some(RW), "remembered now");
    tree.protect_range(page(20), page(24), RO).unwrap();
    assert_eq!(tree.find_copy(page(17)).map(|v| (v.start, v.end)), Some((page(16), page(20))), "the split is seen");
    tree.unmap_range(page(16), page(20)).unwrap();
    assert_eq!(tree.find_copy(page(17)), None, "the unmapped VMA is forgotten");
    assert_eq!(tree.find_copy(page(30)).map(|v| v.end), Some(page(32)));
    tree.insert(anon(32, 40, RW)).unwrap(); // merges with [24, 32)
    assert_eq!(tree.find_copy(page(30)).map(|v| v.end), Some(page(40)));
    tree.update_flags(page(24), page(40), VmFlags::DONT_FORK, VmFlags::empty()).unwrap();
    assert!(tree.find_copy(page(30)).unwrap().flags.contains(VmFlags::DONT_FORK));
    tree.split_at(page(36)).unwrap();
    assert_eq!(tree.find_copy(page(30)).map(|v| v.end), Some(page(36)));
    tree.merge_around(page(36));
    assert_eq!(tree.find_copy(page(30)).map(|v| v.end), Some(page(40)));
}

#[test]
fn find_copy_agrees_with_find_through_random_changes() {
    let mut rng = XorShift(0x5eed_f00d);
    let mut tree = VmaTree::new();
    for _ in 0..4000 {
        let first = rng.below(64);
        let end = first + 1 + rng.below(8);
        match rng.below(4) {
            0 => drop(tree.insert(anon(first, end, if rng.below(2) == 0 { RW } else { RO }))),
            1 => drop(tree.unmap_range(page(first), page(end))),
            2 => drop(tree.protect_range(page(first), page(end), if rng.below(2) == 0 { RW } else { RO })),
            _ => {}
        }
        for _ in 0..4 {
            let addr = page(rng.below(72));
            assert_eq!(tree.find_copy(addr), tree.find(addr).copied(), "at {addr:?}");
        }
    }
}
