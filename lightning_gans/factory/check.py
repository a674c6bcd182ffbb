"""Numeric verification of a `Design` (docs/theory.md §1; arXiv 2002.00865, Conclusions 1 and 2).

Conditions, checked in this order on grids of r (log-spaced over `r_range`,
plus r = 0 where ω(0) is finite, plus r = 1) and of t = ω(r) (over a range
100x wider on each side, so every t lies in Ω):

1. ``omega increasing``  ω is finite and strictly increasing;
2. ``rho positive``      ρ(t) > 0 on Ω;
3. ``psi normalised``    ψ(ω(1)) = 0;
4. ``maximiser``         argmax_t φ(t) + rψ(t) = ω(r) (dense grid, then a bounded
                         scalar refinement; compared to ω(r));
5. ``d convex``          d(r) = φ(ω(r)) + rψ(ω(r)) is convex with its minimum at r = 1;
6. ``beta nonzero``      β is not identically zero (the generator needs a gradient);
7. ``generator``         d₂(r) = α(ω(r)) + rβ(ω(r)) is convex or minimal at r = 1.

A failure raises `DesignCheckError` naming the condition and a value of r or
t where it fails (``err.condition``, ``err.variable``, ``err.value``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import sympy
from scipy.optimize import minimize_scalar

from .parse import T

__all__ = ["DesignCheckError", "CheckReport", "run_checks"]

N_R = 241          # r grid for conditions 1, 5, 7
N_T = 4001         # t grid for condition 4
N_MAX = 15         # values of r at which the maximiser is checked
REL_TOL = 1e-6


class DesignCheckError(ValueError):
    """A design that violates a condition of Conclusion 1 or 2."""

    def __init__(self, condition: str, message: str, variable: str | None = None, value: float | None = None):
        self.condition, self.variable, self.value = condition, variable, value
        where = f" (fails at {variable} = {value:.6g})" if variable is not None else ""
        super().__init__(f"design check failed [{condition}]: {message}{where}")


@dataclass
class CheckReport:
    passed: list[str] = field(default_factory=list)
    failed: list[DesignCheckError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        lines = [f"  ok    {c}" for c in self.passed] + [f"  FAIL  {e}" for e in self.failed]
        return ("PASSED" if self.ok else "FAILED") + "\n" + "\n".join(lines)


def _np(fn, x) -> np.ndarray:
    with torch.no_grad(), np.errstate(all="ignore"):
        return fn(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def _first_convexity_failure(r: np.ndarray, d: np.ndarray) -> float | None:
    """r where the slopes of d stop increasing (beyond rounding), else None."""
    slope = np.diff(d) / np.diff(r)
    scale = 1.0 + np.abs(slope[:-1]) + np.abs(slope[1:])
    bad = np.nonzero(np.diff(slope) < -REL_TOL * scale)[0]
    return None if len(bad) == 0 else float(r[bad[0] + 1])


def _below_r1(r: np.ndarray, d: np.ndarray, d1: float) -> float | None:
    bad = np.nonzero(d < d1 - REL_TOL * (1.0 + abs(d1)))[0]
    return None if len(bad) == 0 else float(r[bad[np.argmin(d[bad])]])


def d2_failure(design, r: np.ndarray, i1: int) -> DesignCheckError | None:
    """Conclusion 2's condition on the generator: d₂(r) = α(ω(r)) + rβ(ω(r)) finite, and convex or
    minimal at r = 1 (r[i1] = 1); the error naming where it fails, or None."""
    d2 = _np(design.d2, r)
    if not np.all(np.isfinite(d2)):
        return DesignCheckError("generator", "d2(r) = alpha(omega(r)) + r beta(omega(r)) is not finite", "r",
                                float(r[np.nonzero(~np.isfinite(d2))[0][0]]))
    rc, rb = _first_convexity_failure(r, d2), _below_r1(r, d2, d2[i1])
    if rc is not None and rb is not None:
        return DesignCheckError("generator", f"d2(r) = alpha(omega(r)) + r beta(omega(r)) is neither convex "
                                f"(fails at r = {rc:.6g}) nor minimal at r = 1 (d2(r) < d2(1))", "r", rb)
    return None


def r_grid(r_range=(1e-3, 1e3), omega=None) -> tuple[np.ndarray, int]:
    """The r values every check samples (0 too when ω(0) is finite) and the index of r = 1."""
    lo, hi = float(r_range[0]), float(r_range[1])
    if not (0 < lo < 1 < hi):
        raise ValueError(f"r_range must satisfy 0 < r_min < 1 < r_max, got {r_range}")
    r = np.unique(np.concatenate([np.geomspace(lo, hi, N_R), [1.0]]))
    if omega is not None and np.isfinite(_np(omega, [0.0])[0]):
        r = np.concatenate([[0.0], r])
    return r, int(np.nonzero(r == 1.0)[0][0])


def run_checks(design, r_range=(1e-3, 1e3), raise_on_fail: bool = True) -> CheckReport:
    rep = CheckReport()
    lo, hi = float(r_range[0]), float(r_range[1])

    def fail(cond, msg, var=None, val=None):
        err = DesignCheckError(cond, msg, var, val)
        if raise_on_fail:
            raise err
        rep.failed.append(err)

    r, i1 = r_grid(r_range, design.omega)

    # 1. ω finite and strictly increasing.
    w = _np(design.omega, r)
    if not np.all(np.isfinite(w)):
        k = int(np.nonzero(~np.isfinite(w))[0][0])
        fail("omega increasing", "omega(r) is not a finite real number", "r", r[k])
        return rep
    if not np.all(np.diff(w) > 0):
        k = int(np.nonzero(np.diff(w) <= 0)[0][0])
        fail("omega increasing", "omega is not strictly increasing", "r", r[k + 1])
        return rep
    rep.passed.append("omega increasing")

    # 2. ρ > 0 on Ω (t = ω(r) over a wider range of r stays inside Ω).
    rw = np.geomspace(lo * 1e-2, hi * 1e2, N_T)
    tw = _np(design.omega, rw)
    keep = np.isfinite(tw)
    rw, tw = rw[keep], tw[keep]
    rho = _np(design.rho, tw)
    bad = ~(np.isfinite(rho) & (rho > 0))
    # ρ = 0.0 in float64 may be underflow (exp(-exp(t)), 1/(1+e^t) at t = 800):
    # re-evaluate such points exactly (at most 64 of them, evenly spread, ends
    # included) before calling ρ non-positive there.
    expr = getattr(design, "exprs", {}).get("rho")
    zeros = np.nonzero(bad & (rho == 0))[0]
    if expr is not None and len(zeros):
        probe = zeros[np.unique(np.linspace(0, len(zeros) - 1, 64).round().astype(int))]
        exact_zero = [k for k in probe if not bool(sympy.N(expr.subs(T, sympy.Float(float(tw[k]), 30)), 30) > 0)]
        bad[zeros] = False
        bad[exact_zero] = True
    if bad.any():
        fail("rho positive", "rho(t) is not positive (or not finite) on Omega", "t", tw[np.nonzero(bad)[0][0]])
        return rep
    rep.passed.append("rho positive")

    try:
        phi_w, psi_w = _np(design.phi, tw), _np(design.psi, tw)
        psi1 = float(_np(design.psi, [w[i1]])[0])
    except ValueError as e:  # DesignError from a table that could not be built
        fail("maximiser", str(e))
        return rep

    # 3. ψ(ω(1)) = 0.
    if not (math.isfinite(psi1) and abs(psi1) <= 1e-6):
        fail("psi normalised", f"psi(omega(1)) = {psi1:.6g}, not 0", "r", 1.0)
    else:
        rep.passed.append("psi normalised")

    # 4. The maximiser of φ(t) + rψ(t) over Ω is ω(r).
    for rr in np.unique(np.concatenate([np.geomspace(lo, hi, N_MAX), [1.0]])):
        obj = phi_w + rr * psi_w
        if not np.isfinite(obj).any():
            fail("maximiser", "phi(t) + r psi(t) is not finite anywhere on Omega", "r", rr)
            break
        k = int(np.nanargmax(np.where(np.isfinite(obj), obj, -np.inf)))
        a, b = tw[max(k - 1, 0)], tw[min(k + 1, len(tw) - 1)]
        f = lambda x: -float(_np(design.phi, [x])[0] + rr * _np(design.psi, [x])[0])  # noqa: E731
        t_hat = minimize_scalar(f, bounds=(a, b), method="bounded", options={"xatol": 1e-12}).x if b > a else a
        target = float(_np(design.omega, [rr])[0])
        close = abs(t_hat - target) <= 1e-4 * (1.0 + abs(target))
        # Where ρ is tiny (e.g. 1/(1+e^t) at t = 20) the objective is flat to
        # rounding around ω(r): accept a t_hat whose value ties with ω(r)'s,
        # relative to the size of the two terms (not of their cancelling sum).
        scale = abs(float(_np(design.phi, [target])[0])) + rr * abs(float(_np(design.psi, [target])[0]))
        flat = abs(f(t_hat) - f(target)) <= 1e-8 * scale + 1e-12
        if not (close or flat):
            fail("maximiser", f"the maximiser of phi(t) + r psi(t) is t = {t_hat:.6g}, not omega(r) = {target:.6g}", "r", rr)
            break
    else:
        rep.passed.append("maximiser")

    # 5. d(r) convex with its minimum at r = 1. r = 0 is left out: there d is the
    # limit of r ψ(ω(r)) (0 · ∞ for the probability form, ψ(0) = -∞), not a value.
    if r[0] == 0.0:
        r, i1 = r[1:], i1 - 1
    d = _np(design.d, r)
    rc = _first_convexity_failure(r, d)
    rb = _below_r1(r, d, d[i1])
    if not np.all(np.isfinite(d)):
        fail("d convex", "d(r) is not finite", "r", r[np.nonzero(~np.isfinite(d))[0][0]])
    elif rc is not None:
        fail("d convex", "d(r) = phi(omega(r)) + r psi(omega(r)) is not convex", "r", rc)
    elif rb is not None:
        fail("d convex", "d(r) is smaller than d(1): its minimum is not at r = 1", "r", rb)
    else:
        rep.passed.append("d convex")

    # 6. β not identically zero.
    beta_w = _np(design.beta, tw)
    if np.all(np.abs(np.nan_to_num(beta_w, nan=0.0)) == 0):
        fail("beta nonzero", "beta is identically zero, so the generator gets no gradient")
    else:
        rep.passed.append("beta nonzero")

    # 7. d₂(r) = α(ω(r)) + rβ(ω(r)) convex, or minimal at r = 1.
    err = d2_failure(design, r, i1)
    if err is not None:
        fail(err.condition, str(err).split("]: ", 1)[1].rsplit(" (fails at", 1)[0], err.variable, err.value)
    else:
        d2 = _np(design.d2, r)
        rep.passed.append("generator " + ("(d2 convex)" if _first_convexity_failure(r, d2) is None
                                          else "(d2 minimal at r = 1)"))
    return rep
