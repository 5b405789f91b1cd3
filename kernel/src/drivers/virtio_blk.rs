//! The virtio block driver: reads and writes 512-byte sectors of a virtio-blk disk,
//! the swap disk the boot runner always attaches (`-device virtio-blk-pci,serial=swap`).
//!
//! It speaks the legacy virtio PCI interface (I/O ports behind BAR0, see
//! `virtio_pci` for why) with one split virtqueue (`virtio_queue`). Setup follows
//! virtio 1.x §3.1 in its legacy form: reset, ACKNOWLEDGE, DRIVER, feature
//! negotiation (no FEATURES_OK step in legacy), queue 0 given its memory through
//! the PFN register, DRIVER_OK; the capacity comes from the device config.
//!
//! Every request is one descriptor chain (virtio 1.x §5.2.6):
//! ```text
//!   [header {type, reserved, sector}: 16 B, device reads] -> [data: device reads (write)
//!    or writes (read)] x N -> [status: 1 B, device writes: 0 OK, 1 IOERR, 2 UNSUPP]
//! ```
//! N is 0 (flush), 1 (a buffer), or up to [`MAX_FRAMES_PER_REQUEST`] frames that
//! need not be adjacent in memory (scatter-gather, bounded by the device's
//! `seg_max`): [`VirtioBlk::write_frames`] sends 32 swap pages to 32 adjacent slots
//! in one request, which costs about what one page costs (a request is ~75 µs of
//! QEMU round trip under TCG; 128 KiB of data adds little).
//! Headers and status bytes live in a frame block the driver owns, one slot per
//! possible head descriptor. Data goes straight to the caller's memory when it is
//! physically contiguous, that is in the direct map (heap buffers, whole frames:
//! [`VirtioBlk::read_frame`] for swap), and through a 64 KiB bounce block the driver
//! owns otherwise (a buffer on the kernel stack, say). Requests larger than that are
//! split. Errors (bad length, out-of-range sector, device status IOERR/UNSUPP,
//! timeout, a device breaking the protocol) come back as [`BlkError`]; a timeout or
//! a protocol error resets the device, so no DMA can land after the caller's buffer
//! is returned, and sets it up again.
//!
//! Several requests are in flight at once (up to [`MAX_IN_FLIGHT`]): a batch
//! ([`VirtioBlk::write_frame_runs`], the block layer's `write_page_runs` /
//! `read_page_runs`, and the chunks of one long request) is submitted, the device
//! notified once, and the completions collected in any order (`request.rs`); each
//! request's error stays its own. With `VIRTIO_RING_F_INDIRECT_DESC` (virtio 1.x
//! §2.7.5.3), negotiated when the device offers it and `blk_indirect=0` is not on
//! the command line, a request's chain lives in an indirect table of the driver's
//! (a page per in-flight slot) and takes one ring entry; without it, a 254-frame
//! request takes 256 of QEMU's 256 entries and such requests go one at a time.
//!
//! Completion is interrupt-driven: the requester sleeps on a wait queue until the
//! device's interrupt (PCI INTx through the PIC) says the used ring moved, with a
//! deadline so a device that never answers is still reset (`interrupt.rs`). The
//! wait is one loop (`VirtioBlk::wait_any`, in `request.rs`) after submits that
//! do not block. Where sleeping is impossible (no scheduler yet, interrupts off,
//! no interrupt line routed) the same loop polls the used ring instead, yielding
//! the CPU between polls; [`BlkStats`] counts the requests waited for each way.
//! The global [`swap_disk`] is behind a sleeping [`Mutex`], so no spinlock is held
//! and interrupts stay enabled during a request (STYLE §5: no I/O under a spinlock).
//!
//! Neighbours: `drivers::init` calls [`init`], which registers every disk with the
//! block layer (`crate::block`) as a [`VirtioDisk`], the `blockdev::BlockDevice`
//! implementation (`block_device.rs`: page I/O by DMA, errors folded into
//! `blockdev::BlockError`); swap and everything else above reach the disk only
//! through that trait. [`swap_disk`] gives the driver itself to its tests and to
//! `bench` (a submodule), which measures it.
//!
//! Locks: the disk's [`Mutex`], outside every spinlock (the lock order is in
//! [`crate::mm`]); the heap and the frame allocator are taken under it (by the probe,
//! and by the frame-state check of `read_frame`/`write_frame`).

use alloc::format;

use super::pci::{self, PciAddress, PciDevice};
use super::virtio_pci::{self, DEVICE_TYPE_BLOCK, LEGACY_PAGE_SHIFT, LegacyTransport, ProbeError, status};
use super::virtio_queue::{QueueError, Segment, SplitQueue};
use blockdev::in_flight::InFlight;
use crate::arch::timer;
use crate::mm::frame::{self, FrameState, OwnedFrames};
use crate::mm::{Frame, Order, PAGE_SIZE, PHYS_MAP_BASE, PhysAddr};
use crate::sync::Mutex;

mod bench;
mod block_device;
pub mod interrupt;
mod request;
mod wipe;

pub use block_device::VirtioDisk;
pub use wipe::WipeKind;

pub use bench::bench;

/// Bytes in a sector: the unit of every virtio-blk address, whatever the disk's block size.
pub const SECTOR_SIZE: usize = 512;
/// Sectors in a 4 KiB frame.
pub const SECTORS_PER_FRAME: u64 = PAGE_SIZE / SECTOR_SIZE as u64;
/// How long a request may take before the driver gives up and resets the device.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// The bounce block: 16 frames, 64 KiB, also the largest single request.
const BOUNCE_ORDER: Order = Order(4);
/// The most frames one scatter-gather request carries (1 MiB), if the device's
/// `seg_max` and the queue allow as many: QEMU offers `seg_max` = queue size - 2
/// (254 for its 256-entry queue), so its requests carry up to 254 frames, the
/// descriptor chain's header and status taking the other two. Swap clusters its
/// requests by the block layer's `MAX_PAGES_PER_REQUEST` (32); a file's write-back
/// and readahead send runs of adjacent blocks up to the device's limit, as Linux
/// does (its writeback requests of one file average some 780 KiB in the
/// `--linux-peer=files` run). The segment lists are built in two buffers the
/// driver allocates at probe (`segments`, `chain`), not on the kernel stack.
pub const MAX_FRAMES_PER_REQUEST: usize = 256;
/// The most requests in flight at once (each with an indirect table of a page):
/// write-back's batch of 1024 pages is 4 or 5 requests of 254 frames, and 16 x 1
/// MiB keeps QEMU's I/O threads busy.
pub const MAX_IN_FLIGHT: usize = 16;
/// Descriptors in one indirect table: a page of 16-byte descriptors, room for a
/// header, 254 data segments (QEMU's `seg_max`) and a status.
const INDIRECT_TABLE_ENTRIES: usize = PAGE_SIZE as usize / 16;
/// The queue a block device uses for requests.
const QUEUE_INDEX: u16 = 0;
/// Bytes of the identification string (`GET_ID`).
const ID_BYTES: usize = 20;
/// A status value the device never writes, to catch a request it did not complete.
const STATUS_UNSET: u8 = 0xff;

/// Request types (virtio 1.x §5.2.6).
pub mod req_type {
    /// Read sectors into the data buffer.
    pub const IN: u32 = 0;
    /// Write the data buffer to sectors.
    pub const OUT: u32 = 1;
    /// Make completed writes durable.
    pub const FLUSH: u32 = 4;
    /// Return the device's serial string (20 bytes, NUL-padded).
    pub const GET_ID: u32 = 8;
    /// Tell the device a range's contents are no longer needed.
    pub const DISCARD: u32 = 11;
    /// Make a range read back as zeros (and, if allowed, unmap it).
    pub const WRITE_ZEROES: u32 = 13;
}

/// Status values the device writes in a request's last byte.
mod blk_status {
    pub const OK: u8 = 0;
    pub const IOERR: u8 = 1;
    pub const UNSUPP: u8 = 2;
}

/// Feature bits of a virtio block device (the low 32, all legacy has).
pub mod feature {
    /// `size_max` in config bounds one segment.
    pub const SIZE_MAX: u32 = 1 << 1;
    /// `seg_max` in config bounds segments per request.
    pub const SEG_MAX: u32 = 1 << 2;
    /// The disk is read-only.
    pub const RO: u32 = 1 << 5;
    /// `blk_size` in config is the optimal block size.
    pub const BLK_SIZE: u32 = 1 << 6;
    /// The driver may put a request's chain in an indirect descriptor table
    /// (`VIRTIO_RING_F_INDIRECT_DESC`, a ring feature, bit 28).
    pub const INDIRECT_DESC: u32 = 1 << 28;
    /// The device has a write cache and understands FLUSH (legacy name: WCE).
    pub const FLUSH: u32 = 1 << 9;
    /// The device understands DISCARD (`max_discard_sectors` in config).
    pub const DISCARD: u32 = 1 << 13;
    /// The device understands WRITE_ZEROES (`max_write_zeroes_sectors` in config).
    pub const WRITE_ZEROES: u32 = 1 << 14;
}

/// The features this driver accepts when offered; everything else is declined.
const DRIVER_FEATURES: u32 = feature::SIZE_MAX
    | feature::SEG_MAX
    | feature::RO
    | feature::BLK_SIZE
    | feature::FLUSH
    | feature::DISCARD
    | feature::WRITE_ZEROES
    | feature::INDIRECT_DESC;

/// Offsets in the block device's configuration.
mod config {
    pub const CAPACITY: u16 = 0;
    pub const SIZE_MAX: u16 = 8;
    pub const SEG_MAX: u16 = 12;
    pub const BLK_SIZE: u16 = 20;
    pub const MAX_DISCARD_SECTORS: u16 = 36;
    pub const MAX_WRITE_ZEROES_SECTORS: u16 = 48;
}

/// The request header, as the device reads it.
#[repr(C)]
#[derive(Clone, Copy)]
struct RequestHeader {
    req_type: u32,
    reserved: u32,
    sector: u64,
}

const HEADER_BYTES: usize = core::mem::size_of::<RequestHeader>();

/// Why a block request failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The length is not a multiple of 512 bytes (of the logical block size, if larger).
    BadLength(usize),
    /// The sector is not the start of one of the disk's logical blocks (only when
    /// they are larger than 512 bytes).
    Unaligned {
        /// First sector asked for.
        sector: u64,
        /// The disk's logical block size in bytes.
        block_size: u32,
    },
    /// The request reaches past the end of the disk.
    OutOfRange {
        /// First sector asked for.
        sector: u64,
        /// Sectors asked for.
        nr_sectors: u64,
        /// Sectors the disk has.
        capacity: u64,
    },
    /// A write to a disk the device says is read-only.
    ReadOnly,
    /// The frame is not allocated RAM the caller may own (free, reserved, slab, page table).
    BadFrame(Frame),
    /// The device reported an I/O error (status IOERR).
    IoError {
        /// First sector of the failed request.
        sector: u64,
    },
    /// The device does not support the request (status UNSUPP).
    Unsupported,
    /// The device wrote a status the spec does not define, or none at all (0xff).
    BadStatus(u8),
    /// No answer within the timeout; the device was reset.
    Timeout,
    /// No free descriptors for the request.
    QueueFull,
    /// The device broke the protocol, or could not be set up again after a reset.
    DeviceBroken,
}

/// Counters of what the driver did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BlkStats {
    /// Read requests sent to the device.
    pub nr_reads: u64,
    /// Write requests sent.
    pub nr_writes: u64,
    /// Flush requests sent.
    pub nr_flushes: u64,
    /// Other requests (identification, raw requests).
    pub nr_other: u64,
    /// Bytes read successfully.
    pub bytes_read: u64,
    /// Bytes written successfully.
    pub bytes_written: u64,
    /// Requests whose data went through the bounce block.
    pub nr_bounced: u64,
    /// Sectors wiped by WRITE_ZEROES or DISCARD.
    pub nr_wiped_sectors: u64,
    /// Requests that failed, whatever the reason.
    pub nr_errors: u64,
    /// Requests that timed out.
    pub nr_timeouts: u64,
    /// Device resets after a timeout or a protocol error (and explicit re-inits).
    pub nr_resets: u64,
    /// Interrupts the device raised (ISR said a queue was used), since boot.
    pub nr_interrupts: u64,
    /// Sleeps until the device's interrupt (or the deadline), by requests not
    /// complete at the driver's first look at the used ring.
    pub nr_irq_waits: u64,
    /// Requests made where sleeping was impossible (no scheduler yet, interrupts
    /// off, no interrupt line), so waited for by polling the used ring.
    pub nr_polled: u64,
    /// Looks at the used ring that found the request not done yet (each one followed
    /// by a yield or a sleep).
    pub nr_not_done_looks: u64,
    /// TSC cycles spent filling read requests and offering them to the device (the
    /// notify, in which QEMU may do the I/O, included).
    pub read_submit_cycles: u64,
    /// The most requests that were in flight at once.
    pub peak_in_flight: u64,
    /// Requests submitted while another was in flight.
    pub nr_overlapped: u64,
    /// Requests whose chain went in an indirect table (one ring entry each).
    pub nr_indirect: u64,
    /// TSC cycles spent waiting for read requests after their submit (polls,
    /// yields, sleeps, the status check).
    pub read_wait_cycles: u64,
}

/// A virtio block device and the memory the driver shares with it.
///
/// Dropping it resets the device (so it stops all DMA) before the memory is freed.
#[derive(Debug)]
pub struct VirtioBlk {
    pci: PciAddress,
    transport: LegacyTransport,
    queue: SplitQueue,
    /// Request headers (16 bytes each), then status bytes, one of each per head.
    slots: OwnedFrames,
    bounce: OwnedFrames,
    features: u32,
    capacity: u64,
    block_size: u32,
    max_request_bytes: usize,
    /// Data segments one request may have (`seg_max`, at most [`MAX_FRAMES_PER_REQUEST`]).
    max_data_segments: usize,
    /// Sectors one DISCARD may cover (0 without the feature).
    max_discard_sectors: u32,
    /// Sectors one WRITE_ZEROES may cover (0 without the feature).
    max_write_zeroes_sectors: u32,
    timeout_cycles: u64,
    serial: [u8; ID_BYTES],
    stats: BlkStats,
    is_broken: bool,
    /// Interrupt state shared with the handler; `None`: the driver polls.
    irq: Option<&'static interrupt::DeviceIrq>,
    /// Scratch for one request's data segments (capacity [`MAX_FRAMES_PER_REQUEST`]).
    segments: alloc::vec::Vec<Segment>,
    /// Scratch for one request's whole chain: header, data, status (capacity
    /// [`MAX_FRAMES_PER_REQUEST`] + 2).
    chain: alloc::vec::Vec<Segment>,
    /// How long a request is polled before its task sleeps (TSC cycles), following
    /// the measured completion time (`request.rs`, hybrid polling).
    poll: blockdev::hybrid_poll::HybridPoll,
    /// The requests the device holds, by head (`request.rs`).
    in_flight: InFlight<request::Pending, MAX_IN_FLIGHT>,
    /// One indirect descriptor table (a page) per in-flight slot.
    tables: OwnedFrames,
    /// The driver offers to use indirect tables (`blk_indirect=0`: no).
    wants_indirect: bool,
    /// Indirect tables were negotiated: requests take one ring entry each.
    uses_indirect: bool,
}

impl VirtioBlk {
    /// Sets up the virtio block device `dev` and reads its capacity and serial.
    ///
    /// Call it with interrupts enabled the first time anything uses the TSC clock
    /// (the calibration waits for timer ticks); `drivers::init` does.
    pub fn new(dev: &PciDevice) -> Result<Self, ProbeError> {
        let transport = LegacyTransport::new(dev, DEVICE_TYPE_BLOCK)?;
        transport.reset();
        let irq = interrupt::attach(dev, &transport);
        let size = transport.select_queue(QUEUE_INDEX);
        let queue = SplitQueue::new(size).map_err(|e| match e {
            QueueError::OutOfMemory => ProbeError::OutOfMemory,
            _ => ProbeError::BadQueueSize(size),
        })?;
        let slots_bytes = size as u64 * (HEADER_BYTES as u64 + 1);
        let slots = OwnedFrames::new_zeroed(Order::for_size(slots_bytes)).map_err(|_| ProbeError::OutOfMemory)?;
        let bounce = OwnedFrames::new_zeroed(BOUNCE_ORDER).map_err(|_| ProbeError::OutOfMemory)?;
        let tables = OwnedFrames::new_zeroed(Order::for_size((MAX_IN_FLIGHT * PAGE_SIZE as usize) as u64))
            .map_err(|_| ProbeError::OutOfMemory)?;
        let scratch = |len: usize| {
            let mut v = alloc::vec::Vec::new();
            v.try_reserve_exact(len).map(|()| v).map_err(|_| ProbeError::OutOfMemory)
        };
        let segments = scratch(MAX_FRAMES_PER_REQUEST)?;
        let chain = scratch(MAX_FRAMES_PER_REQUEST + 2)?;
        let mut blk = Self {
            pci: dev.addr,
            transport,
            queue,
            slots,
            bounce,
            features: 0,
            capacity: 0,
            block_size: SECTOR_SIZE as u32,
            max_request_bytes: 0,
            max_data_segments: 1,
            max_discard_sectors: 0,
            max_write_zeroes_sectors: 0,
            timeout_cycles: DEFAULT_TIMEOUT_MS * timer::tsc_per_ms(),
            serial: [0; ID_BYTES],
            stats: BlkStats::default(),
            is_broken: true,
            irq,
            poll: request::poll_window_from_cmdline(),
            segments,
            chain,
            in_flight: InFlight::new(),
            tables,
            wants_indirect: crate::cmdline::value("blk_indirect") != Some("0"),
            uses_indirect: false,
        };
        blk.setup()?;
        // Not every device answers GET_ID; an empty serial is fine.
        blk.serial = blk.get_id().unwrap_or([0; ID_BYTES]);
        Ok(blk)
    }

    /// Resets the device and takes it through the legacy setup sequence again.
    fn setup(&mut self) -> Result<(), ProbeError> {
        let t = &self.transport;
        t.reset();
        t.add_status(status::ACKNOWLEDGE);
        t.add_status(status::DRIVER);
        let offered = if self.wants_indirect { DRIVER_FEATURES } else { DRIVER_FEATURES & !feature::INDIRECT_DESC };
        self.features = t.device_features() & offered;
        self.uses_indirect = self.features & feature::INDIRECT_DESC != 0;
        t.set_driver_features(self.features);
        let size = t.select_queue(QUEUE_INDEX);
        if size != self.queue.size() {
            t.add_status(status::FAILED);
            return Err(ProbeError::BadQueueSize(size));
        }
        self.queue.reset();
        // A reset drops whatever was in flight (`run_batch` has already failed it).
        self.in_flight.drain(|_, _| {});
        let Ok(pfn) = u32::try_from(self.queue.phys_addr().as_u64() >> LEGACY_PAGE_SHIFT) else {
            t.add_status(status::FAILED);
            return Err(ProbeError::QueueTooHigh);
        };
        // SAFETY: the block at `pfn` is `self.queue`'s memory, laid out for this
        // queue size, and stays allocated until `Drop`, which resets the device first
        // (as does every other path that frees or re-initialises it).
        unsafe { t.set_queue_pfn(pfn) };
        self.capacity = t.config_u64(config::CAPACITY);
        // A block size we cannot split requests by (not a power of two, or above
        // the bounce block) is ignored: 512 it is, and the device judges.
        let max_block = self.bounce.size_bytes() as u32;
        self.block_size = Some(t.config_u32(config::BLK_SIZE))
            .filter(|&b| self.features & feature::BLK_SIZE != 0 && b.is_power_of_two() && b >= 512 && b <= max_block)
            .unwrap_or(SECTOR_SIZE as u32);
        let size_max = match self.features & feature::SIZE_MAX {
            0 => usize::MAX,
            _ => t.config_u32(config::SIZE_MAX) as usize,
        };
        let block = self.block_size as usize;
        self.max_request_bytes = ((self.bounce.size_bytes() as usize).min(size_max) / block * block).max(block);
        // Without SEG_MAX a request has one data segment (as Linux assumes); the
        // chain also needs a header and a status descriptor.
        let seg_max = match self.features & feature::SEG_MAX {
            0 => 1,
            _ => t.config_u32(config::SEG_MAX) as usize,
        };
        let queue_room = (self.queue.size() as usize).saturating_sub(2);
        self.max_data_segments = seg_max.min(queue_room).clamp(1, MAX_FRAMES_PER_REQUEST);
        let limit = |bit: u32, offset: u16| if self.features & bit != 0 { t.config_u32(offset) } else { 0 };
        self.max_discard_sectors = limit(feature::DISCARD, config::MAX_DISCARD_SECTORS);
        self.max_write_zeroes_sectors = limit(feature::WRITE_ZEROES, config::MAX_WRITE_ZEROES_SECTORS);
        t.add_status(status::DRIVER_OK);
        self.is_broken = false;
        Ok(())
    }

    /// Resets the device and sets it up again, dropping whatever was in flight.
    ///
    /// For recovery, and for handing the device back to this instance after another
    /// driver instance used it (tests do that).
    pub fn reinit(&mut self) -> Result<(), BlkError> {
        self.stats.nr_resets += 1;
        self.setup().map_err(|_| {
            self.is_broken = true;
            BlkError::DeviceBroken
        })
    }

    /// Returns the disk size in 512-byte sectors.
    pub fn capacity_sectors(&self) -> u64 {
        self.capacity
    }

    /// Returns the disk size in bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.capacity * SECTOR_SIZE as u64
    }

    /// Returns the serial string from `GET_ID` ("swap" for the runner's swap disk).
    pub fn serial(&self) -> &str {
        let len = self.serial.iter().position(|&b| b == 0).unwrap_or(ID_BYTES);
        core::str::from_utf8(&self.serial[..len]).unwrap_or("?")
    }

    /// Returns where the device sits on the PCI bus.
    pub fn pci_address(&self) -> PciAddress {
        self.pci
    }

    /// Returns the negotiated feature bits (see [`feature`]).
    pub fn features(&self) -> u32 {
        self.features
    }

    /// Returns true if the device has a write cache and flushes it on [`flush`](Self::flush).
    pub fn has_flush(&self) -> bool {
        self.features & feature::FLUSH != 0
    }

    /// Returns true if the device refuses writes.
    pub fn is_read_only(&self) -> bool {
        self.features & feature::RO != 0
    }

    /// Returns the counters.
    pub fn stats(&self) -> BlkStats {
        BlkStats { nr_interrupts: self.irq.map_or(0, |irq| irq.nr_interrupts()), ..self.stats }
    }

    /// How long the next request will be polled before its task sleeps, in ns, and
    /// the mean completion time it follows, in ns (see `request.rs`).
    pub fn poll_window_ns(&self) -> (u64, u64) {
        (crate::arch::timer::cycles_to_ns(self.poll.spin_window()), crate::arch::timer::cycles_to_ns(self.poll.mean()))
    }

    /// Returns the PIC line the device interrupts on, or `None` if the driver polls.
    pub fn irq_line(&self) -> Option<u8> {
        self.irq.map(|irq| irq.line())
    }

    /// Returns the queue size and how many descriptors are free (all, when idle).
    pub fn queue_usage(&self) -> (u16, u16) {
        (self.queue.size(), self.queue.nr_free())
    }

    /// Returns true if requests go in indirect descriptor tables (negotiated).
    pub fn uses_indirect(&self) -> bool {
        self.uses_indirect
    }

    /// Offers (`true`) or declines the indirect-descriptor feature and sets the
    /// device up again (a reset), so tests run both chain layouts on one disk.
    /// Returns whether indirect tables are in use afterwards (only if the device
    /// offers the feature).
    pub fn set_indirect(&mut self, wanted: bool) -> Result<bool, BlkError> {
        self.wants_indirect = wanted;
        self.reinit()?;
        Ok(self.uses_indirect)
    }

    /// Forgets the peak of requests in flight (tests measure one batch).
    pub fn reset_peak_in_flight(&mut self) {
        self.stats.peak_in_flight = 0;
    }

    /// Sets how long a request may take before the device is reset.
    pub fn set_timeout_ms(&mut self, ms: u64) {
        self.timeout_cycles = ms.saturating_mul(timer::tsc_per_ms());
    }

    /// Fixes the poll window before a sleep at `us` microseconds (0: sleep at the
    /// first look that finds a request not done), as `blk_poll_us=` does at boot.
    pub fn set_poll_window_us(&mut self, us: u64) {
        self.poll = blockdev::hybrid_poll::HybridPoll::fixed(us.saturating_mul(timer::tsc_per_ms()) / 1000);
    }

    /// Returns a one-line description for the boot log.
    pub fn describe(&self) -> alloc::string::String {
        format!(
            "virtio-blk {} (legacy, io {:#x}, {}): {} sectors ({} MiB), serial {:?}, queue {}, block {} B, {} frames a request, features {:#x}{}{}{}{}{}",
            self.pci,
            self.transport.io_base(),
            match self.irq_line() {
                Some(line) => format!("irq {line}"),
                None => "polled".into(),
            },
            self.capacity,
            self.capacity_bytes() >> 20,
            self.serial(),
            self.queue.size(),
            self.block_size,
            self.max_data_segments,
            self.features,
            if self.uses_indirect { " indirect" } else { "" },
            if self.has_flush() { " flush" } else { "" },
            if self.max_discard_sectors > 0 { " discard" } else { "" },
            if self.max_write_zeroes_sectors > 0 { " write-zeroes" } else { "" },
            if self.is_read_only() { " read-only" } else { "" },
        )
    }
}

impl Drop for VirtioBlk {
    /// Resets the device so it stops all DMA before the queue and buffers are freed.
    fn drop(&mut self) {
        self.transport.reset();
    }
}

/// Returns the physical address behind `[ptr, ptr + len)` if it lies in the direct map
/// of RAM (where virtual contiguity is physical contiguity), `None` otherwise.
fn direct_map_phys(ptr: *const u8, len: usize) -> Option<PhysAddr> {
    let start = ptr as u64; // exposes the provenance: the device will access it
    let end = start.checked_add(len as u64)?;
    let ram_end = PHYS_MAP_BASE + frame::table_info().nr_frames * PAGE_SIZE;
    (start >= PHYS_MAP_BASE && end <= ram_end).then(|| PhysAddr::new(start - PHYS_MAP_BASE))
}

impl VirtioBlk {
    /// Reads `buf.len()` bytes (a multiple of 512) starting at `sector` into `buf`.
    ///
    /// Enters with the disk lock held; returns when the data is in `buf` or on error
    /// (after which `buf` holds unspecified bytes, but no DMA into it remains).
    pub fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), BlkError> {
        self.check_range(sector, buf.len())?;
        let chunk_bytes = self.max_request_bytes;
        for (i, chunk) in buf.chunks_mut(chunk_bytes).enumerate() {
            let chunk_sector = sector + (i * chunk_bytes / SECTOR_SIZE) as u64;
            match direct_map_phys(chunk.as_ptr(), chunk.len()) {
                // SAFETY: `chunk` is physically contiguous RAM, borrowed mutably for
                // this whole call, and `transfer` returns only after the device gave
                // the request back or was reset.
                Some(phys) => unsafe { self.transfer(false, chunk_sector, phys, chunk.len()) }?,
                None => {
                    let bounce_phys = self.bounce.start().start_address();
                    // SAFETY: the bounce block is owned by `self` and not otherwise in
                    // use while `&mut self` is held; `transfer` waits as above.
                    unsafe { self.transfer(false, chunk_sector, bounce_phys, chunk.len()) }?;
                    self.stats.nr_bounced += 1;
                    chunk.copy_from_slice(&self.bounce_bytes()[..chunk.len()]);
                }
            }
        }
        Ok(())
    }

    /// Writes `buf` (a multiple of 512 bytes) to the disk starting at `sector`.
    ///
    /// Returns when the device reports the write done; it is durable after [`flush`](Self::flush).
    pub fn write(&mut self, sector: u64, buf: &[u8]) -> Result<(), BlkError> {
        self.check_writable()?;
        self.check_range(sector, buf.len())?;
        let chunk_bytes = self.max_request_bytes;
        for (i, chunk) in buf.chunks(chunk_bytes).enumerate() {
            let chunk_sector = sector + (i * chunk_bytes / SECTOR_SIZE) as u64;
            match direct_map_phys(chunk.as_ptr(), chunk.len()) {
                // SAFETY: `chunk` is physically contiguous RAM borrowed for this whole
                // call (the device only reads it); `transfer` waits for completion.
                Some(phys) => unsafe { self.transfer(true, chunk_sector, phys, chunk.len()) }?,
                None => {
                    self.bounce_bytes()[..chunk.len()].copy_from_slice(chunk);
                    self.stats.nr_bounced += 1;
                    let bounce_phys = self.bounce.start().start_address();
                    // SAFETY: the bounce block is owned by `self`; `transfer` waits.
                    unsafe { self.transfer(true, chunk_sector, bounce_phys, chunk.len()) }?;
                }
            }
        }
        Ok(())
    }

    /// Reads the 8 sectors at `sector` into `frame` by DMA, without a copy.
    ///
    /// The frame number is the capability, as with `frame::free`: the caller must
    /// own `frame` and nothing may use its contents during the call. The driver
    /// checks what it can: the frame must be allocated RAM in the Kernel or User
    /// state (never free, reserved, slab or page-table memory), else [`BlkError::BadFrame`].
    pub fn read_frame(&mut self, sector: u64, frame: Frame) -> Result<(), BlkError> {
        self.read_frames(sector, &[frame])
    }

    /// Writes `frame` to the 8 sectors at `sector` by DMA, without a copy.
    ///
    /// Same contract as [`read_frame`](Self::read_frame); the device only reads the frame.
    pub fn write_frame(&mut self, sector: u64, frame: Frame) -> Result<(), BlkError> {
        self.write_frames(sector, &[frame])
    }

    /// Reads `frames.len()` pages starting at `sector` into `frames` (page i from
    /// `sector + 8 i`), by DMA, in as few requests as the device allows (one for up
    /// to [`MAX_FRAMES_PER_REQUEST`] frames). Same contract as [`read_frame`](Self::read_frame)
    /// for every frame; on error, any of them may hold partial data.
    pub fn read_frames(&mut self, sector: u64, frames: &[Frame]) -> Result<(), BlkError> {
        self.frames_request(false, sector, frames)
    }

    /// Writes `frames` to the disk starting at `sector` (page i to `sector + 8 i`),
    /// by DMA, in as few requests as the device allows. Same contract as
    /// [`read_frame`](Self::read_frame); the device only reads the frames.
    pub fn write_frames(&mut self, sector: u64, frames: &[Frame]) -> Result<(), BlkError> {
        self.check_writable()?;
        self.frames_request(true, sector, frames)
    }

    /// Moves whole frames to or from adjacent sectors, a chunk of at most
    /// `max_data_segments` frames per request.
    fn frames_request(&mut self, is_write: bool, sector: u64, frames: &[Frame]) -> Result<(), BlkError> {
        for &frame in frames {
            self.check_frame(frame)?;
        }
        self.check_range(sector, frames.len() * PAGE_SIZE as usize)?;
        // SAFETY: every frame is allocated RAM the caller owns for this call
        // (checked as far as the frame table can tell, and the documented contract).
        unsafe { self.phys_pages_request(is_write, sector, frames.len(), |i| frames[i].start_address()) }
    }

    /// Moves `nr_pages` 4 KiB pages, page i at physical address `phys_of(i)`, to or
    /// from adjacent sectors from `sector`, `max_data_segments` pages per request
    /// (the segment list built in the driver's `segments` buffer).
    ///
    /// # Safety
    /// Each `[phys_of(i), phys_of(i) + 4096)` must be RAM the caller owns for the call;
    /// for a read, nothing else may access it meanwhile. The range must have been
    /// checked (`check_range`, and `check_writable` for a write).
    pub(super) unsafe fn phys_pages_request(
        &mut self,
        is_write: bool,
        sector: u64,
        nr_pages: usize,
        phys_of: impl Fn(usize) -> PhysAddr,
    ) -> Result<(), BlkError> {
        let mut result = [Ok(())];
        // SAFETY: passed on from our caller (one run).
        unsafe { self.phys_runs_request(is_write, &mut result, |_| (sector, nr_pages), |_, i| phys_of(i)) };
        result[0]
    }

    /// Moves several runs of 4 KiB pages, run k being `run_of(k)` = (first
    /// sector, pages) with page i at physical address `phys_of(k, i)`, each run in
    /// requests of `max_data_segments` pages, all of them in one batch: several in
    /// flight at once ([`run_batch`](Self::run_batch)). A failed request makes its
    /// run's `results[k]` an error (the first one; other runs are not touched);
    /// `results` comes in as the caller set it (a run the caller refused, with
    /// `run_of` giving it 0 pages, keeps its error).
    ///
    /// # Safety
    /// As for [`phys_pages_request`](Self::phys_pages_request), for every page of
    /// every run.
    pub(super) unsafe fn phys_runs_request(
        &mut self,
        is_write: bool,
        results: &mut [Result<(), BlkError>],
        run_of: impl Fn(usize) -> (u64, usize),
        phys_of: impl Fn(usize, usize) -> PhysAddr,
    ) {
        let per_request = self.max_data_segments.clamp(1, MAX_FRAMES_PER_REQUEST);
        let req = if is_write { req_type::OUT } else { req_type::IN };
        let nr_runs = results.len();
        // Request r of the batch: (run, first page). Without the memory for the
        // list (or for one run), a batch per run.
        let total: usize = (0..nr_runs).map(|k| run_of(k).1.div_ceil(per_request)).sum();
        let mut requests: alloc::vec::Vec<(usize, usize)> = alloc::vec::Vec::new();
        let is_one_batch = nr_runs > 1 && requests.try_reserve_exact(total).is_ok();
        if is_one_batch {
            for k in 0..nr_runs {
                requests.extend((0..run_of(k).1).step_by(per_request).map(|first| (k, first)));
            }
        }
        let batches = if is_one_batch { 1 } else { nr_runs };
        for b in 0..batches {
            let (nr_requests, locate): (usize, &dyn Fn(usize) -> (usize, usize)) = if is_one_batch {
                (requests.len(), &|r| requests[r])
            } else {
                (run_of(b).1.div_ceil(per_request), &|r| (b, r * per_request))
            };
            let describe = |r: usize, segments: &mut alloc::vec::Vec<Segment>| {
                let (k, first) = locate(r);
                let (sector, nr_pages) = run_of(k);
                let end = (first + per_request).min(nr_pages);
                segments.extend((first..end).map(|i| Segment {
                    phys: phys_of(k, i),
                    len: PAGE_SIZE as u32,
                    is_device_writable: !is_write,
                }));
                (req, sector + first as u64 * SECTORS_PER_FRAME)
            };
            // SAFETY: every page is RAM the caller owns for this call (our contract),
            // 4 KiB contiguous each; `run_batch` returns only once the device gave
            // every chain back or was reset.
            unsafe {
                self.run_batch(nr_requests, describe, |r, outcome| {
                    let k = locate(r).0;
                    if let Err(e) = outcome {
                        results[k] = results[k].and(Err(e));
                    }
                })
            };
        }
    }

    /// Writes several runs of frames, run k's frames to the sectors from
    /// `runs[k].0` as [`write_frames`](Self::write_frames) writes them, with as
    /// many requests in flight at once as the device takes; `results[k]` (as many
    /// as runs) gets run k's outcome. A run with a bad frame or range fails alone.
    pub fn write_frame_runs(&mut self, runs: &[(u64, &[Frame])], results: &mut [Result<(), BlkError>]) {
        self.frame_runs_request(true, runs, results);
    }

    /// Reads several runs of frames, as [`write_frame_runs`](Self::write_frame_runs)
    /// writes them.
    pub fn read_frame_runs(&mut self, runs: &[(u64, &[Frame])], results: &mut [Result<(), BlkError>]) {
        self.frame_runs_request(false, runs, results);
    }

    /// Checks every run, then moves the good ones in one batch.
    fn frame_runs_request(&mut self, is_write: bool, runs: &[(u64, &[Frame])], results: &mut [Result<(), BlkError>]) {
        assert_eq!(runs.len(), results.len(), "VirtioBlk::frame_runs_request: one result per run");
        for (&(sector, frames), result) in runs.iter().zip(results.iter_mut()) {
            *result = (if is_write { self.check_writable() } else { Ok(()) })
                .and_then(|()| frames.iter().try_for_each(|&f| self.check_frame(f)))
                .and_then(|()| self.check_range(sector, frames.len() * PAGE_SIZE as usize));
        }
        let is_ok: alloc::vec::Vec<bool> = results.iter().map(Result::is_ok).collect();
        let run_of = |k: usize| if is_ok[k] { (runs[k].0, runs[k].1.len()) } else { (0, 0) };
        // SAFETY: every frame of a run that passed is allocated RAM the caller owns
        // for this call (checked as far as the frame table can tell, and the
        // documented contract of `read_frame`).
        unsafe { self.phys_runs_request(is_write, results, run_of, |k, i| runs[k].1[i].start_address()) };
    }

    /// Makes every completed write durable (`VIRTIO_BLK_T_FLUSH`).
    ///
    /// Without the FLUSH feature this is a no-op that succeeds: such a device has no
    /// volatile write cache to flush (QEMU runs it write-through for drivers that
    /// do not negotiate FLUSH), so completed writes are already durable.
    pub fn flush(&mut self) -> Result<(), BlkError> {
        if !self.has_flush() {
            return Ok(());
        }
        // SAFETY: no data segment; header and status are the driver's own.
        unsafe { self.run(req_type::FLUSH, 0, &[]) }.map(|_| ())
    }

    /// Asks the device for its 20-byte identification string (`VIRTIO_BLK_T_GET_ID`).
    pub fn get_id(&mut self) -> Result<[u8; ID_BYTES], BlkError> {
        let segment =
            Segment { phys: self.bounce.start().start_address(), len: ID_BYTES as u32, is_device_writable: true };
        self.bounce_bytes()[..ID_BYTES].fill(0);
        // SAFETY: the bounce block is owned by `self`; `run` waits for completion.
        unsafe { self.run(req_type::GET_ID, 0, &[segment]) }?;
        let mut id = [0; ID_BYTES];
        id.copy_from_slice(&self.bounce_bytes()[..ID_BYTES]);
        Ok(id)
    }

    /// Sends a request of any type with no data buffer and returns the outcome.
    ///
    /// For tests and diagnostics: an unknown type must come back as
    /// [`BlkError::Unsupported`], a read past the end as [`BlkError::IoError`], which
    /// exercises the device-status paths without a faulty disk.
    pub fn raw_request(&mut self, req_type: u32, sector: u64) -> Result<(), BlkError> {
        // SAFETY: no data segment; header and status are the driver's own.
        unsafe { self.run(req_type, sector, &[]) }.map(|_| ())
    }

    /// Checks that `[sector, sector + len / 512)` is a whole-block range on the disk.
    ///
    /// Addresses are always in 512-byte sectors, but a disk with larger logical
    /// blocks (`blk_size`, e.g. QEMU's `logical_block_size=4096`) fails requests
    /// that do not cover whole blocks, so they are refused here first.
    fn check_range(&self, sector: u64, len: usize) -> Result<(), BlkError> {
        let block_size = (self.block_size as usize).max(SECTOR_SIZE);
        if !len.is_multiple_of(block_size) {
            return Err(BlkError::BadLength(len));
        }
        if !sector.is_multiple_of((block_size / SECTOR_SIZE) as u64) {
            return Err(BlkError::Unaligned { sector, block_size: self.block_size });
        }
        let nr_sectors = (len / SECTOR_SIZE) as u64;
        match sector.checked_add(nr_sectors) {
            Some(end) if end <= self.capacity => Ok(()),
            _ => Err(BlkError::OutOfRange { sector, nr_sectors, capacity: self.capacity }),
        }
    }

    /// Refuses writes to a read-only disk.
    fn check_writable(&self) -> Result<(), BlkError> {
        if self.is_read_only() { Err(BlkError::ReadOnly) } else { Ok(()) }
    }

    /// Checks that `frame` is RAM allocated as Kernel or User memory (a free frame on
    /// a per-CPU list looks allocated in the frame table: its listed bit says free).
    fn check_frame(&self, frame: Frame) -> Result<(), BlkError> {
        if frame.pfn() >= frame::table_info().nr_frames || crate::mm::pcp::is_listed(frame) {
            return Err(BlkError::BadFrame(frame));
        }
        match frame::with_desc(frame, |d| d.state()) {
            FrameState::Kernel | FrameState::User => Ok(()),
            _ => Err(BlkError::BadFrame(frame)),
        }
    }

    /// Returns the bounce block as bytes.
    fn bounce_bytes(&mut self) -> &mut [u8] {
        let len = self.bounce.size_bytes() as usize;
        // SAFETY: the block is owned by `self.bounce`, mapped in the direct map, and
        // between requests the device does not touch it; `&mut self` makes this the
        // only reference.
        unsafe { core::slice::from_raw_parts_mut(self.bounce.as_ptr(), len) }
    }

    /// Reads (`is_write` false) or writes one request's worth of data at `phys`.
    ///
    /// # Safety
    /// `[phys, phys + len)` must be physically contiguous RAM that the caller owns
    /// for the duration of the call; for a read, nothing else may access it meanwhile.
    unsafe fn transfer(&mut self, is_write: bool, sector: u64, phys: PhysAddr, len: usize) -> Result<(), BlkError> {
        debug_assert!(len <= self.max_request_bytes && len.is_multiple_of(SECTOR_SIZE));
        let segment = Segment { phys, len: len as u32, is_device_writable: !is_write };
        let req = if is_write { req_type::OUT } else { req_type::IN };
        // SAFETY: the caller's contract covers the data segment; `run` returns only
        // once the device is done with it.
        unsafe { self.run(req, sector, &[segment]) }?;
        Ok(())
    }
}

/// The swap disk, chosen by [`init`].
static SWAP_DISK: spin::Once<Option<&'static VirtioDisk>> = spin::Once::new();
/// The name and PCI address of every disk [`init`] registered with the block layer,
/// and its driver.
static REGISTERED: spin::Once<alloc::vec::Vec<(alloc::string::String, PciAddress, &'static VirtioDisk)>> =
    spin::Once::new();

/// Probes every virtio block device, logs each, and registers each with the block
/// layer (`crate::block`): the swap disk (the one whose serial is "swap", else the
/// first that works) as "swap", the others under their serial (or `virtioN`). A
/// device whose name is taken is reset and released. Idempotent.
pub fn init() {
    SWAP_DISK.call_once(|| {
        let mut found: alloc::vec::Vec<VirtioBlk> = alloc::vec::Vec::new();
        for dev in pci::devices().iter().filter(|d| virtio_pci::device_type(d) == Some(DEVICE_TYPE_BLOCK)) {
            match VirtioBlk::new(dev) {
                Ok(blk) => {
                    log::info!("{}", blk.describe());
                    found.push(blk);
                }
                Err(e) => log::warn!("virtio-blk {}: not used: {}", dev.addr, e),
            }
        }
        let swap_index = found.iter().position(|b| b.serial() == "swap").or((!found.is_empty()).then_some(0));
        let mut swap = None;
        let mut registered = alloc::vec::Vec::new();
        for (i, blk) in found.into_iter().enumerate() {
            let name = match blk.serial() {
                _ if Some(i) == swap_index => alloc::string::String::from("swap"),
                "" => format!("virtio{i}"),
                serial => alloc::string::String::from(serial),
            };
            if crate::block::find(&name).is_some() {
                log::warn!("virtio-blk {}: not used: the name {name:?} is taken", blk.pci_address());
                continue; // dropped: reset and released
            }
            let (pci, serial) = (blk.pci_address(), alloc::string::String::from(blk.serial()));
            let disk: &'static VirtioDisk =
                alloc::boxed::Box::leak(alloc::boxed::Box::new(VirtioDisk::new(name.clone(), blk)));
            registered.push((name.clone(), pci, disk));
            match crate::block::register(disk) {
                Ok(()) if Some(i) == swap_index => {
                    log::info!("swap disk: virtio-blk {pci} (serial {serial:?})");
                    swap = Some(disk);
                }
                Ok(()) => {}
                Err(e) => log::warn!("virtio-blk {pci}: not registered: {e:?}"),
            }
        }
        if swap.is_none() {
            log::warn!("no usable virtio-blk device: no swap disk");
        }
        REGISTERED.call_once(|| registered);
        swap
    });
}

/// Returns the PCI address of the disk [`init`] registered as `name` ("swap",
/// "root", ...). A test that probes a device with a driver of its own (which resets
/// the device) uses it to leave the disks the kernel is using alone.
pub fn pci_address_of(name: &str) -> Option<PciAddress> {
    REGISTERED.get()?.iter().find(|(n, _, _)| n == name).map(|&(_, pci, _)| pci)
}

/// Returns the driver of the disk [`init`] registered as `name` (for tests and
/// statistics: the kernel reaches disks through `crate::block`).
pub fn driver_of(name: &str) -> Option<&'static Mutex<VirtioBlk>> {
    REGISTERED.get()?.iter().find(|(n, _, _)| n == name).map(|&(_, _, disk)| disk.driver())
}

/// Returns the swap disk's driver, if [`init`] found one (for the driver's own
/// tests and benchmark: everything else reaches disks through `crate::block`).
pub fn swap_disk() -> Option<&'static Mutex<VirtioBlk>> {
    SWAP_DISK.get().copied().flatten().map(VirtioDisk::driver)
}
