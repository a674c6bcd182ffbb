"""Theory checks extended to EVERY loss and parameter choice (docs/theory.md §1-§3).

test_theory.py checks the optimal discriminator and the divergence property where a loss has a
closed-form pointwise optimum. This file covers the rest:

- the 1-D generator step for every registered loss and every parameter choice: p = N(0, 1),
  q = N(μ0, 1), the discriminator fitted to its own loss within the linear family T(x) = a x + b
  (which holds the exact optimum log p/q = -μ0 x + μ0²/2 of the standard GAN), then held fixed:
  a gradient step on μ through the generator's loss must move μ toward 0.
  Not applicable at D's optimum, so a fixed 1-Lipschitz linear critic T(x) = -sign(μ0) x is used for:
  wgan (its critic has no optimum without the Lipschitz constraint: the linear family lets a -> ∞)
  and fgan_tv (its optimum is a sign function; through tanh the fitted a runs off and the
  generator's gradient vanishes, which says nothing about the direction).
- the relativistic-average family (Jolicoeur-Martineau 2018): no closed-form optimal output, so the
  stationarity equations of the optimum (written out below) and the divergence property (D's best
  loss equals its value at a constant output iff p = q) on discrete p, q.
- wgan: with the optimal 1-Lipschitz critic between N(0,1) and N(μ,1), -L_D is W1 = |μ|.
- hinge and TV: the generator's value at the optimal (sign) discriminator is minimal at p = q.
"""
import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from lightning_gans import losses

DT = torch.float64
N = 2000
Z = torch.special.ndtri((torch.arange(N, dtype=DT) + 0.5) / N)  # quantiles of N(0, 1)
# Fakes use the quantiles in another order: paired with z_i + μ, T_r[i] - T_f[i] = -aμ would be the
# same for every pair and a paired discriminator could separate them perfectly (a -> ∞).
PERM = torch.randperm(N, generator=torch.Generator().manual_seed(0))

FGANS = ("fgan_kl", "fgan_rkl", "fgan_pearson", "fgan_hellinger", "fgan_js", "fgan_tv")
VARIANTS = [
    ("sgan", {}), ("nsgan", {}), ("sgan_t", {}), ("exp", {}), ("lsgan", {}), ("lsgan", {"a": 0.0, "b": 2.0, "c": 1.0}),
    ("hinge", {}), ("wgan", {}),
    *[(n, {"generator": g}) for n in FGANS for g in ("nonsat", "saddle")],
    *[("rsgan", {"pairing": p, "h": h}) for p in ("paired", "all") for h in ("nonsat", "minimax", "linear")],
    ("rasgan", {}), ("ralsgan", {}), ("rahinge", {}),
    ("designed", {}), ("designed", {"generator": "saddle"}), ("designed", {"beta": "t"}),
    ("designed", {"omega": "r/(r+1)", "rho": "1/t"}), ("designed", {"omega": "0.5*log(r)", "rho": "exp(-t)"}),
    ("designed", {"omega": "(r-1)/(r+1)", "rho": "2*(1-t)", "beta": "t**2"}),
]
FIXED_CRITIC = {"wgan", "fgan_tv"}


def test_every_registered_loss_has_a_variant_here():
    assert {n for n, _ in VARIANTS} == set(losses.names())


def fitted_linear_d(loss, mu0):
    """(a, b) minimising the discriminator's loss over T(x) = a x + b on p = N(0,1), q = N(mu0, 1)."""
    x_f = mu0 + Z[PERM]

    def J(ab):
        a, b = ab
        with torch.no_grad():
            v = float(loss.d_loss(a * Z + b, a * x_f + b))
        return v if math.isfinite(v) else 1e30

    res = minimize(J, [-0.5 * math.copysign(1.0, mu0), 0.0], method="Nelder-Mead",
                   options={"xatol": 1e-9, "fatol": 1e-13, "maxiter": 4000})
    return res.x


@pytest.mark.parametrize("name,params", VARIANTS, ids=[f"{n}{p}" for n, p in VARIANTS])
@pytest.mark.parametrize("mu0", [0.8, -0.5])
def test_generator_step_moves_q_toward_p(name, params, mu0):
    loss = losses.get(name, **params)
    if name in FIXED_CRITIC:
        a, b = -math.copysign(1.0, mu0), 0.0
    else:
        a, b = fitted_linear_d(loss, mu0)
        # The fitted D must say "real" where p dominates: x < μ0/2 when μ0 > 0, so a has the sign of -μ0.
        assert a * mu0 < 0, (name, params, a)
    mu = torch.tensor(mu0, dtype=DT, requires_grad=True)
    val = loss.g_loss(a * Z + b, a * (mu + Z[PERM]) + b)
    (grad,) = torch.autograd.grad(val, mu)
    assert float(grad) * mu0 > 1e-3, (name, params, float(grad))
    assert abs(mu0 - 0.1 * float(grad)) < abs(mu0)


# ------------------------------------------------------------------ relativistic average, discrete p and q
# Four points; a batch holds each point with its multiplicity, so batch means are exact expectations.
P = torch.tensor([6.0, 3.0, 2.0, 1.0], dtype=DT) / 12
Q = torch.tensor([1.0, 2.0, 4.0, 5.0], dtype=DT) / 12


def as_batches(p, q):
    return (torch.repeat_interleave(torch.arange(4), (p * 12).round().long()),
            torch.repeat_interleave(torch.arange(4), (q * 12).round().long()))


def optimal_outputs(loss, p, q):
    ip, iq = as_batches(p, q)
    T = torch.zeros(4, dtype=DT, requires_grad=True)
    opt = torch.optim.LBFGS([T], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        l = loss.d_loss(T[ip], T[iq])
        l.backward()
        return l

    opt.step(closure)
    return T.detach()


def test_rasgan_optimum_stationarity():
    # L_D = ½{Σ p sp(m_f - T) + Σ q sp(T - m_r)}, m_r = Σ p T, m_f = Σ q T (gradients through the means).
    # ∂/∂T(y) = 0 gives p(y)[σ(m_f - T(y)) + B] = q(y)[σ(T(y) - m_r) + A] with
    # A = Σ p σ(m_f - T), B = Σ q σ(T - m_r).
    T = optimal_outputs(losses.get("rasgan"), P, Q)
    m_r, m_f = float((P * T).sum()), float((Q * T).sum())
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    A = sum(float(P[k]) * sig(m_f - float(T[k])) for k in range(4))
    B = sum(float(Q[k]) * sig(float(T[k]) - m_r) for k in range(4))
    for k in range(4):
        lhs = float(P[k]) * (sig(m_f - float(T[k])) + B)
        rhs = float(Q[k]) * (sig(float(T[k]) - m_r) + A)
        assert lhs == pytest.approx(rhs, abs=1e-9), k
    # Larger output where p/q is larger (the points are sorted by decreasing p/q).
    assert bool((T[1:] < T[:-1]).all())


def test_ralsgan_optimum_stationarity():
    # L_D = ½{Σ p (T - m_f - 1)² + Σ q (T - m_r + 1)²}; with the mean terms Σ p (T - m_f - 1) = m_r - m_f - 1,
    # ∂/∂T(y) = 0 gives T(y) (p + q) = p (2 m_f - m_r + 2) + q (2 m_r - m_f - 2).
    T = optimal_outputs(losses.get("ralsgan"), P, Q)
    m_r, m_f = float((P * T).sum()), float((Q * T).sum())
    want = (P * (2 * m_f - m_r + 2) + Q * (2 * m_r - m_f - 2)) / (P + Q)
    torch.testing.assert_close(T, want, atol=1e-8, rtol=0)


@pytest.mark.parametrize("name,at_constant", [("rasgan", math.log(2.0)), ("ralsgan", 1.0), ("rahinge", 1.0)])
def test_relativistic_average_divergence(name, at_constant):
    # At a constant output every Ra loss takes a fixed value (log 2, 1, 1). When p = q no output does
    # better (the best loss is that value: divergence 0); when p != q some output does (divergence > 0).
    loss = losses.get(name)
    g = torch.Generator().manual_seed(1)
    ip, iq = as_batches(P, P)
    assert float(loss.d_loss(torch.zeros(4, dtype=DT)[ip], torch.zeros(4, dtype=DT)[iq])) == pytest.approx(at_constant)
    for _ in range(200):
        T = 3 * torch.randn(4, generator=g, dtype=DT)
        assert float(loss.d_loss(T[ip], T[iq])) >= at_constant - 1e-12
    ip, iq = as_batches(P, Q)
    # p != q: a small step from the constant towards log(p/q) (larger where p dominates) beats it
    # (each loss's slope there is -(m_r - m_f) times a positive factor, and m_r - m_f = Σ(p - q)T > 0).
    T = 0.1 * torch.log(P / Q)
    assert float(loss.d_loss(T[ip], T[iq])) < at_constant - 1e-3


# ------------------------------------------------------------------ wgan, hinge, TV
MUS = [m / 4 for m in range(-6, 7)]


def test_wgan_value_is_w1_with_the_optimal_critic():
    # Between N(0,1) and N(μ,1) the optimal 1-Lipschitz critic is T(x) = -sign(μ) x and W1 = |μ|.
    loss = losses.get("wgan")
    for mu in MUS:
        s = -math.copysign(1.0, mu) if mu else 0.0
        assert -float(loss.d_loss(s * Z, s * (mu + Z))) == pytest.approx(abs(mu), abs=1e-9)


@pytest.mark.parametrize("name,which", [("hinge", "g"), ("fgan_tv", "-d")])
def test_sign_discriminators_value_is_minimal_at_p_equals_q(name, which):
    # The optimal hinge output is sign(p - q) (test_theory.py); TV's is ±∞ (g = ½ tanh saturates), here ±30.
    # Against it the generator's value ("g") or the game value ("-d", which is TV itself) grows with |μ|.
    loss = losses.get(name)
    scale = 1.0 if name == "hinge" else 30.0
    vals = []
    for mu in MUS:
        t_star = lambda x: scale * torch.sign(-(mu * x - mu * mu / 2))  # noqa: E731  sign(log p/q)
        t_r, t_f = t_star(Z), t_star(mu + Z)
        vals.append(float(loss.g_loss(t_r, t_f) if which == "g" else -loss.d_loss(t_r, t_f)))
    vals = np.array(vals)
    i0 = MUS.index(0.0)
    assert np.all(np.delete(vals, i0) > vals[i0] + 1e-6), dict(zip(MUS, vals.round(6)))
    assert np.all(np.diff(vals[i0:]) > 0) and np.all(np.diff(vals[: i0 + 1]) < 0)
