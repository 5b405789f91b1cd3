#!/usr/bin/env python3
"""Per-operation instruction profile from two insnprof runs (see insnprof.c).

    insnprof.py KERNEL SMALL.out BIG.out NR_OPS [--functions N] [--phase NAME]

SMALL and BIG are the counts of two runs that differ only in how many operations
they do (pagefault1 rounds=1 and rounds=65: 65536 more faults, each followed by its
munmap); the difference, divided by NR_OPS, is the cost of one operation with boot
and setup cancelled out. Kernel addresses are mapped to KERNEL's symbols (`nm`;
the image is linked at 0 and loaded at KERNEL_BASE) and summed by function and by
phase of the fault path; everything below KERNEL_BASE is ring 3.
"""
import argparse
import bisect
import collections
import re
import subprocess

KERNEL_BASE = 0xFFFFFFFF80000000

# Phases of an anonymous write fault and its munmap, by function name (first match
# wins). Functions inlined into another are counted in their caller's phase.
PHASES = [
    ("ring 3 (the program's loop)", [r"^<user>$"]),
    ("munmap: PTE clear, rmap, untrack, free", [r"untrack", r"Ring<.*>::remove", r"free", r"unmap", r"drop_mapping_ref",
                                                 r"release_leaf", r"update_range", r"clear_links", r"Pte>::frame", r"munmap",
                                                 r"ReleaseBatch", r"flush_and_release", r"recycle_single", r"drain_oldest",
                                                 r"on_remove_all"]),
    ("trap entry/exit, dispatch, back-to-user checks", [r"^trap_common$", r"^trap_return$", r"trap::dispatch", r"trap_entry",
                                                        r"proc::trap::page_fault", r"park_if_deactivated", r"current_is_killed",
                                                        r"exit_if_killed", r"current_pid", r"sched::current"]),
    ("fault entry: find the space, retry loop, kswapd/memcg/heap checks, counters",
     [r"proc::trap::resolve", r"current_space", r"retry::fault_in", r"wake_kswapd", r"memcg::charge", r"headroom",
      r"record_fault", r"note_free_frames", r"nr_free_frames", r"try_lock", r"enforce_after_fault",
      r"trace_after_fault", r"should_fail"]),
    ("VMA lookup", [r"btree", r"VmaTree>::find", r"vma::"]),
    ("page walk and decision", [r"handle_page_fault", r"handle_general", r"fault::fast::try_fault", r"descend::", r"leaf_slot", r"as_leaf", r"decide", r"do_no_page", r"huge_leaf",
                                r"thp::"]),
    ("frame allocation (buddy, per-CPU lists, zero pool)", [r"alloc_from_buddy", r"split_block", r"zero_pool", r"NewPage",
                                                            r"alloc_zeroed", r"BuddyAllocator>::alloc", r"alloc_leaving",
                                                            r"pcp::alloc", r"alloc_or_drain", r"split_allocated",
                                                            r"take_listed", r"alloc_user_at_hand", r"take_zeroed_at_hand", r"pcp::pop"]),
    ("page zeroing", [r"zero_page"]),
    ("PTE write (second walk, table creation)", [r"write_slot", r"fault::fast::map_new_page", r"descend_or_create", r"PageTable>::map::", r"install_page", r"map_empty"]),
    ("reverse map and replacement-policy insert", [r"map_new", r"track", r"insert_behind_hand", r"set_links", r"set_next",
                                                   r"set_prev", r"is_tracked", r"set_age", r"on_insert",
                                                   r"apply_pending_first_mapping", r"finish_first_mapping", r"link_between"]),
    ("frame descriptors (shared by allocation and free)", [r"BuddyAllocator>::desc", r"with_buddy", r"with_desc"]),
]


def symbols(kernel):
    table = []
    nm = subprocess.run(["nm", "-n", "-C", "--defined-only", kernel], capture_output=True, text=True, check=True)
    for line in nm.stdout.splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[1] in "tTwW":
            table.append((int(parts[0], 16), parts[2]))
    return table


def load(path):
    with open(path) as f:
        return {int(a, 16): int(c) for a, c, *_ in (line.split() for line in f)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kernel")
    p.add_argument("small")
    p.add_argument("big")
    p.add_argument("nr_ops", type=float)
    p.add_argument("--functions", type=int, default=30)
    p.add_argument("--phase")
    args = p.parse_args()
    table = symbols(args.kernel)
    starts = [s for s, _ in table]
    small, big = load(args.small), load(args.big)
    by_function = collections.Counter()
    for addr in set(small) | set(big):
        n = big.get(addr, 0) - small.get(addr, 0)
        if addr < KERNEL_BASE:
            by_function["<user>"] += n
            continue
        i = bisect.bisect_right(starts, addr - KERNEL_BASE) - 1
        by_function[table[i][1] if i >= 0 else "?"] += n
    by_phase = collections.Counter()
    members = collections.defaultdict(collections.Counter)
    for name, n in by_function.items():
        phase = next((ph for ph, pats in PHASES if any(re.search(pat, name) for pat in pats)), "other")
        by_phase[phase] += n
        members[phase][name] += n
    ops = args.nr_ops
    print("| phase | instructions per operation |\n|---|---|")
    for phase in [ph for ph, _ in PHASES] + ["other"]:
        print(f"| {phase} | {by_phase[phase] / ops:.0f} |")
    print(f"| total | {sum(by_phase.values()) / ops:.0f} |\n")
    shown = members[args.phase] if args.phase else by_function
    for name, n in shown.most_common(args.functions):
        print(f"{n / ops:9.1f}  {name[:140]}")


if __name__ == "__main__":
    main()
