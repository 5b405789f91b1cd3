//! Measures this crate alone, over a RAM disk: a 64 MiB file written in 64 KiB
//! pieces then synced, and read back after a fresh mount, on 1 KiB and 4 KiB
//! blocks. The disk costs nothing here, so the numbers are the file system's own
//! CPU cost (block map walks, bitmap searches, cache copies) and its request
//! counts; the kernel's page cache will sit above this.
//!
//! `cargo run -p ext2 --release --example throughput` (needs mke2fs).

use std::process::Command;
use std::time::Instant;

use blockdev::RamDisk;
use ext2::Ext2;

const FILE_BYTES: usize = 64 << 20;
const CHUNK: usize = 64 << 10;

fn clock() -> u32 {
    1_700_000_000
}

fn image(block_size: u32) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("ext2-throughput-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("disk.img");
    let nr_blocks = (80 << 20) / block_size;
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()])
        .arg(&img)
        .arg(nr_blocks.to_string())
        .output()
        .expect("mke2fs (e2fsprogs) is needed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let bytes = std::fs::read(&img).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    bytes
}

fn mib_per_s(bytes: usize, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs
}

fn main() {
    println!("block  write+sync MiB/s  requests (w)  read MiB/s  requests (r)");
    for block_size in [1024u32, 4096] {
        let disk = RamDisk::from_bytes("root", image(block_size));
        let data: Vec<u8> = (0..CHUNK).map(|i| (i * 7 + 3) as u8).collect();
        let mut fs = Ext2::mount(&disk, clock).unwrap();
        let f = fs.create(fs.root(), b"big", 0o644).unwrap();
        let start = Instant::now();
        for i in 0..FILE_BYTES / CHUNK {
            assert_eq!(fs.write_at(f, (i * CHUNK) as u64, &data).unwrap(), CHUNK);
        }
        fs.sync().unwrap();
        let write_secs = start.elapsed().as_secs_f64();
        let (_, writes, _) = disk.request_counts();
        drop(fs);
        let mut fs = Ext2::mount(&disk, clock).unwrap();
        let f = fs.lookup(fs.root(), b"big").unwrap();
        let (reads_before, _, _) = disk.request_counts();
        let mut buf = vec![0u8; CHUNK];
        let start = Instant::now();
        for i in 0..FILE_BYTES / CHUNK {
            assert_eq!(fs.read_at(f, (i * CHUNK) as u64, &mut buf).unwrap(), CHUNK);
            assert!(buf == data);
        }
        let read_secs = start.elapsed().as_secs_f64();
        let reads = disk.request_counts().0 - reads_before;
        println!(
            "{block_size:<6} {:<17.0} {writes:<13} {:<11.0} {reads}",
            mib_per_s(FILE_BYTES, write_secs),
            mib_per_s(FILE_BYTES, read_secs)
        );
    }
}
