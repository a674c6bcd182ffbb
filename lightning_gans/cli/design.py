"""`lgans-design`: see a designed GAN before training it (docs/theory.md §1, "Designing GANs").

    lgans-design --omega 'log(r)' --rho '1/(1+exp(t))' --beta 't' --out design.png
    python -m lightning_gans.cli.design --omega '0.5*log(r)' --rho 'exp(-t)'

Prints ω, Ω, ρ, the derived φ and ψ (ψ normalised so ψ(ω(1)) = 0), d(r), the
generator's α, β and d₂(r), and the verdict of `Design.check()`; writes a PNG
with φ and ψ over Ω and ω, d, d₂ over r. Exit status: 0 when the check passes,
1 when it fails (the PNG is still written: a failing design is worth seeing),
2 for formulas that cannot be parsed or built.

Formulas may start with a minus sign as written (`--omega "-log(r)"`): argparse would read such a
value as an option, so `main` first glues every formula option to its value (`--omega=-log(r)`).
When ω is not strictly increasing nothing derived from it means anything (Ω, φ, ψ, d): only the
formulas and the check's failure are printed then.
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings

import numpy as np
import torch

from ..factory.design import Design, DesignError
from ..factory.parse import FormulaError

__all__ = ["main", "build_parser", "plot_design"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lgans-design",
        description="Derive, check and plot a GAN from formulas (Designing GANs, arXiv 2002.00865). "
        "Convention: a larger discriminator output t means MORE FAKE; r = q/p.",
    )
    p.add_argument("--omega", default="log(r)", help="ω(r), strictly increasing on r >= 0 (default: log(r))")
    p.add_argument("--rho", default="1/(1+exp(t))", help="ρ(t) > 0 on Ω = ω([0, ∞)) (default: 1/(1+exp(t)))")
    p.add_argument("--alpha", default=None, help="generator α(t) (Conclusion 2; default: φ when β is not given, else 0)")
    p.add_argument("--beta", default=None, help="generator β(t): L_G = E_q[β(T)] (default: ψ)")
    p.add_argument("--const", action="append", default=[], metavar="NAME=VALUE",
                   help="a named constant usable in the formulas, e.g. --const a=-1 (repeatable)")
    p.add_argument("--out", default="design.png", help="PNG to write (default: design.png)")
    p.add_argument("--r-max", type=float, default=10.0, help="largest r on the plots (default: 10)")
    return p


# Options whose next argument is always their value, even when it starts with "-" (a formula).
VALUE_OPTIONS = ("--omega", "--rho", "--alpha", "--beta", "--const")


def glue_values(argv: list[str]) -> list[str]:
    """["--omega", "-log(r)"] -> ["--omega=-log(r)"] for every option of VALUE_OPTIONS."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUE_OPTIONS and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _constants(items: list[str]) -> dict:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            out[name.strip()] = float(value)
        except ValueError:
            raise FormulaError(f"--const: expected NAME=NUMBER, got {item!r}") from None
    return out


def _values(fn, x: np.ndarray) -> np.ndarray:
    with torch.no_grad(), np.errstate(all="ignore"):
        try:
            return fn(torch.as_tensor(x, dtype=torch.float64)).numpy()
        except DesignError:  # a table that could not be built: nothing to draw
            return np.full_like(x, np.nan)


def _t_range(d: Design, r_max: float) -> np.ndarray:
    """t values to draw φ and ψ on: ω over r in [1/(10 r_max), 10 r_max], clipped to Ω."""
    w = _values(d.omega, np.array([1.0 / (10 * r_max), 10 * r_max]))
    lo, hi = (float(v) for v in w)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        lo, hi = -5.0, 5.0  # ω unusable (a failing design): show a generic window
    pad = 0.05 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    # Stay strictly inside a finite Ω: φ or ψ may be infinite at its ends.
    dlo, dhi = d.domain
    if math.isfinite(dlo):
        lo = max(lo, dlo + 1e-3 * (hi - lo))
    if math.isfinite(dhi):
        hi = min(hi, dhi - 1e-3 * (hi - lo))
    return np.linspace(lo, hi, 400)


def plot_design(d: Design, path: str, r_max: float = 10.0, verdict: str = "") -> None:
    """Write a 2×2 PNG: φ and ψ over t; ω over r; d and d₂ over r (r = 1 marked)."""
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on training machines
    import matplotlib.pyplot as plt

    t = _t_range(d, r_max)
    r = np.linspace(0.0, r_max, 400)[1:]  # r = 0 left out: d(0) is a limit (0·∞ for some ψ)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), dpi=90)
    ax = axes[0, 0]
    ax.plot(t, _values(d.phi, t), label="φ(t)")
    ax.plot(t, _values(d.psi, t), label="ψ(t)")
    ax.axvline(float(_values(d.omega, np.array([1.0]))[0]), color="0.6", ls=":", label="ω(1)")
    ax.set(xlabel="t (larger = more fake)", title="discriminator pair φ, ψ")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(r, _values(d.omega, r), color="tab:green")
    ax.set(xlabel="r = q/p", title="ω(r) = optimal output T*")
    ax = axes[1, 0]
    ax.plot(r, _values(d.d, r), color="tab:red")
    ax.axvline(1.0, color="0.6", ls=":")
    ax.set(xlabel="r = q/p", title="d(r) = φ(ω(r)) + r ψ(ω(r))")
    ax = axes[1, 1]
    ax.plot(r, _values(d.d2, r), color="tab:purple")
    ax.axvline(1.0, color="0.6", ls=":")
    ax.set(xlabel="r = q/p", title="generator d₂(r) = α(ω(r)) + r β(ω(r))")
    for a in axes.flat:
        a.grid(alpha=0.3)
    fig.suptitle(f"ω = {d.formulas['omega']},  ρ = {d.formulas['rho']}    {verdict}")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(glue_values(sys.argv[1:] if argv is None else list(argv)))
    if not args.r_max > 1.0:
        parser.error(f"--r-max must be above 1 (the plots mark r = 1), got {args.r_max}")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            d = Design(args.omega, args.rho, args.alpha, args.beta, constants=_constants(args.const))
    except (FormulaError, DesignError) as e:
        print(f"lgans-design: error: {e}", file=sys.stderr)
        return 2
    # The check runs first: when ω is not increasing, Ω, φ, ψ and d are meaningless (a decreasing ω
    # gives Ω = (inf, -inf)), so only the formulas and the failure are printed.
    report = d.check(raise_on_fail=False)  # collects every failure instead of raising the first
    if any(e.condition == "omega increasing" for e in report.failed):
        print(f"omega(r) = {d.exprs['omega']}\nrho(t)   = {d.exprs['rho']}")
    else:
        for w in caught:  # e.g. "no closed form for psi; integrating numerically"
            print(f"note: {w.message}")
        print(d.describe())
    print(f"check: {report}")
    ok = report.ok
    plot_design(d, args.out, r_max=args.r_max, verdict="check passed" if ok else "CHECK FAILED")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
