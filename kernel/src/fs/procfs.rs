//! procfs, mounted at `/proc`: the kernel's counters as text files, in Linux's
//! field names and layouts, so that what a student knows of Linux (and a Linux
//! tool's parser) works here.
//!
//! ```text
//!  /proc/meminfo     MemTotal, MemFree, MemAvailable, SwapTotal, SwapFree, ...  (kB)
//!  /proc/vmstat      pgfault, pgmajfault, pswpin, pswpout, pgscan, pgsteal, ...
//!  /proc/buddyinfo   free blocks of each order, one line per zone (one zone here)
//!  /proc/swaps       the swap area: size and used, in KiB
//!  /proc/PID/status  Name, State, PPid, VmSize, VmRSS, RssAnon, VmSwap, ...
//!  /proc/PID/maps    one line per VMA: start-end perms offset dev inode name
//!  /proc/sys/vm/drop_caches         write 1 or 3: drop clean page-cache pages (`fs/drop_caches.rs`)
//!  /proc/sys/vm/fault_around_bytes  4096 (off) or 65536 (on): fault-around of file mappings
//! ```
//! A file's text is made when it is read, from the same counters the kernel's own
//! tests read (`frame::buddyinfo`, `vmstat`, `swap::slot_counts`, an address
//! space's `AsStats` and VMAs); each `read_at` makes it afresh and returns the
//! bytes at the offset asked, so a reader in several pieces may see two moments
//! (Linux's seq_file has the same property between its pages). Everything but the
//! knobs of `/proc/sys/vm` ([`VM_KNOBS`]) is read-only: a write is EINVAL (Linux says EIO or EACCES; the VFS has no
//! permission error yet).
//!
//! The mount: `fs::path` sends the name `proc` in the root directory here
//! ([`super::lookup_mount`]); `..` of `/proc` is `/`.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::any::Any;
use core::fmt::Write;

use super::{DirEntry, FileKind, FsError, Inode, InodeRef, InodeStat};
use crate::mm::vmstat::{self, SwapEvent};
use crate::mm::{PAGE_SIZE, fault::FaultOutcome, frame, swap};
use crate::proc::task::{self, TaskState};

/// The device number procfs reports.
const PROC_DEV: u64 = 3;
/// Inode numbers: 1 the root, then the files of the root, then `PID << 8 | n`.
const ROOT_INO: u64 = 1;

/// A file of `/proc`: its name and what makes its text.
type RootFile = (&'static str, fn() -> String);
/// A file of `/proc/PID`: its name and what makes its text (`None`: no such process).
type PidFile = (&'static str, fn(u64) -> Option<String>);

/// The files of `/proc` itself.
const ROOT_FILES: [RootFile; 4] =
    [("meminfo", meminfo), ("vmstat", vmstat_text), ("buddyinfo", buddyinfo), ("swaps", swaps)];
/// A knob of `/proc/sys/vm`: its name, what makes its text, what applies a write.
type VmKnob = (&'static str, fn() -> String, fn(&str) -> Result<(), FsError>);

/// The knobs of `/proc/sys/vm`.
const VM_KNOBS: [VmKnob; 2] = [
    ("drop_caches", super::drop_caches::read, super::drop_caches::write),
    ("fault_around_bytes", super::drop_caches::fault_around_read, super::drop_caches::fault_around_write),
];

/// The files of `/proc/PID`.
const PID_FILES: [PidFile; 2] = [("status", status), ("maps", maps)];

/// A procfs inode.
enum ProcInode {
    /// `/proc`.
    Root,
    /// `/proc/PID`.
    PidDir(u64),
    /// A file of `/proc`: index into [`ROOT_FILES`].
    RootFile(usize),
    /// A file of `/proc/PID`: pid and index into [`PID_FILES`].
    PidFile(u64, usize),
    /// `/proc/sys` (false) or `/proc/sys/vm` (true).
    SysDir(bool),
    /// A knob of `/proc/sys/vm`: index into [`VM_KNOBS`].
    VmKnob(usize),
}

/// Returns the root of a procfs.
pub fn new_root() -> InodeRef {
    Arc::new(ProcInode::Root)
}

impl ProcInode {
    fn ino(&self) -> u64 {
        match *self {
            ProcInode::Root => ROOT_INO,
            ProcInode::RootFile(i) => 2 + i as u64,
            ProcInode::PidDir(pid) => pid << 8,
            ProcInode::PidFile(pid, i) => (pid << 8) | (1 + i as u64),
            ProcInode::SysDir(is_vm) => 2 + ROOT_FILES.len() as u64 + u64::from(is_vm),
            ProcInode::VmKnob(i) => 4 + ROOT_FILES.len() as u64 + i as u64,
        }
    }

    /// Makes the file's text now; `None` if its process is gone.
    fn text(&self) -> Option<String> {
        match *self {
            ProcInode::RootFile(i) => Some((ROOT_FILES[i].1)()),
            ProcInode::PidFile(pid, i) => (PID_FILES[i].1)(pid),
            ProcInode::VmKnob(i) => Some((VM_KNOBS[i].1)()),
            _ => None,
        }
    }
}

/// Returns the pids of live user processes.
fn user_pids() -> alloc::vec::Vec<u64> {
    task::TASKS.lock().values().filter(|t| !t.is_daemon && t.pid != 0).map(|t| t.pid).collect()
}

impl Inode for ProcInode {
    fn stat(&self) -> InodeStat {
        let (mode, nlink) = match self {
            ProcInode::Root | ProcInode::PidDir(_) | ProcInode::SysDir(_) => (abi::mode::S_IFDIR | 0o555, 2),
            ProcInode::VmKnob(_) => (abi::mode::S_IFREG | 0o644, 1),
            _ => (abi::mode::S_IFREG | 0o444, 1),
        };
        InodeStat { dev: PROC_DEV, ino: self.ino(), mode, nlink, ..Default::default() }
    }

    fn kind(&self) -> FileKind {
        match self {
            ProcInode::Root | ProcInode::PidDir(_) | ProcInode::SysDir(_) => FileKind::Directory,
            _ => FileKind::Regular,
        }
    }

    fn lookup(&self, name: &str) -> Result<InodeRef, FsError> {
        match self {
            ProcInode::Root => match name {
                "." => Ok(new_root()),
                ".." => Ok(super::root()),
                "self" => Ok(Arc::new(ProcInode::PidDir(task::current_pid()))),
                "sys" => Ok(Arc::new(ProcInode::SysDir(false))),
                _ => {
                    if let Some(i) = ROOT_FILES.iter().position(|(n, _)| *n == name) {
                        return Ok(Arc::new(ProcInode::RootFile(i)));
                    }
                    let pid: u64 = name.parse().map_err(|_| FsError::NotFound)?;
                    if !task::is_live_user_process(pid) {
                        return Err(FsError::NotFound);
                    }
                    Ok(Arc::new(ProcInode::PidDir(pid)))
                }
            },
            ProcInode::PidDir(pid) => match name {
                "." => Ok(Arc::new(ProcInode::PidDir(*pid))),
                ".." => Ok(new_root()),
                _ => {
                    let i = PID_FILES.iter().position(|(n, _)| *n == name).ok_or(FsError::NotFound)?;
                    Ok(Arc::new(ProcInode::PidFile(*pid, i)))
                }
            },
            ProcInode::SysDir(is_vm) => match (name, is_vm) {
                (".", _) => Ok(Arc::new(ProcInode::SysDir(*is_vm))),
                ("..", false) => Ok(new_root()),
                ("..", true) | ("vm", false) => Ok(Arc::new(ProcInode::SysDir(!*is_vm))),
                (_, true) => {
                    let i = VM_KNOBS.iter().position(|(n, _, _)| *n == name).ok_or(FsError::NotFound)?;
                    Ok(Arc::new(ProcInode::VmKnob(i)))
                }
                _ => Err(FsError::NotFound),
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
        if self.kind() == FileKind::Directory {
            return Err(FsError::IsDirectory);
        }
        let text = self.text().ok_or(FsError::NotFound)?;
        let bytes = text.as_bytes();
        let start = (offset as usize).min(bytes.len());
        let n = (bytes.len() - start).min(buf.len());
        buf[..n].copy_from_slice(&bytes[start..start + n]);
        Ok(n)
    }

    /// Only the knobs take writes: one write is one value, the offset ignored.
    fn write_at(&self, _offset: u64, buf: &[u8]) -> Result<usize, FsError> {
        let ProcInode::VmKnob(i) = *self else { return Err(FsError::Invalid) };
        (VM_KNOBS[i].2)(core::str::from_utf8(buf).map_err(|_| FsError::Invalid)?)?;
        Ok(buf.len())
    }

    fn append(&self, buf: &[u8]) -> Result<(usize, u64), FsError> {
        self.write_at(0, buf).map(|n| (n, 0))
    }

    fn truncate(&self, _size: u64) -> Result<(), FsError> {
        Err(FsError::Invalid)
    }

    fn getdents(&self, pos: u64, emit: &mut dyn FnMut(DirEntry<'_>) -> bool) -> Result<u64, FsError> {
        let mut names: alloc::vec::Vec<(String, u64, FileKind)> =
            alloc::vec![(".".into(), self.ino(), FileKind::Directory), ("..".into(), ROOT_INO, FileKind::Directory)];
        match self {
            ProcInode::Root => {
                for (i, (name, _)) in ROOT_FILES.iter().enumerate() {
                    names.push(((*name).into(), ProcInode::RootFile(i).ino(), FileKind::Regular));
                }
                names.push(("sys".into(), ProcInode::SysDir(false).ino(), FileKind::Directory));
                for pid in user_pids() {
                    names.push((format!("{pid}"), pid << 8, FileKind::Directory));
                }
            }
            ProcInode::SysDir(false) => names.push(("vm".into(), ProcInode::SysDir(true).ino(), FileKind::Directory)),
            ProcInode::SysDir(true) => {
                for (i, (name, _, _)) in VM_KNOBS.iter().enumerate() {
                    names.push(((*name).into(), ProcInode::VmKnob(i).ino(), FileKind::Regular));
                }
            }
            ProcInode::PidDir(pid) => {
                for (i, (name, _)) in PID_FILES.iter().enumerate() {
                    names.push(((*name).into(), ProcInode::PidFile(*pid, i).ino(), FileKind::Regular));
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

/// `/proc/meminfo`. MemAvailable is free memory plus what reclaim can drop without
/// I/O (here: nothing is counted beyond free: there is no page cache yet). The
/// fields this kernel has no such memory for (Buffers, Cached, ...) are 0, as on
/// a Linux with none of it; they are kept so that parsers find them.
fn meminfo() -> String {
    let info = frame::buddyinfo();
    let (free_slots, total_slots) = swap::slot_counts();
    let mut text = String::new();
    let mut line = |name: &str, value_kb: u64| {
        let _ = writeln!(text, "{:<16}{:>8} kB", format!("{name}:"), value_kb);
    };
    line("MemTotal", kb(info.nr_managed_frames));
    line("MemFree", kb(info.nr_free_frames));
    line("MemAvailable", kb(info.nr_free_frames));
    line("Buffers", 0);
    line("Cached", 0);
    line("SwapCached", 0);
    line("SwapTotal", kb(total_slots));
    line("SwapFree", kb(free_slots));
    line("Dirty", 0);
    line("Writeback", 0);
    line("AnonPages", kb(total_rss_pages()));
    line("Mapped", 0);
    line("Shmem", 0);
    text
}

/// Returns the resident pages of every live user process, summed.
fn total_rss_pages() -> u64 {
    let spaces: alloc::vec::Vec<_> = task::TASKS.lock().values().filter_map(|t| t.space.clone()).collect();
    spaces.iter().map(|s| s.lock().stats.rss_pages).sum()
}

/// `/proc/vmstat`: `name value` lines, Linux's names.
fn vmstat_text() -> String {
    let faults = |outcome| vmstat::nr_faults(outcome);
    let all_faults: u64 = [
        FaultOutcome::AnonymousPage,
        FaultOutcome::ZeroPage,
        FaultOutcome::ImagePage,
        FaultOutcome::CowCopy,
        FaultOutcome::CowReuse,
        FaultOutcome::SharedWrite,
        FaultOutcome::StackGrowth,
        FaultOutcome::Spurious,
        FaultOutcome::SwapIn,
        FaultOutcome::SwapCacheHit,
    ]
    .into_iter()
    .map(faults)
    .sum();
    let info = frame::buddyinfo();
    let rows = [
        ("nr_free_pages", info.nr_free_frames),
        ("pgfault", all_faults),
        ("pgmajfault", faults(FaultOutcome::SwapIn)),
        ("pswpin", vmstat::nr_events(SwapEvent::SwapIn)),
        ("pswpout", vmstat::nr_events(SwapEvent::SwapOut)),
        ("pgscan", vmstat::nr_events(SwapEvent::Scanned)),
        ("pgsteal", vmstat::nr_events(SwapEvent::SwapOut) + vmstat::nr_events(SwapEvent::ReclaimedClean)),
        ("pgscan_kswapd_passes", vmstat::nr_events(SwapEvent::BackgroundReclaim)),
        ("pgscan_direct_passes", vmstat::nr_events(SwapEvent::DirectReclaim)),
        ("oom_kill", vmstat::nr_events(SwapEvent::OomKill)),
    ];
    let mut text = String::new();
    for (name, value) in rows {
        let _ = writeln!(text, "{name} {value}");
    }
    text
}

/// `/proc/buddyinfo`: free blocks of each order 0..=10 in the one zone.
fn buddyinfo() -> String {
    let info = frame::buddyinfo();
    let mut text = String::from("Node 0, zone   Normal ");
    for nr_blocks in info.nr_free_blocks {
        let _ = write!(text, "{nr_blocks:>6} ");
    }
    text.push('\n');
    text
}

/// `/proc/swaps`: the header line and one line for the swap disk (sizes in KiB).
fn swaps() -> String {
    let (free_slots, total_slots) = swap::slot_counts();
    let mut text = String::from("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
    if total_slots > 0 {
        let _ = writeln!(
            text,
            "{:<40}partition\t{}\t\t{}\t\t-2",
            "/dev/vda",
            kb(total_slots),
            kb(total_slots - free_slots)
        );
    }
    text
}

/// `/proc/PID/status`: the lines of Linux's that this kernel has.
fn status(pid: u64) -> Option<String> {
    let (name, state, ppid, space) = {
        let tasks = task::TASKS.lock();
        let t = tasks.get(&pid)?;
        let state = match t.state {
            TaskState::Zombie(_) => "Z (zombie)",
            TaskState::Runnable => "R (running)",
            _ => "S (sleeping)",
        };
        (t.name.clone(), state, t.parent, t.space.clone())
    };
    let (size_pages, rss, swap_pages) = match &space {
        Some(space) => {
            let space = space.lock();
            let size: u64 = space.vmas().iter().map(|v| v.nr_pages()).sum();
            (size, space.stats.rss_pages, space.stats.swap_pages)
        }
        None => (0, 0, 0),
    };
    let mut text = String::new();
    let _ = writeln!(text, "Name:\t{name}");
    let _ = writeln!(text, "State:\t{state}");
    let _ = writeln!(text, "Pid:\t{pid}");
    let _ = writeln!(text, "PPid:\t{ppid}");
    let _ = writeln!(text, "VmSize:\t{:>8} kB", kb(size_pages));
    let _ = writeln!(text, "VmRSS:\t{:>8} kB", kb(rss));
    let _ = writeln!(text, "RssAnon:\t{:>8} kB", kb(rss));
    let _ = writeln!(text, "RssFile:\t{:>8} kB", 0);
    let _ = writeln!(text, "VmSwap:\t{:>8} kB", kb(swap_pages));
    Some(text)
}

/// `/proc/PID/maps`: `start-end perms offset dev inode name`, Linux's columns.
fn maps(pid: u64) -> Option<String> {
    let space = task::TASKS.lock().get(&pid)?.space.clone()?;
    let space = space.lock();
    let mut text = String::new();
    for vma in space.vmas().iter() {
        let line = format!("{vma}");
        // `{vma}` is "start-end perms backing [tag]"; Linux puts offset, device and
        // inode between the permissions and the name.
        let mut words = line.split(' ');
        let range = words.next().unwrap_or("");
        let perms = words.next().unwrap_or("");
        let rest: alloc::vec::Vec<&str> = words.collect();
        let name = rest.iter().find(|w| w.starts_with('[')).copied().unwrap_or("");
        let _ = writeln!(text, "{range} {perms} 00000000 00:00 0 {name}");
    }
    Some(text)
}
