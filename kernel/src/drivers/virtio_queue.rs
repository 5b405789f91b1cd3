//! The split virtqueue (virtio 1.x §2.7) in the legacy memory layout: the ring a
//! driver and a virtio device share to pass buffers.
//!
//! ```text
//!  one physically contiguous, 4 KiB-aligned block (legacy layout, size N):
//!  +0                 descriptor table   N x {addr u64, len u32, flags u16, next u16}
//!  +16N               available ring     flags u16, idx u16, ring[N] u16, used_event u16
//!  +align(18N+6,4096) used ring          flags u16, idx u16, ring[N] {id u32, len u32}, avail_event u16
//! ```
//! The driver chains descriptors (`NEXT` flag, `next` index) into one request,
//! puts the chain's head index in the available ring and bumps `avail.idx`; the
//! device processes it, writes `{head, bytes written}` into the used ring and bumps
//! `used.idx`. Free descriptors form a list threaded through `SplitQueue::next`, a
//! private copy of the `next` fields: the device may read the table but the driver
//! never trusts what it reads back from it.
//!
//! With `VIRTIO_RING_F_INDIRECT_DESC` a chain can instead live in a table of the
//! caller's ([`SplitQueue::add_indirect`]): the ring holds one descriptor flagged
//! `INDIRECT` pointing at it, so a request of 256 descriptors takes one ring entry.
//!
//! The interface is split in two halves so a scheduler can run something else in
//! between: [`SplitQueue::add`] publishes a chain and returns at once;
//! [`SplitQueue::poll_used`] later returns finished chains. Who waits, and how
//! (spin now, sleep on an interrupt later), is the caller's business.
//!
//! Interrupts are suppressed (`VRING_AVAIL_F_NO_INTERRUPT`) until the driver asks
//! for them ([`SplitQueue::set_interrupts`]), which it does once its interrupt line
//! has a handler.
//! The memory comes from the frame allocator ([`OwnedFrames`]): a buddy block is
//! naturally aligned, so the used ring's 4 KiB alignment comes for free.
//!
//! This is one of the few places allowed `unsafe` (STYLE §3): volatile accesses to
//! memory shared with a device, and handing physical addresses to it.
//!
//! Neighbours: `virtio_pci` writes [`SplitQueue::phys_addr`] into the queue PFN
//! register and sends the notify; `virtio_blk` builds the chains and waits.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::size_of;
use core::sync::atomic::{Ordering, fence};

use crate::mm::frame::OwnedFrames;
use crate::mm::{Order, PAGE_SIZE, PhysAddr};

/// Descriptor flag: the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it only reads it).
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors, one request's chain.
pub const DESC_F_INDIRECT: u16 = blockdev::in_flight::DESC_F_INDIRECT;
/// Available-ring flag: please do not interrupt when you use a buffer.
const AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Alignment of the used ring in the legacy layout.
const LEGACY_USED_ALIGN: u64 = PAGE_SIZE;
/// Largest queue size the split ring allows.
pub const MAX_QUEUE_SIZE: u16 = 32768;

/// One descriptor as the device sees it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Descriptor {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
}

/// One piece of a request: a physically contiguous buffer and its direction.
#[derive(Clone, Copy, Debug)]
pub struct Segment {
    /// Physical address of the first byte.
    pub phys: PhysAddr,
    /// Length in bytes.
    pub len: u32,
    /// The device writes this buffer (a read request's data, a status byte).
    pub is_device_writable: bool,
}

/// A chain the device has finished with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsedElem {
    /// Head descriptor index of the chain (what [`SplitQueue::add`] returned).
    pub head: u16,
    /// Bytes the device says it wrote into the chain's writable buffers.
    pub len: u32,
}

/// What can go wrong with a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    /// Not enough free descriptors for the chain.
    Full,
    /// An empty chain, or a segment longer than a descriptor can say.
    BadChain,
    /// The size is zero, not a power of two, or above [`MAX_QUEUE_SIZE`].
    BadSize(u16),
    /// No memory for the ring.
    OutOfMemory,
    /// The device returned a head that is not in flight: it broke the protocol.
    BadUsedHead(u32),
}

/// Where the parts of a legacy queue of `size` entries live, and its total size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegacyLayout {
    /// Offset of the available ring.
    pub avail_offset: usize,
    /// Offset of the used ring (a multiple of 4096).
    pub used_offset: usize,
    /// Total bytes, a multiple of 4096.
    pub size_bytes: usize,
}

/// Returns the legacy layout of a queue of `size` entries (virtio 1.x §2.7.2 "Legacy
/// Interfaces: A Note on Virtqueue Layout").
pub fn legacy_layout(size: u16) -> LegacyLayout {
    let n = size as u64;
    let avail_offset = 16 * n;
    let avail_end = avail_offset + 6 + 2 * n;
    let used_offset = avail_end.next_multiple_of(LEGACY_USED_ALIGN);
    let used_end = used_offset + 6 + 8 * n;
    LegacyLayout {
        avail_offset: avail_offset as usize,
        used_offset: used_offset as usize,
        size_bytes: used_end.next_multiple_of(PAGE_SIZE) as usize,
    }
}

/// A split virtqueue and the driver's bookkeeping for it.
#[derive(Debug)]
pub struct SplitQueue {
    /// The ring memory, shared with the device.
    mem: OwnedFrames,
    size: u16,
    layout: LegacyLayout,
    /// Private copy of the descriptor links: free list and in-flight chains.
    next: Vec<u16>,
    /// For each head in flight, the length of its chain; 0 when not in flight.
    chain_len: Vec<u16>,
    free_head: u16,
    nr_free: u16,
    /// Our copy of `avail.idx` (the device never writes it, we never read it back).
    avail_idx: u16,
    /// How far we have consumed the used ring.
    last_used_idx: u16,
}

impl SplitQueue {
    /// Allocates and initialises a queue of `size` entries (a power of two).
    pub fn new(size: u16) -> Result<Self, QueueError> {
        if size == 0 || !size.is_power_of_two() || size > MAX_QUEUE_SIZE {
            return Err(QueueError::BadSize(size));
        }
        let layout = legacy_layout(size);
        let mem =
            OwnedFrames::new_zeroed(Order::for_size(layout.size_bytes as u64)).map_err(|_| QueueError::OutOfMemory)?;
        let mut queue = Self {
            mem,
            size,
            layout,
            next: vec![0; size as usize],
            chain_len: vec![0; size as usize],
            free_head: 0,
            nr_free: 0,
            avail_idx: 0,
            last_used_idx: 0,
        };
        queue.reset();
        Ok(queue)
    }

    /// Forgets every chain and zeroes the ring, as after a device reset.
    ///
    /// Call it only while the device does not own the queue (after a reset, before
    /// the PFN is written): in-flight buffers are simply dropped from the books.
    pub fn reset(&mut self) {
        let bytes = self.mem.size_bytes() as usize;
        // SAFETY: the block is owned by `self.mem` and `bytes` long; the device does
        // not own it now (the contract above), so nobody else accesses it.
        unsafe { core::ptr::write_bytes(self.mem.as_ptr(), 0, bytes) };
        for (i, link) in self.next.iter_mut().enumerate() {
            *link = (i as u16).wrapping_add(1); // the last link is never followed
        }
        self.chain_len.fill(0);
        self.free_head = 0;
        self.nr_free = self.size;
        self.avail_idx = 0;
        self.last_used_idx = 0;
        self.write_u16(self.layout.avail_offset, AVAIL_F_NO_INTERRUPT);
    }

    /// Asks the device to interrupt when it uses a buffer (`is_wanted`), or not to
    /// (`VRING_AVAIL_F_NO_INTERRUPT`, the state after [`reset`](Self::reset)). Only a
    /// hint: the device may interrupt anyway, and the driver copes.
    pub fn set_interrupts(&mut self, is_wanted: bool) {
        self.write_u16(self.layout.avail_offset, if is_wanted { 0 } else { AVAIL_F_NO_INTERRUPT });
        // The device must see the flag before the driver looks at the used ring again.
        fence(Ordering::SeqCst);
    }

    /// Returns the number of entries.
    pub fn size(&self) -> u16 {
        self.size
    }

    /// Returns the physical address of the ring (for the queue PFN register).
    pub fn phys_addr(&self) -> PhysAddr {
        self.mem.start().start_address()
    }

    /// Returns the number of free descriptors.
    pub fn nr_free(&self) -> u16 {
        self.nr_free
    }

    /// Returns the head index the next [`add`](Self::add) will use, if any is free,
    /// so callers can key per-request memory (headers, status bytes) by it.
    pub fn next_head(&self) -> Option<u16> {
        (self.nr_free > 0).then_some(self.free_head)
    }

    /// Returns true if the device has returned chains not yet collected.
    pub fn has_used(&self) -> bool {
        self.read_u16(self.layout.used_offset + 2) != self.last_used_idx
    }

    /// Puts a chain of `segments` in the descriptor table and offers it to the
    /// device; returns the head index. The device sees it at once but processes it
    /// only after a notify (the transport's job).
    ///
    /// # Safety
    /// From now until [`poll_used`](Self::poll_used) returns this head, or the
    /// device is reset, the device may read every segment and write the writable
    /// ones by DMA. Each segment must be physically contiguous memory the caller
    /// owns for that whole time, and nothing else may access a writable one.
    pub unsafe fn add(&mut self, segments: &[Segment]) -> Result<u16, QueueError> {
        let count = u16::try_from(segments.len()).map_err(|_| QueueError::Full)?;
        if count == 0 {
            return Err(QueueError::BadChain);
        }
        if count > self.nr_free {
            return Err(QueueError::Full);
        }
        let head = self.free_head;
        let mut index = head;
        for (i, seg) in segments.iter().enumerate() {
            let is_last = i + 1 == segments.len();
            let mut flags = if seg.is_device_writable { DESC_F_WRITE } else { 0 };
            if !is_last {
                flags |= DESC_F_NEXT;
            }
            let next = self.next[index as usize];
            self.write_desc(
                index,
                Descriptor { addr: seg.phys.as_u64(), len: seg.len, flags, next: if is_last { 0 } else { next } },
            );
            index = next;
        }
        self.free_head = index;
        self.nr_free -= count;
        self.chain_len[head as usize] = count;
        self.publish(head);
        Ok(head)
    }

    /// Puts `segments` in the indirect descriptor table at `table` (virtio 1.x
    /// §2.7.5.3: one chain in table order) and offers the device one ring
    /// descriptor that points at it (`VIRTQ_DESC_F_INDIRECT`); returns its head.
    /// A request of any length thus takes one of the ring's descriptors, so several
    /// requests fit in the ring at once. Only for a device that negotiated
    /// `VIRTIO_RING_F_INDIRECT_DESC`.
    ///
    /// # Safety
    /// As for [`add`](Self::add) for every segment; and `table` (virtual address,
    /// with `table_phys` the physical address of the same bytes) must be memory the
    /// caller owns, 16-byte aligned, room for `segments.len()` descriptors, that
    /// nothing else writes until this head comes back from [`poll_used`](Self::poll_used)
    /// or the device is reset (the device reads it).
    pub unsafe fn add_indirect(
        &mut self,
        table: *mut u8,
        table_phys: PhysAddr,
        segments: &[Segment],
    ) -> Result<u16, QueueError> {
        let n = segments.len();
        if n == 0 || n > self.size as usize {
            return Err(QueueError::BadChain); // §2.7.5.3.1: no longer than the queue
        }
        if self.nr_free == 0 {
            return Err(QueueError::Full);
        }
        let entries = table.cast::<Descriptor>();
        for (i, seg) in segments.iter().enumerate() {
            let (flags, next) = blockdev::in_flight::indirect_links(i, n, seg.is_device_writable);
            // SAFETY: the caller gives room for `n` aligned descriptors at `table`,
            // owned by it and not read by the device before the head is published.
            unsafe { entries.add(i).write_volatile(Descriptor { addr: seg.phys.as_u64(), len: seg.len, flags, next }) };
        }
        let head = self.free_head;
        self.free_head = self.next[head as usize];
        self.nr_free -= 1;
        self.chain_len[head as usize] = 1;
        let table_bytes = (n * size_of::<Descriptor>()) as u32;
        self.write_desc(head, Descriptor { addr: table_phys.as_u64(), len: table_bytes, flags: DESC_F_INDIRECT, next: 0 });
        self.publish(head);
        Ok(head)
    }

    /// Puts the chain at `head` (its descriptors written) in the available ring.
    fn publish(&mut self, head: u16) {
        let slot = self.avail_idx % self.size;
        self.write_u16(self.layout.avail_offset + 4 + 2 * slot as usize, head);
        // The device must see the descriptors and the ring entry before the index.
        fence(Ordering::SeqCst);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.write_u16(self.layout.avail_offset + 2, self.avail_idx);
        // And the index before the notify that follows.
        fence(Ordering::SeqCst);
    }

    /// Collects one finished chain, returning its descriptors to the free list.
    ///
    /// `Ok(None)`: nothing new. A head the driver did not have in flight is a
    /// protocol violation reported as [`QueueError::BadUsedHead`]; the entry is
    /// skipped and the caller should reset the device.
    pub fn poll_used(&mut self) -> Result<Option<UsedElem>, QueueError> {
        if !self.has_used() {
            return Ok(None);
        }
        // Read the entry only after seeing the index that covers it.
        fence(Ordering::SeqCst);
        let entry = self.layout.used_offset + 4 + 8 * (self.last_used_idx % self.size) as usize;
        let id = self.read_u32(entry);
        let len = self.read_u32(entry + 4);
        self.last_used_idx = self.last_used_idx.wrapping_add(1);
        let head = u16::try_from(id).ok().filter(|&h| h < self.size && self.chain_len[h as usize] != 0);
        let Some(head) = head else {
            return Err(QueueError::BadUsedHead(id));
        };
        self.free_chain(head);
        // The caller reads what the device wrote into the buffers after this.
        fence(Ordering::SeqCst);
        Ok(Some(UsedElem { head, len }))
    }

    /// Returns the descriptors of the chain at `head` to the free list.
    fn free_chain(&mut self, head: u16) {
        let count = core::mem::replace(&mut self.chain_len[head as usize], 0);
        let mut last = head;
        for _ in 1..count {
            last = self.next[last as usize];
        }
        self.next[last as usize] = self.free_head;
        self.free_head = head;
        self.nr_free += count;
    }

    /// Writes descriptor `index` of the table.
    fn write_desc(&mut self, index: u16, desc: Descriptor) {
        assert!(index < self.size, "SplitQueue::write_desc: index out of range");
        let ptr = self.mem.as_ptr().cast::<Descriptor>();
        // SAFETY: the table starts the owned block, which holds `size` descriptors
        // (16-byte aligned, as the block is page-aligned); volatile because the
        // device reads it.
        unsafe { ptr.add(index as usize).write_volatile(desc) }
    }

    /// Writes the ring word at byte `offset` of the block.
    fn write_u16(&mut self, offset: usize, value: u16) {
        assert!(offset + 2 <= self.layout.size_bytes, "SplitQueue::write_u16: offset out of range");
        // SAFETY: in bounds of the owned block (checked) and 2-byte aligned (ring
        // fields are); volatile because the device reads it concurrently.
        unsafe { self.mem.as_ptr().add(offset).cast::<u16>().write_volatile(value) }
    }

    /// Reads the ring word at byte `offset` of the block.
    fn read_u16(&self, offset: usize) -> u16 {
        assert!(offset + 2 <= self.layout.size_bytes, "SplitQueue::read_u16: offset out of range");
        // SAFETY: as in `write_u16`; volatile because the device writes it.
        unsafe { self.mem.as_ptr().add(offset).cast::<u16>().read_volatile() }
    }

    /// Reads the ring dword at byte `offset` of the block.
    fn read_u32(&self, offset: usize) -> u32 {
        assert!(offset + 4 <= self.layout.size_bytes, "SplitQueue::read_u32: offset out of range");
        // SAFETY: in bounds (checked), 4-byte aligned (used elements are 8-byte
        // records at a 4-byte offset from a page boundary); the device writes it.
        unsafe { self.mem.as_ptr().add(offset).cast::<u32>().read_volatile() }
    }
}

/// Size check: descriptors are 16 bytes, as the device expects.
const _: () = assert!(size_of::<Descriptor>() == 16);
