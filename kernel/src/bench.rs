//! The bench mode: `cargo run -- --bench` boots, measures, prints tables, exits.
//! The swap benchmarks are in `bench/swap.rs`, the file I/O ones in `bench/file.rs`
//! (`--cmdline benchonly=file` runs only those; `benchonly=swap` only the swap
//! ones; `benchonly=alloc` only the allocators, with the per-CPU page lists on and
//! off; `benchonly=policies` only the replacement-policy table; `benchonly=loadctl`
//! only load control's 2x mix, `bench/loadctl.rs`, which the full run leaves out: it
//! takes minutes; `benchonly=faults` only the user-mode fault paths and their floors,
//! which touch no disk, so `--icount` gives the same counts on every run;
//! `benchonly=cpuid` what asking for the CPU's index costs, `bench/cpu_id.rs`).
//!
//! Every number is nanoseconds per operation, from the TSC calibrated against the PIT
//! (see `arch::timer`), as the best of a few rounds so a timer interrupt in one round
//! does not skew the result. Under QEMU TCG these are emulated nanoseconds: compare
//! them with each other and with other guests in the same QEMU, not with hardware.

use alloc::alloc::{alloc, dealloc};
use core::alloc::Layout;
use core::hint::black_box;

use crate::arch::timer;
use crate::mm::frame::{self, FrameState, OwnedFrames};
use crate::mm::memops::{self, PageMethod};
use crate::mm::Order;
use crate::println;

mod cpu_id;
mod file;
pub mod loadctl;
mod swap;

/// Rounds per measurement; the best one counts.
const ROUNDS: usize = 5;

/// Returns the best-of-rounds nanoseconds per iteration of `f` run `iters` times.
pub fn ns_per_op(iters: u64, mut f: impl FnMut()) -> f64 {
    let mut best = u64::MAX;
    for _ in 0..ROUNDS {
        let start = timer::rdtsc();
        for _ in 0..iters {
            f();
        }
        best = best.min(timer::rdtsc() - start);
    }
    timer::cycles_to_ns(best) as f64 / iters as f64
}

/// Prints one result row.
pub fn row(name: &str, ns: f64) {
    println!("  {:<44} {:>10.1} ns", name, ns);
}

/// Measures the physical allocators: buddy and kmalloc.
pub fn allocators() {
    println!("physical memory allocators (ns per pair, best of {ROUNDS}):");
    let pcp_was_on = crate::mm::pcp::is_enabled();
    for is_on in [true, false] {
        // The per-CPU page lists (`mm::pcp`) on, then off: both in one run.
        crate::mm::pcp::set_enabled(is_on);
        let lists = if is_on { "pcp on" } else { "pcp off" };
        row(&alloc::format!("buddy order-0 alloc+free ({lists})"), ns_per_op(20_000, || {
            let f = frame::alloc(Order(0), FrameState::Kernel).expect("bench: out of frames");
            // SAFETY: allocated just above and never used.
            unsafe { frame::free(black_box(f), Order(0)) }.expect("bench: free failed");
        }));
        // 64 at once, then 64 frees: the lists refill and drain in batches.
        let mut frames = [crate::mm::Frame::from_pfn(0); 64];
        let ns = ns_per_op(500, || {
            for f in &mut frames {
                *f = frame::alloc(Order(0), FrameState::Kernel).expect("bench: out of frames");
            }
            for &f in &frames {
                // SAFETY: allocated just above and never used.
                unsafe { frame::free(black_box(f), Order(0)) }.expect("bench: free failed");
            }
        });
        row(&alloc::format!("buddy order-0 64 allocs, 64 frees ({lists})"), ns / 64.0);
    }
    crate::mm::pcp::set_enabled(pcp_was_on);
    row("buddy order-3 alloc+free", ns_per_op(20_000, || {
        let f = frame::alloc(Order(3), FrameState::Kernel).expect("bench: out of frames");
        // SAFETY: allocated just above and never used.
        unsafe { frame::free(black_box(f), Order(3)) }.expect("bench: free failed");
    }));
    let mags_were_on = crate::mm::slabmag::is_enabled();
    for is_on in [true, false] {
        // The per-CPU slab magazines (`mm::slabmag`) on, then off: both in one run.
        crate::mm::slabmag::set_enabled(is_on);
        let mags = if is_on { "magazines on" } else { "magazines off" };
        for size in [64usize, 512, 4096] {
            let layout = Layout::from_size_align(size, 8).expect("bench: layout");
            let name = alloc::format!("kmalloc({size})+kfree ({mags})");
            row(&name, ns_per_op(20_000, || {
                // SAFETY: the layout has a non-zero size; the block is freed with it at once.
                unsafe {
                    let p = alloc(layout);
                    assert!(!p.is_null(), "bench: kmalloc failed");
                    dealloc(black_box(p), layout);
                }
            }));
        }
        kmalloc_burst(mags);
    }
    crate::mm::slabmag::set_enabled(mags_were_on);
}

/// Measures 64 kmalloc(64) then 64 kfrees, per object: the magazines refill and
/// flush in batches.
fn kmalloc_burst(mags: &str) {
    let layout = Layout::from_size_align(64, 8).expect("bench: layout");
    let mut ptrs = [core::ptr::null_mut::<u8>(); 64];
    let ns = ns_per_op(500, || {
        for p in &mut ptrs {
            // SAFETY: the layout has a non-zero size; each block is freed below with it.
            *p = unsafe { alloc(layout) };
            assert!(!p.is_null(), "bench: kmalloc failed");
        }
        for &p in &ptrs {
            // SAFETY: allocated just above with this layout and never used.
            unsafe { dealloc(black_box(p), layout) };
        }
    });
    row(&alloc::format!("kmalloc(64) 64 allocs, 64 frees ({mags})"), ns / 64.0);
}

/// Measures every way of zeroing and copying a page (the choice that dominates fault cost).
pub fn page_methods() {
    println!("page zero/copy methods (ns per 4 KiB page, best of {ROUNDS}; kernel uses the marked one):");
    let dst = OwnedFrames::new_zeroed(Order(0)).expect("bench: out of frames");
    let src = OwnedFrames::new_zeroed(Order(0)).expect("bench: out of frames");
    let zero_in_use = memops::ZERO_METHOD.load(core::sync::atomic::Ordering::Relaxed);
    let copy_in_use = memops::COPY_METHOD.load(core::sync::atomic::Ordering::Relaxed);
    for method in PageMethod::ALL {
        // SAFETY: `dst` is an owned, aligned 4 KiB frame.
        let zero = ns_per_op(2_000, || unsafe { memops::zero_page_with(dst.as_ptr(), method) });
        // SAFETY: two owned, distinct, aligned 4 KiB frames.
        let copy = ns_per_op(2_000, || unsafe { memops::copy_page_with(dst.as_ptr(), src.as_ptr(), method) });
        println!(
            "  {:<18} zero {:>8.1} ns ({:>5} MiB/s){}   copy {:>8.1} ns ({:>5} MiB/s){}",
            method.name(),
            zero,
            (4096.0 * 1e9 / zero / (1 << 20) as f64) as u64,
            if method as u8 == zero_in_use { " *" } else { "  " },
            copy,
            (4096.0 * 1e9 / copy / (1 << 20) as f64) as u64,
            if method as u8 == copy_in_use { " *" } else { "  " },
        );
    }
}

/// Measures the kernel page-table operations.
pub fn paging() {
    use crate::mm::layout::KMAP_BASE;
    use crate::mm::paging::{self, PteFlags};
    use crate::mm::{Page, VirtAddr};
    println!("page tables (ns per operation, best of {ROUNDS}):");
    let frame = OwnedFrames::new_zeroed(Order(0)).expect("bench: out of frames");
    let page = Page::containing_address(VirtAddr::new(KMAP_BASE + (7 << 30)));
    let flags = PteFlags::PRESENT | PteFlags::WRITABLE | PteFlags::NO_EXECUTE;
    // Keep one neighbour mapped so the page tables stay and only the leaf changes.
    let neighbour = page.offset(1);
    paging::kmap(neighbour, frame.start(), flags).expect("bench: kmap");
    row("map+unmap 4 KiB (kmap, kunmap, invlpg)", ns_per_op(20_000, || {
        paging::kmap(page, frame.start(), flags).expect("bench: kmap");
        black_box(paging::kunmap(page).expect("bench: kunmap"));
    }));
    row("map+unmap 4 KiB, tables built and freed", ns_per_op(5_000, || {
        let far = Page::containing_address(VirtAddr::new(KMAP_BASE + (9 << 30)));
        paging::kmap(far, frame.start(), flags).expect("bench: kmap");
        black_box(paging::kunmap(far).expect("bench: kunmap"));
    }));
    row("translate (4-level walk in software)", ns_per_op(50_000, || {
        black_box(paging::translate(black_box(neighbour.start_address())));
    }));
    paging::kunmap(neighbour).expect("bench: kunmap");
}

/// Runs the user program `bench` (`kernel/user/src/bin/bench.rs`): the fault paths,
/// fork, mmap/munmap and a null syscall measured from ring 3, printed as one table
/// next to Linux's numbers. Waits for it, as task 0, like the user tests do.
pub fn user_faults() {
    println!("user-mode fault paths (the `bench` program, timed with clock_gettime):");
    let pid = match crate::proc::spawn("bench") {
        Ok(pid) => pid,
        Err(e) => {
            println!("  bench: cannot start the user program: {e:?}");
            return;
        }
    };
    match crate::proc::wait(Some(pid)) {
        Some((_, crate::proc::task::WaitStatus::Exited(0))) => {}
        Some((_, status)) => println!("  bench: the user program {status}: its numbers are not to be trusted"),
        None => println!("  bench: the user program vanished"),
    }
}

/// Runs every benchmark and prints the tables.
pub fn run_all() {
    println!("\n== bench mode (TSC: {} cycles/ms) ==", timer::tsc_per_ms());
    let only: Option<fn()> = match crate::cmdline::value("benchonly") {
        Some("file") => Some(file::bench),
        Some("swap") => Some(|| {
            crate::drivers::virtio_blk::bench();
            swap::bench();
        }),
        Some("alloc") => Some(allocators),
        Some("faults") => Some(user_faults),
        Some("policies") => Some(swap::policies),
        Some("loadctl") => Some(loadctl::bench),
        Some("cpuid") => Some(cpu_id::bench),
        Some(other) => {
            println!("benchonly={other}: unknown (file, swap, alloc, faults, policies, loadctl, cpuid); running everything");
            None
        }
        None => None,
    };
    if let Some(bench) = only {
        bench();
        println!("== bench done ==");
        return;
    }
    allocators();
    page_methods();
    paging();
    crate::drivers::virtio_blk::bench();
    user_faults();
    swap::bench();
    file::bench();
    println!("== bench done ==");
}
