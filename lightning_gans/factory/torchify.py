"""sympy expressions and numeric tables as differentiable torch functions.

`to_torch(expr, sym)` walks a sympy expression and returns a function of one
tensor built from torch ops only, so autograd differentiates it. Two stable
rewrites are applied: log(1 + exp(u)) -> softplus(u) and 1/(1 + exp(u)) ->
sigmoid(-u). An expression with a function not in `_FUNCS` (or a complex
constant) raises `Untranslatable`; the factory then falls back to a table.

`HermiteTable` is that table: values and exact derivatives at increasing
nodes, interpolated piecewise-cubically (C¹, differentiable), extrapolated
linearly with the end slopes beyond the first and last node.
"""
from __future__ import annotations

import numpy as np
import sympy
import torch
import torch.nn.functional as F

__all__ = ["to_torch", "Untranslatable", "HermiteTable", "as_function"]


class Untranslatable(ValueError):
    """The expression uses something torch cannot evaluate as a real function."""


_FUNCS = {
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.Abs: torch.abs,
    sympy.sign: torch.sign,
    sympy.tanh: torch.tanh,
    sympy.sinh: torch.sinh,
    sympy.cosh: torch.cosh,
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.tan: torch.tan,
    sympy.atan: torch.atan,
    sympy.asin: torch.asin,
    sympy.acos: torch.acos,
    sympy.atanh: torch.atanh,
    sympy.asinh: torch.asinh,
    sympy.acosh: torch.acosh,
    sympy.erf: torch.erf,
}


def _one_plus_exp(expr):
    """u when expr is 1 + exp(u), else None."""
    if isinstance(expr, sympy.Add) and len(expr.args) == 2:
        a, b = expr.args
        if a == 1 and isinstance(b, sympy.exp):
            return b.args[0]
        if b == 1 and isinstance(a, sympy.exp):
            return a.args[0]
    return None


def _build(expr, sym):
    if expr == sym:
        return lambda x: x
    if expr.is_number:
        if expr.has(sympy.I) or expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
            raise Untranslatable(f"non-real or infinite constant {expr}")
        c = complex(sympy.N(expr))
        if c.imag != 0:
            raise Untranslatable(f"complex constant {expr}")
        return lambda x, v=c.real: v
    if isinstance(expr, sympy.Add):
        parts = [_build(a, sym) for a in expr.args]

        def add(x):
            out = parts[0](x)
            for p in parts[1:]:
                out = out + p(x)
            return out

        return add
    if isinstance(expr, sympy.Mul):
        parts = [_build(a, sym) for a in expr.args]

        def mul(x):
            out = parts[0](x)
            for p in parts[1:]:
                out = out * p(x)
            return out

        return mul
    if isinstance(expr, sympy.Pow):
        base, ex = expr.args
        u = _one_plus_exp(base)
        if u is not None and ex == -1:  # 1/(1+e^u) = sigmoid(-u)
            fu = _build(u, sym)
            return lambda x: torch.sigmoid(-fu(x))
        fb = _build(base, sym)
        if ex.is_number:
            if ex == sympy.Rational(1, 2):
                return lambda x: torch.sqrt(fb(x))
            e = float(ex)
            if e == int(e):
                return lambda x, k=int(e): fb(x) ** k
            return lambda x, e=e: fb(x) ** e
        fe = _build(ex, sym)
        return lambda x: torch.pow(fb(x), fe(x))
    if isinstance(expr, sympy.log):
        u = _one_plus_exp(expr.args[0])
        if u is not None:  # log(1+e^u) = softplus(u), stable for large u
            fu = _build(u, sym)
            return lambda x: F.softplus(fu(x))
    fn = _FUNCS.get(expr.func)
    if fn is None or len(expr.args) != 1:
        raise Untranslatable(f"no torch translation for {expr.func.__name__} in {expr}")
    fa = _build(expr.args[0], sym)
    return lambda x: fn(fa(x))


def as_function(core, name: str):
    """Wrap `core` so it accepts numbers/arrays/tensors and always returns a tensor shaped like x."""

    def f(x):
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x, dtype=np.float64))
        out = core(x)
        if not isinstance(out, torch.Tensor):
            out = torch.full_like(x, float(out))
        elif out.shape != x.shape:
            out = out.expand_as(x)
        return out

    f.__name__ = name
    return f


def to_torch(expr: sympy.Expr, sym: sympy.Symbol, name: str = "f"):
    """A differentiable torch function of one tensor computing `expr` in `sym`."""
    if expr.free_symbols - {sym}:
        raise Untranslatable(f"{name} has symbols other than {sym}: {expr.free_symbols - {sym}}")
    return as_function(_build(sympy.sympify(expr), sym), name)


class HermiteTable:
    """Piecewise-cubic Hermite interpolant through (x_k, y_k) with slopes d_k.

    Differentiable in torch (the cubic is in x - x_k; the bucket index is
    constant). Outside [x_0, x_n] it continues linearly with the end slopes.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, d: np.ndarray, name: str = "table"):
        x, y, d = (np.asarray(a, dtype=np.float64) for a in (x, y, d))
        if x.ndim != 1 or len(x) < 2 or not np.all(np.diff(x) > 0):
            raise ValueError(f"{name}: table nodes must be strictly increasing")
        if not (np.all(np.isfinite(y)) and np.all(np.isfinite(d))):
            raise ValueError(f"{name}: table values are not finite")
        self.x, self.y, self.d, self.name = x, y, d, name
        self._cache: dict = {}

    def _tensors(self, like: torch.Tensor):
        key = (like.device, like.dtype)
        if key not in self._cache:
            self._cache[key] = tuple(torch.as_tensor(a, dtype=like.dtype, device=like.device) for a in (self.x, self.y, self.d))
        return self._cache[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xs, ys, ds = self._tensors(x)
        n = xs.shape[0]
        k = torch.searchsorted(xs, x.detach().contiguous(), right=True).clamp(1, n - 1) - 1
        x0, x1, y0, y1, d0, d1 = xs[k], xs[k + 1], ys[k], ys[k + 1], ds[k], ds[k + 1]
        h = x1 - x0
        s = (x - x0) / h
        s2, s3 = s * s, s * s * s
        inside = (2 * s3 - 3 * s2 + 1) * y0 + (s3 - 2 * s2 + s) * h * d0 + (-2 * s3 + 3 * s2) * y1 + (s3 - s2) * h * d1
        left = ys[0] + ds[0] * (x - xs[0])
        right = ys[-1] + ds[-1] * (x - xs[-1])
        return torch.where(x < xs[0], left, torch.where(x > xs[-1], right, inside))
