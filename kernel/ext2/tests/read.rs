//! Reading images made by `mke2fs -d`: every file, directory and symlink of the
//! staging tree reads back the same, through every level of the block map.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;

use blockdev::RamDisk;
use common::*;
use ext2::{Ext2Error, FileType, ROOT_INO};

/// Fills `dir` with the tree the read tests compare against, for `block_size`.
fn build_staging(dir: &Path, block_size: usize) {
    let ptrs = block_size / 4;
    let sizes = [
        ("empty", 0),
        ("one", 1),
        ("almost-a-block", block_size - 1),
        ("a-block", block_size),
        ("direct-full", 12 * block_size),
        ("first-indirect", 12 * block_size + 1),
        ("double-indirect", (12 + ptrs) * block_size + 7),
    ];
    for (i, (name, len)) in sizes.iter().enumerate() {
        std::fs::write(dir.join(name), pattern(*len, i as u32)).unwrap();
    }
    // A sparse file: a hole, then data far out. With 1 KiB blocks the data sits
    // under the triple indirect block; with 4 KiB blocks under the double one.
    let far = if block_size == 1024 { (12 + ptrs + ptrs * ptrs) * block_size + 1000 } else { (12 + ptrs + 5) * block_size + 3 };
    let f = std::fs::File::create(dir.join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(&pattern(5000, 99), far as u64).unwrap();
    f.write_all_at(b"start", 0).unwrap();
    std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
    std::fs::write(dir.join("a/b/c/deep.txt"), b"deep down\n").unwrap();
    std::fs::write(dir.join("a/top.txt"), pattern(3000, 7)).unwrap();
    std::fs::create_dir(dir.join("many")).unwrap();
    for i in 0..300 {
        let name = format!("entry-{i}-{}", "x".repeat(i % 40));
        std::fs::write(dir.join("many").join(name), format!("file {i}\n")).unwrap();
    }
    symlink("a/b/c/deep.txt", dir.join("fast-link")).unwrap();
    symlink("a/b/./../../a/b/c/deep.txt", dir.join("relative-link")).unwrap();
    let long_target = format!("a/{}", "../a/".repeat(20)) + "top.txt";
    assert!(long_target.len() > 60, "a slow symlink needs a target of 60 bytes or more");
    symlink(&long_target, dir.join("slow-link")).unwrap();
    symlink("nowhere", dir.join("dangling")).unwrap();
}

fn read_back_staging_tree(block_size: usize, nr_blocks: u32) {
    let staging = TempDir::new("staging");
    build_staging(&staging.0, block_size);
    let image = make_image(&staging.0, block_size as u32, nr_blocks, &[]);
    let disk = RamDisk::from_bytes("root", image.clone());
    let mut fs = mount(&disk);
    assert_eq!(fs.block_size(), block_size);
    assert_tree_equal(&mut fs, ROOT_INO, &staging.0);
    // Reading touched nothing on the disk.
    assert_eq!(disk.to_bytes(), image);
}

#[test]
fn reads_every_file_of_a_1k_image_through_triple_indirect_blocks() {
    read_back_staging_tree(1024, 16 * 1024);
}

#[test]
fn reads_every_file_of_a_4k_image() {
    read_back_staging_tree(4096, 8 * 1024);
}

#[test]
fn path_lookup_follows_dot_dotdot_and_symlinks() {
    let staging = TempDir::new("staging");
    build_staging(&staging.0, 1024);
    let disk = RamDisk::from_bytes("root", make_image(&staging.0, 1024, 16 * 1024, &[]));
    let mut fs = mount(&disk);
    let deep = fs.lookup_path(ROOT_INO, b"/a/b/c/deep.txt", true).unwrap();
    assert_eq!(fs.lookup_path(ROOT_INO, b"a/./b/../b/c/../c/deep.txt", true).unwrap(), deep);
    assert_eq!(fs.lookup_path(ROOT_INO, b"/../../a/b/c/deep.txt", true).unwrap(), deep, "/.. is /");
    let c = fs.lookup_path(ROOT_INO, b"a/b/c", true).unwrap();
    assert_eq!(fs.lookup_path(c, b"deep.txt", true).unwrap(), deep, "relative to a cwd");
    assert_eq!(fs.lookup_path(c, b"../../..", true).unwrap(), ROOT_INO);
    // Symlinks: followed in the middle and, when asked, at the end.
    assert_eq!(fs.lookup_path(ROOT_INO, b"fast-link", true).unwrap(), deep);
    assert_eq!(fs.lookup_path(ROOT_INO, b"relative-link", true).unwrap(), deep);
    let link = fs.lookup_path(ROOT_INO, b"fast-link", false).unwrap();
    assert_eq!(fs.stat(link).unwrap().file_type(), Some(FileType::Symlink));
    let top = fs.lookup_path(ROOT_INO, b"a/top.txt", true).unwrap();
    assert_eq!(fs.lookup_path(ROOT_INO, b"slow-link", true).unwrap(), top);
    // Errors, with their errnos.
    assert_eq!(fs.lookup_path(ROOT_INO, b"dangling", true), Err(Ext2Error::NotFound));
    assert_eq!(fs.lookup_path(ROOT_INO, b"a/nope", true), Err(Ext2Error::NotFound));
    assert_eq!(fs.lookup_path(ROOT_INO, b"a/top.txt/x", true), Err(Ext2Error::NotDir));
    assert_eq!(fs.lookup_path(ROOT_INO, b"a/top.txt/", true), Err(Ext2Error::NotDir));
    let long = vec![b'n'; 256];
    assert_eq!(fs.lookup(ROOT_INO, &long).map_err(|e| e.errno()), Err(36), "ENAMETOOLONG");
    assert_eq!(fs.read_at(c, 0, &mut [0; 4]).map_err(|e| e.errno()), Err(21), "EISDIR");
}

#[test]
fn symlink_loops_end_in_eloop() {
    let staging = TempDir::new("staging");
    symlink("loop-b", staging.join("loop-a")).unwrap();
    symlink("loop-a", staging.join("loop-b")).unwrap();
    let disk = RamDisk::from_bytes("root", make_image(&staging.0, 1024, 2048, &[]));
    let mut fs = mount(&disk);
    assert_eq!(fs.lookup_path(ROOT_INO, b"loop-a", true).map_err(|e| e.errno()), Err(40));
    assert!(fs.lookup_path(ROOT_INO, b"loop-a", false).is_ok(), "not followed at the end: found");
}

#[test]
fn read_dir_reports_types_and_resumes_at_an_offset() {
    let staging = TempDir::new("staging");
    build_staging(&staging.0, 1024);
    let disk = RamDisk::from_bytes("root", make_image(&staging.0, 1024, 16 * 1024, &[]));
    let mut fs = mount(&disk);
    let many = fs.lookup(ROOT_INO, b"many").unwrap();
    let all = fs.read_dir(many, 0).unwrap();
    assert_eq!(all.len(), 302, ". and .. and 300 files");
    assert_eq!((all[0].name.as_slice(), all[0].file_type), (&b"."[..], FileType::Directory));
    assert_eq!(all[1].name, b"..");
    assert_eq!(all[1].ino, ROOT_INO);
    assert!(all[2..].iter().all(|e| e.file_type == FileType::Regular));
    assert!(fs.stat(many).unwrap().size > 4 * 1024, "the directory spans several blocks");
    // getdents-style: continue from the d_off of the 150th entry.
    let rest = fs.read_dir(many, all[149].next_offset).unwrap();
    assert_eq!(rest, all[150..].to_vec());
    let root = fs.read_dir(ROOT_INO, 0).unwrap();
    let ty = |n: &[u8]| root.iter().find(|e| e.name == n).unwrap().file_type;
    assert_eq!(ty(b"fast-link"), FileType::Symlink);
    assert_eq!(ty(b"a"), FileType::Directory);
    assert_eq!(ty(b"sparse"), FileType::Regular);
}

#[test]
fn sparse_holes_read_as_zeros_and_take_no_blocks() {
    let staging = TempDir::new("staging");
    build_staging(&staging.0, 1024);
    let disk = RamDisk::from_bytes("root", make_image(&staging.0, 1024, 16 * 1024, &[]));
    let mut fs = mount(&disk);
    let sparse = fs.lookup(ROOT_INO, b"sparse").unwrap();
    let st = fs.stat(sparse).unwrap();
    assert!(st.size > 64 * 1024 * 1024);
    assert!(st.nr_sectors < 32, "a few data blocks and the indirect blocks, not {} sectors", st.nr_sectors);
    assert_eq!(fs.block_of(sparse, 1).unwrap(), None, "block 1 is a hole");
    let mut buf = vec![0xAAu8; 4096];
    fs.read_at(sparse, 100_000, &mut buf).unwrap();
    assert!(buf.iter().all(|&b| b == 0));
    let mut tail = vec![0u8; 10];
    assert_eq!(fs.read_at(sparse, st.size - 4, &mut tail).unwrap(), 4, "short read at the end");
    assert_eq!(fs.read_at(sparse, st.size + 10, &mut tail).unwrap(), 0, "nothing past the end");
}
