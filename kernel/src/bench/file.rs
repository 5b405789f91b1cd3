//! The file I/O benchmarks: a file on the root disk's ext2, written and read
//! through the page cache (`mm/page_cache.rs` over `fs/ext2fs_pages.rs`).
//!
//! - write + fsync: 64 KiB `write_at`s of the whole file, then `write_back` and the
//!   file system's `sync` (every byte on the disk), MiB/s;
//! - cold sequential read: a fresh cache (nothing cached), 64 KiB reads, MiB/s,
//!   with readahead's pages and hits;
//! - warm sequential read: the same again, every page cached, MiB/s;
//! - cold read without readahead, for comparison (the window's maximum set to 0).
//!
//! It mounts the root disk with the `ext2` crate directly (not through the VFS), so
//! it runs whatever `/` is; the file is removed at the end, and the runner's
//! `e2fsck -fn` after the run checks what write-back left on the disk.
//! `cargo run -- --bench --memory 256M --root-size 160M --cmdline benchonly=file`.

use alloc::sync::Arc;
use alloc::vec;

use ext2::{Ext2, ROOT_INO};

use crate::arch::timer;
use crate::fs::ext2fs_pages::{Ext2Pages, SharedExt2};
use crate::mm::PAGE_SIZE;
use crate::mm::page_cache::{self, FileEvent, PageCache};
use crate::println;
use crate::sync::Mutex;

/// The size of the benchmark file, when the disk has room.
const FILE_BYTES: u64 = 64 << 20;
/// Bytes per `read_at` / `write_at`.
const CHUNK: usize = 64 << 10;
/// Its name in the root directory.
const NAME: &[u8] = b"pagecache-bench.dat";

fn clock() -> u32 {
    (timer::uptime_ms() / 1000) as u32
}

fn mib_per_s(bytes: u64, ns: u64) -> f64 {
    (bytes as f64 / (1 << 20) as f64) / (ns.max(1) as f64 / 1e9)
}

/// A start time on both clocks: the TSC (fine, calibrated once at boot against the
/// PIT) and the PIT's own ticks (10 ms, but needs no calibration). Under TCG the
/// calibration varies with the host's load, so the table shows both.
#[derive(Clone, Copy)]
struct Stopwatch {
    tsc: u64,
    ms: u64,
}

impl Stopwatch {
    fn start() -> Stopwatch {
        Stopwatch { tsc: timer::rdtsc(), ms: timer::uptime_ms() }
    }

    /// Returns (ns by the TSC, ms by the PIT) since the start.
    fn elapsed(self) -> (u64, u64) {
        (timer::cycles_to_ns(timer::rdtsc() - self.tsc), timer::uptime_ms() - self.ms)
    }
}

/// Prints one row: MiB/s by the TSC, and by the PIT.
fn row(label: &str, bytes: u64, (ns, ms): (u64, u64), note: &str) {
    println!(
        "  {:<38} {:>8.1} MiB/s (TSC) {:>8.1} MiB/s (PIT, {:>5} ms)  {}",
        label,
        mib_per_s(bytes, ns),
        mib_per_s(bytes, ms.max(1) * 1_000_000),
        ms,
        note
    );
}

/// Reads the whole file through `cache` in chunks; returns the time taken.
fn read_all(cache: &PageCache, size: u64) -> (u64, u64) {
    let mut buf = vec![0u8; CHUNK];
    let start = Stopwatch::start();
    let mut offset = 0;
    while offset < size {
        let n = cache.read_at(offset, &mut buf).expect("bench: read");
        assert!(n > 0 && buf[0] == 0xa5 && buf[n - 1] == 0xa5, "bench: wrong bytes read back at {offset}");
        offset += n as u64;
    }
    start.elapsed()
}

/// Runs the file benchmarks and prints their table.
pub fn bench() {
    let Some(dev) = crate::block::find("root") else {
        println!("file I/O: no root disk: skipped");
        return;
    };
    let fs = match Ext2::mount(dev, clock) {
        Ok(fs) => fs,
        Err(e) => {
            println!("file I/O: the root disk is not ext2 ({e:?}): skipped");
            return;
        }
    };
    let stats = fs.statfs();
    let free_bytes = u64::from(stats.nr_free_blocks) * u64::from(stats.block_size);
    let size = FILE_BYTES.min(free_bytes * 3 / 4 / PAGE_SIZE * PAGE_SIZE);
    let fs: SharedExt2 = Arc::new(Mutex::new(fs));
    let ino = match fs.lock().create(ROOT_INO, NAME, 0o644) {
        Ok(ino) => ino,
        Err(e) => {
            println!("file I/O: cannot create the file ({e:?}): skipped");
            return;
        }
    };
    let io = Arc::new(Ext2Pages::new(fs.clone(), ino));
    println!("file I/O through the page cache, ext2 on virtio-blk, a {} MiB file, {} KiB per call:", size >> 20, CHUNK >> 10);

    let cache = PageCache::new(io.clone(), 0);
    let chunk = vec![0xa5u8; CHUNK];
    let start = Stopwatch::start();
    let mut offset = 0;
    while offset < size {
        offset += cache.write_at(offset, &chunk).expect("bench: write") as u64;
    }
    let dirtied = start.elapsed();
    cache.write_back(0, u64::MAX).expect("bench: write_back");
    fs.lock().sync().expect("bench: sync");
    row("write (into the cache only)", size, dirtied, "");
    row("write + fsync", size, start.elapsed(), "");
    drop(cache);

    for is_readahead in [true, false] {
        let cache = PageCache::new(io.clone(), size);
        if !is_readahead {
            *cache.readahead_window() = mm_core::file_readahead::ReadaheadWindow::with_max(0);
        }
        let (ahead, hits, reads) = (
            page_cache::nr_events(FileEvent::ReadaheadPage),
            page_cache::nr_events(FileEvent::ReadaheadHit),
            page_cache::nr_events(FileEvent::PageRead),
        );
        let cold = read_all(&cache, size);
        let label = if is_readahead { "cold sequential read" } else { "cold sequential read, readahead off" };
        let note = alloc::format!(
            "{} pages read, {} ahead, {} readahead hits",
            page_cache::nr_events(FileEvent::PageRead) - reads,
            page_cache::nr_events(FileEvent::ReadaheadPage) - ahead,
            page_cache::nr_events(FileEvent::ReadaheadHit) - hits,
        );
        row(label, size, cold, &note);
        if is_readahead {
            let reads = page_cache::nr_events(FileEvent::PageRead);
            let warm = read_all(&cache, size);
            let note = alloc::format!("{} pages read", page_cache::nr_events(FileEvent::PageRead) - reads);
            row("warm sequential read (all cached)", size, warm, &note);
        }
    }
    let mut fs = fs.lock();
    if let Err(e) = fs.unlink(ROOT_INO, NAME).and_then(|()| fs.sync()) {
        println!("file I/O: removing the file failed: {e:?}");
    }
}
