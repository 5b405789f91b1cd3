//! `memmap [-w WIDTH] [-n]`: a picture of physical memory, one character per cell
//! of frames, by owner (free, kernel, slab, page tables, anon, page cache, swap
//! cache, huge, reserved), coloured (`-n`: letters only), with a legend and totals.
//!
//! ```text
//!  physical memory: 16384 frames (64 MiB), one cell = 16 frames (64 KiB)
//!      0M |##KKKKKKKKKKKKKKKKKKKsstt....................aaaaaaaaaaaaaaaaaaaaaaaa
//!  ...
//!    .  free          12001 frames    46.9 MiB
//! ```
//! The data is Linux's `/proc/kpageflags` (a `u64` of `KPF_*` bits per frame, read
//! in order: the word of frame N is at offset N * 8); `abi::kpageflags::classify`
//! sorts each frame; a cell shows the owner of most of its frames. The picture is
//! at most [`MAX_ROWS`] rows of `WIDTH` (default 80) columns. A bad option: a
//! message and exit code 1.
#![no_std]
#![no_main]

use core::fmt::Write;

use abi::kpageflags::{Owner, classify};
use ulib::{fs, println};

ulib::entry!(main);

/// The picture's height at most, in rows.
const MAX_ROWS: u64 = 20;
/// Columns before the cells: the row's start address (`  1024M |`).
const PREFIX: usize = 9;
/// Frames read per `read` call.
const CHUNK_WORDS: usize = 512;

/// One output line, built before it is written (one `write` per line).
struct Line {
    bytes: [u8; 4096],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(core::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

impl Line {
    fn flush(&mut self) {
        self.bytes[self.len] = b'\n';
        let _ = ulib::write(1, &self.bytes[..=self.len]);
        self.len = 0;
    }
}

/// The ANSI colour (background) each owner is drawn in, in `Owner::ALL` order.
const COLOURS: [&str; 9] = ["\x1b[42m", "\x1b[41m", "\x1b[45m", "\x1b[44m", "\x1b[43m", "\x1b[46m", "\x1b[47m", "\x1b[101m", "\x1b[100m"];

fn main() -> i32 {
    let mut width = 80usize;
    let mut is_colour = true;
    let mut args = ulib::argv::args();
    while let Some(arg) = args.next() {
        match arg {
            "-n" => is_colour = false,
            "-w" => match args.next().map(str::parse::<usize>) {
                Some(Ok(w)) if (20..=1000).contains(&w) => width = w,
                _ => {
                    ulib::eprintln!("memmap: -w needs a width of 20..=1000 columns");
                    return 1;
                }
            },
            other => {
                ulib::eprintln!("memmap: invalid option {other:?}\nusage: memmap [-w WIDTH] [-n]");
                return 1;
            }
        }
    }
    match draw(width, is_colour) {
        Ok(()) => 0,
        Err(e) => {
            ulib::eprintln!("memmap: /proc/kpageflags: {e}");
            1
        }
    }
}

fn draw(width: usize, is_colour: bool) -> Result<(), ulib::Errno> {
    let fd = fs::with_cstr("/proc/kpageflags", |c| fs::open(c, fs::o::RDONLY, 0))?;
    let nr_frames = fs::fstat(fd)?.st_size as u64 / 8;
    let columns = (width - PREFIX) as u64;
    let frames_per_cell = nr_frames.div_ceil(columns * MAX_ROWS).max(1);
    println!(
        "physical memory: {nr_frames} frames ({} MiB), one cell = {frames_per_cell} frames ({} KiB)",
        nr_frames / 256,
        frames_per_cell * 4
    );
    let mut totals = [0u64; Owner::ALL.len()];
    let mut cell = [0u64; Owner::ALL.len()];
    let mut line = Line { bytes: [0; 4096], len: 0 };
    let mut words = [0u64; CHUNK_WORDS];
    let (mut pfn, mut column, mut cell_start) = (0u64, 0u64, 0u64);
    loop {
        let mut bytes = [0u8; CHUNK_WORDS * 8];
        let n = fs::read(fd, &mut bytes)?;
        if n == 0 {
            break;
        }
        for (word, chunk) in words.iter_mut().zip(bytes[..n].as_chunks::<8>().0) {
            *word = u64::from_ne_bytes(*chunk);
        }
        for &word in &words[..n / 8] {
            let owner = classify(word) as usize;
            totals[owner] += 1;
            cell[owner] += 1;
            pfn += 1;
            if pfn % frames_per_cell == 0 || pfn == nr_frames {
                if column == 0 {
                    let _ = write!(line, "{:>6}M |", cell_start / 256);
                }
                draw_cell(&mut line, &cell, is_colour);
                cell = [0; Owner::ALL.len()];
                cell_start = pfn;
                column += 1;
                if column == columns {
                    line.flush();
                    column = 0;
                }
            }
        }
    }
    let _ = fs::close(fd);
    if column != 0 {
        line.flush();
    }
    println!("legend (a cell shows the owner of most of its frames), and totals:");
    for (i, owner) in Owner::ALL.iter().enumerate() {
        draw_cell(&mut line, &one_hot(i), is_colour);
        let _ = write!(line, " {:<12} {:>8} frames {:>7}.{} MiB", owner.name(), totals[i], totals[i] / 256, totals[i] % 256 * 10 / 256);
        line.flush();
    }
    Ok(())
}

fn one_hot(i: usize) -> [u64; Owner::ALL.len()] {
    let mut cell = [0; Owner::ALL.len()];
    cell[i] = 1;
    cell
}

/// Draws the cell whose frames are counted in `cell` (by owner): the symbol of the
/// owner of most of them (the first in legend order on a tie).
fn draw_cell(line: &mut Line, cell: &[u64; Owner::ALL.len()], is_colour: bool) {
    let mut best = 0;
    for i in 1..cell.len() {
        if cell[i] > cell[best] {
            best = i;
        }
    }
    let symbol = Owner::ALL[best].symbol();
    if is_colour {
        let _ = write!(line, "{}{symbol}\x1b[0m", COLOURS[best]);
    } else {
        let _ = write!(line, "{symbol}");
    }
}
