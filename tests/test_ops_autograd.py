"""The ops' C++ autograd (csrc/autograd.cpp) and their fake kernels: opcheck on every forward
and backward op, torch.compile (fullgraph, aot_eager and inductor) through forward and
backward, bitwise determinism across runs and thread counts, the save-or-recompute choice,
and a clear error on double backward."""
import pytest
import torch

from lightning_gans import kernels as ops
from lightning_gans.kernels import extension as _ext
from test_ops import (ELEMENTWISE, OPS, _opcheck_cases, call, check_against_reference, make_inputs,
                      raw_value_and_grads, value_and_grads)

pytestmark = pytest.mark.skipif(not _ext.available(), reason=f"native extension missing: {_ext.load_error()}")

OP_NAMES = {"softplus_mean": "softplus_mean", "sgan_d": "sgan_d", "paired": "rel_paired", "all_pairs": "rel_all_pairs",
            "average": "rel_average"}


@pytest.mark.parametrize("case", range(len(_opcheck_cases())))
def test_opcheck(case):
    op, args = _opcheck_cases()[case]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize("name", list(OPS))
def test_autograd_is_one_cpp_node(name):
    xs = [x.requires_grad_() for x in make_inputs(name, 50, torch.float32)]
    loss = call(name, "fused", xs)
    # one C++ node straight on the loss, whose next functions are the inputs' own (no Python
    # autograd.Function, no view or reshape node in between)
    assert loss.grad_fn.name() == f"lightning_gans::{OP_NAMES[name]}_backward"
    assert type(loss.grad_fn).__name__ == "CppFunction"
    assert [type(f).__name__ for f, _ in loss.grad_fn.next_functions] == ["AccumulateGrad"] * len(xs)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_saved_gradient_is_in_accumulation_dtype_or_absent(name):
    # Whatever the autograd kernel decides at each N, the forward's saved pieces are either
    # empty (recompute) or N values in float32 (half inputs) / float64: never rounded to half.
    L = torch.ops.lightning_gans
    for dtype, acc in ((torch.float16, torch.float32), (torch.bfloat16, torch.float32), (torch.float64, torch.float64)):
        for n in (64, 4096, 1 << 18, (1 << 22) + 1):
            xs = [x.requires_grad_() for x in make_inputs(name, n, dtype)]
            if name == "softplus_mean":
                saved, like = L.softplus_mean(xs[0], 1.0, True)[1:], xs
            elif name == "sgan_d":
                saved, like = L.sgan_d(*xs, True)[1:], xs
            else:
                saved, like = L.rel_paired(*xs, 1.0, True)[1:], xs[1:]  # g is d/dfake
            for g, x in zip(saved, like):
                assert g.numel() == 0 or (g.shape == x.shape and g.dtype == acc), (n, g.shape, g.dtype)


def test_with_grad_is_honoured_without_autograd():
    # No gradient to track: the op returns the pieces exactly when asked (a graph traced by
    # torch.compile replays its forward under no_grad and its backward graph reads them), and
    # the Python wrappers ask only when autograd will need them.
    L = torch.ops.lightning_gans
    x = torch.randn(1000)
    assert L.softplus_mean(x, 1.0, True)[1].numel() == 1000
    assert L.softplus_mean(x, 1.0, False)[1].numel() == 0
    assert L.rel_all_pairs(x, x, 1.0, True)[1].numel() == 1000
    with torch.no_grad():
        assert L.sgan_d(x.requires_grad_(), x, False)[1].numel() == 0
        assert L.rel_all_pairs(x, x, 1.0, True)[2].numel() == 1000


class _RecordWithGrad(torch.utils._python_dispatch.TorchDispatchMode):
    """Records the with_grad argument each lightning_gans forward reaches its kernel with."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.namespace == "lightning_gans" and isinstance(args[-1], bool):
            self.seen.append((func.__name__.split(".")[0], args[-1]))
        return func(*args, **(kwargs or {}))


def test_gradient_pieces_only_when_autograd_needs_them():
    x, y = torch.randn(10), torch.randn(10)
    xg = x.clone().requires_grad_()
    with _RecordWithGrad() as rec:
        ops.softplus_mean(x)  # no input requires grad
        ops.relativistic_all_pairs(x, y)
        with torch.no_grad():
            ops.sgan_d(xg, y)
            ops.relativistic_all_pairs(xg, y)
        ops.relativistic_all_pairs(xg, y)  # all pairs always keeps its sums for the backward
        ops.relativistic_all_pairs(x.reshape(10, 1), y.requires_grad_())  # the checked (non-fast) path too
    assert rec.seen == [("softplus_mean", False), ("rel_all_pairs", False), ("sgan_d", False),
                        ("rel_all_pairs", False), ("rel_all_pairs", True), ("rel_all_pairs", True)]


def _all_losses(r, f):
    return (ops.sgan_d(r, f) + ops.softplus_mean(f, -1.0) + ops.relativistic_paired(r, f, 1.0)
            + ops.relativistic_all_pairs(r, f, -1.0) + ops.relativistic_average(r, f, 1.0))


def _eager_and_compiled(fn, r0, f0, **compile_kw):
    compiled = torch.compile(fn, fullgraph=True, **compile_kw)
    outs = []
    for f in (fn, compiled):
        r, fk = r0.clone().requires_grad_(), f0.clone().requires_grad_()
        value = f(r, fk)
        value.backward()
        outs.append((value.detach(), r.grad, fk.grad))
    return outs


def _elementwise_losses(r, f):
    return ops.sgan_d(r, f) + ops.softplus_mean(f, -1.0) + ops.relativistic_paired(r, f, 1.0)


@pytest.mark.parametrize("fn,n", [(_all_losses, 257), (_elementwise_losses, (1 << 23) + 3)], ids=["saved", "recomputed"])
def test_torch_compile_fullgraph_aot_eager(fn, n):
    # Small N traces the saved-gradient backward, large N the recomputing one (see
    # test_save_below_and_recompute_above_a_size); aot_eager runs the same ops, so results are
    # bitwise equal.
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(5)
    r0, f0 = torch.randn(n, generator=g), torch.randn(n, generator=g)
    eager, compiled = _eager_and_compiled(fn, r0, f0, backend="aot_eager")
    for a, b in zip(eager, compiled):
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_save_below_and_recompute_above_a_size(name):
    # The autograd kernel saves the gradient at GAN batch sizes and recomputes it for huge N
    # (the threshold, measured, is in csrc/autograd.cpp); both give the reference's gradients.
    for n, saved in ((64, True), ((1 << 23) + 1, False)):
        xs = make_inputs(name, n, torch.float32)
        with _RecordWithGrad() as rec:
            loss, grads = value_and_grads(name, "fused", xs)
        assert rec.seen[0][1] is saved, (n, rec.seen)
        check_against_reference(name, torch.float32, loss, grads, xs, -1.0, what=f"{name} n={n}")


def test_torch_compile_inductor_no_graph_break():
    def loss(r, f):
        return (ops.relativistic_all_pairs(r, f, 1.0) * 0.5 + ops.sgan_d(r, f).square()
                + ops.relativistic_paired(r, f[:100], -1.0) * 3 + ops.softplus_mean(r, 1.0).exp()
                + ops.relativistic_average(r, f, -1.0))

    torch._dynamo.reset()
    r0, f0 = torch.randn(100), torch.randn(150)
    eager, compiled = _eager_and_compiled(loss, r0, f0)
    for a, b in zip(eager, compiled):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("name", list(OPS))
def test_deterministic_across_runs_and_threads(name):
    sizes = (20011,) if name == "all_pairs" else (999, 20011, 300007, (1 << 22) + 5)  # saved and recomputed
    threads = torch.get_num_threads()
    for n in sizes:
        xs = make_inputs(name, n, torch.float32)
        results = []
        try:
            for t in (1, 2, 2):
                torch.set_num_threads(t)
                results.append(value_and_grads(name, "fused", xs))
                if name in ELEMENTWISE:
                    results += [raw_value_and_grads(name, xs, -1.0, s)[:2] for s in (True, False)]
        finally:
            torch.set_num_threads(threads)
        k = 3 if name in ELEMENTWISE else 1  # compare like with like: same path, other threads
        for i, (loss, grads) in enumerate(results[k:]):
            l0, g0 = results[i % k]
            assert torch.equal(loss, l0), (n, i)
            for a, b in zip(grads, g0):
                assert torch.equal(a, b), (n, i)


@pytest.mark.parametrize("name", list(OPS))
def test_double_backward_raises_instead_of_silent_zero(name):
    xs = [x.requires_grad_(True) for x in make_inputs(name, 5, torch.float64)]
    grads = torch.autograd.grad(call(name, "fused", xs), xs, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward through the fused op lightning_gans::"):
        torch.autograd.grad(sum(g.sum() for g in grads), xs)


def test_first_backward_with_create_graph_still_works():
    # create_graph alone (as R1 code paths do around a loss) must not raise; only differentiating
    # the loss gradient again does.
    x = torch.randn(6, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(ops.softplus_mean(x, 1.0, impl="fused"), x, create_graph=True)
    torch.testing.assert_close(g.detach(), torch.sigmoid(x.detach()) / 6)
