"""One tuning run, recorded: `lgans-train <overrides>` in this process (one torch thread, plots,
checkpoints and loggers off), then one JSON line appended to benchmarks/results/quality/tuning.jsonl
with the overrides, the final toy metrics (modes, high-quality, halo and bridge shares, reverse KL),
the history of evaluations, wall and CPU time, and the commit, machine and load average.

    python scripts/tune.py g_mbstd4 experiment=grid25 model.discriminator.minibatch_std=4

docs/cli.md's tuning tables quote these lines (tests/test_figures.py checks that they do).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from lightning_gans.cli import train  # noqa: E402

QUIET = ["logger=none", "callbacks.metrics.plot=false", "~callbacks.checkpoint", "trainer.enable_checkpointing=false",
         "trainer.enable_progress_bar=false"]
KEYS = ("modes_covered", "high_quality_fraction", "halo_fraction", "bridge_fraction", "reverse_kl")
OUT = ROOT / "benchmarks" / "results" / "quality" / "tuning.jsonl"


def main(argv: list[str]) -> None:
    if not argv:
        raise SystemExit(__doc__)
    name, overrides = argv[0], argv[1:]
    torch.set_num_threads(1)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    load0, t0, c0 = os.getloadavg()[0], time.time(), time.process_time()
    cfg = train.compose_config([*overrides, f"paths.output_dir=/tmp/lgans-tune/{name}", *QUIET])
    m = train.run(cfg)
    rec = {"name": name, "overrides": overrides, "max_steps": int(cfg.trainer.max_steps),
           **{k: m[k] for k in KEYS if k in m},
           "history": [{"step": h["step"], **{k: h[k] for k in KEYS if k in h}} for h in m.get("history", [])],
           "wall_s": round(time.time() - t0, 1), "cpu_s": round(time.process_time() - c0, 1), "commit": commit,
           "torch": torch.__version__, "threads": 1, "load_avg_1m_start": round(load0, 2),
           "load_avg_1m_end": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M")}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps({k: rec[k] for k in ("name", "wall_s", *KEYS) if k in rec}))


if __name__ == "__main__":
    main(sys.argv[1:])
