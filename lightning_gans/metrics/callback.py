"""`MetricsCallback`: metrics at an interval and at the end of training, into the loggers and metrics.json.

The data config chooses the evaluator (the data module's `evaluator` attribute, or the callback's
`evaluator` argument):
- "toy" (2-D mixtures): modes_covered, high_quality_fraction, reverse_kl (docs/theory.md §4);
- "digits": frechet_distance (FID), kid, kid_std, precision, recall, density, coverage in the shipped
  digits classifier's features (fid.py), classes_covered, and class_accuracy for a conditional GAN;
- "image": the same FID/KID/precision/recall/density/coverage in Inception-v3 features, from the
  local weights file `inception_weights` (features.py; nothing is downloaded), against
  `n_samples` real images of the data module;
- "none": no metrics (metrics.json still records the run).
`features="inception"` also scores digits in Inception features (class_accuracy still uses the
digits classifier). A conditional GAN is evaluated on labels 0, 1, ..., K-1, 0, 1, ... (balanced);
one on k-means cluster labels (data.clusters) on labels drawn as it trained, in the clusters' proportions.

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

from .cadence import Every, logger_step
from .plots import density_scatter, image_grid, save_gif, save_png
from .features import InceptionFeatures
from .fid import ImageMetrics
from .frechet import class_accuracy, digits_metrics, n_reference
from .toys import N_SAMPLES, toy_metrics

__all__ = ["MetricsCallback", "generate", "EVALUATORS"]

EVALUATORS = ("toy", "digits", "image", "none")
FEATURES = ("digits", "inception")


def eval_labels(pl_module: pl.LightningModule, n: int, datamodule=None):
    """0, 1, ..., K-1, 0, 1, ... for a conditional module (K = num_classes); None when unconditional.

    Pseudo-labels (`datamodule.label_kind == "cluster"`) are not classes to balance but a split of one
    distribution: None too, so that `sample` draws them as training did (label_sampler="data", which
    cluster labels require: in the data's proportions) and the samples are scored as the unconditional
    model they stand for."""
    k = getattr(pl_module, "num_classes", None)
    if k is None or getattr(datamodule, "label_kind", None) == "cluster":
        return None
    return torch.arange(n) % k


@torch.no_grad()
def generate(pl_module: pl.LightningModule, n: int, seed: int = 0, labels=None) -> torch.Tensor:
    """n samples on CPU from `GANModule.sample`: the EMA generator (else the generator), in eval mode.

    The codes come from their own generator seeded `seed`, not from the training stream, so an
    evaluation neither changes what training sees nor differs between evaluations but for the weights.
    """
    return pl_module.sample(n=n, seed=seed, labels=labels).float().cpu()


class MetricsCallback(pl.Callback):
    """Evaluate every `every_n_steps` optimizer steps (0: only at the end) and at the end of fit.

    Writes `<output_dir>/metrics.json`: the final metrics as top-level keys, plus
    `step`, `history` (one entry per evaluation), `elapsed_s` and `config` (set by
    train.py). Metric keys are logged to every logger under `metrics/<key>`.
    """

    def __init__(self, output_dir: str = ".", every_n_steps: int = 1000, eval_seed: int = 0,
                 n_samples: int | None = None, plot: bool = True, gif_fps: int = 4, evaluator: str | None = None,
                 features: str | None = None, inception_weights: str | None = None, kid_subsets: int = 50,
                 kid_subset_size: int = 1000, k_pr: int = 3, k_dc: int = 5):
        super().__init__()
        self.cadence = Every(every_n_steps, "callbacks.metrics.every_n_steps")
        if evaluator not in (None, *EVALUATORS):
            raise ValueError(f"callbacks.metrics.evaluator must be one of {EVALUATORS} (or null: the data's), "
                             f"got {evaluator!r}")
        if features not in (None, *FEATURES):
            raise ValueError(f"callbacks.metrics.features must be one of {FEATURES} (or null: digits features for "
                             f"digits, Inception for other images), got {features!r}")
        for name, v, lo in (("kid_subsets", kid_subsets, 1), ("kid_subset_size", kid_subset_size, 2),
                            ("k_pr", k_pr, 1), ("k_dc", k_dc, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ValueError(f"callbacks.metrics.{name} must be an integer >= {lo}, got {v!r}")
        # Inception features are loaded now, so a missing weights file stops the run before it trains
        self.inception = None
        if evaluator == "image" or features == "inception":
            if not inception_weights:
                raise ValueError("callbacks.metrics.inception_weights: Inception-v3 features need a local weights "
                                 "file (=/path/to/weights.pth); nothing is downloaded")
            self.inception = InceptionFeatures(inception_weights)
        self.evaluator, self.features = evaluator, features
        self.metric_options = {"kid_subsets": kid_subsets, "kid_subset_size": kid_subset_size, "k_pr": k_pr,
                               "k_dc": k_dc, "seed": eval_seed}
        self._image_metrics: ImageMetrics | None = None
        self.output_dir = Path(output_dir)
        self.every_n_steps, self.eval_seed, self.n_samples = every_n_steps, eval_seed, n_samples
        self.plot, self.gif_fps = plot, gif_fps
        self.history: list[dict] = []
        self.frames: list[tuple[int, torch.Tensor]] = []
        self.extra: dict = {}
        self._last_step = -1
        self._t0 = time.time()

    # ------------------------------------------------------------------ what to measure
    def kind(self, datamodule) -> str:
        """The evaluator: this callback's `evaluator`, else the data module's (set in each data config)."""
        return self.evaluator or getattr(datamodule, "evaluator", None) or "none"

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        dm = trainer.datamodule
        kind = self.kind(dm)
        step = int(trainer.global_step)
        n = self.n_samples or (N_SAMPLES if kind == "toy" else n_reference() if kind == "digits" else
                               10_000 if kind == "image" else 64)
        labels = eval_labels(pl_module, n, dm)
        x = generate(pl_module, n, seed=self.eval_seed, labels=labels)
        if kind == "toy":
            m = toy_metrics(x, dm.dist)
            self.frames.append((step, x[:N_SAMPLES]))
        elif kind == "digits" and self.inception is None:
            m = digits_metrics(x, labels, **self.metric_options)
        elif kind in ("digits", "image"):
            if self.inception is None:
                raise ValueError("callbacks.metrics.evaluator=image needs callbacks.metrics.inception_weights")
            if self._image_metrics is None:  # the reference features are computed once per run
                self._image_metrics = ImageMetrics(self.inception, dm.sample_real(n), **self.metric_options)
            m = self._image_metrics(x)
            if kind == "digits" and labels is not None:
                m["class_accuracy"] = class_accuracy(x, labels)
        else:
            m = {}
        self._last_samples = x
        entry = {"step": step, **m}
        self.history.append(entry)
        self._last_step = step
        if m:
            for lg in trainer.loggers:
                lg.log_metrics({f"metrics/{k}": float(v) for k, v in m.items()}, step=logger_step(trainer, pl_module))
        return entry

    # ------------------------------------------------------------------ hooks
    def on_fit_start(self, trainer, pl_module) -> None:
        self.cadence.restart(int(trainer.global_step))
        self._t0 = time.time()
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # global_step counts optimizer steps and may advance by more than 1 per batch
        # (one G step plus n_critic D steps): evaluate on crossing each multiple.
        if self.cadence.due(int(trainer.global_step)) and trainer.is_global_zero:
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
            final = density_scatter(x[:N_SAMPLES], real, title=f"step {self.history[-1]['step']}", dpi=120)
            save_png(final, self.output_dir / "samples.png")
            ref = real if real is not None else self.frames[-1][1]
            lo, hi = ref.min(0).values.numpy(), ref.max(0).values.numpy()  # one frame for every step
            lo, hi = lo - 0.25 * (hi - lo), hi + 0.25 * (hi - lo)
            save_gif([density_scatter(f, real, title=f"step {step}", limits=(lo, hi), dpi=80)
                      for step, f in self.frames], self.output_dir / "samples.gif", fps=self.gif_fps)
        elif x.dim() == 4:
            save_png(image_grid(x[:64], nrow=8), self.output_dir / "samples.png", scale=4)


def _json_default(o):
    if isinstance(o, torch.Tensor):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, Path):
        return str(o)
    return str(o)
