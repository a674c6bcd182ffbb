"""Quality of the default toy runs: every reported loss on ring8 and grid25 (docs/theory.md §4 metrics), with
convergence curves and, for RSGAN, the gradient variance of paired vs all-pairs pairing.

    nice -n 10 python scripts/quality.py                       # the full grid: 5 losses x (ring8, grid25) x 3 seeds
    python scripts/quality.py --datasets ring8 --seeds 0       # a subset
    python scripts/quality.py --table-only                     # rebuild table and curves from the JSON already written

Each run is `lgans-train experiment=<dataset> <loss overrides> seed=<s>` at the experiment's default
budget, run in this process (one torch thread: the numbers must not depend on the machine's core
count), with plots, checkpoints and loggers off because only metrics.json matters here. One JSON per
run goes to benchmarks/results/quality/runs/ (a finished run is not redone, so an interrupted grid
resumes; a progress bar counts the runs); `summary.json` and `quality.md` aggregate them (mean ±
sample standard deviation, ddof = 1, over seeds, and how many seeds ran), `curves_<dataset>.png`
draws modes, high-quality and bridge shares against generator steps (mean ± std over seeds), and
`grad_variance.md` / `.png` compare the gradient variance of paired and all-pairs RSGAN on the
same weights and batches (measured during the seed-0 RSGAN runs by training/grad_variance.py; its
time is recorded apart from the run's). Each run file records the command, the commit, the
machine, the torch version and the load average when it started.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from lightning_gans.cli import train  # noqa: E402

# Reported losses: docs/theory.md §3's standard and relativistic GANs, and R3GAN (paired RSGAN + R1 + R2).
LOSSES = {
    "nsgan": ["loss=nsgan"],
    "rsgan": ["loss=rsgan", "loss.pairing=paired"],
    "rsgan_all": ["loss=rsgan", "loss.pairing=all"],
    "rasgan": ["loss=rasgan"],
    "r3gan": ["loss=rsgan", "loss.pairing=paired", "model.r2_gamma=${model.r1_gamma}"],  # + R2, as experiment=r3gan
    "sgan": ["loss=sgan"],  # the saturating original: not in the default grid (--losses sgan ...)
}
DEFAULT_LOSSES = ["nsgan", "rsgan", "rsgan_all", "rasgan", "r3gan"]
CURVE_LOSSES = ["nsgan", "rsgan", "rsgan_all", "rasgan"]
# seed-0 RSGAN runs also measure both pairings' gradient variance (training/grad_variance.py)
PAIRINGS = [{"name": "rsgan", "pairing": "paired"}, {"name": "rsgan", "pairing": "all"}]
TOY_KEYS = ("modes_covered", "high_quality_fraction", "reverse_kl", "halo_fraction", "bridge_fraction")
OUT = ROOT / "benchmarks" / "results" / "quality"
# Plots, checkpoints and loggers only cost time here; metrics.json is what the table reads.
QUIET = ["logger=none", "callbacks.metrics.plot=false", "~callbacks.checkpoint", "trainer.enable_checkpointing=false",
         "trainer.enable_progress_bar=false"]


def run_one(dataset: str, loss: str, seed: int, extra: list[str], workdir: Path, gv_every: int = 2000,
            gv_batches: int = 50) -> dict:
    out_dir = workdir / f"{dataset}_{loss}_s{seed}"
    overrides = [f"experiment={dataset}", *LOSSES[loss], f"seed={seed}", f"paths.output_dir={out_dir}", *QUIET, *extra]
    # the gradient-variance probe draws no labels, so it skips the cluster-conditional grid25
    gv = seed == 0 and loss in ("rsgan", "rsgan_all") and dataset != "grid25"
    if gv:
        overrides += ["+callbacks.grad_variance._target_=lightning_gans.training.GradientVariance",
                      f"+callbacks.grad_variance.output_dir={out_dir}",
                      "+callbacks.grad_variance.compare=" + json.dumps(PAIRINGS).replace('"', "").replace(" ", ""),
                      f"+callbacks.grad_variance.every_n_steps={gv_every}", f"+callbacks.grad_variance.batches={gv_batches}"]
    cfg = train.compose_config(overrides)
    t0 = time.time()
    metrics = train.run(cfg)
    keys = TOY_KEYS
    rec = {"dataset": dataset, "loss": loss, "seed": seed, "overrides": overrides,
           "max_steps": int(cfg.trainer.max_steps), "wall_s": round(time.time() - t0, 1),
           **{k: metrics[k] for k in keys if k in metrics}, "history": metrics.get("history", [])}
    if gv:
        gv_hist = json.loads((out_dir / "grad_variance.json").read_text())
        rec["grad_variance"] = gv_hist
        rec["grad_variance_s"] = round(sum(h["elapsed_s"] for h in gv_hist), 1)
        rec["wall_s_without_grad_variance"] = round(rec["wall_s"] - rec["grad_variance_s"], 1)
    return rec


def summarize(runs: list[dict]) -> dict:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in runs:
        groups.setdefault((r["dataset"], r["loss"]), []).append(r)
    summary = {}
    for (dataset, loss), rs in sorted(groups.items()):
        keys = TOY_KEYS
        entry = {"seeds": sorted(r["seed"] for r in rs), "max_steps": rs[0]["max_steps"],
                 "wall_s_mean": round(statistics.mean(r.get("wall_s_without_grad_variance", r["wall_s"])
                                                      for r in rs), 1)}
        for k in keys:
            vals = [float(r[k]) for r in rs]
            # the sample standard deviation (ddof = 1): these are a few seeds of a larger population
            entry[k] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                        "values": vals}
        summary[f"{dataset}/{loss}"] = entry
    return summary


def _fmt(e: dict, k: str, pct: bool = False, digits: int = 2) -> str:
    if k not in e:
        return "–"
    m, s = e[k]["mean"], e[k]["std"]
    if len(e[k]["values"]) == 1:  # one seed: no spread to show
        return f"{100 * m:.1f} %" if pct else f"{m:.{digits}f}"
    return f"{100 * m:.1f} ± {100 * s:.1f} %" if pct else f"{m:.{digits}f} ± {s:.{digits}f}"


DATASETS = ("ring8", "grid25", "grid25_plain")  # experiment names; grid25_plain: grid25's recipe before clusters
MODES = {"ring8": 8, "grid25": 25, "grid25_plain": 25}


def table(summary: dict) -> str:
    datasets = [d for d in DATASETS if any(k.startswith(d + "/") for k in summary)]
    losses = [name for name in LOSSES if any(k.endswith("/" + name) for k in summary)]
    head, rule = ["loss"], ["---"]
    for d in datasets:
        head += [f"{d} modes (/{MODES[d]})", f"{d} high quality", f"{d} bridges", f"{d} reverse KL", f"{d} s / run"]
    lines = ["| " + " | ".join(head + ["seeds"]) + " |", "|" + "---|" * (len(head) + 1)]
    for loss in losses:
        es = [summary.get(f"{d}/{loss}", {}) for d in datasets]
        cells = [loss]
        for e in es:
            cells += [_fmt(e, "modes_covered"), _fmt(e, "high_quality_fraction", True), _fmt(e, "bridge_fraction", True),
                      _fmt(e, "reverse_kl", digits=3), f"{e['wall_s_mean']:.0f}" if e else "–"]
        seeds = "/".join(str(len(e["seeds"])) if e else "0" for e in es)
        lines.append("| " + " | ".join(cells + [seeds]) + " |")
    budgets = sorted({(k.split("/")[0], e["max_steps"]) for k, e in summary.items()})
    lines += ["", "Mean ± sample standard deviation (ddof = 1) over seeds; `seeds` counts the runs behind "
              + "/".join(datasets) + "; `s / run` is the mean wall time of a run (one torch thread; see the run "
              "files for the load average). Bridges: samples farther than 6σ from every mode. `grid25` is "
              "`experiment=grid25` (a cluster-conditional GAN on 50 k-means clusters, no labels); `grid25_plain` is "
              "the unconditional recipe it had before (those runs were recorded as `experiment=grid25`). "
              "Budgets (trainer.max_steps, optimizer steps = 2 x generator steps): "
              + ", ".join(f"{ds} {s}" for ds, s in budgets) + ". "
              "A perfect generator scores 98.9 % high quality (the mass of a 2-D Gaussian within 3σ) and "
              "reverse KL 0. "
              "Published (docs/theory.md §4, other networks): PacGAN4 ring 7.8 / 95.9 %, grid 24.8 / 93.6 %; "
              "VEEGAN ring 8 / 52.9 %, grid 24.6 / 40 %."]
    return "\n".join(lines) + "\n"


_COMMIT: list = []  # HEAD when this process started: the code it runs, whatever is committed later


def machine() -> dict:
    """Where and at which commit a run was made (written into each run file)."""
    import os
    import subprocess

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    cpu = next((line.split(":", 1)[1].strip() for line in (out(["lscpu"]) or "").splitlines()
                if line.startswith("Model name")), platform.processor())
    return {"python": platform.python_version(), "torch": torch.__version__, "threads": 1, "cpu": cpu,
            "cores": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
            "commit": _COMMIT[0] if _COMMIT else out(["git", "rev-parse", "--short", "HEAD"]),
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def curves(runs: list[dict], dataset: str, path: Path) -> bool:
    """Modes, high-quality and bridge shares against G steps, mean ± std over seeds, one line per loss."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [("modes_covered", "modes covered"), ("high_quality_fraction", "high-quality share"),
            ("bridge_fraction", "bridge share (> 6σ)")]
    fig = Figure(figsize=(13, 3.8), dpi=110)
    axes = [fig.add_subplot(1, 3, i + 1) for i in range(3)]
    drawn = False
    for loss in CURVE_LOSSES:
        rs = [r for r in runs if r["dataset"] == dataset and r["loss"] == loss and r.get("history")]
        if not rs:
            continue
        n = min(len(r["history"]) for r in rs)
        steps = torch.tensor([h["step"] // 2 for h in rs[0]["history"][:n]], dtype=torch.float64)  # n_critic = 1
        for ax, (k, title) in zip(axes, keys):
            if any(k not in h for r in rs for h in r["history"][:n]):
                continue
            v = torch.tensor([[float(h[k]) for h in r["history"][:n]] for r in rs], dtype=torch.float64)
            m = v.mean(0)
            sd = v.std(0) if len(rs) > 1 else torch.zeros_like(m)  # sample std (ddof = 1)
            ax.plot(steps, m, label=f"{loss} ({len(rs)} seeds)")
            ax.fill_between(steps, m - sd, m + sd, alpha=0.2)
            ax.set_title(title)
            ax.set_xlabel("generator steps")
            drawn = True
    if not drawn:
        return False
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{dataset}: mean ± sample std over seeds, at each evaluation of the metrics callback")
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))
    return True


def grad_variance_report(runs: list[dict], out: Path) -> None:
    """grad_variance.md and .png from the seed-0 RSGAN runs: variance / squared mean, per player, over training."""
    rows = [r for r in runs if r.get("grad_variance")]
    if not rows:
        return
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lines = ["| dataset | trained with | G steps | player | tr Cov paired | tr Cov all pairs | all / paired "
             "| ‖mean‖² paired | ‖mean‖² all pairs |", "|---|---|---|---|---|---|---|---|---|"]
    fig = Figure(figsize=(10, 3.8), dpi=110)
    axes = {pl: fig.add_subplot(1, 2, i + 1) for i, pl in enumerate(("d", "g"))}
    for r in rows:
        hist = r["grad_variance"]
        for pl in ("d", "g"):
            ratio = [h["losses"]["name=rsgan,pairing=all"][pl]["var"] / h["losses"]["name=rsgan,pairing=paired"][pl]["var"]
                     for h in hist]
            axes[pl].plot([h["g_steps"] for h in hist], ratio, marker="o", label=f"{r['dataset']}, {r['loss']}")
            for h in hist:
                a, b = h["losses"]["name=rsgan,pairing=paired"][pl], h["losses"]["name=rsgan,pairing=all"][pl]
                lines.append(f"| {r['dataset']} | {r['loss']} | {h['g_steps']} | {pl.upper()} | {a['var']:.3g} "
                             f"| {b['var']:.3g} | {b['var'] / a['var']:.3f} | {a['mean_sq']:.3g} | {b['mean_sq']:.3g} |")
    for pl, ax in axes.items():
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_title(f"{pl.upper()}'s gradient: variance all pairs / paired")
        ax.set_xlabel("generator steps")
        ax.legend(fontsize=8)
    fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(out / "grad_variance.png"))
    lines += ["", "Total variance over the batches (50 of 256 by default) (tr Cov = Σ‖g_t − ḡ‖²/(T − 1)) of each player's loss "
              "gradient, both pairings on the same weights and batches, measured during the seed-0 runs "
              "(`trained with` is the pairing that trained the weights)."]
    (out / "grad_variance.md").write_text("\n".join(lines) + "\n")


def tuning_table(path: Path) -> str:
    """tuning.md: one row per recorded tuning run (scripts/tune.py), in the order they ran."""
    lines = ["| run | overrides | steps | modes | high quality | halo | bridges | reverse KL | commit |",
             "|---|---|---|---|---|---|---|---|---|"]
    for line in path.read_text().splitlines():
        r = json.loads(line)
        ov = " ".join(f"`{o}`" for o in r["overrides"] if not o.startswith("callbacks."))
        steps = next((o.split("=")[1] for o in r["overrides"] if o.startswith("budget_steps=")), None)
        steps = steps or str(r.get("max_steps") or r["history"][-1]["step"])
        pct = lambda k: f"{100 * r[k]:.1f} %" if r.get(k) is not None else "–"  # noqa: E731
        lines.append(f"| {r['name']} | {ov} | {steps} | {r['modes_covered']} | {pct('high_quality_fraction')} "
                     f"| {pct('halo_fraction')} | {pct('bridge_fraction')} | {r['reverse_kl']:.3f} "
                     f"| {r['commit'].split()[0]} |")
    lines += ["", "One seed (0 unless `seed=` is given) each, one torch thread, on the shared 2-core machine (loads in "
              "tuning.jsonl). Overrides are relative to the configs at the run's commit: before f72c0cf the default "
              "budget was 12,000 steps, before the grid25 retune `experiment=grid25` was nsgan with the MLP defaults "
              "(R1 γ = 1, no minibatch-std layer), and before 1580251 it was the unconditional recipe that is "
              "`experiment=grid25_plain` now (every g_* row up to g_sc50_24k ran that recipe or overrides of it)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from tqdm import tqdm

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["ring8", "grid25"], choices=list(DATASETS))
    ap.add_argument("--losses", nargs="+", default=DEFAULT_LOSSES, choices=list(LOSSES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lgans-quality"), help="run directories (metrics.json)")
    ap.add_argument("--gv-every", type=int, default=2000, help="optimizer steps between gradient-variance measurements")
    ap.add_argument("--gv-batches", type=int, default=50, help="batches per gradient-variance measurement")
    ap.add_argument("--table-only", action="store_true", help="only rebuild summary.json, quality.md and the plots")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (changes the budget!)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    _COMMIT.append(machine()["commit"])  # before any run: later commits do not change the loaded code
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        # seed-major: an interrupted grid has every loss at some seeds rather than some losses at every seed
        todo = [(d, loss, s) for s in args.seeds for d in args.datasets for loss in args.losses
                if not (runs_dir / f"{d}_{loss}_s{s}.json").is_file()]
        bar = tqdm(todo, desc="quality runs", unit="run")
        for dataset, loss, seed in bar:
            bar.set_postfix_str(f"{dataset} {loss} seed {seed}")
            info = machine()  # the load average as the run starts
            rec = run_one(dataset, loss, seed, args.overrides, args.workdir, args.gv_every, args.gv_batches)
            rec["machine"] = info
            (runs_dir / f"{dataset}_{loss}_s{seed}.json").write_text(json.dumps(rec, indent=1) + "\n")
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    summary = summarize(runs)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    (args.out / "quality.md").write_text(table(summary))
    for dataset in DATASETS:
        curves(runs, dataset, args.out / f"curves_{dataset}.png")
    grad_variance_report(runs, args.out)
    if (args.out / "tuning.jsonl").is_file():
        (args.out / "tuning.md").write_text(tuning_table(args.out / "tuning.jsonl"))
    print(table(summary))


if __name__ == "__main__":
    main()
