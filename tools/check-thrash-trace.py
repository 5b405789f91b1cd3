#!/usr/bin/env python3
"""Checks a fault trace of `thrash` against thrash's true reference string.

    cargo run -- --memory 256M --cmdline "run=thrash record=faults" > LOG
    python3 tools/check-thrash-trace.py LOG [WINDOW]

`thrash` (kernel/user/src/bin/thrash.rs) writes its 6144 pages in order, then makes
100 000 touches from a fixed xorshift sequence; this regenerates that string and
walks the recorded trace (kernel/src/mm/reclaim/record.rs, `record=faults`): every
recorded touch of thrash's mapping must be the next true touch, and every true touch
the trace leaves out must be to a page in the recorder's window at that moment (the
last WINDOW pages faulted in, default 8, rebuilt from the trace itself). Prints the
counts; exits 1 on a mismatch.
"""
import sys
from collections import Counter

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


def main():
    path = sys.argv[1]
    window = int(sys.argv[2]) if len(sys.argv) > 2 else 8
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
    sys.exit(0 if j == len(true) else 1)


if __name__ == "__main__":
    main()
