//! Randomized operations against an in-memory model of the tree, with `e2fsck -fn`
//! at the end: create, write (near and far), truncate, unlink, mkdir, rmdir and
//! rename, with the errors the model predicts (EEXIST, EISDIR, ENOTDIR, ENOTEMPTY,
//! EINVAL). Seeds are fixed, so a failure replays.
//!
//! One test runs on a disk so small that it fills up: a short write, or ENOSPC
//! from create, mkdir or rename, must leave the tree exactly as the model says.
//!
//! `EXT2_SOAK_OPS=N cargo test -p ext2 --test random` runs N operations per seed
//! instead of the suite's few hundred (a soak mode, not a slow test).

mod common;

use std::collections::BTreeMap;

use blockdev::RamDisk;
use common::*;
use ext2::{Ext2, Ext2Error, FileType, InodeNo, ROOT_INO};

#[derive(Debug, Clone, PartialEq)]
enum Node {
    File(Vec<u8>),
    Dir,
}

/// The model: absolute path ("/a/b") → node. The root is "/".
type Model = BTreeMap<String, Node>;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir == "/" { format!("/{name}") } else { format!("{dir}/{name}") }
}

fn children<'m>(model: &'m Model, dir: &str) -> impl Iterator<Item = &'m String> {
    let prefix = if dir == "/" { "/".to_string() } else { format!("{dir}/") };
    model.keys().filter(move |k| k.len() > prefix.len() && k.starts_with(&prefix) && !k[prefix.len()..].contains('/'))
}

fn ino(fs: &mut Ext2, path: &str) -> InodeNo {
    fs.lookup_path(ROOT_INO, path.as_bytes(), false).unwrap_or_else(|e| panic!("lookup {path}: {e}"))
}

/// Compares the whole tree with the model.
fn assert_matches_model(fs: &mut Ext2, model: &Model) {
    for (path, node) in model {
        let i = ino(fs, path);
        let listed: Vec<String> = match node {
            Node::File(data) => {
                assert!(read_all(fs, i) == *data, "contents of {path}");
                continue;
            }
            Node::Dir => fs
                .read_dir(i, 0)
                .unwrap()
                .into_iter()
                .filter(|e| e.name != b"." && e.name != b".." && !(path == "/" && e.name == b"lost+found"))
                .map(|e| join(path, std::str::from_utf8(&e.name).unwrap()))
                .collect(),
        };
        let mut listed = listed;
        listed.sort();
        let mut expected: Vec<String> = children(model, path).cloned().collect();
        expected.sort();
        assert_eq!(listed, expected, "entries of {path}");
    }
}

/// Predicts a rename's outcome in the model, applying it on success.
fn model_rename(model: &mut Model, src: &str, dst: &str) -> Result<(), Ext2Error> {
    let src_node = model.get(src).cloned().ok_or(Ext2Error::NotFound)?;
    if src == dst {
        return Ok(());
    }
    if src_node == Node::Dir && dst.starts_with(&format!("{src}/")) {
        return Err(Ext2Error::InvalidArgument);
    }
    if let Some(dst_node) = model.get(dst) {
        match (&src_node, dst_node) {
            (Node::Dir, Node::File(_)) => return Err(Ext2Error::NotDir),
            (Node::File(_), Node::Dir) => return Err(Ext2Error::IsDir),
            (Node::Dir, Node::Dir) if children(model, dst).next().is_some() => return Err(Ext2Error::NotEmpty),
            _ => {}
        }
        model.remove(dst);
    }
    let moved: Vec<String> = model.keys().filter(|k| *k == src || k.starts_with(&format!("{src}/"))).cloned().collect();
    for old in moved {
        let node = model.remove(&old).unwrap();
        model.insert(format!("{dst}{}", &old[src.len()..]), node);
    }
    Ok(())
}

/// Runs `nr_ops` random operations on a fresh disk of `nr_blocks` blocks; writes
/// are 1 byte to `max_write_blocks` blocks long.
fn run_seed(seed: u64, block_size: u32, nr_blocks: u32, nr_ops: usize, max_write_blocks: u64, mkfs_extra: &[&str]) {
    let staging = TempDir::new("staging");
    let disk = RamDisk::from_bytes("root", make_image(&staging.0, block_size, nr_blocks, mkfs_extra));
    let mut fs = mount(&disk);
    let mut model: Model = BTreeMap::from([("/".to_string(), Node::Dir)]);
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let bs = block_size as u64;
    let names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let long_name = "L".repeat(200);
    for step in 0..nr_ops {
        let dirs: Vec<String> = model.iter().filter(|(_, n)| **n == Node::Dir).map(|(k, _)| k.clone()).collect();
        let files: Vec<String> = model.iter().filter(|(_, n)| **n != Node::Dir).map(|(k, _)| k.clone()).collect();
        let all: Vec<String> = model.keys().filter(|k| *k != "/").cloned().collect();
        let dir = rng.pick(&dirs).clone();
        let name = if rng.below(20) == 0 { long_name.clone() } else { rng.pick(&names).to_string() };
        let target = join(&dir, &name);
        let context = format!("seed {seed}, step {step}");
        match rng.below(10) {
            0 | 1 => {
                let d = ino(&mut fs, &dir);
                let got = fs.create(d, name.as_bytes(), 0o644).map(|_| ());
                let want = if model.contains_key(&target) { Err(Ext2Error::Exists) } else { Ok(()) };
                if got == Err(Ext2Error::NoSpace) && want.is_ok() {
                    continue; // disk full: nothing was created
                }
                assert_eq!(got, want, "{context}: create {target}");
                model.entry(target).or_insert(Node::File(Vec::new()));
            }
            2 | 3 if !files.is_empty() => {
                let path = rng.pick(&files).clone();
                let Some(Node::File(data)) = model.get_mut(&path) else { unreachable!() };
                let offset = match rng.below(8) {
                    0 => rng.below(300 * bs),
                    _ => rng.below(data.len() as u64 + 2 * bs),
                };
                let bytes = pattern(rng.below(max_write_blocks * bs) as usize + 1, step as u32);
                let i = ino(&mut fs, &path);
                let n = match fs.write_at(i, offset, &bytes) {
                    Ok(n) => n,
                    Err(Ext2Error::NoSpace) => 0,
                    Err(e) => panic!("{context}: write {path}: {e}"),
                };
                // A short write only when the disk is full: fewer free blocks than the
                // next file block needs (itself and up to three map blocks).
                assert!(n == bytes.len() || fs.statfs().nr_free_blocks < 4, "{context}: short write");
                if n == 0 {
                    continue;
                }
                let end = offset as usize + n;
                if data.len() < end {
                    data.resize(end, 0);
                }
                data[offset as usize..end].copy_from_slice(&bytes[..n]);
            }
            4 if !files.is_empty() => {
                let path = rng.pick(&files).clone();
                let Some(Node::File(data)) = model.get_mut(&path) else { unreachable!() };
                let size = rng.below(data.len() as u64 + 3 * bs) as usize;
                let i = ino(&mut fs, &path);
                fs.truncate(i, size as u64).unwrap();
                data.resize(size, 0);
            }
            5 if !all.is_empty() => {
                let path = rng.pick(&all).clone();
                let (parent, leaf) = path.rsplit_once('/').unwrap();
                let p = ino(&mut fs, if parent.is_empty() { "/" } else { parent });
                let got = fs.unlink(p, leaf.as_bytes());
                if model[&path] == Node::Dir {
                    assert_eq!(got, Err(Ext2Error::IsDir), "{context}: unlink dir {path}");
                } else {
                    assert_eq!(got, Ok(()), "{context}: unlink {path}");
                    model.remove(&path);
                }
            }
            6 => {
                let d = ino(&mut fs, &dir);
                let got = fs.mkdir(d, name.as_bytes(), 0o755).map(|_| ());
                let want = if model.contains_key(&target) { Err(Ext2Error::Exists) } else { Ok(()) };
                if got == Err(Ext2Error::NoSpace) && want.is_ok() {
                    continue;
                }
                assert_eq!(got, want, "{context}: mkdir {target}");
                model.entry(target).or_insert(Node::Dir);
            }
            7 if dirs.len() > 1 => {
                let path = rng.pick(&dirs[1..]).clone();
                let (parent, leaf) = path.rsplit_once('/').unwrap();
                let p = ino(&mut fs, if parent.is_empty() { "/" } else { parent });
                let got = fs.rmdir(p, leaf.as_bytes());
                if children(&model, &path).next().is_some() {
                    assert_eq!(got, Err(Ext2Error::NotEmpty), "{context}: rmdir {path}");
                } else {
                    assert_eq!(got, Ok(()), "{context}: rmdir {path}");
                    model.remove(&path);
                }
            }
            8 if !all.is_empty() => {
                let src = rng.pick(&all).clone();
                let (sp, sl) = src.rsplit_once('/').unwrap();
                let s = ino(&mut fs, if sp.is_empty() { "/" } else { sp });
                let d = ino(&mut fs, &dir);
                let got = fs.rename(s, sl.as_bytes(), d, name.as_bytes());
                let mut renamed = model.clone();
                let want = model_rename(&mut renamed, &src, &target);
                if got == Err(Ext2Error::NoSpace) && want.is_ok() {
                    continue; // the new name needed a directory block: nothing moved
                }
                assert_eq!(got, want, "{context}: rename {src} -> {target}");
                model = renamed;
            }
            _ => {
                if step % 50 == 0 {
                    assert_matches_model(&mut fs, &model);
                }
            }
        }
        if step % 97 == 0 {
            let st = fs.statfs();
            assert!(st.nr_free_blocks <= st.nr_blocks && st.nr_free_inodes <= st.nr_inodes);
        }
    }
    assert_matches_model(&mut fs, &model);
    fs.sync().unwrap();
    let bytes = disk.to_bytes();
    assert_fsck_clean(&bytes);
    assert_counts_exact(&bytes);
    let disk2 = RamDisk::from_bytes("root", bytes);
    let mut fs2 = Ext2::mount(&disk2, host_clock).unwrap();
    assert_matches_model(&mut fs2, &model);
    assert_eq!(fs2.stat(ROOT_INO).unwrap().file_type(), Some(FileType::Directory));
}

fn nr_ops(default: usize) -> usize {
    std::env::var("EXT2_SOAK_OPS").ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

#[test]
fn random_operations_match_the_model_on_1k_blocks() {
    for seed in 1..=3 {
        run_seed(seed, 1024, 16 * 1024, nr_ops(400), 3, &[]);
    }
}

#[test]
fn random_operations_match_the_model_on_4k_blocks() {
    for seed in 11..=12 {
        run_seed(seed, 4096, 8 * 1024, nr_ops(400), 3, &[]);
    }
}

#[test]
fn random_operations_on_a_nearly_full_disk_stay_consistent() {
    // 512 KiB, 64 inodes, writes of up to 40 KiB: writes come back short, creates,
    // mkdirs and renames fail with ENOSPC.
    for seed in 21..=23 {
        run_seed(seed, 1024, 512, nr_ops(600), 40, &["-N", "64"]);
    }
}
