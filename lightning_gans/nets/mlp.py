"""MLP pair for 2-D toys (or any flat data), unconditional or class-conditional."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .layers import (Projection, check_num_classes, check_positive, conditional_input, conditional_output, maybe_sn,
                     mlp)
from .minibatch_std import MinibatchStd

__all__ = ["MLPGenerator", "MLPDiscriminator"]


class MLPGenerator(nn.Module):
    """z (B, latent_dim) [, y (B,)] -> x (B, out_dim) through `layers` hidden layers of `hidden` units.

    With `num_classes`, a learned label embedding of `latent_dim` units is concatenated to z.
    """

    def __init__(self, latent_dim: int = 16, out_dim: int = 2, hidden: int = 128, layers: int = 3,
                 activation: str = "lrelu", spectral_norm: bool = False, num_classes: Optional[int] = None):
        super().__init__()
        check_positive(latent_dim=latent_dim, out_dim=out_dim, hidden=hidden, layers=layers)
        check_num_classes(num_classes)
        self.latent_dim, self.out_dim, self.num_classes = latent_dim, out_dim, num_classes
        if num_classes is not None:
            self.label = nn.Embedding(num_classes, latent_dim)
        self.net = mlp(latent_dim * (1 if num_classes is None else 2), out_dim, hidden, layers, activation,
                       spectral_norm)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.net(conditional_input(self, z, y))  # (B, out_dim)


class MLPDiscriminator(nn.Module):
    """x (B, in_dim) [, y (B,)] -> logits (B,); with `num_classes`, a projection discriminator.

    `minibatch_std=g` (g >= 2) inserts a minibatch-standard-deviation layer (minibatch_std.py) before
    the last hidden layer, as progressive GANs do before their last block; 0 leaves it out.
    """

    def __init__(self, in_dim: int = 2, hidden: int = 128, layers: int = 3, activation: str = "lrelu",
                 spectral_norm: bool = False, num_classes: Optional[int] = None, minibatch_std: int = 0):
        super().__init__()
        check_positive(in_dim=in_dim, hidden=hidden, layers=layers)
        check_num_classes(num_classes)
        if isinstance(minibatch_std, bool) or not isinstance(minibatch_std, int) or not (minibatch_std == 0
                                                                                        or minibatch_std >= 2):
            raise ValueError(f"MLPDiscriminator: minibatch_std must be 0 (off) or a group size >= 2, "
                             f"got {minibatch_std!r}")
        self.in_dim, self.num_classes = in_dim, num_classes
        self.net = mlp(in_dim, 1, hidden, layers, activation, spectral_norm)  # net[:-1] is φ, net[-1] is ψ
        if minibatch_std >= 2:  # [..., Linear_L, act, ψ] -> [..., MinibatchStd, Linear_L(+1 input), act, ψ]
            last = len(self.net) - 3
            d_last = in_dim if layers == 1 else hidden
            self.net = nn.Sequential(*self.net[:last], MinibatchStd(minibatch_std),
                                     maybe_sn(nn.Linear(d_last + 1, hidden), spectral_norm), *self.net[last + 1:])
        if num_classes is not None:
            self.projection = Projection(num_classes, hidden, spectral_norm)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return conditional_output(self, self.net[:-1](x.flatten(1)), y, self.net[-1])  # (B,)
