"""Exponential moving average of the generator's weights (Karras et al., ProGAN/StyleGAN).

The averaged copy is an ordinary submodule of the GANModule (`g_ema`), so it is in
`state_dict`, in every checkpoint, moves with `.to(device)`, and resumes exactly.
Lightning's `WeightAveraging` callback averages the whole LightningModule (both
players) and swaps the weights in at the end of fit, which is wrong for a GAN:
only G is averaged and the training weights must stay in place.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def make_ema(module: nn.Module) -> nn.Module:
    """A frozen copy of `module`: the EMA's starting point.

    It keeps the train/eval mode of the module it shadows (it is never called while
    training); `GANModule.sample` switches it to eval mode for the call.
    """
    ema = copy.deepcopy(module)
    ema.requires_grad_(False)
    return ema


@torch.no_grad()
def ema_update(ema: nn.Module, module: nn.Module, decay: float) -> None:
    """θ_ema ← decay·θ_ema + (1 - decay)·θ for parameters; buffers (e.g. BN statistics) are copied.

    decay = 0 copies the weights (used before `ema_start`).
    """
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
    ema_params, params = list(ema.parameters()), list(module.parameters())
    if len(ema_params) != len(params):
        raise ValueError(
            f"EMA copy has {len(ema_params)} parameters but the generator has {len(params)}; "
            "was the generator changed after the GANModule was built?"
        )
    for pe, p in zip(ema_params, params):
        pe.lerp_(p.detach().to(pe.dtype), 1.0 - decay)
    for be, b in zip(ema.buffers(), module.buffers()):
        be.copy_(b)
