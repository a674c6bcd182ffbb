"""The Designing-GANs factory (docs/theory.md §1; arXiv 2002.00865, Conclusions 1 and 2).

Given ω(r) (strictly increasing on r >= 0) and ρ(t) > 0 on Ω = ω([0, ∞)),
Conclusion 1 sets

    ψ'(t) = ρ(t),        φ'(t) = -ω⁻¹(t) ρ(t),        ψ(ω(1)) = 0,

and then  max_T E_p[φ(T)] + E_q[ψ(T)]  is  ∫ p d(q/p)  with
d(r) = φ(ω(r)) + r ψ(ω(r)) convex and minimal at r = 1: an f-divergence whose
optimal discriminator is T*(x) = ω(q(x)/p(x)). Conclusion 2 lets the
generator minimise E_q[β(T)] instead, for any α, β with
d₂(r) = α(ω(r)) + r β(ω(r)) convex or minimal at r = 1.

Convention of this module and of every loss it makes: a LARGE t means FAKE
(t* = ω(q/p) grows with q/p), as in the article.

φ and ψ are integrated by sympy. Where sympy finds no (real) closed form they
are integrated numerically along r (t = ω(r), so no inverse of ω is needed):
5-point Gauss-Legendre per cell of a log-spaced r grid, then a C¹ Hermite
table in t with the exact derivatives φ'(ω(r)) = -r ρ(ω(r)), ψ'(ω(r)) = ρ(ω(r)).
A warning says so and `Design.numeric` lists what was tabulated.
"""
from __future__ import annotations

import contextlib
import math
import signal
import threading
import warnings

import numpy as np
import sympy
import torch

from .check import d2_failure, r_grid, run_checks
from .parse import R, T, parse_formula
from .torchify import HermiteTable, Untranslatable, as_function, to_torch

__all__ = ["Design", "design", "DesignError", "SympyTimeout"]

TABLE_LOG_R = (-18.0, 18.0)   # numeric tables cover r in [e^-18, e^18] ≈ [1.5e-8, 6.6e7]
TABLE_CELLS = 2400            # cells of the log-r grid (r = 1 is a node)
SYMPY_TIMEOUT = 8.0           # seconds for one solve / integrate / limit (main thread only)


class DesignError(ValueError):
    """A design that cannot be built (bad formulas, ω with no usable values)."""


class SympyTimeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float):
    """Abort a slow sympy call with SIGALRM; a no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def handler(signum, frame):
        raise SympyTimeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _try_sympy(fn, *args, **kw):
    try:
        with _time_limit(SYMPY_TIMEOUT):
            return fn(*args, **kw)
    except (SympyTimeout, RuntimeError, ValueError, TypeError):
        # sympy gives up on integrals and inverses it cannot do with RuntimeError subclasses (and
        # RecursionError, also one); the caller then integrates numerically (Design._table).
        return None


def _f64(fn, x) -> np.ndarray:
    with torch.no_grad():
        return fn(torch.as_tensor(np.asarray(x, dtype=np.float64))).numpy()


def _real_antiderivative(integrand: sympy.Expr, t_samples: np.ndarray) -> sympy.Expr | None:
    """sympy's antiderivative of `integrand` in t, real on Ω, verified numerically; else None.

    sympy may return log(t - 1) on t < 1 (a complex constant away from
    log(1 - t)); replacing log(u) by log|u| is tried, and kept only if its
    derivative still matches the integrand at the sample points.
    """
    F_ = _try_sympy(sympy.integrate, integrand, T, conds="none")
    if F_ is None or F_.has(sympy.Integral):
        return None
    try:
        with np.errstate(all="ignore"):
            want = _f64(to_torch(integrand, T), t_samples)
    except Untranslatable:
        return None
    for cand in (F_, F_.replace(sympy.log, lambda u: sympy.log(sympy.Abs(u)))):
        try:
            g = to_torch(cand, T)
            tt = torch.as_tensor(t_samples, dtype=torch.float64).requires_grad_(True)
            y = g(tt)
            (dy,) = torch.autograd.grad(y.sum(), tt)
        except (Untranslatable, RuntimeError):
            continue
        y, dy = y.detach().numpy(), dy.numpy()
        if np.all(np.isfinite(y)) and np.allclose(dy, want, rtol=1e-6, atol=1e-9):
            return cand
    return None


class Design:
    """A GAN designed from ω and ρ (and optionally α, β). See the module docstring.

    Attributes: `omega` (torch fn of r), `rho`, `phi`, `psi`, `alpha`, `beta`
    (torch fns of t, differentiable), `domain` = (lo, hi) of Ω, `exprs` (sympy
    expressions, None where numeric), `numeric` (names integrated numerically),
    `formulas` (the inputs as given).
    """

    def __init__(self, omega="log(r)", rho="1/(1+exp(t))", alpha=None, beta=None, constants=None,
                 generator: str = "auto"):
        self.formulas = {"omega": omega, "rho": rho, "alpha": alpha, "beta": beta, "constants": dict(constants or {}),
                         "generator": generator}
        om = parse_formula(omega, ("r",), constants, "omega")
        rh = parse_formula(rho, ("t",), constants, "rho")
        al = None if alpha is None else parse_formula(alpha, ("t",), constants, "alpha")
        be = None if beta is None else parse_formula(beta, ("t",), constants, "beta")
        self.exprs = {"omega": om, "rho": rh, "alpha": al, "beta": be, "omega_inv": None, "phi": None, "psi": None}
        self.numeric: list[str] = []
        self.omega = to_torch(om, R, "omega")
        self.rho = to_torch(rh, T, "rho")
        self.domain = self._domain(om)
        self._omega_prime = to_torch(sympy.diff(om, R), R, "omega_prime")
        t_samples = _f64(self.omega, np.exp(np.linspace(-4.0, 4.0, 17)))
        t_samples = t_samples[np.isfinite(t_samples)]
        self.exprs["omega_inv"] = self._inverse(om, t_samples)
        self._derive(t_samples)
        # Generator (Conclusion 2). Without beta: "nonsat" β = -φ, α = 0: G raises D's real-side reward on
        # its fakes, the non-saturating choice (for the standard GAN it is -log D(G(z))), bounded below where
        # φ is bounded above; "saddle" β = ψ, α = φ: G plays D's own objective, whose ψ can be unbounded
        # below with exploding gradients (ω = ½ log r, ρ = e^{-t}: ψ = 1 - e^{-t} diverges in training).
        # "auto" (default): nonsat where it satisfies Conclusion 2, else saddle.
        if generator not in ("auto", "nonsat", "saddle"):
            raise DesignError(f"generator must be 'auto', 'nonsat' or 'saddle', got {generator!r}")
        if be is None and generator == "auto":
            self._set_generator("nonsat", al)
            try:
                generator = "nonsat" if d2_failure(self, *r_grid(omega=self.omega)) is None else "saddle"
            except DesignError:
                # φ could not even be built (e.g. ω not increasing, so no table): the design is broken
                # whatever the generator; construct it anyway so that check() names the real failure.
                generator = "saddle"
        if be is None:
            self._set_generator(generator, al)
        else:
            self.beta = to_torch(be, T, "beta")
            self.alpha = to_torch(al if al is not None else sympy.Integer(0), T, "alpha")
            self.exprs["alpha"] = al if al is not None else sympy.Integer(0)
        self.generator = generator if be is None else "given"

    def _set_generator(self, generator: str, al) -> None:
        if generator == "saddle":
            self.beta, self.alpha = self.psi, (self.phi if al is None else to_torch(al, T, "alpha"))
            self.exprs["beta"], self.exprs["alpha"] = self.exprs["psi"], (al if al is not None else self.exprs["phi"])
        else:
            phi = self.phi
            self.beta = lambda t: -phi(t)
            self.alpha = to_torch(al if al is not None else sympy.Integer(0), T, "alpha")
            self.exprs["beta"] = None if self.exprs["phi"] is None else -self.exprs["phi"]
            self.exprs["alpha"] = al if al is not None else sympy.Integer(0)

    # ------------------------------------------------------------------ derivation
    def _domain(self, om) -> tuple[float, float]:
        """Ω = (ω(0+), ω(∞)), by sympy limits, else numerically (|ω| > 1e6 read as infinite)."""
        ends = []
        for point, probes in ((0, (1e-150, 1e-300)), (sympy.oo, (1e150, 1e300))):
            lim = _try_sympy(sympy.limit, om, R, point, "+" if point == 0 else "-")
            if lim is not None and not lim.has(sympy.AccumBounds) and (lim.is_real or lim in (sympy.oo, -sympy.oo)):
                ends.append(float(lim))
                continue
            with np.errstate(all="ignore"):
                a, b = _f64(self.omega, probes)
            if not (math.isfinite(a) and math.isfinite(b)):
                ends.append(b if b == b else math.nan)
            elif abs(a - b) <= 1e-9 * (1 + abs(b)):
                ends.append(float(b))
            else:  # still moving between r = 1e150 and 1e300 (or 1e-150 and 1e-300): unbounded
                ends.append(math.copysign(math.inf, b - a))
        return (ends[0], ends[1])

    def _inverse(self, om, t_samples) -> sympy.Expr | None:
        """ω⁻¹(t) by sympy, the root that round-trips ω(ω⁻¹(t)) = t on Ω; None if none does."""
        sols = _try_sympy(sympy.solve, sympy.Eq(om, T), R) or []
        for s in sols:
            try:
                f = to_torch(s, T)
                with np.errstate(all="ignore"):
                    back = _f64(self.omega, _f64(f, t_samples))
            except (Untranslatable, RuntimeError, TypeError):
                continue
            if np.allclose(back, t_samples, rtol=1e-8, atol=1e-10):
                return s
        return None

    def _derive(self, t_samples) -> None:
        rho, inv = self.exprs["rho"], self.exprs["omega_inv"]
        t1 = _f64(self.omega, [1.0])[0]
        psi = _real_antiderivative(rho, t_samples)
        if psi is not None:  # normalise ψ(ω(1)) = 0
            c = _try_sympy(sympy.simplify, psi.subs(T, self.exprs["omega"].subs(R, 1)))
            if c is not None and c.is_number and c.is_real is not False and abs(complex(sympy.N(c)).imag) < 1e-12:
                psi = psi - (c if c.is_real else sympy.Float(complex(sympy.N(c)).real))
            else:
                psi = None
        phi = _real_antiderivative(-inv * rho, t_samples) if inv is not None else None
        for name, expr in (("psi", psi), ("phi", phi)):
            fn = None
            if expr is not None:
                try:
                    fn = to_torch(expr, T, name)
                    self.exprs[name] = expr
                except Untranslatable:
                    fn = None
            if fn is None:
                fn = self._table(name, t1)
                self.numeric.append(name)
                warnings.warn(f"design: no closed form for {name}; integrating numerically", RuntimeWarning, stacklevel=3)
            setattr(self, name, fn)

    def _table(self, name: str, t1: float):
        """Numeric φ or ψ: integrate along s = log r, anchor at r = 1, Hermite-interpolate in t."""
        n = TABLE_CELLS
        s = np.linspace(*TABLE_LOG_R, n + 1)  # symmetric, even n: s = 0 is a node
        gx, gw = np.polynomial.legendre.leggauss(5)
        mid, half = (s[1:] + s[:-1]) / 2, (s[1:] - s[:-1]) / 2
        sq = (mid[:, None] + half[:, None] * gx[None, :]).ravel()  # quadrature points
        with np.errstate(all="ignore"):
            rq = np.exp(sq)
            dens = _f64(self.rho, _f64(self.omega, rq)) * _f64(self._omega_prime, rq) * rq  # dψ/ds
            if name == "phi":
                dens = -rq * dens  # dφ/ds = -r dψ/ds
            cell = (dens.reshape(n, 5) * gw[None, :]).sum(1) * half
            vals = np.concatenate([[0.0], np.cumsum(cell)])
            vals -= vals[n // 2]  # value 0 at r = 1
            r = np.exp(s)
            t = _f64(self.omega, r)
            rho_t = _f64(self.rho, t)
            deriv = -r * rho_t if name == "phi" else rho_t
        ok = np.isfinite(t) & np.isfinite(vals) & np.isfinite(deriv)
        try:
            table = HermiteTable(t[ok], vals[ok], deriv[ok], name)
        except ValueError as e:
            msg = f"{name} could not be tabulated ({e}); is omega strictly increasing and rho finite?"

            def broken(x, msg=msg):
                raise DesignError(msg)

            return broken
        return as_function(table, name)

    # ------------------------------------------------------------------ derived maps
    def d(self, r):
        """d(r) = φ(ω(r)) + r ψ(ω(r)) (the discriminator's divergence integrand)."""
        r = torch.as_tensor(np.asarray(r, dtype=np.float64))
        t = self.omega(r)
        return self.phi(t) + r * self.psi(t)

    def d2(self, r):
        """d₂(r) = α(ω(r)) + r β(ω(r)) (the generator's, Conclusion 2)."""
        r = torch.as_tensor(np.asarray(r, dtype=np.float64))
        t = self.omega(r)
        return self.alpha(t) + r * self.beta(t)

    def to_domain(self, s: torch.Tensor) -> torch.Tensor:
        """Map a raw output s ∈ ℝ into Ω (monotone increasing, so large still means fake).

        Ω = ℝ: identity;  (lo, hi): lo + (hi - lo) σ(s);  (lo, ∞): lo + sp(s);  (-∞, hi): hi - sp(-s).
        """
        lo, hi = self.domain
        if math.isinf(lo) and math.isinf(hi):
            return s
        if math.isinf(hi):
            return lo + torch.nn.functional.softplus(s)
        if math.isinf(lo):
            return hi - torch.nn.functional.softplus(-s)
        return lo + (hi - lo) * torch.sigmoid(s)

    def needs_squash(self) -> bool:
        """True when φ, ψ or β is not finite just outside a finite end of Ω (so raw outputs must be mapped)."""
        probes = []
        for end, step in ((self.domain[0], -1.0), (self.domain[1], 1.0)):
            if math.isfinite(end):
                probes += [end + step * 0.5 * max(1.0, abs(end)), end + step * 1e-3 * max(1.0, abs(end))]
        if not probes:
            return False
        x = torch.tensor(probes, dtype=torch.float64)
        with torch.no_grad(), np.errstate(all="ignore"):
            try:
                vals = [self.phi(x), self.psi(x), self.beta(x)]
            except DesignError:
                return True
        return not all(bool(torch.isfinite(v).all()) for v in vals)

    def check(self, r_range=(1e-3, 1e3), raise_on_fail: bool = True):
        """Verify Conclusions 1 and 2 numerically; see `lightning_gans.factory.check`."""
        return run_checks(self, r_range=r_range, raise_on_fail=raise_on_fail)

    def on_domain(self, expr):
        """`expr` in t simplified for t inside Ω, for display: sympy's antiderivatives carry |·| that
        only the domain resolves (log|t - 1| is log(1 - t) on Ω = (0, 1)). Each finite end is handled
        by writing t = hi - u (or lo + u) with u > 0, which sympy's Abs simplifies, then t back."""
        if expr is None or not isinstance(expr, sympy.Basic):
            return expr
        lo, hi = self.domain
        if not lo < hi:  # ω not increasing: no domain to simplify on
            return expr
        u = sympy.Symbol("u", positive=True)
        out = expr
        for end, sign in ((hi, -1), (lo, 1)):
            if math.isfinite(end):
                e = sympy.nsimplify(end, rational=True)
                out = out.subs(T, e + sign * u).subs(u, sign * (T - e))
        return out

    def describe(self) -> str:
        """Human-readable summary of the derived functions (φ, ψ, α, β shown as they read on Ω)."""

        def show(name, sym_expr):
            if name in self.numeric:
                return "(no closed form; integrated numerically)"
            return str(self.on_domain(sym_expr))

        e = self.exprs
        lines = [
            f"omega(r) = {e['omega']}",
            f"Omega    = ({self.domain[0]:g}, {self.domain[1]:g})" if self.domain[0] < self.domain[1]
            else "Omega    = (not an interval: omega is not increasing)",
            f"rho(t)   = {e['rho']}",
            f"omega^-1(t) = {e['omega_inv'] if e['omega_inv'] is not None else '(no closed form)'}",
            f"phi(t)   = {show('phi', e['phi'])}",
            f"psi(t)   = {show('psi', e['psi'])}   [normalised: psi(omega(1)) = 0]",
        ]
        if not self.numeric:
            d = _try_sympy(sympy.simplify, e["phi"].subs(T, e["omega"]) + R * e["psi"].subs(T, e["omega"]))
            lines.append(f"d(r)     = {d if d is not None else '(simplification timed out)'}")
        else:
            lines.append("d(r)     = phi(omega(r)) + r psi(omega(r))  (numeric)")
        gen = {"saddle": "beta = psi, alpha = phi (the discriminator's objective)",
               "nonsat": "beta = -phi, alpha = 0 (non-saturating)"}.get(self.generator, "as given")
        lines.append(f"generator: {gen}: alpha(t) = {self.on_domain(e['alpha'])}, beta(t) = "
                     + (str(self.on_domain(e["beta"])) if e["beta"] is not None
                        else "(no closed form; integrated numerically)"))
        if self.generator != "saddle" and e["beta"] is not None:
            d2 = _try_sympy(sympy.simplify, e["alpha"].subs(T, e["omega"]) + R * e["beta"].subs(T, e["omega"]))
            lines.append(f"d2(r)    = {d2 if d2 is not None else '(simplification timed out)'}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        f = self.formulas
        return (f"Design(omega={f['omega']!r}, rho={f['rho']!r}, alpha={f['alpha']!r}, beta={f['beta']!r}, "
                f"generator={f['generator']!r})")


def design(omega="log(r)", rho="1/(1+exp(t))", alpha=None, beta=None, constants=None,
           generator: str = "auto") -> Design:
    """Build a GAN from formulas for ω(r), ρ(t) (and α(t), β(t)); see `Design`.

    >>> d = design("log(r)", "1/(1+exp(t))")   # the standard GAN, fake label 1
    >>> d.check()                              # then train it: lightning_gans.losses.DesignedLoss(d)
    """
    return Design(omega=omega, rho=rho, alpha=alpha, beta=beta, constants=constants, generator=generator)
