// The body shared by the `ram_*` test images (issue #10, item 2): each image boots
// at one RAM size (its `runner_args!`) and runs the same checks. Included with
// `include!` by `tests/ram_32m.rs` ... `tests/ram_8g.rs`, which hold the crate
// attributes and the size.

extern crate alloc;

use kernel::mm::{check, frame, heap, swap};
use kernel::proc::{self, task::WaitStatus};

kernel::test_kernel!();

/// Runs user program `name` to its end and returns how it ended.
fn run(name: &str) -> WaitStatus {
    let pid = proc::spawn(name).unwrap_or_else(|e| panic!("spawn {name}: {e:?}"));
    let (_, status) = proc::wait(Some(pid)).expect("wait");
    status
}

#[test_case]
fn the_frame_table_covers_all_ram_at_its_one_percent_cost() {
    let table = frame::table_info();
    // RAM, not only the usable part: the kernel image (which grows with every user
    // program embedded in it) is RAM the table describes too.
    let ram_mib = table.ram_bytes >> 20;
    let expected_mib = EXPECTED_RAM_MIB;
    // Firmware holes take a few MiB off the guest RAM.
    assert!(
        ram_mib + 16 >= expected_mib && ram_mib <= expected_mib,
        "RAM {ram_mib} MiB for a {expected_mib} MiB guest"
    );
    assert!(table.nr_frames * 4096 >= table.ram_bytes, "the table covers every frame of RAM");
    assert!(table.overhead_basis_points() <= 110, "the frame table costs {} bp of RAM", table.overhead_basis_points());
    kernel::println!(
        "ram_sizes: {} MiB guest: {} MiB RAM, {} frames x 32 bytes = {} KiB frame table; {} frames free",
        expected_mib,
        ram_mib,
        table.nr_frames,
        table.size_bytes >> 10,
        frame::nr_free_frames()
    );
}

/// The programs every size runs: the demo's (forkcow, pageout), a lazy 1 GiB
/// mapping, fork with shared memory, brk. Each sizes itself in pages, not by RAM,
/// so the test takes the same time at 32 MiB and 8 GiB.
const PROGRAMS: [&str; 6] = ["hello", "forkcow", "lazy", "pageout", "shared", "brk"];

fn run_all() {
    for name in PROGRAMS {
        assert_eq!(run(name), WaitStatus::Exited(0), "{name} at {EXPECTED_RAM_MIB} MiB");
    }
    check::check_consistency().expect("consistent");
}

#[test_case]
fn the_demo_programs_run_and_give_every_frame_back() {
    // The first round also grows the kernel's tables for good (task table, fork
    // families, slab caches); the second must give back every frame it took.
    run_all();
    heap::shrink();
    let free = frame::nr_free_frames();
    run_all();
    heap::shrink();
    assert_eq!(frame::nr_free_frames(), free, "frames leaked");
    let (nr_free_slots, nr_slots) = swap::slot_counts();
    assert_eq!(nr_free_slots, nr_slots, "swap slots left in use");
}
