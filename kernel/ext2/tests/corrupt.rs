//! Damaged disks that pass the mount checks: random bytes of the metadata are
//! changed, then every file is read and some written. Any result is fine except a
//! panic (in the kernel a panic is the whole machine): a broken rule of the format
//! must come back as an error.

mod common;

use blockdev::RamDisk;
use common::*;
use ext2::{Ext2, FileType, InodeNo, ROOT_INO};

/// Reads everything reachable from `dir`, at most `depth` levels down; errors are
/// ignored (they are the point), panics are not.
fn read_everything(fs: &mut Ext2, dir: InodeNo, depth: u32) {
    let Ok(entries) = fs.read_dir(dir, 0) else { return };
    for e in entries.into_iter().take(400) {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let _ = fs.stat(e.ino);
        match e.file_type {
            FileType::Directory if depth > 0 => read_everything(fs, e.ino, depth - 1),
            FileType::Symlink => {
                let _ = fs.readlink(e.ino);
                let _ = fs.lookup_path(dir, &e.name, true);
            }
            _ => {
                let mut buf = vec![0u8; 64 * 1024];
                let _ = fs.read_at(e.ino, 0, &mut buf);
                let _ = fs.block_of(e.ino, 300);
            }
        }
    }
}

/// Tries changes on a damaged file system; errors are fine.
fn write_some(fs: &mut Ext2) {
    let _ = fs.mkdir(ROOT_INO, b"fuzz-dir", 0o755);
    if let Ok(f) = fs.create(ROOT_INO, b"fuzz-file", 0o644) {
        let _ = fs.write_at(f, 0, &pattern(40 * 1024, 3));
        let _ = fs.truncate(f, 100);
    }
    let _ = fs.rename(ROOT_INO, b"a", ROOT_INO, b"fuzz-dir");
    let _ = fs.unlink(ROOT_INO, b"f0");
    if let Ok(a) = fs.lookup(ROOT_INO, b"a") {
        let _ = fs.rmdir(a, b"b");
        let _ = fs.unlink(a, b"big");
    }
    let _ = fs.sync();
}

#[test]
fn damaged_metadata_gives_errors_never_panics() {
    let staging = TempDir::new("staging");
    std::fs::create_dir_all(staging.join("a/b")).unwrap();
    std::fs::write(staging.join("a/big"), pattern(300 * 1024, 1)).unwrap();
    for i in 0..30 {
        std::fs::write(staging.join(&format!("f{i}")), pattern(i * 500, i as u32)).unwrap();
    }
    std::os::unix::fs::symlink("a/big", staging.join("link")).unwrap();
    let image = make_image(&staging.0, 1024, 2048, &["-N", "64"]);
    // The metadata of a 1 KiB, 64-inode disk lives in its first ~20 blocks, the
    // directories and indirect blocks soon after: damage bytes there.
    let inode_table = {
        let disk = RamDisk::from_bytes("root", image.clone());
        mount(&disk).groups()[0].inode_table as usize * 1024
    };
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut nr_mounted = 0;
    for round in 0..300 {
        let mut bytes = image.clone();
        for _ in 0..1 + round % 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Every other change lands in the inode table (sizes, i_blocks, pointers).
            let at = if x & 1 == 0 { inode_table + (x % (64 * 256)) as usize } else { 1024 + (x % (64 * 1024)) as usize };
            bytes[at] = (x >> 32) as u8;
        }
        let disk = RamDisk::from_bytes("root", bytes);
        let Ok(mut fs) = Ext2::mount(&disk, host_clock) else { continue };
        nr_mounted += 1;
        read_everything(&mut fs, ROOT_INO, 6);
        write_some(&mut fs);
    }
    assert!(nr_mounted > 100, "most damage is past the superblock: {nr_mounted} mounted");
}

#[test]
fn a_wrong_i_blocks_count_does_not_underflow_on_unlink() {
    let staging = TempDir::new("staging");
    std::fs::write(staging.join("big"), pattern(300 * 1024, 1)).unwrap();
    let image = make_image(&staging.0, 1024, 2048, &[]);
    let tmp = TempDir::new("img");
    let img = tmp.join("disk.img");
    std::fs::write(&img, &image).unwrap();
    debugfs_write(&img, "sif /big blocks 2");
    let disk = RamDisk::from_bytes("root", std::fs::read(&img).unwrap());
    let mut fs = mount(&disk);
    fs.unlink(ROOT_INO, b"big").expect("freeing the blocks the map names works");
    fs.sync().unwrap();
}
