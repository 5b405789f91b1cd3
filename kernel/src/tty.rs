//! Console input: the serial line's receive path and its line discipline.
//!
//! ```text
//!  key typed ─> QEMU ─> COM1 receive FIFO ─> IRQ 4 ─> on_receive_interrupt
//!      (interrupts off: only copies the bytes into RAW, a fixed ring, and wakes the thread)
//!                                                   │
//!  "tty" kernel thread <────────────────────────────┘
//!      feeds each byte to the LineDiscipline (mm_core::line_discipline) under LDISC:
//!      echo printed, Ctrl-C kills the foreground process, a finished line wakes readers
//!                                                   │
//!  read(0, buf, n) ─> tty::read: sleeps on INPUT_READY until a line (or Ctrl-D) is
//!                     there, takes at most one line, copies it to the user
//! ```
//! The interrupt handler does no more than move bytes: the line discipline
//! allocates (lines are `Vec`s) and kills processes, which an interrupt handler must
//! not do. Linux splits the work the same way (the UART driver pushes into the tty's
//! "flip buffer", a worker runs the line discipline on it).
//!
//! The thread starts with the first reader ([`read`] or [`set_foreground`]): a
//! kernel that never reads its console (every test image but the console tests)
//! starts no thread for it; bytes typed before that wait in RAW (when it is full,
//! more are dropped and counted).
//!
//! The *foreground process* is the one Ctrl-C kills: a shell sets it with
//! `ioctl(0, TIOCSPGRP, &pid)` before it waits for a command, and back to itself
//! after (Linux's job control, with a pid standing in for a process group); with no
//! live foreground process, Ctrl-C only drops the line being typed.
//!
//! Locks: RAW is an `IrqMutex` (leaf: nothing is taken under it), LDISC a sleeping
//! mutex held only by the thread and by readers, never under a spinlock.

use alloc::vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use abi::Errno;
use mm_core::line_discipline::LineDiscipline;

use crate::arch::irq::{self, IrqHandler, Trigger};
use crate::arch::serial;
use crate::sync::{IrqMutex, Mutex, WaitQueue};

/// Bytes the interrupt handler can hold for the thread.
const RAW_CAPACITY: usize = 1024;

/// Received bytes the thread has not processed yet.
struct RawRing {
    bytes: [u8; RAW_CAPACITY],
    head: usize,
    len: usize,
}

static RAW: IrqMutex<RawRing> = IrqMutex::new(RawRing { bytes: [0; RAW_CAPACITY], head: 0, len: 0 });
/// The thread waits here for received bytes.
static RAW_ARRIVED: WaitQueue = WaitQueue::new();
/// Bytes dropped because RAW was full.
static NR_DROPPED: AtomicU64 = AtomicU64::new(0);
/// Bytes received since boot.
static NR_RECEIVED: AtomicU64 = AtomicU64::new(0);

/// The line discipline: the line being typed and the lines ready to read.
static LDISC: Mutex<LineDiscipline> = Mutex::new(LineDiscipline::new());
/// True when LDISC has input for a reader (a copy readable without the mutex, for
/// the wait condition).
static HAS_INPUT: AtomicBool = AtomicBool::new(false);
/// Readers wait here for a line.
static INPUT_READY: WaitQueue = WaitQueue::new();

/// The pid Ctrl-C kills (0: none).
static FOREGROUND: AtomicU64 = AtomicU64::new(0);
/// Ctrl-C presses seen.
static NR_INTERRUPTS: AtomicU64 = AtomicU64::new(0);
/// Set once the thread runs.
static IS_THREAD_STARTED: AtomicBool = AtomicBool::new(false);

/// What the kernel prints once console input works: the runner's `--script`
/// waits for it before it types (bytes that arrive earlier are lost when the UART
/// is set up).
pub const INPUT_READY_MARKER: &str = "tty: console input on COM1";

/// Turns on the receive interrupt of COM1. Called once at boot.
pub fn init() {
    let handler = IrqHandler { handler_fn: on_receive_interrupt, context: 0 };
    if let Err(e) = irq::register_with_trigger(serial::COM1_IRQ_LINE, handler, Trigger::Edge) {
        log::warn!("tty: no console input ({e:?})");
        return;
    }
    serial::enable_receive_interrupt();
    crate::println!("{INPUT_READY_MARKER} (IRQ {})", serial::COM1_IRQ_LINE);
}

/// IRQ 4: moves what the UART received into RAW. Interrupts are off.
fn on_receive_interrupt(_context: usize) {
    let mut raw = RAW.lock();
    let n = serial::drain_received(|byte| {
        if raw.len == RAW_CAPACITY {
            NR_DROPPED.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let at = (raw.head + raw.len) % RAW_CAPACITY;
        raw.bytes[at] = byte;
        raw.len += 1;
    });
    drop(raw);
    NR_RECEIVED.fetch_add(n as u64, Ordering::Relaxed);
    if n > 0 {
        RAW_ARRIVED.wake_all();
    }
}

/// Takes every byte out of RAW into `out`; returns how many.
fn take_raw(out: &mut [u8; RAW_CAPACITY]) -> usize {
    let mut raw = RAW.lock();
    let n = raw.len;
    for (i, slot) in out.iter_mut().enumerate().take(n) {
        *slot = raw.bytes[(raw.head + i) % RAW_CAPACITY];
    }
    raw.head = (raw.head + n) % RAW_CAPACITY;
    raw.len = 0;
    n
}

/// The thread: runs the line discipline over received bytes, forever.
extern "C" fn tty_main() -> ! {
    let mut batch = [0u8; RAW_CAPACITY];
    loop {
        RAW_ARRIVED.wait_until(|| RAW.lock().len > 0);
        let n = take_raw(&mut batch);
        for &byte in &batch[..n] {
            process_byte(byte);
        }
    }
}

/// Feeds one byte to the line discipline and carries out what it says.
fn process_byte(byte: u8) {
    let feedback = {
        let mut ldisc = LDISC.lock();
        let feedback = ldisc.feed(byte);
        HAS_INPUT.store(ldisc.has_input(), Ordering::SeqCst);
        feedback
    };
    serial::write_raw(&feedback.echo);
    if feedback.is_interrupt {
        NR_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
        let pid = FOREGROUND.load(Ordering::SeqCst);
        if pid != 0 {
            crate::proc::task::kill(pid, format_args!("interrupted (Ctrl-C)"));
        }
    }
    if feedback.has_new_input {
        INPUT_READY.wake_all();
    }
}

/// Starts the thread if it does not run yet.
fn ensure_thread() -> Result<(), Errno> {
    if IS_THREAD_STARTED.swap(true, Ordering::SeqCst) {
        return Ok(());
    }
    if let Err(e) = crate::sync::kthread::spawn("tty", tty_main) {
        IS_THREAD_STARTED.store(false, Ordering::SeqCst);
        log::warn!("tty: thread not started: {e:?}");
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// Reads at most one line (up to `len` bytes) of console input, sleeping until
/// there is one, and hands it to `copy_out`; returns its length, 0 at an end of
/// file (Ctrl-D on an empty line). EINTR if the reader is killed while it waits
/// (`is_killed`). Bytes `copy_out` refuses (EFAULT) are lost, as on Linux.
pub fn read(len: usize, is_killed: fn() -> bool, copy_out: &mut dyn FnMut(&[u8]) -> Result<(), Errno>) -> Result<usize, Errno> {
    ensure_thread()?;
    if len == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; len.min(mm_core::line_discipline::MAX_LINE + 1)];
    loop {
        let mut killed = false;
        INPUT_READY.wait_until(|| {
            killed = is_killed();
            killed || HAS_INPUT.load(Ordering::SeqCst)
        });
        if killed {
            return Err(Errno::EINTR);
        }
        let n = {
            let mut ldisc = LDISC.lock();
            if !ldisc.has_input() {
                continue; // another reader took it first
            }
            let n = ldisc.read(&mut buf);
            HAS_INPUT.store(ldisc.has_input(), Ordering::SeqCst);
            n
        };
        copy_out(&buf[..n])?;
        return Ok(n);
    }
}

/// Makes `pid` the process Ctrl-C kills (0: none), and starts the thread that
/// notices Ctrl-C.
pub fn set_foreground(pid: u64) -> Result<(), Errno> {
    ensure_thread()?;
    FOREGROUND.store(pid, Ordering::SeqCst);
    Ok(())
}

/// Returns the pid Ctrl-C kills (0: none).
pub fn foreground() -> u64 {
    FOREGROUND.load(Ordering::SeqCst)
}

/// Console input counters since boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TtyStats {
    /// Bytes received from the UART.
    pub nr_received: u64,
    /// Bytes dropped because the thread fell behind.
    pub nr_dropped: u64,
    /// Ctrl-C presses.
    pub nr_interrupts: u64,
}

/// Returns the console input counters.
pub fn stats() -> TtyStats {
    TtyStats {
        nr_received: NR_RECEIVED.load(Ordering::Relaxed),
        nr_dropped: NR_DROPPED.load(Ordering::Relaxed),
        nr_interrupts: NR_INTERRUPTS.load(Ordering::Relaxed),
    }
}
