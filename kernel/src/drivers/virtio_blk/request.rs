//! One block request's life: fill its slot, chain it, notify, wait, read the status.
//!
//! The slots block holds one 16-byte header and one status byte per possible head
//! descriptor, so a request's memory is found from its head alone and several
//! requests could be in flight at once (today the driver keeps one). Submitting
//! does not wait; [`VirtioBlk::wait_for`] is the only loop: it sleeps until the
//! queue interrupt (`interrupt.rs`) where it can, and polls where it cannot.
//!
//! This is the only code that touches the request slots.

use super::{
    BlkError, interrupt, HEADER_BYTES, MAX_FRAMES_PER_REQUEST, QUEUE_INDEX, RequestHeader, STATUS_UNSET, VirtioBlk, blk_status,
    req_type,
};
use blockdev::hybrid_poll::HybridPoll;

use crate::arch::timer;
use crate::drivers::virtio_queue::{QueueError, Segment, UsedElem};
use crate::mm::PhysAddr;

/// The shortest poll window, and the first: a 4 KiB read under QEMU's TCG completes
/// in tens of microseconds, and a sleep, the switch to the idle task, the interrupt
/// and the switch back cost more than that. Measured with `--bench`
/// (docs/benchmarks.md, "Hybrid polling"): a 4 KiB read took 78 us when every
/// request slept, 55 us when it spun with `pause` first, 38 us polling (yielding)
/// for 100 us first (34 us before interrupts).
const MIN_POLL_US: u64 = 100;

/// The longest poll window: a device slower than this on average (a loaded host, a
/// real disk) is slept for, and its CPU goes to other tasks or halts.
const MAX_POLL_US: u64 = 2_000;

/// The poll window: adaptive between [`MIN_POLL_US`] and [`MAX_POLL_US`]
/// (`blockdev::hybrid_poll`), or fixed by `blk_poll_us=N` on the command line (0:
/// sleep at the first look that finds a request not done; for measurements).
pub(super) fn poll_window_from_cmdline() -> HybridPoll {
    let us_to_cycles = |us: u64| timer::tsc_per_ms() * us / 1000;
    match crate::cmdline::value("blk_poll_us").map(str::parse::<u64>) {
        Some(Ok(us)) => HybridPoll::fixed(us_to_cycles(us)),
        Some(Err(_)) => {
            log::warn!("virtio-blk: blk_poll_us= wants a number of microseconds; polling adaptively");
            HybridPoll::adaptive(us_to_cycles(MIN_POLL_US), us_to_cycles(MAX_POLL_US))
        }
        None => HybridPoll::adaptive(us_to_cycles(MIN_POLL_US), us_to_cycles(MAX_POLL_US)),
    }
}

impl VirtioBlk {
    /// Sends one request (header, data segments, status) and waits for its status.
    /// Returns the byte count the device reports written.
    ///
    /// # Safety
    /// Every segment of `data` must meet [`SplitQueue::add`]'s contract until this returns:
    /// memory the caller owns, physically contiguous, nothing else writing it (and
    /// for a device-writable segment, nothing else accessing it). This function
    /// returns only once the device gave the chain back or was reset.
    pub(super) unsafe fn run(&mut self, req_type: u32, sector: u64, data: &[Segment]) -> Result<u32, BlkError> {
        match req_type {
            req_type::IN => self.stats.nr_reads += 1,
            req_type::OUT => self.stats.nr_writes += 1,
            req_type::FLUSH => self.stats.nr_flushes += 1,
            _ => self.stats.nr_other += 1,
        }
        let start = timer::rdtsc();
        // SAFETY: passed on from our caller.
        let submitted = unsafe { self.submit(req_type, sector, data) };
        let submitted_at = timer::rdtsc();
        let result = submitted.and_then(|head| {
            let used = self.wait_for(head)?;
            self.status_of(head, sector).map(|()| used.len)
        });
        if req_type == req_type::IN {
            // Where a read's time goes (the bench's swap-in table shows it).
            self.stats.read_submit_cycles += submitted_at - start;
            self.stats.read_wait_cycles += timer::rdtsc() - submitted_at;
        }
        if result.is_err() {
            self.stats.nr_errors += 1;
        }
        result
    }

    /// Fills the request slot of the next head and offers the chain to the device;
    /// returns the head. Does not wait.
    ///
    /// # Safety
    /// As for [`run`](Self::run); the caller must then wait for the head.
    unsafe fn submit(&mut self, req_type: u32, sector: u64, data: &[Segment]) -> Result<u16, BlkError> {
        if self.is_broken {
            return Err(BlkError::DeviceBroken);
        }
        let head = self.queue.next_head().ok_or(BlkError::QueueFull)?;
        let (header_phys, status_phys) = self.write_slot(head, RequestHeader { req_type, reserved: 0, sector });
        let header = Segment { phys: header_phys, len: HEADER_BYTES as u32, is_device_writable: false };
        let status = Segment { phys: status_phys, len: 1, is_device_writable: true };
        assert!(data.len() <= MAX_FRAMES_PER_REQUEST, "VirtioBlk::submit: {} data segments", data.len());
        // The chain is built in the driver's buffer, within its capacity (no allocation).
        self.chain.clear();
        self.chain.push(header);
        self.chain.extend_from_slice(data);
        self.chain.push(status);
        // SAFETY: header and status live in `self.slots`, owned until `Drop` (which
        // resets the device first); the data segment is covered by our caller.
        let added = unsafe { self.queue.add(&self.chain) };
        match added {
            Ok(added_head) => debug_assert_eq!(added_head, head),
            Err(QueueError::Full) => return Err(BlkError::QueueFull),
            Err(_) => return Err(BlkError::DeviceBroken),
        }
        self.transport.notify(QUEUE_INDEX);
        Ok(head)
    }

    /// Waits until the device returns the chain at `head`.
    ///
    /// Looks at the used ring first; if the request is not back, sleeps on the
    /// device's wait queue until its interrupt says the ring moved, if it may
    /// ([`interrupt::can_sleep`]: a scheduler, interrupts on, a routed line);
    /// otherwise polls the used ring and yields the CPU in between.
    /// Either way the disk's lock is a sleeping `sync::Mutex`: no spinlock is held.
    /// On timeout, or if the device returns a chain that is not in flight, the
    /// device is reset (so no DMA lands later) and set up again. The deadline is
    /// checked before each look at the ring, so a zero timeout always gives up:
    /// tests use that to reset the device with a request in flight.
    fn wait_for(&mut self, head: u16) -> Result<UsedElem, BlkError> {
        let start = timer::rdtsc();
        let deadline = start.saturating_add(self.timeout_cycles);
        let spin_until = start.saturating_add(self.poll.spin_window());
        let irq = self.irq.filter(|_| interrupt::can_sleep());
        if irq.is_none() {
            self.stats.nr_polled += 1;
        }
        loop {
            if timer::rdtsc() >= deadline {
                self.stats.nr_timeouts += 1;
                let _ = self.reinit();
                return Err(BlkError::Timeout);
            }
            match self.queue.poll_used() {
                Ok(Some(used)) if used.head == head => {
                    self.poll.record(timer::rdtsc() - start);
                    return Ok(used);
                }
                // One request in flight at a time: anything else breaks the protocol.
                Ok(Some(_)) | Err(_) => {
                    let _ = self.reinit();
                    return Err(BlkError::DeviceBroken);
                }
                Ok(None) => {
                    self.stats.nr_not_done_looks += 1;
                    match irq {
                    // Hybrid polling: a short request is cheaper to poll for than to
                    // sleep for (see `poll_window_from_cmdline`).
                    Some(_) if timer::rdtsc() < spin_until => crate::proc::sched::yield_now(),
                    Some(irq) => self.sleep_until_used(irq, deadline),
                    None => crate::proc::sched::yield_now(),
                    }
                }
            }
        }
    }

    /// Sleeps until the device's interrupt says the used ring moved (or the deadline).
    /// Called once the request has been polled for the poll window.
    ///
    /// The device is asked to interrupt only now, just before the sleep: a request
    /// the device finished before the driver first looked (under QEMU's TCG most
    /// are: the device works inside the notify) costs no interrupt. The condition is
    /// checked again after the flag is cleared and the task marked waiting, so a
    /// completion just before either is not missed (Linux's `virtqueue_enable_cb`).
    fn sleep_until_used(&mut self, irq: &interrupt::DeviceIrq, deadline: u64) {
        self.stats.nr_irq_waits += 1;
        self.queue.set_interrupts(true);
        let queue = &self.queue;
        irq.sleep_until_used(|| queue.has_used(), deadline);
        self.queue.set_interrupts(false);
    }

    /// Writes the header for `head` and a not-yet-written status; returns their
    /// physical addresses.
    fn write_slot(&mut self, head: u16, header: RequestHeader) -> (PhysAddr, PhysAddr) {
        let (header_offset, status_offset) = self.slot_offsets(head);
        let base = self.slots.as_ptr();
        // SAFETY: both offsets are inside the owned slots block (one header and one
        // status byte per head, `slot_offsets` checks `head`); the header offset is
        // 16-byte aligned. The device does not own this slot: `head` is not in flight.
        unsafe {
            base.add(header_offset).cast::<RequestHeader>().write_volatile(header);
            base.add(status_offset).write_volatile(STATUS_UNSET);
        }
        let phys = self.slots.start().start_address();
        (phys + header_offset as u64, phys + status_offset as u64)
    }

    /// Returns the byte offsets of the header and status slots of `head`.
    fn slot_offsets(&self, head: u16) -> (usize, usize) {
        let size = self.queue.size() as usize;
        assert!((head as usize) < size, "VirtioBlk::slot_offsets: head out of range");
        (head as usize * HEADER_BYTES, size * HEADER_BYTES + head as usize)
    }

    /// Turns the status byte the device wrote for `head` into a result.
    fn status_of(&self, head: u16, sector: u64) -> Result<(), BlkError> {
        let (_, status_offset) = self.slot_offsets(head);
        // SAFETY: inside the owned slots block; the device returned the chain, so
        // it no longer writes the byte.
        let status = unsafe { self.slots.as_ptr().add(status_offset).read_volatile() };
        match status {
            blk_status::OK => Ok(()),
            blk_status::IOERR => Err(BlkError::IoError { sector }),
            blk_status::UNSUPP => Err(BlkError::Unsupported),
            other => Err(BlkError::BadStatus(other)),
        }
    }
}
