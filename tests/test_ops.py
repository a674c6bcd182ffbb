"""Fused ops against their pure-torch references: values and gradients for every op, dtype,
sign and size, through autograd and through both backward paths of the raw ops (saved
gradient / recomputed), extreme logits, NaN, layouts, upstream gradients, accuracy.

Autograd machinery (opcheck, torch.compile, determinism, double backward) is in
test_ops_autograd.py. Expected values come from the float64 reference or from formulas
written here, never from the code under test.
"""
import pytest
import torch

from lightning_gans import kernels as ops
from lightning_gans.kernels import extension as _ext
from lightning_gans.kernels import reference

pytestmark = pytest.mark.skipif(not _ext.available(), reason=f"native extension missing: {_ext.load_error()}")

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SIZES = [1, 2, 7, 64, 256, 1000, 4097]
# name -> (fused, reference, arity, takes_sign, needs_equal_sizes)
OPS = {
    "softplus_mean": (ops.softplus_mean, reference.softplus_mean, 1, True, False),
    "sgan_d": (ops.sgan_d, reference.sgan_d, 2, False, False),
    "paired": (ops.relativistic_paired, reference.relativistic_paired, 2, True, True),
    "all_pairs": (ops.relativistic_all_pairs, reference.relativistic_all_pairs, 2, True, False),
    "average": (ops.relativistic_average, reference.relativistic_average, 2, True, False),
}
ELEMENTWISE = ["softplus_mean", "sgan_d", "paired"]
# Tolerances on the loss (relative) and gradients (relative to the largest).
TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}


def make_inputs(name, n, dtype, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed + n)
    arity, equal = OPS[name][2], OPS[name][4]
    sizes = [n] if arity == 1 else [n, n if equal else n + 3]
    return [(scale * torch.randn(s, generator=g, dtype=torch.float64)).to(dtype) for s in sizes]


def call(name, impl, xs, sign=-1.0):
    fused, ref, _, takes_sign, _ = OPS[name]
    args = (*xs, sign) if takes_sign else tuple(xs)
    if impl == "ref":
        return ref(*args)
    return fused(*args, impl="fused")


def value_and_grads(name, impl, xs, sign=-1.0, upstream=1.0):
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    loss = call(name, impl, xs, sign)
    (loss * upstream if upstream != 1.0 else loss).backward()
    return loss.detach(), [x.grad for x in xs]


def raw_value_and_grads(name, xs, sign=-1.0, save=True, upstream=1.0):
    """The native forward and backward ops called directly, below autograd, with the
    gradient saved by the forward (save=True) or recomputed by the backward (save=False)."""
    L = torch.ops.lightning_gans
    xs = [x.detach() for x in xs]
    with torch.inference_mode():  # no autograd kernel: with_grad is taken as given
        grad = torch.tensor(upstream, dtype=xs[0].dtype)
        if name == "softplus_mean":
            loss, g = L.softplus_mean(xs[0], sign, save)
            return loss, [L.softplus_mean_backward(grad, xs[0], g, sign)], [g]
        if name == "sgan_d":
            loss, gr, gf = L.sgan_d(*xs, save)
            return loss, list(L.sgan_d_backward(grad, *xs, gr, gf)), [gr, gf]
        if name == "paired":
            loss, g = L.rel_paired(*xs, sign, save)
            return loss, list(L.rel_paired_backward(grad, *xs, g, sign)), [g]
        if name == "all_pairs":
            loss, row, col = L.rel_all_pairs(*xs, sign, True)
            return loss, list(L.rel_all_pairs_backward(grad, *xs, row, col, sign)), [row, col]
        loss, stats = L.rel_average(*xs, sign)
        return loss, list(L.rel_average_backward(grad, *xs, stats, sign)), [stats]


def assert_close(a, b, rtol, what):
    a, b = a.double(), b.double()
    scale = max(b.abs().max().item(), 1e-30)
    err = (a - b).abs().max().item() / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:.3g}"


def check_against_reference(name, dtype, loss, grads, xs, sign, upstream=1.0, what=""):
    lr, gr = value_and_grads(name, "ref", xs, sign, upstream)
    assert loss.dtype == dtype and loss.shape == ()
    assert_close(loss, lr, TOL[dtype], f"{what} loss")
    assert len(grads) == len(gr)
    for k, (a, b) in enumerate(zip(grads, gr)):
        assert a.dtype == dtype and a.shape == b.shape, (a.dtype, a.shape, b.shape)
        assert_close(a, b, TOL[dtype], f"{what} grad[{k}]")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_parity_with_reference(name, dtype, sign):
    for n in SIZES:
        xs = make_inputs(name, n, dtype)
        lf, gf = value_and_grads(name, "fused", xs, sign)
        check_against_reference(name, dtype, lf, gf, xs, sign, what=f"{name} n={n}")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("save", [True, False], ids=["saved", "recomputed"])
def test_raw_ops_both_backward_paths(name, dtype, save):
    if not save and name not in ELEMENTWISE:
        pytest.skip("only the elementwise ops have a recompute path")
    for n in SIZES:
        xs = make_inputs(name, n, dtype)
        for sign in (1.0, -1.0):
            loss, grads, saved = raw_value_and_grads(name, xs, sign, save)
            if name in ELEMENTWISE:  # saved gradients: in the accumulation dtype, or absent
                acc = torch.float64 if dtype == torch.float64 else torch.float32
                assert all(g.dtype == acc and g.numel() == (n if save else 0) for g in saved[:1])
            check_against_reference(name, dtype, loss, grads, xs, sign, what=f"{name} n={n} sign={sign}")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("upstream", [-2.5, 1e3])
def test_upstream_gradient_other_than_one(name, upstream):
    for dtype in (torch.float32, torch.float64):
        for n in (7, 1000, 4097):
            xs = make_inputs(name, n, dtype)
            lf, gf = value_and_grads(name, "fused", xs, 1.0, upstream)
            check_against_reference(name, dtype, lf, gf, xs, 1.0, upstream, f"{name} n={n} autograd")
            for save in (True, False):
                loss, grads, _ = raw_value_and_grads(name, xs, 1.0, save, upstream)
                check_against_reference(name, dtype, loss, grads, xs, 1.0, upstream, f"{name} n={n} raw")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_extreme_logits(name, dtype):
    xs = make_inputs(name, 64, dtype, scale=1.0)
    xs = [(torch.sign(x.double()) * 1e4 + x.double()).to(dtype) for x in xs]  # ±1e4, distinct values
    x64 = [x.double() for x in xs]  # the reference sees exactly the rounded inputs
    results = [value_and_grads(name, "fused", xs)]
    results += [raw_value_and_grads(name, xs, -1.0, save)[:2] for save in (True, False)]
    lr, gr = value_and_grads(name, "ref", x64)
    for lf, gf in results:
        assert torch.isfinite(lf) and all(torch.isfinite(g).all() for g in gf)
        assert_close(lf, lr, TOL[dtype], f"{name} loss at ±1e4")
        for a, b in zip(gf, gr):
            assert_close(a, b, TOL[dtype], f"{name} grad at ±1e4")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("pos", [0, 32], ids=["vector-body", "scalar-tail"])
def test_nan_propagates(name, dtype, pos):
    # n = 33: position 0 is in the vectorised loop, 32 in the scalar tail (16 float / 8 double lanes)
    xs = make_inputs(name, 33, dtype)
    xs[0][pos] = float("nan")
    runs = [value_and_grads(name, "fused", xs)] + [raw_value_and_grads(name, xs, -1.0, s)[:2] for s in (True, False)]
    for loss, grads in runs:
        assert torch.isnan(loss)
        assert torch.isnan(grads[0][pos])
        if name in ELEMENTWISE:  # each logit's gradient depends on itself (and its pair) only
            others = torch.ones(33, dtype=torch.bool)
            others[pos] = False
            assert torch.isfinite(grads[0][others]).all()
            if name == "sgan_d":
                assert torch.isfinite(grads[1]).all()
            if name == "paired":
                assert torch.isnan(grads[1][pos]) and torch.isfinite(grads[1][others]).all()


@pytest.mark.parametrize("name", list(OPS))
def test_noncontiguous_and_column_inputs(name):
    g = torch.Generator().manual_seed(1)
    n = 301
    m = n if OPS[name][4] else 517
    r = torch.randn(2 * n, generator=g)[::2]  # non-contiguous view
    f = torch.randn(m, 1, generator=g)  # (M, 1)
    assert not r.is_contiguous()
    xs = [r] if OPS[name][2] == 1 else [r, f]
    for sign in (1.0, -1.0):
        lf, gf = value_and_grads(name, "fused", xs, sign)
        lr, gr = value_and_grads(name, "ref", xs, sign)
        assert_close(lf, lr, 1e-5, "loss")
        for a, b in zip(gf, gr):
            assert a.shape == b.shape
            assert_close(a, b, 1e-5, "grad")
    if name in ELEMENTWISE:  # the raw backward ops on non-contiguous logits, both paths
        xs = [r] if name == "softplus_mean" else [r, torch.randn(2 * m, generator=g)[1::2]]
        for save in (True, False):
            loss, grads, _ = raw_value_and_grads(name, xs, 1.0, save)
            check_against_reference(name, torch.float32, loss, grads, xs, 1.0, what="non-contiguous raw")


def test_column_input_gradient_keeps_its_shape():
    x = torch.randn(40, 1, requires_grad=True)
    ops.softplus_mean(x, 1.0, impl="fused").backward()
    assert x.grad.shape == (40, 1)
    torch.testing.assert_close(x.grad, torch.sigmoid(x.detach()) / 40)  # d/dx mean sp(x) = σ(x)/N


def test_generator_identity_all_pairs():
    # For h = sp(-t): sp(-z) = sp(z) - z, so L_G = L_D + mean(T_r) - mean(T_f) over all pairs.
    r, f = make_inputs("all_pairs", 500, torch.float64)
    lhs = ops.relativistic_all_pairs(r, f, -1.0)
    rhs = ops.relativistic_all_pairs(r, f, 1.0) + r.mean() - f.mean()
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("n", [9, 300])
def test_gradcheck_float64(name, n):
    xs = [x.requires_grad_(True) for x in make_inputs(name, n, torch.float64, scale=1.0)]
    takes_sign = OPS[name][3]
    fn = (lambda *a: OPS[name][0](*a, -1.0, impl="fused")) if takes_sign else (lambda *a: OPS[name][0](*a, impl="fused"))
    assert torch.autograd.gradcheck(fn, xs, eps=1e-6, atol=1e-8, fast_mode=n > 100)


def test_saved_gradient_of_float16_is_not_subnormal():
    # σ(z) ≈ 1e-4 at N = 256: the unit-upstream gradient σ/N ≈ 4e-7 is subnormal in float16
    # (smallest normal 6.1e-5, spacing 6e-8 below it: ~10% rounding). Under 16-mixed a loss
    # scale (8192 here) multiplies it back into the normal range, so a gradient saved in half
    # would carry that 10% error into every step; saved in float32 it is exact to float32.
    n, scale = 256, 8192.0
    z = torch.log(torch.tensor(1e-4 / (1 - 1e-4), dtype=torch.float64)) + torch.linspace(-0.5, 0.5, n, dtype=torch.float64)
    x = z.half()  # softplus_mean(x, +1): d/dx_k = σ(x_k)/N
    want = torch.sigmoid(x.double()) / n
    with torch.inference_mode():
        _, g = torch.ops.lightning_gans.softplus_mean(x, 1.0, True)
    assert g.dtype == torch.float32
    assert ((g.double() - want).abs() / want).max() < 1e-6
    for save in (True, False):
        _, (dx,), _ = raw_value_and_grads("softplus_mean", [x], 1.0, save, upstream=scale)
        assert dx.dtype == torch.float16
        assert ((dx.double() - scale * want).abs() / (scale * want)).max() < 1e-3  # half's own rounding: 4.9e-4
    xg = x.clone().requires_grad_()
    (ops.softplus_mean(xg, 1.0, impl="fused") * scale).backward()
    assert ((xg.grad.double() - scale * want).abs() / (scale * want)).max() < 1e-3


def _opcheck_cases():
    """(op, args) for torch.library.opcheck: every forward and backward op, with and without
    gradients, saved gradients present and absent, float32 and float16 (also run on CUDA)."""
    g = torch.Generator().manual_seed(3)
    r, f, f2 = torch.randn(13, generator=g), torch.randn(13, generator=g), torch.randn(6, generator=g)
    L = torch.ops.lightning_gans
    ga = torch.tensor(0.7)
    row, col = torch.rand(13), torch.rand(6)
    stats = torch.tensor([0.1, -0.2, 3.0, 4.0], dtype=torch.float64)
    g13, g6, none = torch.rand(13), torch.rand(6), torch.empty(0)
    rg = lambda t: t.clone().requires_grad_()  # noqa: E731
    rh = r.half()
    return [
        (L.softplus_mean, (rg(r), -1.0, True)),
        (L.softplus_mean, (rg(r), 1.0, False)),
        (L.softplus_mean, (r, 1.0, False)),
        (L.softplus_mean, (rg(rh), 1.0, True)),
        (L.softplus_mean_backward, (ga, r, g13, 1.0)),
        (L.softplus_mean_backward, (ga, r, none, -1.0)),
        (L.softplus_mean_backward, (ga.half(), rh, g13, -1.0)),
        (L.sgan_d, (rg(r), rg(f2), True)),
        (L.sgan_d, (r, f2, False)),
        (L.sgan_d_backward, (ga, r, f2, g13, g6)),
        (L.sgan_d_backward, (ga, r, f2, none, none)),
        (L.rel_paired, (rg(r), rg(f), 1.0, True)),
        (L.rel_paired, (r, f, -1.0, False)),
        (L.rel_paired_backward, (ga, r, f, g13, 1.0)),
        (L.rel_paired_backward, (ga, r, f, none, -1.0)),
        (L.rel_all_pairs, (rg(r), rg(f2), 1.0, True)),
        (L.rel_all_pairs, (r, f2, -1.0, False)),
        (L.rel_all_pairs_backward, (ga, r, f2, row, col, 1.0)),
        (L.rel_average, (rg(r), rg(f2), -1.0)),
        (L.rel_average_backward, (ga, r, f2, stats, 1.0)),
    ]


def test_accuracy_float32_elementwise_1m():
    x = torch.randn(1 << 20, generator=torch.Generator().manual_seed(7)) * 4
    for sign in (1.0, -1.0):
        got = ops.softplus_mean(x, sign, impl="fused").double()
        want = reference.softplus_mean(x.double(), sign)
        assert abs(got - want) / abs(want) <= 1e-5


@pytest.mark.parametrize("center", [-80.0, -30.0, -16.0, -5.0, -1e-3, 0.0, 2.0, 30.0])
def test_softplus_keeps_relative_precision_in_every_range(center):
    # The float kernels take log1p(e) for e = exp(-|z|) in [0, 1] by a series: check it where
    # sp(z) ~ e^z is tiny (a naive log(1 + e) would return 0), near 0, and where sp(z) ~ z.
    x = center + 0.5 * torch.rand(4099, generator=torch.Generator().manual_seed(9))
    got = ops.softplus_mean(x, 1.0, impl="fused").double()
    want = reference.softplus_mean(x.double(), 1.0)
    assert abs(got - want) <= 1e-6 * abs(want)


def test_accuracy_float32_all_pairs_4096():
    g = torch.Generator().manual_seed(8)
    r, f = torch.randn(4096, generator=g) * 2 + 1, torch.randn(4096, generator=g) * 2 - 1
    got, ggot = value_and_grads("all_pairs", "fused", [r, f], 1.0)
    want, gwant = value_and_grads("all_pairs", "ref", [r.double(), f.double()], 1.0)
    assert abs(got.double() - want) / abs(want) <= 1e-5
    for a, b in zip(ggot, gwant):
        assert_close(a, b, 1e-5, "grad")
