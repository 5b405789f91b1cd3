//! Unit tests of [`super::parse`] on hand-built ELF images, and a randomized test
//! that corrupts and truncates a valid image: the parser must never panic, and
//! whatever it accepts must keep the guarantees [`super::LoadSegment`] documents.

use super::*;
use std::format;
use std::string::ToString;
use std::vec;
use std::vec::Vec;
use crate::xorshift::XorShift;

const PF_R: u32 = 4;
const PF_W: u32 = 2;
const PF_X: u32 = 1;
const PT_GNU_STACK: u32 = 0x6474_e551;

/// One program header, as the builder writes it.
#[derive(Clone, Copy)]
struct Phdr {
    p_type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

/// Returns a `PT_LOAD` header with 4 KiB alignment.
fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Phdr {
    Phdr { p_type: PT_LOAD, flags, offset, vaddr, filesz, memsz, align: 0x1000 }
}

fn put_u16(image: &mut [u8], at: usize, v: u16) {
    image[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put_u32(image: &mut [u8], at: usize, v: u32) {
    image[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(image: &mut [u8], at: usize, v: u64) {
    image[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Builds an ELF64 x86-64 `ET_EXEC` image with the program headers right after
/// the ELF header; the file is `len` bytes, each byte of it its offset's low byte.
fn build(entry: u64, phdrs: &[Phdr], len: usize) -> Vec<u8> {
    let mut image: Vec<u8> = (0..len).map(|i| i as u8).collect();
    image[..EHDR_SIZE].fill(0);
    image[..8].copy_from_slice(b"\x7fELF\x02\x01\x01\x00");
    put_u16(&mut image, 0x10, ET_EXEC);
    put_u16(&mut image, 0x12, EM_X86_64);
    put_u32(&mut image, 0x14, 1);
    put_u64(&mut image, 0x18, entry);
    put_u64(&mut image, 0x20, EHDR_SIZE as u64);
    put_u16(&mut image, 0x34, EHDR_SIZE as u16);
    put_u16(&mut image, 0x36, PHDR_SIZE as u16);
    put_u16(&mut image, 0x38, phdrs.len() as u16);
    for (i, p) in phdrs.iter().enumerate() {
        let at = EHDR_SIZE + i * PHDR_SIZE;
        image[at..at + PHDR_SIZE].fill(0);
        put_u32(&mut image, at, p.p_type);
        put_u32(&mut image, at + 0x04, p.flags);
        put_u64(&mut image, at + 0x08, p.offset);
        put_u64(&mut image, at + 0x10, p.vaddr);
        put_u64(&mut image, at + 0x18, p.vaddr);
        put_u64(&mut image, at + 0x20, p.filesz);
        put_u64(&mut image, at + 0x28, p.memsz);
        put_u64(&mut image, at + 0x30, p.align);
    }
    image
}

/// The three segments of a small static executable, packed the way lld packs them
/// by default: each segment starts on a new page in memory but at the same offset
/// within the page as in the file. Entry at the start of the code.
fn minimal_phdrs() -> Vec<Phdr> {
    vec![
        load(PF_R, 0, 0x40_0000, 0x140, 0x140), // ELF and program headers, .rodata
        load(PF_R | PF_X, 0x140, 0x40_1140, 0x10, 0x10), // .text
        load(PF_R | PF_W, 0x150, 0x40_2150, 0x8, 0x1000), // .data, .bss
        Phdr { p_type: PT_GNU_STACK, flags: PF_R | PF_W, offset: 0, vaddr: 0, filesz: 0, memsz: 0, align: 0 },
    ]
}

const MINIMAL_ENTRY: u64 = 0x40_1140;
const MINIMAL_LEN: usize = 0x158;

fn minimal() -> Vec<u8> {
    build(MINIMAL_ENTRY, &minimal_phdrs(), MINIMAL_LEN)
}

/// Offset of field `field` of program header `index`.
fn ph(index: usize, field: usize) -> usize {
    EHDR_SIZE + index * PHDR_SIZE + field
}

/// Asserts everything `parse` promises about an accepted image.
fn check_guarantees(bytes: &[u8], exe: &Executable<'_>) {
    let segments = exe.segments();
    assert!(!segments.is_empty() && segments.len() <= MAX_LOAD_SEGMENTS);
    for s in segments {
        assert!(s.memsz > 0 && s.filesz <= s.memsz, "{s:?}");
        assert!(s.file_offset.checked_add(s.filesz).is_some_and(|end| end <= bytes.len() as u64), "{s:?}");
        assert!(s.vaddr.checked_add(s.memsz).is_some_and(|end| end <= USER_END), "{s:?}");
        assert_eq!(s.vaddr % PAGE_SIZE, s.file_offset % PAGE_SIZE, "{s:?}");
        assert_eq!(exe.file_bytes(s).len() as u64, s.filesz);
    }
    for pair in segments.windows(2) {
        assert!(pair[0].page_range().1 <= pair[1].page_range().0, "{pair:?}");
    }
    assert!(segments.iter().any(|s| s.flags.is_executable() && s.contains(exe.entry())));
}

#[test]
fn parses_a_minimal_static_executable() {
    let image = minimal();
    let exe = parse(&image).expect("minimal image");
    assert_eq!(exe.entry(), MINIMAL_ENTRY);
    let segments = exe.segments();
    assert_eq!(segments.len(), 3, "GNU_STACK is not a load segment");
    assert_eq!(
        segments[2],
        LoadSegment {
            vaddr: 0x40_2150,
            memsz: 0x1000,
            file_offset: 0x150,
            filesz: 0x8,
            flags: SegmentFlags::from_bits_truncate(PF_R | PF_W),
            align: 0x1000
        }
    );
    assert_eq!(segments[2].page_range(), (0x40_2000, 0x40_4000));
    assert_eq!(exe.file_bytes(&segments[1]), &image[0x140..0x150]);
    check_guarantees(&image, &exe);
}

#[test]
fn segment_flags_convert_to_vm_prot() {
    let image = minimal();
    let exe = parse(&image).unwrap();
    let prots: Vec<VmProt> = exe.segments().iter().map(|s| s.flags.prot()).collect();
    assert_eq!(prots, [VmProt::READ, VmProt::READ_EXEC, VmProt::READ_WRITE]);
    assert_eq!(format!("{:?}", exe.segments()[1].flags), "r-x");
    assert_eq!(SegmentFlags::from_bits_truncate(0xffff_fff8).bits(), 0, "OS and processor bits are dropped");
}

#[test]
fn rejects_input_shorter_than_the_elf_header() {
    let image = minimal();
    for len in 0..EHDR_SIZE {
        assert_eq!(parse(&image[..len]).err(), Some(ElfError::TooShort), "length {len}");
    }
}

#[test]
fn every_truncation_of_a_valid_image_is_an_error() {
    let image = minimal();
    // The last segment's file bytes end at the end of the file.
    for len in 0..image.len() {
        assert!(parse(&image[..len]).is_err(), "truncated to {len} bytes and accepted");
    }
    assert!(parse(&image).is_ok());
}

#[test]
fn rejects_files_that_are_not_elf64_little_endian_x86_64() {
    let cases: [(usize, u8, ElfError); 6] = [
        (0, 0x7e, ElfError::BadMagic),
        (3, b'f', ElfError::BadMagic),
        (4, 1, ElfError::NotElf64),
        (5, 2, ElfError::NotLittleEndian),
        (6, 0, ElfError::BadVersion),
        (0x14, 2, ElfError::BadVersion),
    ];
    for (at, byte, expected) in cases {
        let mut image = minimal();
        image[at] = byte;
        assert_eq!(parse(&image).err(), Some(expected), "byte {at:#x} = {byte:#x}");
    }
    let mut image = minimal();
    put_u16(&mut image, 0x12, 183); // EM_AARCH64
    assert_eq!(parse(&image).err(), Some(ElfError::WrongMachine(183)));
}

#[test]
fn rejects_position_independent_executables_with_a_clear_error() {
    let mut image = minimal();
    put_u16(&mut image, 0x10, ET_DYN);
    assert_eq!(parse(&image).err(), Some(ElfError::PositionIndependent));
    assert!(ElfError::PositionIndependent.to_string().contains("--no-pie"));
}

#[test]
fn rejects_object_files_and_core_dumps() {
    for e_type in [0, 1, 4, 0xfe00] {
        let mut image = minimal();
        put_u16(&mut image, 0x10, e_type);
        assert_eq!(parse(&image).err(), Some(ElfError::WrongType(e_type)));
    }
}

#[test]
fn rejects_unexpected_header_sizes() {
    for (at, size) in [(0x34, 52), (0x34, 128), (0x36, 32), (0x36, 64)] {
        let mut image = minimal();
        put_u16(&mut image, at, size);
        assert_eq!(parse(&image).err(), Some(ElfError::BadHeaderSize), "field {at:#x} = {size}");
    }
}

#[test]
fn rejects_program_headers_past_the_end_of_the_file() {
    for (phoff, phnum) in [(0x100, 4), (u64::MAX - 8, 1), (EHDR_SIZE as u64, 6), (EHDR_SIZE as u64, 1000)] {
        let mut image = minimal();
        put_u64(&mut image, 0x20, phoff);
        put_u16(&mut image, 0x38, phnum);
        assert_eq!(parse(&image).err(), Some(ElfError::HeadersOutOfFile), "phoff {phoff:#x}, phnum {phnum}");
    }
    let mut image = minimal();
    put_u16(&mut image, 0x38, u16::MAX); // PN_XNUM
    assert_eq!(parse(&image).err(), Some(ElfError::TooManySegments));
}

#[test]
fn rejects_segment_bytes_past_the_end_of_the_file() {
    for (offset, filesz) in [(0x150, 0x9), (0x1000, 0x8), (u64::MAX - 3, 0x8)] {
        let mut image = minimal();
        put_u64(&mut image, ph(2, 0x08), offset);
        put_u64(&mut image, ph(2, 0x20), filesz);
        assert_eq!(parse(&image).err(), Some(ElfError::SegmentOutOfFile { index: 2 }), "{offset:#x}+{filesz:#x}");
    }
}

#[test]
fn rejects_more_file_bytes_than_memory_bytes() {
    let mut image = minimal();
    put_u64(&mut image, ph(0, 0x28), 0xff);
    assert_eq!(parse(&image).err(), Some(ElfError::FileSizeExceedsMemSize { index: 0 }));
}

#[test]
fn rejects_segments_that_cannot_be_mapped_page_by_page() {
    let mut image = minimal();
    put_u64(&mut image, ph(1, 0x10), 0x40_1148); // vaddr no longer ≡ offset (mod 4096)
    assert_eq!(parse(&image).err(), Some(ElfError::Unaligned { index: 1 }));

    let mut image = minimal();
    put_u64(&mut image, ph(1, 0x30), 0x3000); // p_align not a power of two
    assert_eq!(parse(&image).err(), Some(ElfError::Unaligned { index: 1 }));

    let mut image = minimal();
    put_u64(&mut image, ph(1, 0x30), 0x20_0000); // 2 MiB: 0x401140 - 0x140 is not a multiple
    assert_eq!(parse(&image).err(), Some(ElfError::Unaligned { index: 1 }));
}

#[test]
fn rejects_segments_outside_the_user_half() {
    for (vaddr, memsz) in [(0xffff_8000_0000_2150, 0x1000), (0x7fff_ffff_f150, 0x1000), (0xffff_ffff_ffff_f150, 0x1000)]
    {
        let mut image = minimal();
        put_u64(&mut image, ph(2, 0x10), vaddr);
        put_u64(&mut image, ph(2, 0x28), memsz);
        assert_eq!(parse(&image).err(), Some(ElfError::NotInUserHalf { index: 2 }), "{vaddr:#x}+{memsz:#x}");
    }
}

#[test]
fn rejects_segments_out_of_order_or_sharing_a_page() {
    let mut image = minimal();
    put_u64(&mut image, ph(2, 0x10), 0x3f_f150); // below the first segment
    assert_eq!(parse(&image).err(), Some(ElfError::Unsorted { index: 2 }));

    let mut image = minimal();
    put_u64(&mut image, ph(2, 0x10), 0x40_1150); // right after .text, on the same page
    assert_eq!(parse(&image).err(), Some(ElfError::Overlap { index: 2 }));
}

#[test]
fn rejects_an_entry_point_outside_executable_code() {
    for entry in [0, 0x40_0000, 0x40_1150, 0x40_2150, u64::MAX] {
        let mut image = minimal();
        put_u64(&mut image, 0x18, entry);
        assert_eq!(parse(&image).err(), Some(ElfError::EntryNotExecutable), "entry {entry:#x}");
    }
}

#[test]
fn rejects_dynamically_linked_files() {
    let mut phdrs = minimal_phdrs();
    phdrs[3].p_type = PT_INTERP;
    let image = build(MINIMAL_ENTRY, &phdrs, MINIMAL_LEN);
    assert_eq!(parse(&image).err(), Some(ElfError::NeedsInterpreter));
}

#[test]
fn rejects_files_without_loadable_segments() {
    let mut image = minimal();
    put_u16(&mut image, 0x38, 0);
    assert_eq!(parse(&image).err(), Some(ElfError::NoLoadSegments));

    let empty = vec![load(PF_R | PF_X, 0, 0x40_0000, 0, 0)];
    assert_eq!(parse(&build(0x40_0000, &empty, 0x100)).err(), Some(ElfError::NoLoadSegments));
}

#[test]
fn skips_empty_load_segments() {
    let mut phdrs = minimal_phdrs();
    phdrs.insert(1, load(PF_R | PF_W | PF_X, 0, 0, 0, 0));
    let image = build(MINIMAL_ENTRY, &phdrs, MINIMAL_LEN + PHDR_SIZE);
    let exe = parse(&image).expect("an empty segment is harmless");
    assert_eq!(exe.segments().len(), 3);
}

#[test]
fn accepts_sixteen_load_segments_but_not_seventeen() {
    let many =
        |n: u64| -> Vec<Phdr> { (0..n).map(|i| load(PF_R | PF_X, 0, 0x40_0000 + i * 0x1000, 0x10, 0x10)).collect() };
    let image = build(0x40_0000, &many(16), EHDR_SIZE + 16 * PHDR_SIZE);
    assert_eq!(parse(&image).map(|exe| exe.segments().len()), Ok(16));
    let image = build(0x40_0000, &many(17), EHDR_SIZE + 17 * PHDR_SIZE);
    assert_eq!(parse(&image).err(), Some(ElfError::TooManySegments));
}

#[test]
fn error_messages_say_what_is_wrong() {
    assert_eq!(ElfError::WrongMachine(40).to_string(), "built for machine 40, not x86-64 (62)");
    assert_eq!(ElfError::Overlap { index: 3 }.to_string(), "segment 3 shares a page with the one before it");
    assert_eq!(ElfError::TooShort.to_string(), "file shorter than an ELF header");
}


#[test]
fn random_corruption_never_panics_and_accepted_images_keep_the_guarantees() {
    let valid = minimal();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut nr_accepted = 0;
    for _ in 0..50_000 {
        let mut image = valid.clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(image.len() as u64) as usize;
            image[at] = match rng.below(4) {
                0 => image[at] ^ (1 << rng.below(8)),
                1 => 0,
                2 => 0xff,
                _ => rng.next_u64() as u8,
            };
        }
        if rng.below(4) == 0 {
            image.truncate(rng.below(image.len() as u64 + 1) as usize);
        }
        if let Ok(exe) = parse(&image) {
            check_guarantees(&image, &exe);
            nr_accepted += 1;
        }
    }
    // Flips in ignored bytes (p_paddr, padding, segment contents) keep the image
    // valid, so some must be accepted; most corruptions must not be.
    assert!((1_000..45_000).contains(&nr_accepted), "{nr_accepted} accepted");
}

#[test]
fn program_headers_are_found_in_the_segment_that_loads_them() {
    // minimal: 4 headers (224 bytes) at offset 64, inside the first segment's 0x140 file bytes
    let image = minimal();
    let exe = parse(&image).expect("minimal image");
    assert_eq!(exe.nr_program_headers(), 4);
    assert_eq!(exe.phdr_vaddr(), Some(0x40_0000 + EHDR_SIZE as u64));
    // a first segment that stops short of the table's end does not load it: no AT_PHDR
    let mut phdrs = minimal_phdrs();
    phdrs[0] = load(PF_R, 0, 0x40_0000, 0x100, 0x100);
    let image = build(MINIMAL_ENTRY, &phdrs, MINIMAL_LEN);
    assert_eq!(parse(&image).expect("short first segment").phdr_vaddr(), None);
}

#[test]
fn the_headers_alone_parse_like_the_whole_file_and_segments_are_checked_against_its_size() {
    // A file whose segments end far past its first page: the head holds the ELF
    // header and the program headers only.
    let phdrs = vec![
        load(PF_R, 0, 0x40_0000, 0x1000, 0x1000),
        load(PF_R | PF_X, 0x1000, 0x40_1000, 0x3000, 0x3000),
        load(PF_R | PF_W, 0x4000, 0x40_4000, 0x10, 0x2000),
    ];
    let image = build(0x40_1000, &phdrs, 0x4010);
    let whole = parse(&image).expect("the whole file");
    let head = &image[..0x200];
    let exe = parse_headers(head, image.len() as u64).expect("the headers and the file's size");
    assert_eq!(exe.segments(), whole.segments());
    assert_eq!(exe.entry(), whole.entry());
    assert_eq!(exe.file_bytes(&exe.segments()[1]), &[] as &[u8], "past the head: nothing");
    // The same head, for a file one byte too short for the last segment.
    assert_eq!(
        parse_headers(head, image.len() as u64 - 1).map(|e| e.entry()),
        Err(ElfError::SegmentOutOfFile { index: 2 })
    );
    // Program headers past the head: refused, not read past it.
    assert_eq!(parse_headers(&image[..0x80], image.len() as u64).map(|e| e.entry()), Err(ElfError::HeadersOutOfFile));
}
