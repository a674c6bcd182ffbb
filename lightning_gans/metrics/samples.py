"""`SampleGrid`: the generator on a fixed latent grid, every k optimizer steps, as PNG and in the loggers.

It samples the generator GANModule evaluates with (the EMA copy when there is one) on the same
latent codes every time, so successive pictures show the generator changing, not the codes.
Images (N, C, H, W) become a grid (one row per class for a conditional GAN); 2-D data (N, 2)
becomes a scatter over the density of the real data (collected from the training batches).
Each picture goes to every logger that takes images (TensorBoard's `add_image`, or a logger's
`log_image`, e.g. W&B) and to `<run dir>/samples/step<global_step>.png`.

It draws its codes from its own seeded generator (GANModule.sample), never from the training
streams, so a run with and without this callback trains identically.
"""
from __future__ import annotations

import os
from typing import Optional

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

from .cadence import Every, logger_step
from .plots import density_scatter, image_grid, save_png

__all__ = ["SampleGrid"]


class SampleGrid(pl.Callback):
    """Render the generator on a fixed latent grid every `every_n_steps` optimizer steps and at the end.

    Args:
        every_n_steps: optimizer steps (`trainer.global_step`, which counts D and G steps) between pictures;
            a picture is made when global_step crosses a multiple of it, since one batch can advance it by 2.
        n_samples: latent codes in the grid (images: 64 is an 8x8 grid; 2-D data: use ~1,000 points).
        seed: seed of the fixed latent codes (`GANModule.sample(n, seed=seed)`).
        output_dir: where `samples/step{global_step:07d}.png` go; default the run directory
            (`Trainer(default_root_dir)`, which the CLI sets to the run's directory).
        n_real: real 2-D points collected from the first training batches for the density background.
        nrow: images per grid row; default about sqrt(n_samples).
        value_range: the generator's output range mapped to black..white for images.
        ema: sample the EMA generator (when the module has one).
    """

    def __init__(self, every_n_steps: int = 1000, n_samples: int = 64, seed: int = 1234,
                 output_dir: Optional[str] = None, n_real: int = 5000, nrow: Optional[int] = None,
                 value_range=(-1.0, 1.0), ema: bool = True) -> None:
        if every_n_steps < 1:
            raise ValueError(f"SampleGrid: every_n_steps must be >= 1, got {every_n_steps}")
        self.cadence = Every(every_n_steps, "SampleGrid: every_n_steps")
        if n_samples < 1:
            raise ValueError(f"SampleGrid: n_samples must be >= 1, got {n_samples}")
        self.every_n_steps, self.n_samples, self.seed = every_n_steps, n_samples, seed
        self.output_dir, self.n_real, self.nrow = output_dir, n_real, nrow
        self.value_range, self.ema = tuple(value_range), ema
        self.written: list[str] = []  # PNG paths, in order
        self._real: list[torch.Tensor] = []
        self._n_real_seen = 0
        self._last_step = -1
        self._warned = False

    def on_train_start(self, trainer, pl_module) -> None:
        # on resume, continue the cadence from the restored global_step instead of redrawing at once
        self.cadence.restart(trainer.global_step)
        self._last_step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._n_real_seen < self.n_real:
            real = pl_module.real_from_batch(batch)
            if real.dim() == 2 and real.shape[1] == 2:  # only 2-D data has a density background
                take = real[: self.n_real - self._n_real_seen].detach().float().cpu()
                self._real.append(take)
                self._n_real_seen += len(take)
            else:
                self._n_real_seen = self.n_real
        if self.cadence.due(trainer.global_step):
            self.render(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.global_step != self._last_step:  # the final state, unless it was just drawn
            self.render(trainer, pl_module)

    def render(self, trainer, pl_module) -> Optional[str]:
        """Sample the grid, write the PNG, log it; returns the PNG path (None on other ranks or shapes)."""
        step = trainer.global_step
        self._last_step = step
        if not trainer.is_global_zero:  # every rank holds the same generator; one picture is enough
            return None
        labels, nrow = None, self.nrow
        k = getattr(pl_module, "num_classes", None)
        if k is not None:  # one row per class
            nrow = max(1, self.n_samples // k)
            labels = torch.arange(k).repeat_interleave(nrow)
        x = pl_module.sample(n=len(labels) if labels is not None else self.n_samples, labels=labels, seed=self.seed,
                             ema=self.ema)
        if x.dim() == 4:
            picture = image_grid(x, nrow, self.value_range)
        elif x.dim() == 2 and x.shape[1] == 2:
            real = torch.cat(self._real) if self._real else None
            picture = density_scatter(x, real, title=f"step {step}")
        else:
            if not self._warned:
                rank_zero_warn(f"SampleGrid draws (N, C, H, W) images or (N, 2) points; samples of shape "
                               f"{tuple(x.shape)} are not drawn")
                self._warned = True
            return None
        root = self.output_dir or trainer.default_root_dir
        path = str(save_png(picture, os.path.join(root, "samples", f"step{step:07d}.png")))
        self.written.append(path)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image("samples", picture, logger_step(trainer, pl_module), dataformats="HWC")
            elif hasattr(logger, "log_image"):  # W&B, Neptune, ...
                logger.log_image(key="samples", images=[picture], step=logger_step(trainer, pl_module))
        return path
