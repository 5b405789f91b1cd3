//! The staging tree of the root disk: `rootfs/` (or `--root DIR`) plus every user
//! program of the kernel image in `/bin`, copied into a fresh directory for each run.
//!
//! The kernel image names its programs itself: its ELF section `.user_programs`
//! holds `name=path` lines, one per program, with the path where the build left the
//! program's ELF file (`kernel/src/user_programs.rs`, `BIN_MANIFEST`). [`stage`]
//! copies the tree, then each program to `bin/NAME`, into `<kernel>.staging/`;
//! `mke2fs -d` makes the disk from it and [`remove`] deletes it afterwards.

use std::path::{Path, PathBuf};

use crate::image_args;

/// The section of the kernel ELF that lists its user programs.
pub const MANIFEST_SECTION: &str = ".user_programs";

/// Returns the `(name, path)` pairs of the manifest text `text`.
pub fn parse_manifest(text: &str) -> Result<Vec<(String, PathBuf)>, String> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (name, path) = line.split_once('=').ok_or_else(|| format!("{MANIFEST_SECTION}: bad line {line:?}"))?;
            if name.is_empty() || name.contains('/') {
                return Err(format!("{MANIFEST_SECTION}: bad program name {name:?}"));
            }
            Ok((name.to_string(), PathBuf::from(path)))
        })
        .collect()
}

/// Returns the programs the kernel ELF `kernel` lists (none if it has no manifest).
pub fn programs_of(kernel: &Path) -> Result<Vec<(String, PathBuf)>, String> {
    let elf = std::fs::read(kernel).map_err(|e| format!("reading {}: {e}", kernel.display()))?;
    let Some(bytes) = image_args::section(&elf, MANIFEST_SECTION) else {
        return Ok(Vec::new());
    };
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{MANIFEST_SECTION} is not UTF-8"))?;
    parse_manifest(text.trim_end_matches('\0'))
}

/// Copies the directory tree `from` into `to` (created), files and directories only.
fn copy_tree(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("creating {}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from).map_err(|e| format!("reading {}: {e}", from.display()))? {
        let entry = entry.map_err(|e| format!("reading {}: {e}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_tree(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| format!("copying {}: {e}", src.display()))?;
        }
    }
    Ok(())
}

/// Makes `<kernel>.staging/`: a copy of `tree` with the kernel's programs in `bin/`.
/// Returns its path and the number of programs staged.
pub fn stage(kernel: &Path, tree: &Path) -> Result<(PathBuf, usize), String> {
    if !tree.is_dir() {
        return Err(format!("--root {}: not a directory", tree.display()));
    }
    let staging = kernel.with_extension("staging");
    remove(&staging);
    copy_tree(tree, &staging)?;
    let programs = programs_of(kernel)?;
    let bin = staging.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| format!("creating {}: {e}", bin.display()))?;
    for (name, path) in &programs {
        std::fs::copy(path, bin.join(name))
            .map_err(|e| format!("staging /bin/{name} from {}: {e} (rebuild the kernel)", path.display()))?;
    }
    Ok((staging, programs.len()))
}

/// Deletes a staging tree (nothing if it is not there).
pub fn remove(staging: &Path) {
    let _ = std::fs::remove_dir_all(staging);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_lists_names_and_paths() {
        let got = parse_manifest("hello=/t/hello\nfork_c=/t/c/fork_c\n").unwrap();
        assert_eq!(got, vec![("hello".into(), "/t/hello".into()), ("fork_c".into(), "/t/c/fork_c".into())]);
        assert!(parse_manifest("no-equals-sign\n").is_err());
        assert!(parse_manifest("a/b=/x\n").is_err(), "a name with a slash");
    }

    #[test]
    fn the_tree_and_the_programs_are_staged() {
        let dir = std::env::temp_dir().join(format!("boot-staging-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree/etc")).unwrap();
        std::fs::write(dir.join("tree/etc/motd"), b"hi\n").unwrap();
        // A kernel "ELF" without the section stages the tree and an empty /bin.
        std::fs::write(dir.join("kernel"), b"not an elf").unwrap();
        let (staging, n) = stage(&dir.join("kernel"), &dir.join("tree")).unwrap();
        assert_eq!(n, 0);
        assert_eq!(std::fs::read(staging.join("etc/motd")).unwrap(), b"hi\n");
        assert!(staging.join("bin").is_dir());
        remove(&staging);
        assert!(!staging.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
