"""CUDA kernels against the references and the CPU kernels. Skipped without
a GPU; on one, conftest.py writes a record under benchmarks/results/."""
import pytest
import torch

from lightning_gans import _ext, ops
from test_ops import DTYPES, OPS, SIZES, TOL, _opcheck_cases, assert_close, make_inputs, value_and_grads

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.skipif(not _ext.cuda_built(), reason="extension built without CUDA"),
]


def cuda(xs):
    return [x.cuda() for x in xs]


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_cuda_parity_with_reference(name, dtype, sign):
    for n in SIZES + [70001]:
        xs = make_inputs(name, n, dtype)
        lf, gf = value_and_grads(name, "fused", cuda(xs), sign)
        lr, gr = value_and_grads(name, "ref", cuda(xs), sign)
        assert lf.is_cuda and lf.dtype == dtype
        assert_close(lf, lr, TOL[dtype], f"{name} loss n={n}")
        for a, b in zip(gf, gr):
            assert a.is_cuda and a.dtype == dtype
            assert_close(a, b, TOL[dtype], f"{name} grad n={n}")


@pytest.mark.parametrize("name", list(OPS))
def test_cuda_extreme_logits_and_nan(name):
    xs = [torch.sign(x) * 1e4 + x for x in make_inputs(name, 64, torch.float32, scale=1.0)]
    lf, gf = value_and_grads(name, "fused", cuda(xs))
    lr, gr = value_and_grads(name, "ref", [x.double() for x in xs])
    assert_close(lf.cpu(), lr, 1e-5, "loss at ±1e4")
    for a, b in zip(gf, gr):
        assert_close(a.cpu(), b, 1e-5, "grad at ±1e4")
    xs[0][3] = float("nan")
    ln, gn = value_and_grads(name, "fused", cuda(xs))
    assert torch.isnan(ln) and torch.isnan(gn[0][3])


@pytest.mark.parametrize("name", list(OPS))
def test_cuda_deterministic(name):
    xs = cuda(make_inputs(name, 300007 if name != "all_pairs" else 3001, torch.float32))
    l0, g0 = value_and_grads(name, "fused", xs)
    for _ in range(2):
        l1, g1 = value_and_grads(name, "fused", xs)
        assert torch.equal(l0, l1) and all(torch.equal(a, b) for a, b in zip(g0, g1))


@pytest.mark.parametrize("name", list(OPS))
def test_cuda_gradcheck(name):
    xs = [x.cuda().requires_grad_(True) for x in make_inputs(name, 9, torch.float64)]
    fused, _, _, takes_sign, _ = OPS[name]
    fn = (lambda *a: fused(*a, 1.0, impl="fused")) if takes_sign else (lambda *a: fused(*a, impl="fused"))
    assert torch.autograd.gradcheck(fn, xs)


@pytest.mark.parametrize("case", range(len(_opcheck_cases())))
def test_cuda_opcheck(case):
    op, args = _opcheck_cases()[case]
    args = tuple(a.cuda().detach().requires_grad_(a.requires_grad) if isinstance(a, torch.Tensor) else a for a in args)
    torch.library.opcheck(op, args)


def test_cuda_accuracy_all_pairs_large():
    g = torch.Generator().manual_seed(9)
    r, f = torch.randn(8192, generator=g) * 2, torch.randn(8192, generator=g) * 2 - 1
    got = ops.relativistic_all_pairs(r.cuda(), f.cuda(), 1.0, impl="fused").double().cpu()
    want = ops.relativistic_all_pairs(r.double(), f.double(), 1.0, impl="fused")
    assert abs(got - want) / abs(want) <= 1e-5


def test_cuda_compile_fullgraph():
    r, f = torch.randn(1000, device="cuda"), torch.randn(1000, device="cuda")

    def loss(r, f):
        return ops.relativistic_all_pairs(r, f, 1.0) + ops.sgan_d(r, f) + ops.relativistic_average(r, f, -1.0)

    assert torch.equal(torch.compile(loss, fullgraph=True)(r, f), loss(r, f))
