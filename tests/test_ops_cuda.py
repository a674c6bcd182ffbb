"""CUDA kernels against float64 references (marked `cuda`; skipped without a
GPU or without the CUDA build). On a GPU, conftest.py records the outcome
under benchmarks/results/. Helpers live in tests/cuda_helpers.py."""
import pytest
import torch

from cuda_helpers import (DTYPES, OPS, TOL, all_pairs_chunked, assert_grad_close, assert_rel, call, cuda_ready,
                          make_inputs, reference_f64, value_and_grads)
from lightning_gans import kernels

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not cuda_ready(), reason="no CUDA GPU or no CUDA build")]

SIZES = [1, 2, 7, 1000, 4097]


def check_against_f64(name, xs, sign=-1.0, upstream=1.0, dtype=None):
    dtype = dtype or xs[0].dtype
    lf, gf = value_and_grads(name, "fused", xs, sign, upstream)
    lr, gr = reference_f64(name, xs, sign, upstream)
    assert lf.is_cuda and lf.dtype == dtype and lf.shape == ()
    assert_rel(lf, lr, TOL[dtype], f"{name} loss n={xs[0].numel()}")
    for k, (a, b) in enumerate(zip(gf, gr)):
        assert a.is_cuda and a.dtype == dtype and a.shape == xs[k].shape
        assert_grad_close(a, b, dtype, f"{name} grad[{k}] n={xs[0].numel()}")


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_parity_with_float64(name, dtype, sign):
    for n in SIZES:
        check_against_f64(name, make_inputs(name, n, dtype, device="cuda"), sign)


@pytest.mark.parametrize("name", list(OPS))
def test_upstream_gradient_not_one(name):
    for dtype in (torch.float32, torch.float16):
        check_against_f64(name, make_inputs(name, 1000, dtype, device="cuda"), 1.0, upstream=-0.37)


@pytest.mark.parametrize("name", [k for k, v in OPS.items() if v[3]])
@pytest.mark.parametrize("sign", [0.5, -2.5])
def test_sign_not_unit(name, sign):
    check_against_f64(name, make_inputs(name, 3001, torch.float32, device="cuda"), sign)


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_extreme_logits_pm1e4(name, dtype):
    xs = [(torch.sign(x) * 1e4 + x).to(dtype) for x in make_inputs(name, 64, torch.float64, scale=1.0, device="cuda")]
    lf, gf = value_and_grads(name, "fused", xs)
    assert torch.isfinite(lf) and all(torch.isfinite(g).all() for g in gf)
    check_against_f64(name, xs)


@pytest.mark.parametrize("name", ["sgan_d", "all_pairs", "average"])
@pytest.mark.parametrize("n,m", [(7, 100_003), (100_003, 7), (64, 1_000_000), (1, 5000)])
def test_unbalanced_sizes(name, n, m):
    if name == "all_pairs" and n * m > 1e8:
        n, m = min(n, 64), min(m, 300_000)  # keep the float64 reference small
    check_against_f64(name, make_inputs(name, n, torch.float32, device="cuda", m=m))


@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("where", [0, -1])
def test_nan_and_inf_in_either_input(name, where):
    base = make_inputs(name, 3000, torch.float32, device="cuda")
    if where >= len(base) or (where == -1 and len(base) == 1):
        pytest.skip("one input")
    for bad in (float("nan"), float("inf"), float("-inf")):
        xs = [x.clone() for x in base]
        xs[where][1234] = bad
        lf, gf = value_and_grads(name, "fused", xs)
        lr, gr = reference_f64(name, xs, -1.0)
        assert torch.isnan(lf) == torch.isnan(lr) and torch.isinf(lf) == torch.isinf(lr), (bad, lf, lr)
        if torch.isfinite(lr):
            assert_rel(lf, lr, 1e-5, f"{name} loss with {bad}")
        for a, b in zip(gf, gr):
            assert torch.equal(torch.isnan(a), torch.isnan(b.to(a.dtype))), f"{name}: NaN pattern with {bad}"
            ok = torch.isfinite(b)
            assert_grad_close(a[ok], b[ok], torch.float32, f"{name} grad with {bad}")


@pytest.mark.parametrize("name", list(OPS))
def test_non_contiguous_and_column_inputs(name):
    xs = make_inputs(name, 2001, torch.float32, device="cuda")
    l0, g0 = value_and_grads(name, "fused", xs)
    wide = [torch.stack([x, torch.full_like(x, 7.0)], dim=1) for x in xs]  # (N, 2)
    strided = [w[:, 0] for w in wide]  # stride 2
    assert not strided[0].is_contiguous()
    l1, g1 = value_and_grads(name, "fused", strided)
    l2, g2 = value_and_grads(name, "fused", [w[:, :1] for w in wide])  # (N, 1), non-contiguous
    l3, g3 = value_and_grads(name, "fused", [x[:, None] for x in xs])  # (N, 1), contiguous
    for lk, gk in ((l1, g1), (l2, g2), (l3, g3)):
        assert torch.equal(lk, l0)
        for a, b in zip(gk, g0):
            assert torch.equal(a.reshape(-1), b)


@pytest.mark.parametrize("name", list(OPS))
def test_second_gpu(name):
    if torch.cuda.device_count() < 2:
        pytest.skip("one GPU")
    xs0 = make_inputs(name, 5000, torch.float32, device="cuda:0")
    l0, g0 = value_and_grads(name, "fused", xs0)
    torch.cuda.set_device(0)
    l1, g1 = value_and_grads(name, "fused", [x.to("cuda:1") for x in xs0])
    assert l1.device == torch.device("cuda:1") and all(g.device == torch.device("cuda:1") for g in g1)
    assert torch.cuda.current_device() == 0
    assert torch.equal(l1.cpu(), l0.cpu()) and all(torch.equal(a.cpu(), b.cpu()) for a, b in zip(g1, g0))


@pytest.mark.parametrize("name", list(OPS))
def test_side_stream(name):
    xs = make_inputs(name, 300_000 if name != "all_pairs" else 3000, torch.float32, device="cuda")
    l0, g0 = value_and_grads(name, "fused", xs)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        # inputs produced on the side stream right before the op: the op must run on it too
        ys = [(x * 2.0) * 0.5 for x in xs]
        l1, g1 = value_and_grads(name, "fused", ys)
    side.synchronize()
    assert torch.equal(l1, l0) and all(torch.equal(a, b) for a, b in zip(g1, g0))


@pytest.mark.parametrize("name", list(OPS))
def test_deterministic_bitwise(name):
    xs = make_inputs(name, 1_000_003 if name != "all_pairs" else 5001, torch.float32, device="cuda")
    l0, g0 = value_and_grads(name, "fused", xs)
    for _ in range(2):
        l1, g1 = value_and_grads(name, "fused", xs)
        assert torch.equal(l0, l1) and all(torch.equal(a, b) for a, b in zip(g0, g1))


@pytest.mark.parametrize("name", list(OPS))
def test_gradcheck_float64(name):
    xs = [x.requires_grad_(True) for x in make_inputs(name, 9, torch.float64, device="cuda")]
    assert torch.autograd.gradcheck(lambda *a: call(name, "fused", a, 1.0), xs)


def test_backward_under_torch_compile():
    r, f = make_inputs("sgan_d", 1000, torch.float32, device="cuda")

    def loss(r, f):
        return (kernels.relativistic_all_pairs(r, f, 1.0) + kernels.sgan_d(r, f)
                + kernels.relativistic_average(r, f, -1.0) + kernels.softplus_mean(f, -1.0)
                + kernels.relativistic_paired(r[:1000], f[:1000], 1.0))

    def grads(fn):
        a, b = r.clone().requires_grad_(), f.clone().requires_grad_()
        out = fn(a, b)
        out.backward()
        return out.detach(), a.grad, b.grad

    eager, compiled = grads(loss), grads(torch.compile(loss, fullgraph=True))
    for x, y in zip(eager, compiled):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=0)


@pytest.mark.parametrize("name,dtype,n", [("softplus_mean", torch.float32, 100_000_000),
                                          ("sgan_d", torch.bfloat16, 100_000_000),
                                          ("paired", torch.float16, 70_001), ("paired", torch.float32, 50_000_000),
                                          ("average", torch.float32, 50_000_000), ("all_pairs", torch.float32, 70_001),
                                          ("all_pairs", torch.float16, 70_001)])
def test_large(name, dtype, n):
    # Sized for an 80 GB GPU: elementwise ops at 1e8 logits (inputs, grads and the
    # float64 reference ~ 5 GB); all pairs at 70,001^2 pairs against a float64
    # reference computed in row chunks (cuda_helpers.all_pairs_chunked), never N x M.
    check_against_f64(name, make_inputs(name, n, dtype, device="cuda"), 1.0)


def test_all_pairs_matches_its_cpu_emulation():
    # The kernel runs tile_math.h; all_pairs_tile_emulate runs the same code on the host in
    # the same order. They differ only inside exp/log1p/rcp (an ulp), not in the algorithm.
    for n, m, scale in ((1031, 2053, 3.0), (2053, 1031, 3.0), (64, 70_000, 30.0), (2200, 17_000, 2.0)):
        r, f = make_inputs("all_pairs", n, torch.float32, device="cpu", m=m, scale=scale)
        want = torch.ops.lightning_gans.all_pairs_tile_emulate(r, f, 1.0)
        loss, row, col = torch.ops.lightning_gans.rel_all_pairs(r.cuda(), f.cuda(), 1.0, True)
        assert_rel(loss.double().cpu(), want[0], 1e-6, "loss vs emulation")
        assert_rel(row.cpu(), want[1], 1e-6, "row sums vs emulation")
        assert_rel(col.cpu(), want[2], 1e-6, "column sums vs emulation")


def test_all_pairs_legacy_kernel_agrees(monkeypatch):
    xs = make_inputs("all_pairs", 3001, torch.float32, device="cuda")
    lt, gt = value_and_grads("all_pairs", "fused", xs)
    monkeypatch.setenv("LIGHTNING_GANS_CUDA_ALL_PAIRS", "legacy")
    ll, gl = value_and_grads("all_pairs", "fused", xs)
    assert_rel(lt, ll, 1e-5, "loss tiled vs legacy")
    for a, b in zip(gt, gl):
        assert_rel(a, b, 1e-5, "grad tiled vs legacy")


def test_all_pairs_large_accuracy_against_chunked_float64():
    r, f = make_inputs("all_pairs", 8192, torch.float32, device="cuda", scale=2.0)
    got = kernels.relativistic_all_pairs(r, f - 1, 1.0, impl="fused")
    want = all_pairs_chunked(r.double(), (f - 1).double(), 1.0)[0]
    assert_rel(got, want, 1e-5, "all pairs 8192^2")


def test_direct_calls_with_bad_inputs_fail_clearly():
    ops = torch.ops.lightning_gans
    r, f = (x.cuda() for x in make_inputs("sgan_d", 100, torch.float32))
    g = torch.ones((), device="cuda")
    _, row, col = ops.rel_all_pairs(r, f, 1.0, True)
    with pytest.raises(RuntimeError, match="row must be on"):
        ops.rel_all_pairs_backward(g, r, f, row.cpu(), col, 1.0)
    with pytest.raises(RuntimeError, match="col must be"):
        ops.rel_all_pairs_backward(g, r, f, row, col.double(), 1.0)
    with pytest.raises(RuntimeError, match="wrong size|missing"):
        ops.rel_all_pairs_backward(g, r, f, row[:-1], col, 1.0)
    with pytest.raises(RuntimeError, match="grad must be on"):
        ops.rel_all_pairs_backward(g.cpu(), r, f, row, col, 1.0)
    _, stats = ops.rel_average(r, f, 1.0)
    with pytest.raises(RuntimeError, match="stats must be on"):
        ops.rel_average_backward(g, r, f, stats.cpu(), 1.0)
    with pytest.raises(RuntimeError, match="stats must have shape"):
        ops.rel_average_backward(g, r, f, stats[:3], 1.0)
    with pytest.raises(RuntimeError, match="g must be"):
        ops.softplus_mean_backward(g, r, torch.ones(100, device="cuda", dtype=torch.float64), 1.0)
    with pytest.raises(RuntimeError, match="g must have shape"):
        ops.rel_paired_backward(g, r, f[:100].clone(), torch.ones(7, device="cuda"), 1.0)
    with pytest.raises(RuntimeError, match="same device"):
        ops.sgan_d(r, f.cpu(), False)
    with pytest.raises(RuntimeError, match="1-D"):
        ops.softplus_mean(r[:, None], 1.0, False)


def test_elementwise_forwards_return_empty_saved_gradients():
    # The contract lets a device recompute in the backward; CUDA does (see ops_cuda.cpp).
    r, f = (x.cuda() for x in make_inputs("paired", 100, torch.float16))
    for out in (torch.ops.lightning_gans.softplus_mean(r, 1.0, True)[1:],
                torch.ops.lightning_gans.sgan_d(r, f, True)[1:], torch.ops.lightning_gans.rel_paired(r, f, 1.0, True)[1:]):
        assert all(t.numel() == 0 and t.dtype == torch.float32 for t in out)
    # ... and the backward ops also accept saved gradients in the accumulation dtype
    g = torch.full((100,), 0.25, device="cuda")
    dx = torch.ops.lightning_gans.softplus_mean_backward(torch.tensor(2.0, device="cuda"), r, g, 1.0)
    assert dx.dtype == torch.float16 and torch.equal(dx, torch.full_like(dx, 0.5))
