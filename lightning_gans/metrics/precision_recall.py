"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Both estimate the real and generated manifolds with k-nearest-neighbour balls in a feature space
(the same features as FID; features.py):

    precision  share of generated samples inside some real sample's k-NN ball (fidelity)
    recall     share of real samples inside some generated sample's k-NN ball (diversity)
    density    (1 / kM) Σ_j #{real balls holding generated sample j}; ≈ 1 when the two match, and,
               unlike precision, not fooled by real outliers whose balls are large
    coverage   share of real samples whose ball holds at least one generated sample

Defaults k = 3 (precision/recall) and k = 5 (density/coverage) are the papers'. A point's ball has
the radius to its k-th nearest *other* point of its set. Distances in float64, in row chunks, so
10,000 × 10,000 Inception sets fit in memory.
"""
from __future__ import annotations

import torch

__all__ = ["knn_radii", "precision_recall", "density_coverage"]

_CHUNK = 2048


def _rows(a: torch.Tensor, b: torch.Tensor):
    """(start, pairwise distances of a[start:start+chunk] to all of b)."""
    for i in range(0, len(a), _CHUNK):
        yield i, torch.cdist(a[i:i + _CHUNK], b)


def _as_features(f, name: str) -> torch.Tensor:
    f = torch.as_tensor(f).double()
    if f.dim() != 2:
        raise ValueError(f"{name} must be features (n, d), got shape {tuple(f.shape)}")
    return f


def knn_radii(f: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each row of f to its k-th nearest other row, (n,)."""
    if not 1 <= k < len(f):
        raise ValueError(f"k = {k} needs between 1 and n - 1 = {len(f) - 1} neighbours")
    out = torch.empty(len(f), dtype=f.dtype, device=f.device)
    for i, d in _rows(f, f):
        out[i:i + len(d)] = d.kthvalue(k + 1, dim=1).values  # the 1st is the point itself (distance 0)
    return out


def _inside_any(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """Per point: how many of the balls (centres, radii) hold it, (n_points,)."""
    counts = torch.empty(len(points), dtype=torch.long, device=points.device)
    for i, d in _rows(points, centres):
        counts[i:i + len(d)] = (d <= radii.unsqueeze(0)).sum(dim=1)
    return counts


def precision_recall(real, fake, k: int = 3) -> dict[str, float]:
    real, fake = _as_features(real, "real"), _as_features(fake, "fake")
    precision = (_inside_any(fake, real, knn_radii(real, k)) > 0).double().mean()
    recall = (_inside_any(real, fake, knn_radii(fake, k)) > 0).double().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(real, fake, k: int = 5) -> dict[str, float]:
    real, fake = _as_features(real, "real"), _as_features(fake, "fake")
    radii = knn_radii(real, k)
    density = _inside_any(fake, real, radii).double().sum() / (k * len(fake))
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for i, d in _rows(real, fake):  # real i is covered when its nearest generated sample is inside its ball
        covered[i:i + len(d)] = d.min(dim=1).values <= radii[i:i + len(d)]
    return {"density": float(density), "coverage": float(covered.double().mean())}
