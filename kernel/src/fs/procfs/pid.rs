//! The files of `/proc/PID`: `status` and `maps`.

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::kb;
use crate::proc::task::{self, TaskState};

/// `/proc/PID/status`: the lines of Linux's that this kernel has.
pub(super) fn status(pid: u64) -> Option<String> {
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
pub(super) fn maps(pid: u64) -> Option<String> {
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
