"""Mode metrics for 2-D toys, by the protocol of docs/theory.md §4 (VEEGAN / PacGAN).

Given generator samples (2,500 by default):
- each sample's nearest centre is found; it is **high quality** when it lies
  within 3σ of that centre;
- ``modes_covered``: how many modes are the (nearest-centre) mode of at least
  one high-quality sample;
- ``high_quality_fraction``: high-quality samples / all samples;
- ``reverse_kl``: KL(q̂ ‖ u) = Σ_k q̂_k log(K q̂_k), where q̂ is the histogram of
  high-quality samples over the K modes and u the uniform one. This is the
  "reverse" direction (generated ‖ true), so an empty mode contributes
  0·log 0 = 0 and no epsilon is needed; the value lies in [0, log K]. When
  there is no high-quality sample at all q̂ is undefined and the value is
  reported as log K (as bad as putting all mass on a single mode);
- where the other samples are: ``halo_fraction`` lies between 3σ and 6σ of its
  nearest centre (a mode drawn too wide: the discriminator's resolution), and
  ``bridge_fraction`` farther than 6σ, between the modes (a continuous generator
  carries mass across the gaps between its disconnected images; docs/theory.md
  §4). Non-finite samples count as bridges. The three shares sum to 1.

For mixtures (ring8, grid25) a mode is a Gaussian; for the spiral a mode is one
of its equal-length arc segments (see data/toys.py).
"""
from __future__ import annotations

import math

import torch

from ..data.toys import ToyDistribution

__all__ = ["toy_metrics", "N_SAMPLES"]

N_SAMPLES = 2500


@torch.no_grad()
def toy_metrics(samples: torch.Tensor, dist: ToyDistribution, n_sigma: float = 3.0,
                halo_sigma: float = 6.0) -> dict[str, float]:
    """Mode metrics of generator `samples` (n, 2) against the toy `dist`."""
    if samples.dim() != 2 or samples.shape[1] != 2:
        raise ValueError(f"toy metrics need samples of shape (n, 2), got {tuple(samples.shape)}")
    x = samples.detach().to(torch.float64).cpu()
    finite = torch.isfinite(x).all(1)
    d = torch.cdist(x[finite], dist.centers)  # (n_finite, K_centres)
    dmin, nearest = d.min(1)
    hq = dmin <= n_sigma * dist.sigma
    modes = dist.modes[nearest[hq]]
    counts = torch.bincount(modes, minlength=dist.n_modes).double()  # (n_modes,)
    n_hq = float(counts.sum())
    K = dist.n_modes
    if n_hq > 0:
        q = counts / n_hq
        nz = q > 0
        rkl = float((q[nz] * torch.log(K * q[nz])).sum())
    else:
        rkl = math.log(K)
    return {
        "modes_covered": int((counts > 0).sum()),
        "high_quality_fraction": n_hq / len(x),
        "reverse_kl": rkl,
        "halo_fraction": float(((dmin > n_sigma * dist.sigma) & (dmin <= halo_sigma * dist.sigma)).sum()) / len(x),
        "bridge_fraction": float((dmin > halo_sigma * dist.sigma).sum() + (~finite).sum()) / len(x),
    }
