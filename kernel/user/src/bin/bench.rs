//! `bench`: the cost of the fault paths, fork, mmap/munmap and a syscall, from ring 3.
//!
//! Each row is timed with `ulib::now_ns` (the kernel's TSC clock) and printed in one
//! table next to Linux 6.1 measured in the same QEMU (TCG), with the ratio ours /
//! Linux (below 1 means we are faster):
//!
//! | row | what is timed |
//! |---|---|
//! | anonymous write fault | one byte written per page of a fresh 64 MiB mapping, per page |
//! | read fault, zero page | one byte read per page of a fresh 64 MiB mapping, per page |
//! | COW write fault | after fork, the child writes one byte per page of 64 MiB the parent touched, per page |
//! | fork, 64 MiB touched | `fork()` in the parent until it returns (child exits at once), best of [`NR_FORKS`] |
//! | mmap+munmap 1 MiB | an untouched 1 MiB mapping made and removed, best of [`ROUNDS`] |
//! | munmap 64 MiB touched | per page |
//! | null syscall | `getpid`, best of [`ROUNDS`] |
//!
//! First a warm-up pass writes one byte per page over nearly all free RAM (its cost
//! is printed, not tabled): QEMU backs guest RAM with host memory only on the
//! guest's first touch, which adds some 10 us to the first fault on every frame
//! since boot. The child of the COW row reports its time through a `MAP_SHARED`
//! page. Checks that the memory behaves (zeros where untouched, the child's writes
//! invisible to the parent, one COW fault per page) make a broken kernel fail
//! rather than print fast numbers. Exit 0 on success.
//!
//! A run takes about 1.5 s in a debug build (the kernel test
//! `the_fault_benchmark_runs_to_completion` runs it twice); `cargo run --release --
//! --bench` prints the table worth quoting.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

/// The size of the big mappings: 64 MiB.
const REGION_BYTES: usize = 64 << 20;
const NR_PAGES: usize = REGION_BYTES / PAGE_SIZE;
/// Frames the warm-up pass leaves free (for page tables and the kernel heap): 16 MiB.
const WARM_UP_SPARE_FRAMES: u64 = 4096;
/// Rounds of the cheap measurements; the best counts.
const ROUNDS: usize = 5;
/// Forks of the 64 MiB parent; the best counts.
const NR_FORKS: usize = 5;
/// Iterations per round of the cheap measurements.
const NR_SYSCALLS: u64 = 20_000;
const NR_SMALL_MAPS: u64 = 200;

/// One line of the table.
struct Row {
    name: &'static str,
    /// Our time per operation, in picoseconds (so small times keep a decimal).
    ps: u64,
    /// Linux 6.1 in the same QEMU, in nanoseconds, when there is a number for it.
    linux_ns: Option<u64>,
}

/// Returns the picoseconds per operation of `nr_ops` operations that took `ns`.
fn ps_per_op(ns: u64, nr_ops: u64) -> u64 {
    ns * 1000 / nr_ops
}

/// Returns the best (lowest) picoseconds per iteration of `f` over [`ROUNDS`] rounds.
fn best_of(iters: u64, mut f: impl FnMut()) -> u64 {
    (0..ROUNDS)
        .map(|_| {
            let t0 = ulib::now_ns();
            for _ in 0..iters {
                f();
            }
            ps_per_op(ulib::now_ns() - t0, iters)
        })
        .min()
        .unwrap_or(0)
}

/// Maps a fresh read-write private region of [`REGION_BYTES`].
fn map_region() -> *mut u8 {
    ulib::mmap(REGION_BYTES, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap 64 MiB")
}

/// Writes `value` into the first byte of every page of the region; returns the ns taken.
fn touch_pages(region: *mut u8, value: u8) -> u64 {
    let t0 = ulib::now_ns();
    for page in 0..NR_PAGES {
        // SAFETY: the byte is inside the read-write region, accessed only by raw pointer.
        unsafe { region.add(page * PAGE_SIZE).write_volatile(value) };
    }
    ulib::now_ns() - t0
}

/// Reads the first byte of every page; returns the ns taken and the bytes' sum.
fn read_pages(region: *mut u8) -> (u64, u64) {
    let t0 = ulib::now_ns();
    let mut sum = 0u64;
    for page in 0..NR_PAGES {
        // SAFETY: as in `touch_pages`.
        sum += u64::from(unsafe { region.add(page * PAGE_SIZE).read_volatile() });
    }
    (ulib::now_ns() - t0, sum)
}

/// Unmaps the region; returns the ns taken.
fn unmap_region(region: *mut u8) -> u64 {
    let t0 = ulib::now_ns();
    // SAFETY: only raw pointers point into the region, and none is used afterwards.
    unsafe { ulib::munmap(region, REGION_BYTES) }.expect("munmap 64 MiB");
    ulib::now_ns() - t0
}

/// Writes one byte per page over all free RAM but [`WARM_UP_SPARE_FRAMES`], then
/// unmaps it: (pages, ps/page).
///
/// QEMU gives guest RAM host memory only when the guest first touches it, which
/// adds about 10 us to the first write of every guest frame since boot. After this
/// pass every frame the measurements below get has been touched, so they time the
/// kernel and not the host.
fn warm_up() -> (u64, u64) {
    let free = ulib::memstat().expect("memstat").free_frames;
    let nr_pages = free.saturating_sub(WARM_UP_SPARE_FRAMES);
    check!(nr_pages >= 2 * NR_PAGES as u64, "only {} frames free; the fork row needs {}", free, 2 * NR_PAGES);
    let len = nr_pages as usize * PAGE_SIZE;
    let region = ulib::mmap(len, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap warm-up");
    let t0 = ulib::now_ns();
    for page in 0..nr_pages as usize {
        // SAFETY: the byte is inside the fresh read-write mapping, used only by raw pointer.
        unsafe { region.add(page * PAGE_SIZE).write_volatile(1) };
    }
    let ns = ulib::now_ns() - t0;
    // SAFETY: only the raw pointer `region` points into the mapping, not used again.
    unsafe { ulib::munmap(region, len) }.expect("munmap warm-up");
    (nr_pages, ps_per_op(ns, nr_pages))
}

/// Anonymous write faults, then munmap of the touched region: (write ps/page, munmap ps/page).
fn write_faults_and_munmap() -> (u64, u64) {
    let region = map_region();
    let write_ns = touch_pages(region, 1);
    let rss = ulib::memstat().expect("memstat").rss_pages;
    check!(rss >= NR_PAGES as u64, "rss {} after writing {} pages", rss, NR_PAGES);
    let unmap_ns = unmap_region(region);
    (ps_per_op(write_ns, NR_PAGES as u64), ps_per_op(unmap_ns, NR_PAGES as u64))
}

/// Read faults on untouched anonymous memory (the shared zero page): ps/page.
fn read_faults() -> u64 {
    let region = map_region();
    let rss_before = ulib::memstat().expect("memstat").rss_pages;
    let (ns, sum) = read_pages(region);
    let rss_after = ulib::memstat().expect("memstat").rss_pages;
    check!(sum == 0, "untouched memory read back a non-zero byte");
    check!(rss_after < rss_before + 16, "reading took {} frames", rss_after - rss_before);
    unmap_region(region);
    ps_per_op(ns, NR_PAGES as u64)
}

/// Forks of a parent with 64 MiB touched (best of [`NR_FORKS`]), then COW faults
/// in a child that writes every page: (fork ps, COW ps/page).
fn fork_and_cow_faults() -> (u64, u64) {
    let result = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::SHARED).expect("mmap shared") as *mut u64;
    let region = map_region();
    touch_pages(region, 1);
    let mut best_fork_ns = u64::MAX;
    for _ in 0..NR_FORKS {
        let t0 = ulib::now_ns();
        let pid = match ulib::fork().expect("fork") {
            Fork::Child => ulib::exit(0),
            Fork::Parent(pid) => pid,
        };
        best_fork_ns = best_fork_ns.min(ulib::now_ns() - t0);
        let (reaped, status) = ulib::waitpid(pid).expect("wait");
        check!(reaped == pid && status == WaitStatus::Exited(0), "fork child {} {}", reaped, status);
    }
    match ulib::fork().expect("fork") {
        Fork::Child => ulib::exit(cow_child(region, result)),
        Fork::Parent(pid) => {
            let (_, status) = ulib::waitpid(pid).expect("wait");
            check!(status == WaitStatus::Exited(0), "COW child {}", status);
        }
    }
    let (_, sum) = read_pages(region);
    check!(sum == NR_PAGES as u64, "the child's writes reached the parent");
    unmap_region(region);
    // SAFETY: the shared page was written by the child, which has exited.
    let cow_ns = unsafe { result.read_volatile() };
    // SAFETY: only the raw pointer `result` points into the page, not used again.
    unsafe { ulib::munmap(result as *mut u8, PAGE_SIZE) }.expect("munmap shared");
    (best_fork_ns * 1000, ps_per_op(cow_ns, NR_PAGES as u64))
}

/// The COW child: writes every page (each one a copy), reports the ns in `result`.
fn cow_child(region: *mut u8, result: *mut u64) -> i32 {
    let before = ulib::memstat().expect("memstat");
    let ns = touch_pages(region, 2);
    let after = ulib::memstat().expect("memstat");
    let nr_cow = after.cow_faults - before.cow_faults;
    check!(nr_cow >= NR_PAGES as u64, "{} COW faults for {} pages", nr_cow, NR_PAGES);
    // SAFETY: the shared page stays mapped in parent and child; the parent reads it
    // only after reaping this process.
    unsafe { result.write_volatile(ns) };
    0
}

/// mmap + munmap of an untouched 1 MiB mapping: ps per pair.
fn small_maps() -> u64 {
    best_of(NR_SMALL_MAPS, || {
        let p = ulib::mmap(1 << 20, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap 1 MiB");
        // SAFETY: nothing points into the fresh mapping.
        unsafe { ulib::munmap(p, 1 << 20) }.expect("munmap 1 MiB");
    })
}

/// Prints the rows: our ns with one decimal, Linux's, and the ratio with two.
fn print_table(rows: &[Row]) {
    println!("bench: user-mode fault paths (ns per op; Linux 6.1 in the same QEMU; ratio = ours / Linux)");
    println!("  {:<40} {:>14} {:>12} {:>7}", "operation", "ours ns", "Linux ns", "ratio");
    for row in rows {
        match row.linux_ns {
            Some(linux) => println!(
                "  {:<40} {:>12}.{} {:>12} {:>4}.{:02}",
                row.name,
                row.ps / 1000,
                row.ps % 1000 / 100,
                linux,
                row.ps / linux / 1000,
                row.ps / linux / 10 % 100
            ),
            None => println!("  {:<40} {:>12}.{} {:>12} {:>7}", row.name, row.ps / 1000, row.ps % 1000 / 100, "-", "-"),
        }
    }
}

fn main() -> i32 {
    let t0 = ulib::now_ns();
    let (warm_pages, warm_ps) = warm_up();
    let (write_ps, munmap_ps) = write_faults_and_munmap();
    let read_ps = read_faults();
    let (fork_ps, cow_ps) = fork_and_cow_faults();
    let small_map_ps = small_maps();
    let getpid_ps = best_of(NR_SYSCALLS, || {
        core::hint::black_box(ulib::getpid());
    });
    let warm_mib = warm_pages >> 8;
    println!("bench: warm-up wrote {} pages ({} MiB) first, {} ns per page", warm_pages, warm_mib, warm_ps / 1000);
    let rows = [
        Row { name: "anonymous write fault (per page)", ps: write_ps, linux_ns: Some(8_500) },
        Row { name: "read fault, zero page (per page)", ps: read_ps, linux_ns: Some(2_100) },
        Row { name: "COW write fault after fork (per page)", ps: cow_ps, linux_ns: Some(17_000) },
        Row { name: "fork, 64 MiB touched (per fork)", ps: fork_ps, linux_ns: Some(2_900_000) },
        Row { name: "mmap+munmap 1 MiB untouched", ps: small_map_ps, linux_ns: Some(22_500) },
        Row { name: "munmap 64 MiB touched (per page)", ps: munmap_ps, linux_ns: None },
        Row { name: "null syscall (getpid)", ps: getpid_ps, linux_ns: Some(400) },
    ];
    print_table(&rows);
    println!("bench: done in {} ms", (ulib::now_ns() - t0) / 1_000_000);
    0
}
