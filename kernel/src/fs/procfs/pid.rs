//! The files of `/proc/PID`: `status`, `maps`, `stat`, `statm`, `oom_score` and
//! the knobs `oom_score_adj` and `vms_limit` (smaps: `smaps.rs`).

use alloc::format;
use alloc::string::String;
use core::fmt::Write;

use super::kb;
use mm_core::vma::{Vma, VmFlags, VmProt};

use crate::fs::FsError;
use crate::mm::frame::{self, FrameFlags};
use crate::mm::reclaim::resident_limit;
use crate::mm::{PAGE_SIZE, fault, oom};
use crate::proc::task::{self, TaskState};

/// Returns the resident pages of process `pid` that are page-cache pages (frame
/// flag FILE), walking its page table; 0 for the zero page and anonymous pages.
fn file_rss_pages(space: &crate::mm::addr_space::AddressSpace) -> u64 {
    let zero = fault::zero_frame();
    let mut nr_pages = 0;
    space.for_each_user_leaf(|_, pte, size| {
        if pte.is_present()
            && pte.frame() != zero
            && frame::with_desc(pte.frame(), |d| d.has_flags(FrameFlags::FILE))
        {
            nr_pages += size.size_bytes() / PAGE_SIZE;
        }
    });
    nr_pages
}

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
    let (size_pages, rss, file_pages, shmem_pages, swap_pages, own_limit, id) = match &space {
        Some(space) => {
            let space = space.lock();
            let size: u64 = space.vmas().iter().map(|v| v.nr_pages()).sum();
            let shmem_pages = super::smaps::shmem_in(&space).0;
            let own_limit = space.wss.resident_limit;
            (size, space.stats.rss_pages, file_rss_pages(&space), shmem_pages, space.stats.swap_pages, own_limit, space.id())
        }
        None => (0, 0, 0, 0, 0, 0, 0),
    };
    let mut text = String::new();
    let _ = writeln!(text, "Name:\t{name}");
    let _ = writeln!(text, "State:\t{state}");
    let _ = writeln!(text, "Tgid:\t{pid}");
    let _ = writeln!(text, "Pid:\t{pid}");
    let _ = writeln!(text, "PPid:\t{ppid}");
    let _ = writeln!(text, "VmSize:\t{:>8} kB", kb(size_pages));
    let _ = writeln!(text, "VmRSS:\t{:>8} kB", kb(rss));
    // RssAnon + RssFile + RssShmem = VmRSS, as on Linux: the pages of shared
    // anonymous mappings are shmem's, not anonymous.
    let _ = writeln!(text, "RssAnon:\t{:>8} kB", kb(rss.saturating_sub(file_pages + shmem_pages)));
    let _ = writeln!(text, "RssFile:\t{:>8} kB", kb(file_pages));
    let _ = writeln!(text, "RssShmem:\t{:>8} kB", kb(shmem_pages));
    let _ = writeln!(text, "VmSwap:\t{:>8} kB", kb(swap_pages));
    let _ = writeln!(text, "Threads:\t{}", crate::proc::thread::threads_of(pid).0.max(1));
    // Ours (policy=vms): the resident-set limit and the pages in the process's own
    // FIFO now (0 under another policy), in pages.
    let nr_in_set = resident_limit::resident_set_of(id).map_or(0, |(nr, _)| nr);
    let _ = writeln!(text, "VmsLimit:\t{:>8} pages", resident_limit::effective_limit(own_limit));
    let _ = writeln!(text, "VmsResident:\t{nr_in_set:>8} pages");
    Some(text)
}

/// `/proc/PID/maps`: `start-end perms offset dev inode name`, Linux's columns.
pub(super) fn maps(pid: u64) -> Option<String> {
    let space = task::TASKS.lock().get(&pid)?.space.clone()?;
    let space = space.lock();
    let mut text = String::new();
    for vma in space.vmas().iter() {
        let _ = writeln!(text, "{}", maps_line(vma));
    }
    Some(text)
}

/// Returns the maps line of `vma` (also the head of its smaps entry).
pub(super) fn maps_line(vma: &Vma) -> String {
    let line = format!("{vma}");
    // `{vma}` is "start-end perms backing [tag]"; Linux puts offset, device and
    // inode between the permissions and the name.
    let mut words = line.split(' ');
    let range = words.next().unwrap_or("");
    let perms = words.next().unwrap_or("");
    let rest: alloc::vec::Vec<&str> = words.collect();
    let name = rest.iter().find(|w| w.starts_with('[')).copied().unwrap_or("");
    format!("{range} {perms} 00000000 00:00 0 {name}")
}

/// What `stat` and `statm` need of a process, taken under its locks once.
struct ProcessView {
    name: String,
    state: char,
    ppid: u64,
    times: task::CpuTimes,
    sigmask: u64,
    oom_score_adj: i16,
    size_pages: u64,
    rss_pages: u64,
    file_pages: u64,
    shmem_pages: u64,
    swap_pages: u64,
    text_pages: u64,
    data_pages: u64,
    minor_faults: u64,
    major_faults: u64,
    code: (u64, u64),
    stack_top: u64,
}

/// Returns the view of process `pid`, or `None` if there is no such process.
fn view(pid: u64) -> Option<ProcessView> {
    let (name, state, ppid, times, sigmask, oom_score_adj, space) = {
        let tasks = task::TASKS.lock();
        let t = tasks.get(&pid)?;
        let state = match t.state {
            TaskState::Zombie(_) => 'Z',
            TaskState::Runnable => 'R',
            _ => 'S',
        };
        (t.name.clone(), state, t.parent, t.times, t.sigmask, t.oom_score_adj, t.space.clone()?)
    };
    let space = space.lock();
    let vmas = space.vmas();
    let size_pages = vmas.iter().map(|v| v.nr_pages()).sum();
    let text_pages = vmas.iter().filter(|v| v.prot.contains(VmProt::EXEC)).map(|v| v.nr_pages()).sum();
    // Linux's VmData: private writable mappings that are not the stack.
    let data_pages = vmas
        .iter()
        .filter(|v| v.prot.contains(VmProt::WRITE) && !v.flags.is_shared() && !v.flags.contains(VmFlags::STACK))
        .map(|v| v.nr_pages())
        .sum();
    let code = vmas.iter().find(|v| v.prot.contains(VmProt::EXEC)).map_or((0, 0), |v| (v.start.as_u64(), v.end.as_u64()));
    let stack_top = vmas.iter().find(|v| v.flags.contains(VmFlags::STACK)).map_or(0, |v| v.end.as_u64());
    Some(ProcessView {
        name,
        state,
        ppid,
        times,
        sigmask,
        oom_score_adj,
        size_pages,
        rss_pages: space.stats.rss_pages,
        file_pages: file_rss_pages(&space),
        shmem_pages: super::smaps::shmem_in(&space).0,
        swap_pages: space.stats.swap_pages,
        text_pages,
        data_pages,
        minor_faults: space.stats.minor_faults,
        major_faults: space.stats.major_faults,
        code,
        stack_top,
    })
}

/// `/proc/PID/stat`: Linux's 52 fields on one line (`fs/proc/array.c`
/// `do_task_stat`). This kernel has no process groups, sessions, ttys, nice
/// values or threads: pgrp and session are the pid, tty 0, tpgid -1, priority
/// 20, nice 0, num_threads 1; fields of things it does not have are 0.
pub(super) fn stat(pid: u64) -> Option<String> {
    let v = view(pid)?;
    let rss_limit = u64::MAX; // RLIM_INFINITY
    let (start_code, end_code) = v.code;
    let fields: [&dyn core::fmt::Display; 50] = [
        &v.state,                  // 3 state
        &v.ppid,                   // 4 ppid
        &pid,                      // 5 pgrp
        &pid,                      // 6 session
        &0,                        // 7 tty_nr
        &-1,                       // 8 tpgid
        &0,                        // 9 flags
        &v.minor_faults,           // 10 minflt
        &0,                        // 11 cminflt
        &v.major_faults,           // 12 majflt
        &0,                        // 13 cmajflt
        &v.times.user_ticks,       // 14 utime (ticks of 1/100 s, Linux's USER_HZ)
        &v.times.system_ticks,     // 15 stime
        &0,                        // 16 cutime
        &0,                        // 17 cstime
        &20,                       // 18 priority
        &0,                        // 19 nice
        &1,                        // 20 num_threads
        &0,                        // 21 itrealvalue
        &v.times.start_tick,       // 22 starttime (ticks since boot)
        &(v.size_pages * PAGE_SIZE), // 23 vsize (bytes)
        &v.rss_pages,              // 24 rss (pages)
        &rss_limit,                // 25 rsslim
        &start_code,               // 26 startcode
        &end_code,                 // 27 endcode
        &v.stack_top,              // 28 startstack
        &0,                        // 29 kstkesp
        &0,                        // 30 kstkeip
        &0,                        // 31 signal
        &v.sigmask,                // 32 blocked
        &0,                        // 33 sigignore
        &0,                        // 34 sigcatch
        &0,                        // 35 wchan
        &0,                        // 36 nswap
        &0,                        // 37 cnswap
        &17,                       // 38 exit_signal (SIGCHLD)
        &0,                        // 39 processor
        &0,                        // 40 rt_priority
        &0,                        // 41 policy
        &0,                        // 42 delayacct_blkio_ticks
        &0,                        // 43 guest_time
        &0,                        // 44 cguest_time
        &0,                        // 45 start_data
        &0,                        // 46 end_data
        &0,                        // 47 start_brk
        &0,                        // 48 arg_start
        &0,                        // 49 arg_end
        &0,                        // 50 env_start
        &0,                        // 51 env_end
        &0,                        // 52 exit_code
    ];
    let mut text = format!("{pid} ({})", v.name);
    for field in fields {
        let _ = write!(text, " {field}");
    }
    text.push('\n');
    Some(text)
}

/// `/proc/PID/statm`: size resident shared text lib data dt, in pages (`shared`:
/// resident page-cache and shmem pages, Linux's RssFile + RssShmem; lib and dt
/// are 0 on Linux too).
pub(super) fn statm(pid: u64) -> Option<String> {
    let v = view(pid)?;
    let shared = v.file_pages + v.shmem_pages;
    Some(format!("{} {} {} {} 0 {} 0\n", v.size_pages, v.rss_pages, shared, v.text_pages, v.data_pages))
}

/// `/proc/PID/oom_score`: what the OOM killer thinks of it (`mm::oom::oom_score`, 0..=2000).
pub(super) fn oom_score(pid: u64) -> Option<String> {
    let v = view(pid)?;
    Some(format!("{}\n", oom::oom_score(v.rss_pages + v.swap_pages, v.oom_score_adj)))
}

/// `/proc/PID/oom_score_adj`: -1000..=1000, added to the badness in thousandths
/// of memory; -1000: never chosen.
pub(super) fn oom_score_adj(pid: u64) -> Option<String> {
    Some(format!("{}\n", view(pid)?.oom_score_adj))
}

/// Sets `oom_score_adj` (EINVAL outside -1000..=1000 or not a number: nothing changes).
pub(super) fn set_oom_score_adj(pid: u64, text: &str) -> Result<(), FsError> {
    let adj: i64 = text.trim().parse().map_err(|_| FsError::Invalid)?;
    task::set_oom_score_adj(pid, adj).map_err(|e| if e == abi::Errno::EINVAL { FsError::Invalid } else { FsError::NotFound })?;
    Ok(())
}

/// `/proc/PID/vms_limit`: the process's resident-set limit under `policy=vms`,
/// in pages (its own, or the default `/proc/sys/vm/vms_resident_limit`).
pub(super) fn vms_limit(pid: u64) -> Option<String> {
    let space = task::TASKS.lock().get(&pid)?.space.clone()?;
    let own = space.lock().wss.resident_limit;
    Some(format!("{}\n", resident_limit::effective_limit(own)))
}

/// Sets the process's own limit (0: back to the default); EINVAL below
/// `resident_limit::MIN_LIMIT` or not a number.
pub(super) fn set_vms_limit(pid: u64, text: &str) -> Result<(), FsError> {
    let nr_pages: u64 = text.trim().parse().map_err(|_| FsError::Invalid)?;
    let space = task::TASKS.lock().get(&pid).and_then(|t| t.space.clone()).ok_or(FsError::NotFound)?;
    if resident_limit::set_limit(&space, nr_pages) { Ok(()) } else { Err(FsError::Invalid) }
}
