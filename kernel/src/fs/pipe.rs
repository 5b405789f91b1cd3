//! Pipes: a bounded byte queue between a read end and a write end.
//!
//! ```text
//!   writer ── write ──> [ one page: ring buffer, PIPE_CAPACITY bytes ] ── read ──> reader
//!            sleeps on `writers` while full            sleeps on `readers` while empty
//! ```
//! The buffer is one frame from the frame allocator ([`OwnedFrames`]), so creating
//! a pipe fails with ENOMEM rather than panicking when memory is short. The ring's
//! indices sit behind an [`IrqMutex`] held only for a memcpy; the copies to and from
//! user memory happen outside it, through a bounce buffer on the stack, because a
//! user copy may fault and sleep. The caller passes those copies in as closures
//! ([`CopyOut`], [`CopyIn`]) together with its "was I killed?" test, so this module
//! needs nothing from `proc` and a kernel test can drive it with kernel buffers.
//!
//! Each side has a busy flag taken for a whole read or write (`is_reading`,
//! `is_writing`; waiting for it is killable, unlike a `Mutex`): a reader peeks,
//! copies out, and only then consumes, so a bad user pointer (EFAULT) loses no
//! data; a write keeps the write side until it is done, so the bytes of two
//! writers never interleave (POSIX promises that only up to `PIPE_BUF` bytes).
//!
//! End of file and broken pipes: the open ends are counted ([`Pipe::open_end`],
//! [`Pipe::close_end`], called by the open-file objects of `file.rs` when created and
//! dropped); a read of an empty pipe whose writers are all gone returns 0, and a
//! write to a pipe with no reader fails with EPIPE. Linux also sends SIGPIPE, whose
//! default action kills the writer; this kernel has no signals and behaves as Linux
//! does for a process that ignores SIGPIPE: the write returns EPIPE.
//!
//! A sleeper that is killed (by the OOM killer, say) is woken by the kill and gives
//! up with EINTR; the syscall return path then ends the process.

use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use abi::Errno;

use crate::mm::frame::{OwnedFrames, Reserve};
use crate::mm::{Order, PAGE_SIZE};
use crate::sync::{IrqMutex, WaitQueue};

/// Bytes a pipe holds before writers wait: one page (Linux holds 16).
pub const PIPE_CAPACITY: usize = PAGE_SIZE as usize;

/// The bytes one step of a read or write moves through the stack.
const BOUNCE_BYTES: usize = 512;

/// Copies bytes read from the pipe to the reader: `(offset in the read, bytes)`.
pub type CopyOut<'a> = &'a mut dyn FnMut(usize, &[u8]) -> Result<(), Errno>;
/// Fills a buffer with the writer's bytes: `(offset in the write, buffer)`.
pub type CopyIn<'a> = &'a mut dyn FnMut(usize, &mut [u8]) -> Result<(), Errno>;

/// Which end of a pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The end `read` takes bytes from.
    Read,
    /// The end `write` puts bytes into.
    Write,
}

/// The ring buffer's state.
struct Ring {
    buf: OwnedFrames,
    /// Where the oldest byte is.
    head: usize,
    /// Bytes in the buffer.
    len: usize,
}

/// A pipe. Open files hold it in an `Arc` and count themselves as ends.
pub struct Pipe {
    ring: IrqMutex<Ring>,
    nr_readers: AtomicUsize,
    nr_writers: AtomicUsize,
    /// Readers wait here for bytes (or for the last writer to go), or for the read side.
    readers: WaitQueue,
    /// Writers wait here for room (or for the last reader to go), or for the write side.
    writers: WaitQueue,
    /// A read is in progress (the read side is taken).
    is_reading: AtomicBool,
    /// A write is in progress (the write side is taken).
    is_writing: AtomicBool,
}

/// The read or write side of a pipe, taken; dropping it lets the next one in.
struct Side<'a> {
    is_busy: &'a AtomicBool,
    queue: &'a WaitQueue,
}

impl<'a> Side<'a> {
    /// Waits until the side is free and takes it; EINTR if `is_killed()` first.
    fn take(is_busy: &'a AtomicBool, queue: &'a WaitQueue, is_killed: fn() -> bool) -> Result<Side<'a>, Errno> {
        let mut killed = false;
        queue.wait_until(|| {
            killed = is_killed();
            killed || is_busy.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_ok()
        });
        if killed {
            // The condition stopped at `killed`, before trying the flag: not ours.
            return Err(Errno::EINTR);
        }
        Ok(Side { is_busy, queue })
    }
}

impl Drop for Side<'_> {
    fn drop(&mut self) {
        self.is_busy.store(false, Ordering::Release);
        self.queue.wake_all();
    }
}

impl Pipe {
    /// Creates an empty pipe with no ends open yet; `None` if no frame is free.
    pub fn new() -> Option<Pipe> {
        let buf = OwnedFrames::new_zeroed_leaving(Order(0), Reserve::User).ok()?;
        Some(Pipe {
            ring: IrqMutex::new(Ring { buf, head: 0, len: 0 }),
            nr_readers: AtomicUsize::new(0),
            nr_writers: AtomicUsize::new(0),
            readers: WaitQueue::new(),
            writers: WaitQueue::new(),
            is_reading: AtomicBool::new(false),
            is_writing: AtomicBool::new(false),
        })
    }

    /// Counts one more open `end` (an open file was created for it).
    pub fn open_end(&self, end: End) {
        match end {
            End::Read => self.nr_readers.fetch_add(1, Ordering::SeqCst),
            End::Write => self.nr_writers.fetch_add(1, Ordering::SeqCst),
        };
    }

    /// Counts one `end` closed; the last writer wakes the readers (end of file), the
    /// last reader wakes the writers (EPIPE).
    pub fn close_end(&self, end: End) {
        match end {
            End::Read => {
                if self.nr_readers.fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.writers.wake_all();
                }
            }
            End::Write => {
                if self.nr_writers.fetch_sub(1, Ordering::SeqCst) == 1 {
                    self.readers.wake_all();
                }
            }
        }
    }

    /// Returns the bytes waiting in the pipe.
    pub fn nr_bytes(&self) -> usize {
        self.ring.lock().len
    }

    /// Reads at most `len` bytes through `copy_out`, waiting while the pipe is empty
    /// and has a writer (unless `is_nonblock`: EAGAIN; or `is_killed()`: EINTR).
    /// Returns the bytes read; 0 means end of file.
    pub fn read(&self, len: usize, is_nonblock: bool, is_killed: fn() -> bool, copy_out: CopyOut) -> Result<usize, Errno> {
        if len == 0 {
            return Ok(0);
        }
        let _reader = Side::take(&self.is_reading, &self.readers, is_killed)?;
        let mut killed = false;
        self.readers.wait_until(|| {
            killed = is_killed();
            killed || is_nonblock || self.ring.lock().len > 0 || self.nr_writers.load(Ordering::SeqCst) == 0
        });
        if killed {
            return Err(Errno::EINTR);
        }
        let mut done = 0;
        while done < len {
            let mut bounce = [0u8; BOUNCE_BYTES];
            let n = self.peek(&mut bounce[..(len - done).min(BOUNCE_BYTES)]);
            if n == 0 {
                break;
            }
            if let Err(e) = copy_out(done, &bounce[..n]) {
                return if done == 0 { Err(e) } else { Ok(done) };
            }
            self.consume(n);
            done += n;
        }
        if done == 0 && is_nonblock && self.nr_writers.load(Ordering::SeqCst) > 0 {
            return Err(Errno::EAGAIN);
        }
        Ok(done)
    }

    /// Writes `len` bytes taken through `copy_in`, waiting for room. Returns the bytes written, or EPIPE if no
    /// reader is left before any was written (EAGAIN, EINTR as for [`Pipe::read`]).
    pub fn write(&self, len: usize, is_nonblock: bool, is_killed: fn() -> bool, copy_in: CopyIn) -> Result<usize, Errno> {
        let _writer = Side::take(&self.is_writing, &self.writers, is_killed)?;
        let mut done = 0;
        while done < len {
            let mut bounce = [0u8; BOUNCE_BYTES];
            let chunk = &mut bounce[..(len - done).min(BOUNCE_BYTES)];
            if let Err(e) = copy_in(done, chunk) {
                return if done == 0 { Err(e) } else { Ok(done) };
            }
            let mut put = 0;
            while put < chunk.len() {
                let mut killed = false;
                let mut is_full = false;
                self.writers.wait_until(|| {
                    killed = is_killed();
                    is_full = self.ring.lock().len == PIPE_CAPACITY;
                    killed || !is_full || is_nonblock || self.nr_readers.load(Ordering::SeqCst) == 0
                });
                if self.nr_readers.load(Ordering::SeqCst) == 0 {
                    return if done + put == 0 { Err(Errno::EPIPE) } else { Ok(done + put) };
                }
                if killed {
                    return if done + put == 0 { Err(Errno::EINTR) } else { Ok(done + put) };
                }
                if is_full {
                    return if done + put == 0 { Err(Errno::EAGAIN) } else { Ok(done + put) };
                }
                put += self.push(&chunk[put..]);
                self.readers.wake_all();
            }
            done += chunk.len();
        }
        Ok(done)
    }

    /// Copies up to `out.len()` of the oldest bytes into `out` without removing them.
    fn peek(&self, out: &mut [u8]) -> usize {
        let ring = self.ring.lock();
        let n = out.len().min(ring.len);
        let first = n.min(PIPE_CAPACITY - ring.head);
        ring.buf.read_bytes(ring.head, &mut out[..first]);
        ring.buf.read_bytes(0, &mut out[first..n]);
        n
    }

    /// Removes the `n` oldest bytes (just peeked) and wakes the writers.
    fn consume(&self, n: usize) {
        {
            let mut ring = self.ring.lock();
            debug_assert!(n <= ring.len);
            ring.head = (ring.head + n) % PIPE_CAPACITY;
            ring.len -= n;
        }
        self.writers.wake_all();
    }

    /// Appends as much of `bytes` as fits; returns how much did.
    fn push(&self, bytes: &[u8]) -> usize {
        let mut ring = self.ring.lock();
        let n = bytes.len().min(PIPE_CAPACITY - ring.len);
        let tail = (ring.head + ring.len) % PIPE_CAPACITY;
        let first = n.min(PIPE_CAPACITY - tail);
        ring.buf.write_bytes(tail, &bytes[..first]);
        ring.buf.write_bytes(0, &bytes[first..n]);
        ring.len += n;
        n
    }
}
