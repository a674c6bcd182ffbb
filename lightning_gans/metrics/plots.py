"""Sample plots: 2-D scatter PNG, 2-D animation GIF (PIL), image grid PNG. Matplotlib runs headless (Agg)."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

__all__ = ["scatter_png", "scatter_gif", "image_grid_png", "scatter_image"]


def _limits(real: torch.Tensor | None, fake: torch.Tensor) -> tuple[float, float]:
    ref = real if real is not None else fake
    m = float(ref.abs().max()) if len(ref) else 1.0
    return -1.25 * m, 1.25 * m


def scatter_image(fake: torch.Tensor, real: torch.Tensor | None, title: str = "", lim=None, dpi: int = 80) -> Image.Image:
    """Render generated (orange) over real (grey) 2-D samples as a PIL image."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=dpi)
    if real is not None:
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.6", alpha=0.5, label="real", linewidths=0)
    f = fake.detach().cpu()
    ax.scatter(f[:, 0], f[:, 1], s=2, c="tab:orange", alpha=0.6, label="generated", linewidths=0)
    lo, hi = lim or _limits(real, fake)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_title(title)
    ax.legend(loc="upper right", markerscale=4, fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def scatter_png(fake: torch.Tensor, real: torch.Tensor | None, path, title: str = "") -> Path:
    path = Path(path)
    scatter_image(fake, real, title, dpi=120).save(path)
    return path


def scatter_gif(frames: list[tuple[int, torch.Tensor]], real: torch.Tensor | None, path, fps: int = 4) -> Path | None:
    """One frame per (step, samples) pair, fixed axes; the last frame is held a second."""
    if not frames:
        return None
    path = Path(path)
    lim = _limits(real, frames[-1][1])
    images = [scatter_image(x, real, f"step {step}", lim=lim) for step, x in frames]
    durations = [int(1000 / fps)] * len(images)
    durations[-1] = 1000
    images[0].save(path, save_all=True, append_images=images[1:], duration=durations, loop=0)
    return path


def image_grid_png(images: torch.Tensor, path, nrow: int = 8, scale: int = 4) -> Path:
    """Grid of images (N, C, H, W) in [-1, 1], each upscaled `scale`× (nearest)."""
    path = Path(path)
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    n, c, h, w = x.shape
    ncol = min(nrow, n)
    nrows = (n + ncol - 1) // ncol
    grid = torch.zeros(c, nrows * (h + 1) + 1, ncol * (w + 1) + 1, dtype=torch.uint8)
    for i in range(n):
        r, q = divmod(i, ncol)
        grid[:, 1 + r * (h + 1): 1 + r * (h + 1) + h, 1 + q * (w + 1): 1 + q * (w + 1) + w] = x[i]
    arr = grid.permute(1, 2, 0).numpy()
    img = Image.fromarray(arr[:, :, 0] if c == 1 else arr, mode="L" if c == 1 else "RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path)
    return path

