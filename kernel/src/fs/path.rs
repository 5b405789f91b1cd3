//! Path lookup: from a path string to an inode, one component at a time.
//!
//! ```text
//!   "/a/./b/../c"  starts at the root;  "a/b"  starts at the cwd (or an openat dirfd)
//!   each component: "" (from "//") and "." stay, ".." goes to the parent (the
//!   root's parent is the root), a name is looked up in the directory reached so far;
//!   a component that is not a directory but has more path after it: ENOTDIR
//! ```
//! A path that ends in `/` must name a directory. There are no symbolic links, and
//! the one mount point (`/proc`, see [`super::lookup_mount`]) is checked before a
//! name of the root is looked up, so that is the whole algorithm (Linux's
//! `path_walk` without the link cases).
//!
//! [`path_of`] goes the other way, for `getcwd`: from a directory up through `..`
//! to the root, finding at each step the directory's name in its parent by its
//! inode number, as Unix's `pwd` did before kernels kept names in a dentry cache.

use alloc::string::String;
use alloc::vec::Vec;

use super::{FileKind, FsError, InodeRef};

/// Returns the inode `path` names, starting at `start` for a relative path.
pub fn resolve(start: &InodeRef, path: &str) -> Result<InodeRef, FsError> {
    check_path(path)?;
    let mut at = if path.starts_with('/') { super::root() } else { start.clone() };
    for name in path.split('/').filter(|c| !c.is_empty()) {
        if at.kind() != FileKind::Directory {
            return Err(FsError::NotDirectory);
        }
        at = match super::lookup_mount(&at, name) {
            Some(mounted) => mounted,
            None => at.lookup(name)?,
        };
    }
    if path.ends_with('/') && at.kind() != FileKind::Directory {
        return Err(FsError::NotDirectory);
    }
    Ok(at)
}

/// Splits `path` into the directory that holds its last component and that
/// component's name, for the calls that create or remove entries. The name may be
/// `.` or `..` (the caller decides what that means for it); `is_dir_only` is true
/// when the path ends in `/` (only a directory may be meant). The path `/` alone
/// has no last component: `Busy`.
pub fn resolve_parent<'p>(start: &InodeRef, path: &'p str) -> Result<(InodeRef, &'p str, bool), FsError> {
    check_path(path)?;
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(FsError::Busy); // "/" or "///": the root itself
    }
    let (dir_path, name) = match trimmed.rfind('/') {
        Some(i) => (&trimmed[..=i], &trimmed[i + 1..]),
        None => ("", trimmed),
    };
    let dir = if dir_path.is_empty() { start.clone() } else { resolve(start, dir_path)? };
    if dir.kind() != FileKind::Directory {
        return Err(FsError::NotDirectory);
    }
    if name.len() > abi::NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok((dir, name, trimmed.len() != path.len()))
}

/// Refuses an empty path (ENOENT, as Linux) and one too long.
fn check_path(path: &str) -> Result<(), FsError> {
    if path.is_empty() {
        return Err(FsError::NotFound);
    }
    if path.len() >= abi::PATH_MAX {
        return Err(FsError::NameTooLong);
    }
    Ok(())
}

/// Returns the absolute path of directory `dir` ("/" for the root). A directory
/// that was removed has no path: `NotFound` (Linux's getcwd says ENOENT too).
pub fn path_of(dir: &InodeRef) -> Result<String, FsError> {
    let mut names: Vec<String> = Vec::new();
    let mut at = dir.clone();
    let root_ino = super::root().stat().ino;
    if at.stat().nlink == 0 {
        return Err(FsError::NotFound);
    }
    while at.stat().ino != root_ino {
        let parent = at.lookup("..")?;
        let ino = at.stat().ino;
        let mut found = None;
        parent.getdents(2, &mut |entry| {
            if entry.ino == ino {
                found = Some(String::from(entry.name));
                false
            } else {
                true
            }
        })?;
        names.push(found.ok_or(FsError::NotFound)?);
        at = parent;
    }
    let mut path = String::new();
    for name in names.iter().rev() {
        path.push('/');
        path.push_str(name);
    }
    if path.is_empty() {
        path.push('/');
    }
    Ok(path)
}
