//! `ksm`: same-page merging from ring 3, and what it saves.
//!
//! Four processes (this one and three children) each write the same 16 MiB (the
//! same pattern at the same addresses: an area mapped before the forks and first
//! written after them, so no page is shared by fork) into a MADV_MERGEABLE area.
//! Then the parent runs scans (`ksm_ctl(SCAN)`, the pass ksmd runs) and reports
//! the frames freed, `pages_shared`/`pages_sharing`, and the scan's cost per page:
//! for the scan that merges, and for a scan of pages already merged. Every process
//! then checks every byte, writes one page (a copy-on-write copy of a merged page)
//! and exits. Argument `mib=N`: MiB per process (default 16). Exit 0 on success.
#![no_std]
#![no_main]

use ulib::{Fork, PAGE_SIZE, WaitStatus, check, ksm_op, madv, map, pattern, println, prot};

ulib::entry!(main);

/// Processes, the parent included.
const NR_PROCS: usize = 4;
const SEED: u64 = 0x6b73_6d00;

fn main() -> i32 {
    let mut buf = [0u8; 128];
    let args = ulib::args(&mut buf);
    let mib: usize = ulib::arg_value(args, "mib").and_then(|v| v.parse().ok()).unwrap_or(16);
    let nr_pages = mib * (1 << 20) / PAGE_SIZE;
    let base = ulib::mmap(nr_pages * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE).expect("mmap") as *mut u64;
    // SAFETY: the advice changes no contents; the range is the mapping.
    unsafe { ulib::madvise(base as *mut u8, nr_pages * PAGE_SIZE, madv::MERGEABLE) }.expect("madvise(MERGEABLE)");
    let [ready_r, ready_w] = ulib::fs::pipe().expect("pipe");
    let [go_r, go_w] = ulib::fs::pipe().expect("pipe");
    let mut children = [0; NR_PROCS - 1];
    for child in children.iter_mut() {
        match ulib::fork().expect("fork") {
            Fork::Child => {
                let _ = ulib::fs::close(go_w);
                ulib::exit(child_main(base, nr_pages, ready_w, go_r));
            }
            Fork::Parent(pid) => *child = pid,
        }
    }
    let _ = ulib::fs::close(go_r);
    // SAFETY: the fresh private mapping, used only through `base`.
    unsafe { pattern::fill(base, nr_pages, SEED) };
    let mut byte = [0u8; 1];
    for _ in 0..NR_PROCS - 1 {
        check!(ulib::fs::read(ready_r, &mut byte) == Ok(1), "a child did not get ready");
    }
    let before = ulib::memstat().expect("memstat");
    let merged_before = ulib::ksm_ctl(ksm_op::PAGES_SHARING, 0).expect("ksm_ctl");
    // One pass to the end of the scan: a whole scan, as ksmd is off (`run` 0 at boot).
    let scanned = (NR_PROCS * nr_pages) as u64;
    let t0 = ulib::now_ns();
    let nr_merged = ulib::ksm_ctl(ksm_op::SCAN, u64::MAX).expect("ksm_ctl(SCAN)");
    let merge_ns = ulib::now_ns() - t0;
    let t1 = ulib::now_ns();
    ulib::ksm_ctl(ksm_op::SCAN, u64::MAX).expect("ksm_ctl(SCAN)");
    let rescan_ns = ulib::now_ns() - t1;
    let after = ulib::memstat().expect("memstat");
    let shared = ulib::ksm_ctl(ksm_op::PAGES_SHARED, 0).expect("ksm_ctl");
    let sharing = ulib::ksm_ctl(ksm_op::PAGES_SHARING, 0).expect("ksm_ctl") - merged_before;
    let freed = after.free_frames.saturating_sub(before.free_frames);
    println!("ksm: {} processes x {} MiB of identical pages: {} pages merged in one scan", NR_PROCS, mib, nr_merged);
    println!(
        "ksm: pages_shared {} pages_sharing {} (+{}): {} MiB saved; free frames +{} ({} MiB)",
        shared,
        sharing + merged_before,
        sharing,
        (sharing * PAGE_SIZE as u64) >> 20,
        freed,
        (freed * PAGE_SIZE as u64) >> 20
    );
    println!(
        "ksm: scan cost {} ns per page while merging, {} ns per page already merged ({} pages a scan)",
        merge_ns / scanned,
        rescan_ns / scanned,
        scanned
    );
    let want = ((NR_PROCS - 1) * nr_pages) as u64;
    check!(nr_merged >= want, "{} pages merged, want {}", nr_merged, want);
    check!(sharing >= want, "pages_sharing grew by {}, want {}", sharing, want);
    // The stable index's nodes (about 200 bytes per merged frame) come from the heap.
    check!(freed + want / 16 >= want, "only {} frames freed for {} merged pages", freed, want);
    // Let the children check and write; then check and write here.
    let _ = ulib::fs::close(go_w);
    let code = verify_and_write(base, nr_pages);
    for pid in children {
        let (_, status) = ulib::waitpid(pid).expect("waitpid");
        check!(status == WaitStatus::Exited(0), "child {}: {:?}", pid, status);
    }
    code
}

/// A child: writes the pattern, says so, waits for the parent's word, checks.
fn child_main(base: *mut u64, nr_pages: usize, ready_w: i32, go_r: i32) -> i32 {
    // SAFETY: this process's private copy of the mapping, used only through `base`.
    unsafe { pattern::fill(base, nr_pages, SEED) };
    let _ = ulib::write(ready_w, b"r");
    let mut byte = [0u8; 1];
    let _ = ulib::fs::read(go_r, &mut byte); // 0 bytes: the parent closed it
    verify_and_write(base, nr_pages)
}

/// Checks every byte, rewrites one page (its COW copy) and checks it; 0 if all is right.
fn verify_and_write(base: *mut u64, nr_pages: usize) -> i32 {
    // SAFETY: the mapping, readable.
    let bad = unsafe { pattern::nr_bad_pages(base, nr_pages, SEED) };
    check!(bad == 0, "pid {}: {} pages lost their bytes", ulib::getpid(), bad);
    let page = nr_pages / 2;
    // SAFETY: one page inside the mapping.
    unsafe { pattern::fill(base.add(page * PAGE_SIZE / 8), 1, SEED + ulib::getpid() as u64) };
    // SAFETY: as above.
    let bad = unsafe { pattern::nr_bad_pages(base.add(page * PAGE_SIZE / 8), 1, SEED + ulib::getpid() as u64) };
    check!(bad == 0, "pid {}: the rewritten page is wrong", ulib::getpid());
    0
}
