//! `memlimits`: the syscalls of issue #15 from user space, good and bad arguments:
//! `wsstat`, `oom_score_adj`, `memcg_create`, `memcg_attach`, `loadctl`. Each bad
//! argument must give Linux's errno (EINVAL, ESRCH), each good one success; a
//! forked child inherits the memory group and the OOM adjustment (it may lower
//! its own adjustment further, and a group's limits hold for it: a 64-page group
//! over which it writes 256 pages ends with at most ~64 of them resident), and
//! the program it then execs (`memlimits exec`) is still in that group.
//! Exit 0 on success, 1 naming the first case that failed.
#![no_std]
#![no_main]

use ulib::{Errno, Fork, PAGE_SIZE, WaitStatus, check, expect_err, expect_ok, map, prot};

ulib::entry!(main);

fn main() -> i32 {
    if ulib::argv::args().next() == Some("exec") {
        // Run by the child below through execve: the new program must still be
        // in the child's 64-page group.
        return fill_pages_in_a_64_page_group("after exec");
    }
    let me = expect_ok("wsstat(0)", ulib::wsstat(0));
    check!(me.tau_ms > 0, "wsstat: tau {} ms", me.tau_ms);
    expect_err("wsstat(no such pid)", ulib::wsstat(999_999), Errno::ESRCH);

    expect_err("oom_score_adj 1001", ulib::set_oom_score_adj(0, 1001), Errno::EINVAL);
    expect_err("oom_score_adj -1001", ulib::set_oom_score_adj(0, -1001), Errno::EINVAL);
    expect_err("oom_score_adj no such pid", ulib::set_oom_score_adj(999_999, 0), Errno::ESRCH);
    expect_ok("oom_score_adj -500", ulib::set_oom_score_adj(0, -500));

    expect_err("memcg_create(0, 0)", ulib::memcg_create(0, 0), Errno::EINVAL);
    expect_err("memcg_create high > max", ulib::memcg_create(64, 128), Errno::EINVAL);
    let group = expect_ok("memcg_create(64, 64)", ulib::memcg_create(64, 64));
    check!(group > 0, "memcg_create: group {}", group);
    expect_err("memcg_attach no such group", ulib::memcg_attach(0, 999), Errno::EINVAL);
    expect_err("memcg_attach no such pid", ulib::memcg_attach(999_999, group), Errno::ESRCH);

    expect_err("loadctl(2)", ulib::loadctl(2), Errno::EINVAL);
    expect_ok("loadctl(0)", ulib::loadctl(0));

    expect_ok("memcg_attach(self)", ulib::memcg_attach(0, group));
    match expect_ok("fork", ulib::fork()) {
        Fork::Child => {
            if fill_pages_in_a_64_page_group("child") != 0 {
                return 1;
            }
            expect_ok("oom_score_adj child", ulib::set_oom_score_adj(0, -900));
            // exec keeps the memory group (as Linux keeps the cgroup).
            let argv = [c"memlimits".as_ptr().cast::<u8>(), c"exec".as_ptr().cast::<u8>(), core::ptr::null()];
            let envp = [core::ptr::null::<u8>()];
            // SAFETY: NUL-terminated strings in NULL-terminated arrays; on success
            // this program is replaced.
            let errno = unsafe { ulib::execve(c"/bin/memlimits".as_ptr().cast(), argv.as_ptr(), envp.as_ptr()) };
            ulib::println!("FAIL: execve /bin/memlimits: {:?}", errno);
            1
        }
        Fork::Parent(child) => {
            let (_, status) = expect_ok("waitpid", ulib::waitpid(child));
            check!(status == WaitStatus::Exited(0), "child: {:?}", status);
            0
        }
    }
}

/// Writes 256 pages in a group of 64 (the caller's): at most ~64 stay resident and
/// every page reads back (evicted pages return from swap). 0 on success.
fn fill_pages_in_a_64_page_group(who: &str) -> i32 {
    const NR_PAGES: usize = 256;
    let base = expect_ok("mmap", ulib::mmap(NR_PAGES * PAGE_SIZE, prot::READ | prot::WRITE, map::PRIVATE)) as *mut u64;
    for page in 0..NR_PAGES {
        // SAFETY: the first word of a page of the fresh mapping.
        unsafe { base.add(page * 512).write_volatile(page as u64) };
    }
    let rss = expect_ok("wsstat", ulib::wsstat(0)).rss_pages;
    // The group holds at most 64 pages, plus one fault's.
    check!(rss <= 64 + 2, "{} in a 64-page group has {} pages resident", who, rss);
    for page in 0..NR_PAGES {
        // SAFETY: as above; pages evicted by the group come back from swap.
        let value = unsafe { base.add(page * 512).read_volatile() };
        check!(value == page as u64, "{}: page {} reads {} after local reclaim", who, page, value);
    }
    0
}
