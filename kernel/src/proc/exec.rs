//! Loading a program: from ELF file to a ready address space and a first trap frame.
//!
//! Nothing of the program is copied at load time. Each loadable segment becomes one
//! VMA backed by the segment's bytes in the embedded file (a backing object,
//! `mm::backing`); the pages arrive on the first touch through the fault handler,
//! like a file mapping. A stack VMA at the
//! top of the user half (grows down on faults) and the heap start (just above the
//! image, for `brk`) complete the space.
//!
//! The stack starts with what the System V ABI promises a new program (see
//! `mm_core::initial_stack` for the picture): argc, argv (the program's name, then
//! the words of its argument string), envp (Linux's `init` environment,
//! [`ENVIRONMENT`]) and the auxiliary vector: where the program headers are (musl
//! finds its `PT_TLS` segment through them), the page size, the entry point, 16
//! random bytes. The kernel writes them into the new space's stack through the
//! same path as `process_vm_writev` (the stack page is faulted in on the new
//! process's behalf): the one page a new process has before it runs.
//!
//! The first trap frame sends the task to ring 3 at the ELF entry point with the
//! stack pointer at argc and interrupts enabled. The other program headers a
//! static C program has need nothing from the loader: `PT_TLS` is set up by the C
//! library itself, `PT_GNU_STACK` asks for a non-executable stack (every stack is),
//! `PT_GNU_RELRO` is for the dynamic linker, which static programs do not have.

use alloc::sync::Arc;
use alloc::vec::Vec;

use mm_core::elf;
use mm_core::initial_stack::{self, ExecInfo, StackError};

use super::task::SpawnError;
use crate::arch::{cpu, gdt};
use crate::arch::trap::TrapFrame;
use crate::mm::{PAGE_SIZE, VirtAddr, backing};
use crate::mm::addr_space::{AddressSpace, Backing, STACK_INITIAL_BYTES, STACK_TOP, Vma, VmFlags, VmProt};
use crate::mm::file_rmap::{self, FileOwner};
use crate::mm::page_cache::PageCache;
use crate::mm::rmap::SpaceRef;

/// RFLAGS for a new user task: interrupts enabled (bit 9) and the reserved bit 1.
const USER_RFLAGS: u64 = 0x202;

/// The environment every program starts with: what Linux gives `init`
/// (`envp_init` in `init/main.c`).
pub const ENVIRONMENT: [&str; 2] = ["HOME=/", "TERM=linux"];

/// Builds the address space of program `name`, started with the argument string
/// `args` (argv = the name, then the words of `args`), and the frame that starts it.
pub fn load(name: &str, args: &str) -> Result<(SpaceRef, TrapFrame), SpawnError> {
    let bytes = crate::user_programs::find(name).ok_or(SpawnError::NoSuchProgram)?;
    let exe = elf::parse(bytes).map_err(SpawnError::BadExecutable)?;
    let space_ref = AddressSpace::new().map_err(|_| SpawnError::OutOfMemory)?;
    let mut space = space_ref.lock();
    let mut image_end = 0;
    for (index, segment) in exe.segments().iter().enumerate() {
        let (start, end) = segment.page_range();
        let (file_start, file_end) = segment_file_bytes(segment);
        let id = backing::register_image(&bytes[file_start..file_end]);
        let vma = Vma::new(
            VirtAddr::new(start),
            VirtAddr::new(end),
            segment.flags.prot(),
            VmFlags::empty(),
            Backing::Image { id, offset: 0 },
        );
        space
            .insert_vma(vma)
            .map_err(|_| SpawnError::BadExecutable(elf::ElfError::Overlap { index: index as u16 }))?;
        image_end = image_end.max(end);
    }
    space.set_brk_start(VirtAddr::new(image_end));
    drop(space);
    let argv: Vec<&str> = core::iter::once(name).chain(args.split_whitespace()).collect();
    finish(space_ref, &exe, &argv, &ENVIRONMENT)
}

/// Builds the address space of the ELF file `bytes` read from a file (`execve`),
/// started with `argv` and `envp`, and the frame that starts it.
///
/// The file's bytes live only in the caller's buffer, so they are copied now:
/// every page of a segment that holds file bytes is written into a fresh anonymous
/// page of the new space (a VMA made writable for the copy, then given the
/// segment's protection); `.bss` pages past the file bytes stay demand-zero.
pub fn load_file(bytes: &[u8], argv: &[&str], envp: &[&str]) -> Result<(SpaceRef, TrapFrame), SpawnError> {
    let exe = elf::parse(bytes).map_err(SpawnError::BadExecutable)?;
    let space_ref = AddressSpace::new().map_err(|_| SpawnError::OutOfMemory)?;
    let mut image_end = 0;
    for (index, segment) in exe.segments().iter().enumerate() {
        let (start, end) = segment.page_range();
        let vma = Vma::new(VirtAddr::new(start), VirtAddr::new(end), VmProt::READ_WRITE, VmFlags::empty(), Backing::Anonymous);
        space_ref
            .lock()
            .insert_vma(vma)
            .map_err(|_| SpawnError::BadExecutable(elf::ElfError::Overlap { index: index as u16 }))?;
        let (file_start, file_end) = segment_file_bytes(segment);
        let out_of_file = elf::ElfError::SegmentOutOfFile { index: index as u16 };
        let file_bytes = bytes.get(file_start..file_end).ok_or(SpawnError::BadExecutable(out_of_file))?;
        for (i, chunk) in file_bytes.chunks(PAGE_SIZE as usize).enumerate() {
            super::vm_rw::write_remote(&space_ref, start + i as u64 * PAGE_SIZE, chunk)
                .map_err(|_| SpawnError::OutOfMemory)?;
        }
        space_ref.lock().mprotect(start, end - start, segment.flags.prot()).map_err(|_| SpawnError::OutOfMemory)?;
        image_end = image_end.max(end);
    }
    space_ref.lock().set_brk_start(VirtAddr::new(image_end));
    finish(space_ref, &exe, argv, envp)
}

/// Reads file bytes at an offset into a buffer, filling it whole.
pub type FileReader<'a> = dyn FnMut(u64, &mut [u8]) -> Result<(), SpawnError> + 'a;

/// Returns true if every segment of `exe` can map the page cache: its file offset
/// agrees with its address on a page boundary (else [`load_file`] copies it).
pub fn can_map(exe: &elf::Executable<'_>) -> bool {
    exe.segments().iter().all(|s| (segment_file_bytes(s).0 as u64).is_multiple_of(PAGE_SIZE))
}

/// Builds the address space of an executable from its file through the file's
/// page cache (execve of a file on ext2): `exe` was parsed from the file's headers
/// (checked against its size), `cache` is its page cache, `owner` what keeps the
/// file open, and `read_at(offset, buf)` reads file bytes (the one partial page a
/// segment may share with its `.bss`). Every segment must be mappable
/// ([`can_map`]).
///
/// ```text
///  segment [vaddr, vaddr + memsz), file bytes [offset, offset + filesz)
///   pages holding file bytes ........ Backing::File, private: text shared by every
///                                      process running the program (the cache's
///                                      frames), data copied on its first write
///   a partial last file page with
///   .bss after it ................... anonymous: its file bytes copied, the rest
///                                      zero (the bytes past filesz must read 0)
///   the rest of .bss ................ anonymous (zero on first touch)
/// ```
pub fn load_mapped(
    exe: &elf::Executable<'_>,
    read_at: &mut FileReader<'_>,
    cache: &Arc<PageCache>,
    owner: FileOwner,
    argv: &[&str],
    envp: &[&str],
) -> Result<(SpaceRef, TrapFrame), SpawnError> {
    debug_assert!(can_map(exe), "load_mapped: a segment cannot be mapped");
    let space_ref = AddressSpace::new().map_err(|_| SpawnError::OutOfMemory)?;
    let space_id = space_ref.lock().id();
    file_rmap::add(cache, owner, space_id, &space_ref);
    let mut image_end = 0;
    for (index, segment) in exe.segments().iter().enumerate() {
        let (start, end) = segment.page_range();
        let (file_start, file_end) = segment_file_bytes(segment);
        let overlap = |_| SpawnError::BadExecutable(elf::ElfError::Overlap { index: index as u16 });
        let prot = segment.flags.prot();
        let file_bytes_end = segment.vaddr + segment.filesz;
        let mapped_end = if segment.memsz > segment.filesz {
            file_bytes_end / PAGE_SIZE * PAGE_SIZE
        } else {
            file_bytes_end.next_multiple_of(PAGE_SIZE)
        }
        .max(start);
        if mapped_end > start {
            let backing = Backing::File { cache: cache.id(), offset: file_start as u64 };
            let vma = Vma::new(VirtAddr::new(start), VirtAddr::new(mapped_end), prot, VmFlags::empty(), backing);
            space_ref.lock().insert_vma(vma).map_err(overlap)?;
        }
        if end > mapped_end {
            let vma = Vma::new(VirtAddr::new(mapped_end), VirtAddr::new(end), VmProt::READ_WRITE, VmFlags::empty(), Backing::Anonymous);
            space_ref.lock().insert_vma(vma).map_err(overlap)?;
            if mapped_end < file_bytes_end {
                // The page shared by the last file bytes and .bss: a private copy.
                let partial_start = file_start + (mapped_end - start) as usize;
                let mut partial = Vec::new();
                partial.try_reserve_exact(file_end - partial_start).map_err(|_| SpawnError::OutOfMemory)?;
                partial.resize(file_end - partial_start, 0);
                read_at(partial_start as u64, &mut partial)?;
                super::vm_rw::write_remote(&space_ref, mapped_end, &partial).map_err(|_| SpawnError::OutOfMemory)?;
            }
            space_ref.lock().mprotect(mapped_end, end - mapped_end, prot).map_err(|_| SpawnError::OutOfMemory)?;
        }
        image_end = image_end.max(end);
    }
    space_ref.lock().set_brk_start(VirtAddr::new(image_end));
    finish(space_ref, exe, argv, envp)
}

/// The file bytes of a segment's pages: from its first page boundary to its last
/// file byte (`vaddr` and `file_offset` agree modulo the page size).
fn segment_file_bytes(segment: &elf::LoadSegment) -> (usize, usize) {
    let (start, _) = segment.page_range();
    let file_start = (segment.file_offset - (segment.vaddr - start)) as usize;
    let file_end = (segment.file_offset + segment.filesz) as usize;
    (file_start, file_end)
}

/// Adds the stack VMA with argv, envp and the auxiliary vector to a space whose
/// segments are in, and returns it with the frame that starts the program.
fn finish(space_ref: SpaceRef, exe: &elf::Executable, argv: &[&str], envp: &[&str]) -> Result<(SpaceRef, TrapFrame), SpawnError> {
    let stack = Vma::new(
        VirtAddr::new(STACK_TOP - STACK_INITIAL_BYTES),
        VirtAddr::new(STACK_TOP),
        VmProt::READ_WRITE,
        VmFlags::GROWS_DOWN | VmFlags::STACK,
        Backing::Anonymous,
    );
    space_ref.lock().insert_vma(stack).map_err(|_| SpawnError::OutOfMemory)?;
    let sp = push_initial_stack(&space_ref, argv, envp, exe)?;
    let selectors = gdt::selectors();
    let frame = TrapFrame {
        rip: exe.entry(),
        cs: u64::from(selectors.user_code.0),
        rflags: USER_RFLAGS,
        rsp: sp,
        ss: u64::from(selectors.user_data.0),
        ..TrapFrame::default()
    };
    Ok((space_ref, frame))
}

/// Writes argc, argv, envp and the auxiliary vector at the top of the stack of
/// `space` (not the running one) and returns the stack pointer to start with.
fn push_initial_stack(space: &SpaceRef, argv: &[&str], envp: &[&str], exe: &elf::Executable) -> Result<u64, SpawnError> {
    let info = ExecInfo {
        phdr_vaddr: exe.phdr_vaddr().unwrap_or(0),
        nr_program_headers: u64::from(exe.nr_program_headers()),
        entry: exe.entry(),
        hwcap: cpu::hwcap(),
    };
    let mut random = [0u8; 16];
    random[..8].copy_from_slice(&cpu::random_u64().to_le_bytes());
    random[8..].copy_from_slice(&cpu::random_u64().to_le_bytes());
    let stack = initial_stack::build(STACK_TOP, STACK_INITIAL_BYTES, argv, envp, &info, random)
        .map_err(|e| match e {
            StackError::TooBig { .. } | StackError::NulInString => SpawnError::ArgumentsTooLong,
        })?;
    // Page by page: the remote write works within one page.
    let mut addr = stack.sp;
    for chunk in split_at_pages(stack.sp, &stack.bytes) {
        super::vm_rw::write_remote(space, addr, chunk).map_err(|_| SpawnError::OutOfMemory)?;
        addr += chunk.len() as u64;
    }
    Ok(stack.sp)
}

/// Splits `bytes`, which go to address `start`, at page boundaries.
fn split_at_pages(start: u64, bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let first = ((PAGE_SIZE - start % PAGE_SIZE) as usize).min(bytes.len());
    let (head, tail) = bytes.split_at(first);
    core::iter::once(head).chain(tail.chunks(PAGE_SIZE as usize)).filter(|c| !c.is_empty())
}
