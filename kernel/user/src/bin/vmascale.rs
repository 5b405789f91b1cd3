//! `vmascale`: how the cost of mmap, faults, fork and munmap grows with the number
//! of VMAs and with the size of what is mapped (issue #16's scaling table).
//!
//! Each row prints one line the runner's bench report reads (`bench: op=NAME
//! ns=N`), so `cargo run --release -- --linux-peer=vmascale` puts this kernel and
//! Linux 6.1 side by side. Rows, each at 1, 100, 1 000 and 10 000 VMAs, or at
//! growing sizes:
//!
//! | row | what is timed | the design says |
//! |---|---|---|
//! | mmap+munmap 1 MiB, N VMAs | an untouched 1 MiB mapping made and removed while N one-page VMAs sit just below the top of the mmap area | O(log N): the gap index (`mm-core/src/vma/gap_index.rs`) |
//! | write fault, N VMAs | one byte per page of a fresh 4 MiB mapping, per page | O(log N) VMA lookup, no growth |
//! | fork, N VMAs | `fork()` of a parent with N one-page VMAs, each touched | O(N): every VMA and its page table are copied |
//! | fork, S MiB touched | `fork()` of a parent with S MiB written | O(S): every PTE is copied and write-protected |
//! | munmap S MiB touched | per page | O(1) per page |
//!
//! The N small VMAs alternate read-only and read-write, so neither kernel merges
//! them into one. Each row is the best of a few rounds. Checks (the mappings read
//! back, fork's child exits 0) make a broken kernel fail, not print fast numbers.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, map, println, prot};

ulib::entry!(main);

/// VMA counts of the rows that grow with N.
const VMA_COUNTS: [usize; 4] = [1, 100, 1_000, 10_000];
/// Sizes (MiB) of the rows that grow with the resident size.
const SIZES_MIB: [usize; 4] = [16, 64, 128, 256];
/// Rounds of each measurement; the best counts.
const ROUNDS: usize = 3;
/// mmap+munmap pairs per round.
const NR_MAPS: u64 = 200;
/// The mapping the fault rows write: 4 MiB.
const FAULT_BYTES: usize = 4 << 20;

/// Prints one row: `bench: op=WHAT COUNT UNIT ns=N`; the name has a number in it.
fn print_row(what: &str, count: usize, unit: &str, ps: u64) {
    println!("bench: op={} {} {} ns={}.{}", what, count, unit, ps / 1000, ps % 1000 / 100);
}

/// Returns the best picoseconds per iteration of `f` over [`ROUNDS`] rounds of `iters`.
fn best_of(iters: u64, mut f: impl FnMut()) -> u64 {
    (0..ROUNDS)
        .map(|_| {
            let t0 = ulib::now_ns();
            for _ in 0..iters {
                f();
            }
            (ulib::now_ns() - t0) * 1000 / iters
        })
        .min()
        .unwrap_or(0)
}

/// `count` one-page mappings, alternately read-write and read-only (so that no two
/// neighbours merge), each written once while writable. Their addresses are kept
/// in one more mapping (user programs have no heap).
struct SmallVmas {
    table: *mut *mut u8,
    count: usize,
}

impl SmallVmas {
    fn table_bytes(count: usize) -> usize {
        (count * 8).div_ceil(PAGE_SIZE).max(1) * PAGE_SIZE
    }

    fn new(count: usize) -> SmallVmas {
        let table = ulib::mmap(Self::table_bytes(count), prot::READ | prot::WRITE, map::PRIVATE).expect("mmap table")
            as *mut *mut u8;
        for i in 0..count {
            let page = ulib::mmap(PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap one page");
            // SAFETY: the byte is inside the fresh read-write page, and slot `i` inside
            // the table; both are used only by raw pointer.
            unsafe {
                page.write_volatile(i as u8 | 1);
                table.add(i).write(page);
            }
            if i % 2 == 1 {
                // SAFETY: `page` is a whole mapping of ours.
                unsafe { ulib::mprotect(page, PAGE_SIZE, prot::READ) }.expect("mprotect");
            }
        }
        SmallVmas { table, count }
    }

    fn page(&self, i: usize) -> *mut u8 {
        // SAFETY: slot `i < count` was written by `new`.
        unsafe { self.table.add(i).read() }
    }

    /// Checks that every page still holds what was written.
    fn check(&self) {
        for i in 0..self.count {
            // SAFETY: every page stays mapped readable until `drop`.
            let byte = unsafe { self.page(i).read_volatile() };
            check!(byte == i as u8 | 1, "small VMA {} reads {}", i, byte);
        }
    }
}

impl Drop for SmallVmas {
    fn drop(&mut self) {
        for i in 0..self.count {
            // SAFETY: only the table's pointer points into the page, not used again.
            unsafe { ulib::munmap(self.page(i), PAGE_SIZE) }.expect("munmap one page");
        }
        // SAFETY: only `table` points into the table mapping, not used again.
        unsafe { ulib::munmap(self.table as *mut u8, Self::table_bytes(self.count)) }.expect("munmap table");
    }
}

/// mmap + munmap of an untouched 1 MiB mapping, ps per pair.
fn map_unmap_1mib() -> u64 {
    best_of(NR_MAPS, || {
        let p = ulib::mmap(1 << 20, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap 1 MiB");
        // SAFETY: nothing points into the fresh mapping.
        unsafe { ulib::munmap(p, 1 << 20) }.expect("munmap 1 MiB");
    })
}

/// Write faults on a fresh [`FAULT_BYTES`] mapping, ps per page (best of rounds).
fn write_faults() -> u64 {
    let nr_pages = FAULT_BYTES / PAGE_SIZE;
    (0..ROUNDS)
        .map(|_| {
            let region = ulib::mmap(FAULT_BYTES, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap 4 MiB");
            let t0 = ulib::now_ns();
            for page in 0..nr_pages {
                // SAFETY: the byte is inside the fresh read-write region.
                unsafe { region.add(page * PAGE_SIZE).write_volatile(1) };
            }
            let ps = (ulib::now_ns() - t0) * 1000 / nr_pages as u64;
            // SAFETY: only `region` points into the mapping, not used again.
            unsafe { ulib::munmap(region, FAULT_BYTES) }.expect("munmap 4 MiB");
            ps
        })
        .min()
        .unwrap_or(0)
}

/// `fork()` until it returns in the parent (the child exits at once), ps (best of rounds).
fn fork_cost() -> u64 {
    (0..ROUNDS)
        .map(|_| {
            let t0 = ulib::now_ns();
            let pid = match ulib::fork().expect("fork") {
                Fork::Child => ulib::exit(0),
                Fork::Parent(pid) => pid,
            };
            let ns = ulib::now_ns() - t0;
            let (reaped, status) = ulib::waitpid(pid).expect("wait");
            check!(reaped == pid && status == WaitStatus::Exited(0), "fork child {} {}", reaped, status);
            ns * 1000
        })
        .min()
        .unwrap_or(0)
}

/// Maps `mib` MiB and writes every page; returns the region.
fn touched_region(mib: usize) -> *mut u8 {
    let len = mib << 20;
    let region = ulib::mmap(len, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap touched region");
    for page in 0..len / PAGE_SIZE {
        // SAFETY: the byte is inside the fresh read-write region.
        unsafe { region.add(page * PAGE_SIZE).write_volatile(3) };
    }
    region
}

fn main() -> i32 {
    let t0 = ulib::now_ns();
    println!("vmascale: scaling rows, VMA counts 1 to 10000, sizes 16 to 256 MiB");
    for &count in &VMA_COUNTS {
        // The process already has a few VMAs (code, data, stack): add count - 1.
        let small = SmallVmas::new(count - 1);
        print_row("mmap+munmap 1 MiB,", count, "VMAs", map_unmap_1mib());
        print_row("write fault,", count, "VMAs (per page)", write_faults());
        print_row("fork,", count, "VMAs (per fork)", fork_cost());
        small.check();
    }
    for &mib in &SIZES_MIB {
        let region = touched_region(mib);
        print_row("fork,", mib, "MiB touched (per fork)", fork_cost());
        let nr_pages = (mib << 20) / PAGE_SIZE;
        let t1 = ulib::now_ns();
        // SAFETY: only `region` points into the mapping, not used again.
        unsafe { ulib::munmap(region, mib << 20) }.expect("munmap touched region");
        let ps = (ulib::now_ns() - t1) * 1000 / nr_pages as u64;
        print_row("munmap", mib, "MiB touched (per page)", ps);
    }
    println!("bench: done in {} ms", (ulib::now_ns() - t0) / 1_000_000);
    0
}
