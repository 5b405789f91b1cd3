//! execve(2): the running process becomes another program, read from a file.
//!
//! ```text
//!  execve(path, argv, envp)
//!   1. copy in: the path, then argv and envp (arrays of string pointers ending in
//!      NULL; a NULL array is empty) -- EFAULT for a bad pointer, E2BIG past 128 KiB
//!   2. find the file (ENOENT, ENOTDIR; EACCES for a directory), read its headers
//!      (a page; the whole file where it has no page cache)
//!   3. build the new address space from it (exec::load_mapped: the segments map
//!      the file's page cache; exec::load_file copies them where the file system
//!      has no page cache): ENOEXEC if it is not a static x86-64 ELF executable,
//!      ENOMEM if memory runs out
//!   -- nothing of the caller has changed until here: every error returns to it --
//!   4. the other threads of the process are killed, and the caller waits until
//!      each has exited (Linux's de_thread); a non-leader caller then stands for
//!      the process (its exit status is the one the parent reaps)
//!   5. commit: the task gets the new space, a fresh register state and the new
//!      name; CR3 switches; the old space is dropped (all its frames freed); the
//!      trap frame is replaced so that the syscall "returns" to the new entry point
//! ```
//!
//! Where the file has a page cache, exec reads only its first page, for the
//! headers ([`EXEC_HEAD_BYTES`]); its pages are then mapped from the page cache
//! lazily (`exec::load_mapped`): the text of a program run by ten processes is one
//! set of page-cache frames, the data segment is copied on its first write. A file
//! without one (or with a segment that cannot be mapped) is read whole and copied.
//! Open files stay open
//! (there is no `O_CLOEXEC` yet); the cwd stays.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use abi::Errno;
use mm_core::elf;

use super::exec;
use super::path_syscall::user_path;
use super::task::{self, SpawnError};
use super::uaccess::copy_from_user;
use crate::arch::trap::TrapFrame;
use crate::arch::user_state::UserState;
use crate::fs::{FileKind, InodeRef, path};

/// The most bytes argv and envp may hold together, NULs included (Linux allows a
/// quarter of the stack limit; ours is the 64 KiB initial stack's reach, doubled).
pub const MAX_ARG_BYTES: usize = 128 * 1024;
/// The most strings argv and envp may hold together.
pub const MAX_ARG_STRINGS: usize = 4096;
/// The largest executable file exec reads (a bigger one is refused with ENOMEM).
pub const MAX_EXEC_FILE_BYTES: u64 = 64 << 20;
/// What exec reads first: the ELF header and the program headers (Linux reads 256
/// bytes, `BINPRM_BUF_SIZE`, then the program headers). Where the segments map the
/// page cache, nothing more is read into the kernel: reading a 45 KiB program whole
/// took a 64 KiB contiguous block, and with a memory hog on the other CPU the
/// buddy allocator had none ("sh: trace: ENOMEM" in the walkthrough, `--smp 2`).
pub const EXEC_HEAD_BYTES: u64 = 4096;

/// execve(2). On success the syscall returns into the new program: `frame` is
/// replaced by its first frame (and the dispatcher's return value, 0, lands in
/// its `rax`, which starts at 0 anyway).
pub fn sys_execve(frame: &mut TrapFrame, path_addr: u64, argv_addr: u64, envp_addr: u64) -> Result<u64, Errno> {
    let path = user_path(path_addr)?;
    let mut budget = MAX_ARG_BYTES;
    let mut nr_strings = 0;
    let argv = user_strings(argv_addr, &mut budget, &mut nr_strings)?;
    let envp = user_strings(envp_addr, &mut budget, &mut nr_strings)?;
    let (inode, size) = find_executable(&path)?;
    let argv_refs: Vec<&str> = argv.iter().map(String::as_str).collect();
    let envp_refs: Vec<&str> = envp.iter().map(String::as_str).collect();
    // On a file system with a page cache the segments map the file (text shared
    // by every process running it), and exec reads only the headers (a page);
    // otherwise the whole file is read and copied in.
    let head = read_file(&inode, size.min(EXEC_HEAD_BYTES))?;
    let mappable = inode.page_cache().and_then(|cache| match elf::parse_headers(&head, size) {
        Ok(exe) if exec::can_map(&exe) => Some((cache, exe)),
        _ => None,
    });
    let loaded = match mappable {
        Some((cache, exe)) => {
            let mut read_at = |offset, buf: &mut [u8]| read_exact_at(&inode, offset, buf).map_err(|_| SpawnError::ReadFailed);
            exec::load_mapped(&exe, &mut read_at, &cache, Arc::new(inode.clone()), &argv_refs, &envp_refs)
        }
        None => exec::load_file(&read_file(&inode, size)?, &argv_refs, &envp_refs),
    };
    let (space, new_frame) = loaded.map_err(|e| match e {
        SpawnError::BadExecutable(_) | SpawnError::NoSuchProgram => Errno::ENOEXEC,
        SpawnError::OutOfMemory => Errno::ENOMEM,
        SpawnError::ArgumentsTooLong => Errno::E2BIG,
        SpawnError::ReadFailed => Errno::EIO,
        SpawnError::NoSuchCpu => Errno::EINVAL, // not from exec: kernel threads only
    })?;
    drop(head);
    // The point of no return: from here on the old program is gone.
    end_other_threads();
    let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or(&path);
    let args = argv.get(1..).unwrap_or_default().join(" ");
    let user_state = UserState::initial();
    let old_space = task::replace_current_program(name, &args, space, user_state);
    drop(old_space); // CR3 names the new space already: the old one's frames go back
    crate::mm::file_rmap::release_unmapped(); // files only the old program mapped
    *frame = new_frame;
    Ok(0)
}

/// Kills every other thread of the calling process and waits until each has
/// exited, so that no thread of the old program runs on after the exec (Linux's
/// `de_thread`). A thread that is not the leader then takes the process over. If
/// the caller itself is killed meanwhile (another thread's `exit_group` or exec,
/// a kill from outside), it exits here.
fn end_other_threads() {
    let me = task::current_pid();
    let group_live = match task::TASKS.lock().get(&me) {
        Some(t) if t.group_live.load(Ordering::Acquire) > 1 => t.group_live.clone(),
        _ => return, // one thread: nothing to end
    };
    super::thread::kill_other_threads_of_current();
    while group_live.load(Ordering::Acquire) > 1 {
        task::exit_if_killed();
        super::sched::yield_now();
    }
    let mut tasks = task::TASKS.lock();
    if let Some(t) = tasks.get_mut(&me).filter(|t| t.pid != t.tgid) {
        t.has_taken_over = true;
    }
}

/// Finds the executable at `path` (from the cwd); returns its inode and size.
fn find_executable(path: &str) -> Result<(InodeRef, u64), Errno> {
    let cwd = task::with_files(|files| Ok(files.cwd.clone()))?;
    let inode = path::resolve(&cwd, path)?;
    drop(cwd);
    if inode.kind() == FileKind::Directory {
        return Err(Errno::EACCES);
    }
    let size = inode.stat().size;
    if size > MAX_EXEC_FILE_BYTES {
        return Err(Errno::ENOMEM);
    }
    Ok((inode, size))
}

/// Reads the first `len` bytes of `inode` (fewer if the file shrank meanwhile).
fn read_file(inode: &InodeRef, len: u64) -> Result<Vec<u8>, Errno> {
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(len as usize).map_err(|_| Errno::ENOMEM)?;
    bytes.resize(len as usize, 0);
    let mut done = 0;
    while done < bytes.len() {
        match inode.read_at(done as u64, &mut bytes[done..])? {
            0 => break, // the file shrank meanwhile
            n => done += n,
        }
    }
    bytes.truncate(done);
    Ok(bytes)
}

/// Fills `buf` from `inode` at `offset`; EIO if the file ends first.
fn read_exact_at(inode: &InodeRef, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        match inode.read_at(offset + done as u64, &mut buf[done..])? {
            0 => return Err(Errno::EIO),
            n => done += n,
        }
    }
    Ok(())
}

/// Copies in the NULL-terminated array of string pointers at `addr` (a NULL
/// `addr` is an empty array), charging each string and its NUL to `budget` and
/// counting it in `nr_strings`: E2BIG past either limit, EFAULT for a bad pointer,
/// EINVAL for a string that is not UTF-8.
fn user_strings(addr: u64, budget: &mut usize, nr_strings: &mut usize) -> Result<Vec<String>, Errno> {
    let mut strings = Vec::new();
    if addr == 0 {
        return Ok(strings);
    }
    for i in 0.. {
        let mut word = [0u8; 8];
        let at = addr.checked_add(i * 8).ok_or(Errno::EFAULT)?;
        copy_from_user(&mut word, at)?;
        let ptr = u64::from_ne_bytes(word);
        if ptr == 0 {
            break;
        }
        *nr_strings += 1;
        if *nr_strings > MAX_ARG_STRINGS {
            return Err(Errno::E2BIG);
        }
        let s = user_string(ptr, budget)?;
        strings.try_reserve(1).map_err(|_| Errno::ENOMEM)?;
        strings.push(s);
    }
    Ok(strings)
}

/// Copies in the NUL-terminated string at `addr`, charging its bytes and NUL to
/// `budget` (E2BIG once it is spent).
fn user_string(addr: u64, budget: &mut usize) -> Result<String, Errno> {
    let mut bytes = Vec::new();
    let mut at = addr;
    loop {
        // Never past the end of the page: the next one may be unmapped.
        let page_left = (4096 - (at % 4096)) as usize;
        let mut chunk = [0u8; 256];
        let n = page_left.min(chunk.len());
        copy_from_user(&mut chunk[..n], at)?;
        let (len, is_end) = match chunk[..n].iter().position(|&b| b == 0) {
            Some(nul) => (nul, true),
            None => (n, false),
        };
        let charge = len + usize::from(is_end);
        *budget = budget.checked_sub(charge).ok_or(Errno::E2BIG)?;
        bytes.try_reserve(len).map_err(|_| Errno::ENOMEM)?;
        bytes.extend_from_slice(&chunk[..len]);
        if is_end {
            break;
        }
        at = at.checked_add(n as u64).ok_or(Errno::EFAULT)?;
    }
    String::from_utf8(bytes).map_err(|_| Errno::EINVAL)
}
