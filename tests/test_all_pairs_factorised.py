"""The CPU all-pairs kernel's factorised path (csrc/cpu/all_pairs_impl.h).

For float accumulation it computes e^{z_ij} = a_j b_i and Σ_j sp(z_ij) as the log
of a running product, on (row, column-tile) blocks whose z lie in [-60, 20]; the
rest take the exact per-pair path. These tests aim inputs at each regime and at
their boundary, against the float64 reference, values and gradients.
"""
import pytest
import torch

from lightning_gans import kernels as ops
from lightning_gans.kernels import extension as _ext
from lightning_gans.kernels import reference

pytestmark = pytest.mark.skipif(not _ext.available(), reason="native extension not built")


def errors(r, f, sign=1.0):
    """Relative errors (loss, grad real, grad fake) of the fused float op against float64."""
    r32, f32 = r.float().requires_grad_(), f.float().requires_grad_()
    loss = ops.relativistic_all_pairs(r32, f32, sign, impl="fused")
    g = torch.autograd.grad(loss, (r32, f32))
    r64, f64 = r32.detach().double().requires_grad_(), f32.detach().double().requires_grad_()
    loss64 = reference.relativistic_all_pairs(r64, f64, sign)
    g64 = torch.autograd.grad(loss64, (r64, f64))
    rel = lambda a, b: float((a.detach().double() - b.detach()).abs().max() / b.detach().abs().max().clamp_min(1e-300))
    return rel(loss, loss64), rel(g[0], g64[0]), rel(g[1], g64[1])


def randn(n, seed, scale=1.0, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=torch.float64) * scale + shift


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize(
    "case",
    [
        "typical",  # every block factorised
        "wide",  # |z| up to ~100: rows mix both paths across tiles
        "offset",  # large common offset: the per-tile shift keeps a_j, b_i finite
        "tiny",  # every z << 0: sp(z) ~ e^z, relative precision of the product form
        "huge",  # every z >> 0: exact path
        "boundary",  # z straddles the 20 / -60 limits of the fast path
    ],
)
def test_regimes_match_float64(case, sign):
    n, m = 1031, 2053  # odd sizes: several column tiles, vector and scalar tails
    r, f = randn(n, 1), randn(m, 2)
    if case == "wide":
        r, f = r * 30, f * 30
    elif case == "offset":
        r, f = r + 1000.0, f + 1000.5
    elif case == "tiny":
        r, f = r * 0.5 + 40 * sign, f * 0.5
    elif case == "huge":
        r, f = r * 0.5 - 40 * sign, f * 0.5
    elif case == "boundary":
        r, f = r * 0.1 + torch.where(torch.arange(n) % 2 == 0, -19.9, 59.9).double() * sign, f * 0.1
    for e, what in zip(errors(r, f, sign), ("loss", "grad real", "grad fake")):
        assert e <= 1e-5, f"{case}: {what} relative error {e:.3g} > 1e-5"


@pytest.mark.parametrize("c", [0.05, 1.0, 4.99, 5.01, 6.5, 12.0, 19.99])
def test_products_at_their_length_bound(c):
    """Every pair of a row at the tile's maximum: each log1p covers the longest product the kernel
    allows (K factors with K·sp(z_max) <= 85, ~e^84 here), so a bound set too high overflows float."""
    r = torch.zeros(37, dtype=torch.float64) - torch.arange(37, dtype=torch.float64) * 1e-3
    f = torch.full((4099,), c, dtype=torch.float64)
    for e, what in zip(errors(r, f), ("loss", "grad real", "grad fake")):
        assert e <= 2e-6, f"z = {c}: {what} relative error {e:.3g} > 2e-6"


def test_low_precision_dtypes_use_float_accumulation():
    r, f = randn(777, 3), randn(513, 4)
    for dtype in (torch.bfloat16, torch.float16):
        rl, fl = r.to(dtype), f.to(dtype)
        fused = ops.relativistic_all_pairs(rl, fl, 1.0, impl="fused")
        ref = reference.relativistic_all_pairs(rl.double(), fl.double(), 1.0)
        assert fused.dtype == dtype
        assert abs(float(fused) - float(ref)) <= 1e-2 * abs(float(ref))


def test_nan_in_one_tile_only_propagates():
    r, f = randn(64, 5).float(), randn(3000, 6).float()
    f[2500] = float("nan")  # third column tile; the first two still take the fast path
    r.requires_grad_(), f.requires_grad_()
    loss = ops.relativistic_all_pairs(r, f, 1.0, impl="fused")
    gr, gf = torch.autograd.grad(loss, (r, f))
    assert torch.isnan(loss)
    assert torch.isnan(gr).all() and torch.isnan(gf[2500])
    assert torch.isfinite(gf[:2048]).all()


def test_infinite_logits_take_the_exact_path():
    r = torch.tensor([0.0, float("inf"), -1.0]).requires_grad_()
    f = torch.tensor([1.0, 2.0, float("-inf"), 0.5] * 3).requires_grad_()
    loss = ops.relativistic_all_pairs(r, f, 1.0, impl="fused")
    ref = reference.relativistic_all_pairs(r.detach(), f.detach(), 1.0)
    torch.testing.assert_close(loss, ref)
