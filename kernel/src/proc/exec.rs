//! Loading a program: from ELF file to a ready address space and a first trap frame.
//!
//! Nothing is copied at load time. Each loadable segment becomes one VMA backed by
//! the segment's bytes in the embedded file (a backing object, `mm::backing`); the
//! pages arrive on the first touch through the fault handler, like a file mapping. A stack VMA at the
//! top of the user half (grows down on faults) and the heap start (just above the
//! image, for `brk`) complete the space.
//!
//! The first trap frame sends the task to ring 3 at the ELF entry point with the
//! stack pointer at the stack top and interrupts enabled.

use mm_core::elf;

use super::task::SpawnError;
use crate::arch::gdt;
use crate::arch::trap::TrapFrame;
use crate::mm::{VirtAddr, backing};
use crate::mm::addr_space::{AddressSpace, Backing, STACK_INITIAL_BYTES, STACK_TOP, Vma, VmFlags, VmProt};
use crate::mm::rmap::SpaceRef;

/// RFLAGS for a new user task: interrupts enabled (bit 9) and the reserved bit 1.
const USER_RFLAGS: u64 = 0x202;

/// Builds the address space of program `name` and the frame that starts it.
pub fn load(name: &str) -> Result<(SpaceRef, TrapFrame), SpawnError> {
    let bytes = crate::user_programs::find(name).ok_or(SpawnError::NoSuchProgram)?;
    let exe = elf::parse(bytes).map_err(SpawnError::BadExecutable)?;
    let space_ref = AddressSpace::new().map_err(|_| SpawnError::OutOfMemory)?;
    let mut space = space_ref.lock();
    let mut image_end = 0;
    for (index, segment) in exe.segments().iter().enumerate() {
        let (start, end) = segment.page_range();
        // The file bytes of the segment's pages: from its first page boundary to its
        // last file byte (`vaddr` and `file_offset` agree modulo the page size).
        let file_start = (segment.file_offset - (segment.vaddr - start)) as usize;
        let file_end = (segment.file_offset + segment.filesz) as usize;
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
    let stack = Vma::new(
        VirtAddr::new(STACK_TOP - STACK_INITIAL_BYTES),
        VirtAddr::new(STACK_TOP),
        VmProt::READ_WRITE,
        VmFlags::GROWS_DOWN | VmFlags::STACK,
        Backing::Anonymous,
    );
    space.insert_vma(stack).map_err(|_| SpawnError::OutOfMemory)?;
    drop(space);
    let selectors = gdt::selectors();
    let frame = TrapFrame {
        rip: exe.entry(),
        cs: u64::from(selectors.user_code.0),
        rflags: USER_RFLAGS,
        rsp: STACK_TOP,
        ss: u64::from(selectors.user_data.0),
        ..TrapFrame::default()
    };
    Ok((space_ref, frame))
}
