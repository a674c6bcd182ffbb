"""Fused ops against their pure-torch references (values and gradients),
gradcheck, opcheck, torch.compile, determinism, accuracy and bad input."""
import pytest
import torch

from lightning_gans import _ext, ops, reference

pytestmark = pytest.mark.skipif(not _ext.available(), reason=f"native extension missing: {_ext.load_error()}")

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
SIZES = [1, 2, 7, 1000, 4097]
# name -> (fused, reference, arity, takes_sign, needs_equal_sizes)
OPS = {
    "softplus_mean": (ops.softplus_mean, reference.softplus_mean, 1, True, False),
    "sgan_d": (ops.sgan_d, reference.sgan_d, 2, False, False),
    "paired": (ops.relativistic_paired, reference.relativistic_paired, 2, True, True),
    "all_pairs": (ops.relativistic_all_pairs, reference.relativistic_all_pairs, 2, True, False),
    "average": (ops.relativistic_average, reference.relativistic_average, 2, True, False),
}
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


def value_and_grads(name, impl, xs, sign=-1.0):
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    loss = call(name, impl, xs, sign)
    loss.backward()
    return loss.detach(), [x.grad for x in xs]


def assert_close(a, b, rtol, what):
    a, b = a.double(), b.double()
    scale = max(b.abs().max().item(), 1e-30)
    err = (a - b).abs().max().item() / scale
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:.3g}"


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_parity_with_reference(name, dtype, sign):
    for n in SIZES:
        xs = make_inputs(name, n, dtype)
        lf, gf = value_and_grads(name, "fused", xs, sign)
        lr, gr = value_and_grads(name, "ref", xs, sign)
        assert lf.dtype == dtype and lf.shape == ()
        assert_close(lf, lr, TOL[dtype], f"{name} loss n={n}")
        for k, (a, b) in enumerate(zip(gf, gr)):
            assert a.dtype == dtype and a.shape == b.shape
            assert_close(a, b, TOL[dtype], f"{name} grad[{k}] n={n}")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_extreme_logits_are_exact(name, dtype):
    xs = make_inputs(name, 64, dtype, scale=1.0)
    xs = [torch.sign(x) * 1e4 + x for x in xs]  # ±1e4, distinct values
    lf, gf = value_and_grads(name, "fused", xs)
    lr, gr = value_and_grads(name, "ref", [x.double() for x in xs])
    assert torch.isfinite(lf) and all(torch.isfinite(g).all() for g in gf)
    assert_close(lf, lr, TOL[dtype], f"{name} loss at ±1e4")
    for a, b in zip(gf, gr):
        assert_close(a, b, TOL[dtype], f"{name} grad at ±1e4")


@pytest.mark.parametrize("name", list(OPS))
def test_nan_propagates(name):
    xs = make_inputs(name, 33, torch.float32)
    xs[0][5] = float("nan")
    loss, grads = value_and_grads(name, "fused", xs)
    assert torch.isnan(loss)
    assert torch.isnan(grads[0][5])


def test_all_pairs_unequal_sizes_and_noncontiguous():
    g = torch.Generator().manual_seed(1)
    r = torch.randn(2 * 301, generator=g)[::2]  # non-contiguous view
    f = torch.randn(517, 1, generator=g)  # (M, 1)
    assert not r.is_contiguous()
    for sign in (1.0, -1.0):
        lf, gf = value_and_grads("all_pairs", "fused", [r, f], sign)
        lr, gr = value_and_grads("all_pairs", "ref", [r, f], sign)
        assert_close(lf, lr, 1e-5, "loss")
        assert gf[1].shape == (517, 1)
        for a, b in zip(gf, gr):
            assert_close(a, b, 1e-5, "grad")


def test_generator_identity_of_spec():
    # SPEC §3: L_G = L_D + mean(T_r) - mean(T_f) for h = sp(-t), all pairs.
    r, f = make_inputs("all_pairs", 500, torch.float64)
    lhs = ops.relativistic_all_pairs(r, f, -1.0)
    rhs = ops.relativistic_all_pairs(r, f, 1.0) + r.mean() - f.mean()
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(OPS))
def test_gradcheck_float64(name):
    xs = [x.requires_grad_(True) for x in make_inputs(name, 9, torch.float64)]
    takes_sign = OPS[name][3]
    fn = (lambda *a: OPS[name][0](*a, -1.0, impl="fused")) if takes_sign else (lambda *a: OPS[name][0](*a, impl="fused"))
    assert torch.autograd.gradcheck(fn, xs)


def _opcheck_cases():
    g = torch.Generator().manual_seed(3)
    r, f, f2 = torch.randn(13, generator=g), torch.randn(13, generator=g), torch.randn(6, generator=g)
    L = torch.ops.lightning_gans
    ga = torch.tensor(0.7)
    row, col = torch.rand(13), torch.rand(6)
    stats = torch.tensor([0.1, -0.2, 3.0, 4.0], dtype=torch.float64)
    return [
        (L.softplus_mean, (r.clone().requires_grad_(), -1.0, True)),
        (L.softplus_mean, (r, 1.0, False)),
        (L.sgan_d, (r.clone().requires_grad_(), f2.clone().requires_grad_(), True)),
        (L.sgan_d, (r, f2, False)),
        (L.rel_paired, (r.clone().requires_grad_(), f.clone().requires_grad_(), 1.0, True)),
        (L.rel_paired, (r, f, -1.0, False)),
        (L.grad_scale, (ga, r, 1.0)),
        (L.grad_scale, (ga, r, -1.0)),
        (L.rel_all_pairs, (r.clone().requires_grad_(), f2.clone().requires_grad_(), 1.0, True)),
        (L.rel_all_pairs, (r, f2, -1.0, False)),
        (L.rel_all_pairs_backward, (ga, r, f2, row, col, 1.0)),
        (L.rel_average, (r.clone().requires_grad_(), f2.clone().requires_grad_(), -1.0)),
        (L.rel_average_backward, (ga, r, f2, stats, 1.0)),
    ]


@pytest.mark.parametrize("case", range(len(_opcheck_cases())))
def test_opcheck(case):
    op, args = _opcheck_cases()[case]
    torch.library.opcheck(op, args)


def test_torch_compile_fullgraph():
    def losses(r, f):
        return (
            ops.sgan_d(r, f)
            + ops.softplus_mean(f, -1.0)
            + ops.relativistic_paired(r, f, 1.0)
            + ops.relativistic_all_pairs(r, f, -1.0)
            + ops.relativistic_average(r, f, 1.0)
        )

    g = torch.Generator().manual_seed(5)
    r0, f0 = torch.randn(257, generator=g), torch.randn(257, generator=g)
    compiled = torch.compile(losses, fullgraph=True, backend="aot_eager")
    outs = []
    for fn in (losses, compiled):
        r, f = r0.clone().requires_grad_(), f0.clone().requires_grad_()
        loss = fn(r, f)
        loss.backward()
        outs.append((loss.detach(), r.grad, f.grad))
    for a, b in zip(*outs):
        assert torch.equal(a, b)


def test_torch_compile_inductor_no_graph_break():
    def loss(r, f):
        return ops.relativistic_all_pairs(r, f, 1.0) * 0.5 + ops.sgan_d(r, f).square()

    r0, f0 = torch.randn(100), torch.randn(50)
    compiled = torch.compile(loss, fullgraph=True)
    outs = []
    for fn in (loss, compiled):
        r, f = r0.clone().requires_grad_(), f0.clone().requires_grad_()
        value = fn(r, f)
        value.backward()
        outs.append((value.detach(), r.grad, f.grad))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(OPS))
def test_deterministic_across_runs_and_threads(name):
    xs = make_inputs(name, 20011, torch.float32)
    threads = torch.get_num_threads()
    results = []
    try:
        for t in (1, 2, 2):
            torch.set_num_threads(t)
            results.append(value_and_grads(name, "fused", xs))
    finally:
        torch.set_num_threads(threads)
    (l0, g0) = results[0]
    for loss, grads in results[1:]:
        assert torch.equal(loss, l0)
        for a, b in zip(grads, g0):
            assert torch.equal(a, b)


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


def test_double_backward_raises_instead_of_silent_zero():
    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(ops.softplus_mean(x, 1.0, impl="fused"), x, create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(g.sum(), x)
