"""2-D toy distributions, generated on the fly (docs/theory.md §4).

Each toy is a `ToyDistribution`: a set of centres with an isotropic Gaussian
of standard deviation `sigma` around each and a `mode` label per centre.

- ``ring8``:  8 Gaussians, means 2·(cos 2πk/8, sin 2πk/8), σ = 0.02.
- ``grid25``: 25 Gaussians, means {-4,-2,0,2,4}², σ = 0.05.
- ``spiral``: a two-turn Archimedean spiral with Gaussian noise σ = 0.05.
  It is continuous, so it is approximated by 2,000 centres spaced evenly
  along the arc and split into 20 arc segments of equal length: a segment
  plays the role of a "mode" in the metrics (see metrics/toys.py).

`ToyDataModule` serves infinite fresh samples: every batch is a new draw,
seeded from (seed, epoch, step), so runs are reproducible. An "epoch" is just
`steps_per_epoch` batches, which gives the progress bar a length. With
`clusters=K` it serves (samples, labels): k-means (clusters.py) fitted once to
`CLUSTER_FIT` samples drawn with `cluster_seed`, each fresh sample labelled with
its nearest centre, for a cluster-conditional GAN without labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from .clusters import check_clusters, kmeans, nearest

__all__ = ["ToyDistribution", "make_toy", "TOYS", "ToyDataModule"]


@dataclass(frozen=True)
class ToyDistribution:
    name: str
    centers: torch.Tensor  # (K, 2) float64
    sigma: float
    modes: torch.Tensor  # (K,) long: mode label of each centre
    n_modes: int

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw n points, (n, 2) float32: a uniform centre plus N(0, σ²I) noise."""
        idx = torch.randint(len(self.centers), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64) * self.sigma
        return (self.centers[idx] + noise).float()

    @property
    def mode_means(self) -> torch.Tensor:
        """(n_modes, 2): the mean of each mode's centres (for plots)."""
        return torch.stack([self.centers[self.modes == m].mean(0) for m in range(self.n_modes)])


def _ring8() -> ToyDistribution:
    k = torch.arange(8, dtype=torch.float64)
    centers = 2.0 * torch.stack([torch.cos(2 * math.pi * k / 8), torch.sin(2 * math.pi * k / 8)], 1)
    return ToyDistribution("ring8", centers, 0.02, torch.arange(8), 8)


def _grid25() -> ToyDistribution:
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0], dtype=torch.float64)
    centers = torch.cartesian_prod(v, v)  # (25, 2)
    return ToyDistribution("grid25", centers, 0.05, torch.arange(25), 25)


def _spiral(n_centers: int = 2000, n_segments: int = 20, turns: float = 2.0) -> ToyDistribution:
    # Archimedean spiral r = a·θ from θ = π/2 to θ_max, centres equally spaced in arc length.
    theta = torch.linspace(math.pi / 2, 2 * math.pi * turns + math.pi / 2, 20001, dtype=torch.float64)
    a = 4.0 / theta[-1]  # outer radius 4
    pts = torch.stack([a * theta * torch.cos(theta), a * theta * torch.sin(theta)], 1)
    seg = (pts[1:] - pts[:-1]).norm(dim=1)
    arc = torch.cat([torch.zeros(1, dtype=torch.float64), seg.cumsum(0)])
    targets = torch.linspace(0, float(arc[-1]), n_centers, dtype=torch.float64)
    idx = torch.searchsorted(arc, targets).clamp(max=len(pts) - 1)
    centers = pts[idx]
    modes = torch.arange(n_centers) * n_segments // n_centers
    return ToyDistribution("spiral", centers, 0.05, modes, n_segments)


TOYS = {"ring8": _ring8, "grid25": _grid25, "spiral": _spiral}


def make_toy(name: str) -> ToyDistribution:
    if name not in TOYS:
        raise ValueError(f"unknown toy dataset {name!r}; choose one of {sorted(TOYS)}")
    return TOYS[name]()


class _ToyStream(IterableDataset):
    """Yields `steps_per_epoch` batches of fresh samples per pass, (B, 2) each."""

    def __init__(self, dist: ToyDistribution, batch_size: int, steps_per_epoch: int, seed: int, centres=None):
        self.dist, self.batch_size, self.steps, self.seed = dist, batch_size, steps_per_epoch, seed
        self.centres = centres  # k-means centres: yield (x, nearest centre) pairs
        self.epoch = 0

    # No __len__: Lightning warns about an IterableDataset that has one (a length can be wrong with workers).
    # The epoch still ends after `steps` batches; the progress bar counts batches instead of showing a total.

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        for _ in range(self.steps):
            x = self.dist.sample(self.batch_size, generator=g)
            yield x if self.centres is None else (x, nearest(x, self.centres))


class ToyDataModule(pl.LightningDataModule):
    """Infinite 2-D toy data: `name` in ring8 | grid25 | spiral.

    Batches are (B, 2) float32 tensors. `steps_per_epoch` batches make one epoch.
    """

    CLUSTER_FIT = 10_000  # samples k-means is fitted to

    def __init__(self, name: str = "ring8", batch_size: int = 256, steps_per_epoch: int = 500, seed: int = 0,
                 evaluator: str = "toy", num_classes: int | None = None, clusters: int | None = None,
                 cluster_seed: int = 0):
        super().__init__()
        check_clusters(clusters)
        if num_classes != clusters:
            raise ValueError(f"num_classes: the model is conditional on num_classes={num_classes} but the toy data "
                             + (f"has {clusters} k-means clusters (data.clusters)" if clusters else "serves no labels")
                             + f"; set model.num_classes and data.clusters to the same K (or both to null)")
        self.evaluator = evaluator  # which metrics MetricsCallback computes (the data config says)
        if batch_size <= 0:
            raise ValueError(f"data.batch_size must be positive, got {batch_size}")
        if steps_per_epoch <= 0:
            raise ValueError(f"data.steps_per_epoch must be positive, got {steps_per_epoch}")
        self.dist = make_toy(name)
        self.name, self.batch_size, self.steps_per_epoch, self.seed = name, batch_size, steps_per_epoch, seed
        self.dims = (2,)
        self.clusters, self.label_kind, self.class_frequencies, centres = clusters, None, None, None
        if clusters is not None:
            fit = self.dist.sample(self.CLUSTER_FIT, generator=torch.Generator().manual_seed(cluster_seed))
            labels, centres = kmeans(fit, clusters, cluster_seed)
            self.label_kind = "cluster"
            self.class_frequencies = torch.bincount(labels, minlength=clusters).float() / len(labels)
        self.centres = centres
        self._stream = _ToyStream(self.dist, batch_size, steps_per_epoch, seed, centres)

    def train_dataloader(self) -> DataLoader:
        # The stream already yields whole batches: batch_size=None disables re-batching.
        return DataLoader(self._stream, batch_size=None, num_workers=0)

    def sample_real(self, n: int, seed: int = 1234) -> torch.Tensor:
        """n real samples (for plots and metrics)."""
        return self.dist.sample(n, generator=torch.Generator().manual_seed(seed))
