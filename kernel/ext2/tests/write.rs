//! Writing: every change is checked by `e2fsck -fn` on the saved image and read
//! back by `debugfs` (which shares no code with this crate) or a fresh mount.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use blockdev::RamDisk;
use common::*;
use ext2::{Ext2, Ext2Error, FileType, InodeNo, ROOT_INO, SetAttr};

/// An image holding one file (`/old.txt`) and one directory (`/olddir`).
fn fresh_image(block_size: u32, nr_blocks: u32, extra: &[&str]) -> Vec<u8> {
    let staging = TempDir::new("staging");
    std::fs::write(staging.join("old.txt"), pattern(5000, 1)).unwrap();
    std::fs::create_dir(staging.join("olddir")).unwrap();
    std::fs::write(staging.join("olddir/inner"), b"inner\n").unwrap();
    make_image(&staging.0, block_size, nr_blocks, extra)
}

/// Syncs, then checks the disk with e2fsck and returns its bytes.
fn sync_and_check(fs: &mut Ext2, disk: &RamDisk) -> Vec<u8> {
    fs.sync().unwrap();
    assert_eq!(fs.nr_dirty_blocks(), 0);
    let bytes = disk.to_bytes();
    assert_fsck_clean(&bytes);
    assert_counts_exact(&bytes);
    bytes
}

fn write_scenario(block_size: u32, extra: &[&str]) {
    let disk = RamDisk::from_bytes("root", fresh_image(block_size, 4096, extra));
    let mut fs = mount(&disk);
    let bs = block_size as usize;
    let root = fs.root();
    // A file through the direct, indirect and double indirect blocks.
    let big_len = (12 + bs / 4 + 3) * bs + 123;
    let big_data = pattern(big_len, 2);
    let big = fs.create(root, b"big.bin", 0o644).unwrap();
    // Written in uneven pieces, so pieces straddle blocks.
    let mut at = 0;
    for chunk in big_data.chunks(bs * 3 + 17) {
        assert_eq!(fs.write_at(big, at as u64, chunk).unwrap(), chunk.len());
        at += chunk.len();
    }
    // Append to a file mke2fs made.
    let old = fs.lookup(root, b"old.txt").unwrap();
    let mut old_data = pattern(5000, 1);
    let size = fs.stat(old).unwrap().size;
    fs.write_at(old, size, b"appended").unwrap();
    old_data.extend_from_slice(b"appended");
    // Directories, nested, and files in them.
    let d1 = fs.mkdir(root, b"d1", 0o755).unwrap();
    let d2 = fs.mkdir(d1, b"d2", 0o700).unwrap();
    let f = fs.create(d2, b"f.txt", 0o600).unwrap();
    fs.write_at(f, 0, b"hello from ext2\n").unwrap();
    fs.symlink(d1, b"fast", b"d2/f.txt").unwrap();
    let long_target = "../".repeat(30) + "d1/d2/f.txt";
    fs.symlink(d1, b"slow", long_target.as_bytes()).unwrap();
    // Rename across directories, remove a file and a directory of mke2fs's.
    fs.rename(root, b"old.txt", d2, b"moved.txt").unwrap();
    let olddir = fs.lookup(root, b"olddir").unwrap();
    fs.unlink(olddir, b"inner").unwrap();
    fs.rmdir(root, b"olddir").unwrap();

    let bytes = sync_and_check(&mut fs, &disk);
    assert!(debugfs_cat(&bytes, "/big.bin") == big_data, "debugfs reads big.bin as written");
    assert_eq!(debugfs_cat(&bytes, "/d1/d2/moved.txt"), old_data);
    assert_eq!(debugfs_cat(&bytes, "/d1/d2/f.txt"), b"hello from ext2\n");

    // A fresh mount sees the same.
    let disk2 = RamDisk::from_bytes("root", bytes);
    let mut fs2 = mount(&disk2);
    let big2 = fs2.lookup_path(ROOT_INO, b"/big.bin", true).unwrap();
    assert!(read_all(&mut fs2, big2) == big_data);
    let f2 = fs2.lookup_path(ROOT_INO, b"d1/slow", true).unwrap();
    assert_eq!(read_all(&mut fs2, f2), b"hello from ext2\n");
    assert_eq!(fs2.lookup_path(ROOT_INO, b"d1/fast", true).unwrap(), f2);
    assert_eq!(fs2.lookup(ROOT_INO, b"olddir"), Err(Ext2Error::NotFound));
    assert_eq!(fs2.stat(d1).unwrap().nr_links, 3, "d1: its name, its ., d2's ..");
    assert_eq!(fs2.stat(ROOT_INO).unwrap().nr_links, 4, "root: ., .., lost+found/.., d1/..");
}

#[test]
fn writes_on_a_1k_image_pass_e2fsck_and_debugfs_reads_them() {
    write_scenario(1024, &[]);
}

#[test]
fn writes_on_a_4k_image_pass_e2fsck_and_debugfs_reads_them() {
    write_scenario(4096, &[]);
}

#[test]
fn writes_with_128_byte_inodes_and_no_filetype_pass_e2fsck() {
    write_scenario(1024, &["-I", "128", "-O", "^filetype"]);
}

#[test]
fn writes_on_a_revision_0_image_pass_e2fsck() {
    // The original format: 128-byte inodes, no feature flags (no filetype byte,
    // superblock copies in every group, no files over 2 GiB).
    write_scenario(1024, &["-r", "0"]);
}

#[test]
fn writes_across_several_block_groups_pass_e2fsck() {
    // 4 KiB blocks, 1024 blocks per group: 4 groups.
    write_scenario(4096, &["-g", "1024"]);
}

#[test]
fn truncate_frees_indirect_blocks_and_counts_come_back_exactly() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 16 * 1024, &[]));
    let mut fs = mount(&disk);
    let before = fs.statfs();
    let f = fs.create(ROOT_INO, b"t", 0o644).unwrap();
    let data = pattern(400 * 1024, 3); // direct + indirect + double indirect
    fs.write_at(f, 0, &data).unwrap();
    // A block under the triple indirect block, far out (a hole in between).
    let far = (12 + 256 + 256 * 256) * 1024 + 10;
    fs.write_at(f, far, b"far away").unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!(st.size, far + 8);
    sync_and_check(&mut fs, &disk);
    // Shrink to the middle of a block: the tail reads as zeros after growing again.
    fs.truncate(f, 5000).unwrap();
    assert!(fs.stat(f).unwrap().nr_sectors <= 5 * 2, "5 blocks of 1 KiB left, no indirect");
    fs.truncate(f, 9000).unwrap();
    let mut back = vec![0xFFu8; 9000];
    assert_eq!(fs.read_at(f, 0, &mut back).unwrap(), 9000);
    assert_eq!(&back[..5000], &data[..5000]);
    assert!(back[5000..].iter().all(|&b| b == 0), "grown part reads as zeros");
    let bytes = sync_and_check(&mut fs, &disk);
    assert_eq!(debugfs_cat(&bytes, "/t"), back);
    fs.truncate(f, 0).unwrap();
    assert_eq!(fs.stat(f).unwrap().nr_sectors, 0);
    fs.unlink(ROOT_INO, b"t").unwrap();
    assert_eq!(fs.statfs(), before, "every block and the inode are free again");
    sync_and_check(&mut fs, &disk);
}

#[test]
fn mkdir_rmdir_unlink_keep_link_and_dir_counts() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = mount(&disk);
    let dirs_before: u32 = fs.groups().iter().map(|g| u32::from(g.nr_dirs)).sum();
    let a = fs.mkdir(ROOT_INO, b"a", 0o755).unwrap();
    let b = fs.mkdir(a, b"b", 0o755).unwrap();
    assert_eq!(fs.groups().iter().map(|g| u32::from(g.nr_dirs)).sum::<u32>(), dirs_before + 2);
    assert_eq!(fs.stat(a).unwrap().nr_links, 3);
    assert_eq!(fs.stat(b).unwrap().nr_links, 2);
    assert_eq!(fs.lookup(b, b"..").unwrap(), a);
    let file = fs.create(b, b"file", 0o644).unwrap();
    assert_eq!(fs.mkdir(a, b"b", 0o755), Err(Ext2Error::Exists));
    assert_eq!(fs.create(a, b"b", 0o644).map_err(|e| e.errno()), Err(17));
    assert_eq!(fs.rmdir(a, b"b").map_err(|e| e.errno()), Err(39), "ENOTEMPTY");
    assert_eq!(fs.rmdir(b, b"file").map_err(|e| e.errno()), Err(20), "ENOTDIR");
    assert_eq!(fs.unlink(a, b"b").map_err(|e| e.errno()), Err(21), "EISDIR");
    assert_eq!(fs.create(file, b"x", 0o644).map_err(|e| e.errno()), Err(20), "parent not a dir");
    assert_eq!(fs.create(a, &[b'n'; 256], 0o644).map_err(|e| e.errno()), Err(36));
    assert_eq!(fs.create(a, b"a/b", 0o644).map_err(|e| e.errno()), Err(22));
    assert_eq!(fs.rmdir(a, b".").map_err(|e| e.errno()), Err(22));
    assert_eq!(fs.unlink(a, b"missing").map_err(|e| e.errno()), Err(2));
    // Hard links: the inode lives until its last name goes.
    fs.link(a, b"second-name", file).unwrap();
    assert_eq!(fs.stat(file).unwrap().nr_links, 2);
    assert_eq!(fs.link(ROOT_INO, b"dirlink", a), Err(Ext2Error::IsDir));
    fs.unlink(b, b"file").unwrap();
    assert_eq!(fs.stat(file).unwrap().nr_links, 1);
    sync_and_check(&mut fs, &disk);
    fs.rmdir(a, b"b").unwrap();
    assert_eq!(fs.stat(a).unwrap().nr_links, 2);
    fs.unlink(a, b"second-name").unwrap();
    fs.rmdir(ROOT_INO, b"a").unwrap();
    assert_eq!(fs.groups().iter().map(|g| u32::from(g.nr_dirs)).sum::<u32>(), dirs_before);
    sync_and_check(&mut fs, &disk);
}

#[test]
fn rename_within_and_across_directories_and_over_targets() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = mount(&disk);
    let src = fs.mkdir(ROOT_INO, b"src", 0o755).unwrap();
    let dst = fs.mkdir(ROOT_INO, b"dst", 0o755).unwrap();
    let sub = fs.mkdir(src, b"sub", 0o755).unwrap();
    let f = fs.create(src, b"f", 0o644).unwrap();
    fs.write_at(f, 0, b"payload").unwrap();
    // Within a directory.
    fs.rename(src, b"f", src, b"g").unwrap();
    assert_eq!(fs.lookup(src, b"g").unwrap(), f);
    assert_eq!(fs.lookup(src, b"f"), Err(Ext2Error::NotFound));
    // A directory across directories: its .. and both parents' links follow.
    fs.rename(src, b"sub", dst, b"sub2").unwrap();
    assert_eq!(fs.lookup(sub, b"..").unwrap(), dst);
    assert_eq!(fs.stat(src).unwrap().nr_links, 2);
    assert_eq!(fs.stat(dst).unwrap().nr_links, 3);
    // Into its own subtree: refused.
    assert_eq!(fs.rename(ROOT_INO, b"dst", sub, b"x").map_err(|e| e.errno()), Err(22));
    // Over an existing file: the old target is freed.
    let victim = fs.create(dst, b"victim", 0o644).unwrap();
    let free_inodes = fs.statfs().nr_free_inodes;
    fs.rename(src, b"g", dst, b"victim").unwrap();
    assert_eq!(fs.lookup(dst, b"victim").unwrap(), f);
    assert_eq!(fs.statfs().nr_free_inodes, free_inodes + 1, "inode {victim:?} freed");
    // Over an empty directory, and not over a non-empty one or the wrong kind.
    let empty = fs.mkdir(src, b"empty", 0o755).unwrap();
    let full = fs.mkdir(src, b"full", 0o755).unwrap();
    fs.create(full, b"x", 0o644).unwrap();
    assert_eq!(fs.rename(dst, b"sub2", src, b"full").map_err(|e| e.errno()), Err(39));
    assert_eq!(fs.rename(dst, b"sub2", dst, b"victim").map_err(|e| e.errno()), Err(20));
    assert_eq!(fs.rename(dst, b"victim", src, b"empty").map_err(|e| e.errno()), Err(21));
    fs.rename(dst, b"sub2", src, b"empty").unwrap();
    assert_eq!(fs.lookup(src, b"empty").unwrap(), sub);
    assert_eq!(fs.lookup(sub, b"..").unwrap(), src);
    assert_eq!(fs.stat(src).unwrap().nr_links, 4, "., .., full/.., empty(sub)/..");
    assert_eq!(fs.stat(dst).unwrap().nr_links, 2);
    // Renaming a name onto itself or onto another link of the same inode: no-op.
    fs.link(dst, b"alias", f).unwrap();
    fs.rename(dst, b"alias", dst, b"victim").unwrap();
    assert_eq!(fs.stat(f).unwrap().nr_links, 2);
    let bytes = sync_and_check(&mut fs, &disk);
    assert_eq!(debugfs_cat(&bytes, "/dst/victim"), b"payload");
    let _ = empty;
}

#[test]
fn a_directory_of_many_entries_grows_and_reuses_freed_slots() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 8192, &[]));
    let mut fs = mount(&disk);
    let d = fs.mkdir(ROOT_INO, b"many", 0o755).unwrap();
    for i in 0..600 {
        fs.create(d, format!("file-number-{i}").as_bytes(), 0o644).unwrap();
    }
    let size_full = fs.stat(d).unwrap().size;
    assert!(size_full >= 10 * 1024, "600 entries need many blocks: {size_full}");
    for i in (0..600).step_by(2) {
        fs.unlink(d, format!("file-number-{i}").as_bytes()).unwrap();
    }
    for i in 0..300 {
        fs.create(d, format!("new-{i}").as_bytes(), 0o644).unwrap();
    }
    assert_eq!(fs.stat(d).unwrap().size, size_full, "freed slots reused: no new block");
    assert_eq!(fs.read_dir(d, 0).unwrap().len(), 2 + 600);
    sync_and_check(&mut fs, &disk);
}

static FAKE_TIME: AtomicU32 = AtomicU32::new(1_000_000);

fn fake_clock() -> u32 {
    FAKE_TIME.load(Ordering::Relaxed)
}

#[test]
fn timestamps_follow_the_mount_clock() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = Ext2::mount(&disk, fake_clock).unwrap();
    FAKE_TIME.store(1_700_000_000, Ordering::Relaxed);
    let f = fs.create(ROOT_INO, b"timed", 0o644).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!((st.atime, st.mtime, st.ctime), (1_700_000_000, 1_700_000_000, 1_700_000_000));
    assert_eq!(fs.stat(ROOT_INO).unwrap().mtime, 1_700_000_000, "the parent changed");
    FAKE_TIME.store(1_700_000_100, Ordering::Relaxed);
    fs.write_at(f, 0, b"x").unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!((st.atime, st.mtime, st.ctime), (1_700_000_000, 1_700_000_100, 1_700_000_100));
    FAKE_TIME.store(1_700_000_200, Ordering::Relaxed);
    fs.link(ROOT_INO, b"other", f).unwrap();
    let st = fs.stat(f).unwrap();
    assert_eq!((st.mtime, st.ctime), (1_700_000_100, 1_700_000_200), "a link changes ctime only");
    sync_and_check(&mut fs, &disk);
}

#[test]
fn set_attr_changes_permissions_owner_and_times() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    // Its own clock: tests run in parallel, FAKE_TIME belongs to the test above.
    fn attr_clock() -> u32 {
        1_800_000_000
    }
    let mut fs = Ext2::mount(&disk, attr_clock).unwrap();
    let f = fs.create(ROOT_INO, b"attrs", 0o644).unwrap();
    let attr = SetAttr { perm: Some(0o4750), uid: Some(70_000), gid: Some(100), atime: Some(5), mtime: Some(6) };
    fs.set_attr(f, attr).unwrap();
    fs.set_attr(f, SetAttr { gid: Some(101), ..SetAttr::default() }).unwrap();
    let bytes = sync_and_check(&mut fs, &disk);
    let copy = RamDisk::from_bytes("copy", bytes);
    let mut fs2 = mount(&copy);
    let st = fs2.stat(f).unwrap();
    assert_eq!(st.mode, 0o104750, "type kept, permissions (with setuid) changed");
    assert_eq!((st.uid, st.gid), (70_000, 101), "32-bit owner (low and high halves)");
    assert_eq!((st.atime, st.mtime, st.ctime), (5, 6, 1_800_000_000));
}

#[test]
fn an_open_unlinked_file_stays_readable_until_put() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = mount(&disk);
    let before = fs.statfs();
    let f = fs.create(ROOT_INO, b"held", 0o644).unwrap();
    fs.write_at(f, 0, &pattern(20_000, 5)).unwrap();
    fs.inode_get(f).unwrap();
    fs.unlink(ROOT_INO, b"held").unwrap();
    assert_eq!(fs.lookup(ROOT_INO, b"held"), Err(Ext2Error::NotFound));
    assert_eq!(read_all(&mut fs, f), pattern(20_000, 5), "still readable while held");
    assert_ne!(fs.statfs(), before);
    fs.inode_put(f).unwrap();
    assert_eq!(fs.statfs(), before, "freed by the last put");
    sync_and_check(&mut fs, &disk);
}

#[test]
fn symlink_targets_up_to_a_block_and_readlink() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = mount(&disk);
    let t59 = vec![b'a'; 59];
    let t60 = vec![b'b'; 60];
    let t1023 = vec![b'c'; 1023];
    let fast = fs.symlink(ROOT_INO, b"s59", &t59).unwrap();
    let slow = fs.symlink(ROOT_INO, b"s60", &t60).unwrap();
    fs.symlink(ROOT_INO, b"s1023", &t1023).unwrap();
    assert_eq!(fs.symlink(ROOT_INO, b"s1024", &[b'd'; 1024]).map_err(|e| e.errno()), Err(36));
    assert_eq!(fs.stat(fast).unwrap().nr_sectors, 0, "fast: no block");
    assert_eq!(fs.stat(slow).unwrap().nr_sectors, 2, "slow: one 1 KiB block");
    assert_eq!(fs.readlink(fast).unwrap(), t59);
    assert_eq!(fs.readlink(slow).unwrap(), t60);
    assert_eq!(fs.readlink(ROOT_INO).map_err(|e| e.errno()), Err(22));
    assert_eq!(fs.stat(fast).unwrap().file_type(), Some(FileType::Symlink));
    fs.unlink(ROOT_INO, b"s59").unwrap();
    fs.unlink(ROOT_INO, b"s60").unwrap();
    sync_and_check(&mut fs, &disk);
}

#[test]
fn disk_full_gives_enospc_and_leaves_a_consistent_file_system() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 1024, &["-N", "64"]));
    let mut fs = mount(&disk);
    let before = fs.statfs();
    let root_size_before = fs.stat(ROOT_INO).unwrap().size;
    let f = fs.create(ROOT_INO, b"filler", 0o644).unwrap();
    let chunk = pattern(7 * 1024 + 100, 9);
    let mut total = 0u64;
    loop {
        match fs.write_at(f, total, &chunk) {
            Ok(n) => {
                total += n as u64;
                if n < chunk.len() {
                    break; // short write: the disk filled up part way
                }
            }
            Err(e) => panic!("first error must come as a short write, got {e:?}"),
        }
    }
    assert_eq!(fs.statfs().nr_free_blocks, 0);
    assert_eq!(fs.write_at(f, total, b"more").map_err(|e| e.errno()), Err(28), "ENOSPC");
    assert_eq!(fs.stat(f).unwrap().size, total, "size covers exactly what was written");
    assert_eq!(fs.mkdir(ROOT_INO, b"d", 0o755), Err(Ext2Error::NoSpace));
    // Files with no data still fit until the inodes run out.
    let mut nr_files = 0;
    let err = loop {
        match fs.create(ROOT_INO, format!("e{nr_files}").as_bytes(), 0o644) {
            Ok(_) => nr_files += 1,
            Err(e) => break e,
        }
    };
    assert_eq!(err, Ext2Error::NoSpace);
    let bytes = sync_and_check(&mut fs, &disk);
    assert!(debugfs_cat(&bytes, "/filler").len() as u64 == total);
    for i in 0..nr_files {
        fs.unlink(ROOT_INO, format!("e{i}").as_bytes()).unwrap();
    }
    fs.unlink(ROOT_INO, b"filler").unwrap();
    let after = fs.statfs();
    assert_eq!(after.nr_free_inodes, before.nr_free_inodes);
    // The root directory keeps the blocks it grew by for the many names.
    let root_growth = (fs.stat(ROOT_INO).unwrap().size - root_size_before) / 1024;
    assert_eq!(u64::from(after.nr_free_blocks) + root_growth, u64::from(before.nr_free_blocks));
    sync_and_check(&mut fs, &disk);
}

#[test]
fn an_io_error_is_reported_not_a_panic() {
    let image = fresh_image(1024, 4096, &[]);
    let disk = RamDisk::from_bytes("root", image.clone());
    let mut fs = mount(&disk);
    let old = fs.lookup(ROOT_INO, b"old.txt").unwrap();
    let data_block = fs.block_of(old, 1).unwrap().unwrap();
    disk.fail_sector(u64::from(data_block) * 2);
    let mut buf = vec![0u8; 5000];
    assert_eq!(fs.read_at(old, 0, &mut buf).map_err(|e| e.errno()), Err(5), "EIO");
    assert!(matches!(fs.read_at(old, 0, &mut buf), Err(Ext2Error::Io(blockdev::BlockError::Io))));
    assert_eq!(fs.read_at(old, 0, &mut buf[..1024]).unwrap(), 1024, "other blocks still read");
    // The inode table of a fresh mount fails: stat and lookup report EIO.
    let disk2 = RamDisk::from_bytes("root", image);
    let table = {
        let fs = mount(&disk2);
        fs.groups()[0].inode_table
    };
    disk2.fail_sector(u64::from(table) * 2);
    let mut fs2 = mount(&disk2);
    assert_eq!(fs2.stat(ROOT_INO).map_err(|e| e.errno()), Err(5));
    assert_eq!(fs2.lookup_path(ROOT_INO, b"/old.txt", true).map_err(|e| e.errno()), Err(5));
    // A write whose sync hits a bad sector: sync reports it and keeps the data dirty.
    let f = fs.create(ROOT_INO, b"new", 0o644).unwrap();
    fs.write_at(f, 0, &pattern(3000, 4)).unwrap();
    let new_block = fs.block_of(f, 0).unwrap().unwrap();
    disk.fail_sector(u64::from(new_block) * 2);
    assert!(matches!(fs.sync(), Err(Ext2Error::Io(_))));
    assert!(fs.nr_dirty_blocks() > 0, "unwritten blocks stay dirty");
    assert_eq!(read_all(&mut fs, f), pattern(3000, 4), "and readable from the cache");
    let _: InodeNo = f;
}

#[test]
fn blocks_are_allocated_in_the_inodes_group() {
    // 4 KiB blocks, 1024 per group: 4 groups; a new directory goes to the group
    // with the most free inodes, and its file's blocks follow the inode.
    let disk = RamDisk::from_bytes("root", fresh_image(4096, 4096, &["-g", "1024"]));
    let mut fs = mount(&disk);
    let ipg = fs.superblock().inodes_per_group;
    let bpg = fs.superblock().blocks_per_group;
    let d = fs.mkdir(ROOT_INO, b"spread", 0o755).unwrap();
    let group = (d.0 - 1) / ipg;
    assert_ne!(group, 0, "group 0 holds the root's files: a new directory goes elsewhere");
    let f = fs.create(d, b"f", 0o644).unwrap();
    assert_eq!((f.0 - 1) / ipg, group, "a file's inode goes in its directory's group");
    fs.write_at(f, 0, &pattern(20 * 4096, 1)).unwrap();
    let mut prev = None;
    for n in 0..20 {
        let b = fs.block_of(f, n).unwrap().unwrap();
        assert_eq!(b / bpg, group, "file block {n} at disk block {b}: in the inode's group");
        if let Some(p) = prev {
            assert!(b > p, "blocks in increasing order");
        }
        prev = Some(b);
    }
    sync_and_check(&mut fs, &disk);
}

#[test]
fn nothing_reaches_the_disk_before_sync() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = mount(&disk);
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    fs.write_at(f, 0, &pattern(30 * 1024, 2)).unwrap();
    fs.mkdir(ROOT_INO, b"d", 0o755).unwrap();
    assert_eq!(disk.request_counts().1, 0, "writes wait in the cache");
    let nr_dirty = fs.nr_dirty_blocks();
    assert!(nr_dirty > 30);
    fs.sync().unwrap();
    let (_, writes, flushes) = disk.request_counts();
    assert_eq!(flushes, 1);
    assert!(writes > 1 && writes < nr_dirty as u64 / 3, "{nr_dirty} dirty blocks in {writes} requests: adjacent ones batched");
    assert_eq!(fs.nr_dirty_blocks(), 0);
    let copy = RamDisk::from_bytes("copy", disk.to_bytes());
    let mut fs2 = mount(&copy);
    let f2 = fs2.lookup(ROOT_INO, b"f").unwrap();
    assert_eq!(read_all(&mut fs2, f2), pattern(30 * 1024, 2), "all of it reached the disk");
}

#[test]
fn write_out_writes_every_change_without_a_flush_and_sync_flushes_once() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 4096, &[]));
    let mut fs = mount(&disk);
    let f = fs.create(ROOT_INO, b"f", 0o644).unwrap();
    fs.write_at(f, 0, &pattern(20 * 1024, 5)).unwrap();
    fs.write_out().unwrap();
    let (_, writes, flushes) = disk.request_counts();
    assert!(writes > 0, "write_out wrote nothing");
    assert_eq!(flushes, 0, "write_out flushed the device's cache");
    assert_eq!(fs.nr_dirty_blocks(), 0);
    let copy = RamDisk::from_bytes("copy", disk.to_bytes());
    let mut fs2 = mount(&copy);
    let f2 = fs2.lookup(ROOT_INO, b"f").unwrap();
    assert_eq!(read_all(&mut fs2, f2), pattern(20 * 1024, 5), "all of it reached the disk");
    fs.sync().unwrap();
    assert_eq!(disk.request_counts(), (disk.request_counts().0, writes, 1), "sync: nothing left to write, one flush");
    assert_fsck_clean(&disk.to_bytes());
}

#[test]
fn a_long_write_goes_to_the_disk_in_few_large_requests() {
    let disk = RamDisk::from_bytes("root", fresh_image(1024, 8192, &[]));
    let mut fs = mount(&disk);
    let f = fs.create(ROOT_INO, b"long", 0o644).unwrap();
    let data = pattern(4 << 20, 3); // 4096 blocks: 16 times the cache
    for (i, chunk) in data.chunks(64 * 1024).enumerate() {
        fs.write_at(f, (i * 64 * 1024) as u64, chunk).unwrap();
    }
    fs.sync().unwrap();
    let (_, writes, _) = disk.request_counts();
    assert!(writes < 4096 / 16, "4096 data blocks written in {writes} requests");
    let (reads_before, _, _) = disk.request_counts();
    let copy = RamDisk::from_bytes("copy", disk.to_bytes());
    let mut fs2 = mount(&copy);
    let f2 = fs2.lookup(ROOT_INO, b"long").unwrap();
    let mut back = vec![0u8; data.len()];
    assert_eq!(fs2.read_at(f2, 0, &mut back).unwrap(), data.len());
    assert!(back == data);
    let reads = copy.request_counts().0;
    assert!(reads < 4096 / 16, "4096 blocks read back in {reads} requests");
    let _ = reads_before;
    assert_fsck_clean(&disk.to_bytes());
}

#[test]
fn an_htree_indexed_directory_reads_and_loses_its_index_flag_when_changed() {
    let staging = TempDir::new("staging");
    std::fs::create_dir(staging.join("many")).unwrap();
    for i in 0..300 {
        std::fs::write(staging.join(&format!("many/file-{i}")), format!("{i}\n")).unwrap();
    }
    let image = make_image(&staging.0, 1024, 4096, &[]);
    // e2fsck -D builds hashed indexes for the directories.
    let tmp = TempDir::new("htree");
    let img = tmp.join("disk.img");
    std::fs::write(&img, &image).unwrap();
    let out = std::process::Command::new(tool("e2fsck")).arg("-fyD").arg(&img).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c <= 1), "e2fsck -fyD: {}", String::from_utf8_lossy(&out.stdout));
    let disk = RamDisk::from_bytes("root", std::fs::read(&img).unwrap());
    let mut fs = mount(&disk);
    let many = fs.lookup(ROOT_INO, b"many").unwrap();
    const INDEX_FL: u32 = 0x1000;
    assert_ne!(fs.read_inode(many).unwrap().flags & INDEX_FL, 0, "e2fsck -D indexed the directory");
    assert_eq!(fs.read_dir(many, 0).unwrap().len(), 302, "index blocks read as empty entries");
    let f = fs.lookup(many, b"file-123").unwrap();
    assert_eq!(read_all(&mut fs, f), b"123\n");
    fs.create(many, b"added", 0o644).unwrap();
    fs.unlink(many, b"file-7").unwrap();
    assert_eq!(fs.read_inode(many).unwrap().flags & INDEX_FL, 0, "the index is stale: flag cleared");
    let bytes = sync_and_check(&mut fs, &disk);
    assert_eq!(debugfs_cat(&bytes, "/many/file-299"), b"299\n");
}

#[test]
fn a_file_past_2_gib_uses_i_size_high_and_sets_large_file() {
    // mke2fs always sets large_file now; debugfs clears it again.
    let tmp = TempDir::new("nolarge");
    let img = tmp.join("disk.img");
    std::fs::write(&img, fresh_image(4096, 4096, &[])).unwrap();
    debugfs_write(&img, "feature -large_file");
    let disk = RamDisk::from_bytes("root", std::fs::read(&img).unwrap());
    let mut fs = mount(&disk);
    assert_eq!(fs.superblock().feature_ro_compat & 0x2, 0, "made without large_file");
    let f = fs.create(ROOT_INO, b"huge-sparse", 0o644).unwrap();
    let at = 3u64 << 30; // 3 GiB: i_size needs its high 32 bits
    fs.write_at(f, at, b"tail").unwrap();
    assert_eq!(fs.stat(f).unwrap().size, at + 4);
    assert_ne!(fs.superblock().feature_ro_compat & 0x2, 0, "large_file set");
    let mut buf = [0u8; 4];
    fs.read_at(f, at, &mut buf).unwrap();
    assert_eq!(&buf, b"tail");
    let bytes = sync_and_check(&mut fs, &disk);
    let copy = RamDisk::from_bytes("copy", bytes);
    let mut fs2 = mount(&copy);
    let f2 = fs2.lookup(ROOT_INO, b"huge-sparse").unwrap();
    assert_eq!(fs2.stat(f2).unwrap().size, at + 4, "i_size_high read back");
    assert_eq!(fs2.stat(f2).unwrap().nr_sectors, 3 * 8, "data, double and indirect block");
    fs2.truncate(f2, 10).unwrap();
    assert_eq!(fs2.stat(f2).unwrap().nr_sectors, 0, "all freed: block 0 was a hole");
    sync_and_check(&mut fs2, &copy);
}

/// Reads pages `first..first + n` of `ino` with `read_file_pages`.
fn file_pages(fs: &mut Ext2, ino: InodeNo, first: u64, n: usize) -> Vec<u8> {
    let mut pages = vec![[0xeeu8; blockdev::PAGE_SIZE]; n];
    let mut refs: Vec<&mut blockdev::Page> = pages.iter_mut().collect();
    fs.read_file_pages(ino, first, &mut refs).unwrap();
    pages.concat()
}

#[test]
fn file_pages_read_straight_into_pages_match_read_at_with_holes_cached_blocks_and_the_tail() {
    let disk = RamDisk::from_bytes("root", fresh_image(4096, 2048, &[]));
    let mut fs = mount(&disk);
    let ino = fs.create(ROOT_INO, b"paged", 0o644).unwrap();
    // 40 blocks of data, a hole of 3 blocks, then 2.5 blocks: runs longer than one
    // request, a hole, a partial last block.
    let data = pattern(40 * 4096, 3);
    assert_eq!(fs.write_at(ino, 0, &data).unwrap(), data.len());
    let tail = pattern(2 * 4096 + 2048, 4);
    assert_eq!(fs.write_at(ino, 43 * 4096, &tail).unwrap(), tail.len());
    let size = 43 * 4096 + tail.len();
    let mut expected = vec![0u8; size];
    assert_eq!(fs.read_at(ino, 0, &mut expected).unwrap(), size);
    let whole_pages = |bytes: &[u8], n: usize| {
        let mut padded = bytes.to_vec();
        padded.resize(n * 4096, 0);
        padded
    };
    // Before sync: the written blocks sit dirty in the crate's cache, not on the disk.
    assert!(fs.nr_dirty_blocks() > 0);
    assert_eq!(file_pages(&mut fs, ino, 0, 48), whole_pages(&expected, 48), "unsynced: from the cache");
    fs.sync().unwrap();
    assert_eq!(file_pages(&mut fs, ino, 0, 48), whole_pages(&expected, 48), "synced: from the disk");
    assert_eq!(file_pages(&mut fs, ino, 38, 4), whole_pages(&expected[38 * 4096..42 * 4096], 4), "data, then the hole");
    assert_eq!(file_pages(&mut fs, ino, 45, 1), whole_pages(&expected[45 * 4096..], 1), "the tail past the end is zero");
    assert_eq!(file_pages(&mut fs, ino, 60, 2), vec![0u8; 2 * 4096], "wholly past the end");
    // A 1 KiB-block file system cannot read block-per-page.
    let small = RamDisk::from_bytes("small", fresh_image(1024, 4096, &[]));
    let mut fs1 = mount(&small);
    let old = fs1.lookup(ROOT_INO, b"old.txt").unwrap();
    let mut page = [0u8; blockdev::PAGE_SIZE];
    assert_eq!(fs1.read_file_pages(old, 0, &mut [&mut page]), Err(Ext2Error::InvalidArgument));
}

/// Writes `data` (padded with `pad` bytes to whole pages) as pages `first..` of
/// `ino` with `write_file_pages`, the file ending at byte `end`.
fn write_pages(fs: &mut Ext2, ino: InodeNo, first: u64, data: &[u8], pad: u8, end: u64) -> Result<usize, Ext2Error> {
    let mut pages = vec![[pad; blockdev::PAGE_SIZE]; data.len().div_ceil(blockdev::PAGE_SIZE)];
    for (page, chunk) in pages.iter_mut().zip(data.chunks(blockdev::PAGE_SIZE)) {
        page[..chunk.len()].copy_from_slice(chunk);
    }
    let refs: Vec<&blockdev::Page> = pages.iter().collect();
    fs.write_file_pages(ino, first, &refs, end)
}

#[test]
fn file_pages_written_straight_from_pages_in_runs_allocate_blocks_zero_the_tail_and_pass_fsck() {
    let disk = RamDisk::from_bytes("root", fresh_image(4096, 2048, &[]));
    disk.set_max_pages_per_request(16);
    let mut fs = mount(&disk);
    let ino = fs.create(ROOT_INO, b"paged", 0o644).unwrap();
    // 40 pages (through the indirect block), a hole of 3, then 2.5 pages whose
    // last page has garbage past the end (a shared mapping may write there).
    let data = pattern(40 * 4096, 5);
    let tail = pattern(2 * 4096 + 2048, 6);
    let size = 43 * 4096 + tail.len() as u64;
    let (_, writes_before, _) = disk.request_counts();
    assert_eq!(write_pages(&mut fs, ino, 0, &data, 0, size).unwrap(), 40);
    let (_, writes_after, _) = disk.request_counts();
    // The 40 blocks are allocated in a row (12 direct, the indirect block, 28): two
    // runs, the second split at 16 pages a request: 12 + 16 + 12 = 3 requests.
    assert_eq!(writes_after - writes_before, 3, "one request per run of adjacent blocks");
    assert!(fs.nr_dirty_blocks() > 0, "metadata waits for sync");
    let mut padded_tail = tail.clone();
    padded_tail.resize(3 * 4096, 0xaa);
    assert_eq!(write_pages(&mut fs, ino, 43, &padded_tail, 0xaa, size).unwrap(), 3);
    assert_eq!(fs.stat(ino).unwrap().size, size);
    assert_eq!(fs.stat(ino).unwrap().nr_sectors, (40 + 3 + 1) * 8, "43 data blocks and the indirect one");
    let bytes = sync_and_check(&mut fs, &disk);
    let mut expected = data.clone();
    expected.resize(43 * 4096, 0);
    expected.extend_from_slice(&tail);
    assert_eq!(debugfs_cat(&bytes, "/paged"), expected, "debugfs reads what the pages held");
    // The tail past the end went out as zeros: growing the file shows zeros.
    fs.truncate(ino, size + 100).unwrap();
    let mut grown = vec![0xffu8; 100];
    assert_eq!(fs.read_at(ino, size, &mut grown).unwrap(), 100);
    assert_eq!(grown, vec![0u8; 100], "no garbage past the old end");
    // Pages wholly past `end` are not written.
    assert_eq!(write_pages(&mut fs, ino, 100, &pattern(4096, 7), 0, size).unwrap(), 0);
    sync_and_check(&mut fs, &disk);
    // A 1 KiB-block file system cannot write block-per-page.
    let small = RamDisk::from_bytes("small", fresh_image(1024, 4096, &[]));
    let mut fs1 = mount(&small);
    let old = fs1.lookup(ROOT_INO, b"old.txt").unwrap();
    assert_eq!(write_pages(&mut fs1, old, 0, &pattern(4096, 8), 0, 4096), Err(Ext2Error::InvalidArgument));
}

#[test]
fn file_pages_written_replace_a_cached_copy_of_their_block_so_neither_sync_nor_reads_see_stale_data() {
    let disk = RamDisk::from_bytes("root", fresh_image(4096, 2048, &[]));
    let mut fs = mount(&disk);
    let ino = fs.create(ROOT_INO, b"mixed", 0o644).unwrap();
    // An old copy of block 0 sits dirty in the crate's cache (write_at, then a
    // truncate that zeroes the tail of block 1 through the cache too).
    fs.write_at(ino, 0, &pattern(2 * 4096, 9)).unwrap();
    fs.truncate(ino, 4096 + 10).unwrap();
    let new = pattern(4096 + 10, 10);
    assert_eq!(write_pages(&mut fs, ino, 0, &new, 0x55, 4096 + 10).unwrap(), 2);
    assert_eq!(read_all(&mut fs, ino), new, "read_at: the pages' bytes, not the cached copy");
    let mut page = [0u8; blockdev::PAGE_SIZE];
    fs.read_file_pages(ino, 0, &mut [&mut page]).unwrap();
    assert_eq!(&page[..], &new[..4096], "read_file_pages: the pages' bytes");
    let bytes = sync_and_check(&mut fs, &disk);
    assert_eq!(debugfs_cat(&bytes, "/mixed"), new, "sync wrote no stale cached copy over the pages");
}

#[test]
fn file_pages_written_on_a_nearly_full_disk_stop_at_the_first_block_that_does_not_fit() {
    let disk = RamDisk::from_bytes("root", fresh_image(4096, 256, &[]));
    let mut fs = mount(&disk);
    let ino = fs.create(ROOT_INO, b"filler", 0o644).unwrap();
    let nr_free = fs.statfs().nr_free_blocks as usize;
    // More pages than there are free blocks (one of them goes to the indirect block).
    let data = pattern((nr_free + 8) * 4096, 11);
    let n = write_pages(&mut fs, ino, 0, &data, 0, data.len() as u64).unwrap();
    assert!(n > 12 && n < nr_free, "part fit: {n} of {} pages ({nr_free} blocks free)", nr_free + 8);
    assert_eq!(fs.statfs().nr_free_blocks, 0);
    assert_eq!(fs.stat(ino).unwrap().size, n as u64 * 4096, "the size covers exactly what was written");
    let bytes = sync_and_check(&mut fs, &disk);
    assert_eq!(debugfs_cat(&bytes, "/filler"), data[..n * 4096].to_vec());
    // Nothing fits any more: ENOSPC, the file unchanged.
    assert_eq!(write_pages(&mut fs, ino, n as u64, &data[..4096], 0, (n as u64 + 1) * 4096), Err(Ext2Error::NoSpace));
    assert_eq!(fs.stat(ino).unwrap().size, n as u64 * 4096);
    sync_and_check(&mut fs, &disk);
}
