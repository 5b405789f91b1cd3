//! The kernel's own page tables: permissions enforced by the MMU, guard pages,
//! translation agreeing with the hardware, tables freed, SMAP.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

use kernel::arch::{extable, stack_guard, tlb};
use kernel::mm::frame::{self, FrameState};
use kernel::mm::kstack::KernelStack;
use kernel::mm::layout::KMAP_BASE;
use kernel::mm::paging::{self, DirectMapTables, PteFlags};
use kernel::mm::{Order, Page, PhysAddr, VirtAddr, frame_ptr};
use mm_core::fault_code::PageFaultCode;
use mm_core::pagetable::{PageSize, PageTable};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};

kernel::test_kernel!();

/// Page-fault error-code bits.
const PF_PRESENT: u64 = PageFaultCode::PRESENT;
const PF_WRITE: u64 = PageFaultCode::WRITE;
const PF_FETCH: u64 = PageFaultCode::FETCH;

static READ_ONLY: [u8; 16] = [0x11; 16];
static mut DATA_PAGE: [u8; 64] = [0xc3; 64]; // `ret` instructions, in a writable NX page

#[test_case]
fn kernel_runs_on_its_own_tables_with_an_empty_lower_half() {
    let (root, _) = tlb::current_root();
    assert_eq!(root, paging::kernel_root(), "CR3 is not the kernel's own PML4");
    // SAFETY: the test only builds and walks trees of its own (and reads the kernel's).
    let mem = unsafe { DirectMapTables::new() };
    for index in 0..256 {
        assert!(mm_core::pagetable::TableMemory::read_entry(&mem, root, index).is_unused(), "PML4[{index}] is used");
    }
}

#[test_case]
fn protection_bits_are_on() {
    assert!(Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE), "EFER.NXE off");
    assert!(Cr0::read().contains(Cr0Flags::WRITE_PROTECT), "CR0.WP off");
    assert!(Cr4::read().contains(Cr4Flags::PAGE_GLOBAL), "CR4.PGE off");
    let features = kernel::arch::cpu::detect();
    assert_eq!(Cr4::read().contains(Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION), features.has_smep);
    assert_eq!(Cr4::read().contains(Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION), features.has_smap);
    assert_eq!(Cr4::read().contains(Cr4Flags::PCID), features.has_pcid);
}

#[test_case]
fn write_to_read_only_kernel_data_faults() {
    let addr = READ_ONLY.as_ptr() as u64;
    // SAFETY: the page is read-only, so the write cannot land (that is the test).
    let fault = unsafe { extable::probe_write(addr, 0x22) }.expect_err("wrote to .rodata");
    assert_eq!(fault.addr, addr);
    assert_eq!(fault.error_code & (PF_PRESENT | PF_WRITE), PF_PRESENT | PF_WRITE, "present + write");
    assert_eq!(READ_ONLY[0], 0x11);
}

#[test_case]
fn executing_a_data_page_faults() {
    let addr = core::ptr::addr_of!(DATA_PAGE) as u64;
    // SAFETY: the bytes are `ret`; if NX failed they would run and return harmlessly.
    let fault = unsafe { extable::probe_call(addr) }.expect_err("executed a data page");
    assert_eq!(fault.addr, addr);
    assert_eq!(fault.error_code & (PF_PRESENT | PF_FETCH), PF_PRESENT | PF_FETCH, "present + fetch");
}

#[test_case]
fn kernel_image_is_mapped_w_xor_x() {
    let text = kernel::hlt_loop as *const () as u64;
    let (_, flags, _) = paging::translate(VirtAddr::new(text)).expect("text not mapped");
    assert!(!flags.contains(PteFlags::WRITABLE) && !flags.contains(PteFlags::NO_EXECUTE), "text must be R-X");
    let (_, flags, _) = paging::translate(VirtAddr::new(READ_ONLY.as_ptr() as u64)).unwrap();
    assert!(!flags.contains(PteFlags::WRITABLE) && flags.contains(PteFlags::NO_EXECUTE), "rodata must be R--");
    let (_, flags, _) = paging::translate(VirtAddr::new(core::ptr::addr_of!(DATA_PAGE) as u64)).unwrap();
    assert!(flags.contains(PteFlags::WRITABLE) && flags.contains(PteFlags::NO_EXECUTE), "data must be RW-");
    assert!(flags.contains(PteFlags::GLOBAL), "kernel mappings are global");
}

#[test_case]
fn kernel_stacks_have_registered_unmapped_guards() {
    let stack = KernelStack::new(4, "test stack").unwrap();
    let (guard_start, guard_end) = stack.guard();
    assert_eq!(stack_guard::find(guard_end - 8), Some("test stack"));
    let fault = extable::probe_read(guard_end - 8).expect_err("guard page is mapped");
    assert_eq!(fault.error_code & PF_PRESENT, 0);
    // The stack itself is usable, top to bottom.
    for addr in (stack.bottom()..stack.top()).step_by(4096) {
        // SAFETY: the stack is ours and mapped; nothing runs on it.
        unsafe { extable::probe_write(addr, 1) }.expect("stack page not writable");
    }
    drop(stack);
    assert_eq!(stack_guard::find(guard_start), None, "guard still registered after drop");
}

#[test_case]
fn translate_agrees_with_the_hardware() {
    let frame = frame::alloc_zeroed(Order(0), FrameState::Kernel).unwrap();
    let page = Page::containing_address(VirtAddr::new(KMAP_BASE + 0x1234_5000));
    paging::kmap(page, frame, PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE).unwrap();
    let virt = page.start_address().as_u64() + 0x678;
    // SAFETY: the page was just mapped to a frame we own.
    unsafe { (virt as *mut u64).write_volatile(0xfeed_f00d_dead_beef) };
    let (phys, _, size) = paging::translate(VirtAddr::new(virt)).unwrap();
    assert_eq!(size, PageSize::Size4KiB);
    assert_eq!(phys, PhysAddr::new(frame.start_address().as_u64() + 0x678));
    // SAFETY: the same bytes, read through the direct map.
    let through_direct_map = unsafe { (frame_ptr(frame).add(0x678) as *const u64).read_volatile() };
    assert_eq!(through_direct_map, 0xfeed_f00d_dead_beef);
    assert_eq!(paging::kunmap(page), Ok(frame));
    assert!(extable::probe_read(virt).is_err(), "still readable after kunmap: stale TLB entry");
    // SAFETY: test frames: allocated here, unmapped before they are freed.
    unsafe { frame::free(frame, Order(0)) }.unwrap();
}

#[test_case]
fn huge_page_mapping_reads_back_through_the_direct_map() {
    let block = frame::alloc_zeroed(Order(9), FrameState::Kernel).unwrap(); // 2 MiB, 2 MiB-aligned
    let virt = VirtAddr::new(KMAP_BASE + (64 << 21));
    paging::kmap_huge(virt, block.start_address(), PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE)
        .unwrap();
    let last = virt.as_u64() + (2 << 20) - 8;
    // SAFETY: the 2 MiB page maps a block we own.
    unsafe { (last as *mut u64).write_volatile(42) };
    let (phys, _, size) = paging::translate(VirtAddr::new(last)).unwrap();
    assert_eq!(size, PageSize::Size2MiB);
    assert_eq!(phys.as_u64(), block.start_address().as_u64() + (2 << 20) - 8);
    // SAFETY: same bytes through the direct map.
    assert_eq!(unsafe { (frame_ptr(block + 511).add(4088) as *const u64).read() }, 42);
    assert_eq!(paging::kunmap_huge(virt), Ok(block));
    // SAFETY: test frames: allocated here, unmapped before they are freed.
    unsafe { frame::free(block, Order(9)) }.unwrap();
}

#[test_case]
fn mapping_and_unmapping_10000_pages_frees_every_table() {
    let tables_before = paging::kernel_table_count();
    let frame = frame::alloc(Order(0), FrameState::Kernel).unwrap();
    let free_before = frame::nr_free_frames();
    let flags = PteFlags::PRESENT | PteFlags::NO_EXECUTE;
    // Scattered: every 7th page over ~280 MiB, so many page tables are needed.
    let page_fn = |i: u64| Page::containing_address(VirtAddr::new(KMAP_BASE + (1 << 32) + i * 7 * 4096));
    for i in 0..10_000 {
        paging::kmap(page_fn(i), frame, flags).unwrap();
    }
    assert!(paging::kernel_table_count() > tables_before, "no tables were allocated");
    assert!(frame::nr_free_frames() < free_before);
    for i in 0..10_000 {
        assert_eq!(paging::kunmap(page_fn(i)), Ok(frame));
    }
    assert_eq!(paging::kernel_table_count(), tables_before, "page tables leaked");
    assert_eq!(frame::nr_free_frames(), free_before, "frames leaked");
    // SAFETY: test frames: allocated here, unmapped before they are freed.
    unsafe { frame::free(frame, Order(0)) }.unwrap();
}

#[test_case]
fn smap_blocks_kernel_reads_of_user_pages_outside_user_copies() {
    if !kernel::arch::cpu::smap_enabled() {
        kernel::println!("(no SMAP on this CPU: skipped)");
        return;
    }
    // Map one user page into the current (kernel) tree, in the lower half.
    let frame = frame::alloc_zeroed(Order(0), FrameState::User).unwrap();
    // SAFETY: we own the frame.
    unsafe { frame_ptr(frame).add(5).write(0x77) };
    let user_addr = 0x0000_1000_0000_0000u64;
    let page = Page::containing_address(VirtAddr::new(user_addr));
    let mut kpt = PageTable::from_root(paging::kernel_root());
    // SAFETY: as above: the tree changed here is the test's own.
    let mem = &mut unsafe { DirectMapTables::new() };
    let user_flags = PteFlags::PRESENT | PteFlags::USER | PteFlags::NO_EXECUTE;
    kpt.map(mem, page, frame, user_flags).unwrap().ignore(); // was not present: no flush needed

    let fault = extable::probe_read(user_addr + 5).expect_err("SMAP let the kernel read a user page");
    assert_eq!(fault.error_code & PF_PRESENT, PF_PRESENT, "a protection fault, not a missing page");
    let mut byte = [0u8; 1];
    // SAFETY: the kernel side is a local buffer; the user side is mapped and user-accessible.
    let not_copied = unsafe { extable::copy_user(byte.as_mut_ptr() as u64, user_addr + 5, 1) };
    assert_eq!((not_copied, byte[0]), (0, 0x77), "the user-copy routine must get through");
    // SAFETY: an unmapped user address: the copy must stop, not crash.
    let not_copied = unsafe { extable::copy_user(byte.as_mut_ptr() as u64, user_addr + 4096, 1) };
    assert_eq!(not_copied, 1);
    // A long copy (8 bytes at a time inside copy_user) gets every byte through, and
    // one that runs off the mapped page at an odd address stops exactly there: the
    // count of bytes not copied is exact to the byte, whatever the copy's step.
    // SAFETY: the test's own frame (mapped read-only for the user), written through the direct map.
    unsafe { frame_ptr(frame).add(8).write_bytes(0x5a, 4088) };
    let mut long = [0u8; 4088];
    // SAFETY: the kernel side is a local buffer; the user side is mapped and user-accessible.
    let not_copied = unsafe { extable::copy_user(long.as_mut_ptr() as u64, user_addr + 8, 4088) };
    assert_eq!(not_copied, 0);
    assert!(long.iter().all(|&b| b == 0x5a), "a long copy moved every byte");
    let mut across = [0u8; 100];
    // SAFETY: the first 13 bytes are on the mapped page, the rest on an unmapped one.
    let not_copied = unsafe { extable::copy_user(across.as_mut_ptr() as u64, user_addr + 4096 - 13, 100) };
    assert_eq!(not_copied, 87, "13 bytes were readable: exactly those are copied");
    assert!(across[..13].iter().all(|&b| b == 0x5a) && across[13..].iter().all(|&b| b == 0));

    let (unmapped, flush) = kpt.unmap(mem, page).unwrap();
    tlb::flush(flush);
    assert_eq!(unmapped, frame);
    let _ = kpt.into_root(); // the handle does not own the kernel's tree
    // SAFETY: test frames: allocated here, unmapped before they are freed.
    unsafe { frame::free(frame, Order(0)) }.unwrap();
    assert!(paging::kernel_table_count() > 0);
}

#[test_case]
fn frames_used_by_page_tables_are_marked_as_such() {
    let root = paging::kernel_root();
    assert_eq!(frame::with_desc(root, |d| d.state()), FrameState::PageTable);
}

#[test_case]
fn the_ap_trampoline_pages_are_never_handed_out() {
    // `smp::start_aps` overwrites these four pages with the trampoline and its page
    // tables; a page table the buddy allocator once put at 0x8000 was overwritten
    // so with `--smp 2` (issue #13). They must stay out of the allocator, on any
    // CPU count, whether or not the other CPUs were started.
    let first = kernel::arch::smp::TRAMPOLINE_PHYS;
    for phys in (first..first + kernel::arch::smp::TRAMPOLINE_BYTES).step_by(4096) {
        let frame = kernel::mm::Frame::containing_address(PhysAddr::new(phys));
        let state = frame::with_desc(frame, |d| d.state());
        assert_eq!(state, FrameState::Reserved, "the trampoline's frame {phys:#x} is {state:?}");
    }
}
