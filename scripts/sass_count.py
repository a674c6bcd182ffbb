"""Instructions and MUFU ops per pair of the all-pairs tiles kernel, from its SASS
(the method of docs/cuda.md; no GPU needed).

    nvcc -O3 -lineinfo -std=c++17 -arch=sm_90 -cubin -Icsrc -I<torch includes> \\
        -o all_pairs.cubin csrc/cuda/all_pairs.cu
    cuobjdump -sass all_pairs.cubin > all_pairs.sass      # needs nvdisasm on PATH
    python scripts/sass_count.py all_pairs.sass

It takes tiles_kernel<float, true> (float32 accumulation, with gradients), finds
the 16 unrolled rows of a row tile by their row-partial stores (16 STS to one
base register at evenly spaced offsets), and follows the path of rows 1..15 through each branch of the row's
path test (the p form has two MUFU.RCP, the S form one). Per row tile: the row
tile loop without the 16 rows and without the exact rows' block; per chunk: the
chunk loop without the row tile loop. Everything on those paths is counted,
branches and shared-memory traffic included.
"""
from __future__ import annotations

import collections
import re
import sys

COND_BRA = re.compile(r"@!?P\d+ BRA (0x[0-9a-f]+)$")


def kernel_lines(sass: str) -> list[tuple[int, str]]:
    """(address, instruction) of tiles_kernel<float, true>."""
    out, on = [], False
    for line in sass.splitlines():
        if "Function :" in line:
            on = "tiles_kernelIfLb1E" in line
        m = re.match(r"\s+/\*([0-9a-f]{4,6})\*/\s+(.*?)\s*;", line)
        if on and m:
            out.append((int(m.group(1), 16), m.group(2)))
    if not out:
        sys.exit("no tiles_kernel<float, true> in the input")
    return out


def opcode(ins: str) -> str:
    return re.sub(r"^@!?U?P\w+ ", "", ins).split()[0].split(".")[0]


def main(path: str) -> None:
    lines = kernel_lines(open(path).read())
    addr = [a for a, _ in lines]
    ins = [i for _, i in lines]
    at = {a: k for k, a in enumerate(addr)}
    target = lambda k: at[int(ins[k].split()[-1], 16)]
    # the row partials: 16 stores to one base register at offsets 0, d, 2d, ..., 15d
    sts = collections.defaultdict(list)
    for k, s in enumerate(ins):
        m = re.match(r"STS \[(R\d+)(?:\+0x([0-9a-f]+))?\], R\d+$", s)
        if m:
            sts[m.group(1)].append((k, int(m.group(2) or "0", 16)))
    rows = None
    for stores in sts.values():
        for i in range(len(stores) - 15):
            run = stores[i:i + 16]
            d = run[1][1]
            if d and all(off == j * d for j, (_, off) in enumerate(run)):
                rows = [k for k, _ in run]
    assert rows, "expected 16 unrolled row stores"

    def walk(a: int, b: int, take: bool) -> list[str]:
        path, k = [], a
        while True:
            path.append(ins[k])
            if k == b:
                return path
            m = COND_BRA.match(ins[k])
            if ins[k].startswith("BRA ") or (m and take):
                k = target(k)
            else:
                k += 1

    forms = collections.defaultdict(list)
    for r in range(1, 16):
        for take in (False, True):
            p = walk(rows[r - 1] + 1, rows[r], take)
            forms["p form" if sum(opcode(s) == "MUFU" for s in p) == 2 else "S form"].append(p)
    for name, paths in sorted(forms.items()):
        n = sorted(len(p) for p in paths)
        by = collections.Counter(opcode(s) if opcode(s) in ("FFMA", "FMUL", "FADD", "MUFU", "LDS", "STS", "BRA")
                                 else "other" for s in paths[0])
        print(f"{name}, rows 1-15: {n[0]}-{n[-1]} instructions per 8 pairs = {n[0] / 8:.2f}-{n[-1] / 8:.2f}/pair, "
              f"MUFU {sum(opcode(s) == 'MUFU' for s in paths[0])}; row 1: {dict(sorted(by.items()))}")

    loops = [k for k in range(len(ins)) if COND_BRA.match(ins[k]) and target(k) < k]
    tile_back = max((k for k in loops if k > rows[-1] and target(k) < rows[0]), key=target)
    chunk_back = min((k for k in loops if k > tile_back and target(k) < target(tile_back)), key=target)
    exact_back = max(k for k in loops if rows[-1] < target(k) < k < tile_back)
    vote = max(k for k in range(rows[0]) if opcode(ins[k]).startswith("VOTE"))
    row0 = next(k for k in range(vote, rows[0]) if opcode(ins[k]) == "LDS")  # row 0: its b load .. its store
    # the exact rows' block (F loads and their loop), skipped when a row tile has none
    skip = next(k for k in range(rows[-1], exact_back) if COND_BRA.match(ins[k]) and target(k) > exact_back)
    tile = [k for k in range(target(tile_back), tile_back + 1)
            if not (row0 <= k <= rows[-1] or skip < k < target(skip))]
    chunk = [k for k in range(target(chunk_back), chunk_back + 1) if not target(tile_back) <= k <= tile_back]
    for name, ks in (("per row tile (128 pairs per lane)", tile), ("per chunk (rtpb x 128 pairs per lane)", chunk)):
        mufu = sum(opcode(ins[k]) == "MUFU" for k in ks)
        print(f"{name}: {len(ks)} instructions, MUFU {mufu}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__))
