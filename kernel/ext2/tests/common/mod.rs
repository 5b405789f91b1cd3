//! Shared helpers of the ext2 host tests: temporary directories, staging trees,
//! and the e2fsprogs tools (`mke2fs` makes images, `e2fsck -fn` judges them,
//! `debugfs` reads files back independently of this crate).
//!
//! A missing tool fails the test with a message saying what to install; nothing is
//! skipped silently.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use blockdev::RamDisk;
use ext2::{Ext2, FileType, InodeNo};

/// A directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// Creates a fresh, empty directory whose name contains `label`.
    pub fn new(label: &str) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ext2-test-{}-{label}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    /// Returns `self.0.join(rel)`.
    pub fn join(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Returns the path of e2fsprogs tool `name`, or fails the test saying what to install.
pub fn tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
    dirs.extend(["/sbin", "/usr/sbin", "/usr/local/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!("`{name}` not found: these tests need e2fsprogs (apt-get install e2fsprogs; .ci/run installs it)")
    })
}

/// The clock the tests mount with: the host's time.
pub fn host_clock() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as u32
}

/// Runs a command, failing the test with its output if it does not exit 0.
fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Makes an ext2 image of `nr_blocks` blocks of `block_size` bytes holding the tree
/// under `staging` (`mke2fs -q -t ext2 -b BS -d STAGING`), plus `extra` options.
pub fn make_image(staging: &Path, block_size: u32, nr_blocks: u32, extra: &[&str]) -> Vec<u8> {
    let tmp = TempDir::new("img");
    let img = tmp.join("disk.img");
    run(Command::new(tool("mke2fs"))
        .args(["-q", "-F", "-t", "ext2", "-b", &block_size.to_string()])
        .args(extra)
        .arg("-d")
        .arg(staging)
        .arg(&img)
        .arg(nr_blocks.to_string()));
    std::fs::read(&img).unwrap()
}

/// Writes `bytes` to a temporary image file and runs `e2fsck -fn` on it; returns
/// (exit status, output).
pub fn e2fsck(bytes: &[u8]) -> (i32, String) {
    let tmp = TempDir::new("fsck");
    let img = tmp.join("disk.img");
    std::fs::write(&img, bytes).unwrap();
    let out = Command::new(tool("e2fsck")).arg("-fn").arg(&img).output().expect("run e2fsck");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// Asserts that `e2fsck -fn` finds the image consistent (exit status 0).
pub fn assert_fsck_clean(bytes: &[u8]) {
    let (status, text) = e2fsck(bytes);
    assert_eq!(status, 0, "e2fsck -fn found problems:\n{text}");
}

/// Reads file `path` of the image with `debugfs -R "cat PATH"` (independent of this crate).
pub fn debugfs_cat(bytes: &[u8], path: &str) -> Vec<u8> {
    let tmp = TempDir::new("debugfs");
    let img = tmp.join("disk.img");
    std::fs::write(&img, bytes).unwrap();
    run(Command::new(tool("debugfs")).arg("-R").arg(format!("cat {path}")).arg(&img)).stdout
}

/// Runs a `debugfs -w` request on an image file (to damage or set features).
pub fn debugfs_write(img: &Path, request: &str) {
    run(Command::new(tool("debugfs")).arg("-w").arg("-R").arg(request).arg(img));
}

/// Deterministic contents for a file of `len` bytes, different per `seed`.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).wrapping_add(12345) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Reads all of regular file `ino`.
pub fn read_all(fs: &mut Ext2, ino: InodeNo) -> Vec<u8> {
    let size = fs.stat(ino).unwrap().size as usize;
    let mut buf = vec![0u8; size];
    assert_eq!(fs.read_at(ino, 0, &mut buf).unwrap(), size);
    buf
}

/// Mounts `disk` with the host clock, failing the test on an error.
pub fn mount(disk: &RamDisk) -> Ext2<'_> {
    Ext2::mount(disk, host_clock).unwrap_or_else(|e| panic!("mount: {e}"))
}

/// Checks that the ext2 tree under directory `dir` equals the host tree under
/// `host` (names, types, file contents, symlink targets), ignoring `lost+found`.
pub fn assert_tree_equal(fs: &mut Ext2, dir: InodeNo, host: &Path) {
    let mut ours: Vec<(Vec<u8>, InodeNo, FileType)> = fs
        .read_dir(dir, 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.name != b"." && e.name != b".." && e.name != b"lost+found")
        .map(|e| (e.name, e.ino, e.file_type))
        .collect();
    ours.sort();
    let mut theirs: Vec<String> =
        std::fs::read_dir(host).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    theirs.sort();
    let our_names: Vec<String> = ours.iter().map(|(n, _, _)| String::from_utf8(n.clone()).unwrap()).collect();
    assert_eq!(our_names, theirs, "entries of {}", host.display());
    for (name, ino, ft) in ours {
        let path = host.join(String::from_utf8(name).unwrap());
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let st = fs.stat(ino).unwrap();
        assert_eq!(st.file_type(), Some(ft), "type byte of {}", path.display());
        if meta.is_dir() {
            assert_eq!(ft, FileType::Directory, "{}", path.display());
            assert_tree_equal(fs, ino, &path);
        } else if meta.file_type().is_symlink() {
            assert_eq!(ft, FileType::Symlink, "{}", path.display());
            let target = std::fs::read_link(&path).unwrap();
            assert_eq!(fs.readlink(ino).unwrap(), target.into_os_string().into_encoded_bytes(), "{}", path.display());
        } else {
            assert_eq!(ft, FileType::Regular, "{}", path.display());
            assert_eq!(st.size, meta.len(), "size of {}", path.display());
            assert!(read_all(fs, ino) == std::fs::read(&path).unwrap(), "contents of {}", path.display());
        }
    }
}

/// Checks what `e2fsck -fn` lets pass silently (it fixes the superblock's lazy
/// totals without a word): the superblock's free block and inode counts equal the
/// sums of the group descriptors', and each group's counts equal the zero bits of
/// its bitmaps.
pub fn assert_counts_exact(bytes: &[u8]) {
    let le16 = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]) as u64;
    let le32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    let sb = 1024;
    let (nr_inodes, nr_blocks) = (le32(sb), le32(sb + 4));
    let (sb_free_blocks, sb_free_inodes) = (le32(sb + 12), le32(sb + 16));
    let first_data_block = le32(sb + 20);
    let block_size = 1024usize << le32(sb + 24);
    let (bpg, ipg) = (le32(sb + 32), le32(sb + 40));
    let nr_groups = (nr_blocks - first_data_block).div_ceil(bpg);
    assert_eq!(nr_groups * ipg, nr_inodes);
    let gdt = (first_data_block as usize + 1) * block_size;
    let (mut sum_blocks, mut sum_inodes) = (0, 0);
    for g in 0..nr_groups {
        let d = gdt + g as usize * 32;
        let (bb, ib) = (le32(d) as usize * block_size, le32(d + 4) as usize * block_size);
        let (free_b, free_i) = (le16(d + 12), le16(d + 14));
        let nr_bits = bpg.min(nr_blocks - first_data_block - g * bpg);
        let zeros = |base: usize, n: u64| (0..n).filter(|&i| bytes[base + (i / 8) as usize] & (1 << (i % 8)) == 0).count() as u64;
        assert_eq!(zeros(bb, nr_bits), free_b, "group {g}: free blocks in the bitmap vs the descriptor");
        assert_eq!(zeros(ib, ipg), free_i, "group {g}: free inodes in the bitmap vs the descriptor");
        sum_blocks += free_b;
        sum_inodes += free_i;
    }
    assert_eq!(sb_free_blocks, sum_blocks, "superblock free blocks vs the groups'");
    assert_eq!(sb_free_inodes, sum_inodes, "superblock free inodes vs the groups'");
}
