//! Tests of the paging model: the worked examples, an OSTEP-style two-level
//! walk, x86-64's split against `mm_core::addr`, and the three tables agreeing.

use super::*;
use crate::build;
use mm_core::addr::VirtAddr;
use mm_core::xorshift::XorShift;

#[test]
fn va_241_with_8_bit_va_10_bit_pa_64_byte_pages() {
    let ex = build(
        "paging",
        &[
            "--va-bits",
            "8",
            "--pa-bits",
            "10",
            "--page-size",
            "64",
            "--map",
            "3:12",
            "--addresses",
            "241",
        ],
    )
    .unwrap();
    let text = ex.worked();
    assert!(
        text.contains(
            "offset = low 6 bits; VPN = high 2 bits (4 virtual pages); PFN = 4 bits (16 frames)"
        ),
        "{text}"
    );
    assert!(
        text.contains("VPN = 241 >> 6 = 3, offset = 241 & 63 = 49"),
        "{text}"
    );
    assert!(
        text.contains("PA = PFN x 64 + offset = 12 x 64 + 49 = 817 (0x331)"),
        "{text}"
    );
    assert_eq!(ex.answer("1"), Some("817"));
    assert_eq!(ex.answer("linear-bytes"), Some("16"), "4 PTEs of 4 bytes");
}

#[test]
fn a_32_bit_space_with_4k_pages_needs_4_mb_of_linear_table() {
    let args = [
        "--va-bits",
        "32",
        "--pa-bits",
        "30",
        "--page-size",
        "4K",
        "--layout",
        "0:16K,0xffffc000:16K",
        "--num",
        "0",
    ];
    let ex = build("paging", &args).unwrap();
    assert_eq!(ex.answer("linear-bytes"), Some("4194304"));
    assert!(
        ex.worked()
            .contains("2^20 entries x 4 bytes = 4 MiB, mapped pages or not")
    );
    // Two levels of 10 bits: the top table (4 KiB) and one 4 KiB table for each end.
    assert_eq!(ex.answer("multi-bytes"), Some("12288"));
    // 2^18 frames x (8 + 4) bytes = 3 MiB, whatever the virtual layout.
    assert_eq!(ex.answer("inverted-bytes"), Some("3145728"));
}

#[test]
fn two_level_walk_reads_each_entry_from_its_table_frame() {
    // OSTEP's geometry: 15-bit VA, 12-bit PA, 32-byte pages, 1-byte PTEs: two levels of 5 bits.
    let args = [
        "--va-bits",
        "15",
        "--pa-bits",
        "12",
        "--page-size",
        "32",
        "--pte-size",
        "1",
        "--table",
        "multi",
        "--map",
        "776:19",
        "--addresses",
        "0x611c,0x0000",
    ];
    let ex = build("paging", &args).unwrap();
    let text = ex.worked();
    assert!(text.contains("level 1 table in frame 0: index = VA bits 14..10 = 24, entry at PA 24: valid, next table in frame 1"), "{text}");
    assert!(
        text.contains(
            "level 2 table in frame 1: index = VA bits 9..5 = 8, entry at PA 40: valid, PFN 19"
        ),
        "{text}"
    );
    assert_eq!(ex.answer("1"), Some("636"), "19 x 32 + 28");
    assert!(text.contains(
        "level 1 table in frame 0: index = VA bits 14..10 = 0, entry at PA 0: invalid -> page fault"
    ));
    assert_eq!(ex.answer("2"), Some("fault"));
    assert_eq!(
        ex.answer("multi-bytes"),
        Some("64"),
        "the top table and one table below it"
    );
}

#[test]
fn inverted_walk_follows_the_hash_chain() {
    // Pages 1 and 17 of pid 1 hash to the same anchor (16 frames): (1+1) mod 16 = (17+1) mod 16.
    let args = [
        "--va-bits",
        "12",
        "--pa-bits",
        "10",
        "--page-size",
        "64",
        "--table",
        "inverted",
        "--map",
        "1:5,17:9",
        "--addresses",
        "64,1088,128",
    ];
    let ex = build("paging", &args).unwrap();
    let text = ex.worked();
    assert!(
        text.contains("hash(pid 1, VPN 1) = (1 + 1) mod 16 = 2"),
        "{text}"
    );
    assert!(
        text.contains("entry 9: pid 1, VPN 17: no match, next entry 5"),
        "{text}"
    );
    assert_eq!(ex.answer("1"), Some("320"));
    assert_eq!(ex.answer("2"), Some("576"));
    assert_eq!(ex.answer("3"), Some("fault"));
}

#[test]
fn x86_64_geometry_splits_like_the_kernel() {
    let g = Geometry {
        va_bits: 48,
        pa_bits: 30,
        page_size: 4096,
        pte_size: 8,
    };
    assert_eq!(g.level_bits(g.default_levels()).unwrap(), [9, 9, 9, 9]);
    let multi = MultiLevel::build(g, vec![9, 9, 9, 9], &BTreeMap::new(), &mut (0..)).unwrap();
    let mut rng = XorShift(48);
    for _ in 0..10_000 {
        let va = VirtAddr::new(rng.below(1 << 47));
        let indices = multi.indices(va.as_u64() >> 12);
        let kernel = [va.p4_index(), va.p3_index(), va.p2_index(), va.p1_index()].map(|i| i as u64);
        assert_eq!(indices, kernel, "{va:?}");
    }
}

#[test]
fn linear_multi_level_and_inverted_tables_agree_and_find_exactly_the_mapped_pages() {
    let mut rng = XorShift(0x1a2b);
    for round in 0..300 {
        let page_bits = 4 + rng.below(4) as u32;
        let g = Geometry {
            va_bits: page_bits + 4 + rng.below(6) as u32,
            pa_bits: page_bits + 6,
            page_size: 1 << page_bits,
            pte_size: 1 << rng.below(3),
        };
        let nr_vpages = 1u64 << g.vpn_bits();
        // Two processes with random pages in distinct frames (the inverted table holds both).
        let mut frames: Vec<u64> = (0..g.nr_frames()).collect();
        let mut maps = [BTreeMap::new(), BTreeMap::new()];
        for _ in 0..rng.below(g.nr_frames() / 2) {
            let pfn = frames.swap_remove(rng.below(frames.len() as u64) as usize);
            maps[rng.below(2) as usize].insert(rng.below(nr_vpages), pfn);
        }
        let mut inverted = Inverted::new(g.nr_frames());
        for (pid, map) in maps.iter().enumerate() {
            map.iter()
                .for_each(|(&vpn, &pfn)| inverted.insert(pid as u64, vpn, pfn));
        }
        let levels = 1 + rng.below(u64::from(g.default_levels())) as u32;
        let level_bits = g.level_bits(levels).unwrap();
        let used: BTreeSet<u64> = maps[0].values().copied().collect();
        let mut free = (0..).filter(|f| !used.contains(f));
        let multi = MultiLevel::build(g, level_bits.clone(), &maps[0], &mut free).unwrap();
        for vpn in 0..nr_vpages {
            assert_eq!(
                multi.walk(vpn).0,
                maps[0].get(&vpn).copied(),
                "round {round}: multi-level, VPN {vpn}"
            );
            for (pid, map) in maps.iter().enumerate() {
                assert_eq!(
                    inverted.lookup(pid as u64, vpn).0,
                    map.get(&vpn).copied(),
                    "round {round}: inverted, pid {pid}"
                );
            }
        }
        let vpns: BTreeSet<u64> = maps[0].keys().copied().collect();
        let (_, nr_tables) = multi_level_bytes(g, &level_bits, &vpns);
        assert_eq!(
            nr_tables.iter().sum::<u64>(),
            multi.tables.len() as u64,
            "round {round}: table count"
        );
    }
}

#[test]
fn random_exercises_are_consistent_and_bad_geometry_is_refused() {
    for seed in 0..100 {
        let seed = seed.to_string();
        for table in ["linear", "multi", "inverted"] {
            let ex = build(
                "paging",
                &[
                    "--seed",
                    &seed,
                    "--table",
                    table,
                    "--va-bits",
                    "14",
                    "--pa-bits",
                    "12",
                    "--page-size",
                    "16",
                    "--num",
                    "8",
                ],
            )
            .unwrap();
            assert!(ex.check(&ex.answer_sheet()).is_perfect());
        }
    }
    assert!(build("paging", &["--page-size", "48"]).is_err());
    assert!(
        build("paging", &["--addresses", "256"]).is_err(),
        "an 8-bit space has no address 256"
    );
    assert!(
        build("paging", &["--map", "3:12,2:12"]).is_err(),
        "two pages in one frame"
    );
}
