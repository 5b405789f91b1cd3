//! The swap-disk benchmark: MiB/s of sequential requests, by frame (zero copy), by
//! 32 scattered frames in one request, by heap buffer (direct DMA) and by stack
//! buffer (through the bounce block); and the 32-page requests again through the
//! block layer (`blockdev::BlockDevice::write_pages`/`read_pages` on the registered
//! "swap" disk, as swap sends them), to show what the trait costs.
//!
//! Called from the bench mode (`crate::bench`); numbers go through
//! [`bench::ns_per_op`] and [`bench::row`] like every other table there.

use alloc::format;
use alloc::vec;

use super::{SECTOR_SIZE, VirtioBlk, swap_disk};

/// Frames per scatter-gather request in this benchmark: swap's cluster (32).
const MAX_FRAMES_PER_REQUEST: usize = blockdev::MAX_PAGES_PER_REQUEST;
use crate::mm::Order;
use crate::mm::frame::OwnedFrames;
use crate::{bench, println};

/// Returns MiB/s for `bytes` moved in `ns` nanoseconds.
fn mib_per_s(bytes: u64, ns: f64) -> f64 {
    bytes as f64 * 1e9 / ns / (1u64 << 20) as f64
}

/// Measures the swap disk: sequential 4 KiB and 64 KiB writes and reads over its
/// first 8 MiB, by frame (zero copy), heap buffer (direct DMA) and stack buffer
/// (bounced). Overwrites that area: run it before swap is in use.
pub fn bench() {
    let Some(disk) = swap_disk() else {
        println!("virtio-blk: no swap disk, nothing to measure");
        return;
    };
    const AREA_BYTES: u64 = 8 << 20;
    println!("virtio-blk swap disk, sequential over {} MiB (ns per request, best of rounds):", AREA_BYTES >> 20);
    let frame = OwnedFrames::new_zeroed(Order(0)).expect("virtio_blk::bench: out of frames");
    let mut heap_buf = vec![0x5au8; 64 << 10];
    let mut stack_buf = [0xa5u8; 4096];
    let measure = |name: &str, req_bytes: u64, op_fn: &mut dyn FnMut(&mut VirtioBlk, u64)| {
        let nr_ops = AREA_BYTES / req_bytes;
        let mut i = 0;
        let ns = bench::ns_per_op(nr_ops, || {
            let sector = (i % nr_ops) * req_bytes / SECTOR_SIZE as u64;
            op_fn(&mut disk.lock(), sector);
            i += 1;
        });
        bench::row(&format!("{name:<28}{:>8.1} MiB/s", mib_per_s(req_bytes, ns)), ns);
    };
    let f = frame.start();
    let frames: alloc::vec::Vec<OwnedFrames> = (0..MAX_FRAMES_PER_REQUEST)
        .map(|_| OwnedFrames::new_zeroed(Order(0)).expect("virtio_blk::bench: out of frames"))
        .collect();
    let scattered: alloc::vec::Vec<_> = frames.iter().map(|f| f.start()).collect();
    let sg_bytes = (MAX_FRAMES_PER_REQUEST * 4096) as u64;
    measure("seq write 4 KiB, frame DMA", 4096, &mut |d, s| d.write_frame(s, f).expect("bench: write_frame"));
    measure("seq read 4 KiB, frame DMA", 4096, &mut |d, s| d.read_frame(s, f).expect("bench: read_frame"));
    measure("seq write 4 KiB, bounced", 4096, &mut |d, s| d.write(s, &stack_buf).expect("bench: write"));
    measure("seq read 4 KiB, bounced", 4096, &mut |d, s| d.read(s, &mut stack_buf).expect("bench: read"));
    measure("seq write 64 KiB, heap DMA", 64 << 10, &mut |d, s| d.write(s, &heap_buf).expect("bench: write"));
    measure("seq read 64 KiB, heap DMA", 64 << 10, &mut |d, s| d.read(s, &mut heap_buf).expect("bench: read"));
    measure("seq write 128 KiB, 32 frames s/g", sg_bytes, &mut |d, s| {
        d.write_frames(s, &scattered).expect("bench: write_frames")
    });
    measure("seq read 128 KiB, 32 frames s/g", sg_bytes, &mut |d, s| {
        d.read_frames(s, &scattered).expect("bench: read_frames")
    });
    if let Some(dev) = crate::block::find("swap") {
        let mut frames = frames;
        let nr_ops = AREA_BYTES / sg_bytes;
        let sector_of = |i: u64| (i % nr_ops) * sg_bytes / SECTOR_SIZE as u64;
        let mut i = 0;
        let ns = bench::ns_per_op(nr_ops, || {
            let pages: alloc::vec::Vec<&blockdev::Page> = frames.iter().map(|f| f.page()).collect();
            dev.write_pages(sector_of(i), &pages).expect("bench: write_pages");
            i += 1;
        });
        bench::row(&format!("{:<28}{:>8.1} MiB/s", "  same, BlockDevice::write_pages", mib_per_s(sg_bytes, ns)), ns);
        let mut i = 0;
        let ns = bench::ns_per_op(nr_ops, || {
            let mut pages: alloc::vec::Vec<&mut blockdev::Page> = frames.iter_mut().map(|f| f.page_mut()).collect();
            dev.read_pages(sector_of(i), &mut pages).expect("bench: read_pages");
            i += 1;
        });
        bench::row(&format!("{:<28}{:>8.1} MiB/s", "  same, BlockDevice::read_pages", mib_per_s(sg_bytes, ns)), ns);
    }
    let ns = bench::ns_per_op(200, || disk.lock().flush().expect("bench: flush"));
    bench::row("flush (no data; cache=unsafe)", ns);
    println!("  counters: {:?}", disk.lock().stats());
}
