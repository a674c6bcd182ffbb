"""`lgans-bench`: fused GAN-loss kernels against eager and torch.compile references.

    lgans-bench --quick                       # < 1 min on 2 CPU cores: float32, CPU, N = 1M, N = M = 4096
    lgans-bench --json out.json --plot out.png --md out.md
    lgans-bench --ops relativistic_all_pairs --pair-sizes 4096 --dtypes float32 --reps 30
    lgans-bench --dtypes float32 --passes fwd+bwd --with-64m   # adds elementwise N = 64M (~4 GiB for eager)
    lgans-bench --crossover --sizes 64,1K,64K,1M,16M          # saved vs recomputed elementwise gradient
    python -m lightning_gans.cli.bench --device cuda
    lgans-bench --train-step [--rounds 15]                    # GANModule vs a hand-written loop (throughput)

Every case (op, size, dtype, device) times fused, eager and compile on the same
inputs, for forward, backward and forward+backward, in interleaved repetitions
(the impl order rotates each repetition so drift hits all alike), and measures
the peak extra memory of each pass once. See `core` for the method and
docs/bench.md for the results. `--crossover` times the two backward strategies of the
elementwise ops on the raw kernels (the data behind the size threshold in csrc/autograd.cpp).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import torch

from ...kernels import extension as _ext
from . import report as rep
from .core import IMPLS, OPS, PASSES, bench_case

K, M = 1 << 10, 1 << 20
# GAN batch sizes (64 .. 1K), where per-call overhead is the cost, up to 16M, where memory
# traffic is; 64M behind --with-64m (eager needs ~4 GiB and seconds per call on a CPU).
ELEMWISE_SIZES = [64, 256, K, 4 * K, 64 * K, M, 16 * M]
HUGE_ELEMWISE = [64 * M]
PAIR_SIZES = [256 << i for i in range(7)]          # 256, 512, ..., 16K
CUDA_EXTRA_ELEMWISE = HUGE_ELEMWISE                # GB/s vs DRAM bandwidth
CUDA_EXTRA_PAIRS = [32 * K, 64 * K]                # pairs/s vs the SFU limit
QUICK = {"sizes": [M], "pair_sizes": [4 * K], "dtypes": ["float32"], "reps": 5, "budget": 2.0, "sample_ms": 1.0}


def parse_size(text: str) -> int:
    t = text.strip().upper()
    mult = {"K": K, "M": M, "G": 1 << 30}.get(t[-1:], 1)
    n = int(t[:-1] if mult > 1 else t) * mult
    if n <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive, got {text!r}")
    return n


def _csv(choices=None, conv=str):
    def parse(text: str):
        items = [conv(s) for s in text.split(",") if s.strip()]
        bad = [s for s in items if choices is not None and s not in choices]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"expected a comma list of {sorted(choices) if choices else 'values'}, got {text!r}")
        return items
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lgans-bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke-sized run (< 1 min on 2 cores): CPU, float32, elementwise N = 1M, "
                        "all pairs N = M = 4096, 5 repetitions, 2 s per case; explicit flags override")
    p.add_argument("--json", metavar="PATH", help="write every record and the run's metadata as JSON")
    p.add_argument("--plot", metavar="PATH", help="write the fwd+bwd speed-up against size as PNG")
    p.add_argument("--md", metavar="PATH", help="write the table (and targets, GPU section) as markdown")
    p.add_argument("--ops", type=_csv(set(OPS)), default=list(OPS), help="comma list (default: all)")
    p.add_argument("--impls", type=_csv(set(IMPLS)), default=list(IMPLS), help="comma list (default: all)")
    p.add_argument("--passes", type=_csv(set(PASSES)), default=list(PASSES), help="comma list (default: all)")
    p.add_argument("--dtypes", type=_csv({"float32", "bfloat16", "float16", "float64"}),
                   help="comma list (default: float32,bfloat16; --quick: float32)")
    p.add_argument("--device", type=_csv({"cpu", "cuda"}),
                   help="comma list (default: cpu, plus cuda when present; --quick: cpu)")
    p.add_argument("--sizes", type=_csv(conv=parse_size),
                   help="elementwise N, e.g. 64,1K,1M (default: 64, 256, 1K, 4K, 64K, 1M, 16M; CUDA adds 64M)")
    p.add_argument("--with-64m", action="store_true",
                   help="add elementwise N = 64M to the default sizes on the CPU too (~4 GiB for eager, minutes)")
    p.add_argument("--crossover", action="store_true",
                   help="instead of fused/eager/compile: time the elementwise ops' saved against recomputed "
                        "backward on the raw kernels (float32, fwd+bwd) at --sizes")
    p.add_argument("--pair-sizes", type=_csv(conv=parse_size),
                   help="all-pairs N = M (default: 256..16K by 2x; CUDA adds 32K, 64K)")
    p.add_argument("--reps", type=int, help="interleaved repetitions per case (default 20; --quick 5)")
    p.add_argument("--budget", type=float,
                   help="seconds of timing per case before stopping early, never under 3 reps (default 20; --quick 2)")
    p.add_argument("--sample-ms", type=float,
                   help="back-to-back calls per sample so the fastest impl's sample lasts this long (default 2)")
    p.add_argument("--train-step", action="store_true",
                   help="compare GANModule's training-step throughput with a hand-written loop instead")
    p.add_argument("--rounds", type=int, help="--train-step: alternating rounds of each loop (default 5; --quick 2)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's own)")
    return p


def resolve(args: argparse.Namespace) -> argparse.Namespace:
    q = QUICK if args.quick else {}
    args.dtypes = args.dtypes or q.get("dtypes", ["float32", "bfloat16"])
    default_dev = ["cpu"] + (["cuda"] if torch.cuda.is_available() and not args.quick else [])
    args.device = args.device or default_dev
    if "cuda" in args.device and not torch.cuda.is_available():
        raise SystemExit("lgans-bench: --device cuda but torch.cuda.is_available() is False")
    args.reps = args.reps or q.get("reps", 20)
    args.budget = args.budget if args.budget is not None else q.get("budget", 20.0)
    args.sample_ms = args.sample_ms if args.sample_ms is not None else q.get("sample_ms", 2.0)
    args.sizes = args.sizes or q.get("sizes")
    args.pair_sizes = args.pair_sizes or q.get("pair_sizes")
    return args


def sizes_for(spec, device: str, args) -> list[int]:
    if spec.kind == "pairs":
        return args.pair_sizes or PAIR_SIZES + (CUDA_EXTRA_PAIRS if device == "cuda" else [])
    extra = CUDA_EXTRA_ELEMWISE if device == "cuda" else (HUGE_ELEMWISE if getattr(args, "with_64m", False) else [])
    return args.sizes or ELEMWISE_SIZES + extra


def metadata(args) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

    def git(*cmd):
        try:
            return subprocess.run(["git", "-C", root, *cmd], capture_output=True, text=True,
                                  timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None

    cpu_name = platform.processor() or None
    try:
        with open("/proc/cpuinfo") as fh:
            cpu_name = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu_name)
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["lgans-bench", *sys.argv[1:]]),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--", "lightning_gans", "csrc")),
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "cpu": cpu_name, "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "threads": torch.get_num_threads(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cuda_device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "fused_available": _ext.available(), "fused_error": _ext.load_error(),
        "fused_cuda": _ext.cuda_built() if _ext.available() else False,
        "settings": {k: getattr(args, k, None) for k in ("quick", "ops", "impls", "passes", "dtypes", "device",
                                                         "sizes", "pair_sizes", "with_64m", "reps", "budget",
                                                         "sample_ms")},
        "timing": "median and 20/80 percentiles of per-call wall time over interleaved repetitions",
        "memory": "peak bytes allocated during one pass above those live at its start "
                  "(CPU: torch.profiler memory events; CUDA: max_memory_allocated)",
    }


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = metadata(args)
    if not meta["fused_available"]:
        _log(f"lgans-bench: fused kernels unavailable ({meta['fused_error']}); timing eager and compile only")
    cases = [(dev, dt, OPS[op], size) for dev in args.device for dt in args.dtypes for op in args.ops
             for size in sizes_for(OPS[op], dev, args)]
    records, skipped, t0 = [], [], time.perf_counter()
    for k, (dev, dt, spec, size) in enumerate(cases, 1):
        _log(f"[{k}/{len(cases)}] {dev} {dt} {spec.name} {rep.fmt_size(size)}")
        recs, skip = bench_case(spec, size, getattr(torch, dt), torch.device(dev), impls=args.impls,
                                passes=args.passes, reps=args.reps, budget_s=args.budget,
                                sample_s=args.sample_ms / 1e3, log=_log)
        records += recs
        skipped += skip
        summary = ", ".join(f"{r['impl']} {r['median_ms']:.4g} ms" for r in recs if r["pass"] == args.passes[-1])
        _log(f"    {args.passes[-1]}: {summary or 'nothing ran'}")
    meta["wall_s"] = round(time.perf_counter() - t0, 1)
    meta["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    out = {"meta": meta, "records": records, "skipped": skipped, "targets": rep.evaluate_targets(records)}
    if any(r["device"] == "cuda" for r in records):
        limits = rep.gpu_limits()
        out["gpu"] = {"limits": limits, "rows": rep.gpu_section(records, limits)}
    return out


def render(out: dict, markdown: bool = False) -> str:
    meta, rows = out["meta"], rep.table_rows(out["records"])
    fused = "available" if meta["fused_available"] else f"UNAVAILABLE ({meta['fused_error']})"
    lines = [f"torch {meta['torch']}, {meta['cpu']} ({meta['cpu_affinity']} cores usable, {meta['threads']} threads)"
             + (f", {meta['cuda_device']}" if meta["cuda_device"] else "") + f"; fused kernels {fused}",
             "time: median ms ±half the 20-80 percentile spread; peak: extra memory allocated during the pass"
             + (f"; load average {meta['loadavg_start'][0]:.1f} at start" if meta.get("loadavg_start") else ""), ""]
    lines.append(rep.format_markdown(rows) if markdown else rep.format_text(rows))
    for s in out["skipped"]:
        lines.append(f"skipped {s['impl']} for {s['device']} {s['dtype']} {s['op']} {rep.fmt_size(s['size'])}: {s['reason']}")
    bad = {(r["op"], r["size"], r["dtype"], r["device"]) for r in out["records"] if r["agrees_with_eager"] is False}
    for b in sorted(bad):
        lines.append(f"WARNING: loss differs from eager for {b}: timings are not comparable")
    if out["targets"]:
        lines += ["", "Targets (CPU, float32, fwd+bwd):"]
        lines.append(("```\n" + rep.format_targets(out["targets"]) + "\n```") if markdown else rep.format_targets(out["targets"]))
    if "gpu" in out:
        lines += ["", "GPU against its limits:", rep.format_gpu(out["gpu"]["rows"], out["gpu"]["limits"])]
    return "\n".join(lines)


def run_crossover(args) -> dict:
    """Saved vs recomputed backward of the elementwise ops (the raw kernels, below autograd)."""
    from .core import save_vs_recompute

    if args.threads:
        torch.set_num_threads(args.threads)
    meta = metadata(args)
    if not meta["fused_available"]:
        raise SystemExit(f"lgans-bench --crossover needs the native kernels: {meta['fused_error']}")
    names = [n for n in args.ops if n in ("softplus_mean", "sgan_d", "relativistic_paired")]
    sizes = args.sizes or ELEMWISE_SIZES + (HUGE_ELEMWISE if args.with_64m else [])
    rows = []
    for name in names:
        for size in sizes:
            rows.append(save_vs_recompute(name, size, reps=args.reps, sample_s=args.sample_ms / 1e3))
            _log(f"{name} {rep.fmt_size(size)}: save/recompute {rows[-1]['save_over_recompute']:.3f}")
    meta["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {"meta": meta, "crossover": rows}


def render_crossover(out: dict) -> str:
    lines = [f"torch {out['meta']['torch']}, {out['meta']['cpu']} ({out['meta']['threads']} threads), load average "
             f"{out['meta']['loadavg_start'][0]:.2f} at start" if out["meta"].get("loadavg_start") else "",
             "float32 fwd+bwd on the raw ops, median us; save/recompute < 1: saving the gradient is faster", "",
             "| op | N | saved us | recomputed us | save/recompute |", "|---|---:|---:|---:|---:|"]
    for r in out["crossover"]:
        lines.append(f"| {r['op']} | {rep.fmt_size(r['size'])} | {r['save_s'] * 1e6:.4g} | "
                     f"{r['recompute_s'] * 1e6:.4g} | {r['save_over_recompute']:.3f} |")
    return "\n".join(lines)


def _quiet_torch_notices() -> None:
    """torch.compile imports torch's extension builder, which logs "No CUDA runtime is found" on a CPU-only
    machine: true, and nothing a benchmark user can act on. Dropped in this process only."""
    import logging

    logging.getLogger("torch.utils.cpp_extension").addFilter(lambda r: "No CUDA runtime" not in r.getMessage())


def _write(args: argparse.Namespace, out: dict, markdown: str) -> None:
    """The run as JSON (--json) and markdown (--md), where asked for."""
    for path, text in ((args.json, json.dumps(out, indent=1)), (args.md, markdown)):
        if path:
            with open(path, "w") as fh:
                fh.write(text)


def main(argv: list[str] | None = None) -> int:
    args = resolve(build_parser().parse_args(argv))
    _quiet_torch_notices()
    if args.train_step:
        from .train_step import compare_train_step, render_train_step

        import lightning

        full = metadata(args)  # before the run: the load at its start
        out = compare_train_step(batches=40 if args.quick else 200, rounds=args.rounds or (2 if args.quick else 5))
        meta = {k: full[k] for k in ("date", "git_commit", "git_dirty", "torch", "python", "platform", "cpu",
                                     "cpu_count", "cpu_affinity", "loadavg_start")}
        meta.update(command="lgans-bench " + " ".join(sys.argv[1:] if argv is None else argv),
                    lightning=lightning.__version__,
                    loadavg_end=list(os.getloadavg()) if hasattr(os, "getloadavg") else None)
        out["meta"] = meta
        print(render_train_step(out))
        load = (f"; load average {meta['loadavg_start'][0]:.2f} at start, {meta['loadavg_end'][0]:.2f} at end"
                if meta["loadavg_start"] and meta["loadavg_end"] else "")
        _write(args, out, f"`{meta['command']}` ({meta['date']}, commit {meta['git_commit']}"
                          f"{' with uncommitted changes' if meta['git_dirty'] else ''}; {meta['cpu']}, "
                          f"{meta['cpu_affinity']} cores usable; torch {meta['torch']}, lightning {meta['lightning']}"
                          f"{load})\n\n{render_train_step(out)}\n")
        return 0
    if args.crossover:
        out = run_crossover(args)
        print(render_crossover(out))
        _write(args, out, f"`{out['meta']['command']}` ({out['meta']['date']}, commit {out['meta']['git_commit']})"
                          f"\n\n{render_crossover(out)}\n")
        return 0
    out = run(args)
    print(render(out))
    _write(args, out, f"`{out['meta']['command']}` ({out['meta']['date']}, commit {out['meta']['git_commit']}, "
                      f"{out['meta']['wall_s']} s)\n\n{render(out, markdown=True)}\n")
    if args.plot:
        note = None if out["meta"]["fused_available"] else "fused kernels unavailable: compile over eager"
        rep.plot_speedups(out["records"], args.plot, note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
