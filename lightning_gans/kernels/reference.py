"""Pure-torch reference of every fused op, written the way a user would write the loss.

Each function has the signature of its fused twin in `lightning_gans.kernels.ops`
(without `impl`). They are the test oracle and the fallback when the native
extension is missing. Half inputs are computed in float32 and the result is
cast back, as the kernels do. The losses are the standard GAN (Goodfellow et al.
2014) and the relativistic ones (Jolicoeur-Martineau 2018) in softplus form:
-log σ(t) = sp(-t), -log(1 - σ(t)) = sp(t).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["softplus_mean", "sgan_d", "relativistic_paired", "relativistic_all_pairs", "relativistic_average"]


def _acc(x: torch.Tensor) -> torch.Tensor:
    # Half precision accumulates in float32, like the kernels.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def softplus_mean(x: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """mean_k sp(sign * x_k)."""
    return F.softplus(sign * _acc(x.reshape(-1))).mean().to(x.dtype)


def sgan_d(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Standard GAN discriminator loss: mean sp(-T_r) + mean sp(T_f)."""
    r, f = _acc(real.reshape(-1)), _acc(fake.reshape(-1))
    return (F.softplus(-r).mean() + F.softplus(f).mean()).to(real.dtype)


def relativistic_paired(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """mean_i sp(sign * (T_f[i] - T_r[i])); N == M.

    sign=+1 is RSGAN's discriminator loss, sign=-1 its generator loss (h = sp(-t)).
    """
    r, f = _acc(real.reshape(-1)), _acc(fake.reshape(-1))
    return F.softplus(sign * (f - r)).mean().to(real.dtype)


def relativistic_all_pairs(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """(1/NM) sum_ij sp(sign * (T_f[j] - T_r[i])).

    Materialises the N x M matrix: this is exactly what the fused op avoids.
    """
    r, f = _acc(real.reshape(-1)), _acc(fake.reshape(-1))
    z = sign * (f[None, :] - r[:, None])  # (N, M)
    return F.softplus(z).mean().to(real.dtype)


def relativistic_average(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0) -> torch.Tensor:
    """RaSGAN: ½{mean_i sp(sign(m_f - T_r[i])) + mean_j sp(sign(T_f[j] - m_r))}.

    Gradients flow through the batch means m_r, m_f. sign=+1: discriminator,
    sign=-1: generator.
    """
    r, f = _acc(real.reshape(-1)), _acc(fake.reshape(-1))
    m_r, m_f = r.mean(), f.mean()
    loss = 0.5 * (F.softplus(sign * (m_f - r)).mean() + F.softplus(sign * (f - m_r)).mean())
    return loss.to(real.dtype)
