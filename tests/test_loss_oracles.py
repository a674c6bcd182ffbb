"""An independent oracle for every loss (issue 15): value and gradient against closed forms written here.

Nothing here goes through the library's helpers or `kernels.reference`: each loss is written out in
plain Python `math`, term by term, from its paper (docs/theory.md §1-§3; docs/losses.md):

- non-relativistic: L_D = mean_i A(T_r[i]) + mean_j B(T_f[j]), L_G = mean_j C(T_f[j]), so
  dL_D/dT_r[i] = A'(T_r[i]) / N, dL_D/dT_f[j] = B'(T_f[j]) / M, dL_G/dT_f[j] = C'(T_f[j]) / M;
- RSGAN: pairs (i, i) ("paired") or all (i, j) ("all"), the derivatives summed over the pairs;
- relativistic average: L = ½{mean_i a(T_r[i] - m_f) + mean_j b(T_f[j] - m_r)}, with the chain rule
  through the batch means m_r, m_f written out below;
- designed: L_D = -mean φ(-T_r) - mean ψ(-T_f), L_G = mean β(-T_f), φ, ψ, β written out per design.

Each planted bug listed in docs/testing.md makes a test here fail.
"""
import math

import pytest
import torch

from lightning_gans import losses

LOG2 = math.log(2.0)
# Hand-picked batches: N != M; N = M = 3 for the paired pairing (where paired and all-pairs differ);
# hinge-type kinks avoided, but both sides of each kink reached (1 - T_r < 0 at 2.1, 1 + T_f < 0 at -1.6).
R3 = [0.7, -1.3, 2.1]
BATCHES = {"N3M2": (R3, [-0.4, 1.1]), "N3M3": (R3, [-1.6, 1.1, 0.25])}


def sp(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def sig(x):
    return 1.0 / (1.0 + math.exp(-x))


def relu(x):
    return max(x, 0.0)


def step(x):  # relu'
    return 1.0 if x > 0 else 0.0


def mean(xs):
    return sum(xs) / len(xs)


# ------------------------------------------------------------------ per-element forms: (A, A', B, B', C, C')
def lsgan_forms(a=-1.0, b=1.0, c=0.0):
    return (lambda x: 0.5 * (x - b) ** 2, lambda x: x - b, lambda x: 0.5 * (x - a) ** 2, lambda x: x - a,
            lambda x: 0.5 * (x - c) ** 2, lambda x: x - c)


ELEMENTWISE = {
    "sgan": (lambda x: sp(-x), lambda x: -sig(-x), sp, sig, lambda x: -sp(x), lambda x: -sig(x)),
    "nsgan": (lambda x: sp(-x), lambda x: -sig(-x), sp, sig, lambda x: sp(-x), lambda x: -sig(-x)),
    "sgan_t": (lambda x: sp(-x), lambda x: -sig(-x), sp, sig, lambda x: -x, lambda x: -1.0),
    # L_D = mean e^{-T_r} + mean e^{T_f} - 1 (the -1 inside B), L_G = mean e^{-T_f}.
    "exp": (lambda x: math.exp(-x), lambda x: -math.exp(-x), lambda x: math.exp(x) - 1, math.exp,
            lambda x: math.exp(-x), lambda x: -math.exp(-x)),
    "hinge": (lambda x: relu(1 - x), lambda x: -step(1 - x), lambda x: relu(1 + x), lambda x: step(1 + x),
              lambda x: -x, lambda x: -1.0),
    "wgan": (lambda x: -x, lambda x: -1.0, lambda x: x, lambda x: 1.0, lambda x: -x, lambda x: -1.0),
}

# f-GANs (Nowozin et al. 2016, Table 2): output activation g, its derivative, and the conjugate f* with
# its derivative, composed here (not the library's simplified f*∘g).
FGAN = {
    "fgan_kl": (lambda v: v, lambda v: 1.0, lambda s: math.exp(s - 1), lambda s: math.exp(s - 1)),
    "fgan_rkl": (lambda v: -math.exp(-v), lambda v: math.exp(-v), lambda s: -1 - math.log(-s), lambda s: -1 / s),
    "fgan_pearson": (lambda v: v, lambda v: 1.0, lambda s: s * s / 4 + s, lambda s: s / 2 + 1),
    "fgan_hellinger": (lambda v: 1 - math.exp(-v), lambda v: math.exp(-v), lambda s: s / (1 - s),
                       lambda s: 1 / (1 - s) ** 2),
    "fgan_js": (lambda v: LOG2 - sp(-v), lambda v: sig(-v), lambda s: -math.log(2 - math.exp(s)),
                lambda s: math.exp(s) / (2 - math.exp(s))),
    "fgan_tv": (lambda v: 0.5 * math.tanh(v), lambda v: 0.5 * (1 - math.tanh(v) ** 2), lambda s: s, lambda s: 1.0),
}


def fgan_forms(name, generator):
    g, dg, fs, dfs = FGAN[name]
    A, dA = (lambda x: -g(x)), (lambda x: -dg(x))  # -mean g(v_r)
    B, dB = (lambda x: fs(g(x))), (lambda x: dfs(g(x)) * dg(x))  # +mean f*(g(v_f))
    if generator == "nonsat":  # L_G = -mean g(v_f)
        return A, dA, B, dB, (lambda x: -g(x)), (lambda x: -dg(x))
    return A, dA, B, dB, (lambda x: -fs(g(x))), (lambda x: -dfs(g(x)) * dg(x))  # -mean f*(g(v_f))


# Designs: φ, ψ, β in the article's t (larger = fake) with derivatives, and the map t(T) with dt/dT.
# φ is sympy's antiderivative as derived (no constant added), ψ is normalised so ψ(ω(1)) = 0.
NEG = (lambda T: -T, lambda T: -1.0)
DESIGNS = {
    "standard": ({}, (lambda t: -sp(t), lambda t: -sig(t)), (lambda t: LOG2 - sp(-t), lambda t: sig(-t)),
                 (sp, sig), NEG),  # default generator: nonsat, β = -φ
    "standard saddle": ({"generator": "saddle"}, (lambda t: -sp(t), lambda t: -sig(t)),
                        (lambda t: LOG2 - sp(-t), lambda t: sig(-t)), (lambda t: LOG2 - sp(-t), lambda t: sig(-t)), NEG),
    "t-generator": ({"beta": "t"}, (lambda t: -sp(t), lambda t: -sig(t)), (lambda t: LOG2 - sp(-t), lambda t: sig(-t)),
                    (lambda t: t, lambda t: 1.0), NEG),
    "exponential": ({"omega": "0.5*log(r)", "rho": "exp(-t)"}, (lambda t: -math.exp(t), lambda t: -math.exp(t)),
                    (lambda t: 1 - math.exp(-t), lambda t: math.exp(-t)), (math.exp, math.exp), NEG),
    # Ω = (-1, 1) but φ, ψ, β are polynomials (finite outside Ω): no squash.
    "lsgan": ({"omega": "(r-1)/(r+1)", "rho": "2*(1-t)", "beta": "t**2"}, (lambda t: -t * t - 2 * t, lambda t: -2 * t - 2),
              (lambda t: -t * t + 2 * t, lambda t: -2 * t + 2), (lambda t: t * t, lambda t: 2 * t), NEG),
    # Ω = (0, 1): outputs squashed, t = σ(-T) (dt/dT = -σ(-T)σ(T)); φ = log(1 - t), ψ = log t + log 2, β = -φ.
    "probability": ({"omega": "r/(r+1)", "rho": "1/t"}, (lambda t: math.log(1 - t), lambda t: -1 / (1 - t)),
                    (lambda t: math.log(t) + LOG2, lambda t: 1 / t), (lambda t: -math.log(1 - t), lambda t: 1 / (1 - t)),
                    (lambda T: sig(-T), lambda T: -sig(-T) * sig(T))),
}


def designed_forms(key):
    _, (phi, dphi), (psi, dpsi), (beta, dbeta), (tm, dtm) = DESIGNS[key]
    return (lambda x: -phi(tm(x)), lambda x: -dphi(tm(x)) * dtm(x), lambda x: -psi(tm(x)),
            lambda x: -dpsi(tm(x)) * dtm(x), lambda x: beta(tm(x)), lambda x: dbeta(tm(x)) * dtm(x))


def elementwise_oracle(forms, r, f):
    A, dA, B, dB, C, dC = forms
    n, m = len(r), len(f)
    d = (mean([A(x) for x in r]) + mean([B(x) for x in f]), [dA(x) / n for x in r], [dB(x) / m for x in f])
    g = (mean([C(x) for x in f]), [0.0] * n, [dC(x) / m for x in f])
    return d, g


# ------------------------------------------------------------------ relativistic
def rsgan_oracle(r, f, pairing, h):
    n, m = len(r), len(f)
    pairs = [(i, i) for i in range(n)] if pairing == "paired" else [(i, j) for i in range(n) for j in range(m)]
    k = len(pairs)

    def pairwise(fn, dfn):  # mean over pairs of fn(T_f - T_r), and its gradients
        val = sum(fn(f[j] - r[i]) for i, j in pairs) / k
        gr, gf = [0.0] * n, [0.0] * m
        for i, j in pairs:
            gr[i] -= dfn(f[j] - r[i]) / k
            gf[j] += dfn(f[j] - r[i]) / k
        return val, gr, gf

    d = pairwise(sp, sig)  # L_D = E sp(-(T_r - T_f)) = E sp(T_f - T_r)
    if h == "nonsat":  # E sp(-(T_f - T_r))
        g = pairwise(lambda u: sp(-u), lambda u: -sig(-u))
    elif h == "minimax":  # E -sp(T_f - T_r)
        g = pairwise(lambda u: -sp(u), lambda u: -sig(u))
    else:  # linear h(t) = -t: E (T_r - T_f) = mean T_r - mean T_f for every pairing
        g = (mean(r) - mean(f), [1.0 / n] * n, [-1.0 / m] * m)
    return d, g


def average_oracle(r, f, a, da, b, db):
    """½{mean_i a(T_r[i] - m_f) + mean_j b(T_f[j] - m_r)}; ∂m_f/∂T_f[k] = 1/M, ∂m_r/∂T_r[k] = 1/N."""
    n, m = len(r), len(f)
    m_r, m_f = mean(r), mean(f)
    val = 0.5 * (mean([a(x - m_f) for x in r]) + mean([b(y - m_r) for y in f]))
    sum_da = sum(da(x - m_f) for x in r)
    sum_db = sum(db(y - m_r) for y in f)
    gr = [0.5 * (da(x - m_f) / n - sum_db / (m * n)) for x in r]
    gf = [0.5 * (-sum_da / (n * m) + db(y - m_r) / m) for y in f]
    return val, gr, gf


SQ = (lambda s: (lambda u: (u + s) ** 2), lambda s: (lambda u: 2 * (u + s)))
AVERAGE = {  # name -> ((a, a', b, b') of D, (a, a', b, b') of G)
    "rasgan": ((lambda u: sp(-u), lambda u: -sig(-u), sp, sig), (sp, sig, lambda u: sp(-u), lambda u: -sig(-u))),
    "ralsgan": ((SQ[0](-1), SQ[1](-1), SQ[0](1), SQ[1](1)), (SQ[0](1), SQ[1](1), SQ[0](-1), SQ[1](-1))),
    "rahinge": ((lambda u: relu(1 - u), lambda u: -step(1 - u), lambda u: relu(1 + u), lambda u: step(1 + u)),
                (lambda u: relu(1 + u), lambda u: step(1 + u), lambda u: relu(1 - u), lambda u: -step(1 - u))),
}


# ------------------------------------------------------------------ every variant
def variants():
    out = []
    for name in ELEMENTWISE:
        out.append((name, {}, lambda r, f, name=name: elementwise_oracle(ELEMENTWISE[name], r, f)))
    for abc in [(-1.0, 1.0, 0.0), (0.0, 1.0, 1.0), (0.0, 2.0, 1.0), (-2.0, 0.5, 0.5)]:
        params = dict(zip("abc", abc))
        out.append(("lsgan", params, lambda r, f, abc=abc: elementwise_oracle(lsgan_forms(*abc), r, f)))
    for name in FGAN:
        for gen in ("nonsat", "saddle"):
            out.append((name, {"generator": gen}, lambda r, f, n=name, g=gen: elementwise_oracle(fgan_forms(n, g), r, f)))
    for pairing in ("paired", "all"):
        for h in ("nonsat", "minimax", "linear"):
            out.append(("rsgan", {"pairing": pairing, "h": h}, lambda r, f, p=pairing, h=h: rsgan_oracle(r, f, p, h)))
    for name, (d_forms, g_forms) in AVERAGE.items():
        out.append((name, {}, lambda r, f, d=d_forms, g=g_forms: (average_oracle(r, f, *d), average_oracle(r, f, *g))))
    for key in DESIGNS:
        out.append(("designed", DESIGNS[key][0], lambda r, f, k=key: elementwise_oracle(designed_forms(k), r, f)))
    return out


VARIANTS = variants()
IDS = [f"{n}{p}" for n, p, _ in VARIANTS]


def test_every_registered_loss_has_an_oracle():
    assert {n for n, _, _ in VARIANTS} == set(losses.names())


def test_the_paired_batch_tells_paired_from_all_pairs():
    # Guard for the planted bug "paired RSGAN computed over all pairs": the batch must separate them.
    r, f = BATCHES["N3M3"]
    for h in ("nonsat", "minimax"):
        for which in (0, 1):
            assert abs(rsgan_oracle(r, f, "paired", h)[which][0] - rsgan_oracle(r, f, "all", h)[which][0]) > 0.05


def run(loss, which, r, f):
    rt = torch.tensor(r, dtype=torch.float64, requires_grad=True)
    ft = torch.tensor(f, dtype=torch.float64, requires_grad=True)
    val = getattr(loss, which)(rt, ft)
    gr, gf = torch.autograd.grad(val, (rt, ft), allow_unused=True)
    gr = torch.zeros_like(rt) if gr is None else gr  # a generator loss that ignores real_out
    return float(val.detach()), gr, gf


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("name,params,oracle", VARIANTS, ids=IDS)
def test_value_and_gradient_match_the_oracle(name, params, oracle, impl):
    loss = losses.get(name, impl=impl, **params)
    for batch, (r, f) in BATCHES.items():
        if params.get("pairing") == "paired" and len(r) != len(f):
            continue
        for which, (want, want_gr, want_gf) in zip(("d_loss", "g_loss"), oracle(r, f)):
            val, gr, gf = run(loss, which, r, f)
            assert val == pytest.approx(want, rel=1e-12, abs=1e-12), (batch, which)
            torch.testing.assert_close(gr, torch.tensor(want_gr, dtype=torch.float64), rtol=1e-10, atol=1e-12,
                                       msg=lambda m: f"{batch} {which} d/dreal: {m}")
            torch.testing.assert_close(gf, torch.tensor(want_gf, dtype=torch.float64), rtol=1e-10, atol=1e-12,
                                       msg=lambda m: f"{batch} {which} d/dfake: {m}")


@pytest.mark.parametrize("name,params,oracle", [v for v in VARIANTS if v[0] != "designed"],
                         ids=[i for i, v in zip(IDS, VARIANTS) if v[0] != "designed"])
def test_float32_and_column_shape_match_the_oracle(name, params, oracle):
    # The fused kernels run float32 (N, 1) batches in training: same oracle, float32 tolerance.
    loss = losses.get(name, **params)
    r, f = BATCHES["N3M3"]
    for which, (want, want_gr, want_gf) in zip(("d_loss", "g_loss"), oracle(r, f)):
        rt = torch.tensor(r, dtype=torch.float32).unsqueeze(1).requires_grad_(True)
        ft = torch.tensor(f, dtype=torch.float32).unsqueeze(1).requires_grad_(True)
        val = getattr(loss, which)(rt, ft)
        assert val.dtype == torch.float32 and float(val.detach()) == pytest.approx(want, rel=1e-5, abs=1e-6), which
        gr, gf = torch.autograd.grad(val, (rt, ft), allow_unused=True)
        if gr is not None:
            torch.testing.assert_close(gr.squeeze(1).double(), torch.tensor(want_gr, dtype=torch.float64),
                                       rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(gf.squeeze(1).double(), torch.tensor(want_gf, dtype=torch.float64), rtol=1e-5, atol=1e-6)
