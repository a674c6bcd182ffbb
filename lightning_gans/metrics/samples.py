"""Sample plots during training: a fixed latent grid rendered every k optimizer steps.

`SampleGrid` samples the generator GANModule evaluates with (the EMA copy when there is one)
on the same latent codes every time, so successive pictures show the generator changing,
not the codes. Image data (N, C, H, W) becomes an image grid; 2-D data (N, 2) becomes a
scatter of the samples over the density of the real data (a 2-D histogram of real points
collected from the training batches). Each picture is written as a PNG and sent to every
logger that takes images (TensorBoard's `add_image`, or a logger's `log_image`, e.g. W&B).

It draws its codes from its own seeded generator (GANModule.sample), never from the training
streams, so a run with and without this callback trains identically.
"""
from __future__ import annotations

import os
from typing import Optional

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from PIL import Image

__all__ = ["SampleGrid", "image_grid", "density_scatter"]


def image_grid(images: torch.Tensor, nrow: Optional[int] = None, value_range=(-1.0, 1.0), pad: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images, C in {1, 3}, into one (H', W', 3) uint8 array; `value_range` maps to 0..255."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"image_grid expects (N, C, H, W) with C = 1 or 3, got shape {tuple(images.shape)}")
    lo, hi = value_range
    x = ((images.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    nrow = nrow or max(1, int(np.ceil(np.sqrt(n))))  # columns
    rows = -(-n // nrow)
    grid = torch.ones(3, pad + rows * (h + pad), pad + nrow * (w + pad))  # white padding between tiles
    for i in range(n):
        top, left = pad + (i // nrow) * (h + pad), pad + (i % nrow) * (w + pad)
        grid[:, top:top + h, left:left + w] = x[i]
    return (grid.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def density_scatter(fake: torch.Tensor, real: Optional[torch.Tensor], title: str = "", bins: int = 80,
                    size_in: float = 4.0, dpi: int = 100) -> np.ndarray:
    """Generated 2-D points (orange) over a 2-D histogram of the real data (greys) -> (H, W, 3) uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: leaves the user's matplotlib backend alone

    fake = fake.detach().float().cpu().numpy()
    ref = real.detach().float().cpu().numpy() if real is not None and len(real) else fake
    # axes from the real data (the density the samples should cover), so far-off samples fall outside
    lo, hi = np.percentile(ref, 0.5, axis=0), np.percentile(ref, 99.5, axis=0)
    margin = 0.25 * np.maximum(hi - lo, 1e-3)
    lo, hi = lo - margin, hi + margin
    fig = Figure(figsize=(size_in, size_in), dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if real is not None and len(real):
        ax.hist2d(ref[:, 0], ref[:, 1], bins=bins, range=[[lo[0], hi[0]], [lo[1], hi[1]]], cmap="Greys",
                  density=True)
    ax.scatter(fake[:, 0], fake[:, 1], s=4, c="tab:orange", alpha=0.7, linewidths=0)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class SampleGrid(pl.Callback):
    """Render the generator on a fixed latent grid every `every_n_steps` optimizer steps and at the end.

    Args:
        every_n_steps: optimizer steps (`trainer.global_step`, which counts D and G steps) between pictures;
            a picture is made when global_step crosses a multiple of it, since one batch can advance it by 2.
        n_samples: latent codes in the grid (images: 64 is an 8x8 grid; 2-D data: use ~1,000 points).
        seed: seed of the fixed latent codes (`GANModule.sample(n, seed=seed)`).
        output_dir: where `samples/step{global_step:07d}.png` go; default the trainer's log_dir or root dir.
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
        if n_samples < 1:
            raise ValueError(f"SampleGrid: n_samples must be >= 1, got {n_samples}")
        self.every_n_steps, self.n_samples, self.seed = every_n_steps, n_samples, seed
        self.output_dir, self.n_real, self.nrow = output_dir, n_real, nrow
        self.value_range, self.ema = tuple(value_range), ema
        self.written: list[str] = []  # PNG paths, in order
        self._real: list[torch.Tensor] = []
        self._n_real_seen = 0
        self._last_bucket = 0
        self._last_step = -1
        self._warned = False

    def on_train_start(self, trainer, pl_module) -> None:
        # on resume, continue the cadence from the restored global_step instead of redrawing at once
        self._last_bucket = trainer.global_step // self.every_n_steps
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
        bucket = trainer.global_step // self.every_n_steps
        if bucket > self._last_bucket:
            self._last_bucket = bucket
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
        x = pl_module.sample(n=self.n_samples, seed=self.seed, ema=self.ema)
        if x.dim() == 4:
            picture = image_grid(x, self.nrow, self.value_range)
        elif x.dim() == 2 and x.shape[1] == 2:
            real = torch.cat(self._real) if self._real else None
            picture = density_scatter(x, real, title=f"step {step}")
        else:
            if not self._warned:
                rank_zero_warn(f"SampleGrid draws (N, C, H, W) images or (N, 2) points; samples of shape "
                               f"{tuple(x.shape)} are not drawn")
                self._warned = True
            return None
        root = self.output_dir or trainer.log_dir or trainer.default_root_dir
        path = os.path.join(root, "samples", f"step{step:07d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(picture).save(path)
        self.written.append(path)
        for logger in trainer.loggers:
            experiment = getattr(logger, "experiment", None)
            if hasattr(experiment, "add_image"):  # TensorBoard
                experiment.add_image("samples", picture, step, dataformats="HWC")
            elif hasattr(logger, "log_image"):  # W&B, Neptune, ...
                logger.log_image(key="samples", images=[picture], step=step)
        return path
