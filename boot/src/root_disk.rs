//! The root disk: an ext2 image made fresh for every run from a staging tree, and
//! checked after the run.
//!
//! [`build`] runs `mke2fs -t ext2 -d STAGING` (e2fsprogs) into `<kernel>.root.img`;
//! QEMU gets it as a second virtio-blk disk with serial `root` (the swap disk keeps
//! serial `swap`). [`check`] runs `e2fsck -fn` on the image once QEMU has exited: a
//! kernel that left its file system inconsistent fails the run, whatever it printed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The block size of the image: 4 KiB, a page, as the page cache will want.
const BLOCK_SIZE: &str = "4096";

/// Finds an e2fsprogs program: on `PATH`, or in `/usr/sbin` / `/sbin` (not on a
/// normal user's `PATH` on Debian).
fn e2fsprogs(name: &str) -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain(["/usr/sbin", "/sbin"].map(|d| Path::new(d).join(name)))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("{name} not found: install e2fsprogs (`sudo apt-get install -y e2fsprogs`)"))
}

/// Makes `<kernel>.root.img`, an ext2 file system of `size_bytes` holding a copy
/// of the tree `staging`; returns its path.
pub fn build(kernel: &Path, staging: &Path, size_bytes: u64) -> Result<PathBuf, String> {
    let image = kernel.with_extension("root.img");
    build_at(staging, &image, size_bytes)?;
    Ok(image)
}

/// Makes the ext2 image `image` of `size_bytes` from the tree `staging` (the Linux
/// peer's own root disk is made this way).
pub fn build_at(staging: &Path, image: &Path, size_bytes: u64) -> Result<(), String> {
    if !staging.is_dir() {
        return Err(format!("--root {}: not a directory", staging.display()));
    }
    let _ = std::fs::remove_file(image);
    let output = Command::new(e2fsprogs("mke2fs")?)
        .args(["-q", "-F", "-t", "ext2", "-b", BLOCK_SIZE, "-L", "root", "-d"])
        .arg(staging)
        .arg(image)
        .arg(format!("{}k", size_bytes / 1024))
        .output()
        .map_err(|e| format!("running mke2fs: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "mke2fs could not make the root disk from {}: {}",
            staging.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(())
}

/// Runs `e2fsck -fn` on `image`: Ok if the file system is clean, else its report.
pub fn check(image: &Path) -> Result<(), String> {
    let output = Command::new(e2fsprogs("e2fsck")?)
        .arg("-fn")
        .arg(image)
        .output()
        .map_err(|e| format!("running e2fsck: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "e2fsck -fn {} found errors (exit {}): the kernel left its root file system inconsistent\n{}{}",
        image.display(),
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ))
}

/// Byte `i` of the `pattern:LEN` content a `--root-expect` names: a sequence that
/// repeats every 251 bytes, so that no two 4 KiB blocks of a file are alike (a
/// block written at the wrong place shows). The kernel's test writes the same.
pub fn pattern_byte(i: usize) -> u8 {
    (i % 251) as u8
}

/// Returns the bytes a `--root-expect` content stands for.
pub fn expected_bytes(content: &str) -> Result<Vec<u8>, String> {
    match content.strip_prefix("pattern:") {
        Some(len) => {
            let len: usize = len.parse().map_err(|_| format!("--root-expect: bad length in {content:?}"))?;
            Ok((0..len).map(pattern_byte).collect())
        }
        None => Ok(content.as_bytes().to_vec()),
    }
}

/// Reads the file `path` of the ext2 `image` on the host (`debugfs -R "cat PATH"`)
/// and compares it with `content` (see [`expected_bytes`]).
pub fn expect_file(image: &Path, path: &str, content: &str) -> Result<(), String> {
    let want = expected_bytes(content)?;
    let output = Command::new(e2fsprogs("debugfs")?)
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(image)
        .output()
        .map_err(|e| format!("running debugfs: {e}"))?;
    let got = output.stdout;
    if got == want {
        return Ok(());
    }
    let first_diff = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
    Err(format!(
        "debugfs -R \"cat {path}\" {}: {} bytes, want {} (first difference at byte {first_diff}){}",
        image.display(),
        got.len(),
        want.len(),
        String::from_utf8_lossy(&output.stderr).trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("boot-root-disk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree/etc")).unwrap();
        std::fs::write(dir.join("tree/etc/motd"), b"hi\n").unwrap();
        dir
    }

    #[test]
    fn a_staged_tree_becomes_a_clean_ext2_image() {
        let dir = scratch("clean");
        let image = build(&dir.join("kernel"), &dir.join("tree"), 4 << 20).unwrap();
        assert_eq!(image, dir.join("kernel.root.img"));
        let bytes = std::fs::read(&image).unwrap();
        assert_eq!(&bytes[1024 + 56..1024 + 58], &[0x53, 0xef], "the ext2 magic");
        check(&image).unwrap();
    }

    #[test]
    fn a_damaged_image_fails_the_check() {
        let dir = scratch("damaged");
        let image = build(&dir.join("kernel"), &dir.join("tree"), 4 << 20).unwrap();
        let mut bytes = std::fs::read(&image).unwrap();
        // Group 0's block bitmap (its block number is the first word of the group
        // descriptor table, block 1 with 4 KiB blocks) says every block is free,
        // though the metadata and the files use some.
        let bitmap = u32::from_le_bytes(bytes[4096..4100].try_into().unwrap()) as usize * 4096;
        bytes[bitmap..bitmap + 4096].fill(0);
        std::fs::write(&image, bytes).unwrap();
        let report = check(&image).unwrap_err();
        assert!(report.contains("found errors"), "{report}");
    }

    #[test]
    fn debugfs_reads_back_what_the_tree_held_and_a_difference_fails() {
        let dir = scratch("expect");
        let bytes: Vec<u8> = (0..10_000).map(pattern_byte).collect();
        std::fs::write(dir.join("tree/etc/pattern"), &bytes).unwrap();
        let image = build(&dir.join("kernel"), &dir.join("tree"), 4 << 20).unwrap();
        expect_file(&image, "/etc/motd", "hi\n").unwrap();
        expect_file(&image, "/etc/pattern", "pattern:10000").unwrap();
        let err = expect_file(&image, "/etc/pattern", "pattern:9999").unwrap_err();
        assert!(err.contains("want 9999"), "{err}");
        assert!(expect_file(&image, "/etc/none", "x").is_err(), "a missing file");
    }

    #[test]
    fn a_missing_staging_tree_is_an_error() {
        let dir = scratch("missing");
        let err = build(&dir.join("kernel"), &dir.join("nope"), 4 << 20).unwrap_err();
        assert!(err.contains("not a directory"), "{err}");
    }
}
