"""Bad input raises errors that name the argument; the package degrades to the
reference path (with one warning) when the extension is unavailable."""
import os
import subprocess
import sys

import pytest
import torch

from lightning_gans import kernels as ops
from lightning_gans.kernels import extension as _ext

PAIR_OPS = [ops.sgan_d, ops.relativistic_paired, ops.relativistic_all_pairs, ops.relativistic_average]


@pytest.mark.parametrize("impl", ["auto", "ref"])
@pytest.mark.parametrize("op", PAIR_OPS, ids=lambda f: f.__name__)
def test_bad_shapes_dtypes_devices(op, impl):
    ok = torch.randn(4)
    cases = [
        ((torch.randn(4, 2), ok), ValueError, r"real must have shape \(N,\) or \(N, 1\), got \(4, 2\)"),
        ((ok, torch.randn(())), ValueError, r"fake must have shape"),
        ((ok, torch.randn(2, 2, 1)), ValueError, r"fake must have shape"),
        ((torch.empty(0), ok), ValueError, r"real is an empty batch"),
        ((ok, torch.arange(4)), TypeError, r"fake must have a floating dtype.*torch.int64"),
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


def test_bad_impl_and_sign():
    with pytest.raises(ValueError, match=r"impl must be one of"):
        ops.softplus_mean(torch.randn(3), impl="cuda")
    with pytest.raises(ValueError, match=r"sign must be a finite number"):
        ops.softplus_mean(torch.randn(3), float("nan"))
    with pytest.raises(ValueError, match=r"x is an empty batch"):
        ops.softplus_mean(torch.randn(0, 1))


@pytest.mark.skipif(not _ext.available(), reason="native extension missing")
def test_native_ops_check_their_arguments_too():
    L = torch.ops.lightning_gans
    with pytest.raises(RuntimeError, match="real must be 1-D"):
        L.sgan_d(torch.randn(3, 1), torch.randn(3), False)
    with pytest.raises(RuntimeError, match="empty batch"):
        L.softplus_mean(torch.randn(0), 1.0, True)
    with pytest.raises(RuntimeError, match="N == M"):
        L.rel_paired(torch.randn(3), torch.randn(4), 1.0, False)
    with pytest.raises(RuntimeError, match="float32, float64, float16 or bfloat16"):
        L.rel_all_pairs(torch.ones(3, dtype=torch.int32), torch.ones(3, dtype=torch.int32), 1.0, False)


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
        "import torch, lightning_gans.ops as o, lightning_gans.reference as r\n"
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
