//! `wsprobe`: a program with a known working set, to check the kernel's WS(τ).
//!
//! Arguments (words of its argument string): `pages=N` (default 64), `mapped=M`
//! (default 4N, at least N), `samples=K` (default 4), `write` (touch by writing),
//! `rounds=R` (stop after R passes over the N pages instead of after K samples),
//! `words=W` (touch W words of each page per pass, default 1, at most 65536: past
//! 512 the same words again; more CPU per pass),
//! `gate` (after writing its pages, write its pid (8 bytes) to fd 3 and wait for a byte or
//! end of file on fd 0: a start line, so that several start their passes together).
//! It maps M pages and writes each once, so its RSS is M; then it reads (or writes)
//! one word of each of the first N pages, over and over, until the kernel has taken
//! K more working-set samples of it (`wsstat`), or 20 s have passed. Its working set
//! is then N data pages plus the few pages of its code and stack, whatever M is.
//! It prints the history and PFF, yields a few times (so that a kernel test polling
//! `proc::task::ws_snapshot` sees the last figures), and exits 0.
#![no_std]
#![no_main]

use ulib::{PAGE_SIZE, map, println, prot};

ulib::entry!(main);

fn main() -> i32 {
    let mut buf = [0u8; 128];
    let args = ulib::args(&mut buf);
    let number = |key: &str, default: usize| ulib::arg_value(args, key).and_then(|v| v.parse().ok()).unwrap_or(default);
    let nr_touched = number("pages", 64);
    let nr_mapped = number("mapped", 4 * nr_touched).max(nr_touched);
    let nr_samples = number("samples", 4) as u64;
    let is_write = args.split_whitespace().any(|w| w == "write");
    let nr_rounds = number("rounds", 0) as u64;
    let nr_words = number("words", 1).clamp(1, 65536);
    let start_ns = ulib::now_ns();
    let base = ulib::mmap(nr_mapped * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    for page in 0..nr_mapped {
        // SAFETY: the first word of a page of the fresh mapping, only used through `base`.
        unsafe { base.add(page * 512).write_volatile(page as u64) };
    }
    if args.split_whitespace().any(|w| w == "gate") {
        // At the start line: say so on fd 3, wait on fd 0 until the gate opens.
        ulib::fs::write_all(3, &ulib::getpid().to_le_bytes()).expect("gate: fd 3");
        ulib::fs::read(0, &mut [0u8; 1]).expect("gate: fd 0");
    }
    let first = ulib::wsstat(0).expect("wsstat").nr_samples;
    let deadline = ulib::now_ns() + 20_000_000_000;
    let mut sum = 0u64;
    let mut round = 0u64;
    let last = loop {
        for page in 0..nr_touched {
            for i in 0..nr_words {
                // SAFETY: page < nr_mapped and the index < 512: one word of the mapping.
                let word = unsafe { base.add(page * 512 + (round as usize + i) % 512) };
                if is_write {
                    // SAFETY: as above.
                    unsafe { word.write_volatile(round) };
                } else {
                    // SAFETY: as above.
                    sum = sum.wrapping_add(unsafe { word.read_volatile() });
                }
            }
        }
        round += 1;
        let stat = ulib::wsstat(0).expect("wsstat");
        let is_done = if nr_rounds > 0 { round >= nr_rounds } else { stat.nr_samples >= first + nr_samples || ulib::now_ns() > deadline };
        if is_done {
            break stat;
        }
    };
    let nr_valid = (last.nr_samples as usize).min(abi::WS_HISTORY);
    println!(
        "wsprobe: {} of {} pages touched, {} rounds in {} ms: WS(tau={} ms) {} pages, history {:?}, pff {}/s (major {}/s), rss {}, cpu {} ms (sum {:x})",
        nr_touched,
        nr_mapped,
        round,
        (ulib::now_ns() - start_ns) / 1_000_000,
        last.tau_ms,
        last.ws_pages,
        &last.history[..nr_valid],
        last.pff,
        last.major_pff,
        last.rss_pages,
        last.cpu_ms,
        sum & 0xf
    );
    for _ in 0..4 {
        ulib::yield_now();
    }
    0
}
