//! The kernel binary: boots, shows the machine and the memory manager at work, and
//! leaves QEMU. Everything it calls lives in the `kernel` library (`lib.rs`).
//!
//! With no command line (`cargo run` from a pipe or CI) it plays the demo: what
//! only the kernel can show (its own page-table walks, the heap, compaction) here,
//! and the rest as the shell script `/etc/demo.sh` (the README's walkthrough, with
//! the tools a student types: free, hog, vmstat, pmap, explain, policy, memmap, trace).
//!
//! Command-line words (from `cargo run -- --bench` or `--cmdline "..."`):
//! `bench` runs the benchmarks instead of the demo; `run=NAME` runs the user
//! program NAME alone and exits with its result (`cargo run -- --cmdline run=forkcow`);
//! with `record` too, it prints the program's reference string (`mm::reclaim::record`);
//! the program's `args` syscall returns the whole command line, so other words
//! reach it (`--cmdline "run=fuzz seed=7 ops=1000000"`);
//! `trace` turns the fault trace on; `shell` runs `/bin/sh` on the console (the
//! runner passes it for a `cargo run` from a terminal, or with `--script FILE`).
#![no_std]
#![no_main]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use bootloader_api::BootInfo;
use kernel::mm::{self, VirtAddr, frame, heap, paging, vmstat};
use kernel::{arch, bootmem, cmdline, println, proc};

bootloader_api::entry_point!(kernel_main, config = &kernel::BOOTLOADER_CONFIG);

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    kernel::init(boot_info);
    println!();
    println!("kernel {}: a teaching kernel with a real memory manager", env!("CARGO_PKG_VERSION"));
    println!("==========================================================");
    let info = bootmem::facts();
    println!(
        "kernel image at {:#x}, boot stack at {:#x} ({} KiB), direct map at {:#x}",
        info.kernel_image_offset,
        info.kernel_stack_bottom,
        info.kernel_stack_len / 1024,
        kernel::PHYS_MAP_BASE
    );
    kernel::mm::kspace::print_summary();
    if !cmdline::get().is_empty() {
        println!("command line: {:?}", cmdline::get());
    }
    bootmem::print_summary();
    arch::acpi::print_summary();
    arch::smp::print_summary();
    if cmdline::has("acpi_dump") {
        // The bytes of the MADT, for the host tests of `acpi-tables` (`xxd -r -p`).
        for line in arch::acpi::raw_madt().unwrap_or_default().chunks(32) {
            line.iter().for_each(|b| kernel::print!("{b:02x}"));
            println!();
        }
    }
    if cmdline::has("trace") {
        vmstat::set_tracing(true);
    }
    if cmdline::value("prezero") == Some("off") {
        kernel::mm::zero_pool::set_enabled(false);
    }
    if let Some(name) = cmdline::value("run") {
        run_one(name);
    } else if cmdline::has("shell") {
        run_shell();
    } else if cmdline::has("bench") {
        kernel::bench::run_all();
    } else {
        demo_physical_memory();
        demo_huge_pages();
        demo_file_mapping();
        demo_ksm();
        demo_script();
    }
    arch::smp::print_summary(); // every CPU's ticks by now
    println!("done: leaving QEMU");
    kernel::power_off(arch::qemu::ExitCode::Success);
}

/// What the shell's banner says: one screen of what to try.
const SHELL_BANNER: &str = "\
-- the shell: /bin/sh on the serial console (Ctrl-A X leaves QEMU, `exit` too) --
try:  free -m                    memory and swap, from /proc/meminfo
      hog 125% &                 a memory hog bigger than RAM, in the background
      vmstat 1 5                 watch it swap (si/so); top -b -n 1, ps
      pmap -x $!                 its memory, VMA by VMA ($! = the last job's pid)
      explain 0x100000000000 $!  the page-table walk and next fault at its first page
      policy fifo                switch the page-replacement policy (policy: list them)
      memmap                     physical memory, by owner; trace on / trace show $!
      kill %1                    and everything comes back: free -m
      sh /etc/demo.sh            all of the above as a script; ls /bin for the rest";

/// Runs `/bin/sh` on the console until it exits, then leaves QEMU (success if it
/// exited with 0). The runner asks for this (`shell`) for a plain `cargo run` from
/// a terminal, or with `--script FILE`.
fn run_shell() -> ! {
    println!("{SHELL_BANNER}");
    let status = match proc::spawn("sh") {
        Ok(pid) => {
            let _ = kernel::tty::set_foreground(0);
            proc::wait(Some(pid)).map(|(_, status)| status)
        }
        Err(e) => {
            println!("shell: cannot start sh: {e:?}");
            None
        }
    };
    println!("shell: {}", status.map_or(alloc::string::String::from("not run"), |s| alloc::format!("{s}")));
    let is_ok = status == Some(proc::task::WaitStatus::Exited(0));
    kernel::power_off(if is_ok { arch::qemu::ExitCode::Success } else { arch::qemu::ExitCode::Failure })
}

/// Runs the user program `name` alone, shows the counters, and leaves QEMU with
/// success if it exited with 0.
fn run_one(name: &str) -> ! {
    let free_before = frame::nr_free_frames_exact();
    let status = match proc::spawn_with_args(name, cmdline::get()) {
        Ok(pid) => {
            if cmdline::value("record") == Some("faults") {
                use kernel::mm::reclaim::record;
                let window = cmdline::value("record_window").and_then(|v| v.parse().ok()).unwrap_or(record::FAULT_WINDOW);
                if let Some(trace) = record::record_faults(pid, window) {
                    record::print_fault_trace(pid, &trace);
                    println!("record: fault trace, {} references", trace.nr_refs());
                }
            } else if cmdline::has("record") {
                let report = kernel::mm::reclaim::record::record(pid);
                println!("record: {} samples, {} references", report.nr_samples, report.nr_refs);
            }
            proc::wait(Some(pid)).map(|(_, status)| status)
        }
        Err(e) => {
            println!("run: cannot start {name:?}: {e:?}");
            None
        }
    };
    vmstat::print_counters();
    vmstat::print_swap_counters();
    if arch::smp::nr_online() > 1 {
        arch::smp::print_summary(); // each CPU's ticks and user time, and the shootdowns, for the run
    }
    heap::shrink();
    println!("free frames: {free_before} before, {} after", frame::nr_free_frames_exact());
    match status {
        Some(status) => {
            println!("run: {name} {status}");
            let is_ok = status == proc::task::WaitStatus::Exited(0);
            kernel::power_off(if is_ok { arch::qemu::ExitCode::Success } else { arch::qemu::ExitCode::Failure })
        }
        None => arch::qemu::exit(arch::qemu::ExitCode::Failure),
    }
}

/// Shows the frame table, the buddy allocator and the slab heap at work.
fn demo_physical_memory() {
    let table = frame::table_info();
    println!("\n-- frame table --");
    println!(
        "{} frames x {} bytes = {} KiB at {}: {}.{:02}% of {} MiB of RAM",
        table.nr_frames,
        core::mem::size_of::<frame::FrameDesc>(),
        table.size_bytes / 1024,
        table.start,
        table.overhead_basis_points() / 100,
        table.overhead_basis_points() % 100,
        table.ram_bytes >> 20
    );
    println!("\n-- buddyinfo (free blocks of order 0..=10) --\n{}", frame::buddyinfo());
    println!("\n-- two page-table walks: kernel code (4 KiB page), the frame table (2 MiB page) --");
    paging::print_walk(VirtAddr::new(kernel_main as *const () as u64));
    paging::print_walk(mm::phys_to_virt(table.start));

    println!("\n-- the heap at work: a BTreeMap, a Vec and Boxes --");
    let mut squares = BTreeMap::new();
    for i in 0u64..500 {
        squares.insert(i, i * i);
    }
    let big: Vec<u64> = (0..100_000).collect();
    let boxes: Vec<Box<[u8; 200]>> = (0..64).map(|i| Box::new([i as u8; 200])).collect();
    println!(
        "BTreeMap of {} entries, Vec of {} u64 ({} KiB, a buddy block), {} boxes of 200 bytes",
        squares.len(),
        big.len(),
        big.len() * 8 / 1024,
        boxes.len()
    );
    println!("\n-- slabinfo --");
    heap::print_slabinfo();
    println!("\n-- buddyinfo with those alive --\n{}", frame::buddyinfo());
    drop((squares, big, boxes));
    let pages = heap::shrink();
    println!("\nafter dropping them and shrinking the caches ({pages} slab pages returned):\n{}", frame::buddyinfo());
}

/// Plays `/etc/demo.sh` (the README's walkthrough) with `/bin/sh`, its output on
/// the console: everything a student can see from a shell.
fn demo_script() {
    println!("\n-- /etc/demo.sh: the walkthrough, played by /bin/sh --");
    match proc::spawn_with_args("sh", "/etc/demo.sh") {
        Ok(pid) => {
            let (_, status) = proc::wait(Some(pid)).expect("demo: wait");
            println!("sh /etc/demo.sh {status}");
        }
        Err(e) => println!("demo: cannot start sh: {e:?}"),
    }
}

/// A file mapped from the page cache: written through a MAP_SHARED mapping,
/// msync'd to the disk and read back (`mmapdemo`), with the page-cache counters.
/// Skipped without an ext2 root (tmpfs files have no page cache to map).
pub fn demo_file_mapping() {
    println!("\n-- file mapping: a file mapped MAP_SHARED, written through the mapping, msync, read back --");
    if kernel::fs::root_kind() != kernel::fs::RootKind::Ext2 {
        println!("(no ext2 root disk: skipped)");
        return;
    }
    let pid = proc::spawn("mmapdemo").expect("demo: spawn mmapdemo");
    let (_, status) = proc::wait(Some(pid)).expect("demo: wait");
    println!("mmapdemo (pid {pid}) {status}");
    kernel::mm::page_cache::print_counters();
    println!("file pages mapped by fault-around: {}", kernel::mm::filemap::nr_fault_around());
}

/// Same-page merging: four processes write the same 4 MiB into MADV_MERGEABLE
/// memory; one scan merges them (the `ksm` program checks every byte).
fn demo_ksm() {
    println!("\n-- same-page merging: four processes with the same 4 MiB, one scan --");
    let pid = proc::spawn_with_args("ksm", "mib=4").expect("demo: spawn ksm");
    let (_, status) = proc::wait(Some(pid)).expect("demo: wait");
    println!("ksm (pid {pid}) {status}");
    let s = kernel::mm::ksm::stats();
    println!(
        "ksm: pages_shared {} pages_sharing {} pages_unshared {} full_scans {} (pages merged since boot {})",
        s.pages_shared, s.pages_sharing, s.pages_unshared, s.full_scans, s.pages_merged
    );
}

/// Transparent huge pages: two 2 MiB write faults, then the splits (the `thp`
/// program checks every byte), and compaction on request.
fn demo_huge_pages() {
    println!("\n-- huge pages: two 2 MiB write faults, then splits (munmap, fork, pageout) --");
    let pid = proc::spawn("thp").expect("demo: spawn thp");
    let (_, status) = proc::wait(Some(pid)).expect("demo: wait");
    println!("thp (pid {pid}) {status}");
    kernel::mm::thp::print_counters();
    demo_compaction();
}

/// Compaction on request: a space writes 4096 pages (its page tables made first,
/// so the data pages fill blocks of their own) and drops every other one with
/// MADV_DONTNEED (a munmap would cut thousands of VMAs whose tree nodes the heap
/// would put in the freed holes), which leaves 2 MiB blocks half used; `compact_memory` moves the pages that remain
/// out of such blocks (through the reverse map) and frees them whole.
fn demo_compaction() {
    use kernel::mm::addr_space::{AddressSpace, MapRequest, VmProt};
    use kernel::mm::{PAGE_SIZE, compact, fault};
    const NR: u64 = 4096;
    println!("\n-- compaction: {NR} pages written, every other one dropped (MADV_DONTNEED), then compact_memory --");
    let space = AddressSpace::new().expect("demo: new space");
    let start = space.lock().mmap(0, NR * PAGE_SIZE, VmProt::READ_WRITE, MapRequest::default()).expect("demo: mmap");
    for i in (0..NR).filter(|&i| i == 0 || (start + i * PAGE_SIZE).is_aligned(2u64 << 20)) {
        fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, 0b100).expect("demo: fault"); // a read: the table
    }
    for i in 0..NR {
        fault::handle_page_fault(&mut space.lock(), start + i * PAGE_SIZE, 0b110).expect("demo: fault");
    }
    for i in (1..NR).step_by(2) {
        space.lock().madvise_dontneed((start + i * PAGE_SIZE).as_u64(), PAGE_SIZE).expect("demo: madvise");
    }
    let before = frame::buddyinfo().nr_free_blocks[9..].iter().sum::<u64>();
    let nr_freed = compact::compact_memory();
    let after = frame::buddyinfo().nr_free_blocks[9..].iter().sum::<u64>();
    println!("compact_memory freed {nr_freed} blocks of 2 MiB; free blocks of order >= 9: {before} -> {after}");
    compact::print_counters();
    let census = mm::check::check_consistency().expect("demo: books balance after compaction");
    println!("mm::check: consistent ({} user frames)", census.nr_frames);
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    x86_64::instructions::interrupts::disable();
    arch::serial::emergency_write(format_args!("\nKERNEL PANIC: {}\n", info));
    arch::qemu::exit(arch::qemu::ExitCode::Failure);
}
