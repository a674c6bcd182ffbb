"""Penalties against closed forms (docs/theory.md §3, "Penalties"), written to kill the mutants that
tests/test_regularizers.py leaves alive (docs/testing.md): dtypes, shapes and messages."""
import pytest
import torch
from torch import nn

from lightning_gans.training import penalties as R


def test_wgan_gp_of_a_linear_critic_is_analytic():
    # T(x) = w·x: ∇T = w everywhere, so GP = λ (‖w‖ - 1)² whatever the interpolates.
    d = nn.Linear(3, 1, bias=False).double()
    with torch.no_grad():
        d.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]))  # ‖w‖ = 3
    real, fake = torch.randn(4, 3, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)
    gp = R.wgan_gp(d, real, fake, 10.0, eps=torch.rand(4, dtype=torch.float64))
    assert float(gp.detach()) == pytest.approx(10.0 * (3.0 - 1.0) ** 2)


def test_wgan_gp_interpolates_in_the_samples_dtype():
    # eps comes from the latent stream in float32; with bfloat16 samples and critic the interpolates must
    # be bfloat16 too (a float32 x̂ would not even pass through a bfloat16 critic).
    d = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)).to(torch.bfloat16)
    real, fake = torch.randn(3, 2).to(torch.bfloat16), torch.randn(3, 2).to(torch.bfloat16)
    gp = R.wgan_gp(d, real, fake, 1.0, eps=torch.rand(3))
    assert torch.isfinite(gp) and gp.dtype == torch.float32  # the gradient norm is taken in float32


def test_wgan_gp_on_images_mixes_per_sample():
    # eps has one value per sample, broadcast over (C, H, W): with D = sum of pixels, ∇D = 1 everywhere
    # and GP = λ(√(C·H·W) - 1)², independent of eps.
    d = lambda x: x.flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(2, 1, 2, 2, dtype=torch.float64), torch.randn(2, 1, 2, 2, dtype=torch.float64)
    gp = R.wgan_gp(d, real, fake, 2.0, eps=torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert float(gp.detach()) == pytest.approx(2.0 * (2.0 - 1.0) ** 2)


def test_input_gradients_keep_float64_and_lift_half():
    x = torch.randn(3, 2, dtype=torch.float64, requires_grad=True)
    g = R.input_gradients((x ** 2).sum(1), x)
    assert g.dtype == torch.float64 and g.shape == (3, 2)
    torch.testing.assert_close(g, 2 * x.detach())
    xh = torch.randn(3, 2).to(torch.bfloat16).requires_grad_(True)
    gh = R.input_gradients((xh * 3).sum(1), xh)
    assert gh.dtype == torch.float32
    torch.testing.assert_close(gh, torch.full((3, 2), 3.0))


def test_input_gradients_are_differentiable():
    # create_graph=True: the penalty itself has a gradient w.r.t. x (and so w.r.t. D's weights)
    x = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    g = R.input_gradients((x ** 3).sum(1), x)  # 3x²
    (gg,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(gg, 6 * x.detach())


def test_zero_centred_is_half_gamma_mean_squared_norm():
    x = torch.tensor([[1.0, 2.0], [0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    out = (x ** 2).sum(1)  # ∇ = 2x: squared norms 20 and 36
    assert float(R.zero_centred(out, x, 4.0).detach()) == pytest.approx(0.5 * 4.0 * (20 + 36) / 2)


def test_messages():
    with pytest.raises(ValueError, match=r"^inputs must require grad: call \.detach\(\)\.requires_grad_\(True\) "
                                         r"before the D forward$"):
        x = torch.randn(2, 2)
        R.input_gradients(x.sum(1), x)
    with pytest.raises(ValueError, match="^a lazy regularization interval must be >= 1, got -2$"):
        R.lazy_factor(3, -2)
