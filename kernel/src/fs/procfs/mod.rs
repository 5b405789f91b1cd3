//! procfs, mounted at `/proc`: the kernel's counters as text files, in Linux's
//! field names and layouts, so that what a student knows of Linux (and a Linux
//! tool's parser) works here.
//!
//! ```text
//!  /proc/meminfo     MemTotal, MemFree, MemAvailable, SwapTotal, SwapFree, ...  (kB)   meminfo.rs
//!  /proc/vmstat      pgfault, pgmajfault, pswpin, pswpout, pgscan, pgsteal, ...        system.rs
//!  /proc/buddyinfo   free blocks of each order, one line per zone (one zone here)      system.rs
//!  /proc/zoneinfo    the zone's free pages, watermarks min/low/high, managed pages    system.rs
//!  /proc/swaps       the swap area: size and used, in KiB                              system.rs
//!  /proc/diskstats   requests and sectors read and written, flushes, per disk          system.rs
//!  /proc/slabinfo, stat, uptime, loadavg: slab caches, CPU time, load                  system.rs
//!  /proc/PID/status  Name, State, PPid, VmSize, VmRSS, RssAnon, VmSwap, ...            pid.rs
//!  /proc/PID/maps    one line per VMA: start-end perms offset dev inode name           pid.rs
//!  /proc/PID/stat, statm, oom_score, oom_score_adj, vms_limit (both writable)            pid.rs
//!  /proc/PID/smaps, smaps_rollup: Rss, Pss, Shared/Private Clean/Dirty, Swap per VMA   smaps.rs
//!  /proc/sys/vm/*    the knobs: page_replacement, watermark_scale_factor, ...         sys_vm.rs
//!  /proc/kpageflags  binary: a u64 of Linux KPF_* bits per frame, at PFN * 8           kpageflags.rs
//! ```
//! The tree is two tables: [`FILES`], every file below `/proc` by its path (a
//! directory such as `sys/vm` exists because some path starts with it), and
//! [`PID_FILES`], the files of each `/proc/PID`. Adding a file is one line in one
//! of them. A file's text is made when it is read, from the same counters the
//! kernel's own tests read (`frame::buddyinfo`, `vmstat`, `swap::slot_counts`, an
//! address space's `AsStats` and VMAs); each `read_at` makes it afresh and returns
//! the bytes at the offset asked, so a reader in several pieces may see two
//! moments (Linux's seq_file has the same property between its pages).
//!
//! A file with a write function is a knob: a write hands the written text to it,
//! which either applies all of it or returns an error and changes nothing (EINVAL
//! for a value out of range). A file without one refuses writes with EINVAL
//! (Linux says EIO or EACCES; the VFS has no permission error yet).
//!
//! The mount: `fs::path` sends the name `proc` in the root directory here
//! ([`super::lookup_mount`]); `..` of `/proc` is `/`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use super::{DirEntry, FileKind, FsError, Inode, InodeRef, InodeStat};
use crate::mm::PAGE_SIZE;
use crate::proc::task;

mod kpageflags;
mod meminfo;
mod pid;
mod smaps;
mod sys_vm;
mod system;

/// The device number procfs reports.
const PROC_DEV: u64 = 3;
/// Inode numbers: 1 the root, then the files of [`FILES`], then directories below
/// the root (`DIR_INO_BASE +` their first file's index), then `PID << 8 | n`.
const ROOT_INO: u64 = 1;
/// See [`ROOT_INO`]: directories other than the root and the pid directories.
const DIR_INO_BASE: u64 = 128;

/// Makes the text of a file of `/proc`.
type ReadFn = fn() -> String;
/// Applies the text written to a knob of `/proc` (all of it, or nothing and an error).
type WriteFn = fn(&str) -> Result<(), FsError>;
/// Makes the text of a file of `/proc/PID` (`None`: no such process).
type PidReadFn = fn(u64) -> Option<String>;
/// Applies the text written to a knob of `/proc/PID`.
type PidWriteFn = fn(u64, &str) -> Result<(), FsError>;

/// A file below `/proc`: its path from `/proc`, how to read it, how to write it.
struct ProcFile {
    path: &'static str,
    read: ReadFn,
    write: Option<WriteFn>,
}

/// A file of each `/proc/PID`.
struct PidFile {
    name: &'static str,
    read: PidReadFn,
    write: Option<PidWriteFn>,
}

/// A read-only file below `/proc`.
const fn file(path: &'static str, read: ReadFn) -> ProcFile {
    ProcFile { path, read, write: None }
}

/// A knob below `/proc`: read and written.
const fn knob(path: &'static str, read: ReadFn, write: WriteFn) -> ProcFile {
    ProcFile { path, read, write: Some(write) }
}

/// A read-only file of `/proc/PID`.
const fn pid_file(name: &'static str, read: PidReadFn) -> PidFile {
    PidFile { name, read, write: None }
}

/// Every file below `/proc` (not the pid directories), one line each.
const FILES: &[ProcFile] = &[
    file("meminfo", meminfo::meminfo),
    file("vmstat", system::vmstat),
    file("buddyinfo", system::buddyinfo),
    file("zoneinfo", system::zoneinfo),
    file("pcpinfo", system::pcpinfo),
    file("slabmaginfo", system::slabmaginfo),
    file("lock_stat", system::lock_stat),
    file("swaps", system::swaps),
    file("diskstats", system::diskstats),
    file("slabinfo", system::slabinfo),
    file("stat", system::stat),
    file("uptime", system::uptime),
    file("loadavg", system::loadavg),
    knob("sys/vm/page_replacement", sys_vm::page_replacement, sys_vm::set_page_replacement),
    knob("sys/vm/page-cluster", sys_vm::page_cluster, sys_vm::set_page_cluster),
    knob("sys/vm/read_ahead_kb", sys_vm::read_ahead_kb, sys_vm::set_read_ahead_kb),
    knob("sys/vm/drop_caches", sys_vm::drop_caches, sys_vm::set_drop_caches),
    knob("sys/vm/fault_around_bytes", crate::fs::drop_caches::fault_around_read, crate::fs::drop_caches::fault_around_write),
    knob("sys/vm/transparent_hugepage", sys_vm::transparent_hugepage, sys_vm::set_transparent_hugepage),
    knob("sys/vm/load_control", sys_vm::load_control, sys_vm::set_load_control),
    knob("sys/vm/watermark_scale_factor", sys_vm::watermark_scale_factor, sys_vm::set_watermark_scale_factor),
    knob("sys/vm/vms_resident_limit", sys_vm::vms_resident_limit, sys_vm::set_vms_resident_limit),
];

/// The files of each `/proc/PID`, one line each.
const PID_FILES: &[PidFile] = &[
    pid_file("status", pid::status),
    pid_file("maps", pid::maps),
    pid_file("smaps", smaps::smaps),
    pid_file("smaps_rollup", smaps::smaps_rollup),
    pid_file("stat", pid::stat),
    pid_file("statm", pid::statm),
    pid_file("oom_score", pid::oom_score),
    PidFile { name: "oom_score_adj", read: pid::oom_score_adj, write: Some(pid::set_oom_score_adj) },
    PidFile { name: "vms_limit", read: pid::vms_limit, write: Some(pid::set_vms_limit) },
];

/// A procfs inode.
enum ProcInode {
    /// `/proc` (prefix `""`) or a directory below it such as `sys/vm`.
    Dir(&'static str),
    /// `/proc/PID`.
    PidDir(u64),
    /// A file of `/proc`: index into [`FILES`].
    File(usize),
    /// A file of `/proc/PID`: pid and index into [`PID_FILES`].
    PidFile(u64, usize),
    /// `/proc/kpageflags`, binary (not a text file of [`FILES`]).
    KPageFlags,
}

/// Returns the root of a procfs.
pub fn new_root() -> InodeRef {
    Arc::new(ProcInode::Dir(""))
}

/// Returns `path` below the directory `prefix` (`""`: the root), or `None` if it is not below it.
fn below<'a>(prefix: &str, path: &'a str) -> Option<&'a str> {
    if prefix.is_empty() {
        return Some(path);
    }
    path.strip_prefix(prefix)?.strip_prefix('/')
}

/// Returns the entries of the directory `prefix` from [`FILES`]: each name once,
/// with `Some(index)` for a file and `None` for a subdirectory (and the prefix of
/// that subdirectory).
fn dir_entries(prefix: &'static str) -> Vec<(&'static str, Result<usize, &'static str>)> {
    let mut entries: Vec<(&'static str, Result<usize, &'static str>)> = Vec::new();
    for (i, f) in FILES.iter().enumerate() {
        let Some(rest) = below(prefix, f.path) else { continue };
        match rest.split_once('/') {
            None => entries.push((rest, Ok(i))),
            Some((dir, _)) => {
                if !entries.iter().any(|(n, _)| *n == dir) {
                    let sub_len = f.path.len() - rest.len() + dir.len();
                    entries.push((dir, Err(&f.path[..sub_len])));
                }
            }
        }
    }
    entries
}

/// Returns the inode number of the directory `prefix`.
fn dir_ino(prefix: &str) -> u64 {
    if prefix.is_empty() {
        return ROOT_INO;
    }
    let first = FILES.iter().position(|f| below(prefix, f.path).is_some()).unwrap_or(0);
    DIR_INO_BASE + first as u64
}

/// Returns the parent directory of `prefix` (`""` for a top-level directory).
fn parent(prefix: &'static str) -> &'static str {
    prefix.rsplit_once('/').map_or("", |(up, _)| up)
}

impl ProcInode {
    fn ino(&self) -> u64 {
        match *self {
            ProcInode::Dir(prefix) => dir_ino(prefix),
            ProcInode::File(i) => 2 + i as u64,
            ProcInode::PidDir(pid) => pid << 8,
            ProcInode::PidFile(pid, i) => (pid << 8) | (1 + i as u64),
            ProcInode::KPageFlags => DIR_INO_BASE - 1,
        }
    }

    fn is_dir(&self) -> bool {
        matches!(self, ProcInode::Dir(_) | ProcInode::PidDir(_))
    }

    fn is_writable(&self) -> bool {
        match *self {
            ProcInode::File(i) => FILES[i].write.is_some(),
            ProcInode::PidFile(_, i) => PID_FILES[i].write.is_some(),
            _ => false,
        }
    }

    /// Makes the file's text now; `None` if its process is gone.
    fn text(&self) -> Option<String> {
        match *self {
            ProcInode::File(i) => Some((FILES[i].read)()),
            ProcInode::PidFile(pid, i) => (PID_FILES[i].read)(pid),
            _ => None,
        }
    }
}

/// Returns the pids of live user processes (one per process: its threads other
/// than the leader are left out, as Linux lists only thread-group ids).
fn user_pids() -> Vec<u64> {
    task::TASKS.lock().values().filter(|t| !t.is_daemon && t.pid != 0 && t.pid == t.tgid).map(|t| t.pid).collect()
}

/// Looks `name` up in the directory `prefix`.
fn lookup_in_dir(prefix: &'static str, name: &str) -> Result<InodeRef, FsError> {
    match name {
        "." => return Ok(Arc::new(ProcInode::Dir(prefix))),
        ".." if prefix.is_empty() => return Ok(super::root()),
        ".." => return Ok(Arc::new(ProcInode::Dir(parent(prefix)))),
        "self" if prefix.is_empty() => return Ok(Arc::new(ProcInode::PidDir(task::current_tgid()))),
        "kpageflags" if prefix.is_empty() => return Ok(Arc::new(ProcInode::KPageFlags)),
        _ => {}
    }
    if let Some((_, entry)) = dir_entries(prefix).into_iter().find(|(n, _)| *n == name) {
        return Ok(match entry {
            Ok(i) => Arc::new(ProcInode::File(i)),
            Err(sub) => Arc::new(ProcInode::Dir(sub)),
        });
    }
    if !prefix.is_empty() {
        return Err(FsError::NotFound);
    }
    let pid: u64 = name.parse().map_err(|_| FsError::NotFound)?;
    if !task::is_live_user_process(pid) {
        return Err(FsError::NotFound);
    }
    Ok(Arc::new(ProcInode::PidDir(pid)))
}

impl Inode for ProcInode {
    fn stat(&self) -> InodeStat {
        let (mode, nlink) = if self.is_dir() {
            (abi::mode::S_IFDIR | 0o555, 2)
        } else if self.is_writable() {
            (abi::mode::S_IFREG | 0o644, 1)
        } else {
            (abi::mode::S_IFREG | 0o444, 1)
        };
        let size = if matches!(self, ProcInode::KPageFlags) { kpageflags::size() } else { 0 };
        InodeStat { dev: PROC_DEV, ino: self.ino(), mode, nlink, size, ..Default::default() }
    }

    fn kind(&self) -> FileKind {
        if self.is_dir() { FileKind::Directory } else { FileKind::Regular }
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, FsError> {
        match self {
            ProcInode::Dir(prefix) => lookup_in_dir(prefix, name),
            ProcInode::PidDir(pid) => match name {
                "." => Ok(Arc::new(ProcInode::PidDir(*pid))),
                ".." => Ok(new_root()),
                _ => {
                    let i = PID_FILES.iter().position(|f| f.name == name).ok_or(FsError::NotFound)?;
                    Ok(Arc::new(ProcInode::PidFile(*pid, i)))
                }
            },
            _ => Err(FsError::NotDirectory),
        }
    }

    fn create(&self, _name: &str, _perm: u32) -> Result<InodeRef, FsError> {
        Err(FsError::Invalid)
    }

    fn mkdir(&self, _name: &str, _perm: u32) -> Result<InodeRef, FsError> {
        Err(FsError::Invalid)
    }

    fn unlink(&self, _name: &str) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }

    fn rmdir(&self, _name: &str) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }

    fn rename(&self, _old_name: &str, _new_dir: &InodeRef, _new_name: &str) -> Result<(), FsError> {
        Err(FsError::CrossDevice)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        if self.is_dir() {
            return Err(FsError::IsDirectory);
        }
        if matches!(self, ProcInode::KPageFlags) {
            return Ok(kpageflags::read_at(offset, buf));
        }
        let text = self.text().ok_or(FsError::NotFound)?;
        let bytes = text.as_bytes();
        let start = (offset as usize).min(bytes.len());
        let n = (bytes.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    /// Hands the written text to the knob's write function: one write is one
    /// value (as with Linux's sysctl files, `echo VALUE > knob`); the offset is
    /// ignored.
    fn write_at(&self, _offset: u64, buf: &[u8]) -> Result<usize, FsError> {
        let text = core::str::from_utf8(buf).map_err(|_| FsError::Invalid)?;
        match *self {
            ProcInode::File(i) => (FILES[i].write.ok_or(FsError::Invalid)?)(text)?,
            ProcInode::PidFile(pid, i) => {
                let write = PID_FILES[i].write.ok_or(FsError::Invalid)?;
                if !task::is_live_user_process(pid) {
                    return Err(FsError::NotFound);
                }
                write(pid, text)?
            }
            _ => return Err(FsError::Invalid),
        }
        Ok(buf.len())
    }

    fn append(&self, buf: &[u8]) -> Result<(usize, u64), FsError> {
        self.write_at(0, buf).map(|n| (n, 0))
    }

    /// A knob may be opened with `O_TRUNC` (a shell's `>`): nothing to cut.
    fn truncate(&self, _size: u64) -> Result<(), FsError> {
        if self.is_writable() { Ok(()) } else { Err(FsError::Invalid) }
    }

    fn getdents(&self, pos: u64, emit: &mut dyn FnMut(DirEntry<'_>) -> bool) -> Result<u64, FsError> {
        let mut names: Vec<(String, u64, FileKind)> = Vec::new();
        match self {
            ProcInode::Dir(prefix) => {
                let up = if prefix.is_empty() { ROOT_INO } else { dir_ino(parent(prefix)) };
                names.push((".".into(), self.ino(), FileKind::Directory));
                names.push(("..".into(), up, FileKind::Directory));
                for (name, entry) in dir_entries(prefix) {
                    names.push(match entry {
                        Ok(i) => (name.into(), ProcInode::File(i).ino(), FileKind::Regular),
                        Err(sub) => (name.into(), dir_ino(sub), FileKind::Directory),
                    });
                }
                if prefix.is_empty() {
                    names.push(("kpageflags".into(), ProcInode::KPageFlags.ino(), FileKind::Regular));
                    for pid in user_pids() {
                        names.push((format!("{pid}"), pid << 8, FileKind::Directory));
                    }
                }
            }
            ProcInode::PidDir(pid) => {
                names.push((".".into(), self.ino(), FileKind::Directory));
                names.push(("..".into(), ROOT_INO, FileKind::Directory));
                for (i, f) in PID_FILES.iter().enumerate() {
                    names.push((f.name.into(), ProcInode::PidFile(*pid, i).ino(), FileKind::Regular));
                }
            }
            _ => return Err(FsError::NotDirectory),
        }
        let mut at = pos;
        for (name, ino, kind) in names.iter().skip(pos as usize) {
            if !emit(DirEntry { name, ino: *ino, kind: *kind }) {
                break;
            }
            at += 1;
        }
        Ok(at)
    }

    fn sync(&self) -> Result<(), FsError> {
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// KiB in `nr_pages` pages.
fn kb(nr_pages: u64) -> u64 {
    nr_pages * (PAGE_SIZE / 1024)
}
