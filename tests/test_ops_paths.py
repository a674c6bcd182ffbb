"""Which path an op call takes, and the fake kernels torch.compile traces with (issue 15, mutation testing).

The three paths of every op in kernels/ops.py give the same loss, so value tests cannot tell them
apart: a fast path that silently falls back, a with_grad flag that is dropped (the backward then
recomputes what the forward could have saved) or impl="ref" running the kernel all pass them.
These tests spy on the module's handles (`_C.fast_*`, the native OpOverloads, `reference.*`)
and assert which ran, with which arguments. The expected paths are the module docstring's
contract: plain 1-D tensors on a device with kernels -> one `_C.fast_*` call; (N, 1) inputs ->
the Python checks, then the native op; impl="ref" -> the reference only.

The fake kernels are registered once at import (before any mutant is active), so the tests
capture them by running `_register_fakes` again against a recording `register_fake`, then
compare every fake's outputs (shape, dtype) with the real CPU op's on the same inputs; the CUDA
rule (elementwise forwards save nothing: csrc/cuda/ops_cuda.cpp returns `acc_empty(x, 0)`) is
checked on FakeTensorMode "cuda" tensors, which need no GPU.
"""
from unittest import mock

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import lightning_gans.kernels.ops as K
from lightning_gans.kernels import extension as _ext

pytestmark = pytest.mark.skipif(not _ext.available(), reason="native extension not built")

L = torch.ops.lightning_gans
# public op, its fast entry point, its native handle in ops.py, number of tensors, takes sign, takes with_grad
OPS = [
    ("softplus_mean", "fast_softplus_mean", "_sp_mean", 1, True, True),
    ("sgan_d", "fast_sgan_d", "_sgan_d", 2, False, True),
    ("relativistic_paired", "fast_rel_paired", "_paired", 2, True, True),
    ("relativistic_all_pairs", "fast_rel_all_pairs", "_all_pairs", 2, True, True),
    ("relativistic_average", "fast_rel_average", "_average", 2, True, False),
]
IDS = [o[0] for o in OPS]


class Calls:
    def __init__(self):
        self.log = []  # (tag, args, result)

    def wrap(self, tag, fn):
        def spy(*args):
            out = fn(*args)
            self.log.append((tag, args, out))
            return out
        return spy

    def tags(self):
        return [t for t, _, _ in self.log]


@pytest.fixture
def calls(monkeypatch):
    c, real_c = Calls(), K._C

    class FastSpy:
        def __getattr__(self, name):
            return c.wrap(name, getattr(real_c, name))

    monkeypatch.setattr(K, "_C", FastSpy())
    for _, _, native, *_ in OPS:
        monkeypatch.setattr(K, native, c.wrap(native, getattr(K, native)))
    for name, *_ in OPS:
        monkeypatch.setattr(K.reference, name, c.wrap("ref." + name, getattr(K.reference, name)))
    return c


def logits(n_tensors, shape=lambda n: (n,), grad=(True, True)):
    torch.manual_seed(0)
    return [torch.randn(*shape(3), dtype=torch.float64, requires_grad=g) for g in grad[:n_tensors]]


# ----------------------------------------------------------------------------- fast path
@pytest.mark.parametrize("impl", ["auto", "fused", None])
@pytest.mark.parametrize("name, fast, native, n, has_sign, _wg", OPS, ids=IDS)
def test_plain_1d_inputs_take_one_fast_call(calls, name, fast, native, n, has_sign, _wg, impl):
    ts = logits(n)
    args = ts + ([-0.5] if has_sign else [])
    out = getattr(K, name)(*args, **({} if impl is None else {"impl": impl}))
    assert calls.tags() == [fast]
    _, seen, result = calls.log[0]
    assert len(seen) == len(args) and all(a is b for a, b in zip(seen[:n], ts)) and list(seen[n:]) == args[n:]
    assert out is result
    torch.testing.assert_close(out, getattr(K.reference, name)(*args))


@pytest.mark.parametrize("name, fast, native, n, has_sign, _wg", [o for o in OPS if o[4]], ids=[o[0] for o in OPS if o[4]])
def test_default_sign_is_one(calls, name, fast, native, n, has_sign, _wg):
    ts = logits(n)
    getattr(K, name)(*ts)
    assert calls.tags() == [fast] and calls.log[0][1][n] == 1.0


# ----------------------------------------------------------------------------- checked native path
@pytest.mark.parametrize("impl", ["auto", "fused"])
@pytest.mark.parametrize("grad", ["first", "second", "none", "no_grad"])
@pytest.mark.parametrize("name, fast, native, n, has_sign, with_grad", OPS, ids=IDS)
def test_column_inputs_take_the_native_op_with_the_right_with_grad(calls, name, fast, native, n, has_sign,
                                                                   with_grad, grad, impl):
    if n == 1 and grad == "second":
        pytest.skip("one input")
    ts = logits(n, shape=lambda k: (k, 1), grad=(grad in ("first", "no_grad"), grad == "second"))
    args = ts + ([-0.5] if has_sign else [])
    with torch.set_grad_enabled(grad != "no_grad"):
        out = getattr(K, name)(*args, impl=impl)
    assert calls.tags() == [fast, native]  # the fast entry declines (N, 1) inputs
    assert calls.log[0][2] is None
    _, seen, result = calls.log[1]
    for t, s in zip(ts, seen[:n]):  # the (N,) views of the caller's tensors
        assert s.shape == (3,) and s.data_ptr() == t.data_ptr()
    if has_sign:
        assert seen[n] == -0.5
    if with_grad:
        assert seen[-1] is (grad in ("first", "second"))
    assert out is result[0]


@pytest.mark.parametrize("shape", [lambda k: (k,), lambda k: (k, 1)], ids=["1d", "column"])
@pytest.mark.parametrize("name, fast, native, n, has_sign, _wg", OPS, ids=IDS)
def test_ref_runs_only_the_reference(calls, name, fast, native, n, has_sign, _wg, shape):
    ts = logits(n, shape=shape)
    args = ts + ([-0.5] if has_sign else [])
    getattr(K, name)(*args, impl="ref")
    assert calls.tags() == ["ref." + name]
    assert all(s.shape == (3,) for s in calls.log[0][1][:n]) and list(calls.log[0][1][n:]) == args[n:]


@pytest.mark.parametrize("impl", ["auto", "fused", "ref"])
def test_paired_column_inputs_of_different_lengths_are_refused_by_name(impl):
    msg = r"paired pairing needs as many fake as real logits: real has N = 3, fake has M = 2 \(use pairing='all'"
    with pytest.raises(ValueError, match=msg):
        K.relativistic_paired(torch.randn(3, 1), torch.randn(2, 1), impl=impl)


def test_check_logits_names_the_type_and_keeps_1d_tensors():
    with pytest.raises(TypeError, match=r"^x must be a torch.Tensor of shape \(N,\) or \(N, 1\), got list$"):
        K.check_logits([1.0, 2.0], "x")
    t = torch.randn(4)
    assert K.check_logits(t, "x") is t  # no new view: one autograd node less per call
    c = torch.randn(4, 1)
    v = K.check_logits(c, "x")
    assert v.shape == (4,) and v.data_ptr() == c.data_ptr()


# ----------------------------------------------------------------------------- choosing the implementation
@pytest.fixture
def ext(monkeypatch):
    def set_(available=True, cuda=True):
        monkeypatch.setattr(_ext, "available", lambda: available)
        monkeypatch.setattr(_ext, "cuda_built", lambda: cuda)
        monkeypatch.setattr(_ext, "load_error", lambda: None if available else "no _C here")
    return set_


@pytest.mark.parametrize("cuda", [True, False])
def test_use_fused_by_device(ext, cuda):
    ext(available=True, cuda=cuda)
    dev = torch.device
    for d, ok in (("cpu", True), ("meta", True), ("cuda", cuda), ("mps", False), ("xla", False)):
        assert K._use_fused("auto", dev(d)) is ok, d
        assert K._use_fused("ref", dev(d)) is False, d
        if ok:
            assert K._use_fused("fused", dev(d)) is True, d
        else:
            with pytest.raises(RuntimeError, match=rf"^impl='fused' but the extension has no kernel for device {d}$"):
                K._use_fused("fused", dev(d))


def test_use_fused_without_the_extension(ext):
    ext(available=False, cuda=False)
    assert K._use_fused("auto", torch.device("cpu")) is False
    assert K._use_fused("ref", torch.device("cpu")) is False
    with pytest.raises(RuntimeError, match=r"^impl='fused' but the native extension is unavailable: no _C here$"):
        K._use_fused("fused", torch.device("cpu"))
    with pytest.raises(ValueError, match=r"impl must be one of \('auto', 'fused', 'ref'\), got 'AUTO'"):
        K._use_fused("AUTO", torch.device("cpu"))


# ----------------------------------------------------------------------------- fake kernels
@pytest.fixture
def fakes():
    store = {}

    def register_fake(name):
        def keep(fn):
            store[name] = fn
            return fn
        return keep

    with mock.patch.object(torch.library, "register_fake", register_fake):
        K._register_fakes()
    return store


FORWARDS = {  # op -> (arguments after the tensors, as a function of with_grad), number of tensors
    "softplus_mean": (lambda wg: (-0.5, wg), 1),
    "sgan_d": (lambda wg: (wg,), 2),
    "rel_paired": (lambda wg: (-0.5, wg), 2),
    "rel_all_pairs": (lambda wg: (-0.5, wg), 2),
    "rel_average": (lambda wg: (-0.5,), 2),
}
DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]


def test_every_op_has_a_fake(fakes):
    names = {f"lightning_gans::{op}{suffix}" for op in FORWARDS for suffix in ("", "_backward")}
    assert set(fakes) == names
    for name in names:
        assert hasattr(L, name.split("::")[1])


def summary(outs):
    outs = outs if isinstance(outs, tuple) else (outs,)
    return [(tuple(o.shape), o.dtype) for o in outs]


def inputs(n_tensors, dtype, paired):
    torch.manual_seed(0)
    return [torch.randn(3 if (i == 0 or paired) else 2, dtype=dtype) for i in range(n_tensors)]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("with_grad", [True, False])
@pytest.mark.parametrize("op", list(FORWARDS))
def test_fakes_match_the_cpu_ops_forward_and_backward(fakes, op, with_grad, dtype):
    extra, n = FORWARDS[op]
    ts = inputs(n, dtype, paired=op == "rel_paired")
    real_out = getattr(L, op)(*ts, *extra(with_grad))
    fake_out = fakes[f"lightning_gans::{op}"](*[t.to("meta") for t in ts], *extra(with_grad))
    assert summary(fake_out) == summary(real_out)
    assert all(o.device.type == "meta" for o in fake_out)
    if op == "rel_all_pairs" and not with_grad:
        return  # its backward needs the row/col sums
    # backward: (grad, tensors..., saved..., [sign]) as in the schema; the fake's outputs are like the inputs
    sign = () if op == "sgan_d" else (-0.5,)
    bargs = (torch.ones((), dtype=dtype), *ts, *real_out[1:], *sign)
    real_grads = getattr(L, op + "_backward")(*bargs)
    fake_grads = fakes[f"lightning_gans::{op}_backward"](*[a.to("meta") if torch.is_tensor(a) else a for a in bargs])
    assert summary(fake_grads) == summary(real_grads)


@pytest.mark.parametrize("with_grad", [True, False])
def test_cuda_fakes_save_no_elementwise_gradient(fakes, with_grad):
    """CUDA elementwise forwards return an empty g whatever with_grad says; all-pairs saves (N,), (M,) if asked."""
    with FakeTensorMode():
        r = torch.empty(3, device="cuda", dtype=torch.float16)
        f = torch.empty(2, device="cuda", dtype=torch.float16)
        got = {
            "softplus_mean": fakes["lightning_gans::softplus_mean"](r, 1.0, with_grad),
            "sgan_d": fakes["lightning_gans::sgan_d"](r, f, with_grad),
            "rel_paired": fakes["lightning_gans::rel_paired"](r, r, 1.0, with_grad),
            "rel_all_pairs": fakes["lightning_gans::rel_all_pairs"](r, f, 1.0, with_grad),
        }
        devices = {o.device.type for outs in got.values() for o in outs}
    k = 3 if with_grad else 0
    assert summary(got["softplus_mean"]) == [((), torch.float16), ((0,), torch.float32)]
    assert summary(got["sgan_d"]) == [((), torch.float16), ((0,), torch.float32), ((0,), torch.float32)]
    assert summary(got["rel_paired"]) == [((), torch.float16), ((0,), torch.float32)]
    assert summary(got["rel_all_pairs"]) == [((), torch.float16), ((k,), torch.float32), ((2 if k else 0,), torch.float32)]
    assert devices == {"cuda"}


def test_fakes_name_the_argument_on_another_device(fakes):
    cpu, meta = torch.randn(3), torch.randn(3, device="meta")
    g = torch.empty(0)
    with pytest.raises(ValueError, match=r"^fake must be on cpu like real, got meta$"):
        fakes["lightning_gans::sgan_d"](cpu, meta, True)
    with pytest.raises(ValueError, match=r"^g must be on cpu like x, got meta$"):
        fakes["lightning_gans::softplus_mean_backward"](torch.ones(()), cpu, g.to("meta"), 1.0)
    with pytest.raises(ValueError, match=r"^grad must be on meta like real, got cpu$"):
        fakes["lightning_gans::rel_average_backward"](torch.ones(()), meta, meta, torch.empty(4, device="meta"), 1.0)
    assert summary(fakes["lightning_gans::rel_average_backward"](
        torch.ones((), device="meta"), meta, meta, torch.empty(4, device="meta"), 1.0)) == [((3,), torch.float32)] * 2
