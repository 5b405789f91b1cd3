//! Names: lookup, path walk, and every operation that adds or removes a name.
//!
//! Each operation validates first (the names, the types, emptiness, link limits,
//! free space) and only then changes the disk, in an order that leaves counts
//! exact: a new inode is fully written before its name appears, a name is removed
//! before the inode's link count drops, and an inode whose count reaches 0 is freed
//! at once unless the VFS holds it open ([`Ext2::inode_get`]), in which case it is
//! freed by the last [`Ext2::inode_put`] (an unlinked file stays readable while open).
//!
//! Link counts kept, as e2fsck checks them: a file counts its names; a directory
//! counts its name in the parent, its own `.`, and the `..` of each subdirectory.

use alloc::vec;
use alloc::vec::Vec;

use crate::error::{Ext2Error, Result};
use crate::fs::Ext2;
use crate::inode::{FileType, Inode, S_IFDIR, S_IFLNK, S_IFREG};
use crate::{InodeNo, LINK_MAX, NAME_MAX, ROOT_INO};

/// Most symbolic links followed in one path walk (Linux's `MAXSYMLINKS` is 40;
/// 8 was the classic limit and is plenty here).
const MAX_SYMLINKS: u32 = 8;
/// Longest fast symlink target: it must fit in the 60 bytes of the block map.
const FAST_SYMLINK_MAX: usize = 59;

/// Checks a name for a new or removed entry: not empty, at most 255 bytes, no `/`
/// and no NUL.
fn check_name(name: &[u8]) -> Result<()> {
    if name.is_empty() {
        return Err(Ext2Error::NotFound);
    }
    if name.len() > NAME_MAX {
        return Err(Ext2Error::NameTooLong);
    }
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(Ext2Error::InvalidArgument);
    }
    Ok(())
}

fn is_dot_or_dotdot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl Ext2<'_> {
    /// Returns the root directory's inode number.
    pub fn root(&self) -> InodeNo {
        ROOT_INO
    }

    /// Returns the inode named `name` in directory `dir` (`.` and `..` included).
    pub fn lookup(&mut self, dir: InodeNo, name: &[u8]) -> Result<InodeNo> {
        if name.len() > NAME_MAX {
            return Err(Ext2Error::NameTooLong);
        }
        Ok(self.dir_find(dir, name)?.ok_or(Ext2Error::NotFound)?.ino)
    }

    /// Resolves `path` (absolute, or relative to directory `cwd`), following
    /// symbolic links in every component but the last, and in the last one too if
    /// `follow_last`. Empty components and trailing slashes are ignored; `..` at the
    /// root stays at the root (the root's `..` is itself on disk).
    pub fn lookup_path(&mut self, cwd: InodeNo, path: &[u8], follow_last: bool) -> Result<InodeNo> {
        let mut nr_links_followed = 0;
        self.walk(cwd, path, follow_last, &mut nr_links_followed)
    }

    fn walk(&mut self, cwd: InodeNo, path: &[u8], follow_last: bool, nr_followed: &mut u32) -> Result<InodeNo> {
        if path.is_empty() {
            return Err(Ext2Error::NotFound);
        }
        let mut cur = if path[0] == b'/' { ROOT_INO } else { cwd };
        let components: Vec<&[u8]> = path.split(|&b| b == b'/').filter(|c| !c.is_empty()).collect();
        for (i, name) in components.iter().enumerate() {
            let is_last = i + 1 == components.len();
            let next = self.lookup(cur, name)?;
            let inode = self.read_inode(next)?;
            if inode.mode & crate::inode::S_IFMT == S_IFLNK && (!is_last || follow_last) {
                *nr_followed += 1;
                if *nr_followed > MAX_SYMLINKS {
                    return Err(Ext2Error::TooManySymlinks);
                }
                let target = self.readlink(next)?;
                cur = self.walk(cur, &target, true, nr_followed)?;
            } else {
                cur = next;
            }
        }
        if path.last() == Some(&b'/') && !self.read_inode(cur)?.is_dir() {
            return Err(Ext2Error::NotDir);
        }
        Ok(cur)
    }

    /// Returns the target of symbolic link `ino` (`EINVAL` if it is not one).
    pub fn readlink(&mut self, ino: InodeNo) -> Result<Vec<u8>> {
        let inode = self.read_inode(ino)?;
        if inode.mode & crate::inode::S_IFMT != S_IFLNK {
            return Err(Ext2Error::InvalidArgument);
        }
        let len = inode.size as usize;
        if !inode.has_block_map(self.sb.block_size) {
            // Fast symlink: the target is in the block map's 60 bytes.
            return Ok(inode.block_bytes()[..len.min(60)].to_vec());
        }
        let bad = Ext2Error::Corrupt(crate::Corruption::BadSymlink { ino: ino.0 });
        if len >= self.sb.block_size {
            return Err(bad);
        }
        let mut block = vec![0u8; self.sb.block_size];
        let pblk = self.lookup_block(&inode, 0)?.ok_or(bad)?;
        self.cache.read_into(self.dev, pblk, &mut block)?;
        block.truncate(len);
        Ok(block)
    }

    /// Checks that `name` can be added to `dir`: a valid name, not present.
    fn check_new_name(&mut self, dir: InodeNo, name: &[u8]) -> Result<()> {
        check_name(name)?;
        if is_dot_or_dotdot(name) || self.dir_find(dir, name)?.is_some() {
            return Err(Ext2Error::Exists);
        }
        Ok(())
    }

    /// Allocates and writes a new inode of `mode` for a child of `parent`.
    fn new_inode(&mut self, parent: InodeNo, mode: u16, nr_links: u16) -> Result<(InodeNo, Inode)> {
        let ino = self.alloc_inode(parent, mode & crate::inode::S_IFMT == S_IFDIR)?;
        let mut inode = Inode::new(self.sb.inode_size, mode, self.now());
        inode.nr_links = nr_links;
        self.write_inode(ino, &inode)?;
        Ok((ino, inode))
    }

    /// Adds `name` → `ino` to `dir`; if that fails, frees the new inode `ino` again
    /// so that nothing is left half made.
    fn add_name_or_undo(&mut self, dir: InodeNo, name: &[u8], ino: InodeNo, ft: FileType) -> Result<()> {
        if let Err(e) = self.dir_add(dir, name, ino, ft) {
            let mut inode = self.read_inode(ino)?;
            inode.nr_links = 0;
            self.release_inode(ino, &mut inode)?;
            return Err(e);
        }
        Ok(())
    }

    /// Creates an empty regular file `name` in `dir` with permission bits `perm`
    /// (`EEXIST` if the name is taken).
    pub fn create(&mut self, dir: InodeNo, name: &[u8], perm: u16) -> Result<InodeNo> {
        self.dir_inode(dir)?;
        self.check_new_name(dir, name)?;
        let (ino, _) = self.new_inode(dir, S_IFREG | (perm & 0o7777), 1)?;
        self.add_name_or_undo(dir, name, ino, FileType::Regular)?;
        Ok(ino)
    }

    /// Creates directory `name` in `dir` with `.` and `..`; the parent gains a link
    /// (the new `..`) and the group a directory.
    pub fn mkdir(&mut self, dir: InodeNo, name: &[u8], perm: u16) -> Result<InodeNo> {
        let parent = self.dir_inode(dir)?;
        self.check_new_name(dir, name)?;
        if parent.nr_links >= LINK_MAX {
            return Err(Ext2Error::TooManyLinks);
        }
        if self.sb.nr_free_blocks == 0 {
            return Err(Ext2Error::NoSpace);
        }
        let (ino, mut inode) = self.new_inode(dir, S_IFDIR | (perm & 0o7777), 2)?;
        let (pblk, _) = self.map_block_alloc(ino, &mut inode, 0)?;
        let mut block = vec![0u8; self.sb.block_size];
        self.init_dir_block(&mut block, ino, dir);
        self.cache.zeroed(self.dev, pblk)?.copy_from_slice(&block);
        inode.size = self.sb.block_size as u64;
        self.write_inode(ino, &inode)?;
        self.add_name_or_undo(dir, name, ino, FileType::Directory)?;
        let mut parent = self.read_inode(dir)?;
        parent.nr_links += 1;
        self.write_inode(dir, &parent)?;
        Ok(ino)
    }

    /// Creates symbolic link `name` in `dir` pointing at `target` (kept in the inode
    /// if it is under 60 bytes, else in one data block).
    pub fn symlink(&mut self, dir: InodeNo, name: &[u8], target: &[u8]) -> Result<InodeNo> {
        self.dir_inode(dir)?;
        self.check_new_name(dir, name)?;
        if target.is_empty() {
            return Err(Ext2Error::NotFound);
        }
        if target.len() >= self.sb.block_size {
            return Err(Ext2Error::NameTooLong);
        }
        if target.len() > FAST_SYMLINK_MAX && self.sb.nr_free_blocks == 0 {
            return Err(Ext2Error::NoSpace);
        }
        let (ino, mut inode) = self.new_inode(dir, S_IFLNK | 0o777, 1)?;
        inode.size = target.len() as u64;
        if target.len() <= FAST_SYMLINK_MAX {
            inode.set_block_bytes(target);
        } else {
            let (pblk, _) = self.map_block_alloc(ino, &mut inode, 0)?;
            self.cache.zeroed(self.dev, pblk)?[..target.len()].copy_from_slice(target);
        }
        self.write_inode(ino, &inode)?;
        self.add_name_or_undo(dir, name, ino, FileType::Symlink)?;
        Ok(ino)
    }

    /// Adds a hard link `name` in `dir` to the existing non-directory `ino`.
    pub fn link(&mut self, dir: InodeNo, name: &[u8], ino: InodeNo) -> Result<()> {
        self.dir_inode(dir)?;
        let mut inode = self.read_inode(ino)?;
        if inode.is_dir() {
            return Err(Ext2Error::IsDir);
        }
        if inode.nr_links >= LINK_MAX {
            return Err(Ext2Error::TooManyLinks);
        }
        self.check_new_name(dir, name)?;
        let ft = inode.file_type().ok_or(Ext2Error::InvalidArgument)?;
        self.dir_add(dir, name, ino, ft)?;
        inode.nr_links += 1;
        inode.ctime = self.now();
        self.write_inode(ino, &inode)
    }

    /// Finds `name` in `dir` for removal; `.` and `..` are refused with `err_dot`.
    fn find_for_removal(&mut self, dir: InodeNo, name: &[u8], err_dot: Ext2Error) -> Result<crate::dir::FoundEntry> {
        check_name(name)?;
        if name == b"." {
            return Err(err_dot);
        }
        if name == b".." {
            return Err(if err_dot == Ext2Error::IsDir { Ext2Error::IsDir } else { Ext2Error::NotEmpty });
        }
        self.dir_find(dir, name)?.ok_or(Ext2Error::NotFound)
    }

    /// Removes the name `name` (not a directory: `EISDIR`) from `dir`; the inode is
    /// freed when its last link goes and nobody holds it open.
    pub fn unlink(&mut self, dir: InodeNo, name: &[u8]) -> Result<()> {
        self.dir_inode(dir)?;
        let found = self.find_for_removal(dir, name, Ext2Error::IsDir)?;
        let mut inode = self.read_inode(found.ino)?;
        if inode.is_dir() {
            return Err(Ext2Error::IsDir);
        }
        self.dir_remove(dir, found)?;
        self.drop_link(found.ino, &mut inode)
    }

    /// Removes the empty directory `name` from `dir` (`ENOTEMPTY` if it has entries).
    pub fn rmdir(&mut self, dir: InodeNo, name: &[u8]) -> Result<()> {
        self.dir_inode(dir)?;
        let found = self.find_for_removal(dir, name, Ext2Error::InvalidArgument)?;
        let mut inode = self.read_inode(found.ino)?;
        if !inode.is_dir() {
            return Err(Ext2Error::NotDir);
        }
        if !self.dir_is_empty(found.ino)? {
            return Err(Ext2Error::NotEmpty);
        }
        self.dir_remove(dir, found)?;
        self.drop_dir(dir, found.ino, &mut inode)
    }

    /// Drops one link of non-directory `ino`; frees it at 0 unless held open.
    fn drop_link(&mut self, ino: InodeNo, inode: &mut Inode) -> Result<()> {
        inode.nr_links = inode.nr_links.saturating_sub(1);
        inode.ctime = self.now();
        if inode.nr_links == 0 && !self.holds.contains_key(&ino.0) {
            return self.release_inode(ino, inode);
        }
        self.write_inode(ino, inode)
    }

    /// Finishes removing empty directory `ino` whose name in `parent` is gone: the
    /// parent loses the `..` link, the directory its two links, and it is freed
    /// unless held open.
    fn drop_dir(&mut self, parent: InodeNo, ino: InodeNo, inode: &mut Inode) -> Result<()> {
        let mut p = self.read_inode(parent)?;
        p.nr_links = p.nr_links.saturating_sub(1);
        self.write_inode(parent, &p)?;
        inode.nr_links = 0;
        inode.ctime = self.now();
        if self.holds.contains_key(&ino.0) {
            return self.write_inode(ino, inode);
        }
        self.release_inode(ino, inode)
    }

    /// Frees inode `ino` (link count 0): its blocks, its extended-attribute block,
    /// its bitmap bit; marks the record deleted (`dtime`).
    pub(crate) fn release_inode(&mut self, ino: InodeNo, inode: &mut Inode) -> Result<()> {
        if inode.has_block_map(self.sb.block_size) {
            self.free_blocks_from(inode, 0)?;
        }
        if inode.file_acl != 0 {
            self.put_xattr_block(inode.file_acl)?;
            inode.file_acl = 0;
            inode.nr_sectors = 0;
        }
        let was_dir = inode.is_dir();
        inode.size = 0;
        inode.nr_links = 0;
        inode.dtime = self.now().max(1);
        self.write_inode(ino, inode)?;
        self.free_inode(ino, was_dir)
    }

    /// Drops one reference to a shared extended-attribute block, freeing it at 0.
    fn put_xattr_block(&mut self, block: u32) -> Result<()> {
        self.check_block(block)?;
        let bytes = self.cache.modify(self.dev, block)?;
        let refcount = crate::layout::le32(bytes, 4);
        if refcount > 1 {
            crate::layout::put32(bytes, 4, refcount - 1);
            return Ok(());
        }
        self.free_block(block)
    }

    /// Takes a hold on inode `ino` (an open file): while held, it is not freed when
    /// its last name is removed.
    pub fn inode_get(&mut self, ino: InodeNo) -> Result<()> {
        self.check_ino(ino)?;
        *self.holds.entry(ino.0).or_insert(0) += 1;
        Ok(())
    }

    /// Drops a hold taken by [`Ext2::inode_get`]; the last one frees the inode if it
    /// has no names left.
    pub fn inode_put(&mut self, ino: InodeNo) -> Result<()> {
        let Some(count) = self.holds.get_mut(&ino.0) else { return Err(Ext2Error::InvalidArgument) };
        *count -= 1;
        if *count > 0 {
            return Ok(());
        }
        self.holds.remove(&ino.0);
        let mut inode = self.read_inode(ino)?;
        if inode.nr_links == 0 && inode.dtime == 0 {
            return self.release_inode(ino, &mut inode);
        }
        Ok(())
    }

    /// Returns true if directory `ancestor` is `dir` or one of its ancestors
    /// (following `..` up to the root).
    fn is_ancestor(&mut self, ancestor: InodeNo, mut dir: InodeNo) -> Result<bool> {
        for _ in 0..self.sb.nr_inodes {
            if dir == ancestor {
                return Ok(true);
            }
            if dir == ROOT_INO {
                return Ok(false);
            }
            dir = self.lookup(dir, b"..")?;
        }
        Ok(false)
    }

    /// Renames `old_dir/old_name` to `new_dir/new_name`, replacing a target of the
    /// same kind (an empty directory, or a non-directory). A directory moved to
    /// another parent has its `..` rewritten and the parents' link counts moved.
    /// `EINVAL` for moving a directory into itself; `ENOTEMPTY`, `EISDIR`,
    /// `ENOTDIR` for a target of the wrong kind.
    pub fn rename(&mut self, old_dir: InodeNo, old_name: &[u8], new_dir: InodeNo, new_name: &[u8]) -> Result<()> {
        self.dir_inode(old_dir)?;
        self.dir_inode(new_dir)?;
        check_name(new_name)?;
        let src = self.find_for_removal(old_dir, old_name, Ext2Error::InvalidArgument)?;
        if is_dot_or_dotdot(new_name) {
            return Err(Ext2Error::InvalidArgument);
        }
        let src_inode = self.read_inode(src.ino)?;
        let is_dir = src_inode.is_dir();
        let ft = src_inode.file_type().ok_or(Ext2Error::InvalidArgument)?;
        if is_dir && old_dir != new_dir && self.is_ancestor(src.ino, new_dir)? {
            return Err(Ext2Error::InvalidArgument);
        }
        let dst = self.dir_find(new_dir, new_name)?;
        if let Some(dst) = dst {
            if dst.ino == src.ino {
                return Ok(());
            }
            let dst_inode = self.read_inode(dst.ino)?;
            match (is_dir, dst_inode.is_dir()) {
                (true, false) => return Err(Ext2Error::NotDir),
                (false, true) => return Err(Ext2Error::IsDir),
                (true, true) if !self.dir_is_empty(dst.ino)? => return Err(Ext2Error::NotEmpty),
                _ => {}
            }
        } else if is_dir && old_dir != new_dir && self.read_inode(new_dir)?.nr_links >= LINK_MAX {
            return Err(Ext2Error::TooManyLinks);
        }
        // Validated: now change. First the new name (the only step that can need
        // space), then the old name goes, then the link counts follow.
        match dst {
            Some(dst) => {
                self.dir_retarget(new_dir, dst, src.ino, ft)?;
                let mut dst_inode = self.read_inode(dst.ino)?;
                if dst_inode.is_dir() {
                    self.drop_dir(new_dir, dst.ino, &mut dst_inode)?;
                } else {
                    self.drop_link(dst.ino, &mut dst_inode)?;
                }
            }
            None => self.dir_add(new_dir, new_name, src.ino, ft)?,
        }
        let src_entry = self.dir_find(old_dir, old_name)?.ok_or(Ext2Error::NotFound)?;
        self.dir_remove(old_dir, src_entry)?;
        if is_dir && old_dir != new_dir {
            let dotdot = self.dir_find(src.ino, b"..")?.ok_or(Ext2Error::NotFound)?;
            self.dir_retarget(src.ino, dotdot, new_dir, FileType::Directory)?;
            let mut old_parent = self.read_inode(old_dir)?;
            old_parent.nr_links = old_parent.nr_links.saturating_sub(1);
            self.write_inode(old_dir, &old_parent)?;
            let mut new_parent = self.read_inode(new_dir)?;
            new_parent.nr_links += 1;
            self.write_inode(new_dir, &new_parent)?;
        }
        let mut moved = self.read_inode(src.ino)?;
        moved.ctime = self.now();
        self.write_inode(src.ino, &moved)
    }
}
