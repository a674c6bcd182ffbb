"""Reporting for `lgans-bench`: the text/markdown table, the issue's targets, the GPU roofline, the plot."""
from __future__ import annotations

from collections import defaultdict

import torch

from .core import IMPLS, OPS, PASSES

MIB = 2**20

# Special-function-unit (MUFU: ex2, lg2, rcp, rsqrt, sin, cos) results per clock per SM, from
# the CUDA C++ Programming Guide's arithmetic-instruction throughput table: 16 for every
# compute capability from 5.0 (Maxwell) through 9.0 (Hopper) and 10.x/12.x (Blackwell).
SFU_OPS_PER_CLK_PER_SM = {5: 16, 6: 16, 7: 16, 8: 16, 9: 16, 10: 16, 12: 16}
# softplus(z) = max(z, 0) + log1p(exp(-|z|)) costs one MUFU.EX2 and one MUFU.LG2 per pair.
MUFU_PER_PAIR = 2
GPU_PAIRS_SIZE = 65_536      # all pairs at N = M = 65,536
GPU_ELEMWISE_SIZE = 64 * MIB  # elementwise at N = 64M


def fmt_size(n: int) -> str:
    for unit, shift in (("M", 20), ("K", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def case_label(rec: dict) -> str:
    s = fmt_size(rec["size"])
    return f"{s}x{s}" if OPS[rec["op"]].kind == "pairs" else s


def index(records: list[dict]) -> dict:
    """{(device, dtype, op, size, pass): {impl: record}}."""
    out: dict = defaultdict(dict)
    for r in records:
        out[(r["device"], r["dtype"], r["op"], r["size"], r["pass"])][r["impl"]] = r
    return out


def ratio(by_impl: dict, slow: str, fast: str) -> float | None:
    if slow in by_impl and fast in by_impl and by_impl[fast]["median_ms"] > 0:
        return by_impl[slow]["median_ms"] / by_impl[fast]["median_ms"]
    return None


# ----------------------------------------------------------------------------- table
COLUMNS = ("device", "dtype", "op", "size", "pass",
           "fused ms", "eager ms", "compile ms", "eager/fused", "compile/fused", "eager/compile",
           "peak fused", "peak eager", "peak compile")


def _ms(rec: dict | None) -> str:
    if rec is None:
        return "n/a"
    spread = (rec["p80_ms"] - rec["p20_ms"]) / 2 / rec["median_ms"] * 100 if rec["median_ms"] > 0 else 0.0
    return f"{rec['median_ms']:.4g} ±{spread:.0f}%"


def _x(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}x"


def fmt_bytes(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} B"


def _peak(rec: dict | None) -> str:
    return "n/a" if rec is None else fmt_bytes(rec["peak_bytes"])


def table_rows(records: list[dict]) -> list[tuple[str, ...]]:
    rows = []
    for (dev, dt, op, size, p), by in sorted(index(records).items(),
                                             key=lambda kv: (*kv[0][:4], PASSES.index(kv[0][4]))):
        any_rec = next(iter(by.values()))
        rows.append((dev, dt, op, case_label(any_rec), p,
                     *(_ms(by.get(i)) for i in IMPLS),
                     _x(ratio(by, "eager", "fused")), _x(ratio(by, "compile", "fused")),
                     _x(ratio(by, "eager", "compile")),
                     *(_peak(by.get(i)) for i in IMPLS)))
    return rows


def format_text(rows, columns=COLUMNS) -> str:
    widths = [max(len(c), *(len(r[k]) for r in rows)) if rows else len(c) for k, c in enumerate(columns)]
    line = lambda cells: "  ".join(c.ljust(w) if k < 5 else c.rjust(w) for k, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def format_markdown(rows, columns=COLUMNS) -> str:
    head = "| " + " | ".join(columns) + " |\n|" + "|".join("---" if k < 5 else "---:" for k in range(len(columns))) + "|"
    return "\n".join([head, *("| " + " | ".join(r) + " |" for r in rows)])


# ----------------------------------------------------------------------------- targets
# Issue 13's CPU float32 forward+backward targets: (sizes, minimum eager/fused, minimum
# compile/fused) for the elementwise ops; all pairs at 4096 x 4096 with O(N + M) memory.
ELEMWISE_TARGETS = (((64, 256, 1 << 10), 2.0, 1.0), ((1 << 20,), 3.0, 1.2), ((16 << 20, 64 << 20), None, 1.0))
ELEMWISE_OPS = ("softplus_mean", "sgan_d", "relativistic_paired", "relativistic_average")
PAIRS_TARGET = (4096, 40.0, 10.0, 1.0)  # N = M, eager/fused, compile/fused, fused peak MiB


def evaluate_targets(records: list[dict]) -> list[dict]:
    """The targets above, for the cases this run measured."""
    idx, out = index(records), []

    def add(what, value, op_, threshold, unit="x"):
        out.append({"target": what, "measured": value, "threshold": threshold, "op": op_,
                    "met": None if value is None else (value >= threshold if op_ == ">=" else value < threshold),
                    "unit": unit})

    n, eager_min, compile_min, peak_mib = PAIRS_TARGET
    by = idx.get(("cpu", "float32", "relativistic_all_pairs", n, "fwd+bwd"))
    if by and "fused" in by:
        add(f"all pairs {n}x{n}: eager / fused", ratio(by, "eager", "fused"), ">=", eager_min)
        add(f"all pairs {n}x{n}: compile / fused", ratio(by, "compile", "fused"), ">=", compile_min)
        add(f"all pairs {n}x{n}: fused peak extra memory", by["fused"]["peak_bytes"] / MIB, "<", peak_mib, "MiB")
        if "eager" in by:
            add(f"all pairs {n}x{n}: eager peak extra memory", by["eager"]["peak_bytes"] / MIB, ">=", 64.0, "MiB")
    for name in ELEMWISE_OPS:
        for sizes, eager_min, compile_min in ELEMWISE_TARGETS:
            for size in sizes:
                by = idx.get(("cpu", "float32", name, size, "fwd+bwd"))
                if not by or "fused" not in by:
                    continue
                if eager_min is not None and "eager" in by:
                    add(f"{name} {fmt_size(size)}: eager / fused", ratio(by, "eager", "fused"), ">=", eager_min)
                if "compile" in by:
                    add(f"{name} {fmt_size(size)}: compile / fused", ratio(by, "compile", "fused"), ">=", compile_min)
    return out


def format_targets(targets: list[dict]) -> str:
    lines = []
    for t in targets:
        v = "n/a" if t["measured"] is None else f"{t['measured']:.3g}{'x' if t['unit'] == 'x' else ' MiB'}"
        status = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
        thr = f"{t['threshold']:g}{'x' if t['unit'] == 'x' else ' MiB'}"
        lines.append(f"{t['target']:<46} {v:>10}  (target {t['op']} {thr}): {status}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- GPU roofline
def gpu_limits(device_index: int = 0) -> dict:
    """SFU-bound pairs/s and DRAM bandwidth of a CUDA device, from its properties."""
    p = torch.cuda.get_device_properties(device_index)
    sfu = SFU_OPS_PER_CLK_PER_SM.get(p.major, 16)
    clock_hz = p.clock_rate * 1e3  # clock_rate is in kHz
    return {
        "name": p.name, "capability": f"{p.major}.{p.minor}", "sm_count": p.multi_processor_count,
        "clock_ghz": clock_hz / 1e9, "sfu_ops_per_clk_per_sm": sfu, "mufu_per_pair": MUFU_PER_PAIR,
        "sfu_pairs_per_s": p.multi_processor_count * sfu * clock_hz / MUFU_PER_PAIR,
        # double data rate: 2 transfers per memory clock (kHz) over a bus of memory_bus_width bits
        "dram_gb_per_s": 2 * p.memory_clock_rate * 1e3 * p.memory_bus_width / 8 / 1e9,
    }


def gpu_section(records: list[dict], limits: dict) -> list[dict]:
    """Achieved pairs/s (all pairs, N = M = 65,536) and GB/s (elementwise, N = 64M) vs the limits."""
    rows = []
    for r in records:
        if r["device"] != "cuda" or r["impl"] != "fused":
            continue
        spec, sec = OPS[r["op"]], r["median_ms"] / 1e3
        if spec.kind == "pairs" and r["size"] == GPU_PAIRS_SIZE and r["pass"] in ("fwd", "fwd+bwd"):
            achieved = r["n"] * r["m"] / sec
            rows.append({"op": r["op"], "dtype": r["dtype"], "pass": r["pass"], "size": r["size"],
                         "metric": "pairs/s", "achieved": achieved, "limit": limits["sfu_pairs_per_s"],
                         "fraction": achieved / limits["sfu_pairs_per_s"]})
        elif spec.kind == "elementwise" and r["size"] == GPU_ELEMWISE_SIZE:
            item = torch.empty((), dtype=getattr(torch, r["dtype"])).element_size()
            # compulsory traffic: fwd reads the inputs; bwd reads them and writes the gradients
            per_input = {"fwd": 1, "bwd": 2, "fwd+bwd": 3}[r["pass"]]
            achieved = per_input * spec.n_inputs * r["size"] * item / sec / 1e9
            rows.append({"op": r["op"], "dtype": r["dtype"], "pass": r["pass"], "size": r["size"],
                         "metric": "GB/s", "achieved": achieved, "limit": limits["dram_gb_per_s"],
                         "fraction": achieved / limits["dram_gb_per_s"]})
    return rows


def format_gpu(rows: list[dict], limits: dict) -> str:
    head = (f"{limits['name']} (sm_{limits['capability']}): {limits['sm_count']} SMs x "
            f"{limits['sfu_ops_per_clk_per_sm']} SFU ops/clk x {limits['clock_ghz']:.2f} GHz / "
            f"{limits['mufu_per_pair']} MUFU per pair = {limits['sfu_pairs_per_s']:.3g} pairs/s; "
            f"DRAM {limits['dram_gb_per_s']:.0f} GB/s")
    body = [f"{r['op']:<24} {r['dtype']:<9} {r['pass']:<8} {fmt_size(r['size']):>6}  "
            f"{r['achieved']:.3g} {r['metric']} = {100 * r['fraction']:.1f}% of {r['limit']:.3g}" for r in rows]
    if not rows:
        body = [f"(no fused CUDA records at N = M = {GPU_PAIRS_SIZE} or N = {fmt_size(GPU_ELEMWISE_SIZE)})"]
    return "\n".join([head, *body])


# ----------------------------------------------------------------------------- plot
def plot_speedups(records: list[dict], path: str, note: str | None = None) -> None:
    """Forward+backward speed-up against size, one panel per op, log-log, PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    idx = index([r for r in records if r["pass"] == "fwd+bwd"])
    have_fused = any(r["impl"] == "fused" for r in records)
    fast = "fused" if have_fused else "compile"
    slows = ("eager", "compile") if have_fused else ("eager",)
    names = [n for n in OPS if any(k[2] == n for k in idx)]
    cols = min(3, max(1, len(names)))
    rows_n = (len(names) + cols - 1) // cols or 1
    fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.8 * rows_n), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_visible(False)
    for ax, name in zip(axes.flat, names):
        series = defaultdict(list)
        for (dev, dt, op, size, _), by in sorted(idx.items()):
            if op == name:
                for slow in slows:
                    v = ratio(by, slow, fast)
                    if v is not None:
                        series[(slow, dev, dt)].append((size, v))
        for (slow, dev, dt), pts in sorted(series.items()):
            ax.plot(*zip(*pts), marker="o", linestyle="-" if slow == "eager" else "--",
                    label=f"{slow}/{fast} ({dev}, {dt})")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_title(name)
        ax.set_xlabel("N = M" if OPS[name].kind == "pairs" else "N")
        ax.set_ylabel(f"speed-up of {fast} (fwd+bwd)")
        ax.grid(True, which="both", alpha=0.3)
        if series:
            ax.legend(fontsize=7)
    title = "lgans-bench: speed-up, forward+backward"
    if note:
        title += f"\n{note}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
