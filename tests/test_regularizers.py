"""R1, R2 and WGAN-GP against plain per-sample autograd, and lazy intervals (docs/theory.md, "Penalties")."""
import pytest
import torch
from torch import nn

from lightning_gans.training import penalties as R


def make_d(dim=3, seed=0):
    torch.manual_seed(seed)
    # tanh makes the input gradient depend on the weights non-linearly, so the double backward is exercised
    return nn.Sequential(nn.Linear(dim, 8), nn.Tanh(), nn.Linear(8, 1)).double()


def per_sample_grad(d, x):
    """∇_x T(x_i) one sample at a time: the plain autograd computation the batched one must match."""
    rows = []
    for xi in x:
        xi = xi.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(d(xi[None]).sum(), xi, create_graph=True)
        rows.append(g.flatten())
    return torch.stack(rows)


def param_grads(d, value):
    # the last bias never reaches ∇_x T: its gradient is zero, not missing
    return torch.autograd.grad(value, list(d.parameters()), allow_unused=True, materialize_grads=True)


@pytest.mark.parametrize("which", ["r1", "r2"])
def test_zero_centred_value_and_gradient_match_plain_autograd(which):
    d, gamma = make_d(), 3.0
    x = torch.randn(6, 3, dtype=torch.float64)
    xi = x.clone().requires_grad_(True)
    got = R.zero_centred(d(xi), xi, gamma)  # R1 on real samples, R2 on fakes: the same formula
    want = 0.5 * gamma * per_sample_grad(d, x).square().sum(1).mean()
    torch.testing.assert_close(got, want)
    for a, b in zip(param_grads(d, got), param_grads(d, want)):
        torch.testing.assert_close(a, b)


def test_r1_of_a_linear_critic_is_analytic():
    # T(x) = w·x + b: ∇_x T = w, so R1 = (γ/2)‖w‖² and ∂R1/∂w = γ w, ∂R1/∂b = 0.
    d = nn.Linear(4, 1).double()
    x = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    r1 = R.zero_centred(d(x), x, gamma=2.5)
    w = d.weight.detach().flatten()
    torch.testing.assert_close(r1, 0.5 * 2.5 * w.square().sum())
    gw, gb = param_grads(d, r1)
    torch.testing.assert_close(gw.flatten(), 2.5 * w)
    torch.testing.assert_close(gb, torch.zeros_like(gb))


def test_images_are_flattened_per_sample():
    d = nn.Sequential(nn.Conv2d(2, 3, 3), nn.Tanh(), nn.Flatten(), nn.Linear(3 * 4 * 4, 1)).double()
    x = torch.randn(3, 2, 6, 6, dtype=torch.float64)
    xi = x.clone().requires_grad_(True)
    got = R.zero_centred(d(xi), xi, 1.0)
    torch.testing.assert_close(got, 0.5 * per_sample_grad(d, x).square().sum(1).mean())


def test_wgan_gp_value_and_gradient_match_plain_autograd():
    d, lam = make_d(), 10.0
    real, fake = torch.randn(5, 3, dtype=torch.float64), torch.randn(7, 3, dtype=torch.float64)
    eps = torch.rand(5, dtype=torch.float64)
    got = R.wgan_gp(d, real, fake, lam, eps=eps)
    x_hat = eps[:, None] * real + (1 - eps[:, None]) * fake[:5]  # first min(N, M) samples
    want = lam * (per_sample_grad(d, x_hat).norm(dim=1) - 1).square().mean()
    torch.testing.assert_close(got, want)
    for a, b in zip(param_grads(d, got), param_grads(d, want)):
        torch.testing.assert_close(a, b)


def test_penalties_do_not_reach_the_generator():
    g, d = nn.Linear(2, 3).double(), make_d()
    fake = g(torch.randn(4, 2, dtype=torch.float64)).detach().requires_grad_(True)
    R.zero_centred(d(fake), fake, 1.0).backward()
    assert g.weight.grad is None and d[0].weight.grad is not None


def test_fp16_autocast_penalty_is_finite_and_close_to_fp32():
    # the inner gradient is not multiplied by a GradScaler's 2^16 (it would overflow fp16); it stays O(1)
    d = make_d().float()
    x = torch.randn(16, 3)
    xi = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.float16):
        out = d(xi)
        assert out.dtype == torch.float16
        half = R.zero_centred(out, xi, 1.0)
    xf = x.clone().requires_grad_(True)
    full = R.zero_centred(d(xf), xf, 1.0)
    assert half.dtype == torch.float32 and torch.isfinite(half)
    torch.testing.assert_close(half, full, rtol=1e-2, atol=1e-4)


def test_input_without_grad_is_rejected():
    d, x = make_d(), torch.randn(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="requires_grad_"):
        R.zero_centred(d(x), x, 1.0)


def test_lazy_factor():
    assert [R.lazy_factor(s, 3) for s in range(7)] == [3, 0, 0, 3, 0, 0, 3]
    assert [R.lazy_factor(s, 1) for s in range(3)] == [1, 1, 1]
    with pytest.raises(ValueError, match=">= 1"):
        R.lazy_factor(0, 0)
