"""Discriminator gradient penalties (SPEC §3) and StyleGAN2-style lazy intervals.

    R1     = (γ/2) E_{x~p} ‖∇_x T(x)‖²                  zero-centred, on real samples
    R2     = (γ/2) E_{x~q} ‖∇_x T(x)‖²                  zero-centred, on fake samples
    WGAN-GP = λ E_{x̂} (‖∇_x̂ T(x̂)‖ - 1)²,  x̂ = εx_r + (1-ε)x_f, ε ~ U[0, 1] per sample

Each penalty differentiates the discriminator twice (create_graph=True), never the
fused loss op, whose backward is deliberately not differentiable again.
`T(x)` is summed over the batch before differentiating: the samples are independent,
so row i of ∇_x Σ_j T(x_j) is ∇ T(x_i).

Lazy regularization (Karras et al. 2020, StyleGAN2 §B): a penalty with interval k is
computed only on every k-th discriminator step and multiplied by k, so its expected
contribution per step is unchanged. Here the penalty is added to that step's D loss
(one backward), so the optimizer hyper-parameters need no mini-batch correction.

Mixed precision: the inner gradient is taken of Σ_i T(x_i) in float32, so each row is a
per-sample gradient of order 1, far from fp16's underflow; it is deliberately *not*
multiplied by the GradScaler's loss scale (the AMP gradient-penalty recipe does that),
because the scale starts at 2^16 and overflows fp16 there, which would turn the
penalty into inf/NaN on every early step. The outer backward is scaled as usual.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch


def input_gradients(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """∇_x T(x) per sample, flattened to (N, D) in at least float32, differentiable (create_graph=True).

    `inputs` must have `requires_grad=True` and `outputs` must have been computed from it.
    """
    if not inputs.requires_grad:
        raise ValueError("inputs must require grad: call .detach().requires_grad_(True) before the D forward")
    acc = torch.promote_types(outputs.dtype, torch.float32)  # fp16/bf16 -> fp32, fp64 stays
    (grad,) = torch.autograd.grad(outputs.to(acc).sum(), inputs, create_graph=True)
    return grad.to(torch.promote_types(grad.dtype, torch.float32)).flatten(1)  # (N, D)


def zero_centred_penalty(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """E ‖∇_x T(x)‖², the mean over the batch of each sample's squared gradient norm."""
    return input_gradients(outputs, inputs).square().sum(dim=1).mean()


def r1_penalty(real_out: torch.Tensor, real: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 = (γ/2) E_p ‖∇_x T(x)‖² (Mescheder et al. 2018); `real_out = D(real)`."""
    return 0.5 * gamma * zero_centred_penalty(real_out, real)


def r2_penalty(fake_out: torch.Tensor, fake: torch.Tensor, gamma: float) -> torch.Tensor:
    """R2 = (γ/2) E_q ‖∇_x T(x)‖²; `fake` must be detached from G, then require grad."""
    return 0.5 * gamma * zero_centred_penalty(fake_out, fake)


def wgan_gp_penalty(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float,
    eps: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): λ E (‖∇T(x̂)‖₂ - 1)² on random interpolates.

    Uses the first min(N, M) samples of each side. `eps` (N,) may be given; otherwise
    it is drawn from U[0, 1) with `generator`.
    """
    n = min(real.shape[0], fake.shape[0])
    real, fake = real[:n].detach(), fake[:n].detach()
    if eps is None:
        eps = torch.rand(n, device=real.device, dtype=torch.float32, generator=generator)
    eps = eps.to(real.dtype).view(n, *([1] * (real.dim() - 1)))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad = input_gradients(discriminator(x_hat), x_hat)
    return weight * (torch.linalg.vector_norm(grad, dim=1) - 1).square().mean()


def lazy_factor(step: int, interval: int) -> int:
    """k on every k-th step (step % k == 0, so step 0 is regularized), else 0."""
    if interval < 1:
        raise ValueError(f"a lazy regularization interval must be >= 1, got {interval}")
    return interval if step % interval == 0 else 0
