"""Standard (non-relativistic) GAN losses. Larger discriminator output T = more real.

Notation of docs/theory.md: sp(x) = log(1 + e^x), T_r = T(x_r) on real data, T_f =
T(G(z)) on fakes; `mean` is over the batch.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .. import kernels
from .base import GANLoss, elementwise

__all__ = ["SGAN", "NSGAN", "SGANT", "ExpGAN", "LSGAN", "HingeGAN", "WGAN"]


class SGAN(GANLoss):
    """Standard GAN, minimax generator (Goodfellow et al. 2014; docs/theory.md §3).

    L_D = mean sp(-T_r) + mean sp(T_f)      (fused: `kernels.sgan_d`)
    L_G = -mean sp(T_f)                     (h(t) = -sp(t); fused: `kernels.softplus_mean`)
    Optimal discriminator: T*(x) = log(p(x)/q(x)). Saturates early in training; see `nsgan`.
    """

    name, has_fused = "sgan", True

    def _d(self, r, f):
        return kernels.sgan_d(r, f, impl=self.impl)

    def _g(self, r, f):
        return -kernels.softplus_mean(f, 1.0, impl=self.impl)


class NSGAN(SGAN):
    """Standard GAN, non-saturating generator (Goodfellow et al. 2014; docs/theory.md §3).

    L_D as `sgan`;  L_G = mean sp(-T_f) = -mean log σ(T_f)   (h(t) = sp(-t)).
    """

    name = "nsgan"

    def _g(self, r, f):
        return kernels.softplus_mean(f, -1.0, impl=self.impl)


class SGANT(SGAN):
    """Standard GAN with the "t-generator" (docs/theory.md §1 table row 2, §3 h(t) = -t).

    L_D as `sgan`;  L_G = -mean T_f. In the factory's variable t = -T this is
    β(t) = t with d₂(r) = r log r: the generator minimises KL(q‖p) against the
    optimal discriminator.
    """

    name = "sgan_t"

    def _g(self, r, f):
        return elementwise(lambda f: -f.mean(), f)


class ExpGAN(GANLoss):
    """The exponential GAN of "Designing GANs" (docs/theory.md §1 table row 5, arXiv 2002.00865).

    Article (t = -T, larger t = fake): ω(r) = ½ log r, ρ(t) = e^{-t}, φ = -e^t, ψ = 1 - e^{-t}.
    In this library's convention:
        L_D = mean e^{-T_r} + mean e^{T_f} - 1,    optimum T*(x) = ½ log(p/q)
        L_G = mean e^{-T_f}                        (β(t) = e^t, d₂(r) = r^{3/2}, convex)
    The exponentials overflow for |T| above ~88 (float32): keep D's outputs moderate
    (spectral norm or a gradient penalty).
    """

    name = "exp"

    def _d(self, r, f):
        return elementwise(lambda r, f: torch.exp(-r).mean() + torch.exp(f).mean() - 1.0, r, f)

    def _g(self, r, f):
        return elementwise(lambda f: torch.exp(-f).mean(), f)


class LSGAN(GANLoss):
    """Least-squares GAN (Mao et al. 2017, arXiv 1611.04076).

    L_D = ½ mean (T_r - b)² + ½ mean (T_f - a)²,   L_G = ½ mean (T_f - c)²,
    with a the fake label, b the real label (b > a: larger = real) and c the
    label the generator aims at. The default a = -1, b = 1, c = 0 (b - a = 2,
    b - c = 1) is the least-squares row of docs/theory.md §1 with β(t) = (t - (a+b)/2)² (t = -T). Mao et
    al.'s generator objective also has the real-data term ½E_p[(T_r - c)²] (α = β),
    constant for a fixed D and so left out here; with it d₂(r) = (r-1)²/(r+1), the
    Pearson χ² between p + q and 2q (the d₂ of docs/theory.md §1), without it d₂(r) = r(r-1)²/(r+1)²,
    not convex but minimal at r = 1: either way a divergence (docs/DECISIONS.md).
    """

    name = "lsgan"

    def __init__(self, a: float = -1.0, b: float = 1.0, c: float = 0.0, impl: str = "auto"):
        super().__init__(impl)
        for k, v in (("a", a), ("b", b), ("c", c)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"lsgan parameter {k} must be a finite number, got {v!r}")
        if not b > a:
            raise ValueError(f"lsgan needs the real label b above the fake label a (larger = real), got a={a}, b={b}")
        self.a, self.b, self.c = float(a), float(b), float(c)

    def params(self):
        return {"a": self.a, "b": self.b, "c": self.c}

    def _d(self, r, f):
        return elementwise(lambda r, f: 0.5 * ((r - self.b) ** 2).mean() + 0.5 * ((f - self.a) ** 2).mean(), r, f)

    def _g(self, r, f):
        return elementwise(lambda f: 0.5 * ((f - self.c) ** 2).mean(), f)


class HingeGAN(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018, arXiv 1802.05957).

    L_D = mean relu(1 - T_r) + mean relu(1 + T_f),   L_G = -mean T_f.
    """

    name = "hinge"

    def _d(self, r, f):
        return elementwise(lambda r, f: F.relu(1.0 - r).mean() + F.relu(1.0 + f).mean(), r, f)

    def _g(self, r, f):
        return elementwise(lambda f: -f.mean(), f)


class WGAN(GANLoss):
    """Wasserstein GAN critic losses (Arjovsky et al. 2017, arXiv 1701.07875).

    L_D = mean T_f - mean T_r,   L_G = -mean T_f.
    T must be 1-Lipschitz: use GANModule's `gp_weight` (WGAN-GP, arXiv 1704.00028).
    """

    name = "wgan"

    def _d(self, r, f):
        return elementwise(lambda r, f: f.mean() - r.mean(), r, f)

    def _g(self, r, f):
        return elementwise(lambda f: -f.mean(), f)
