"""A GAN designed from formulas by the factory ("Designing GANs", arXiv 2002.00865; docs/theory.md).

The article writes t for the discriminator's output with a LARGE t meaning FAKE (t* = ω(q/p)).
This loss keeps the library's convention, a larger output T means more REAL, and evaluates the
article's functions at t = -T. With φ, ψ derived from ω and ρ and the generator's β:

    L_D = -mean φ(t_r) - mean ψ(t_f),      L_G = mean β(t_f),      t = -T.

Where Ω = ω([0, ∞)) is not all of ℝ, t is first mapped into Ω by the design's monotone squash
(`Design.to_domain`); `squash="auto"` does so only when φ, ψ or β are undefined outside Ω.
"""
from __future__ import annotations

import warnings

from ..factory import Design
from ..factory import design as make_design
from .base import GANLoss, elementwise

__all__ = ["DesignedLoss"]


class DesignedLoss(GANLoss):
    """The loss pair of a `lightning_gans.factory.Design` (larger output = more real, like every loss).

    Args:
        design: a `Design` (from `lightning_gans.factory.design`); or, when None, the formulas below.
        omega, rho, alpha, beta: formulas in r (ω) and t (ρ, α, β).
        generator: without beta, "nonsat" (β = -φ), "saddle" (β = ψ, D's own objective) or "auto"
            (default: nonsat where it satisfies Conclusion 2, else saddle).
        constants: named numbers the formulas may use, e.g. {"a": -1, "b": 1} for the LSGAN row.
        squash: "auto" | True | False: map outputs into Ω before φ, ψ, β.
        allow_failed_check: train a design that fails `Design.check()` (with a warning) instead of
            raising `DesignCheckError`. Only for deliberate experiments.
        impl: accepted for a uniform API; designed losses run on plain torch ("fused" is an error).
    """

    name = "designed"

    def __init__(self, design=None, omega="log(r)", rho="1/(1+exp(t))", alpha=None, beta=None,
                 generator: str = "auto", constants=None, squash="auto", allow_failed_check: bool = False,
                 impl: str = "auto"):
        super().__init__(impl)
        if design is not None and not isinstance(design, Design):
            raise TypeError(f"design must be a lightning_gans.factory.Design, got {type(design).__name__}")
        if constants is not None and not isinstance(constants, dict):
            raise TypeError(f"constants must be a dict of name -> number, got {type(constants).__name__}")
        self.design = design if design is not None else make_design(
            omega=omega, rho=rho, alpha=alpha, beta=beta, constants=constants, generator=generator)
        if squash not in ("auto", True, False):
            raise ValueError(f"squash must be 'auto', True or False, got {squash!r}")
        self.squash = self.design.needs_squash() if squash == "auto" else bool(squash)
        if not isinstance(allow_failed_check, bool):
            raise TypeError(f"allow_failed_check must be a bool, got {allow_failed_check!r}")
        report = self.design.check(raise_on_fail=not allow_failed_check)
        if not report.ok:
            warnings.warn(f"training a design that fails its check (allow_failed_check=True):\n{report}", stacklevel=2)
        self.check_report = report

    def params(self):
        f = self.design.formulas
        return {k: f[k] for k in ("omega", "rho", "alpha", "beta", "generator", "constants")}

    def _t(self, out):
        t = -out  # the article's variable: larger t = more fake
        return self.design.to_domain(t) if self.squash else t

    def _d(self, r, f):
        d = self.design
        return elementwise(lambda r, f: -d.phi(self._t(r)).mean() - d.psi(self._t(f)).mean(), r, f)

    def _g(self, r, f):
        return elementwise(lambda f: self.design.beta(self._t(f)).mean(), f)
