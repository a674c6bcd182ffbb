"""Theory checks on the library's own losses (docs/theory.md §1-§3; Goodfellow et al. 2014, Nowozin et al.
2016, Mao et al. 2017, Jolicoeur-Martineau 2018, "Designing GANs" arXiv 2002.00865).

1. The optimal discriminator: at a point x with p(x) = p, q(x) = q (r = q/p), the
   discriminator's expected loss is p·A(t) + q·B(t) where L_D = mean A(T_r) + mean B(T_f).
   With one real and one fake output, L_D([t], [0]) = A(t) + B(0) and L_D([0], [t]) = A(0) + B(t),
   so p·L_D([t],[0]) + q·L_D([0],[t]) is that objective up to a constant; minimising it over a
   scalar t gives T*(r).
2. A 1-D divergence check: p = N(0, 1), q = N(μ, 1), D at its optimum for q. The generator's loss
   as a function of μ is minimal at μ = 0, and a gradient step on μ (autograd through the
   generator's loss, D held fixed) moves μ toward 0.

wgan (no pointwise optimum: the critic is only defined under a Lipschitz constraint), hinge/TV (the
optimal output is a sign function, so a generator step against it has zero gradient) and the
relativistic-average losses (no closed-form optimum) are covered in test_theory_every_loss.py, with
the one-dimensional step repeated there for every loss and parameter choice.
"""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar

from lightning_gans import losses

DT = torch.float64
RATIOS = [0.05, 0.3, 1.0, 2.5, 20.0]


def pointwise_optimum(loss, r, bounds=(-50.0, 50.0)):
    """argmin_t p·L_D([t],[t0]) + q·L_D([t0],[t]) at p = 1/(1+r), q = r/(1+r).

    The fixed other output t0 is the middle of `bounds`, so it lies where the loss is finite
    (t0 = 0 would put ψ(t) = log t at -∞ for the probability form).
    """
    p, q = 1.0 / (1.0 + r), r / (1.0 + r)
    zero = torch.full((1,), (bounds[0] + bounds[1]) / 2, dtype=DT)

    def J(t):
        t = torch.tensor([t], dtype=DT)
        with torch.no_grad():
            return float(p * loss.d_loss(t, zero) + q * loss.d_loss(zero, t))

    return minimize_scalar(J, bounds=bounds, method="bounded", options={"xatol": 1e-10}).x


# name -> (params, T*(r)) in the named convention (larger = real); r = q/p.
NAMED_OPTIMA = {
    "sgan": ({}, lambda r: -math.log(r)),           # log(p/q)
    "nsgan": ({}, lambda r: -math.log(r)),
    "sgan_t": ({}, lambda r: -math.log(r)),
    "exp": ({}, lambda r: -0.5 * math.log(r)),      # ½ log(p/q)
    "lsgan": ({"a": -1.0, "b": 1.0}, lambda r: (1.0 - r) / (1.0 + r)),  # (b p + a q)/(p + q)
    "lsgan_02": ({"a": 0.0, "b": 2.0}, lambda r: 2.0 / (1.0 + r)),
    "fgan_kl": ({}, lambda r: 1.0 - math.log(r)),    # g(v*) = f'(p/q)
    "fgan_rkl": ({}, lambda r: -math.log(r)),
    "fgan_pearson": ({}, lambda r: 2.0 * (1.0 / r - 1.0)),
    "fgan_hellinger": ({}, lambda r: -0.5 * math.log(r)),
    "fgan_js": ({}, lambda r: -math.log(r)),
}


@pytest.mark.parametrize("key", list(NAMED_OPTIMA))
def test_optimal_discriminator_named(key):
    params, t_star = NAMED_OPTIMA[key]
    loss = losses.get(key.split("_02")[0], **params)
    for r in RATIOS:
        assert pointwise_optimum(loss, r) == pytest.approx(t_star(r), abs=2e-5), (key, r)


def test_optimal_discriminator_hinge_and_tv():
    hinge, tv = losses.get("hinge"), losses.get("fgan_tv")
    for r in [0.2, 0.7, 1.5, 6.0]:
        want = 1.0 if r < 1 else -1.0  # sign(p - q)
        assert pointwise_optimum(hinge, r, (-5, 5)) == pytest.approx(want, abs=1e-6)
        # TV's g = ½ tanh(v) saturates: the optimum runs off to ±∞ with sign(p - q).
        assert pointwise_optimum(tv, r, (-20, 20)) * want > 10  # tanh(10) = 1 - 4e-9: at the edge


# Factory designs: the article's optimum is t* = ω(r) (larger t = fake); DesignedLoss takes T = -t, so
# its optimum is T*(r) = -ω(r), searched inside -Ω.
DESIGNS = {
    "standard": (dict(omega="log(r)", rho="1/(1+exp(t))"), lambda r: -math.log(r), (-30, 30)),
    "t-generator": (dict(omega="log(r)", rho="1/(1+exp(t))", beta="t"), lambda r: -math.log(r), (-30, 30)),
    "probability": (dict(omega="r/(r+1)", rho="1/t"), lambda r: -r / (r + 1), (-1 + 1e-9, -1e-9)),
    "exponential": (dict(omega="log(r)/2", rho="exp(-t)", beta="exp(t)"), lambda r: -0.5 * math.log(r), (-30, 30)),
    "lsgan": (dict(omega="(r-1)/(r+1)", rho="2*(1-t)", beta="t**2"), lambda r: -(r - 1) / (r + 1), (-1, 1)),
    "numeric": (dict(omega="log(r)", rho="1/(1+exp(t)+t**2)"), lambda r: -math.log(r), (-30, 30)),
}


@pytest.mark.filterwarnings("ignore:design. no closed form")
@pytest.mark.parametrize("key", list(DESIGNS))
def test_optimal_discriminator_designed(key):
    kwargs, omega, bounds = DESIGNS[key]
    loss = losses.get("designed", squash=False, **kwargs)
    for r in RATIOS:
        assert pointwise_optimum(loss, r, bounds) == pytest.approx(omega(r), abs=2e-5), (key, r)


def test_rsgan_pair_identity():
    # Discrete p, q on K points, written as batches by multiplicity: with pairing="all" the
    # D loss is then the exact expectation over independent pairs. Minimise over T (K values).
    p = torch.tensor([6.0, 3.0, 2.0, 1.0], dtype=DT) / 12
    q = torch.tensor([1.0, 2.0, 4.0, 5.0], dtype=DT) / 12
    idx_p = torch.repeat_interleave(torch.arange(4), (p * 12).long())
    idx_q = torch.repeat_interleave(torch.arange(4), (q * 12).long())
    loss = losses.get("rsgan", pairing="all")
    T = torch.zeros(4, dtype=DT, requires_grad=True)
    opt = torch.optim.LBFGS([T], lr=1, max_iter=200, tolerance_grad=1e-13, tolerance_change=1e-15,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        l = loss.d_loss(T[idx_p], T[idx_q])
        l.backward()
        return l

    opt.step(closure)
    T = T.detach()
    # Jolicoeur-Martineau 2018 (docs/theory.md §3): p(x_r) q(x_f) / (p(x_f) q(x_r)) = e^{T(x_r) - T(x_f)}.
    lhs = torch.log(p[:, None] * q[None, :] / (p[None, :] * q[:, None]))
    torch.testing.assert_close(T[:, None] - T[None, :], lhs, atol=1e-6, rtol=0)


def test_rsgan_pair_identity_pointwise():
    # The same identity pointwise: for a pair (a, b) the objective in Δ = T(a) - T(b) is
    # p(a)q(b)·sp(-Δ) + p(b)q(a)·sp(Δ), i.e. the paired D loss at (Δ, 0) and at (0, Δ).
    loss = losses.get("rsgan", pairing="paired")
    zero = torch.zeros(1, dtype=DT)
    for pa, qa, pb, qb in [(0.4, 0.1, 0.2, 0.3), (0.05, 0.5, 0.3, 0.1), (0.2, 0.2, 0.3, 0.3)]:
        def J(d):
            d = torch.tensor([d], dtype=DT)
            return float(pa * qb * loss.d_loss(d, zero) + pb * qa * loss.d_loss(zero, d))

        delta = minimize_scalar(J, bounds=(-20, 20), method="bounded", options={"xatol": 1e-10}).x
        assert delta == pytest.approx(math.log(pa * qb / (pb * qa)), abs=2e-5)


# ------------------------------------------------------------------ 1-D divergence check
N = 2000
Z = torch.special.ndtri((torch.arange(N, dtype=DT) + 0.5) / N)  # quantiles of N(0, 1): deterministic samples
MUS = [m / 4 for m in range(-6, 7)]  # -1.5 .. 1.5, includes 0


def log_r(x, mu):
    """log q(x)/p(x) for p = N(0, 1), q = N(mu, 1)."""
    return mu * x - mu * mu / 2


# name -> (params, optimal output as a function of ℓ = log(q/p), which value is the generator's loss)
# "g": g_loss at D*;  "-d": the full game value -L_D at D* (f-GANs: g_loss drops E_p[g(v)], which is
# constant for a fixed D but not across μ when D is re-optimised; the f-GAN objective includes it).
F_OPT = {  # f-GAN optimal outputs: g_f(v*) = f'(p/q)
    "fgan_kl": lambda l: 1 - l, "fgan_rkl": lambda l: -l, "fgan_pearson": lambda l: 2 * (torch.exp(-l) - 1),
    "fgan_hellinger": lambda l: -l / 2, "fgan_js": lambda l: -l,
}
ONE_D = {
    "sgan": ("sgan", {}, lambda l: -l, "g"),
    "nsgan": ("nsgan", {}, lambda l: -l, "g"),
    "sgan_t": ("sgan_t", {}, lambda l: -l, "g"),
    "exp": ("exp", {}, lambda l: -l / 2, "g"),
    "lsgan": ("lsgan", {}, lambda l: -torch.tanh(l / 2), "g"),
    **{f"{n}_{g}": (n, {"generator": g}, t, "-d") for n, t in F_OPT.items() for g in ("nonsat", "saddle")},
    "rsgan": ("rsgan", {"pairing": "all"}, lambda l: -l, "g"),
    "rsgan_minimax": ("rsgan", {"pairing": "all", "h": "minimax"}, lambda l: -l, "g"),
    "rsgan_linear": ("rsgan", {"pairing": "all", "h": "linear"}, lambda l: -l, "g"),
    # Factory designs in the library convention: T* = -ω(q/p).
    "designed": ("designed", {}, lambda l: -l, "g"),
    "designed_saddle": ("designed", {"generator": "saddle"}, lambda l: -l, "g"),
    "designed_t": ("designed", {"beta": "t"}, lambda l: -l, "g"),
    "designed_exp": ("designed", {"omega": "0.5*log(r)", "rho": "exp(-t)", "beta": "exp(t)"}, lambda l: -l / 2, "g"),
    "designed_lsgan": ("designed", {"omega": "(r-1)/(r+1)", "rho": "2*(1-t)", "beta": "t**2"},
                       lambda l: -torch.tanh(l / 2), "g"),
    "designed_prob": ("designed", {"omega": "r/(r+1)", "rho": "1/t", "squash": False}, lambda l: -torch.sigmoid(l), "g"),
}


def make(key):
    name, params, t_star, which = ONE_D[key]
    return losses.get(name, **params), t_star, which


def game_value(loss, t_star, which, mu, mu_d=None):
    """The generator's loss ("g") or the game value ("-d") at q = N(mu, 1), against D* for
    q = N(mu_d, 1) (mu_d = mu by default)."""
    mu_d = mu if mu_d is None else mu_d
    x_r, x_f = Z, mu + Z
    t_r, t_f = t_star(log_r(x_r, mu_d)), t_star(log_r(x_f, mu_d))
    return loss.g_loss(t_r, t_f) if which == "g" else -loss.d_loss(t_r, t_f)


@pytest.mark.parametrize("key", list(ONE_D))
def test_generator_loss_is_minimal_at_p_equals_q(key):
    loss, t_star, which = make(key)
    vals = np.array([float(game_value(loss, t_star, which, mu)) for mu in MUS])
    i0 = MUS.index(0.0)
    others = np.delete(vals, i0)
    assert np.all(others > vals[i0] + 1e-6), (key, dict(zip(MUS, vals.round(6))))
    # ... and grows with |μ| on each side (the divergence is monotone in the shift here).
    assert np.all(np.diff(vals[i0:]) > 0) and np.all(np.diff(vals[: i0 + 1]) < 0), key


@pytest.mark.parametrize("key", list(ONE_D))
@pytest.mark.parametrize("mu0", [0.8, -0.5])
def test_gradient_step_moves_generator_toward_data(key, mu0):
    loss, t_star, which = make(key)
    mu = torch.tensor(mu0, dtype=DT, requires_grad=True)
    # D held at its optimum for q = N(mu0, 1): t_star(log_r(·, mu0)) has no dependence on `mu`.
    # Always the generator's own loss here: for f-GANs it differs from -L_D only by E_p[g(v)],
    # which does not depend on μ once D is fixed.
    val = game_value(loss, t_star, "g", mu, mu_d=mu0)
    (grad,) = torch.autograd.grad(val, mu)
    assert float(grad) * mu0 > 1e-4, (key, float(grad))
    step = mu0 - 0.1 * float(grad)
    assert abs(step) < abs(mu0), (key, step)
