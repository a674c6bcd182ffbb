"""Fused kernel or float rounding? How far training runs drift apart, fused loss against its PyTorch reference.

    python scripts/fused_vs_ref.py                     # rasgan, rsgan (paired, all pairs), nsgan on ring8
    python scripts/fused_vs_ref.py --losses rasgan --steps 1 2 10 100 1000

Two runs of `experiment=ring8` with the same seed, one with the fused loss (model.impl=auto) and one with
its reference (model.impl=ref), are compared at a few optimizer steps: the relative L2 distance between
their generators' weights. Beside it, the same distance between two reference runs whose initial
generator weights differ by a relative 1e-7 (about float32's rounding): if the fused-vs-reference gap
grows like that one, the runs part because training amplifies rounding (Adam's normalised steps on
near-zero gradients, then the game's own instability), not because the kernel computes another loss.
A kernel that was wrong would show a gap far above 1e-7 from the first step. Writes
benchmarks/results/quality/fused_vs_ref.md (and .json) with the commit and machine.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

import lightning.pytorch as pl  # noqa: E402

from lightning_gans.cli import train  # noqa: E402

LOSSES = {"rasgan": ["loss=rasgan"], "rsgan": ["loss=rsgan", "loss.pairing=paired"],
          "rsgan_all": ["loss=rsgan", "loss.pairing=all"], "nsgan": ["loss=nsgan"]}
QUIET = ["logger=none", "~callbacks.metrics", "~callbacks.samples", "~callbacks.checkpoint",
         "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false"]
OUT = ROOT / "benchmarks" / "results" / "quality"


class Snapshots(pl.Callback):
    """The generator's weights, flattened, after the given optimizer steps."""

    def __init__(self, steps):
        self.steps, self.taken = set(steps), {}

    def on_train_batch_end(self, trainer, pl_module, *args):
        s = int(trainer.global_step)
        if s in self.steps and s not in self.taken:
            self.taken[s] = torch.cat([p.detach().flatten().clone() for p in pl_module.generator.parameters()])


def trajectory(loss: str, impl: str, steps: list[int], perturb: float = 0.0) -> dict:
    cfg = train.compose_config(["experiment=ring8", *LOSSES[loss], f"model.impl={impl}", f"trainer.max_steps={max(steps)}",
                                "paths.output_dir=/tmp/lgans-fused-vs-ref", *QUIET])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = train.build(cfg)
    if perturb:
        g = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for p in parts["model"].generator.parameters():
                p.mul_(1 + perturb * torch.randn(p.shape, generator=g))
    snap = Snapshots(steps)
    parts["trainer"].callbacks.append(snap)
    parts["trainer"].fit(parts["model"], datamodule=parts["datamodule"])
    return snap.taken


def rel(a, b) -> float:
    return float((a - b).norm() / b.norm())


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--losses", nargs="+", default=list(LOSSES), choices=list(LOSSES))
    ap.add_argument("--steps", nargs="+", type=int, default=[2, 10, 50, 200, 1000, 4000])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    steps = sorted(args.steps)
    rows = {}
    for loss in args.losses:
        ref = trajectory(loss, "ref", steps)
        fused = trajectory(loss, "auto", steps)
        nudged = trajectory(loss, "ref", steps, perturb=1e-7)
        rows[loss] = {s: {"fused_vs_ref": rel(fused[s], ref[s]), "ref_vs_nudged_ref": rel(nudged[s], ref[s])} for s in steps}
        print(loss, json.dumps(rows[loss]), flush=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    info = {"commit": commit, "torch": torch.__version__, "threads": 1, "date": time.strftime("%Y-%m-%d %H:%M")}
    (OUT / "fused_vs_ref.json").write_text(json.dumps({"rows": rows, **info}, indent=1) + "\n")
    head = "| loss | " + " | ".join(f"step {s}" for s in steps) + " |"
    lines = [f"# Fused loss vs its reference: how training runs drift apart (ring8, seed 0)", "",
             f"`python scripts/fused_vs_ref.py` at commit {commit}, torch {torch.__version__}, one thread, {info['date']}. "
             "Each cell: relative L2 distance between two runs' generator weights after that many optimizer steps; "
             "first the fused loss against its reference, then (in brackets) the reference against itself with the "
             "initial generator weights nudged by a relative 1e-7.", "", head,
             "|---|" + "---|" * len(steps)]
    for loss, r in rows.items():
        lines.append(f"| {loss} | " + " | ".join(f"{r[s]['fused_vs_ref']:.1e} ({r[s]['ref_vs_nudged_ref']:.1e})"
                                                  for s in steps) + " |")
    (OUT / "fused_vs_ref.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
