"""The Designing-GANs factory (arXiv 2002.00865; docs/theory.md): ω, ρ (and α, β) as formulas -> φ, ψ.

    >>> from lightning_gans.factory import design
    >>> d = design(omega="log(r)", rho="1/(1+exp(t))")   # the standard GAN
    >>> d.check()                                          # raises DesignCheckError on failure
    >>> from lightning_gans.losses import DesignedLoss
    >>> loss = DesignedLoss(d)                             # train it (larger output = more real)

Formulas are parsed as math only (`parse.parse_formula`); `lgans-design` (lightning_gans.cli.design)
prints and plots a design before training it. The factory knows nothing of the loss library:
it imports only sympy, numpy and torch.
"""
from .check import CheckReport, DesignCheckError
from .design import Design, DesignError, design
from .parse import FormulaError, parse_formula

__all__ = ["design", "Design", "DesignError", "DesignCheckError", "CheckReport", "FormulaError", "parse_formula"]
