//! Book-keeping for a driver with several requests in flight at once: which ring
//! head belongs to which request of a batch, which per-request buffer (an indirect
//! descriptor table) each one holds, and the most that were ever in flight.
//!
//! A virtio driver submits the requests of a batch while there is room (free
//! slots here, free descriptors in its ring), then collects completions in
//! whatever order the device returns them: [`InFlight::complete`] finds the request
//! by the head the device reported, and a head that is not in flight is the
//! device's protocol error, reported as `None`. Slots are a fixed array, claimed
//! and released without allocation (completion paths may not allocate).
//!
//! Pure: no hardware, no unsafe; the kernel's `virtio_blk` driver uses it, and
//! [`indirect_links`] gives the flags and links of a descriptor table's entries.

/// Descriptor flag (virtio 1.x §2.7.5): the chain continues at `next`.
pub const DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer.
pub const DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer is a table of descriptors (§2.7.5.3).
pub const DESC_F_INDIRECT: u16 = 4;

/// Returns the `(flags, next)` of entry `i` of an indirect table of `n` entries,
/// written as one chain in table order (§2.7.5.3.1: entries are linked by `next`
/// inside the table; `INDIRECT` is never set inside a table).
pub fn indirect_links(i: usize, n: usize, is_device_writable: bool) -> (u16, u16) {
    let mut flags = if is_device_writable { DESC_F_WRITE } else { 0 };
    let is_last = i + 1 >= n;
    if !is_last {
        flags |= DESC_F_NEXT;
    }
    (flags, if is_last { 0 } else { (i + 1) as u16 })
}

/// The requests in flight: up to `N` of them, each a value `T` keyed by its head.
#[derive(Debug)]
pub struct InFlight<T, const N: usize> {
    slots: [Option<(u16, T)>; N],
    len: usize,
    peak: usize,
}

impl<T, const N: usize> Default for InFlight<T, N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const N: usize> InFlight<T, N> {
    /// No request in flight.
    pub const fn new() -> Self {
        Self { slots: [const { None }; N], len: 0, peak: 0 }
    }

    /// Requests in flight now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if no request is in flight.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The most requests that were in flight at once since [`new`](Self::new)
    /// (or [`reset_peak`](Self::reset_peak)).
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// Forgets the peak (keeps the requests).
    pub fn reset_peak(&mut self) {
        self.peak = self.len;
    }

    /// Returns the slot the next [`insert`](Self::insert) will take, if one is free
    /// (the driver keys the request's indirect table by it).
    pub fn free_slot(&self) -> Option<usize> {
        self.slots.iter().position(Option::is_none)
    }

    /// Records `value` as in flight under `head` in the free slot `slot`. Returns
    /// false (and records nothing) if the slot is taken or out of range, or if
    /// `head` is already in flight (a driver bug: a head is used once at a time).
    pub fn insert(&mut self, slot: usize, head: u16, value: T) -> bool {
        let is_head_taken = self.slots.iter().flatten().any(|&(h, _)| h == head);
        match self.slots.get_mut(slot) {
            Some(s @ None) if !is_head_taken => {
                *s = Some((head, value));
                self.len += 1;
                self.peak = self.peak.max(self.len);
                true
            }
            _ => false,
        }
    }

    /// Takes the request the device completed at `head`: its slot and value, or
    /// `None` if no request is in flight there (the device broke the protocol).
    pub fn complete(&mut self, head: u16) -> Option<(usize, T)> {
        let slot = self.slots.iter().position(|s| matches!(s, Some((h, _)) if *h == head))?;
        let (_, value) = self.slots[slot].take()?;
        self.len -= 1;
        Some((slot, value))
    }

    /// Takes every request still in flight (after a device reset, which drops them),
    /// calling `f` with each slot and value.
    pub fn drain(&mut self, mut f: impl FnMut(usize, T)) {
        for (slot, s) in self.slots.iter_mut().enumerate() {
            if let Some((_, value)) = s.take() {
                f(slot, value);
            }
        }
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_complete_in_any_order_and_the_peak_is_kept() {
        let mut f: InFlight<u32, 4> = InFlight::new();
        for (i, head) in [7u16, 3, 250].into_iter().enumerate() {
            let slot = f.free_slot().unwrap();
            assert_eq!(slot, i);
            assert!(f.insert(slot, head, 100 + i as u32));
        }
        assert_eq!((f.len(), f.peak()), (3, 3));
        assert_eq!(f.complete(3), Some((1, 101)));
        assert_eq!(f.complete(3), None, "a head completes once");
        assert_eq!(f.free_slot(), Some(1), "the freed slot is reused first");
        assert!(f.insert(1, 9, 5));
        assert_eq!(f.complete(250), Some((2, 102)));
        assert_eq!(f.complete(7), Some((0, 100)));
        assert_eq!(f.complete(9), Some((1, 5)));
        assert!(f.is_empty());
        assert_eq!(f.peak(), 3);
        f.reset_peak();
        assert_eq!(f.peak(), 0);
    }

    #[test]
    fn a_head_not_in_flight_is_not_completed() {
        let mut f: InFlight<(), 2> = InFlight::new();
        assert_eq!(f.complete(0), None);
        assert!(f.insert(0, 4, ()));
        assert_eq!(f.complete(5), None);
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn full_taken_and_duplicate_inserts_are_refused() {
        let mut f: InFlight<u8, 2> = InFlight::new();
        assert!(f.insert(0, 1, 0));
        assert!(!f.insert(0, 2, 0), "slot taken");
        assert!(!f.insert(1, 1, 0), "head already in flight");
        assert!(!f.insert(2, 3, 0), "slot out of range");
        assert!(f.insert(1, 2, 0));
        assert_eq!(f.free_slot(), None);
        let mut drained = [false; 2];
        f.drain(|slot, _| drained[slot] = true);
        assert_eq!((drained, f.len(), f.peak()), ([true, true], 0, 2));
    }

    #[test]
    fn an_indirect_table_is_one_chain_in_table_order() {
        // header (device reads), two data pages (device writes: a read), status.
        let n = 4;
        let links: [(u16, u16); 4] = core::array::from_fn(|i| indirect_links(i, n, i > 0));
        assert_eq!(links[0], (DESC_F_NEXT, 1));
        assert_eq!(links[1], (DESC_F_NEXT | DESC_F_WRITE, 2));
        assert_eq!(links[2], (DESC_F_NEXT | DESC_F_WRITE, 3));
        assert_eq!(links[3], (DESC_F_WRITE, 0), "the last entry ends the chain");
        assert!(links.iter().all(|&(flags, _)| flags & DESC_F_INDIRECT == 0));
        assert_eq!(indirect_links(0, 1, false), (0, 0));
    }
}
