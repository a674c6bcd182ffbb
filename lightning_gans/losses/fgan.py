"""f-GAN losses (Nowozin et al. 2016, arXiv 1606.00709; docs/theory.md). Larger output v = more real.

The discriminator maximises E_p[g_f(v)] - E_q[f*(g_f(v))] with output activation g_f and convex
conjugate f*:

    L_D = -mean g_f(v_r) + mean f*(g_f(v_f)).

At the optimum g_f(v*) = f'(p/q) and -L_D equals the f-divergence D_f(p‖q). The generator:

    generator="nonsat" (default):  L_G = -mean g_f(v_f)         the paper's practice (§3.2)
    generator="saddle":            L_G = -mean f*(g_f(v_f))     the saddle objective

"nonsat" always pushes fakes towards "more real" (g_f is increasing); "saddle" does not
everywhere: for Pearson χ², f*(s) = s²/4 + s has slope s/2 + 1 < 0 where v < -2, so there the
saddle generator pushes fakes the wrong way. Each class writes f*∘g_f in closed, overflow-free form.
"""
from __future__ import annotations

import abc
import math

import torch
import torch.nn.functional as F

from .. import kernels
from .base import GANLoss, elementwise

__all__ = ["FGAN", "FGAN_CLASSES", "FGAN_GENERATORS"]
LOG2 = math.log(2.0)
FGAN_GENERATORS = ("nonsat", "saddle")


class FGAN(GANLoss):
    """Base of the f-GAN family: subclasses define `g(v)` and `conj_g(v)` = f*(g(v))."""

    divergence = ""

    def __init__(self, generator: str = "nonsat", impl: str = "auto"):
        super().__init__(impl)
        if generator not in FGAN_GENERATORS:
            raise ValueError(f"{self.name} generator must be one of {FGAN_GENERATORS}, got {generator!r}")
        self.generator = generator

    def params(self):
        return {"generator": self.generator}

    @staticmethod
    @abc.abstractmethod
    def g(v: torch.Tensor) -> torch.Tensor:
        """The output activation g(v)."""

    @staticmethod
    @abc.abstractmethod
    def conj_g(v: torch.Tensor) -> torch.Tensor:
        """f*(g(v)), in closed, overflow-free form."""

    def _d(self, r, f):
        return elementwise(lambda r, f: -self.g(r).mean() + self.conj_g(f).mean(), r, f)

    def _g(self, r, f):
        fn = self.g if self.generator == "nonsat" else self.conj_g
        return elementwise(lambda f: -fn(f).mean(), f)


class FGanKL(FGAN):
    """KL(p‖q): g(v) = v, f*(s) = exp(s - 1)."""

    name, divergence = "fgan_kl", "KL"
    g = staticmethod(lambda v: v)
    conj_g = staticmethod(lambda v: torch.exp(v - 1.0))


class FGanReverseKL(FGAN):
    """Reverse KL(q‖p): g(v) = -exp(-v), f*(s) = -1 - log(-s), so f*(g(v)) = v - 1."""

    name, divergence = "fgan_rkl", "reverse KL"
    g = staticmethod(lambda v: -torch.exp(-v))
    conj_g = staticmethod(lambda v: v - 1.0)


class FGanPearson(FGAN):
    """Pearson χ²: g(v) = v, f*(s) = s²/4 + s."""

    name, divergence = "fgan_pearson", "Pearson chi^2"
    g = staticmethod(lambda v: v)
    conj_g = staticmethod(lambda v: 0.25 * v * v + v)


class FGanHellinger(FGAN):
    """Squared Hellinger: g(v) = 1 - exp(-v), f*(s) = s/(1 - s), so f*(g(v)) = e^v - 1."""

    name, divergence = "fgan_hellinger", "squared Hellinger"
    g = staticmethod(lambda v: 1.0 - torch.exp(-v))
    conj_g = staticmethod(lambda v: torch.expm1(v))


class FGanJS(FGAN):
    """Jensen-Shannon: g(v) = log 2 - sp(-v), f*(s) = -log(2 - e^s), so f*(g(v)) = sp(v) - log 2.

    L_D = mean sp(-v_r) + mean sp(v_f) - 2 log 2; L_G = mean sp(-v_f) - log 2 ("nonsat", the
    non-saturating GAN) or log 2 - mean sp(v_f) ("saddle", the minimax GAN): the standard GAN up to
    constants, so both run on the fused softplus ops.
    """

    name, divergence, has_fused = "fgan_js", "Jensen-Shannon", True
    g = staticmethod(lambda v: LOG2 - F.softplus(-v))
    conj_g = staticmethod(lambda v: F.softplus(v) - LOG2)

    def _d(self, r, f):
        return kernels.sgan_d(r, f, impl=self.impl) - 2.0 * LOG2

    def _g(self, r, f):
        if self.generator == "nonsat":
            return kernels.softplus_mean(f, -1.0, impl=self.impl) - LOG2
        return LOG2 - kernels.softplus_mean(f, 1.0, impl=self.impl)


class FGanTV(FGAN):
    """Total variation: g(v) = ½ tanh(v), f*(s) = s."""

    name, divergence = "fgan_tv", "total variation"
    g = staticmethod(lambda v: 0.5 * torch.tanh(v))
    conj_g = staticmethod(lambda v: 0.5 * torch.tanh(v))


FGAN_CLASSES = (FGanKL, FGanReverseKL, FGanPearson, FGanHellinger, FGanJS, FGanTV)
