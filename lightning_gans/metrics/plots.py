"""Pictures of samples, drawn one way for every caller (SampleGrid, MetricsCallback, lgans-sample).

Arrays in, arrays or files out: `image_grid` tiles images, `density_scatter` draws 2-D samples
over a 2-D histogram of the real data, `save_png` / `save_gif` write them. Matplotlib is used
through `Figure` and `FigureCanvasAgg` only, never pyplot, so the user's backend is left alone.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image

__all__ = ["image_grid", "density_scatter", "save_png", "save_gif"]


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
                    size_in: float = 4.0, dpi: int = 100, limits=None) -> np.ndarray:
    """Generated 2-D points (orange) over a 2-D histogram of the real data (greys) -> (H, W, 3) uint8."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: leaves the user's matplotlib backend alone

    fake = fake.detach().float().cpu().numpy()
    ref = real.detach().float().cpu().numpy() if real is not None and len(real) else fake
    if limits is None:  # axes from the real data (the density to cover), so far-off samples fall outside
        lo, hi = np.percentile(ref, 0.5, axis=0), np.percentile(ref, 99.5, axis=0)
        margin = 0.25 * np.maximum(hi - lo, 1e-3)
        lo, hi = lo - margin, hi + margin
    else:
        lo, hi = np.asarray(limits[0], dtype=float), np.asarray(limits[1], dtype=float)
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



def save_png(picture: np.ndarray, path, scale: int = 1) -> Path:
    """Write an (H, W, 3) uint8 picture; `scale` > 1 enlarges it (nearest neighbour, for tiny images)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.fromarray(picture)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)
    return path


def save_gif(pictures: list[np.ndarray], path, fps: int = 4) -> Optional[Path]:
    """An animation of equally sized pictures; the last frame is held a second."""
    if not pictures:
        return None
    path = Path(path)
    frames = [Image.fromarray(p) for p in pictures]
    durations = [int(1000 / fps)] * len(frames)
    durations[-1] = 1000
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path
