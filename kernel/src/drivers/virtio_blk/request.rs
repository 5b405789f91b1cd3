//! A block request's life: fill its slot, chain it, notify, wait, read the status;
//! and a batch's: several requests in flight at once.
//!
//! The slots block holds one 16-byte header and one status byte per possible head
//! descriptor, so a request's memory is found from its head alone. Every request
//! goes through [`VirtioBlk::run_batch`] (a single one is a batch of one): it
//! submits requests while there is room (a free in-flight slot, free ring
//! descriptors), notifies the device once for all of them, then collects
//! completions in whatever order the device returns them, submitting more as room
//! frees up, until the batch is done. With indirect descriptors a request takes one
//! ring entry and its chain lives in the in-flight slot's table (a page of 256
//! descriptors); without, a 254-frame request takes 256 of QEMU's 256 ring
//! entries, so big requests go one at a time and small ones still overlap.
//!
//! Errors stay with their request: a device status of IOERR or UNSUPP fails that
//! request only, the others of the batch complete as they do. A timeout (no
//! completion for the timeout) or a protocol error resets the device, which drops
//! everything in flight: those requests fail (Timeout, DeviceBroken); requests
//! not yet submitted go to the device set up again.
//!
//! [`VirtioBlk::wait_any`] is the only waiting loop: it sleeps until the queue
//! interrupt (`interrupt.rs`) where it can, and polls where it cannot.
//!
//! This is the only code that touches the request slots and the indirect tables.

use alloc::vec::Vec;

use super::{
    BlkError, HEADER_BYTES, INDIRECT_TABLE_ENTRIES, MAX_FRAMES_PER_REQUEST, QUEUE_INDEX, RequestHeader, STATUS_UNSET,
    VirtioBlk, blk_status, interrupt, req_type,
};
use blockdev::hybrid_poll::HybridPoll;

use crate::arch::timer;
use crate::drivers::virtio_queue::{QueueError, Segment, UsedElem};
use crate::mm::{PAGE_SIZE, PhysAddr};

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

/// A request the device holds, as the in-flight table keeps it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pending {
    /// Its index in the batch.
    index: usize,
    req_type: u32,
    sector: u64,
    /// Data bytes (counted as read or written when it succeeds).
    bytes: u64,
    /// When it was offered to the device (TSC).
    submitted_at: u64,
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
        let mut result = Err(BlkError::DeviceBroken);
        // SAFETY: passed on from our caller; `run_batch` returns only when the
        // request is back or the device was reset.
        unsafe {
            self.run_batch(
                1,
                |_, segments| {
                    segments.extend_from_slice(data);
                    (req_type, sector)
                },
                |_, r| result = r,
            )
        };
        result
    }

    /// Runs `nr_requests` requests with as many in flight at once as the device
    /// takes, and returns when every one is done: `describe(i, segments)` fills
    /// request i's data segments (an empty list given) and returns its type and
    /// first sector; `done(i, outcome)` gets its outcome (the bytes the device
    /// wrote, or the error), once per request, in completion order. `describe`
    /// may be called again for the same request when the ring had no room.
    ///
    /// # Safety
    /// Every segment `describe` gives must meet [`SplitQueue::add`]'s contract until
    /// this returns (as for [`run`](Self::run)); this function returns only once
    /// the device gave every chain back or was reset.
    pub(super) unsafe fn run_batch(
        &mut self,
        nr_requests: usize,
        mut describe: impl FnMut(usize, &mut Vec<Segment>) -> (u32, u64),
        mut done: impl FnMut(usize, Result<u32, BlkError>),
    ) {
        // Taken out for the loop; within its capacity, so filling it never allocates.
        let mut segments = core::mem::take(&mut self.segments);
        let (mut submit_cycles, mut wait_cycles, mut has_reads) = (0, 0, false);
        let mut next = 0;
        while next < nr_requests || !self.in_flight.is_empty() {
            let submit_start = timer::rdtsc();
            let mut nr_submitted = 0;
            while next < nr_requests {
                let Some(slot) = self.in_flight.free_slot() else { break };
                segments.clear();
                let (req_type, sector) = describe(next, &mut segments);
                has_reads |= req_type == req_type::IN;
                // SAFETY: the segments meet `add`'s contract (ours); the request is
                // waited for below before this returns.
                match unsafe { self.submit(slot, req_type, sector, &segments) } {
                    Ok(head) => {
                        let bytes = segments.iter().map(|s| u64::from(s.len)).sum();
                        let pending = Pending { index: next, req_type, sector, bytes, submitted_at: timer::rdtsc() };
                        if !self.in_flight.is_empty() {
                            self.stats.nr_overlapped += 1;
                        }
                        let is_new = self.in_flight.insert(slot, head, pending);
                        debug_assert!(is_new, "virtio-blk: head {head} or slot {slot} in flight twice");
                        self.count_request(req_type);
                        nr_submitted += 1;
                        next += 1;
                    }
                    // No room in the ring until a request in flight comes back.
                    Err(BlkError::QueueFull) if !self.in_flight.is_empty() => break,
                    Err(e) => {
                        self.count_request(req_type);
                        self.stats.nr_errors += 1;
                        done(next, Err(e));
                        next += 1;
                    }
                }
            }
            if nr_submitted > 0 {
                self.transport.notify(QUEUE_INDEX);
                self.stats.peak_in_flight = self.stats.peak_in_flight.max(self.in_flight.len() as u64);
            }
            let wait_start = timer::rdtsc();
            submit_cycles += wait_start - submit_start;
            if self.in_flight.is_empty() {
                continue;
            }
            let waited = self.wait_any();
            let completed = waited.map(|used| (used, self.in_flight.complete(used.head)));
            match completed {
                Ok((used, Some((_, p)))) => {
                    self.poll.record(timer::rdtsc() - p.submitted_at);
                    let result = self.status_of(used.head, p.sector).map(|()| used.len);
                    match result {
                        Ok(_) if p.req_type == req_type::IN => self.stats.bytes_read += p.bytes,
                        Ok(_) if p.req_type == req_type::OUT => self.stats.bytes_written += p.bytes,
                        Ok(_) => {}
                        Err(_) => self.stats.nr_errors += 1,
                    }
                    done(p.index, result);
                }
                // A timeout, or a head the device should not have returned: reset
                // it (no DMA lands later), and everything in flight failed.
                failed => {
                    let error = match failed {
                        Err(e) => e,
                        Ok(_) => BlkError::DeviceBroken,
                    };
                    let mut lost = [0usize; super::MAX_IN_FLIGHT];
                    let mut nr_lost = 0;
                    self.in_flight.drain(|_, p| {
                        lost[nr_lost] = p.index;
                        nr_lost += 1;
                    });
                    let _ = self.reinit();
                    for &index in &lost[..nr_lost] {
                        self.stats.nr_errors += 1;
                        done(index, Err(error));
                    }
                }
            }
            wait_cycles += timer::rdtsc() - wait_start;
        }
        if has_reads {
            // Where a read's time goes (the bench's swap-in table shows it).
            self.stats.read_submit_cycles += submit_cycles;
            self.stats.read_wait_cycles += wait_cycles;
        }
        self.segments = segments;
    }

    /// Counts a request of `req_type` as sent.
    fn count_request(&mut self, req_type: u32) {
        match req_type {
            req_type::IN => self.stats.nr_reads += 1,
            req_type::OUT => self.stats.nr_writes += 1,
            req_type::FLUSH => self.stats.nr_flushes += 1,
            _ => self.stats.nr_other += 1,
        }
    }

    /// Fills the request slot of the next head and puts the chain in the ring (in
    /// in-flight `slot`'s indirect table if the device takes those); returns the
    /// head. Does not notify, does not wait.
    ///
    /// # Safety
    /// As for [`run`](Self::run); the caller must then notify and wait for the head.
    unsafe fn submit(&mut self, slot: usize, req_type: u32, sector: u64, data: &[Segment]) -> Result<u16, BlkError> {
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
        let added = if self.uses_indirect && self.chain.len() <= INDIRECT_TABLE_ENTRIES {
            let offset = slot * PAGE_SIZE as usize;
            assert!(offset < self.tables.size_bytes() as usize, "VirtioBlk::submit: slot {slot} has no table");
            // SAFETY: the table is the page of `self.tables` for this in-flight slot
            // (owned until `Drop`, which resets the device first), page-aligned and
            // 256 descriptors long; the slot is free, so no request in flight uses
            // it. Header and status live in `self.slots`; the data is our caller's.
            let added = unsafe {
                let table = self.tables.as_ptr().add(offset);
                self.queue.add_indirect(table, self.tables.start().start_address() + offset as u64, &self.chain)
            };
            if added.is_ok() {
                self.stats.nr_indirect += 1;
            }
            added
        } else {
            // SAFETY: header and status live in `self.slots`, owned until `Drop`
            // (which resets the device first); the data is covered by our caller.
            unsafe { self.queue.add(&self.chain) }
        };
        match added {
            Ok(added_head) => debug_assert_eq!(added_head, head),
            Err(QueueError::Full) => return Err(BlkError::QueueFull),
            Err(_) => return Err(BlkError::DeviceBroken),
        }
        Ok(head)
    }

    /// Waits until the device returns a chain (any of those in flight) and returns it.
    ///
    /// Looks at the used ring first; if nothing is back, sleeps on the device's
    /// wait queue until its interrupt says the ring moved, if it may
    /// ([`interrupt::can_sleep`]: a scheduler, interrupts on, a routed line);
    /// otherwise polls the used ring and yields the CPU in between.
    /// Either way the disk's lock is a sleeping `sync::Mutex`: no spinlock is held.
    /// `Err(Timeout)` if nothing came back within the timeout, `Err(DeviceBroken)`
    /// if the device returned a chain that is not in flight; the caller resets the
    /// device. The deadline is checked before the first look at the ring, so a zero
    /// timeout always gives up (tests use that to reset the device with a request
    /// in flight), and after each look that finds nothing: a task that yielded or
    /// slept and runs again only after the deadline (queued behind others: with
    /// two CPUs under load, seconds) looks once more first, so a request that
    /// completed meanwhile is not reported as timed out.
    fn wait_any(&mut self) -> Result<UsedElem, BlkError> {
        let start = timer::rdtsc();
        let deadline = start.saturating_add(self.timeout_cycles);
        let spin_until = start.saturating_add(self.poll.spin_window());
        let irq = self.irq.filter(|_| interrupt::can_sleep());
        if irq.is_none() {
            self.stats.nr_polled += 1;
        }
        let mut has_waited = false;
        loop {
            if !has_waited && timer::rdtsc() >= deadline {
                self.stats.nr_timeouts += 1;
                return Err(BlkError::Timeout);
            }
            match self.queue.poll_used() {
                Ok(Some(used)) => return Ok(used),
                Err(_) => return Err(BlkError::DeviceBroken),
                Ok(None) if timer::rdtsc() >= deadline => {
                    self.stats.nr_timeouts += 1;
                    return Err(BlkError::Timeout);
                }
                Ok(None) => {
                    has_waited = true;
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
