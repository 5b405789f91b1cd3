//! Mount refuses damaged and foreign disks with a clear error and writes nothing.

mod common;

use std::process::Command;

use blockdev::{BlockDevice, RamDisk};
use common::*;
use ext2::{Ext2, Ext2Error, Refusal};

/// Mounts `image` and returns the refusal; asserts the disk saw no write and its
/// bytes are unchanged.
fn refused(image: Vec<u8>) -> Refusal {
    let disk = RamDisk::from_bytes("root", image.clone());
    let err = match Ext2::mount(&disk, host_clock) {
        Ok(_) => panic!("mount accepted a disk it should refuse"),
        Err(e) => e,
    };
    assert_eq!(disk.request_counts().1, 0, "a refused disk is never written");
    assert!(disk.to_bytes() == image, "a refused disk's bytes are unchanged");
    match err {
        Ext2Error::Refused(r) => {
            assert!(!err.to_string().is_empty());
            r
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn small_ext2() -> Vec<u8> {
    let staging = TempDir::new("staging");
    std::fs::write(staging.join("f"), b"x").unwrap();
    make_image(&staging.0, 1024, 2048, &[])
}

#[test]
fn bad_magic_is_refused_with_einval() {
    let mut image = small_ext2();
    image[1024 + 56] = 0x54;
    assert_eq!(refused(image.clone()), Refusal::BadMagic(0xEF54));
    let disk = RamDisk::from_bytes("root", image);
    assert_eq!(Ext2::mount(&disk, host_clock).err().map(Ext2Error::errno), Some(22));
    assert_eq!(refused(vec![0u8; 64 * 1024]), Refusal::BadMagic(0), "a blank disk");
}

#[test]
fn ext4_with_extents_and_64bit_is_refused() {
    let staging = TempDir::new("staging");
    let tmp = TempDir::new("ext4");
    let img = tmp.join("disk.img");
    let out = Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext4", "-O", "^has_journal", "-d"])
        .arg(&staging.0)
        .arg(&img)
        .arg("8M")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    match refused(std::fs::read(&img).unwrap()) {
        Refusal::IncompatFeatures(f) => assert!(f & 0x40 != 0 && f & 0x80 != 0, "extents and 64bit named: {f:#x}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn journal_needing_recovery_is_refused() {
    let tmp = TempDir::new("ext3");
    let img = tmp.join("disk.img");
    let out = Command::new(tool("mke2fs")).args(["-q", "-F", "-t", "ext3"]).arg(&img).arg("8M").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A clean ext3 (journal empty) is an ext2 with an extra inode: it mounts.
    let clean = std::fs::read(&img).unwrap();
    let disk = RamDisk::from_bytes("root", clean);
    assert!(Ext2::mount(&disk, host_clock).is_ok(), "clean ext3 mounts as ext2");
    debugfs_write(&img, "feature needs_recovery");
    assert_eq!(refused(std::fs::read(&img).unwrap()), Refusal::NeedsRecovery);
}

#[test]
fn unsupported_ro_compat_feature_is_refused_with_erofs() {
    let staging = TempDir::new("staging");
    let image = make_image(&staging.0, 1024, 2048, &["-O", "huge_file"]);
    assert_eq!(refused(image.clone()), Refusal::RoCompatFeatures(0x8));
    let disk = RamDisk::from_bytes("root", image);
    assert_eq!(Ext2::mount(&disk, host_clock).err().map(Ext2Error::errno), Some(30));
}

#[test]
fn damaged_geometry_and_short_disks_are_refused() {
    let good = small_ext2();
    let mut bad_count = good.clone();
    bad_count[1024] ^= 0x40; // s_inodes_count no longer groups * inodes_per_group
    assert_eq!(refused(bad_count), Refusal::BadGeometry);
    let mut revision2 = good.clone();
    revision2[1024 + 76] = 2;
    assert_eq!(refused(revision2), Refusal::UnsupportedRevision(2));
    let mut big_blocks = good.clone();
    big_blocks[1024 + 24] = 6;
    assert_eq!(refused(big_blocks), Refusal::UnsupportedBlockSize(64 * 1024));
    let short = good[..1024 * 1024].to_vec();
    assert!(matches!(refused(short), Refusal::DiskTooSmall { .. }));
    let tiny = vec![0u8; 1024];
    assert_eq!(refused(tiny), Refusal::DiskTooSmall { fs_bytes: 2048, disk_bytes: 1024 }, "no room for a superblock");
    // A group descriptor whose inode table points outside its group.
    let mut bad_desc = good.clone();
    let desc = 2 * 1024; // 1 KiB blocks: the table is block 2
    bad_desc[desc + 8..desc + 12].copy_from_slice(&5000u32.to_le_bytes());
    assert_eq!(refused(bad_desc), Refusal::BadGroupDescriptor(0));
}

#[test]
fn a_good_disk_is_not_written_by_mount_or_reads() {
    let image = small_ext2();
    let disk = RamDisk::from_bytes("root", image.clone());
    let mut fs = Ext2::mount(&disk, host_clock).unwrap();
    let f = fs.lookup(fs.root(), b"f").unwrap();
    let mut buf = [0u8; 1];
    fs.read_at(f, 0, &mut buf).unwrap();
    fs.sync().unwrap();
    assert_eq!(disk.request_counts().1, 0, "nothing changed, nothing written");
    assert_eq!(disk.sector_count() * 512, image.len() as u64);
}
