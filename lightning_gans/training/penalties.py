"""Discriminator gradient penalties and StyleGAN2-style lazy intervals (docs/theory.md, "Penalties").

    R1      = (γ/2) E_{x~p} ‖∇_x D(x)‖²          zero-centred on real samples (Mescheder et al. 2018)
    R2      = (γ/2) E_{x~q} ‖∇_x D(x)‖²          zero-centred on fake samples (R3GAN, Huang et al. 2025)
    WGAN-GP = λ E_{x̂} (‖∇_x̂ D(x̂)‖ - 1)²,  x̂ = εx_r + (1-ε)x_f, ε ~ U[0, 1] per sample (Gulrajani et al. 2017)

Each penalty differentiates the discriminator twice (create_graph=True), never the fused loss
op, whose backward is deliberately not differentiable again. D(x) is summed over the batch
before differentiating: the samples are independent, so row i of ∇_x Σ_j D(x_j) is ∇D(x_i)
(with a minibatch-std layer they are not quite, and this is StyleGAN2's R1 all the same).

Lazy regularization (Karras et al. 2020, StyleGAN2 §B): a penalty with interval k is computed
only on every k-th discriminator step and multiplied by k, so its expected contribution per step
is unchanged. It is added to that step's D loss (one backward).

Mixed precision: the inner gradient is taken of Σ_i D(x_i) in float32, so each row is a
per-sample gradient of order 1, far from fp16's underflow; it is deliberately not multiplied by
the GradScaler's loss scale (which starts at 2^16 and would overflow fp16 here, turning the
penalty into inf/NaN on every early step). The outer backward is scaled as usual.
"""
from __future__ import annotations

from typing import Callable

import torch

__all__ = ["input_gradients", "zero_centred", "wgan_gp", "lazy_factor"]


def input_gradients(outputs: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    """∇_x D(x) per D output, flattened to (N, D) in at least float32, differentiable (create_graph=True).

    One row per output: per sample, or per pack of consecutive samples when D judges packs (PacGAN),
    since a pack is then D's input and its gradient norm is the one the penalties bound.

    `inputs` must have `requires_grad=True` and `outputs` must have been computed from it.
    """
    if not inputs.requires_grad:
        raise ValueError("inputs must require grad: call .detach().requires_grad_(True) before the D forward")
    acc = torch.promote_types(outputs.dtype, torch.float32)  # fp16/bf16 -> fp32, fp64 stays
    (grad,) = torch.autograd.grad(outputs.to(acc).sum(), inputs, create_graph=True)
    rows = outputs.shape[0] if outputs.dim() else inputs.shape[0]  # a 0-d output: per input row, as before
    return grad.to(torch.promote_types(grad.dtype, torch.float32)).reshape(rows, -1)  # (N, D)


def zero_centred(outputs: torch.Tensor, inputs: torch.Tensor, gamma: float) -> torch.Tensor:
    """(γ/2) E ‖∇_x D(x)‖²: R1 when `inputs` are real samples, R2 when they are (detached) fakes."""
    return 0.5 * gamma * input_gradients(outputs, inputs).square().sum(dim=1).mean()


def wgan_gp(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
            weight: float, eps: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: λ E (‖∇D(x̂)‖₂ - 1)² on the interpolates of the first n = len(eps) real and fake samples."""
    n = eps.shape[0]
    real, fake = real[:n].detach(), fake[:n].detach()
    eps = eps.to(real.dtype).view(n, *([1] * (real.dim() - 1)))
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad = input_gradients(discriminator(x_hat), x_hat)
    return weight * (torch.linalg.vector_norm(grad, dim=1) - 1).square().mean()


def lazy_factor(step: int, interval: int) -> int:
    """k on every k-th step (step % k == 0, so step 0 is regularized), else 0."""
    if interval < 1:
        raise ValueError(f"a lazy regularization interval must be >= 1, got {interval}")
    return interval if step % interval == 0 else 0
