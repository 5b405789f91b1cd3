//! The virtual memory layout: the one diagram, and the constants behind it.
//!
//! ```text
//!  virtual address                     PML4 slot  what                                  mapped by
//!  0x0000_0000_0000_0000 ┐             0          (page 0 never mapped: null pointers fault)
//!  0x0000_0000_0040_0000 │                        user program image (ELF segments)    the process
//!        ...             │ user half            heap (brk), mmap area growing down
//!  0x0000_7fff_ffff_f000 ┘             255        user stack top (grows down)
//!        ... non-canonical hole: bits 63..48 must copy bit 47 ...
//!  0xffff_8000_0000_0000 ┐             256        direct map: all RAM (and the first    kspace, 2 MiB pages,
//!                        │                        4 GiB for MMIO) at PHYS_MAP_BASE+phys  RW, NX, GLOBAL
//!  0xffff_c000_0000_0000 ┐             384        bootloader area: boot stack           copied by kspace,
//!                        ┘                        (guard page below it)                  RW, NX, GLOBAL
//!  0xffff_d000_0000_0000 ┐             416        kernel map area (`kmap`): tests,       paging::kmap
//!                        ┘                        temporary mappings
//!  0xffff_e000_0000_0000 ┐             448        kernel stacks: 64 KiB slots, the       kstack
//!                        ┘                        lowest page of each unmapped (guard)
//!  0xffff_ffff_8000_0000 ┐             511        kernel image (-2 GiB):                 kspace, per ELF
//!                        │                          .text R-X   .rodata R--              segment, GLOBAL
//!                        ┘                          .data/.bss RW- (NX)
//! ```
//! Every address space shares the kernel half: the kernel's PML4 entries 256..511
//! point at PDPTs created once at boot (`populate_kernel_half`) and copied into
//! each new PML4, so a kernel mapping added later is seen everywhere.

/// Start of the direct map of physical memory.
pub const PHYS_MAP_BASE: u64 = crate::PHYS_MAP_BASE;
/// Start of the bootloader's dynamic area (boot stack).
pub const BOOT_DYNAMIC_BASE: u64 = crate::BOOT_DYNAMIC_BASE;
/// Start of the kernel map area used by `paging::kmap`.
pub const KMAP_BASE: u64 = 0xffff_d000_0000_0000;
/// Size of the kernel map area.
pub const KMAP_SIZE: u64 = 1 << 40;
/// Start of the kernel-stack area.
pub const KSTACK_BASE: u64 = 0xffff_e000_0000_0000;
/// Size of one kernel-stack slot (guard page included).
pub const KSTACK_SLOT_SIZE: u64 = 64 * 1024;
/// Number of kernel-stack slots.
pub const NR_KSTACK_SLOTS: usize = 4096;
/// Where the kernel image is linked.
pub const KERNEL_BASE: u64 = crate::KERNEL_BASE;
/// First address above the user half.
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// The end of the part of the user half a mapping may take: one page short of
/// [`USER_END`], as Linux's `TASK_SIZE` on x86-64. The top page is never mapped,
/// and an end of range here is a canonical address (`USER_END` is not).
pub const USER_MAP_END: u64 = USER_END - 4096;
