"""Image-GAN results on scikit-learn's 8x8 digits: unconditional, class-conditional, and small data with and
without DiffAugment, 3 seeds each, scored by FID/KID/precision/recall/density/coverage in the digits
classifier's features (and class accuracy for the conditional runs).

    python scripts/digits_quality.py --jobs 2                  # every config x seeds 0, 1, 2
    python scripts/digits_quality.py --configs digits --seeds 0
    python scripts/digits_quality.py --table-only              # rebuild summary.json and digits.md from the run files

Each run is `lgans-train <config overrides> seed=<s>` in its own process with one torch thread (the numbers
must not depend on the core count; on two cores, two jobs run side by side). Its wall and CPU time come
from the kernel's accounting of that process (os.wait4), so a busy machine shows up as wall >> CPU.
One JSON per run goes to benchmarks/results/digits/runs/ (a finished run is not redone), with the command,
commit, machine (lscpu model), torch version and the load average before and after; `summary.json` and
`digits.md` hold mean ± sample standard deviation (ddof = 1) over seeds, and the real-vs-real floor
(the test split scored against the training split).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the table step imports lightning_gans: run from a checkout without installing
OUT = ROOT / "benchmarks" / "results" / "digits"
AUG = "model.augment=[translation,cutout,color]"
# The unconditional runs use experiment=digits_cond's recipe (width 128, batch 256, LR decayed to 1 % over the
# 4,000 G / 4,000 D steps of the 8,000-step budget) so every row compares like for like.
_DECAY = "{_target_:torch.optim.lr_scheduler.LinearLR,_partial_:true,start_factor:1.0,end_factor:0.01,total_iters:4000}"
RECIPE = ["model.generator.width=128", "model.discriminator.width=128", "data.batch_size=256", "budget_steps=8000",
          f"model.g_scheduler={_DECAY}", f"model.d_scheduler={_DECAY}"]
_DECAY16 = _DECAY.replace("total_iters:4000", "total_iters:8000")
RECIPE_R1 = [*RECIPE[:3], "budget_steps=16000", f"model.g_scheduler={_DECAY16}", f"model.d_scheduler={_DECAY16}",
             "loss=nsgan", "model.r1_gamma=1.0", "model.ema_decay=0.99"]
CONFIGS = {  # name: (overrides, what it is)
    "digits": (["experiment=digits", *RECIPE], "unconditional DCGAN"),
    "digits_r1": (["experiment=digits", *RECIPE_R1],
                  "unconditional DCGAN, NS-GAN + R1 (γ = 1), EMA 0.99, 16,000 steps (LR decay over all of them)"),
    "digits_cond": (["experiment=digits_cond"], "class-conditional DCGAN (conditional-BN G, projection D), the same recipe"),
    "digits_clusters": (["experiment=digits_clusters"],
                        "unconditional (no labels): digits_cond's nets conditioned on 20 k-means clusters of the pixels"),
    # 134 images cannot fill a batch of 256: batch 64 (two batches per epoch)
    "digits_10pct": (["experiment=digits", *RECIPE, "data.fraction=0.1", "data.batch_size=64"],
                     "10 % of the training split (134 images), batch 64"),
    "digits_10pct_diffaug": (["experiment=digits", *RECIPE, "data.fraction=0.1", "data.batch_size=64", AUG],
                             "the same with DiffAugment (translation, cutout, color)"),
}
KEYS = ("frechet_distance", "kid", "precision", "recall", "density", "coverage", "class_accuracy", "classes_covered")
QUIET = ["logger=none", "callbacks.metrics.plot=false", "~callbacks.checkpoint", "trainer.enable_checkpointing=false",
         "trainer.enable_progress_bar=false", "~callbacks.samples"]


def _out(cmd: list[str]):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in (_out(["lscpu"]) or "").splitlines()
                if line.startswith("Model name")), platform.processor())
    return {"python": platform.python_version(), "torch": torch.__version__, "threads_per_run": 1, "cpu": cpu,
            "cores": os.cpu_count(), "commit": _out(["git", "rev-parse", "--short", "HEAD"])}


def command(name: str, seed: int, extra: list[str], workdir: Path) -> list[str]:
    out_dir = workdir / f"{name}_s{seed}"
    return [sys.executable, "-m", "lightning_gans.cli.train", *CONFIGS[name][0], *extra, f"seed={seed}",
            f"hydra.run.dir={out_dir}", *QUIET]


def launch(name: str, seed: int, extra: list[str], workdir: Path):
    cmd = command(name, seed, extra, workdir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(workdir / f"{name}_s{seed}.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return {"proc": proc, "name": name, "seed": seed, "cmd": cmd, "t0": time.time(), "load0": os.getloadavg()[0],
            "log": log, "machine": machine()}  # the commit the run started from


def finish(job: dict, status: int, usage, runs_dir: Path, workdir: Path) -> None:
    job["log"].close()
    name, seed = job["name"], job["seed"]
    metrics_path = workdir / f"{name}_s{seed}" / "metrics.json"
    if status != 0 or not metrics_path.is_file():
        print(f"{name} seed {seed}: failed (status {status}); see {workdir / f'{name}_s{seed}.log'}", flush=True)
        return
    m = json.loads(metrics_path.read_text())
    rec = {"config": name, "seed": seed, "command": shlex.join(job["cmd"][1:]).replace(str(workdir), "<workdir>"),
           "max_steps": m.get("config", {}).get("trainer", {}).get("max_steps"),
           "wall_s": round(time.time() - job["t0"], 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
           "load_avg_1m_start": round(job["load0"], 2), "load_avg_1m_end": round(os.getloadavg()[0], 2),
           "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "machine": job["machine"],
           **{k: m[k] for k in KEYS if k in m},
           "history": [{k: h[k] for k in ("step", "frechet_distance") if k in h} for h in m.get("history", [])]}
    (runs_dir / f"{name}_s{seed}.json").write_text(json.dumps(rec, indent=1) + "\n")
    print(f"{name} seed {seed}: FID {rec['frechet_distance']:.3f}, wall {rec['wall_s']} s, CPU {rec['cpu_s']} s",
          flush=True)


def floor() -> dict:
    """The real-vs-real scores: the digits test split against the training split (what a perfect generator gets)."""
    from lightning_gans.data import digits_split
    from lightning_gans.metrics import digits_metrics

    _, _, x_te, y_te = digits_split()
    return {k: v for k, v in digits_metrics(x_te, y_te).items() if k in KEYS}


def summarize(runs: list[dict]) -> dict:
    groups: dict[str, list[dict]] = {}
    for r in runs:
        groups.setdefault(r["config"], []).append(r)
    summary = {}
    for name in [n for n in CONFIGS if n in groups]:
        rs = groups[name]
        entry = {"seeds": sorted(r["seed"] for r in rs), "max_steps": rs[0]["max_steps"], "command": rs[0]["command"],
                 "wall_s_mean": round(statistics.mean(r["wall_s"] for r in rs), 1),
                 "cpu_s_mean": round(statistics.mean(r["cpu_s"] for r in rs), 1),
                 "load_avg_1m": [r["load_avg_1m_start"] for r in rs],
                 # overrides given on this script's command line, per seed (e.g. model.impl=ref)
                 "extra": {r["seed"]: [a for a in shlex.split(r["command"]) if a.startswith("model.impl=")]
                           for r in rs}}
        for k in KEYS:
            vals = [float(r[k]) for r in rs if k in r]
            if vals:  # the sample standard deviation (ddof = 1): a few seeds of a larger population
                entry[k] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                            "values": vals}
        summary[name] = entry
    return summary


def _fmt(e: dict, k: str, digits: int = 3) -> str:
    if k not in e:
        return "–"
    return f"{e[k]['mean']:.{digits}f} ± {e[k]['std']:.{digits}f}"


def table(summary: dict, real: dict, info: dict) -> str:
    cols = [("FID", "frechet_distance", 2), ("KID", "kid", 2), ("precision", "precision", 3), ("recall", "recall", 3),
            ("density", "density", 3), ("coverage", "coverage", 3), ("class acc.", "class_accuracy", 3)]
    lines = ["| run | " + " | ".join(c for c, _, _ in cols) + " | seeds | steps | CPU s / run | wall s / run |",
             "|---" * (len(cols) + 5) + "|"]
    for name, e in summary.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(e, k, d) for _, k, d in cols)
                     + f" | {len(e['seeds'])} | {e['max_steps']} | {e['cpu_s_mean']:.0f} | {e['wall_s_mean']:.0f} |")
    lines.append("| real test split vs training split | " + " | ".join(
        f"{real[k]:.{d}f}" if k in real else "–" for _, k, d in cols) + " | – | – | – | – |")
    lines += ["", "Mean ± sample standard deviation (ddof = 1) over seeds. Features: the shipped digits classifier's "
              "64-d penultimate layer; reference: the 1,347-image training split (also for the 10 % runs); 1,347 "
              "samples (conditional: labels 0..9 in turn; digits_clusters: cluster labels in the clusters' "
              "proportions, as it trained). KID is in these features' units (not ×1000); its unbiased "
              "estimate is negative when two sets are closer than sampling noise (the real row: 450 test images). "
              "`steps` = optimizer steps (2 per generator step). CPU s is the run's own CPU time with one torch "
              "thread; wall s is inflated by whatever else ran on the machine (load averages in summary.json).", "",
              "Commands (plus `seed=<s>`):", ""]
    lines += [f"- {name}: `lgans-train {' '.join(CONFIGS[name][0])}` — {CONFIGS[name][1]}" for name in summary]
    ref = [f"{name} seed {seed}" for name, e in summary.items() for seed, extra in e["extra"].items() if extra]
    if ref:
        lines += ["", "Run with `model.impl=ref` (the loss's PyTorch reference instead of the fused kernel, the same "
                  "formula; the compiled extension was out of date mid-session): " + ", ".join(ref) + "."]
    lines += ["", f"Machine: {info.get('cpu')} ({info.get('cores')} cores), torch {info.get('torch')}, "
              f"commit {info.get('commit')}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=1, help="runs side by side (one torch thread each)")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lgans-digits"))
    ap.add_argument("--table-only", action="store_true")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (recorded in each command)")
    args = ap.parse_args(argv)
    runs_dir = args.out / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not args.table_only:
        todo = [(n, s) for n in args.configs for s in args.seeds if not (runs_dir / f"{n}_s{s}.json").is_file()]
        running: dict[int, dict] = {}
        while todo or running:
            while todo and len(running) < args.jobs:
                job = launch(*todo.pop(0), args.overrides, args.workdir)
                running[job["proc"].pid] = job
            pid, status, usage = os.wait4(-1, 0)
            if pid in running:
                finish(running.pop(pid), os.waitstatus_to_exitcode(status), usage, runs_dir, args.workdir)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    summary = summarize(runs)
    real = floor()
    info = runs[-1]["machine"] if runs else machine()
    (args.out / "summary.json").write_text(json.dumps({"runs": summary, "real_vs_real": real}, indent=1) + "\n")
    (args.out / "digits.md").write_text(table(summary, real, info))
    print(table(summary, real, info))


if __name__ == "__main__":
    main()
