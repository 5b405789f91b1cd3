//! File mappings in the fuzzer's mix (issue #12): one file per worker, mapped
//! `MAP_SHARED` or `MAP_PRIVATE` into two slots far from the arena, written through
//! the mappings and with `write(2)`, `msync`ed, truncated and extended, unmapped,
//! and read back both ways against a model of the file's bytes.
//!
//! The model ([`FileModel`]) knows the file's length in pages, the tag of each of
//! its pages (whose write put the contents there; 0: zeros), and per slot what is
//! mapped: which file pages, shared or private, writable or not, and the tag of
//! each private copy a write made. What it expects is Linux's behaviour:
//!
//! - a shared mapping, `read(2)` and `write(2)` see one page cache: a write through
//!   either is seen by the other at once (no `msync` needed);
//! - a private page reads the file until it is written, then its own copy;
//! - a page at or past the end of the file cannot be touched (the kernel kills the
//!   process: SIGBUS on Linux); truncation takes such pages from every mapping,
//!   private copies included (Linux's `truncate_pagecache`), and an extended file
//!   reads zeros there;
//! - `msync` of a mapped range and `fsync` return 0 and change no byte.
//!
//! A page with tag `t` at file page `i` holds `t` in its first word and
//! `t.rotate_left(17) ^ key(i)` in its last ([`FILE_KEY`]), whichever address it
//! is seen at. Background children inherit the mappings but never touch them (their
//! file offset is the parent's: only the top-level worker does file operations).
//! At the end [`Worker::finish_file`] checks every page both ways, unmaps, closes
//! and unlinks the file.

use core::ffi::CStr;

use ulib::fs::{self, o};
use ulib::syscall::{syscall2, syscall3, syscall6};
use ulib::{Errno, Fork, SIGKILL, WaitStatus, map, nr, println, prot};

use super::model::{self, LAST_WORD, PAGE};
use super::worker::{Worker, as_logged};

/// Pages the file may have.
pub const FILE_PAGES: usize = 32;
/// Mapping slots.
const NR_SLOTS: usize = 2;
/// Where slot `k` starts: `SLOT_BASE + k * SLOT_STRIDE`, above the largest arena.
const SLOT_BASE: u64 = 0x1800_0000_0000;
const SLOT_STRIDE: u64 = 1 << 24;
/// The key of file page `i`'s last word is `FILE_KEY + i * PAGE`.
const FILE_KEY: u64 = 0xf11e_0000_0000;
/// `msync` flags.
const MS_ASYNC: u64 = 1;
const MS_SYNC: u64 = 4;

/// What one slot maps.
#[derive(Clone, Copy, Debug)]
struct FileMap {
    is_mapped: bool,
    is_shared: bool,
    is_writable: bool,
    /// The first file page mapped, and how many.
    first: usize,
    nr_pages: usize,
    /// Private mappings: the tag of each mapped page's own copy (0: none yet).
    copies: [u64; FILE_PAGES],
}

impl FileMap {
    const NONE: FileMap = FileMap { is_mapped: false, is_shared: false, is_writable: false, first: 0, nr_pages: 0, copies: [0; FILE_PAGES] };
}

/// The file and its mappings as Linux would have them.
#[derive(Clone, Copy, Debug)]
pub struct FileModel {
    /// The open file (read-write), or -1: no file operations in this run.
    fd: i32,
    /// The file's length, in whole pages (the fuzzer only makes whole pages).
    nr_pages: usize,
    /// Each file page's tag (0: zeros).
    tags: [u64; FILE_PAGES],
    slots: [FileMap; NR_SLOTS],
    /// The file's name (NUL-terminated).
    name: [u8; 24],
}

impl FileModel {
    /// No file yet: [`Worker::start_file`] makes it.
    pub const fn new() -> FileModel {
        FileModel { fd: -1, nr_pages: 0, tags: [0; FILE_PAGES], slots: [FileMap::NONE; NR_SLOTS], name: [0; 24] }
    }

    fn name(&self) -> &CStr {
        CStr::from_bytes_until_nul(&self.name).unwrap_or(c"fuzz-file")
    }
}

/// Returns the (first, last) words of file page `i` written with `tag`.
fn words(tag: u64, i: usize) -> (u64, u64) {
    model::expected_words(tag, FILE_KEY + i as u64 * PAGE)
}

/// Returns the address of page `j` of slot `k`.
fn slot_addr(k: usize, j: usize) -> u64 {
    SLOT_BASE + k as u64 * SLOT_STRIDE + j as u64 * PAGE
}

impl Worker<'_> {
    /// Creates this worker's file (empty, in the current directory). If the file
    /// system cannot make or map it, file operations are left out of the run.
    pub(super) fn start_file(&mut self) {
        let mut name = *b"fuzz-file-0000000000\0\0\0\0";
        let mut pid = ulib::getpid() as u64;
        for at in (10..20).rev() {
            name[at] = b'0' + (pid % 10) as u8;
            pid /= 10;
        }
        self.file.name = name;
        let path = self.file.name();
        let _ = fs::unlink(path);
        match fs::open(path, o::RDWR | o::CREAT | o::TRUNC, 0o644) {
            Ok(fd) => self.file.fd = fd,
            Err(e) => println!("fuzz: no file operations in this run: open of {path:?}: {e:?}"),
        }
    }

    /// One file operation (see the module doc); only the top-level worker does them.
    pub(super) fn op_file(&mut self) {
        if self.file.fd < 0 || self.depth > 0 {
            return self.op_write();
        }
        match self.rng.below(100) {
            0..20 => self.file_map(),
            20..45 => self.file_write_mapped(),
            45..60 => self.file_check_mapped(),
            60..72 => self.file_write_call(),
            72..80 => self.file_check_read(),
            80..87 => self.file_msync(),
            87..92 => self.file_truncate(),
            92..96 => self.file_munmap(),
            96..98 => self.file_fsync(),
            _ => self.file_past_end(),
        }
    }

    /// Returns a random slot that is mapped, if one is.
    fn mapped_slot(&mut self) -> Option<usize> {
        let k = self.rng.below(NR_SLOTS as u64) as usize;
        [k, 1 - k].into_iter().find(|&k| self.file.slots[k].is_mapped)
    }

    /// Returns the tag a reader of page `j` of slot `k` must see, or `None` if the
    /// page is at or past the end of the file (touching it kills).
    fn mapped_tag(&self, k: usize, j: usize) -> Option<u64> {
        let s = &self.file.slots[k];
        let i = s.first + j;
        if i >= self.file.nr_pages {
            return None;
        }
        Some(if !s.is_shared && s.copies[j] != 0 { s.copies[j] } else { self.file.tags[i] })
    }

    /// mmap(MAP_FIXED) of a random range of file pages (past the end allowed) into a slot.
    fn file_map(&mut self) {
        let k = self.rng.below(NR_SLOTS as u64) as usize;
        let first = self.rng.below(FILE_PAGES as u64) as usize;
        let nr_pages = (self.rng.length(16) as usize).min(FILE_PAGES - first);
        let is_shared = self.rng.percent(60);
        let is_writable = self.rng.percent(80);
        let prot_bits = if is_writable { prot::READ | prot::WRITE } else { prot::READ };
        let flags = map::FIXED | if is_shared { map::SHARED } else { map::PRIVATE };
        let (addr, len, offset) = (slot_addr(k, 0), nr_pages as u64 * PAGE, first as u64 * PAGE);
        let slot = self.log.push(self.op_index, "file-mmap", [addr, len, prot_bits | flags << 8, offset]);
        // SAFETY: MAP_FIXED replaces only the slot's own pages, which hold no Rust object.
        let ret = Errno::from_ret(unsafe { syscall6(nr::MMAP, addr, len, prot_bits, flags, self.file.fd as u64, offset) });
        self.log.set_result(slot, as_logged(ret));
        if ret == Err(Errno::ENODEV) {
            println!("fuzz: no file operations in this run: this file system cannot map files");
            let _ = fs::close(self.file.fd);
            self.file.fd = -1;
            return;
        }
        if ret != Ok(addr) {
            self.fail(format_args!("mmap(MAP_FIXED {addr:#x}, {len:#x}, file offset {offset:#x}) = {ret:?}"));
        }
        if self.file.slots[k].is_mapped {
            self.file_unmap_rest(k, nr_pages);
        }
        self.file.slots[k] = FileMap { is_mapped: true, is_shared, is_writable, first, nr_pages, copies: [0; FILE_PAGES] };
    }

    /// Unmaps what the slot mapped beyond its new first `nr_pages` (a new mapping
    /// at the slot's start replaced only its own length).
    fn file_unmap_rest(&mut self, k: usize, nr_pages: usize) {
        let old = self.file.slots[k].nr_pages;
        if old > nr_pages {
            let (addr, len) = (slot_addr(k, nr_pages), (old - nr_pages) as u64 * PAGE);
            // SAFETY: the slot's own pages hold no Rust object.
            let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, addr, len) });
            if ret != Ok(0) {
                self.fail(format_args!("munmap({addr:#x}, {len:#x}) of a slot's tail = {ret:?}"));
            }
        }
    }

    /// Writes a tag into up to 8 random pages of a mapped, writable slot (not past the end).
    fn file_write_mapped(&mut self) {
        let Some(k) = self.mapped_slot() else { return self.file_map() };
        let s = self.file.slots[k];
        if !s.is_writable {
            return self.file_check_mapped();
        }
        self.log.push(self.op_index, "file-write-mapped", [slot_addr(k, 0), s.nr_pages as u64, u64::from(s.is_shared), 0]);
        for _ in 0..1 + self.rng.below(8) {
            let j = self.rng.below(s.nr_pages as u64) as usize;
            let i = s.first + j;
            if i >= self.file.nr_pages {
                continue;
            }
            let tag = model::make_tag(self.writer, self.op_index, 0x1000 + i);
            let (first, last) = words(tag, i);
            let p = slot_addr(k, j) as *mut u64;
            // SAFETY: page `j` of the slot is mapped writable and inside the file;
            // it holds no Rust object.
            unsafe {
                p.write_volatile(first);
                p.add(LAST_WORD).write_volatile(last);
            }
            if s.is_shared {
                self.file.tags[i] = tag;
            } else {
                self.file.slots[k].copies[j] = tag;
            }
        }
    }

    /// Reads every page of both slots that lies inside the file and compares it.
    fn file_check_mapped(&mut self) {
        self.log.push(self.op_index, "file-check-mapped", [0; 4]);
        for k in 0..NR_SLOTS {
            for j in 0..self.file.slots[k].nr_pages {
                let Some(tag) = self.mapped_tag(k, j) else { continue };
                let p = slot_addr(k, j) as *const u64;
                // SAFETY: the page is mapped readable and inside the file.
                let found = unsafe { (p.read_volatile(), p.add(LAST_WORD).read_volatile()) };
                let want = words(tag, self.file.slots[k].first + j);
                if found != want {
                    let s = self.file.slots[k];
                    self.fail(format_args!(
                        "file page {} seen at {:#x} ({}, copy tag {:#x}) holds {:#x} .. {:#x}, expected {:#x} .. {:#x}",
                        s.first + j,
                        p as u64,
                        if s.is_shared { "shared" } else { "private" },
                        s.copies[j],
                        found.0,
                        found.1,
                        want.0,
                        want.1
                    ));
                }
            }
        }
    }

    /// Moves the file offset to `offset`, or fails the run.
    fn file_seek(&self, offset: u64) {
        if let Err(e) = fs::lseek(self.file.fd, offset as i64, fs::SEEK_SET) {
            self.fail(format_args!("lseek to {offset:#x}: {e:?}"));
        }
    }

    /// `write(2)` of a tag into a random page, up to one page past the end (which
    /// extends the file: the last word first, so the file grows by a whole page).
    fn file_write_call(&mut self) {
        let i = self.rng.below((self.file.nr_pages + 1).min(FILE_PAGES) as u64) as usize;
        let tag = model::make_tag(self.writer, self.op_index, 0x2000 + i);
        let (first, last) = words(tag, i);
        let slot = self.log.push(self.op_index, "file-write", [i as u64 * PAGE, tag, 0, 0]);
        for (at, word) in [(LAST_WORD as u64 * 8, last), (0, first)] {
            self.file_seek(i as u64 * PAGE + at);
            let ret = fs::write_all(self.file.fd, &word.to_le_bytes());
            self.log.set_result(slot, as_logged(ret.map(|()| 8)));
            if let Err(e) = ret {
                self.fail(format_args!("write of 8 bytes at {:#x}: {e:?}", i as u64 * PAGE + at));
            }
        }
        self.file.tags[i] = tag;
        self.file.nr_pages = self.file.nr_pages.max(i + 1);
    }

    /// `read(2)` of both words of every page, and `fstat`'s size.
    fn file_check_read(&mut self) {
        self.log.push(self.op_index, "file-check-read", [self.file.nr_pages as u64, 0, 0, 0]);
        let want_size = self.file.nr_pages as i64 * PAGE as i64;
        match fs::fstat(self.file.fd) {
            Ok(st) if st.st_size == want_size => {}
            other => self.fail(format_args!("fstat of the file: {:?}, expected size {want_size:#x}", other.map(|st| st.st_size))),
        }
        for i in 0..self.file.nr_pages {
            let mut found = [0u64; 2];
            for (n, at) in [0, LAST_WORD as u64 * 8].into_iter().enumerate() {
                self.file_seek(i as u64 * PAGE + at);
                let mut bytes = [0u8; 8];
                match fs::read_full(self.file.fd, &mut bytes) {
                    Ok(8) => found[n] = u64::from_le_bytes(bytes),
                    other => self.fail(format_args!("read of 8 bytes at {:#x}: {other:?}", i as u64 * PAGE + at)),
                }
            }
            let want = words(self.file.tags[i], i);
            if (found[0], found[1]) != want {
                self.fail(format_args!(
                    "read(2) of file page {i} gives {:#x} .. {:#x}, expected {:#x} .. {:#x}",
                    found[0], found[1], want.0, want.1
                ));
            }
        }
    }

    /// msync (MS_SYNC or MS_ASYNC) of a mapped slot: 0, no byte changes; then read(2) agrees.
    fn file_msync(&mut self) {
        let Some(k) = self.mapped_slot() else { return self.file_check_read() };
        let flags = if self.rng.percent(50) { MS_SYNC } else { MS_ASYNC };
        let (addr, len) = (slot_addr(k, 0), self.file.slots[k].nr_pages as u64 * PAGE);
        let slot = self.log.push(self.op_index, "file-msync", [addr, len, flags, 0]);
        // SAFETY: msync reads no memory of ours.
        let ret = Errno::from_ret(unsafe { syscall3(nr::MSYNC, addr, len, flags) });
        self.log.set_result(slot, as_logged(ret));
        if ret != Ok(0) {
            self.fail(format_args!("msync({addr:#x}, {len:#x}, {flags}) = {ret:?}, Linux gives Ok(0)"));
        }
        self.file_check_read();
    }

    /// ftruncate to a random whole number of pages: shorter takes the pages past the
    /// end from every mapping (private copies too); longer reads zeros there.
    fn file_truncate(&mut self) {
        let n = self.rng.below(FILE_PAGES as u64 + 1) as usize;
        let slot = self.log.push(self.op_index, "file-truncate", [n as u64 * PAGE, self.file.nr_pages as u64 * PAGE, 0, 0]);
        let ret = fs::ftruncate(self.file.fd, n as i64 * PAGE as i64);
        self.log.set_result(slot, as_logged(ret.map(|()| 0)));
        if let Err(e) = ret {
            self.fail(format_args!("ftruncate to {n} pages: {e:?}"));
        }
        self.file.tags[n..].fill(0);
        for s in self.file.slots.iter_mut().filter(|s| s.is_mapped) {
            for j in n.saturating_sub(s.first)..s.nr_pages {
                s.copies[j] = 0;
            }
        }
        self.file.nr_pages = n;
    }

    /// munmap of a slot (mapped or not: 0 either way).
    fn file_munmap(&mut self) {
        let k = self.rng.below(NR_SLOTS as u64) as usize;
        let (addr, len) = (slot_addr(k, 0), FILE_PAGES as u64 * PAGE);
        let slot = self.log.push(self.op_index, "file-munmap", [addr, len, 0, 0]);
        // SAFETY: the slot's own pages hold no Rust object.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, addr, len) });
        self.log.set_result(slot, as_logged(ret));
        if ret != Ok(0) {
            self.fail(format_args!("munmap({addr:#x}, {len:#x}) of a file slot = {ret:?}"));
        }
        self.file.slots[k] = FileMap::NONE;
    }

    fn file_fsync(&mut self) {
        let slot = self.log.push(self.op_index, "file-fsync", [0; 4]);
        let ret = fs::fsync(self.file.fd);
        self.log.set_result(slot, as_logged(ret.map(|()| 0)));
        if let Err(e) = ret {
            self.fail(format_args!("fsync of the file: {e:?}"));
        }
    }

    /// A child touches a mapped page at or past the end of the file: it must be killed.
    fn file_past_end(&mut self) {
        let Some(k) = self.mapped_slot() else { return self.file_map() };
        let s = self.file.slots[k];
        let Some(j) = (0..s.nr_pages).find(|&j| s.first + j >= self.file.nr_pages) else {
            return self.file_check_mapped();
        };
        let addr = slot_addr(k, j);
        let slot = self.log.push(self.op_index, "file-past-end", [addr, self.file.nr_pages as u64, 0, 0]);
        println!(
            "fuzz: seed {} op {}: expecting a kill: read at {addr:#x}, file page {} of a {}-page file",
            self.seed,
            self.op_index,
            s.first + j,
            self.file.nr_pages
        );
        match self.fork_or_fail("access past the end of a file") {
            Fork::Child => {
                // SAFETY: deliberately past the end of the file: the kernel must kill
                // this process before the read completes.
                let _ = unsafe { (addr as *const u64).read_volatile() };
                println!("fuzz: FAIL: the read at {addr:#x} past the end of the file did not kill the child");
                ulib::exit(3)
            }
            Fork::Parent(pid) => {
                self.log.set_result(slot, pid);
                self.expect_status(pid, WaitStatus::Killed(SIGKILL), "past-end-of-file");
            }
        }
    }

    /// At the end of the run: checks every page both ways, unmaps both slots,
    /// closes and removes the file.
    pub(super) fn finish_file(&mut self) {
        if self.file.fd < 0 || self.depth > 0 {
            return;
        }
        self.file_check_mapped();
        self.file_check_read();
        self.file_munmap_all();
        if let Err(e) = fs::close(self.file.fd) {
            self.fail(format_args!("close of the file: {e:?}"));
        }
        self.file.fd = -1;
        if let Err(e) = fs::unlink(self.file.name()) {
            self.fail(format_args!("unlink of the file: {e:?}"));
        }
    }

    /// Unmaps both slots.
    fn file_munmap_all(&mut self) {
        let len = (NR_SLOTS as u64 - 1) * SLOT_STRIDE + FILE_PAGES as u64 * PAGE;
        // SAFETY: the slots' pages hold no Rust object.
        let ret = Errno::from_ret(unsafe { syscall2(nr::MUNMAP, SLOT_BASE, len) });
        if ret != Ok(0) {
            self.fail(format_args!("munmap of the file slots = {ret:?}"));
        }
        self.file.slots = [FileMap::NONE; NR_SLOTS];
    }
}
