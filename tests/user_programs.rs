//! The embedded user programs: all there, found by name, and loadable: each one
//! parses with `mm_core::elf`, starts in its code, lives in the user half at or
//! above `abi::USER_IMAGE_BASE` in page-aligned segments, and keeps W^X; a program
//! image's backing object (`mm::backing`) gives back its bytes page by page.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

use kernel::mm::frame::{self, NewPage};
use kernel::mm::backing;
use kernel::user_programs::{self, PROGRAMS, UserProgram};
use mm_core::addr::PAGE_SIZE;
use mm_core::elf::{self, Executable, SegmentFlags};

kernel::test_kernel!();

/// Every program in `kernel/user/src/bin/`.
const NAMES: &[&str] = &[
    "hello",
    "lazy",
    "forkcow",
    "forkstorm",
    "badptr",
    "readkernel",
    "writecode",
    "stackgrow",
    "usefree",
    "mprotect",
    "dontneed",
    "partial",
    "brk",
    "memhog",
    "bigfork",
    "shared",
    "bench",
    "pageout",
    "swapfork",
    "swapstress",
    "oomparty",
    "sleeper",
    "swapioerr",
    "swapbench",
    "thrash",
    "swapload",
    "sharedbig",
    "orphans",
    "sharedprot",
    "forknone",
    "protnone",
    "errno",
    "forkenomem",
    "lazyfree",
    "vmrw",
    "farfetch",
    "sortstorm",
    "failstorm",
    "heapsqueeze",
    "vmaflood",
    "fuzz",
    "remanence",
    "files",
    "dirs",
    "pipes",
    "wsprobe",
    "memlimits",
    "sortsearch",
    "thp",
    "thpfork",
    "reclaimscale",
    "vmascale",
    "ksm",
    "pagefault1",
    "cat",
    "spin",
    "free",
    "sh",
    "echo",
    "kill",
    "sleep",
    "ls",
    "ps",
    "exectest",
    "mmapfile",
    "mmapshared",
    "mmapdemo",
    "filebench",
    "explain",
    "trace",
    "memmap",
    "vmstat",
    "pmap",
    "policy",
    "swapinfo",
    "top",
    "hog",
];

/// The end of the lower half: user addresses are below it.
const USER_END: u64 = 0x0000_8000_0000_0000;

fn parse(program: &UserProgram) -> Executable<'static> {
    elf::parse(program.elf).unwrap_or_else(|e| panic!("{}: {}", program.name, e))
}

#[test_case]
fn every_program_is_embedded_and_found_by_name() {
    assert_eq!(PROGRAMS.len(), NAMES.len());
    for name in NAMES {
        let elf = user_programs::find(name).unwrap_or_else(|| panic!("{name} is not embedded"));
        assert!(elf.starts_with(b"\x7fELF"), "{name} is not an ELF file");
    }
    assert!(user_programs::find("no-such-program").is_none());
    assert!(user_programs::find("").is_none());
}

#[test_case]
fn every_program_parses_and_its_segments_bytes_are_in_the_file() {
    for program in PROGRAMS {
        let exe = parse(program);
        for s in exe.segments() {
            assert_eq!(exe.file_bytes(s).len() as u64, s.filesz, "{}: segment at {:#x}", program.name, s.vaddr);
        }
    }
}

#[test_case]
fn every_entry_point_is_inside_an_executable_segment() {
    for program in PROGRAMS {
        let exe = parse(program);
        let code = exe.segments().iter().find(|s| s.contains(exe.entry()));
        assert!(
            code.is_some_and(|s| s.flags.is_executable()),
            "{}: entry {:#x} not in code",
            program.name,
            exe.entry()
        );
    }
}

#[test_case]
fn segments_are_page_aligned_in_the_user_half_above_the_image_base() {
    for program in PROGRAMS {
        for s in parse(program).segments() {
            assert!(s.vaddr >= abi::USER_IMAGE_BASE, "{}: segment at {:#x}", program.name, s.vaddr);
            assert!(s.end() <= USER_END, "{}: segment ends at {:#x}", program.name, s.end());
            assert_eq!(s.vaddr % PAGE_SIZE, 0, "{}: segment at {:#x}", program.name, s.vaddr);
            assert_eq!(s.file_offset % PAGE_SIZE, 0, "{}: file offset {:#x}", program.name, s.file_offset);
        }
    }
}

#[test_case]
fn no_segment_is_both_writable_and_executable() {
    for program in PROGRAMS {
        for s in parse(program).segments() {
            assert!(
                !(s.flags.is_writable() && s.flags.is_executable()),
                "{}: W+X segment at {:#x}",
                program.name,
                s.vaddr
            );
        }
    }
}

#[test_case]
fn every_program_has_separate_read_only_code_and_data_segments() {
    let r = SegmentFlags::READ;
    let rx = SegmentFlags::from_bits_truncate(SegmentFlags::READ.bits() | SegmentFlags::EXEC.bits());
    let rw = SegmentFlags::from_bits_truncate(SegmentFlags::READ.bits() | SegmentFlags::WRITE.bits());
    for program in PROGRAMS {
        let exe = parse(program);
        for flags in [r, rx, rw] {
            assert!(exe.segments().iter().any(|s| s.flags == flags), "{}: no {:?} segment", program.name, flags);
        }
    }
}

/// Bytes 1..=251 repeating: no zero byte, so a zero in a page read back is padding.
static IMAGE: [u8; 5000] = {
    let mut bytes = [0u8; 5000];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = (i % 251) as u8 + 1;
        i += 1;
    }
    bytes
};

#[test_case]
fn a_program_image_backing_object_reads_its_pages_then_zeros() {
    let id = backing::register_image(&IMAGE);
    assert_eq!(backing::register_image(&IMAGE), id, "the same image registered twice is one object");
    let page_size = PAGE_SIZE as usize;
    for (index, expected) in [(0, &IMAGE[..page_size]), (1, &IMAGE[page_size..]), (2, &[][..])] {
        let mut page = NewPage::alloc_zeroed().expect("a frame");
        backing::read_page(id, index, &mut page);
        let mut got = [0u8; PAGE_SIZE as usize];
        // SAFETY: `page` is ours, mapped nowhere, and nothing writes it meanwhile.
        unsafe { frame::read_bytes(page.frame(), 0, &mut got) };
        assert_eq!(&got[..expected.len()], expected, "page {index}: the image's bytes");
        assert!(got[expected.len()..].iter().all(|&b| b == 0), "page {index}: zero past the image's end");
    }
}
