"""`MetricsCallback`: metrics at an interval and at the end of training, into the loggers and metrics.json.

The data module decides which metrics apply:
- `ToyDataModule` (2-D): modes_covered, high_quality_fraction, reverse_kl (SPEC §4);
- `DigitsDataModule`: frechet_distance, classes_covered;
- anything else: none (metrics.json still records the run).

For 2-D data it also keeps the evaluation samples of every interval and, at
the end, writes `samples.png` (final samples over the real data) and
`samples.gif` (an animation of the samples over training). For images it
writes `samples.png`, a grid of generated images.

Samples come from the EMA generator when the module has one (`g_ema`), else
from `generator`, always from the same fixed latent draw (seed `eval_seed`),
so that successive evaluations and frames are comparable.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import lightning.pytorch as pl
import torch

from . import plots
from .frechet import digits_metrics, n_reference
from .toys import N_SAMPLES, toy_metrics

__all__ = ["MetricsCallback", "generate"]


@torch.no_grad()
def generate(pl_module: pl.LightningModule, n: int, seed: int = 0) -> torch.Tensor:
    """n samples on CPU from `GANModule.sample`: the EMA generator (else the generator), in eval mode.

    The codes come from their own generator seeded `seed`, not from the training stream, so an
    evaluation neither changes what training sees nor differs between evaluations but for the weights.
    """
    return pl_module.sample(n=n, seed=seed).float().cpu()


class MetricsCallback(pl.Callback):
    """Evaluate every `every_n_steps` optimizer steps (0: only at the end) and at the end of fit.

    Writes `<output_dir>/metrics.json`: the final metrics as top-level keys, plus
    `step`, `history` (one entry per evaluation), `elapsed_s` and `config` (set by
    train.py). Metric keys are logged to every logger under `metrics/<key>`.
    """

    def __init__(self, output_dir: str = ".", every_n_steps: int = 1000, eval_seed: int = 0,
                 n_samples: int | None = None, plot: bool = True, gif_fps: int = 4):
        super().__init__()
        if every_n_steps < 0:
            raise ValueError(f"callbacks.metrics.every_n_steps must be >= 0, got {every_n_steps}")
        self.output_dir = Path(output_dir)
        self.every_n_steps, self.eval_seed, self.n_samples = every_n_steps, eval_seed, n_samples
        self.plot, self.gif_fps = plot, gif_fps
        self.history: list[dict] = []
        self.frames: list[tuple[int, torch.Tensor]] = []
        self.extra: dict = {}
        self._last_step = -1
        self._last_interval = 0
        self._t0 = time.time()

    # ------------------------------------------------------------------ what to measure
    @staticmethod
    def kind(datamodule) -> str:
        from ..data import DigitsDataModule, ToyDataModule

        if isinstance(datamodule, ToyDataModule):
            return "toy"
        if isinstance(datamodule, DigitsDataModule):
            return "digits"
        return "none"

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        dm = trainer.datamodule
        kind = self.kind(dm)
        step = int(trainer.global_step)
        n = self.n_samples or (N_SAMPLES if kind == "toy" else n_reference() if kind == "digits" else 64)
        x = generate(pl_module, n, seed=self.eval_seed)
        if kind == "toy":
            m = toy_metrics(x, dm.dist)
            self.frames.append((step, x[:N_SAMPLES]))
        elif kind == "digits":
            m = digits_metrics(x)
        else:
            m = {}
        self._last_samples = x
        entry = {"step": step, **m}
        self.history.append(entry)
        self._last_step = step
        if m:
            for lg in trainer.loggers:
                lg.log_metrics({f"metrics/{k}": float(v) for k, v in m.items()}, step=step)
        return entry

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer, pl_module) -> None:
        self._t0 = time.time()
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # global_step counts optimizer steps and may advance by more than 1 per batch
        # (one G step plus n_critic D steps): evaluate on crossing each multiple.
        step = int(trainer.global_step)
        if self.every_n_steps and step // self.every_n_steps > self._last_interval and trainer.is_global_zero:
            self._last_interval = step // self.every_n_steps
            self.evaluate(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        if int(trainer.global_step) != self._last_step or not self.history:
            self.evaluate(trainer, pl_module)
        final = dict(self.history[-1])
        out = {**final, "elapsed_s": round(time.time() - self._t0, 2), "history": self.history, **self.extra}
        path = self.output_dir / "metrics.json"
        path.write_text(json.dumps(out, indent=2, default=_json_default))
        if self.plot:
            self._write_plots(trainer)

    def _write_plots(self, trainer) -> None:
        dm = trainer.datamodule
        kind = self.kind(dm)
        x = self._last_samples
        if kind == "toy" or (x.dim() == 2 and x.shape[1] == 2):
            real = dm.sample_real(N_SAMPLES) if hasattr(dm, "sample_real") else None
            plots.scatter_png(x[:N_SAMPLES], real, self.output_dir / "samples.png",
                              title=f"step {self.history[-1]['step']}")
            plots.scatter_gif(self.frames, real, self.output_dir / "samples.gif", fps=self.gif_fps)
        elif x.dim() == 4:
            plots.image_grid_png(x[:64], self.output_dir / "samples.png")


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, Path):
        return str(o)
    return str(o)
