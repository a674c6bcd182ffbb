"""Relativistic GAN losses (Jolicoeur-Martineau 2018, arXiv 1807.00734; docs/theory.md §3).

The discriminator scores how much more real a real sample is than a fake one,
through the difference T(x_r) - T(x_f). Larger output T = more real. How a
batch of N real and M fake outputs estimates the expectation over pairs:

- "paired" (N = M): pair i with i (RSGAN's and R3GAN's code);
- "all": all N·M pairs, the lower-variance estimator, fused without the N×M matrix;
- "average" (RaGAN): each sample against the other batch's mean, gradients through the means.
"""
from __future__ import annotations

import torch.nn.functional as F

from .. import kernels
from .base import GANLoss, elementwise

__all__ = ["RSGAN", "RaSGAN", "RaLSGAN", "RaHingeGAN", "PAIRINGS", "GENERATOR_H"]

PAIRINGS = ("paired", "all")
# The generator's h in L_G = E[h(T_f - T_r)] (docs/theory.md §3): any h with h(log u) convex.
GENERATOR_H = ("nonsat", "minimax", "linear")


class RSGAN(GANLoss):
    """Relativistic standard GAN (RSGAN; R3GAN's "RpGAN" with pairing="paired").

    L_D = E[sp(-(T_r - T_f))],    L_G = E[h(T_f - T_r)] with
        h = "nonsat":  sp(-t)  -> L_G = E[sp(-(T_f - T_r))]   (the paper's choice, default)
        h = "minimax": -sp(t)  -> L_G = -L_D
        h = "linear":  -t      -> L_G = mean T_r - mean T_f  (the same for every pairing)
    E over pairs per `pairing` ("paired": N = M, i with i; "all": all N·M pairs).
    Optimum: p(x_r)q(x_f) / (p(x_f)q(x_r)) = e^{T(x_r) - T(x_f)}. Fused: `kernels.relativistic_paired`,
    `kernels.relativistic_all_pairs` (O(N + M) memory forward and backward).
    """

    name, relativistic, has_fused = "rsgan", True, True

    def __init__(self, pairing: str = "paired", h: str = "nonsat", impl: str = "auto"):
        super().__init__(impl)
        if pairing not in PAIRINGS:
            raise ValueError(f"rsgan pairing must be one of {PAIRINGS}, got {pairing!r}")
        if h not in GENERATOR_H:
            raise ValueError(f"rsgan h (the generator's h(t)) must be one of {GENERATOR_H}, got {h!r}")
        self.pairing, self.h = pairing, h

    def params(self):
        return {"pairing": self.pairing, "h": self.h}

    def _rel(self, r, f, sign):
        # mean over pairs of sp(sign (T_f - T_r))
        fn = kernels.relativistic_paired if self.pairing == "paired" else kernels.relativistic_all_pairs
        return fn(r, f, sign, impl=self.impl)

    def _d(self, r, f):
        return self._rel(r, f, 1.0)

    def _g(self, r, f):
        if self.h == "nonsat":
            return self._rel(r, f, -1.0)
        if self.h == "minimax":
            return -self._rel(r, f, 1.0)
        return elementwise(lambda r, f: r.mean() - f.mean(), r, f, paired=self.pairing == "paired")


class _Average(GANLoss):
    """Relativistic average losses: RaGAN's D(x_r) = T_r - m_f and D(x_f) = T_f - m_r."""

    relativistic, pairing = True, "average"

    @staticmethod
    def centred(r, f):
        # Gradients flow through the batch means, as in the paper's code.
        return r - f.mean(), f - r.mean()


class RaSGAN(_Average):
    """Relativistic average standard GAN (RaSGAN; docs/theory.md §3). Fused: `kernels.relativistic_average`.

    L_D = ½{mean_i sp(-(T_r[i] - m_f)) + mean_j sp(T_f[j] - m_r)}
    L_G = ½{mean_i sp(T_r[i] - m_f) + mean_j sp(-(T_f[j] - m_r))}
    """

    name, has_fused = "rasgan", True

    def _d(self, r, f):
        return kernels.relativistic_average(r, f, 1.0, impl=self.impl)

    def _g(self, r, f):
        return kernels.relativistic_average(r, f, -1.0, impl=self.impl)


class RaLSGAN(_Average):
    """Relativistic average least-squares GAN (RaLSGAN, arXiv 1807.00734).

    L_D = ½{mean (T_r - m_f - 1)² + mean (T_f - m_r + 1)²}
    L_G = ½{mean (T_r - m_f + 1)² + mean (T_f - m_r - 1)²}
    """

    name = "ralsgan"

    def _d(self, r, f):
        def fn(r, f):
            dr, df = self.centred(r, f)
            return 0.5 * (((dr - 1.0) ** 2).mean() + ((df + 1.0) ** 2).mean())

        return elementwise(fn, r, f)

    def _g(self, r, f):
        def fn(r, f):
            dr, df = self.centred(r, f)
            return 0.5 * (((dr + 1.0) ** 2).mean() + ((df - 1.0) ** 2).mean())

        return elementwise(fn, r, f)


class RaHingeGAN(_Average):
    """Relativistic average hinge GAN (RaHingeGAN, arXiv 1807.00734).

    L_D = ½{mean relu(1 - (T_r - m_f)) + mean relu(1 + (T_f - m_r))}
    L_G = ½{mean relu(1 + (T_r - m_f)) + mean relu(1 - (T_f - m_r))}
    """

    name = "rahinge"

    def _d(self, r, f):
        def fn(r, f):
            dr, df = self.centred(r, f)
            return 0.5 * (F.relu(1.0 - dr).mean() + F.relu(1.0 + df).mean())

        return elementwise(fn, r, f)

    def _g(self, r, f):
        def fn(r, f):
            dr, df = self.centred(r, f)
            return 0.5 * (F.relu(1.0 + dr).mean() + F.relu(1.0 - df).mean())

        return elementwise(fn, r, f)
