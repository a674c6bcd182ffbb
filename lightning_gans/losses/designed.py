"""A GAN designed from formulas by the factory (SPEC §1, "Designing GANs", arXiv 2002.00865).

Convention: the ARTICLE's, a larger discriminator output t means "more fake"
(the optimal output is T*(x) = ω(q(x)/p(x)), increasing in q/p). With φ, ψ
derived from ω and ρ, and the generator's β (β = ψ unless given):

    L_D = -mean φ(t_r) - mean ψ(t_f),      L_G = mean β(t_f).

Where Ω = ω([0, ∞)) is not all of ℝ, the raw network output s is mapped into Ω
by a monotone increasing squash (`Design.to_domain`), e.g. lo + sp(s) for
Ω = (lo, ∞); `squash="auto"` does so only when φ, ψ or β are undefined outside Ω.
"""
from __future__ import annotations

import warnings

from .base import GANLoss, elementwise

__all__ = ["DesignedLoss"]


class DesignedLoss(GANLoss):
    """The loss pair of a `lightning_gans.factory.Design` (larger output = more FAKE).

    Args:
        omega, rho, alpha, beta: formulas in r (ω) and t (ρ, α, β), used when `design` is None.
        constants: named numbers the formulas may use, e.g. {"a": -1, "b": 1} for the LSGAN row.
        design: an existing `Design` (from `lightning_gans.factory.design`).
        squash: "auto" | True | False: map raw outputs into Ω before φ, ψ, β.
        allow_failed_check: train a design that fails `Design.check()` (with a warning) instead of
            raising `DesignCheckError`. Only for deliberate experiments.
        impl: accepted for a uniform API; designed losses run on plain torch ("fused" is an error).
    """

    name = "designed"
    larger_is_real = False

    def __init__(self, omega="log(r)", rho="1/(1+exp(t))", alpha=None, beta=None, design=None,
                 squash="auto", allow_failed_check: bool = False, constants=None, impl: str = "auto"):
        super().__init__(impl)
        from ..factory import Design
        from ..factory import design as make_design

        if design is not None and not isinstance(design, Design):
            raise TypeError(f"design must be a lightning_gans.factory.Design, got {type(design).__name__}")
        if constants is not None and not isinstance(constants, dict):
            raise TypeError(f"constants must be a dict of name -> number, got {type(constants).__name__}")
        self.design = design if design is not None else make_design(
            omega=omega, rho=rho, alpha=alpha, beta=beta, constants=constants)
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
        return {k: f[k] for k in ("omega", "rho", "alpha", "beta", "constants")}

    def _t(self, s):
        return self.design.to_domain(s) if self.squash else s

    def _d(self, r, f):
        d = self.design
        return elementwise(lambda r, f: -d.phi(self._t(r)).mean() - d.psi(self._t(f)).mean(), r, f)

    def _g(self, r, f):
        return elementwise(lambda f: self.design.beta(self._t(f)).mean(), f)
