//! System calls: the `syscall` instruction's entry path and the handlers.
//!
//! ```text
//!  user:    rax = number, rdi rsi rdx r10 r8 r9 = arguments; `syscall`
//!  CPU:     rcx = user rip, r11 = user rflags, RIP = LSTAR, RFLAGS &= ~FMASK (IF, TF, DF, AC off)
//!  syscall_entry: switch to the task's kernel stack, push what an interrupt would
//!           (ss, rsp, rflags, cs, rip, error 0) and vector 0x100, jump to trap_common
//!  trap_common -> arch trap_entry -> crate::trap::dispatch -> dispatch(&mut TrapFrame): result -> frame.rax
//!  trap_return: pop, sysretq back to the user (iretq if the frame is unusual)
//! ```
//! Sharing the trap frame layout means `fork` can copy the parent's frame for the
//! child, and a blocked syscall is just a task switched out in the middle of one.
//! `sysretq` is used only when the frame is an ordinary user frame with a canonical
//! RIP (the SYSRET pitfall); otherwise `iretq`.
//!
//! Handlers validate every argument and return `Errno` values (Linux's numbers,
//! from the `abi` crate); nothing a process passes can panic the kernel.

use abi::{Errno, MemStat, WaitStatus, ksm_op, madv, map, nr, prot};
use x86_64::registers::model_specific::{Efer, EferFlags, Msr};

use super::task::{self, Pid};
use super::{fd_syscall, path_syscall};
use super::uaccess::copy_to_user;
use super::sched;
use crate::arch::gdt;
use crate::arch::trap::{SYSCALL_VECTOR, SYSRET_MARK, TrapFrame};
use crate::mm::addr_space::{MapRequest, VmError, VmProt};
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::headroom::{self, HeadroomError};
use crate::mm::{frame, reclaim, swap};


/// One CPU's syscall entry scratch: where `syscall_entry` parks the user's RSP and
/// finds the running task's kernel stack. `IA32_KERNEL_GS_BASE` of each CPU points at
/// its own slot; the entry `swapgs`es to reach it and `swapgs`es back before anything
/// else runs, so the rest of the kernel still sees the user's GS base.
#[repr(C)]
struct SyscallScratch {
    /// The user's RSP at the `syscall` (offset 0).
    user_rsp: core::cell::UnsafeCell<u64>,
    /// The running task's kernel stack top (offset 8).
    kernel_rsp: core::cell::UnsafeCell<u64>,
}

// SAFETY: slot `n` is written only by CPU `n` (its entry, and `set_kernel_stack` with
// interrupts off during a switch), so no two CPUs touch one slot.
unsafe impl Sync for SyscallScratch {}

static SYSCALL_SCRATCH: [SyscallScratch; crate::arch::smp::MAX_CPUS] = [const {
    SyscallScratch { user_rsp: core::cell::UnsafeCell::new(0), kernel_rsp: core::cell::UnsafeCell::new(0) }
}; crate::arch::smp::MAX_CPUS];

const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;

core::arch::global_asm!(
    r#"
    .section .text.syscall, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    mov gs:[0], rsp
    mov rsp, gs:[8]
    push {user_ss}
    push qword ptr gs:[0]
    swapgs
    push r11
    push {user_cs}
    push rcx
    push 0
    push {vector}
    jmp trap_common
    "#,
    user_ss = const gdt::USER_DATA_SELECTOR,
    user_cs = const gdt::USER_CODE_SELECTOR,
    vector = const SYSCALL_VECTOR,
);

unsafe extern "C" {
    fn syscall_entry();
}

const MSR_STAR: u32 = 0xc000_0081;
const MSR_LSTAR: u32 = 0xc000_0082;
const MSR_FMASK: u32 = 0xc000_0084;
/// RFLAGS bits cleared on entry: TF, IF, DF, AC.
const FMASK_BITS: u64 = (1 << 8) | (1 << 9) | (1 << 10) | (1 << 18);

/// Enables `syscall` and points it at `syscall_entry`.
pub fn init() {
    init_this_cpu(0);
}

/// Enables `syscall` on the running CPU, CPU `cpu`, with its own entry scratch.
pub fn init_this_cpu(cpu: usize) {
    let selectors = gdt::selectors();
    assert_eq!(u64::from(selectors.user_code.0), gdt::USER_CODE_SELECTOR, "syscall: GDT order changed");
    assert_eq!(u64::from(selectors.user_data.0), gdt::USER_DATA_SELECTOR, "syscall: GDT order changed");
    // STAR: kernel CS in 47..32 (SS = CS + 8); 63..48 = user base (sysret CS = base + 16, SS = base + 8).
    let star = (u64::from(selectors.kernel_code.0) << 32) | ((gdt::USER_DATA_SELECTOR - 8) << 48);
    // SAFETY: these MSRs only configure the syscall instruction: STAR has our GDT's
    // selectors, LSTAR the entry stub, FMASK clears IF/TF/DF/AC on entry; SCE enables it.
    unsafe {
        Msr::new(MSR_STAR).write(star);
        Msr::new(MSR_LSTAR).write(syscall_entry as *const () as u64);
        Msr::new(MSR_FMASK).write(FMASK_BITS);
        Msr::new(MSR_KERNEL_GS_BASE).write(core::ptr::from_ref(&SYSCALL_SCRATCH[cpu]) as u64);
        Efer::update(|f| *f |= EferFlags::SYSTEM_CALL_EXTENSIONS);
    }
}

/// Sets the kernel stack `syscall_entry` switches to (the running task's).
pub fn set_kernel_stack(top: u64) {
    let scratch = &SYSCALL_SCRATCH[crate::arch::smp::cpu_id()];
    // SAFETY: this CPU's own slot, written with interrupts off during a task switch;
    // read only by this CPU's `syscall_entry`, which cannot run meanwhile.
    unsafe { *scratch.kernel_rsp.get() = top };
}

/// Routes a syscall to its handler and stores the result in `frame.rax`; marks the
/// frame for the `sysretq` return when that is safe (see [`can_sysret`]).
///
/// Called by the trap dispatcher (`crate::trap`) for frames whose vector is
/// `SYSCALL_VECTOR`. `syscall` already cleared RFLAGS.AC (FMASK), so unlike other
/// traps no `clac` is needed.
pub extern "C" fn dispatch(frame: &mut TrapFrame) {
    // Short calls run with interrupts off; the others let the timer tick meanwhile.
    // (`sti` is not free under emulation: it ends QEMU's translation block.)
    let is_short = matches!(frame.rax, nr::GETPID | nr::CLOCK_GETTIME);
    if !is_short {
        x86_64::instructions::interrupts::enable();
    }
    // A call that may allocate starts only once the kernel heap has headroom: the
    // heap cannot fail gracefully once the call holds locks (see `mm::headroom`).
    let result = if is_short {
        call(frame)
    } else {
        match headroom::ensure_heap_headroom() {
            Ok(()) => call(frame),
            // Chosen by the OOM killer: `exit_if_killed` below ends the process.
            Err(HeadroomError::Killed | HeadroomError::NoMemory) => Err(Errno::ENOMEM),
        }
    };
    frame.rax = match result {
        Ok(value) => value,
        Err(errno) => errno.to_ret(),
    };
    task::exit_if_killed();
    if !is_short {
        x86_64::instructions::interrupts::disable();
    }
    if can_sysret(frame) {
        frame.vector = SYSRET_MARK;
    }
}

/// Runs the handler of the syscall in `frame.rax`.
fn call(frame: &mut TrapFrame) -> Result<u64, Errno> {
    let args = [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9];
    match frame.rax {
        nr::WRITE => sys_write(args[0], args[1], args[2]),
        nr::MMAP => sys_mmap(args),
        nr::MPROTECT => sys_mprotect(args[0], args[1], args[2]),
        nr::MUNMAP => super::mmap_file::munmap(args[0], args[1]),
        nr::MSYNC => super::mmap_file::msync(args[0], args[1], args[2]),
        nr::BRK => with_space(|s| Ok(s.brk(args[0]).as_u64())),
        nr::SCHED_YIELD => {
            sched::yield_now();
            Ok(0)
        }
        nr::MADVISE => sys_madvise(args[0], args[1], args[2]),
        nr::GETPID => Ok(task::current_tgid()),
        nr::FORK => super::thread::sys_clone(frame, super::thread::SIGCHLD, 0, 0, 0, 0),
        nr::CLONE => super::thread::sys_clone(frame, args[0], args[1], args[2], args[3], args[4]),
        nr::EXECVE => super::execve::sys_execve(frame, args[0], args[1], args[2]),
        nr::EXIT => task::exit_current(WaitStatus::exited(args[0] as i32)),
        nr::WAIT4 => sys_wait4(args[0] as i64, args[1], args[2], args[3]),
        nr::MEMSTAT => sys_memstat(args[0]),
        nr::MAPS => sys_maps(args[0], args[1]),
        nr::CLOCK_GETTIME => sys_clock_gettime(args[0], args[1]),
        nr::PROCESS_VM_READV => super::vm_rw::sys_process_vm_rw(args, super::vm_rw::Direction::FromTarget),
        nr::PROCESS_VM_WRITEV => super::vm_rw::sys_process_vm_rw(args, super::vm_rw::Direction::ToTarget),
        nr::ARGS => sys_args(args[0], args[1]),
        nr::AUDIT => sys_audit(args[0]),
        nr::WSSTAT => sys_wsstat(args[0], args[1]),
        nr::EXPLAIN => super::teach_syscall::sys_explain(args[0], args[1], args[2]),
        nr::FAULT_TRACE => super::teach_syscall::sys_fault_trace(args[0], args[1], args[2], args[3]),
        nr::LOADCTL => match args[0] {
            0 | 1 => {
                super::load_control::set_enabled(args[0] == 1);
                Ok(0)
            }
            _ => Err(Errno::EINVAL),
        },
        nr::MEMCG_CREATE => crate::mm::memcg::create(args[0], args[1]).map(u64::from).map_err(memcg_errno),
        nr::MEMCG_ATTACH => {
            let pid = if args[0] == 0 { task::current_pid() } else { args[0] };
            let group = u32::try_from(args[1]).map_err(|_| Errno::EINVAL)?;
            task::attach_memcg(pid, group)
        }
        nr::KSM_CTL => sys_ksm_ctl(args[0], args[1]),
        nr::OOM_SCORE_ADJ => {
            let pid = if args[0] == 0 { task::current_pid() } else { args[0] };
            task::set_oom_score_adj(pid, args[1] as i64).map(|_| 0)
        }
        // Files (fs/, proc/fd_syscall.rs, proc/path_syscall.rs); `write` is above.
        nr::READ => fd_syscall::sys_read(args[0], args[1], args[2]),
        nr::CLOSE => fd_syscall::sys_close(args[0]),
        nr::LSEEK => fd_syscall::sys_lseek(args[0], args[1], args[2]),
        nr::FSTAT => fd_syscall::sys_fstat(args[0], args[1]),
        nr::GETDENTS64 => fd_syscall::sys_getdents64(args[0], args[1], args[2]),
        nr::FTRUNCATE => fd_syscall::sys_ftruncate(args[0], args[1]),
        nr::FSYNC => fd_syscall::sys_fsync(args[0]),
        // sync(2) cannot fail on Linux: an error stays in its pages (dirty) and is logged.
        nr::SYNC => {
            if let Err(e) = crate::fs::sync_all() {
                log::warn!("sync: {e:?} (the pages stay dirty)");
            }
            Ok(0)
        }
        nr::DUP => fd_syscall::sys_dup(args[0]),
        nr::DUP2 => fd_syscall::sys_dup2(args[0], args[1]),
        nr::PIPE => fd_syscall::sys_pipe2(args[0], 0),
        nr::PIPE2 => fd_syscall::sys_pipe2(args[0], args[1]),
        nr::OPEN => path_syscall::sys_open(args[0], args[1], args[2]),
        nr::OPENAT => path_syscall::sys_openat(args[0], args[1], args[2], args[3]),
        nr::STAT => path_syscall::sys_stat(args[0], args[1]),
        nr::NEWFSTATAT => path_syscall::sys_newfstatat(args[0], args[1], args[2], args[3]),
        nr::UNLINK => path_syscall::sys_unlink(args[0]),
        nr::MKDIR => path_syscall::sys_mkdir(args[0], args[1]),
        nr::RMDIR => path_syscall::sys_rmdir(args[0]),
        nr::RENAME => path_syscall::sys_rename(args[0], args[1]),
        nr::CHDIR => path_syscall::sys_chdir(args[0]),
        nr::GETCWD => path_syscall::sys_getcwd(args[0], args[1]),
        // What a C library (musl) calls on its own, and the ENOSYS line: syscall_libc.rs.
        other => super::syscall_libc::dispatch(other, args).unwrap_or_else(|| super::syscall_libc::unknown(other)),
    }
}

/// Returns true if `frame` can be returned to with `sysretq` instead of `iretq`.
///
/// `sysretq` sets CS/SS from STAR and RIP/RFLAGS from RCX/R11, so the frame must be
/// an ordinary user frame. RIP must be canonical: `sysretq` to a non-canonical RIP
/// faults in ring 0 on the user's stack (the classic SYSRET bug), so such returns
/// take the `iretq` path.
fn can_sysret(frame: &TrapFrame) -> bool {
    const RFLAGS_TF_RF_VM: u64 = (1 << 8) | (1 << 16) | (1 << 17);
    frame.cs == gdt::USER_CODE_SELECTOR
        && frame.ss == gdt::USER_DATA_SELECTOR
        && frame.rip < crate::mm::layout::USER_END
        && frame.rflags & RFLAGS_TF_RF_VM == 0
}

pub(super) fn errno_of(e: VmError) -> Errno {
    match e {
        VmError::Invalid => Errno::EINVAL,
        VmError::NoMemory => Errno::ENOMEM,
        VmError::Unsupported => Errno::ENODEV,
        VmError::Permission => Errno::EPERM,
        VmError::Exists => Errno::EEXIST,
    }
}

/// Runs `f` on the caller's address space with its lock held.
fn with_space(f: impl FnOnce(&mut crate::mm::addr_space::AddressSpace) -> Result<u64, VmError>) -> Result<u64, Errno> {
    let space = task::current_space().ok_or(Errno::EPERM)?;
    let mut space = space.lock();
    f(&mut space).map_err(errno_of)
}

/// write(2): to whatever the fd is open on (the console, a file, a pipe).
pub(super) fn sys_write(fd: u64, buf: u64, len: u64) -> Result<u64, Errno> {
    fd_syscall::sys_write(fd, buf, len)
}

/// mmap, with Linux's argument checks for anonymous memory, in Linux's order: an
/// unaligned offset is EINVAL (an aligned one is ignored); a file mapping goes to
/// `mmap_file` (the page cache); the type must be
/// `MAP_SHARED` or `MAP_PRIVATE` (`MAP_SHARED_VALIDATE` is for files: EINVAL, as in
/// Linux); flags Linux ignores are ignored (`MAP_NORESERVE`: no swap is reserved
/// anyway); flags Linux implements and we do not (`MAP_GROWSDOWN`, `MAP_LOCKED`,
/// `MAP_HUGETLB`) are EINVAL rather than silently half-done.
fn sys_mmap(args: [u64; 6]) -> Result<u64, Errno> {
    let [addr, len, prot_bits, flags, fd, offset] = args;
    if !offset.is_multiple_of(abi::PAGE_SIZE as u64) {
        return Err(Errno::EINVAL);
    }
    let sharing = flags & map::TYPE;
    if sharing != map::SHARED && sharing != map::PRIVATE {
        return Err(Errno::EINVAL);
    }
    if prot_bits & !(prot::READ | prot::WRITE | prot::EXEC) != 0 || flags & (map::GROWSDOWN | map::LOCKED | map::HUGETLB) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & map::ANONYMOUS == 0 {
        return super::mmap_file::mmap_file(addr, len, prot_bits, flags, fd, offset);
    }
    let request = MapRequest {
        is_shared: sharing == map::SHARED,
        is_fixed: flags & map::FIXED != 0,
        is_noreplace: flags & map::FIXED_NOREPLACE != 0,
        is_populate: flags & map::POPULATE != 0,
    };
    let prot = VmProt::from_bits_truncate(prot_bits as u8);
    with_space(|s| s.mmap(addr, len, prot, request).map(|a| a.as_u64()))
}

fn sys_mprotect(addr: u64, len: u64, prot_bits: u64) -> Result<u64, Errno> {
    if prot_bits & !(prot::READ | prot::WRITE | prot::EXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    with_space(|s| s.mprotect(addr, len, VmProt::from_bits_truncate(prot_bits as u8)).map(|_| 0))
}

/// `ksm_ctl(op, value)`: same-page merging's knobs, a pass now, its counters
/// (`abi::ksm_op`; `mm/ksm.rs`).
fn sys_ksm_ctl(op: u64, value: u64) -> Result<u64, Errno> {
    use crate::mm::ksm;
    let stats = || ksm::stats();
    match op {
        ksm_op::SET_RUN if value <= 1 => ksm::set_run(value == 1),
        ksm_op::SET_PAGES_TO_SCAN => ksm::set_pages_to_scan(value),
        ksm_op::SET_SLEEP_MILLISECS => ksm::set_sleep_millisecs(value),
        ksm_op::SCAN => {
            let nr_pages = if value == 0 { ksm::knobs().1 } else { value };
            return Ok(ksm::scan(nr_pages).nr_merged);
        }
        ksm_op::PAGES_SHARED => return Ok(stats().pages_shared),
        ksm_op::PAGES_SHARING => return Ok(stats().pages_sharing),
        ksm_op::PAGES_UNSHARED => return Ok(stats().pages_unshared),
        ksm_op::FULL_SCANS => return Ok(stats().full_scans),
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

/// madvise, as Linux: an unknown advice or unaligned address is EINVAL, length 0
/// does nothing, and a range with unmapped parts is acted on where it is mapped,
/// then reported as ENOMEM.
fn sys_madvise(addr: u64, len: u64, advice: u64) -> Result<u64, Errno> {
    match advice {
        madv::DONTNEED => with_space(|s| s.madvise_dontneed(addr, len).map(|_| 0)),
        madv::FREE => with_space(|s| s.madvise_free(addr, len).map(|_| 0)),
        madv::DONTFORK | madv::DOFORK => with_space(|s| s.madvise_set_dontfork(addr, len, advice == madv::DONTFORK).map(|_| 0)),
        madv::MERGEABLE | madv::UNMERGEABLE => {
            with_space(|s| s.madvise_set_mergeable(addr, len, advice == madv::MERGEABLE).map(|_| 0))
        }
        madv::HUGEPAGE | madv::NOHUGEPAGE => with_space(|s| s.madvise_set_hugepage(addr, len, advice == madv::HUGEPAGE).map(|_| 0)),
        // Access-pattern hints change nothing here; pages in swap are read back on
        // their first touch (WILLNEED): accepted, nothing done now.
        madv::NORMAL | madv::RANDOM | madv::SEQUENTIAL | madv::WILLNEED => with_space(|s| s.madvise_hint(addr, len).map(|_| 0)),
        madv::PAGEOUT => {
            let space = task::current_space().ok_or(Errno::EPERM)?;
            let range = space.lock().advice_range(addr, len).map_err(errno_of)?;
            let Some((start, end, is_full)) = range else {
                return Ok(0);
            };
            reclaim::pageout(&space, start.as_u64(), end - start).map_err(errno_of)?;
            if is_full { Ok(0) } else { Err(Errno::ENOMEM) }
        }
        _ => Err(Errno::EINVAL),
    }
}

/// wait4(2). `WNOHANG` is supported for one child (`pid > 0`, what a shell asks
/// for its background jobs): 0 if it still runs.
fn sys_wait4(pid: i64, status: u64, options: u64, rusage: u64) -> Result<u64, Errno> {
    if (options != 0 && options != abi::WNOHANG) || rusage != 0 || pid == 0 || pid < -1 {
        return Err(Errno::EINVAL);
    }
    if options == abi::WNOHANG {
        if pid < 0 {
            return Err(Errno::EINVAL);
        }
        if !task::is_child_of_current(pid as Pid) {
            return Err(Errno::ECHILD);
        }
        let Some(child_status) = task::try_reap(pid as Pid) else {
            return Ok(0);
        };
        if status != 0 {
            copy_to_user(status, &child_status.to_raw().to_ne_bytes())?;
        }
        return Ok(pid as u64);
    }
    let which: Option<Pid> = (pid > 0).then_some(pid as Pid);
    let (child, child_status) = task::wait(which).ok_or(Errno::ECHILD)?;
    if status != 0 {
        copy_to_user(status, &child_status.to_raw().to_ne_bytes())?;
    }
    Ok(child)
}

fn sys_memstat(out: u64) -> Result<u64, Errno> {
    let stats = {
        let space = task::current_space().ok_or(Errno::EPERM)?;
        let space = space.lock();
        (space.stats, space.vmas().len() as u64)
    };
    let info = frame::buddyinfo();
    let (free_slots, total_slots) = swap::slot_counts();
    let memstat = MemStat {
        rss_pages: stats.0.rss_pages,
        nr_vmas: stats.1,
        minor_faults: stats.0.minor_faults,
        major_faults: stats.0.major_faults,
        cow_faults: stats.0.cow_faults,
        swap_out_pages: stats.0.swap_out_pages,
        swap_in_pages: stats.0.swap_in_pages,
        swap_pages: stats.0.swap_pages,
        free_frames: info.nr_free_frames,
        total_frames: info.nr_managed_frames,
        free_swap_slots: free_slots,
        total_swap_slots: total_slots,
        swap_reads: vmstat::nr_events(SwapEvent::SwapIn),
        swap_writes: vmstat::nr_events(SwapEvent::SwapOut),
        anon_huge_pages: stats.0.anon_huge_pages,
    };
    // The struct is repr(C) and all u64: its bytes are these words in order.
    let words = [
        memstat.rss_pages,
        memstat.nr_vmas,
        memstat.minor_faults,
        memstat.major_faults,
        memstat.cow_faults,
        memstat.swap_out_pages,
        memstat.swap_in_pages,
        memstat.swap_pages,
        memstat.free_frames,
        memstat.total_frames,
        memstat.free_swap_slots,
        memstat.total_swap_slots,
        memstat.swap_reads,
        memstat.swap_writes,
        memstat.anon_huge_pages,
    ];
    let mut bytes = [0u8; abi::MEMSTAT_WORDS * 8];
    for (i, w) in words.iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    debug_assert_eq!(core::mem::size_of::<MemStat>(), bytes.len());
    copy_to_user(out, &bytes)?;
    Ok(0)
}

fn memcg_errno(e: crate::mm::memcg::MemcgError) -> Errno {
    match e {
        crate::mm::memcg::MemcgError::NoFreeGroup => Errno::ENOSPC,
        crate::mm::memcg::MemcgError::BadLimits | crate::mm::memcg::MemcgError::NoSuchGroup => Errno::EINVAL,
    }
}

/// `wsstat(pid, out)`: the working set of process `pid` (0: the caller).
fn sys_wsstat(pid: u64, out: u64) -> Result<u64, Errno> {
    let pid = if pid == 0 { task::current_pid() } else { pid };
    let ws = task::ws_snapshot(pid).ok_or(Errno::ESRCH)?;
    let stat = abi::WsStat {
        ws_pages: ws.ws_pages,
        nr_samples: ws.nr_samples,
        tau_ms: ws.tau_ms,
        cpu_ms: ws.cpu_ms,
        pff: ws.pff,
        major_pff: ws.major_pff,
        rss_pages: ws.rss_pages,
        history: ws.history.map(u64::from),
    };
    let mut bytes = [0u8; abi::WsStat::WORDS * 8];
    for (i, w) in stat.to_words().iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
    }
    copy_to_user(out, &bytes)?;
    Ok(0)
}

fn sys_maps(buf: u64, len: u64) -> Result<u64, Errno> {
    let text = {
        let space = task::current_space().ok_or(Errno::EPERM)?;
        let space = space.lock();
        space.maps_text()
    };
    let n = text.len().min(len as usize);
    copy_to_user(buf, &text.as_bytes()[..n])?;
    Ok(n as u64)
}

fn sys_clock_gettime(clock: u64, out: u64) -> Result<u64, Errno> {
    if clock != abi::CLOCK_MONOTONIC {
        return Err(Errno::EINVAL);
    }
    let ns = crate::arch::timer::cycles_to_ns(crate::arch::timer::rdtsc());
    let ts = abi::Timespec { tv_sec: (ns / 1_000_000_000) as i64, tv_nsec: (ns % 1_000_000_000) as i64 };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&ts.tv_sec.to_ne_bytes());
    bytes[8..].copy_from_slice(&ts.tv_nsec.to_ne_bytes());
    copy_to_user(out, &bytes)?;
    Ok(0)
}

fn sys_args(buf: u64, len: u64) -> Result<u64, Errno> {
    let args = task::TASKS.lock().get(&task::current_pid()).map(|t| t.args.clone()).unwrap_or_default();
    let n = args.len().min(len as usize);
    copy_to_user(buf, &args.as_bytes()[..n])?;
    Ok(args.len() as u64)
}

/// Runs the memory-consistency audit ([`crate::mm::check`]) for a user program and,
/// if `out` is not null, stores an [`abi::AuditReport`] there.
///
/// The caller should be alone with its reaped children (the fuzzer calls it between
/// workers). kswapd may still be in the middle of an eviction (a LOCKED frame whose
/// write is in flight), which the audit rightly reports, so a failed audit is retried
/// after giving the CPU away, up to [`AUDIT_ATTEMPTS`] times: a real inconsistency
/// stays, an eviction in flight ends.
fn sys_audit(out: u64) -> Result<u64, Errno> {
    crate::mm::heap::shrink();
    let mut last_error = alloc::string::String::new();
    for _ in 0..AUDIT_ATTEMPTS {
        match crate::mm::check::check_consistency() {
            Ok(census) => {
                if out != 0 {
                    let words = [crate::mm::heap::nr_frames(), census.nr_frames, census.nr_free_frames, census.nr_slots_used];
                    let mut bytes = [0u8; 32];
                    for (i, w) in words.iter().enumerate() {
                        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
                    }
                    copy_to_user(out, &bytes)?;
                }
                return Ok(0);
            }
            Err(e) => last_error = e,
        }
        sched::yield_now();
    }
    crate::println!("audit: INCONSISTENT: {last_error}");
    Err(Errno::EIO)
}

/// How many times [`sys_audit`] runs the audit before it reports a violation.
const AUDIT_ATTEMPTS: usize = 20;
