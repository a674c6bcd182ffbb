"""FID, KID and the k-NN metrics of one feature space, through torchmetrics.

`ImageMetrics(features, real)` holds a reference set (its features are computed once) and scores
generated sets against it:

    frechet_distance  FID: ‖μ_r-μ_g‖² + tr(Σ_r + Σ_g - 2(Σ_r Σ_g)^½) (Heusel et al. 2017), torchmetrics'
                      FrechetInceptionDistance with our feature module, in float64
    kid, kid_std      KID (Bińkowski et al. 2018): unbiased MMD² with the cubic polynomial kernel, mean
                      and std over `kid_subsets` random subsets of `kid_subset_size` (torchmetrics)
    precision, recall, density, coverage   precision_recall.py, on the same features

The "frechet_distance" key is what earlier versions wrote for the digits Fréchet distance; torchmetrics'
FID with the same digits features agrees with that hand-written code to 1e-6 relative
(tests/test_fid.py keeps the closed form as its reference).

KID draws its subsets with torch's global RNG: `ImageMetrics` forks it and seeds `seed`, so an
evaluation during training neither changes the training run nor varies between evaluations.
"""
from __future__ import annotations

import warnings
import torch
from torch import nn

from .features import FeatureCache, IdentityFeatures
from .precision_recall import density_coverage, precision_recall

__all__ = ["ImageMetrics", "frechet_distance", "image_metrics"]


def _torchmetrics():
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    return FrechetInceptionDistance, KernelInceptionDistance


def frechet_distance(f1, f2) -> float:
    """Fréchet distance between Gaussians fitted to feature sets (n1, d) and (n2, d) (torchmetrics, float64)."""
    f1, f2 = torch.as_tensor(f1).double(), torch.as_tensor(f2).double()
    if f1.dim() != 2 or f2.dim() != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be (n1, d) and (n2, d), got {tuple(f1.shape)} and {tuple(f2.shape)}")
    fid_cls, _ = _torchmetrics()
    fid = fid_cls(feature=IdentityFeatures(f1.shape[1]))
    fid.update(f1, real=True)
    fid.update(f2, real=False)
    # identical sets give -1e-9 from rounding (the square root of a singular product): clipped at 0
    return max(0.0, float(fid.compute()))


class ImageMetrics:
    """Score generated images against `real` images in the space of `features` (features.py).

    Args:
        features: an extractor module, (N, C, H, W) in [-1, 1] -> (N, F), with `num_features`.
        real: the reference images (or, with IdentityFeatures, the reference features).
        kid_subsets, kid_subset_size: KID's subsets (the size is capped at the smaller set).
        k_pr, k_dc: neighbours for precision/recall and for density/coverage.
        batch_size: images per feature-extractor call.
        seed: KID's subset draws.
    """

    def __init__(self, features: nn.Module, real: torch.Tensor, kid_subsets: int = 100, kid_subset_size: int = 1000,
                 k_pr: int = 3, k_dc: int = 5, batch_size: int = 500, seed: int = 0):
        fid_cls, kid_cls = _torchmetrics()
        self.features = FeatureCache(features)
        self.batch_size, self.seed, self.k_pr, self.k_dc = batch_size, seed, k_pr, k_dc
        self.kid_subset_size = kid_subset_size
        # the reference statistics survive `reset()`: only the generated side is recomputed per evaluation
        self.fid = fid_cls(feature=self.features, reset_real_features=False)
        with warnings.catch_warnings():  # "KID will save all extracted features": that is what we want here
            warnings.simplefilter("ignore", UserWarning)
            self.kid = kid_cls(feature=self.features, subsets=kid_subsets, subset_size=kid_subset_size,
                               reset_real_features=False)
        self.real_features = self._update(real, real=True)

    def _update(self, x: torch.Tensor, real: bool) -> torch.Tensor:
        feats = []
        for i in range(0, len(x), self.batch_size):
            batch = x[i:i + self.batch_size]
            self.fid.update(batch, real=real)
            self.kid.update(batch, real=real)  # the cache hands KID the features FID just computed
            feats.append(self.features(batch))
        return torch.cat(feats)

    @torch.no_grad()
    def __call__(self, fake: torch.Tensor) -> dict[str, float]:
        self.fid.reset()
        self.kid.reset()
        fake_features = self._update(fake, real=False)
        self.kid.subset_size = min(self.kid_subset_size, len(fake_features), len(self.real_features))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            kid, kid_std = self.kid.compute()
        out = {"frechet_distance": max(0.0, float(self.fid.compute())), "kid": float(kid), "kid_std": float(kid_std)}
        out.update(precision_recall(self.real_features, fake_features, self.k_pr))
        out.update(density_coverage(self.real_features, fake_features, self.k_dc))
        return out


def image_metrics(features: nn.Module, real: torch.Tensor, fake: torch.Tensor, **kw) -> dict[str, float]:
    """One-off `ImageMetrics(features, real, **kw)(fake)`."""
    return ImageMetrics(features, real, **kw)(fake)

