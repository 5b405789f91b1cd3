//! The virtio-blk swap disk: found on the PCI bus, the size the runner made it,
//! data that round-trips through every buffer path, and errors that stay errors.
//!
//! The runner attaches a fresh 256 MiB swap disk (serial "swap") to every boot, and
//! this test runs with the default size.
#![no_std]
#![allow(missing_docs)] // test names say what each test checks
#![no_main]
#![feature(custom_test_frameworks)]
#![test_runner(kernel::testing::test_runner)]
#![reexport_test_harness_main = "test_main"]

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use kernel::drivers::pci::{self, Bar, PciAddress, PciDevice};
use kernel::drivers::virtio_blk::{self, BlkError, SECTOR_SIZE, VirtioBlk, req_type};
use kernel::drivers::virtio_pci::{self, DEVICE_TYPE_BLOCK, VIRTIO_VENDOR_ID};
use kernel::mm::frame::{self, FrameState, OwnedFrames};
use kernel::mm::{Frame, Order, frame_ptr, heap};
use kernel::sync::MutexGuard;

kernel::test_kernel!();

/// The runner's default swap size (`--swap-size`, `KERNEL_SWAP_SIZE`).
const SWAP_BYTES: u64 = 256 << 20;

fn disk() -> MutexGuard<'static, VirtioBlk> {
    virtio_blk::swap_disk().expect("no swap disk found").lock()
}

fn swap_pci_device(addr: PciAddress) -> &'static PciDevice {
    pci::devices().iter().find(|d| d.addr == addr).expect("swap disk not in the PCI list")
}

/// Fills `buf` (whole sectors starting at `sector`) with bytes unique to sector and seed.
fn fill_pattern(sector: u64, seed: u8, buf: &mut [u8]) {
    for (i, chunk) in buf.chunks_mut(SECTOR_SIZE).enumerate() {
        let s = sector + i as u64;
        chunk[..8].copy_from_slice(&s.to_le_bytes());
        for (j, byte) in chunk.iter_mut().enumerate().skip(8) {
            *byte = (s as u8).wrapping_mul(31) ^ (j as u8).wrapping_mul(7) ^ seed ^ (s >> 8) as u8;
        }
    }
}

fn expect_pattern(sector: u64, seed: u8, buf: &[u8]) {
    let mut want = vec![0; buf.len()];
    fill_pattern(sector, seed, &mut want);
    if let Some(i) = buf.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "sector {} byte {}: read {:#x}, wrote {:#x}",
            sector + (i / SECTOR_SIZE) as u64,
            i % SECTOR_SIZE,
            buf[i],
            want[i]
        );
    }
}

fn assert_queue_idle(blk: &VirtioBlk) {
    let (size, nr_free) = blk.queue_usage();
    assert_eq!(nr_free, size, "descriptors still in use after the request finished");
}

#[test_case]
fn pci_scan_finds_the_transitional_virtio_blk_device() {
    let devices = pci::devices();
    assert!(devices.iter().any(|d| d.addr == PciAddress::new(0, 0, 0) && d.class == 0x06), "no host bridge at 00:00.0");
    let blk = devices
        .iter()
        .find(|d| d.vendor_id == VIRTIO_VENDOR_ID && d.device_id == 0x1001)
        .expect("no 1af4:1001 device on the bus");
    assert_eq!(blk.class, 0x01, "virtio-blk is mass storage");
    assert_eq!(virtio_pci::device_type(blk), Some(DEVICE_TYPE_BLOCK));
    assert!(matches!(blk.bars[0], Some(Bar::Io { size, .. }) if size >= 0x20), "BAR0 is not the legacy I/O window");
    assert!(blk.command() & pci::COMMAND_BUS_MASTER != 0, "bus mastering not enabled");
    kernel::println!();
    pci::print_lspci();
}

#[test_case]
fn capability_walk_finds_msix_and_the_modern_virtio_structures() {
    let blk = swap_pci_device(disk().pci_address());
    assert!(blk.capabilities().any(|(id, _)| id == pci::CAP_MSIX), "no MSI-X capability");
    let caps = virtio_pci::virtio_capabilities(blk);
    for cfg_type in 1..=4 {
        let cap = caps.iter().find(|c| c.cfg_type == cfg_type).expect("a modern virtio structure is missing");
        assert!(blk.bars[cap.bar as usize].is_some(), "{} structure in an empty BAR", cap.type_name());
    }
}

#[test_case]
fn swap_disk_capacity_is_the_runner_default_256_mib() {
    let blk = disk();
    assert_eq!(blk.capacity_bytes(), SWAP_BYTES);
    assert_eq!(blk.capacity_sectors(), SWAP_BYTES / SECTOR_SIZE as u64);
}

#[test_case]
fn swap_disk_is_the_one_with_serial_swap() {
    let mut blk = disk();
    assert_eq!(blk.serial(), "swap");
    let id = blk.get_id().expect("GET_ID");
    assert_eq!(&id[..5], b"swap\0");
}

#[test_case]
fn patterns_in_many_sectors_read_back_after_flush() {
    let mut blk = disk();
    let last = blk.capacity_sectors() - 1;
    let singles = [0, 1, 7, 8, 100, 4095, 65_536, 262_143, last / 2, last - 8, last];
    // Single sectors from a stack buffer: the bounce path.
    for &sector in &singles {
        let mut buf = [0u8; SECTOR_SIZE];
        fill_pattern(sector, 0x11, &mut buf);
        blk.write(sector, &buf).expect("write of one sector");
    }
    // 200 KiB from the heap: direct DMA, split into 64 KiB requests.
    let mut big = vec![0u8; 200 << 10];
    fill_pattern(10_000, 0x22, &mut big);
    blk.write(10_000, &big).expect("write of 200 KiB");
    blk.flush().expect("flush");
    for &sector in &singles {
        let mut buf = [0u8; SECTOR_SIZE];
        blk.read(sector, &mut buf).expect("read of one sector");
        expect_pattern(sector, 0x11, &buf);
    }
    big.fill(0);
    blk.read(10_000, &mut big).expect("read of 200 KiB");
    expect_pattern(10_000, 0x22, &big);
    // The same data through the bounce path, 4 KiB at a time, crossing a 64 KiB split.
    let mut page = [0u8; 4096];
    blk.read(10_000 + 120, &mut page).expect("bounced read");
    expect_pattern(10_000 + 120, 0x22, &page);
    assert_queue_idle(&blk);
}

#[test_case]
fn reads_and_writes_past_the_end_are_errors_not_panics() {
    let mut blk = disk();
    let capacity = blk.capacity_sectors();
    let mut buf = vec![0u8; 1024];
    let out_of_range = |sector, nr_sectors| Err(BlkError::OutOfRange { sector, nr_sectors, capacity });
    assert_eq!(blk.read(capacity, &mut buf[..512]), out_of_range(capacity, 1));
    assert_eq!(blk.read(capacity - 1, &mut buf), out_of_range(capacity - 1, 2));
    assert_eq!(blk.read(u64::MAX, &mut buf[..512]), out_of_range(u64::MAX, 1));
    assert_eq!(blk.write(capacity, &buf[..512]), out_of_range(capacity, 1));
    let frame = OwnedFrames::new_zeroed(Order(0)).unwrap();
    assert_eq!(blk.read_frame(capacity - 7, frame.start()), out_of_range(capacity - 7, 8));
    assert_eq!(blk.read(capacity - 1, &mut buf[..512]), Ok(()), "the last sector itself is readable");
    assert_queue_idle(&blk);
}

#[test_case]
fn lengths_that_are_not_whole_sectors_are_errors() {
    let mut blk = disk();
    let mut buf = [0u8; 1024];
    assert_eq!(blk.read(0, &mut buf[..511]), Err(BlkError::BadLength(511)));
    assert_eq!(blk.write(0, &buf[..513]), Err(BlkError::BadLength(513)));
    assert_eq!(blk.read(0, &mut buf[..1]), Err(BlkError::BadLength(1)));
    assert_eq!(blk.read(0, &mut buf[..0]), Ok(()), "an empty read is a no-op");
}

#[test_case]
fn device_status_ioerr_and_unsupp_come_back_as_errors() {
    let mut blk = disk();
    let before = blk.stats();
    let past_end = blk.capacity_sectors() + 8;
    // The driver's range check is bypassed: the device itself answers IOERR.
    assert_eq!(blk.raw_request(req_type::IN, past_end), Err(BlkError::IoError { sector: past_end }));
    assert_eq!(blk.raw_request(0x7e, 0), Err(BlkError::Unsupported), "unknown request type");
    assert_eq!(blk.stats().nr_errors, before.nr_errors + 2);
    assert_eq!(blk.stats().nr_timeouts, before.nr_timeouts);
    assert_queue_idle(&blk);
    let mut buf = [0u8; 512];
    blk.read(0, &mut buf).expect("the device still works after errors");
}

#[test_case]
fn a_request_that_times_out_resets_the_device_and_the_next_one_works() {
    let mut blk = disk();
    let before = blk.stats();
    let mut data = vec![0u8; 4096];
    fill_pattern(7000, 0x55, &mut data);
    blk.write(7000, &data).unwrap();
    // A zero timeout: the driver gives up before its first look at the used ring
    // and resets the device with the request in flight.
    blk.set_timeout_ms(0);
    let nr_timeouts = 20;
    for _ in 0..nr_timeouts {
        assert_eq!(blk.read(7000, &mut data), Err(BlkError::Timeout));
        assert_queue_idle(&blk);
    }
    blk.set_timeout_ms(virtio_blk::DEFAULT_TIMEOUT_MS);
    let after = blk.stats();
    assert_eq!(after.nr_timeouts, before.nr_timeouts + nr_timeouts);
    assert_eq!(after.nr_resets, before.nr_resets + nr_timeouts, "every timeout resets the device");
    data.fill(0);
    blk.read(7000, &mut data).expect("read after the resets");
    expect_pattern(7000, 0x55, &data);
}

/// Rounds the hog still has to spin (each [`HOG_SPIN_MS`] long, without yielding).
static HOG_ROUNDS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
static HOG_QUEUE: kernel::sync::WaitQueue = kernel::sync::WaitQueue::new();
const HOG_SPIN_MS: u64 = 100;

/// A kernel thread that, when asked, keeps its CPU for [`HOG_SPIN_MS`] (kernel code
/// is not preempted): a task queued behind it runs that much later.
extern "C" fn hog_main() -> ! {
    use core::sync::atomic::Ordering;
    loop {
        HOG_QUEUE.wait_until(|| HOG_ROUNDS.load(Ordering::SeqCst) > 0);
        let start = kernel::arch::timer::uptime_ms();
        while kernel::arch::timer::uptime_ms() < start + HOG_SPIN_MS {
            core::hint::spin_loop();
        }
        HOG_ROUNDS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A request that completed while its task waited to run again (queued behind a
/// task that kept the CPU past the request's deadline) succeeds: the driver looks
/// at the used ring once more before it calls the wait a timeout. It used to check
/// the deadline first and give up on a finished request (with 2 CPUs under load:
/// `pressure`'s sortstorm killed by "swap-in of slot 598 failed: Timeout").
#[test_case]
fn a_request_done_while_its_task_waited_past_the_deadline_to_run_succeeds() {
    use core::sync::atomic::Ordering;
    static HOG: spin::Once<u64> = spin::Once::new();
    HOG.call_once(|| kernel::sync::kthread::spawn("blkhog", hog_main).expect("spawn the hog"));
    let mut blk = disk();
    const LEN: usize = 256 << 10;
    let mut want = vec![0u8; LEN];
    fill_pattern(9000, 0x66, &mut want);
    blk.write(9000, &want).unwrap();
    let mut data = vec![0u8; LEN];
    blk.set_timeout_ms(HOG_SPIN_MS / 4);
    let before = blk.stats();
    // Reads the device finishes before the driver's first look never wait (under
    // TCG, some do): read until 5 have waited (each yielded or slept while the
    // hog kept the CPU past their deadline), at most 200 times.
    let (mut nr_waited, mut nr_reads) = (0, 0);
    let mut results = Vec::new();
    while nr_waited < 5 && nr_reads < 200 {
        HOG_ROUNDS.store(1, Ordering::SeqCst);
        HOG_QUEUE.wake_all();
        data.fill(0);
        let looks = blk.stats().nr_not_done_looks;
        let result = blk.read(9000, &mut data).map(|()| data == want);
        if blk.stats().nr_not_done_looks > looks {
            nr_waited += 1;
            results.push(result);
        } else {
            assert_eq!(result, Ok(true), "a read that did not wait");
        }
        nr_reads += 1;
        while HOG_ROUNDS.load(Ordering::SeqCst) > 0 {
            kernel::proc::sched::yield_now();
        }
    }
    blk.set_timeout_ms(virtio_blk::DEFAULT_TIMEOUT_MS);
    let after = blk.stats();
    assert!(nr_waited > 0, "none of {nr_reads} reads waited: {after:?}");
    assert_eq!(results, vec![Ok(true); nr_waited], "every read that waited succeeded with the data written");
    assert_eq!(after.nr_timeouts, before.nr_timeouts, "no wait timed out");
}

#[test_case]
fn frames_round_trip_by_dma_and_agree_with_the_slice_path() {
    let mut blk = disk();
    let sector = 3 * 4096;
    let out = OwnedFrames::new_zeroed(Order(0)).unwrap();
    // SAFETY: `out` is an owned 4 KiB frame in the direct map.
    fill_pattern(sector, 0x33, unsafe { core::slice::from_raw_parts_mut(out.as_ptr(), 4096) });
    blk.write_frame(sector, out.start()).expect("write_frame");
    let back = frame::alloc(Order(0), FrameState::User).unwrap();
    // SAFETY: we own `back`; scribble on it so a read that does nothing is caught.
    unsafe { core::ptr::write_bytes(frame_ptr(back), 0xee, 4096) };
    blk.read_frame(sector, back).expect("read_frame");
    // SAFETY: we own `back` and the read has completed.
    expect_pattern(sector, 0x33, unsafe { core::slice::from_raw_parts(frame_ptr(back), 4096) });
    // SAFETY: allocated by this test; no request uses it any more.
    unsafe { frame::free(back, Order(0)) }.unwrap();
    let mut page = [0u8; 4096];
    blk.read(sector, &mut page).expect("slice read");
    expect_pattern(sector, 0x33, &page);
    assert_queue_idle(&blk);
}

#[test_case]
fn dma_into_a_frame_the_caller_cannot_own_is_refused() {
    let mut blk = disk();
    let free = frame::alloc(Order(0), FrameState::Kernel).unwrap();
    // SAFETY: allocated by this test; no request uses it any more.
    unsafe { frame::free(free, Order(0)) }.unwrap();
    assert_eq!(blk.read_frame(0, free), Err(BlkError::BadFrame(free)), "a free frame");
    assert_eq!(blk.read_frame(0, Frame::from_pfn(0)), Err(BlkError::BadFrame(Frame::from_pfn(0))), "a reserved frame");
    let beyond = Frame::from_pfn(frame::table_info().nr_frames + 10);
    assert_eq!(blk.write_frame(0, beyond), Err(BlkError::BadFrame(beyond)), "a frame past RAM");
}

#[test_case]
fn stats_count_requests_and_bytes() {
    let mut blk = disk();
    let before = blk.stats();
    let frame = OwnedFrames::new_zeroed(Order(0)).unwrap();
    blk.write_frame(8, frame.start()).unwrap();
    blk.read_frame(8, frame.start()).unwrap();
    let mut stack = [0u8; 1024];
    blk.read(8, &mut stack).unwrap();
    let after = blk.stats();
    assert_eq!(after.nr_writes, before.nr_writes + 1);
    assert_eq!(after.nr_reads, before.nr_reads + 2);
    assert_eq!(after.bytes_written, before.bytes_written + 4096);
    assert_eq!(after.bytes_read, before.bytes_read + 4096 + 1024);
    assert_eq!(after.nr_bounced, before.nr_bounced + 1);
}

#[test_case]
fn a_second_driver_instance_returns_every_frame_when_dropped() {
    // Holding the global disk's lock keeps everyone else off the device.
    let mut global = disk();
    let dev = swap_pci_device(global.pci_address());
    heap::shrink();
    let nr_free_before = frame::nr_free_frames();
    {
        let mut blk = VirtioBlk::new(dev).expect("second instance");
        assert_eq!(blk.capacity_bytes(), SWAP_BYTES);
        let mut data: Vec<u8> = vec![0; 8192];
        fill_pattern(5000, 0x44, &mut data);
        blk.write(5000, &data).unwrap();
        blk.flush().unwrap();
        assert_queue_idle(&blk);
    }
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), nr_free_before, "driver frames leaked");
    // The other instance reset the device: hand it back to the global one.
    global.reinit().expect("reinit");
    let mut back = [0u8; 8192];
    global.read(5000, &mut back).expect("read after reinit");
    expect_pattern(5000, 0x44, &back);
}

#[test_case]
fn wiped_sectors_read_back_as_zeros_and_their_neighbours_are_intact() {
    use kernel::drivers::virtio_blk::WipeKind;
    let mut disk = disk();
    assert_eq!(disk.wipe_kind(), Some(WipeKind::Zeroed), "QEMU's virtio-blk offers WRITE_ZEROES: {}", disk.describe());
    // Three runs of 24 sectors: the middle one is wiped, the outer ones must stay.
    let first = 9_000;
    let mut buf = vec![0u8; 72 * SECTOR_SIZE];
    fill_pattern(first, 0x5a, &mut buf);
    disk.write(first, &buf).expect("write");
    let wiped_before = disk.stats().nr_wiped_sectors;
    assert_eq!(disk.wipe(first + 24, 24), Ok(WipeKind::Zeroed));
    assert_eq!(disk.stats().nr_wiped_sectors, wiped_before + 24);
    let mut back = vec![0xffu8; buf.len()];
    disk.read(first, &mut back).expect("read");
    expect_pattern(first, 0x5a, &back[..24 * SECTOR_SIZE]);
    assert!(back[24 * SECTOR_SIZE..48 * SECTOR_SIZE].iter().all(|&b| b == 0), "wiped sectors are not zero");
    expect_pattern(first + 48, 0x5a, &back[48 * SECTOR_SIZE..]);
    // A range past the end is an error, not a request.
    let end = disk.capacity_sectors();
    assert!(matches!(disk.wipe(end - 8, 16), Err(BlkError::OutOfRange { .. })));
}

/// `nr_runs` runs of `per_run` frames each (one frame block per run), filled with
/// a pattern of their sectors from `base` (runs 4096 sectors apart), written with
/// one `write_frame_runs`, scribbled over, read back with one `read_frame_runs`
/// and checked. Returns the peak of requests in flight during the write.
fn round_trip_runs(blk: &mut VirtioBlk, base: u64, nr_runs: usize, per_run: usize, seed: u8) -> u64 {
    let order = Order::for_size((per_run * 4096) as u64);
    let blocks: Vec<OwnedFrames> = (0..nr_runs).map(|_| OwnedFrames::new_zeroed(order).unwrap()).collect();
    let frames: Vec<Vec<Frame>> =
        blocks.iter().map(|b| (0..per_run as u64).map(|i| Frame::from_pfn(b.start().pfn() + i)).collect()).collect();
    let sector_of = |k: usize| base + k as u64 * 4096;
    let bytes = |b: &OwnedFrames| {
        // SAFETY: `b` is an owned block of at least `per_run` frames in the direct
        // map; no request is using it while the slice lives.
        unsafe { core::slice::from_raw_parts_mut(b.as_ptr(), per_run * 4096) }
    };
    for (k, b) in blocks.iter().enumerate() {
        fill_pattern(sector_of(k), seed, bytes(b));
    }
    let runs: Vec<(u64, &[Frame])> = frames.iter().enumerate().map(|(k, f)| (sector_of(k), f.as_slice())).collect();
    let mut results = vec![Err(BlkError::DeviceBroken); nr_runs];
    blk.reset_peak_in_flight();
    blk.write_frame_runs(&runs, &mut results);
    let peak = blk.stats().peak_in_flight;
    assert!(results.iter().all(Result::is_ok), "writes: {results:?}");
    assert_queue_idle(blk);
    for b in &blocks {
        bytes(b).fill(0xee);
    }
    let mut results = vec![Err(BlkError::DeviceBroken); nr_runs];
    blk.read_frame_runs(&runs, &mut results);
    assert!(results.iter().all(Result::is_ok), "reads: {results:?}");
    for (k, b) in blocks.iter().enumerate() {
        expect_pattern(sector_of(k), seed, bytes(b));
    }
    assert_queue_idle(blk);
    peak
}

#[test_case]
fn with_indirect_descriptors_big_requests_are_in_flight_together_and_read_back() {
    let mut blk = disk();
    assert!(blk.set_indirect(true).unwrap(), "QEMU's virtio-blk offers VIRTIO_RING_F_INDIRECT_DESC");
    let before = blk.stats();
    // Four requests of 254 frames: each takes one ring entry, so all four are
    // submitted before the driver waits for the first.
    let peak = round_trip_runs(&mut blk, 131_072, 4, 254, 0x17);
    assert_eq!(peak, 4, "every request of the batch in flight at once");
    let after = blk.stats();
    assert_eq!(after.nr_writes - before.nr_writes, 4);
    assert_eq!(after.nr_reads - before.nr_reads, 4);
    assert_eq!(after.nr_indirect - before.nr_indirect, 8, "every chain in an indirect table");
    assert_eq!(after.nr_overlapped - before.nr_overlapped, 6, "three of each batch submitted behind another");
    assert_eq!(after.bytes_written - before.bytes_written, 4 * 254 * 4096);
}

#[test_case]
fn without_indirect_descriptors_requests_overlap_as_far_as_the_ring_allows() {
    let mut blk = disk();
    assert!(!blk.set_indirect(false).unwrap());
    let before = blk.stats();
    // 254 frames take 256 descriptors, the whole ring: one at a time.
    assert_eq!(round_trip_runs(&mut blk, 163_840, 2, 254, 0x29), 1);
    // 64 frames take 66: three fit in the ring of 256 at once.
    assert_eq!(round_trip_runs(&mut blk, 196_608, 5, 64, 0x3b), 3);
    assert_eq!(blk.stats().nr_indirect, before.nr_indirect, "no indirect table used");
    assert!(blk.set_indirect(true).unwrap());
}

#[test_case]
fn a_bad_run_in_a_batch_fails_alone() {
    let mut blk = disk();
    let good = OwnedFrames::new_zeroed(Order(1)).unwrap();
    let goods = [good.start(), Frame::from_pfn(good.start().pfn() + 1)];
    // SAFETY: `good` is two owned frames in the direct map, not in any request now.
    fill_pattern(229_376, 0x4d, unsafe { core::slice::from_raw_parts_mut(good.as_ptr(), 8192) });
    let capacity = blk.capacity_sectors();
    let runs: [(u64, &[Frame]); 3] = [(229_376, &goods[..1]), (capacity - 8, &goods), (229_376 + 8, &goods[1..])];
    let mut results = [Ok(()); 3];
    blk.write_frame_runs(&runs, &mut results);
    assert_eq!(results[0], Ok(()));
    assert!(matches!(results[1], Err(BlkError::OutOfRange { .. })), "{:?}", results[1]);
    assert_eq!(results[2], Ok(()));
    let mut back = vec![0u8; 8192];
    blk.read(229_376, &mut back).unwrap();
    expect_pattern(229_376, 0x4d, &back);
}

#[test_case]
fn a_timeout_with_several_requests_in_flight_fails_each_and_the_disk_works_after() {
    let mut blk = disk();
    assert!(blk.set_indirect(true).unwrap());
    let block = OwnedFrames::new_zeroed(Order(3)).unwrap();
    let frames: Vec<Frame> = (0..8).map(|i| Frame::from_pfn(block.start().pfn() + i)).collect();
    let runs: Vec<(u64, &[Frame])> = (0..4).map(|k| (262_144 + 64 * k as u64, &frames[2 * k..2 * k + 2])).collect();
    let before = blk.stats();
    blk.set_timeout_ms(0);
    let mut results = [Ok(()); 4];
    blk.write_frame_runs(&runs, &mut results);
    blk.set_timeout_ms(virtio_blk::DEFAULT_TIMEOUT_MS);
    assert_eq!(results, [Err(BlkError::Timeout); 4], "every request in flight failed with the reset");
    let after = blk.stats();
    assert_eq!(after.nr_timeouts - before.nr_timeouts, 1, "one wait timed out");
    assert_eq!(after.nr_resets - before.nr_resets, 1, "one reset dropped all four");
    assert_queue_idle(&blk);
    round_trip_runs(&mut blk, 262_144, 4, 2, 0x61);
}
