//! `bench`: the cost of the fault paths, fork, mmap/munmap and a syscall, from ring 3.
//!
//! Each row is timed with `ulib::now_ns` (`clock_gettime(CLOCK_MONOTONIC)`) and
//! printed as one line the runner parses, the operation and its ns per operation:
//!
//! ```text
//! bench: op=anonymous write fault (per page)         ns=4321.5
//! ```
//!
//! | row | what is timed |
//! |---|---|
//! | anonymous write fault | one byte written per page of a fresh 64 MiB mapping, per page |
//! | read fault, zero page | one byte read per page of a fresh 64 MiB mapping, per page |
//! | COW write fault | after fork, the child writes one byte per page of 64 MiB the parent touched, per page |
//! | fork, 64 MiB touched | `fork()` in the parent until it returns (child exits at once), best of [`NR_FORKS`] |
//! | mmap+munmap 1 MiB | an untouched 1 MiB mapping made and removed, best of [`ROUNDS`] |
//! | munmap 64 MiB touched | per page |
//! | write fault after 100 ms idle | one byte written per page of a fresh 8 MiB mapping right after a 100 ms sleep, best of [`ROUNDS`]: on this kernel the idle CPU pre-zeroes frames (`mm/zero_pool.rs`) |
//! | null syscall | `getpid`, best of [`ROUNDS`] |
//! | exception round trip (int3) | this kernel only: `int3` from ring 3, which the kernel counts and returns from |
//! | page zero / page copy, kernel's loop | this kernel only: the kernel's page loop (`mm::memops`, `Loop64`) run in ring 3 on a page |
//!
//! The last three give each fault path its *floor* under TCG, measured in the same
//! run: a fault cannot cost less than an exception round trip from ring 3 plus
//! the work it must do, one page zeroed (anonymous write fault) or copied (COW
//! fault); a read of untouched memory (the zero page) needs the round trip alone.
//! bench prints each fault row as a multiple of its floor (`bench: floor ...`
//! lines, which the runner's side-by-side table repeats). Linux delivers `int3` as
//! a SIGTRAP, so on Linux these rows are left out.
//!
//! The same file runs on Linux: `cargo run --release -- --linux-peer=bench` runs it
//! on this kernel, then on Linux 6.1 in the same QEMU machine, and prints both with
//! the ratios (no Linux figure is written here). Where it needs this kernel's
//! `memstat` (free frames, resident pages, COW faults) and gets `ENOSYS`, it reads
//! Linux's `/proc` instead (see [`ulib::linux`]); on Linux the child's COW faults
//! are counted as minor faults (`minflt`), of which they are a part.
//!
//! First a warm-up pass writes one byte per page over nearly all free RAM (its cost
//! is printed, not tabled): QEMU backs guest RAM with host memory only on the
//! guest's first touch, which adds some 10 us to the first fault on every frame
//! since boot. The child of the COW row reports its time through a `MAP_SHARED`
//! page. Checks that the memory behaves (zeros where untouched, the child's writes
//! invisible to the parent, one COW fault per page) make a broken kernel fail
//! rather than print fast numbers. Exit 0 on success, after the line `bench: done`.
//!
//! A run takes about 1.5 s in a debug build (the kernel test
//! `the_fault_benchmark_runs_to_completion` runs it twice); `cargo run --release --
//! --bench` prints the table worth quoting.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, linux, map, println, prot};

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
    /// The time per operation, in picoseconds (so small times keep a decimal).
    ps: u64,
}

/// Reads `path` (a file of Linux's `/proc`) into `buf`; returns the bytes read.
fn read_proc<'a>(path: &core::ffi::CStr, buf: &'a mut [u8]) -> &'a [u8] {
    let len = linux::read_file(path, buf).unwrap_or(0);
    &buf[..len]
}

/// Returns the number of free frames: `memstat` here, `MemFree` (KiB) of
/// `/proc/meminfo` on Linux.
fn free_frames() -> u64 {
    if let Ok(m) = ulib::memstat() {
        return m.free_frames;
    }
    let mut buf = [0u8; 8 * 1024];
    let free_kib = linux::field(read_proc(c"/proc/meminfo", &mut buf), "MemFree");
    free_kib.expect("neither memstat nor /proc/meminfo's MemFree") / 4
}

/// How far behind Linux's resident-page count may be: each thread folds its own
/// count into the process's every 64 counted events (`SPLIT_RSS_COUNTING`,
/// `TASK_RSS_EVENTS_THRESH` in 6.1), so `/proc/self/statm` can miss the last 63.
const LINUX_RSS_LAG_PAGES: u64 = 64;

/// Returns this process's resident pages and how many the count may lag behind:
/// `memstat` here (exact), the second number of `/proc/self/statm` on Linux (up to
/// [`LINUX_RSS_LAG_PAGES`] behind).
fn rss_pages() -> (u64, u64) {
    if let Ok(m) = ulib::memstat() {
        return (m.rss_pages, 0);
    }
    let mut buf = [0u8; 256];
    let rss = linux::number_at(read_proc(c"/proc/self/statm", &mut buf), 1);
    (rss.expect("neither memstat nor /proc/self/statm"), LINUX_RSS_LAG_PAGES)
}

/// Returns this process's COW faults so far: `memstat` here; on Linux, which does
/// not count them apart, its minor faults (`minflt`, field 10 of `/proc/self/stat`),
/// of which every COW fault is one.
fn cow_faults_or_minor_faults() -> u64 {
    if let Ok(m) = ulib::memstat() {
        return m.cow_faults;
    }
    let mut buf = [0u8; 1024];
    linux::stat_field(read_proc(c"/proc/self/stat", &mut buf), 10).expect("neither memstat nor /proc/self/stat")
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
    let free = free_frames();
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
    let (rss, lag) = rss_pages();
    check!(rss + lag >= NR_PAGES as u64, "rss {} after writing {} pages", rss, NR_PAGES);
    let unmap_ns = unmap_region(region);
    (ps_per_op(write_ns, NR_PAGES as u64), ps_per_op(unmap_ns, NR_PAGES as u64))
}

/// Pages written by [`write_faults_after_idle`]: 8 MiB, half the kernel's pool of
/// pre-zeroed frames.
const NR_IDLE_PAGES: usize = 2048;

/// Anonymous write faults on [`NR_IDLE_PAGES`] fresh pages right after 100 ms asleep
/// (time an idle CPU can spend zeroing free frames ahead of faults), best of
/// [`ROUNDS`]: ps/page. Where nothing is zeroed ahead, as on Linux, this is the
/// plain anonymous write fault.
fn write_faults_after_idle() -> u64 {
    let len = NR_IDLE_PAGES * PAGE_SIZE;
    (0..ROUNDS)
        .map(|_| {
            let region = ulib::mmap(len, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap 8 MiB");
            ulib::sleep_ms(100).expect("sleep 100 ms");
            let t0 = ulib::now_ns();
            for page in 0..NR_IDLE_PAGES {
                // SAFETY: the byte is inside the fresh read-write mapping, used only by raw pointer.
                unsafe { region.add(page * PAGE_SIZE).write_volatile(1) };
            }
            let ns = ulib::now_ns() - t0;
            // SAFETY: only the raw pointer `region` points into the mapping, not used again.
            unsafe { ulib::munmap(region, len) }.expect("munmap 8 MiB");
            ps_per_op(ns, NR_IDLE_PAGES as u64)
        })
        .min()
        .unwrap_or(0)
}

/// Read faults on untouched anonymous memory (the shared zero page): ps/page.
fn read_faults() -> u64 {
    let region = map_region();
    let (rss_before, lag) = rss_pages();
    let (ns, sum) = read_pages(region);
    let (rss_after, _) = rss_pages();
    check!(sum == 0, "untouched memory read back a non-zero byte");
    check!(rss_after < rss_before + 16 + lag, "reading took {} frames", rss_after.saturating_sub(rss_before));
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
    let before = cow_faults_or_minor_faults();
    let ns = touch_pages(region, 2);
    let nr_cow = cow_faults_or_minor_faults() - before;
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

/// The kernel's page-zeroing loop (`kernel/src/mm/memops.rs`, `Loop64`, the method
/// it uses), run here in ring 3 on `page`.
fn zero_page_like_the_kernel(page: &mut [u64; 512]) {
    // SAFETY: writes exactly the 4096 bytes of `page`, which we borrow mutably;
    // clobbers only the named registers.
    unsafe {
        core::arch::asm!(
            "2:",
            "mov qword ptr [rdi], {z}", "mov qword ptr [rdi + 8], {z}",
            "mov qword ptr [rdi + 16], {z}", "mov qword ptr [rdi + 24], {z}",
            "mov qword ptr [rdi + 32], {z}", "mov qword ptr [rdi + 40], {z}",
            "mov qword ptr [rdi + 48], {z}", "mov qword ptr [rdi + 56], {z}",
            "add rdi, 64", "dec ecx", "jnz 2b",
            z = in(reg) 0u64, inout("rdi") page.as_mut_ptr() => _, inout("ecx") 64u32 => _,
            options(nostack)
        )
    }
}

/// The kernel's page-copy loop (`Loop64`), run in ring 3 from `src` to `dst`.
fn copy_page_like_the_kernel(dst: &mut [u64; 512], src: &[u64; 512]) {
    // SAFETY: reads the 4096 bytes of `src` and writes the 4096 bytes of `dst`,
    // two distinct borrowed arrays; clobbers only the named registers.
    unsafe {
        core::arch::asm!(
            "2:",
            "mov {a}, qword ptr [rsi]", "mov {b}, qword ptr [rsi + 8]",
            "mov qword ptr [rdi], {a}", "mov qword ptr [rdi + 8], {b}",
            "mov {a}, qword ptr [rsi + 16]", "mov {b}, qword ptr [rsi + 24]",
            "mov qword ptr [rdi + 16], {a}", "mov qword ptr [rdi + 24], {b}",
            "mov {a}, qword ptr [rsi + 32]", "mov {b}, qword ptr [rsi + 40]",
            "mov qword ptr [rdi + 32], {a}", "mov qword ptr [rdi + 40], {b}",
            "mov {a}, qword ptr [rsi + 48]", "mov {b}, qword ptr [rsi + 56]",
            "mov qword ptr [rdi + 48], {a}", "mov qword ptr [rdi + 56], {b}",
            "add rsi, 64", "add rdi, 64", "dec ecx", "jnz 2b",
            a = out(reg) _, b = out(reg) _,
            inout("rdi") dst.as_mut_ptr() => _, inout("rsi") src.as_ptr() => _, inout("ecx") 64u32 => _,
            options(nostack)
        )
    }
}

/// The floors' parts, on this kernel only (`None` on Linux, where `int3` is a
/// SIGTRAP): (int3 round trip ps, page zero ps, page copy ps).
fn floor_parts() -> Option<(u64, u64, u64)> {
    ulib::memstat().ok()?;
    let int3_ps = best_of(NR_SYSCALLS, || {
        // SAFETY: this kernel handles a ring-3 `int3` by counting it and returning
        // to the next instruction; no register or memory changes.
        unsafe { core::arch::asm!("int3", options(nostack)) };
    });
    let mut dst = [1u64; 512];
    let src = [2u64; 512];
    let zero_ps = best_of(2_000, || zero_page_like_the_kernel(core::hint::black_box(&mut dst)));
    check!(dst.iter().all(|&w| w == 0), "the zeroing loop left a non-zero word");
    let copy_ps = best_of(2_000, || copy_page_like_the_kernel(core::hint::black_box(&mut dst), &src));
    check!(dst == src, "the copy loop did not copy");
    Some((int3_ps, zero_ps, copy_ps))
}

/// Prints each fault row as a multiple of its floor, one `bench: floor` line each.
fn print_floors(rows: &[Row], (int3_ps, zero_ps, copy_ps): (u64, u64, u64)) {
    let floors = [
        ("anonymous write fault (per page)", int3_ps + zero_ps, "int3 round trip + page zero"),
        ("read fault, zero page (per page)", int3_ps, "int3 round trip"),
        ("COW write fault after fork (per page)", int3_ps + copy_ps, "int3 round trip + page copy"),
    ];
    for (name, floor_ps, what) in floors {
        let Some(row) = rows.iter().find(|r| r.name == name) else { continue };
        let tenths = row.ps * 10 / floor_ps.max(1);
        println!(
            "bench: floor: {:<40} {}.{}x its floor ({} ns: {})",
            name,
            tenths / 10,
            tenths % 10,
            floor_ps / 1000,
            what
        );
    }
}

/// Prints the rows, one line each: the operation, then `ns=` with one decimal.
/// The runner (`boot/src/linux_peer/bench_report.rs`) reads these lines back.
fn print_table(rows: &[Row]) {
    for row in rows {
        println!("bench: op={:<40} ns={}.{}", row.name, row.ps / 1000, row.ps % 1000 / 100);
    }
}

fn main() -> i32 {
    let t0 = ulib::now_ns();
    let (warm_pages, warm_ps) = warm_up();
    let (write_ps, munmap_ps) = write_faults_and_munmap();
    let read_ps = read_faults();
    let (fork_ps, cow_ps) = fork_and_cow_faults();
    let small_map_ps = small_maps();
    let idle_write_ps = write_faults_after_idle();
    let getpid_ps = best_of(NR_SYSCALLS, || {
        core::hint::black_box(ulib::getpid());
    });
    let floor_parts = floor_parts();
    let warm_mib = warm_pages >> 8;
    println!("bench: warm-up wrote {} pages ({} MiB) first, {} ns per page", warm_pages, warm_mib, warm_ps / 1000);
    let rows = [
        Row { name: "anonymous write fault (per page)", ps: write_ps },
        Row { name: "read fault, zero page (per page)", ps: read_ps },
        Row { name: "COW write fault after fork (per page)", ps: cow_ps },
        Row { name: "fork, 64 MiB touched (per fork)", ps: fork_ps },
        Row { name: "mmap+munmap 1 MiB untouched", ps: small_map_ps },
        Row { name: "munmap 64 MiB touched (per page)", ps: munmap_ps },
        Row { name: "write fault after 100 ms idle (per page)", ps: idle_write_ps },
        Row { name: "null syscall (getpid)", ps: getpid_ps },
    ];
    println!("bench: user-mode fault paths (ns per operation)");
    print_table(&rows);
    if let Some(parts @ (int3_ps, zero_ps, copy_ps)) = floor_parts {
        print_table(&[
            Row { name: "exception round trip (int3)", ps: int3_ps },
            Row { name: "page zero, kernel's loop in ring 3", ps: zero_ps },
            Row { name: "page copy, kernel's loop in ring 3", ps: copy_ps },
        ]);
        print_floors(&rows, parts);
    }
    println!("bench: done in {} ms", (ulib::now_ns() - t0) / 1_000_000);
    0
}
