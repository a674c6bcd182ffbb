"""The Designing-GANs factory (SPEC §1, arXiv 2002.00865): ω, ρ (and α, β) as formulas -> a GAN.

    >>> from lightning_gans.factory import design
    >>> d = design(omega="log(r)", rho="1/(1+exp(t))")   # the standard GAN
    >>> d.check()                                          # raises DesignCheckError on failure
    >>> loss = d.loss()                                    # GANLoss; larger output = more FAKE

Formulas are parsed as math only (`parse.parse_formula`); see `lgans-design`
(`factory.cli`) to print and plot a design before training it.
"""
from .check import CheckReport, DesignCheckError
from .design import Design, DesignError, design
from .parse import FormulaError, parse_formula

__all__ = ["design", "Design", "DesignError", "DesignCheckError", "CheckReport", "FormulaError", "parse_formula"]
