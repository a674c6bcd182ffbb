"""Does a digits run copy its training images? Nearest-neighbour distances and FID at the floor's sample size.

    python scripts/digits_memorization.py RUN_DIR [--name digits_clusters] [--seed 0]

The digits FID is measured in the features of a classifier trained on the same training split that
the samples are compared with, so a generator that copied training images would score below the
real-vs-real floor (test split vs training split, 1.58). Two checks, from the run's checkpoint
(lgans-sample's draw: n samples, labels as the run drew them):
- pixel-space distance from every sample, and from every test image, to its nearest training image:
  a copying generator's samples sit much closer than unseen real digits do (`near copies`: samples
  closer than the 1st percentile of the test images' distances);
- FID of 450 samples (the test split's size) against the training split, beside the floor's 1.58,
  since FID falls with the sample count.
Writes benchmarks/results/digits/memorization_<name>.md (and .json) with the machine and commit.
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

from lightning_gans.cli.sample import sample_run  # noqa: E402
from lightning_gans.data import digits_split  # noqa: E402
from lightning_gans.metrics import digits_metrics  # noqa: E402
from lightning_gans.training.runs import load_run  # noqa: E402

OUT = ROOT / "benchmarks" / "results" / "digits"


def nearest(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(n,) L2 distance in pixels ([-1, 1], 64 of them) from each image of x to its nearest image in ref."""
    return torch.cdist(x.flatten(1).double(), ref.flatten(1).double()).min(dim=1).values


def summary(d: torch.Tensor) -> dict:
    q = torch.quantile(d, torch.tensor([0.01, 0.05, 0.5], dtype=d.dtype))
    return {"p1": float(q[0]), "p5": float(q[1]), "median": float(q[2])}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a lightning-gans run directory (or .ckpt) trained on digits")
    ap.add_argument("--name", default="run", help="the record's name: memorization_<name>.md")
    ap.add_argument("--seed", type=int, default=0, help="the samples' seed")
    args = ap.parse_args(argv)
    x_tr, _, x_te, _ = digits_split()
    run = load_run(args.run)
    x, _ = sample_run(run, len(x_tr), seed=args.seed)
    d_fake, d_test = nearest(x.clamp(-1, 1), x_tr), nearest(x_te, x_tr)
    near = float((d_fake < summary(d_test)["p1"]).double().mean())
    fid_450 = digits_metrics(x[: len(x_te)].clamp(-1, 1))["frechet_distance"]
    fid_all = digits_metrics(x.clamp(-1, 1))["frechet_distance"]
    floor = digits_metrics(x_te)["frechet_distance"]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    rec = {"run": str(args.run), "checkpoint": str(run.checkpoint), "seed": args.seed, "samples": len(x),
           "nearest_train_distance": {"samples": summary(d_fake), "test_images": summary(d_test)},
           "near_copies": near, "fid_450_samples": fid_450, f"fid_{len(x)}_samples": fid_all, "fid_floor_450_test": floor,
           "torch": torch.__version__, "commit": commit, "date": time.strftime("%Y-%m-%d %H:%M")}
    s, t = rec["nearest_train_distance"]["samples"], rec["nearest_train_distance"]["test_images"]
    md = (f"# Memorization check: {args.name}\n\n"
          f"Run `{run.checkpoint}` ({'EMA' if run.ema else 'generator'} weights), {len(x)} samples, seed {args.seed}; "
          f"`python scripts/digits_memorization.py <run> --name {args.name}` at commit {commit}, torch {torch.__version__}, "
          f"{rec['date']}.\n\n"
          "| distance to the nearest training image (pixels in [-1, 1]) | 1st percentile | 5th percentile | median |\n"
          "|---|---|---|---|\n"
          f"| generated samples | {s['p1']:.2f} | {s['p5']:.2f} | {s['median']:.2f} |\n"
          f"| test images (never trained on) | {t['p1']:.2f} | {t['p5']:.2f} | {t['median']:.2f} |\n\n"
          f"Near copies (samples closer than the test images' 1st percentile): {100 * near:.1f} % (1 % for test images "
          f"by construction).\n\nFID against the training split: {fid_450:.2f} with 450 samples (the floor, test split: "
          f"{floor:.2f} with its 450 images), {fid_all:.2f} with {len(x)}.\n")
    (OUT / f"memorization_{args.name}.json").write_text(json.dumps(rec, indent=1) + "\n")
    (OUT / f"memorization_{args.name}.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
