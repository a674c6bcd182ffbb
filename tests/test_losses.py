"""The loss library: every name, fused vs reference, named losses vs their factory form, errors."""
import math

import pytest
import torch

from lightning_gans import losses
from lightning_gans.factory import FormulaError, design

LOG2 = math.log(2.0)
REQUIRED = {
    "sgan", "nsgan", "sgan_t", "exp", "lsgan", "hinge", "wgan",
    "fgan_kl", "fgan_rkl", "fgan_pearson", "fgan_hellinger", "fgan_js", "fgan_tv",
    "rsgan", "rasgan", "ralsgan", "rahinge", "designed",
}
RELATIVISTIC = {"rsgan", "rasgan", "ralsgan", "rahinge"}


def batch(n=16, m=16, dtype=torch.float64, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    r = (scale * torch.randn(n, generator=g, dtype=dtype) + 0.5).requires_grad_(True)
    f = (scale * torch.randn(m, generator=g, dtype=dtype) - 0.5).requires_grad_(True)
    return r, f


def test_names_cover_the_issue():
    assert REQUIRED <= set(losses.names())


@pytest.mark.parametrize("name", losses.names())
@pytest.mark.parametrize("shape", ["(N,)", "(N,1)"])
def test_every_loss_is_a_finite_scalar_with_gradients(name, shape):
    loss = losses.get(name)
    r, f = batch(8, 8)
    ri, fi = (r.unsqueeze(1), f.unsqueeze(1)) if shape == "(N,1)" else (r, f)
    ld, lg = loss.d_loss(ri, fi), loss.g_loss(ri, fi)
    for l in (ld, lg):
        assert l.dim() == 0 and l.dtype == torch.float64 and torch.isfinite(l)
    gr, gf = torch.autograd.grad(ld, (r, f))
    assert torch.isfinite(gr).all() and torch.isfinite(gf).all() and gr.abs().sum() > 0 and gf.abs().sum() > 0
    (gg,) = torch.autograd.grad(lg, f)
    assert torch.isfinite(gg).all() and gg.abs().sum() > 0


@pytest.mark.parametrize("name", losses.names())
def test_real_out_accepted_by_every_loss(name):
    loss = losses.get(name)
    r, f = batch(8, 8)
    g1 = loss.g_loss(r, f)
    g2 = loss.g_loss(r.detach() + 3.0, f)  # detached, shifted real outputs
    if name in RELATIVISTIC:
        assert loss.relativistic and not torch.equal(g1, g2)  # real samples enter the generator's loss
    else:
        assert not loss.relativistic and torch.equal(g1, g2)  # ignored


@pytest.mark.parametrize("name", losses.names())
def test_larger_output_means_more_real(name):
    # The one convention of the library, checked on values: D pays less when real outputs sit above fake
    # ones than when they are swapped, and G pays less when its fakes' outputs rise.
    loss = losses.get(name)
    hi, lo = torch.tensor([2.0, 1.5], dtype=torch.float64), torch.tensor([-1.0, -2.0], dtype=torch.float64)
    assert float(loss.d_loss(hi, lo)) < float(loss.d_loss(lo, hi)), name
    assert float(loss.g_loss(hi, lo + 0.5)) < float(loss.g_loss(hi, lo)), name


# ------------------------------------------------------------------ fused vs reference
FUSED = [
    ("sgan", {}), ("nsgan", {}), ("sgan_t", {}), ("fgan_js", {}), ("rasgan", {}),
    ("rsgan", {"pairing": "paired"}), ("rsgan", {"pairing": "all"}),
    ("rsgan", {"pairing": "paired", "h": "minimax"}), ("rsgan", {"pairing": "all", "h": "linear"}),
]


@pytest.mark.parametrize("name,params", FUSED, ids=[f"{n}{p}" for n, p in FUSED])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_fused_matches_reference(name, params, dtype, scale):
    assert losses.get(name, **params).has_fused
    fused, ref = losses.get(name, impl="fused", **params), losses.get(name, impl="ref", **params)
    n, m = (24, 24) if params.get("pairing") == "paired" else (24, 17)
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-10}
    for which in ("d_loss", "g_loss"):
        outs = []
        for loss in (fused, ref):
            r, f = batch(n, m, dtype=dtype, seed=3, scale=scale)
            val = getattr(loss, which)(r, f)
            outs.append((val.detach(), *torch.autograd.grad(val, (r, f), allow_unused=True)))
        for a, b in zip(outs[0], outs[1]):
            if a is None or b is None:  # a generator loss that ignores real_out
                assert a is None or not a.abs().any()
                continue
            assert torch.isfinite(a).all(), f"{name} {which} not finite at scale {scale}"
            torch.testing.assert_close(a, b, **tol)


def test_fused_is_an_error_without_a_kernel():
    with pytest.raises(ValueError, match="'lsgan' has no fused kernel"):
        losses.get("lsgan", impl="fused")


# ------------------------------------------------------------------ named losses vs the factory
# Both in the library convention (larger = real): named(T_r, T_f) = scale * designed(T_r, T_f) + const,
# with equal gradients (times scale). Rows: named loss (name, params) -> design kwargs, scale.
AS_DESIGNS = {
    # The saddle generator of the standard GAN plays D's objective: sgan's minimax generator.
    "sgan": ("sgan", {}, dict(omega="log(r)", rho="1/(1+exp(t))", generator="saddle"), 1.0),
    # The default ("auto" -> nonsat, β = -φ = sp(t)) designed SGAN generator is nsgan's.
    "nsgan": ("nsgan", {}, dict(omega="log(r)", rho="1/(1+exp(t))"), 1.0),
    "nsgan alpha=beta=sp": ("nsgan", {}, dict(omega="log(r)", rho="1/(1+exp(t))", alpha="softplus(t)",
                                              beta="softplus(t)"), 1.0),
    "sgan_t": ("sgan_t", {}, dict(omega="log(r)", rho="1/(1+exp(t))", beta="t"), 1.0),
    "exp": ("exp", {}, dict(omega="0.5*log(r)", rho="exp(-t)", beta="exp(t)"), 1.0),
    "exp default": ("exp", {}, dict(omega="0.5*log(r)", rho="exp(-t)"), 1.0),
    # Named lsgan (a=-1, b=1, c=0) is ½ the article's row with a=-1, b=1, β = t².
    "lsgan": ("lsgan", {}, dict(omega="(r-1)/(r+1)", rho="2*(1-t)", beta="t**2"), 0.5),
}
# f-GANs: the design with the same generator ("nonsat" β = -φ = -g(v); "saddle" β = ψ = -f*(g(v))).
FGAN_DESIGNS = {
    "fgan_kl": dict(omega="log(r)-1", rho="exp(-t-1)"),
    "fgan_rkl": dict(omega="log(r)", rho="1"),
    "fgan_pearson": dict(omega="2-2/r", rho="1-t/2"),
    "fgan_hellinger": dict(omega="0.5*log(r)", rho="exp(-t)"),
    "fgan_js": dict(omega="log(r)", rho="1/(1+exp(t))"),
}
for _name, _kw in FGAN_DESIGNS.items():
    for _gen in ("nonsat", "saddle"):
        AS_DESIGNS[f"{_name} {_gen}"] = (_name, {"generator": _gen}, dict(_kw, generator=_gen), 1.0)


def assert_affine(named_vals, factory_vals, scale, what):
    c = [a - scale * b for a, b in zip(named_vals, factory_vals)]
    assert max(c) - min(c) < 1e-9, f"{what}: named != {scale} * factory + const ({c})"


@pytest.mark.parametrize("key", list(AS_DESIGNS))
def test_named_loss_agrees_with_factory(key):
    name, params, kwargs, scale = AS_DESIGNS[key]
    named = losses.get(name, **params)
    fac = losses.get("designed", squash=False, **kwargs)
    for which in ("d_loss", "g_loss"):
        nv, fv = [], []
        for seed in range(5):
            r, f = batch(12, 9, seed=seed, scale=0.8)
            a = getattr(named, which)(r, f)
            b = getattr(fac, which)(r, f)
            nv.append(float(a.detach()))
            fv.append(float(b.detach()))
            ga = torch.autograd.grad(a, f)[0]
            gb = torch.autograd.grad(b, f)[0]
            torch.testing.assert_close(ga, scale * gb, rtol=1e-9, atol=1e-12)
        assert_affine(nv, fv, scale, f"{key}.{which}")


def test_designed_standard_gan_constants():
    # The exact constants, so that "up to a constant" cannot hide a constant that drifts with the batch.
    # φ(t) = -sp(t) (sympy's antiderivative, not normalised), ψ(t) = log 2 - sp(-t) (ψ(0) = 0), t = -T:
    # L_D = mean sp(-T_r) + mean sp(T_f) - log 2 = sgan's L_D - log 2.
    r, f = batch(7, 5, seed=4)
    sgan, nsgan = losses.get("sgan"), losses.get("nsgan")
    default, saddle = losses.get("designed"), losses.get("designed", generator="saddle")
    assert default.design.generator == "nonsat" and saddle.design.generator == "saddle"
    for lhs, rhs, const in [
        (default.d_loss(r, f), sgan.d_loss(r, f), -LOG2),
        (default.g_loss(r, f), nsgan.g_loss(r, f), 0.0),       # β = sp(t): mean sp(-T_f)
        (saddle.g_loss(r, f), sgan.g_loss(r, f), LOG2),        # β = ψ: log 2 - mean sp(T_f)
    ]:
        assert float((lhs - rhs).detach()) == pytest.approx(const, abs=1e-12)
        for x in (r, f):
            g1 = torch.autograd.grad(lhs, x, retain_graph=True, allow_unused=True)[0]
            g2 = torch.autograd.grad(rhs, x, retain_graph=True, allow_unused=True)[0]
            if g1 is None or g2 is None:  # a generator loss ignores real_out
                assert g1 is None and g2 is None
            else:
                torch.testing.assert_close(g1, g2, rtol=1e-12, atol=1e-14)


def test_lsgan_general_labels_agree_with_factory():
    # Named labels (a, b, c) = (0, 2, 1) <-> article's a' = -b = -2, b' = -a = 0 (b' - a' = 2).
    named = losses.get("lsgan", a=0.0, b=2.0, c=1.0)
    fac = losses.get("designed", omega="(a+b*r)/(1+r)", rho="2*(b-t)", beta="(t-(a+b)/2)**2",
                     constants={"a": -2, "b": 0}, squash=False)
    for which in ("d_loss", "g_loss"):
        vals = [(float(getattr(named, which)(r, f).detach()), float(getattr(fac, which)(r, f).detach()))
                for r, f in (batch(10, 10, seed=s) for s in range(4))]
        assert_affine([v[0] for v in vals], [v[1] for v in vals], 0.5, f"lsgan(0,2,1).{which}")


def test_exp_is_the_hellinger_discriminator():
    r, f = batch(10, 10)
    diff = losses.get("exp").d_loss(r, f) - losses.get("fgan_hellinger").d_loss(r, f)
    r2, f2 = batch(10, 10, seed=9, scale=2.0)
    diff2 = losses.get("exp").d_loss(r2, f2) - losses.get("fgan_hellinger").d_loss(r2, f2)
    assert abs(float((diff - diff2).detach())) < 1e-12


def test_designed_loss_from_a_design_object():
    d = design("0.5*log(r)", "exp(-t)", beta="exp(t)")
    a, b = losses.DesignedLoss(d), losses.get("designed", design=d)
    r, f = batch()
    assert torch.equal(a.d_loss(r, f), b.d_loss(r, f))
    # L_D = -mean φ(-T_r) - mean ψ(-T_f), L_G = mean β(-T_f) (Conclusion 2, library convention) with
    # φ(t) = -e^t, ψ(t) = 1 - e^{-t}, β(t) = e^t, written out:
    want_d = torch.exp(-r).mean() - (1 - torch.exp(f)).mean()
    torch.testing.assert_close(a.d_loss(r, f), want_d)
    torch.testing.assert_close(a.g_loss(r, f), torch.exp(-f).mean())


def test_designed_squash_maps_into_the_domain():
    loss = losses.get("designed", omega="r/(r+1)", rho="1/t")  # Ω = (0, 1): raw outputs must be squashed
    assert loss.squash is True
    r, f = batch(scale=5.0)
    assert torch.isfinite(loss.d_loss(r, f)) and torch.isfinite(loss.g_loss(r, f))
    assert losses.get("designed").squash is False  # Ω = ℝ


# ------------------------------------------------------------------ errors
def test_unknown_name_lists_the_names():
    with pytest.raises(ValueError) as e:
        losses.get("sgann")
    msg = str(e.value)
    assert "unknown loss 'sgann'" in msg and all(n in msg for n in losses.names())


@pytest.mark.parametrize(
    "name,params,exc,words",
    [
        ("sgan", {"a": 1}, TypeError, "takes no parameters"),
        ("lsgan", {"d": 1}, TypeError, "unknown parameter(s) ['d']"),
        ("lsgan", {"a": "x"}, ValueError, "lsgan parameter a must be a finite number"),
        ("lsgan", {"a": float("nan")}, ValueError, "lsgan parameter a must be a finite number"),
        ("lsgan", {"a": 1.0, "b": -1.0}, ValueError, "real label b above the fake label a"),
        ("rsgan", {"pairing": "pairs"}, ValueError, "rsgan pairing must be one of"),
        ("rsgan", {"h": "tanh"}, ValueError, "rsgan h (the generator's h(t)) must be one of"),
        ("sgan", {"impl": "cuda"}, ValueError, "impl must be one of"),
        ("designed", {"rho": "t.__class__"}, losses.LossConfigError, "rho: attribute access"),
        ("designed", {"squash": "yes"}, ValueError, "squash must be"),
        ("designed", {"allow_failed_check": 1}, TypeError, "allow_failed_check must be a bool"),
        ("designed", {"constants": [1]}, TypeError, "constants must be a dict"),
    ],
)
def test_bad_params_give_clear_errors(name, params, exc, words):
    with pytest.raises(exc) as e:
        losses.get(name, **params)
    assert words in str(e.value)


def test_bad_outputs_give_clear_errors():
    loss = losses.get("rsgan")
    with pytest.raises(ValueError, match="paired pairing needs as many fake as real"):
        loss.d_loss(torch.zeros(4), torch.zeros(3))
    with pytest.raises(ValueError, match=r"real must have shape \(N,\) or \(N, 1\)"):
        losses.get("lsgan").d_loss(torch.zeros(2, 2), torch.zeros(2))
    with pytest.raises(ValueError, match=r"fake must have shape \(N,\) or \(N, 1\)"):
        losses.get("lsgan").g_loss(torch.zeros(2), torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\)"):
        losses.get("nsgan").g_loss(torch.zeros(2), torch.zeros(2, 2))  # fused: the kernel layer checks
    with pytest.raises(TypeError, match="same dtype"):
        losses.get("hinge").d_loss(torch.zeros(2), torch.zeros(2, dtype=torch.float64))


def test_failing_design_refused_by_get():
    from lightning_gans.factory import DesignCheckError

    with pytest.raises(losses.LossConfigError, match=r"\[generator\].*r = ") as e:
        losses.get("designed", beta="-t")
    assert isinstance(e.value.__cause__, DesignCheckError)  # the check's own error, with where it fails
    with pytest.raises(losses.LossConfigError, match="rho: attribute access") as e:
        losses.get("designed", rho="t.__class__")
    assert isinstance(e.value.__cause__, FormulaError)


# ------------------------------------------------------------------ issue 11: f-GAN generators' direction
FGAN_NAMES = ["fgan_kl", "fgan_rkl", "fgan_pearson", "fgan_hellinger", "fgan_js", "fgan_tv"]
LOGITS = torch.linspace(-20.0, 20.0, 161, dtype=torch.float64)


def g_grad(name, generator):
    f = LOGITS.clone().requires_grad_(True)
    l = losses.get(name, generator=generator).g_loss(torch.zeros(3, dtype=torch.float64), f)
    return torch.autograd.grad(l, f)[0]


@pytest.mark.parametrize("name", FGAN_NAMES)
def test_default_fgan_generator_pushes_fakes_towards_real_at_every_logit(name):
    # Default "nonsat": L_G = -mean g_f(v_f) and every g_f is increasing, so d L_G / d v_f < 0 everywhere.
    assert losses.get(name).generator == "nonsat"
    grad = g_grad(name, "nonsat")
    if name == "fgan_tv":
        # g = ½ tanh(v): 1 - tanh²(v) rounds to 0 in float64 beyond |v| ≈ 19 (saturation, not a wrong sign).
        inside = LOGITS.abs() < 19
        assert bool((grad[inside] < 0).all()) and bool((grad[~inside] <= 0).all())
    else:
        assert bool((grad < 0).all()), LOGITS[grad >= 0]


def test_saddle_pearson_generator_pushes_the_wrong_way_below_minus_two():
    # "saddle": L_G = -mean f*(g(v)) with f*(s) = s²/4 + s, whose slope s/2 + 1 is negative for v < -2:
    # there the generator lowers its fakes' outputs (towards "more fake"). Exactly: dL/dv = -(v/2 + 1)/M.
    grad = g_grad("fgan_pearson", "saddle")
    torch.testing.assert_close(grad, -(LOGITS / 2 + 1) / len(LOGITS))
    assert bool((grad[LOGITS < -2] > 0).all()) and bool((grad[LOGITS > -2] < 0).all())
