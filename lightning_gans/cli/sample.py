"""`lgans-sample` / `python -m lightning_gans.cli.sample`: draw samples from a trained run.

    lgans-sample outputs/run/checkpoints/last.ckpt --n 10000 --out samples.npz   # arrays x (and y)
    lgans-sample outputs/run --n 100 --out pngs/ --grid grid.png                  # PNG files + a grid
    lgans-sample outputs/run --labels 0,3,7 --seed 1 --no-ema --out sevens.npz    # conditional runs

The generator is rebuilt from the run's config.yaml and its checkpoint (loaded with
weights_only=True; training/runs.py), so nothing is written by hand. The codes are those of
`GANModule.sample(n, seed=seed)`: one draw of n codes from a generator seeded `seed`, so the same
command gives the same samples and matches the Python API. Conditional runs get labels
0, 1, ..., K-1, 0, ... (or cycle through --labels), or, when G drew its labels from the data's
frequencies (model.label_sampler=data, e.g. k-means clusters), labels in those proportions; the grid
has one row per label.
Every bad argument is one line naming it, before anything is sampled (exit status 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

__all__ = ["main", "sample_run", "parse_labels"]


class UsageError(ValueError):
    """A bad argument: printed as one line, exit status 2."""


def parse_labels(text: Optional[str], num_classes: Optional[int]) -> Optional[list[int]]:
    if text is None:
        return None
    if num_classes is None:
        raise UsageError("--labels: the run is unconditional (num_classes=None); drop --labels")
    try:
        labels = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"--labels: expected comma-separated integers such as 0,3,7, got {text!r}") from None
    bad = [y for y in labels if not 0 <= y < num_classes]
    if not labels or bad:
        raise UsageError(f"--labels: expected labels in [0, {num_classes}), got {text!r}")
    return labels


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return torch.device(name)


@torch.no_grad()
def sample_run(run, n: int, seed: int = 0, labels: Optional[list[int]] = None, batch_size: int = 500,
               device="cpu", progress: bool = False):
    """(x, y) on CPU: n samples of a `runs.LoadedRun` (y None when unconditional), as GANModule.sample draws them."""
    from tqdm.auto import tqdm

    from ..training.rng import default_labels, resolve_sampler, seeded_generator

    name = run.hparams.get("latent_sampler")
    if name is None:
        raise UsageError(f"{run.checkpoint}: the run used a custom latent_sampler; sample it in Python "
                         "(GANModule.load_generator)")
    device = torch.device(device)
    z = resolve_sampler(name)((n, *run.latent_shape), seeded_generator(seed, device), device)
    y = None
    if run.num_classes is not None:
        if labels:
            y = torch.tensor(labels)[torch.arange(n) % len(labels)].to(device)
        else:  # as GANModule.sample: in the data's proportions when G drew them so (e.g. k-means clusters)
            freq = run.class_frequencies if run.hparams.get("label_sampler") == "data" else None
            y = default_labels(n, run.num_classes, freq).to(device)
    gen = run.generator.to(device)
    out = []
    for i in tqdm(range(0, n, batch_size), desc="sampling", unit="batch", disable=not progress, file=sys.stderr):
        zb = z[i:i + batch_size]
        out.append((gen(zb) if y is None else gen(zb, y[i:i + batch_size])).float().cpu())
    return torch.cat(out), (None if y is None else y.cpu())


def _write_pngs(x: torch.Tensor, y: Optional[torch.Tensor], folder: Path) -> int:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arr = ((x.clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
    for i, img in enumerate(arr):
        name = f"{i:06d}.png" if y is None else f"{i:06d}_class{int(y[i])}.png"
        Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(folder / name)
    return len(arr)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lgans-sample", description="Draw samples from a lightning-gans run.")
    p.add_argument("checkpoint", help="a .ckpt file, or a run directory (its checkpoints/last.ckpt)")
    p.add_argument("--n", type=int, default=10000, help="how many samples (default 10000)")
    p.add_argument("--out", help="samples.npz (arrays x, and y when conditional) or DIR/ (one PNG per sample)")
    p.add_argument("--grid", help="also write a PNG grid (one row per label for a conditional run)")
    p.add_argument("--labels", help="conditional runs: comma-separated labels to cycle through, e.g. 0,3,7")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent codes (default 0)")
    p.add_argument("--batch-size", type=int, default=500, help="samples per generator call (default 500)")
    p.add_argument("--no-ema", action="store_true", help="the training generator instead of its EMA")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(argv: Optional[list[str]] = None) -> dict:
    """Parse, check, sample, write; returns what was written. Raises UsageError on bad input."""
    from ..training.runs import RunLoadError, load_run

    a = _parser().parse_args(argv)
    for flag, v in (("--n", a.n), ("--batch-size", a.batch_size)):
        if v < 1:
            raise UsageError(f"{flag}: expected a positive integer, got {v}")
    if not a.out and not a.grid:
        raise UsageError("--out: give --out samples.npz or --out DIR/ (and/or --grid grid.png); nothing to write")
    if a.out and not (a.out.endswith(".npz") or a.out.endswith(("/", "\\")) or Path(a.out).is_dir()):
        raise UsageError(f"--out: expected a .npz file or a directory ending in '/', got {a.out!r}")
    if a.grid and not a.grid.lower().endswith(".png"):
        raise UsageError(f"--grid: expected a .png path, got {a.grid!r}")
    device = _device(a.device)
    try:
        loaded = load_run(a.checkpoint, ema=not a.no_ema)
    except RunLoadError as e:
        raise UsageError(f"checkpoint: {e}") from None
    labels = parse_labels(a.labels, loaded.num_classes)
    written = {}
    if a.out:
        x, y = sample_run(loaded, a.n, a.seed, labels, a.batch_size, device, progress=not a.no_progress)
        if a.out.endswith(".npz"):
            if x.dim() != 4 and x.dim() != 2:
                raise UsageError(f"--out: samples of shape {tuple(x.shape[1:])} cannot be saved")
            arrays = {"x": x.numpy()} if y is None else {"x": x.numpy(), "y": y.numpy()}
            Path(a.out).expanduser().parent.mkdir(parents=True, exist_ok=True)
            np.savez(Path(a.out).expanduser(), **arrays)
            written["npz"] = a.out
        else:
            if x.dim() != 4:
                raise UsageError(f"--out {a.out}: PNG files need images; this run makes samples of shape "
                                 f"{tuple(x.shape[1:])}: use --out samples.npz")
            written["pngs"] = _write_pngs(x, y, Path(a.out).expanduser())
    if a.grid:
        written["grid"] = _grid(loaded, labels, a.seed, device, Path(a.grid).expanduser())
    return written


def _grid(loaded, labels, seed: int, device, path: Path) -> str:
    from ..metrics.plots import image_grid, save_png

    per_row = 8
    rows = labels or (list(range(loaded.num_classes)) if loaded.num_classes is not None else None)
    if rows is None:
        x, _ = sample_run(loaded, 64, seed, None, 64, device)
    else:  # one row per label: per_row samples of rows[0], then of rows[1], ...
        x, _ = sample_run(loaded, per_row * len(rows), seed, [r for r in rows for _ in range(per_row)],
                          per_row * len(rows), device)
    if x.dim() != 4:
        raise UsageError(f"--grid: a grid needs images; this run makes samples of shape {tuple(x.shape[1:])}")
    return str(save_png(image_grid(x, per_row), path, scale=4))


def main(argv: Optional[list[str]] = None) -> None:
    try:
        written = run(argv)
    except UsageError as e:
        print(f"lgans-sample: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    parts = [f"{written['npz']}" if "npz" in written else None,
             f"{written['pngs']} PNG files" if "pngs" in written else None,
             f"grid {written['grid']}" if "grid" in written else None]
    print("lgans-sample: wrote " + ", ".join(p for p in parts if p), flush=True)


if __name__ == "__main__":
    main()
