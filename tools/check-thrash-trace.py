#!/usr/bin/env python3
"""Checks a fault trace of `thrash` against thrash's true reference string.

    cargo run -- --memory 256M --cmdline "run=thrash record=faults" > LOG
    python3 tools/check-thrash-trace.py LOG [WINDOW] [--bounds 384,1536,...]

`thrash` (kernel/user/src/bin/thrash.rs) writes its 6144 pages in order, then makes
100 000 touches from a fixed xorshift sequence; this regenerates that string and
walks the recorded trace (kernel/src/mm/reclaim/record.rs, `record=faults`): every
recorded touch of thrash's mapping must be the next true touch, and every true touch
the trace leaves out must be to a page in the recorder's window at that moment (the
last WINDOW pages faulted in, default 8, rebuilt from the trace itself). Prints the
counts; exits 1 on a mismatch.

With --bounds, it also prints, at each frame count, OPT's faults and those of A0
told thrash's distribution: a page of the hot quarter (or the code and stack
pages) is 12x likelier to be used next than a cold one, so it evicts a resident
cold page (the oldest) before any hot one. Under independent references A0 gives
the fewest faults to expect of any policy that does not see the future (Aho,
Denning and Ullman, 1971); a real policy must also learn which pages are hot.
"""
import heapq
import sys
from collections import Counter, OrderedDict

MASK = (1 << 64) - 1
N = 6144
HOT = N // 4


def thrash_string():
    out = [("w", p) for p in range(N)]
    x = 0x2545F4914F6CDD1D
    for _ in range(100_000):
        x ^= (x << 13) & MASK
        x ^= x >> 7
        x ^= (x << 17) & MASK
        page = (x >> 8) % HOT if x % 10 < 8 else (x >> 8) % N
        out.append(("w" if (x >> 20) % 4 == 0 else "r", page))
    return out


def recorded(path):
    refs, inside = [], False
    for line in open(path, errors="replace"):
        line = line.strip()
        if line == "@@trace begin":
            inside = True
        elif line == "@@trace end":
            break
        elif inside and line[:2] in ("r ", "w "):
            refs.append((line[0], int(line[2:], 16)))
    return refs


def opt_faults(pages, nr_frames):
    """Belady's OPT: evicts the resident page used furthest in the future."""
    next_use, last = [0] * len(pages), {}
    for i in range(len(pages) - 1, -1, -1):
        next_use[i] = last.get(pages[i], 1 << 40)
        last[pages[i]] = i
    resident, heap, faults = {}, [], 0
    for i, page in enumerate(pages):
        if page not in resident:
            faults += 1
            if len(resident) == nr_frames:
                while True:
                    when, victim = heapq.heappop(heap)
                    if resident.get(victim) == -when:
                        del resident[victim]
                        break
        resident[page] = next_use[i]
        heapq.heappush(heap, (-next_use[i], page))
    return faults


def a0_faults(pages, nr_frames, hot):
    """A0 told the classes: evicts the oldest resident cold page, else the oldest hot one."""
    cold_resident, hot_resident, faults = OrderedDict(), OrderedDict(), 0
    for page in pages:
        if page in cold_resident or page in hot_resident:
            continue
        faults += 1
        if len(cold_resident) + len(hot_resident) == nr_frames:
            (cold_resident if cold_resident else hot_resident).popitem(last=False)
        (hot_resident if page in hot else cold_resident)[page] = True
    return faults


def print_bounds(refs, base, frame_counts):
    pages = [page for _, page in refs]
    hot = {page for page in set(pages) if not base + HOT <= page < base + N}
    print("frames        OPT   A0 (told the hot set)   ratio")
    for nr_frames in frame_counts:
        opt, a0 = opt_faults(pages, nr_frames), a0_faults(pages, nr_frames, hot)
        print(f"{nr_frames:6} {opt:10} {a0:23} {a0 / opt:7.2f}")


def main():
    args = sys.argv[1:]
    bounds = None
    if "--bounds" in args:
        at = args.index("--bounds")
        bounds = [int(n) for n in args[at + 1].split(",")]
        del args[at:at + 2]
    path = args[0]
    window = int(args[1]) if len(args) > 1 else 8
    true, refs = thrash_string(), recorded(path)
    seen = Counter(p for _, p in refs)
    base = min(p for p in seen if all(p + i in seen for i in (0, 1, N - 1)))
    win, j, missed, others = [], 0, 0, 0
    for k, (_, page) in enumerate(refs):
        if base <= page < base + N:
            while j < len(true) and true[j][1] != page - base:
                if true[j][1] + base not in win:
                    print(f"MISMATCH: recorded reference {k} (page {page - base}) but true touch {j} {true[j]} is not in the window")
                    sys.exit(1)
                missed += 1
                j += 1
            j += 1
        else:
            others += 1
        if page not in win:
            win.append(page)
            if len(win) > window:
                win.pop(0)
    print(f"trace: {len(refs)} references, {len(refs) - others} to thrash's mapping, {others} to other pages (code, stack)")
    print(f"thrash's string: {len(true)} touches: {j - missed} recorded in order, {missed} left out (each to a page in the window), {len(true) - j} missing at the end")
    if bounds:
        print_bounds(refs, base, bounds)
    sys.exit(0 if j == len(true) else 1)


if __name__ == "__main__":
    main()
