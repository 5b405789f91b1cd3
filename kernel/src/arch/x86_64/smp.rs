//! Starting the other CPUs (application processors, APs) and per-CPU data.
//!
//! At reset only the boot CPU (BSP) runs; the others wait for an INIT and a
//! STARTUP IPI from it, and then start in 16-bit real mode at a page below 1 MiB
//! that the STARTUP names. [`start_aps`] copies a small trampoline there and, one
//! CPU after another, sends INIT, STARTUP, STARTUP (the Intel "universal startup
//! algorithm") and waits for the CPU to say it is up:
//!
//! ```text
//!  TRAMPOLINE (0x8000), real mode, CS = 0x800
//!    lgdt a 3-entry GDT in the page; CR0.PE          -> 32-bit protected mode
//!    CR4.PAE|PGE; CR3 = the page's own PML4; EFER.LME|NXE; CR0.PG|WP
//!                                                   -> 64-bit long mode, still at 0x8xxx
//!       (that PML4 maps [0, 2 MiB) 1:1, so the next instruction is still there, and
//!        its kernel half is the kernel's own, so the kernel is there too)
//!    RSP = the CPU's own stack; jump to ap_entry (a kernel address)
//!  ap_entry (Rust): CR3 = the kernel's PML4; CR0/CR4 protections; its own GDT
//!    and TSS (own IST stacks); the shared IDT; TSC_AUX = its CPU index; its local
//!    APIC and timer; "I am up"; then `hlt` forever, taking its timer ticks.
//! ```
//! Pages 0x8000..0xc000 are the trampoline and its three page tables. The bootloader
//! allocates nothing below 1 MiB, and `frame::init` leaves exactly these four frames
//! out of the buddy allocator (Reserved; the rest of low memory is handed out, so a
//! page table once landed here and was overwritten); [`start_aps`] checks the
//! firmware's memory map says they are RAM.
//!
//! **Per-CPU data.** [`cpu_id`] is the CPU's index (0 = the BSP, then in MADT
//! order), read with `lsl` from an entry of the CPU's own GDT whose segment limit
//! is its index (`gdt::cpu_index`; Linux's `getcpu` reads the same kind of entry,
//! or `IA32_TSC_AUX`, which each CPU also sets to its index). Not the GS
//! base: in this kernel GS holds the *user's* base while in the kernel (there is no
//! `swapgs` on entry); moving per-CPU data behind GS comes with running user tasks
//! on every CPU. [`PerCpu`] is one slot per CPU index in a static array.
//!
//! **What APs do.** Until `proc::sched::start_all_cpus` they only take their timer
//! interrupts and halt; then each leaves its boot `hlt` loop for the scheduler
//! ([`start_scheduling`]), its boot context becoming its idle task, and runs tasks
//! like the boot CPU (`proc::sched`, TLB shootdown in `arch::shootdown`).
//!
//! A CPU that does not answer within [`AP_START_TIMEOUT_MS`] is reported and left
//! out; the kernel goes on with the others.

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use super::{acpi, cpu, gdt, idt, lapic, timer};
use crate::mm::{PhysAddr, kstack::KernelStack, paging, phys_to_virt};

/// The most CPUs the kernel runs (the runner's `--smp` limit).
pub const MAX_CPUS: usize = 16;
/// Physical address of the trampoline page (its STARTUP vector is 0x08).
pub const TRAMPOLINE_PHYS: u64 = 0x8000;
/// The trampoline's PML4, PDPT and page directory follow it.
const TRAMPOLINE_PML4: u64 = TRAMPOLINE_PHYS + 0x1000;
const TRAMPOLINE_PDPT: u64 = TRAMPOLINE_PHYS + 0x2000;
const TRAMPOLINE_PD: u64 = TRAMPOLINE_PHYS + 0x3000;
/// Bytes from `TRAMPOLINE_PHYS` the trampoline and its tables use: `frame::init`
/// keeps these frames out of the allocator.
pub const TRAMPOLINE_BYTES: u64 = 0x4000;
/// Offset in the trampoline page of the parameters the BSP writes for each AP.
const PARAMS_OFFSET: u64 = 0xf00;
/// How long the BSP waits for an AP to say it is up.
pub const AP_START_TIMEOUT_MS: u64 = 1000;
/// Pages of an AP's kernel stack (the one it starts and idles on).
const AP_STACK_PAGES: u64 = 4;
/// `IA32_TSC_AUX`: read back by `rdtscp` and `rdpid` (each CPU sets it to its
/// index, as Linux does for user programs' `getcpu`; the kernel reads its GDT).
const IA32_TSC_AUX: u32 = 0xc000_0103;

/// What the BSP leaves at `TRAMPOLINE_PHYS + PARAMS_OFFSET` for the AP it starts.
#[repr(C)]
struct ApParams {
    /// Top of the AP's stack.
    stack_top: u64,
    /// The Rust entry (`ap_entry`).
    entry: u64,
    /// The AP's CPU index (first argument of `ap_entry`).
    cpu_index: u64,
    /// The kernel's PML4 (second argument of `ap_entry`).
    kernel_cr3: u64,
    /// The AP's GDT and TSS (third argument).
    tables: u64,
}

core::arch::global_asm!(
    r#"
    .section .rodata.ap_trampoline, "a"
    .global ap_trampoline_start
    .global ap_trampoline_end
    .code16
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    lgdtl {base} + (ap_gdtr - ap_trampoline_start)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $({base} + (ap_protected - ap_trampoline_start))

    .code32
ap_protected:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $((1 << 5) | (1 << 7)), %eax
    movl %eax, %cr4
    movl ${pml4}, %eax
    movl %eax, %cr3
    movl $0xc0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16)), %eax
    movl %eax, %cr0
    ljmpl $0x18, $({base} + (ap_long - ap_trampoline_start))

    .code64
ap_long:
    movq {params} + 0, %rsp
    movq {params} + 16, %rdi
    movq {params} + 24, %rsi
    movq {params} + 32, %rdx
    movq {params} + 8, %rax
    pushq $0
    jmpq *%rax

    .p2align 3
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff
    .quad 0x00cf92000000ffff
    .quad 0x00af9a000000ffff
ap_gdtr:
    .word ap_gdtr - ap_gdt - 1
    .long {base} + (ap_gdt - ap_trampoline_start)
ap_trampoline_end:
    .text
    "#,
    base = const TRAMPOLINE_PHYS,
    pml4 = const TRAMPOLINE_PML4,
    params = const TRAMPOLINE_PHYS + PARAMS_OFFSET,
    options(att_syntax),
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_end: u8;
}

/// One CPU's slot of per-CPU data.
pub struct PerCpu {
    /// Its local APIC id.
    pub apic_id: AtomicU32,
    /// It runs (set by the CPU itself once it is up).
    pub is_online: AtomicBool,
    /// Timer interrupts it took.
    pub nr_ticks: AtomicU64,
    /// Test IPIs it handled.
    pub nr_test_ipis: AtomicU64,
    /// It halts in its idle task with nothing to run: a wake-up should send it a
    /// reschedule IPI (cleared by whoever sends it one, and by the CPU when it wakes).
    pub is_idle: AtomicBool,
    /// User-mode timer ticks it took (each one charged to a user task running here).
    pub nr_user_ticks: AtomicU64,
    /// Switches to a user task it made.
    pub nr_user_switch_ins: AtomicU64,
}

static PER_CPU: [PerCpu; MAX_CPUS] = [const {
    PerCpu {
        apic_id: AtomicU32::new(0),
        is_online: AtomicBool::new(false),
        nr_ticks: AtomicU64::new(0),
        nr_test_ipis: AtomicU64::new(0),
        is_idle: AtomicBool::new(false),
        nr_user_ticks: AtomicU64::new(0),
        nr_user_switch_ins: AtomicU64::new(0),
    }
}; MAX_CPUS];

/// CPUs that are up (the BSP counts once `init` ran).
static NR_ONLINE: AtomicU32 = AtomicU32::new(1);
/// CPUs the MADT lists as usable.
static NR_PRESENT: AtomicU32 = AtomicU32::new(1);
/// Set by `init`: the CPU has `rdtscp`, so each CPU sets `IA32_TSC_AUX`.
static HAS_TSC_AUX: AtomicBool = AtomicBool::new(false);

/// Returns the per-CPU slot of CPU `index`.
pub fn per_cpu(index: usize) -> &'static PerCpu {
    &PER_CPU[index]
}

/// Returns the running CPU's index: 0 for the boot CPU, then in MADT order.
///
/// With one CPU online it is 0 without asking the CPU (the lock checker calls this
/// on every lock). An AP counts itself online before it can run anything that
/// asks. Otherwise it is the limit of the CPU-index entry of the running CPU's
/// GDT (`gdt::cpu_index`, one `lsl`), not `rdtscp`: under TCG `rdtscp` reads the
/// virtual clock under a lock all vCPU threads share, and a fault calls this
/// several times (`--smp 2 --bench --cmdline benchonly=cpuid`, three runs: `rdtscp`
/// 10-21 ns with one CPU asking, 44-56 with two; `lsl` 26-37 and 26-37). The one-CPU test
/// is inline and the `lsl` out of line, so one CPU's code is what it was.
#[inline(always)]
pub fn cpu_id() -> usize {
    if NR_ONLINE.load(Ordering::Relaxed) <= 1 {
        return 0;
    }
    cpu_id_from_gdt()
}

/// [`cpu_id`] with more than one CPU online.
#[inline(never)]
fn cpu_id_from_gdt() -> usize {
    gdt::cpu_index()
}

/// Returns the running CPU's index as `IA32_TSC_AUX` holds it, read with `rdtscp`
/// (what [`cpu_id`] did before it read the GDT; kept for the bench that compares
/// the two, `benchonly=cpuid`). 0 on a CPU without `rdtscp`.
pub fn cpu_id_by_rdtscp() -> usize {
    if !HAS_TSC_AUX.load(Ordering::Relaxed) {
        return 0;
    }
    let mut aux = 0u32;
    // SAFETY: rdtscp (present: checked in `init`) reads the TSC and TSC_AUX; it
    // writes only `aux` and the returned registers.
    unsafe { core::arch::x86_64::__rdtscp(&mut aux) };
    aux as usize
}

/// Returns this CPU's per-CPU slot.
pub fn this_cpu() -> &'static PerCpu {
    per_cpu(cpu_id())
}

/// Returns the number of CPUs running.
pub fn nr_online() -> usize {
    NR_ONLINE.load(Ordering::Acquire) as usize
}

/// Returns the number of usable CPUs the firmware listed (started or not).
pub fn nr_present() -> usize {
    NR_PRESENT.load(Ordering::Relaxed) as usize
}

/// Prints the CPUs online, with each one's APIC id and the ticks it took so far,
/// and which controller delivers device interrupts.
pub fn print_summary() {
    crate::print!("cpus: {} online of {} listed:", nr_online(), nr_present());
    for (index, cpu) in PER_CPU.iter().enumerate().filter(|(_, c)| c.is_online.load(Ordering::Relaxed)) {
        crate::print!(
            " cpu {index} (APIC id {}, {} ticks)",
            cpu.apic_id.load(Ordering::Relaxed),
            cpu.nr_ticks.load(Ordering::Relaxed)
        );
    }
    crate::println!();
    if nr_online() > 1 {
        crate::print!("tasks:");
        for (index, cpu) in PER_CPU.iter().enumerate().filter(|(_, c)| c.is_online.load(Ordering::Relaxed)) {
            crate::print!(
                " cpu {index} ran user tasks {} times ({} user ticks)",
                cpu.nr_user_switch_ins.load(Ordering::Relaxed),
                cpu.nr_user_ticks.load(Ordering::Relaxed)
            );
        }
        crate::println!();
        let tlb = super::shootdown::stats();
        crate::println!(
            "tlb shootdowns: {} ({} IPIs, {} pages, {} full flushes asked; {} CPUs left to flush lazily)",
            tlb.shootdowns,
            tlb.ipis,
            tlb.pages,
            tlb.full_flushes,
            tlb.lazy_skips
        );
    }
    if super::ioapic::is_active() {
        crate::println!("interrupts: I/O APIC to cpu 0 (8259 masked); APs tick on their local APIC timers");
    } else {
        crate::println!("interrupts: 8259 PIC");
    }
}

/// Writes `value` to MSR `msr`.
fn write_msr(msr: u32, value: u64) {
    // SAFETY: callers write only IA32_TSC_AUX, which nothing but rdtscp/rdpid reads.
    unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) };
}

/// Sets the boot CPU up as CPU 0: its TSC_AUX and local APIC. Call after
/// `acpi::init`.
pub fn init() {
    let has_rdtscp = core::arch::x86_64::__cpuid(0x8000_0001).edx & (1 << 27) != 0;
    if has_rdtscp {
        write_msr(IA32_TSC_AUX, 0);
        HAS_TSC_AUX.store(true, Ordering::Relaxed);
    }
    PER_CPU[0].is_online.store(true, Ordering::Relaxed);
    let Some(madt) = acpi::madt() else { return };
    lapic::init_boot_cpu(madt.local_apic_address);
    PER_CPU[0].apic_id.store(lapic::id(), Ordering::Relaxed);
    NR_PRESENT.store(madt.usable_cpus().count().min(MAX_CPUS) as u32, Ordering::Relaxed);
}

/// Counts a tick of this CPU (the boot CPU's PIT tick, an AP's APIC timer).
pub fn count_tick() {
    this_cpu().nr_ticks.fetch_add(1, Ordering::Relaxed);
}

/// Handles an AP's local APIC timer interrupt: counts it and ends it.
pub fn on_apic_timer() {
    count_tick();
    lapic::eoi();
}

/// Handles the test IPI: counts it and ends it.
pub fn on_test_ipi() {
    this_cpu().nr_test_ipis.fetch_add(1, Ordering::Relaxed);
    lapic::eoi();
}

/// Sends the test IPI to CPU `index` (which must be online).
pub fn send_test_ipi(index: usize) {
    lapic::send_ipi(per_cpu(index).apic_id.load(Ordering::Relaxed), lapic::TEST_IPI_VECTOR);
}

/// A function one CPU asks another to run ([`call_on`]): one mailbox per target.
struct CallMailbox {
    /// FREE, CLAIMED (a caller is writing), POSTED (the target may run it), DONE.
    state: AtomicU8,
    /// The function, as an address (a `fn(usize)`).
    func: AtomicUsize,
    /// Its argument.
    arg: AtomicUsize,
}

const CALL_FREE: u8 = 0;
const CALL_CLAIMED: u8 = 1;
const CALL_POSTED: u8 = 2;
const CALL_DONE: u8 = 3;

static MAILBOXES: [CallMailbox; MAX_CPUS] = [const {
    CallMailbox { state: AtomicU8::new(CALL_FREE), func: AtomicUsize::new(0), arg: AtomicUsize::new(0) }
}; MAX_CPUS];

/// Why [`call_on`] could not run a function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// No such CPU, or it is not online.
    Offline(usize),
}

/// Runs `func(arg)` on CPU `index` and returns once it has run there (Linux's
/// `smp_call_function_single` with `wait`): the mailbox protocol a TLB shootdown
/// is built on.
///
/// ```text
///  caller                                   CPU `index`
///  claim the mailbox (FREE -> CLAIMED)
///  write func, arg; state = POSTED
///  IPI CALL_VECTOR  ----------------------> interrupt: state is POSTED:
///  spin while state != DONE                   func(arg); state = DONE; EOI
///  state = FREE  <--------------------------
/// ```
/// `func` runs in the target's interrupt handler, with interrupts off: it must be
/// short and must not sleep. The caller spins (its interrupts as they were); two
/// CPUs calling each other with interrupts off would wait for each other forever,
/// so today only the boot CPU calls. On its own CPU, `func` is simply called.
pub fn call_on(index: usize, func: fn(usize), arg: usize) -> Result<(), CallError> {
    if index == cpu_id() {
        func(arg);
        return Ok(());
    }
    if index >= MAX_CPUS || !PER_CPU[index].is_online.load(Ordering::Acquire) {
        return Err(CallError::Offline(index));
    }
    let mailbox = &MAILBOXES[index];
    while mailbox.state.compare_exchange(CALL_FREE, CALL_CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_err() {
        core::hint::spin_loop();
    }
    mailbox.func.store(func as usize, Ordering::Relaxed);
    mailbox.arg.store(arg, Ordering::Relaxed);
    mailbox.state.store(CALL_POSTED, Ordering::Release);
    lapic::send_ipi(PER_CPU[index].apic_id.load(Ordering::Relaxed), lapic::CALL_VECTOR);
    while mailbox.state.load(Ordering::Acquire) != CALL_DONE {
        super::shootdown::poll(); // the target may be shooting at us meanwhile
        core::hint::spin_loop();
    }
    mailbox.state.store(CALL_FREE, Ordering::Release);
    Ok(())
}

/// Handles the call-function IPI: runs the posted function, says it is done.
pub fn on_call_ipi() {
    let mailbox = &MAILBOXES[cpu_id()];
    if mailbox.state.load(Ordering::Acquire) == CALL_POSTED {
        let address = mailbox.func.load(Ordering::Relaxed);
        // SAFETY: `call_on` stored this address from a `fn(usize)` before it set
        // POSTED (Release; our Acquire load saw it), and functions live forever.
        let func: fn(usize) = unsafe { core::mem::transmute::<usize, fn(usize)>(address) };
        func(mailbox.arg.load(Ordering::Relaxed));
        mailbox.state.store(CALL_DONE, Ordering::Release);
    }
    lapic::eoi();
}

/// What an AP runs once the scheduler is ready for it (`fn(cpu_index) -> !`, as an
/// address; 0 until [`start_scheduling`]).
static SCHEDULER_ENTRY: AtomicUsize = AtomicUsize::new(0);

/// Makes every AP leave its boot `hlt` loop and call `entry(its index)`, which
/// becomes its idle task and never returns (`proc::sched` passes its AP entry).
pub fn start_scheduling(entry: fn(usize) -> !) {
    SCHEDULER_ENTRY.store(entry as usize, Ordering::Release);
    for (index, cpu) in PER_CPU.iter().enumerate().skip(1) {
        if cpu.is_online.load(Ordering::Acquire) {
            send_reschedule(index);
        }
    }
}

/// Sends CPU `index` the reschedule IPI (it wakes from `hlt` and looks for work).
pub fn send_reschedule(index: usize) {
    lapic::send_ipi(PER_CPU[index].apic_id.load(Ordering::Relaxed), lapic::RESCHEDULE_VECTOR);
}

/// Wakes one idle CPU other than this one, if any, with a reschedule IPI: a task
/// was just made runnable. Returns the CPU woken.
pub fn kick_an_idle_cpu() -> Option<usize> {
    if nr_online() <= 1 {
        return None;
    }
    let me = cpu_id();
    let cpu = (0..MAX_CPUS).find(|&c| c != me && PER_CPU[c].is_idle.swap(false, Ordering::AcqRel))?;
    send_reschedule(cpu);
    Some(cpu)
}

/// Wakes CPU `index` with a reschedule IPI if it is idle and not this CPU: a task
/// only it may run was queued.
pub fn kick_if_idle(index: usize) {
    if index != cpu_id() && PER_CPU[index].is_idle.swap(false, Ordering::AcqRel) {
        send_reschedule(index);
    }
}

/// Handles the reschedule IPI: nothing to do but end it (the `hlt` is over).
pub fn on_reschedule_ipi() {
    lapic::eoi();
}

/// Busy-waits `ms` milliseconds on the TSC (interrupts may be off).
fn delay_ms(ms: u64) {
    let start = timer::rdtsc();
    let cycles = ms * timer::tsc_per_ms();
    while timer::rdtsc() - start < cycles {
        core::hint::spin_loop();
    }
}

/// Why an AP did not start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartError {
    /// No memory for its stacks.
    NoMemory,
    /// It did not say it was up within [`AP_START_TIMEOUT_MS`].
    NoAnswer,
}

/// Returns true if `[TRAMPOLINE_PHYS, TRAMPOLINE_PD + 4 KiB)` is usable RAM.
fn trampoline_is_ram() -> bool {
    use bootloader_api::info::MemoryRegionKind;
    crate::bootmem::memory_regions()
        .iter()
        .any(|r| r.kind == MemoryRegionKind::Usable && r.start <= TRAMPOLINE_PHYS && r.end >= TRAMPOLINE_PD + 4096)
}

/// Writes the trampoline code and its page tables below 1 MiB.
fn install_trampoline() {
    let page = |phys: u64| phys_to_virt(PhysAddr::new(phys)).as_u64() as *mut u64;
    // The two symbols delimit the trampoline's bytes in the kernel's rodata.
    let (start, end) = (&raw const ap_trampoline_start, &raw const ap_trampoline_end);
    let len = end as usize - start as usize;
    assert!(len <= PARAMS_OFFSET as usize, "smp: trampoline overlaps its parameters");
    let kernel_pml4 = page(paging::kernel_root().start_address().as_u64());
    // SAFETY: the four pages at TRAMPOLINE_PHYS are RAM below 1 MiB (checked by the
    // caller) that `frame::init` keeps out of the allocator and nothing else uses; the
    // direct map covers them. The kernel PML4 is read only.
    unsafe {
        core::ptr::copy_nonoverlapping(start, page(TRAMPOLINE_PHYS) as *mut u8, len);
        let (pml4, pdpt, pd) = (page(TRAMPOLINE_PML4), page(TRAMPOLINE_PDPT), page(TRAMPOLINE_PD));
        core::ptr::write_bytes(pml4, 0, 512);
        core::ptr::write_bytes(pdpt, 0, 512);
        core::ptr::write_bytes(pd, 0, 512);
        const PRESENT_WRITABLE: u64 = 0b11;
        const HUGE: u64 = 1 << 7;
        pml4.write(TRAMPOLINE_PDPT | PRESENT_WRITABLE);
        pdpt.write(TRAMPOLINE_PD | PRESENT_WRITABLE);
        pd.write(PRESENT_WRITABLE | HUGE); // [0, 2 MiB) 1:1, executable
        // The kernel half: the same PDPTs as the kernel's tree (they never change).
        for slot in 256..512 {
            pml4.add(slot).write(kernel_pml4.add(slot).read());
        }
    }
}

/// Starts every usable CPU the MADT lists besides the boot CPU; returns how many
/// are online (the boot CPU included). Prints one line per CPU. Interrupts must
/// be on (the APIC timer is calibrated against the PIT's ticks first).
pub fn start_aps() -> usize {
    let Some(madt) = acpi::madt() else { return 1 };
    let bsp_apic_id = PER_CPU[0].apic_id.load(Ordering::Relaxed);
    let aps: alloc::vec::Vec<u32> =
        madt.usable_cpus().map(|c| c.apic_id).filter(|&id| id != bsp_apic_id).take(MAX_CPUS - 1).collect();
    if aps.is_empty() {
        return 1;
    }
    if !trampoline_is_ram() {
        log::warn!("smp: cannot start the other CPUs (no low RAM for the trampoline)");
        return 1;
    }
    // Only the APs use their APIC timer (the boot CPU ticks on the PIT), so a
    // one-CPU boot spends no time on this (100 ms).
    lapic::calibrate();
    install_trampoline();
    for (i, &apic_id) in aps.iter().enumerate() {
        let index = i + 1;
        match start_one(index, apic_id) {
            Ok(()) => crate::println!(
                "smp: cpu {index} (APIC id {apic_id}) is up, its APIC timer at {} counts per tick",
                lapic::counts_per_tick()
            ),
            Err(e) => crate::println!("smp: cpu {index} (APIC id {apic_id}) did not start: {e:?}; going on without it"),
        }
    }
    nr_online()
}

/// Starts the AP with `apic_id` as CPU `index` and waits until it is up.
fn start_one(index: usize, apic_id: u32) -> Result<(), StartError> {
    let new_stack = |name| KernelStack::new(AP_STACK_PAGES, name).map_err(|_| StartError::NoMemory);
    let stack = new_stack("AP idle")?;
    let double_fault = KernelStack::new(gdt::IST_SIZE_BYTES as u64 / 4096, "AP double-fault IST").map_err(|_| StartError::NoMemory)?;
    let nmi = KernelStack::new(gdt::IST_SIZE_BYTES as u64 / 4096, "AP NMI IST").map_err(|_| StartError::NoMemory)?;
    let tables = gdt::build_cpu_tables(index, double_fault.top(), nmi.top());
    PER_CPU[index].apic_id.store(apic_id, Ordering::Relaxed);
    let params = ApParams {
        stack_top: stack.top(),
        entry: ap_entry as *const () as u64,
        cpu_index: index as u64,
        kernel_cr3: paging::kernel_root().start_address().as_u64(),
        tables: tables as *const gdt::CpuTables as u64,
    };
    // SAFETY: the parameter block lies in the trampoline page (installed, RAM, ours),
    // past the code; no AP is between INIT and "up" while we write it.
    unsafe { (phys_to_virt(PhysAddr::new(TRAMPOLINE_PHYS + PARAMS_OFFSET)).as_u64() as *mut ApParams).write_volatile(params) };
    lapic::send_init(apic_id);
    delay_ms(10);
    for _ in 0..2 {
        lapic::send_startup(apic_id, TRAMPOLINE_PHYS);
        delay_ms(1);
        if PER_CPU[index].is_online.load(Ordering::Acquire) {
            break;
        }
    }
    let start = timer::rdtsc();
    while !PER_CPU[index].is_online.load(Ordering::Acquire) {
        if timer::rdtsc() - start > AP_START_TIMEOUT_MS * timer::tsc_per_ms() {
            // Its stacks stay allocated: it might still wake up and use them.
            core::mem::forget((stack, double_fault, nmi));
            return Err(StartError::NoAnswer);
        }
        core::hint::spin_loop();
    }
    core::mem::forget((stack, double_fault, nmi)); // used as long as the CPU runs
    Ok(())
}

/// Where an AP arrives in 64-bit mode, on its own stack, from the trampoline.
extern "C" fn ap_entry(cpu_index: u64, kernel_cr3: u64, tables: u64) -> ! {
    // SAFETY: `kernel_cr3` is the kernel's PML4, which maps this code, this stack and
    // everything below; the trampoline's PML4 shares its kernel half, so nothing this
    // CPU uses moves. PCID 0, as CR4.PCIDE is still off.
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) kernel_cr3, options(nostack));
    }
    cpu::enable_nx_and_wp();
    cpu::enable_protection();
    super::user_state::enable_sse();
    // SAFETY: the BSP built these tables for this CPU alone (`start_one`) and leaked them.
    let tables: &'static gdt::CpuTables = unsafe { &*(tables as *const gdt::CpuTables) };
    tables.load();
    idt::init();
    if HAS_TSC_AUX.load(Ordering::Relaxed) {
        write_msr(IA32_TSC_AUX, cpu_index);
    }
    lapic::init_this_cpu();
    // Counted before interrupts are on: from now on `cpu_id` asks the CPU.
    NR_ONLINE.fetch_add(1, Ordering::AcqRel);
    PER_CPU[cpu_index as usize].is_online.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();
    loop {
        x86_64::instructions::hlt();
        let entry = SCHEDULER_ENTRY.load(Ordering::Acquire);
        if entry != 0 {
            // SAFETY: `start_scheduling` stored this address from a `fn(usize) -> !`.
            let entry: fn(usize) -> ! = unsafe { core::mem::transmute::<usize, fn(usize) -> !>(entry) };
            entry(cpu_index as usize);
        }
    }
}
