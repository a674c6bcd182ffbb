"""k-means pseudo-labels (data.clusters=K): the data split into K clusters, so that an unconditional GAN
can be trained as a cluster-conditional one with no human labels (a self-conditioned GAN, Liu et al. 2020,
with the clusters fixed before training). Used by the image data modules (a fixed training set: every
image gets its cluster) and the toy ones (fresh samples: each gets its nearest centre)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["kmeans", "check_clusters", "nearest"]


def check_clusters(clusters) -> None:
    if clusters is not None and (isinstance(clusters, bool) or not isinstance(clusters, int) or clusters < 2):
        raise ValueError(f"data.clusters must be null or an integer >= 2 (k-means pseudo-labels), got {clusters!r}")


def kmeans(points: torch.Tensor, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(labels int64 (N,), centres float32 (k, D)) of k-means on the rows of `points` (N, ...) flattened, with 10
    seeded restarts; clusters are numbered by size (0 = the largest), so the numbering does not depend on
    k-means' internal order."""
    from sklearn.cluster import KMeans

    if k > len(points):
        raise ValueError(f"data.clusters={k}: more clusters than the {len(points)} items to cluster")
    fit = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(points.reshape(len(points), -1).numpy())
    order = np.argsort(-np.bincount(fit.labels_, minlength=k), kind="stable")
    labels = torch.from_numpy(np.argsort(order)[fit.labels_]).long()
    return labels, torch.from_numpy(fit.cluster_centers_[order]).float()


def nearest(points: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """int64 (N,): the index of each point's nearest centre."""
    return torch.cdist(points.reshape(len(points), -1).float(), centres).argmin(dim=1)
