"""Bad input raises errors that name the argument and say what was expected, on every path
(the fused fast path, whose checks are in C++; the Python checks; the raw native ops, forward
and backward); the package degrades to the reference path (with one warning) when the
extension is unavailable."""
import os
import subprocess
import sys

import pytest
import torch

from lightning_gans import kernels as ops
from lightning_gans.kernels import extension as _ext

PAIR_OPS = [ops.sgan_d, ops.relativistic_paired, ops.relativistic_all_pairs, ops.relativistic_average]


@pytest.mark.parametrize("impl", ["auto", "fused", "ref"])
@pytest.mark.parametrize("op", PAIR_OPS, ids=lambda f: f.__name__)
def test_bad_shapes_dtypes_devices(op, impl):
    ok = torch.randn(4)
    cases = [
        ((torch.randn(4, 2), ok), ValueError, r"real must have shape \(N,\) or \(N, 1\), got \(4, 2\)"),
        ((ok, torch.randn(())), ValueError, r"fake must have shape"),
        ((ok, torch.randn(2, 2, 1)), ValueError, r"fake must have shape"),
        ((torch.empty(0), ok), ValueError, r"real is an empty batch"),
        ((ok, torch.arange(4)), TypeError, r"fake must have a floating dtype.*torch.int64"),
        ((torch.ones(4, dtype=torch.complex64), ok), TypeError, r"real must have a floating dtype.*torch.complex64"),
        ((ok, torch.empty(0, 1)), ValueError, r"fake is an empty batch"),
        ((ok, ok.double()), TypeError, r"same dtype, got real torch.float32 and fake torch.float64"),
        ((ok, torch.randn(4, device="meta")), ValueError, r"same device.*meta"),
        ((ok.numpy(), ok), TypeError, r"real must be a torch.Tensor"),
    ]
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            op(*args, impl=impl)


def test_paired_needs_equal_sizes():
    with pytest.raises(ValueError, match=r"real has N = 4, fake has M = 5"):
        ops.relativistic_paired(torch.randn(4), torch.randn(5))


@pytest.mark.parametrize("impl", ["auto", "fused", "ref"])
def test_bad_single_input_and_sign(impl):
    cases = [
        ((torch.randn(3, 2),), ValueError, r"x must have shape \(N,\) or \(N, 1\), got \(3, 2\)"),
        ((torch.randn(0),), ValueError, r"x is an empty batch"),
        ((torch.randn(0, 1),), ValueError, r"x is an empty batch"),
        ((torch.arange(3),), TypeError, r"x must have a floating dtype.*torch.int64"),
        (([1.0, 2.0],), TypeError, r"x must be a torch.Tensor"),
        ((torch.randn(3), float("nan")), ValueError, r"sign must be a finite number, got nan"),
        ((torch.randn(3), float("inf")), ValueError, r"sign must be a finite number, got inf"),
    ]
    for args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            ops.softplus_mean(*args, impl=impl)
    with pytest.raises(ValueError, match=r"sign must be a finite number"):
        ops.relativistic_paired(torch.randn(3), torch.randn(3), float("-inf"), impl=impl)


def test_bad_impl():
    with pytest.raises(ValueError, match=r"impl must be one of"):
        ops.softplus_mean(torch.randn(3), impl="cuda")
    with pytest.raises(ValueError, match=r"impl must be one of"):
        ops.sgan_d(torch.randn(3), torch.randn(3), impl="")


@pytest.mark.skipif(not _ext.available(), reason="native extension missing")
def test_native_ops_check_their_arguments_too():
    L = torch.ops.lightning_gans
    x, i32 = torch.randn(3), torch.ones(3, dtype=torch.int32)
    cases = [
        (L.sgan_d, (torch.randn(3, 1), x, False), ValueError, r"real must be 1-D \(N,\).*got shape \(3, 1\)"),
        (L.softplus_mean, (torch.randn(0), 1.0, True), ValueError, r"x is an empty batch \(N = 0\)"),
        (L.softplus_mean, (x, float("nan"), False), ValueError, r"sign must be a finite number"),
        (L.rel_paired, (x, torch.randn(4), 1.0, False), ValueError, r"real has N = 3, fake has M = 4"),
        (L.rel_all_pairs, (i32, i32, 1.0, False), TypeError, r"real must have a floating dtype.*torch.int32"),
        (L.rel_average, (x, x.double(), 1.0), TypeError, r"same dtype, got real torch.float32 and fake torch.float64"),
        (L.sgan_d, (x, torch.randn(3, device="meta"), False), ValueError, r"same device, got real on cpu and fake on meta"),
    ]
    for op, args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            op(*args)


@pytest.mark.skipif(not _ext.available(), reason="native extension missing")
def test_native_backward_ops_check_their_arguments():
    L = torch.ops.lightning_gans
    x, grad = torch.randn(5), torch.tensor(1.0)
    cases = [
        (L.softplus_mean_backward, (torch.ones(2), x, torch.empty(0), 1.0), ValueError,
         r"grad \(the upstream gradient of the 0-d loss\) must have one element, got shape \(2,\)"),
        (L.softplus_mean_backward, (grad, x, torch.ones(4), 1.0), ValueError,
         r"g must be empty or have shape \(5,\) like its logits, got \(4,\)"),
        (L.softplus_mean_backward, (grad, x.half(), torch.ones(5).half(), 1.0), TypeError,
         r"g must be in the accumulation dtype torch.float32 for torch.float16 logits, got torch.float16"),
        (L.sgan_d_backward, (grad, x, x, torch.ones(5), torch.ones(5, dtype=torch.float64)), TypeError,
         r"g_fake must be in the accumulation dtype torch.float32"),
        (L.rel_paired_backward, (grad, x, x, torch.ones(5, 1), 1.0), ValueError, r"g must be empty or have shape \(5,\)"),
        (L.rel_paired_backward, (grad, x, torch.randn(6), torch.empty(0), 1.0), ValueError, r"real has N = 5, fake has M = 6"),
        (L.rel_all_pairs_backward, (grad, x, x, torch.empty(0), torch.empty(0), 1.0), RuntimeError,
         r"row/col sums missing"),
        (L.rel_average_backward, (grad, x, x, torch.ones(3, dtype=torch.float64), 1.0), ValueError,
         r"stats must be the 4 float64 statistics rel_average returned, got shape \(3,\)"),
        (L.softplus_mean_backward, (torch.tensor(1.0, device="meta"), x, torch.empty(0), 1.0), ValueError,
         r"grad must be on cpu like x, got meta"),
    ]
    for op, args, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            op(*args)


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-W", "default", "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fallback_warns_once_and_matches_reference():
    code = (
        "import torch, lightning_gans.kernels as o, lightning_gans.kernels.reference as r\n"
        "x = torch.randn(7, 1)\n"
        "for _ in range(3): v = o.softplus_mean(x, -1.0)\n"
        "assert torch.equal(v, r.softplus_mean(x, -1.0))\n"
        "try:\n    o.softplus_mean(x, impl='fused')\nexcept RuntimeError as e:\n    print('FUSED-ERROR', e)\n"
    )
    p = _run(code, LIGHTNING_GANS_DISABLE_EXT="1")
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("native extension unavailable") == 1, p.stderr
    assert "LIGHTNING_GANS_DISABLE_EXT" in p.stderr
    assert "FUSED-ERROR impl='fused' but the native extension is unavailable" in p.stdout
