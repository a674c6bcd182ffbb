"""DCGAN-style convolutional pair for square images of any size that halves down to 4..7 pixels
(8, 28, 32, 64), unconditional or class-conditional (label embedding into G, projection D)."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from .layers import ConditionalBatchNorm, Projection, check_labels, check_num_classes, check_positive, conditional_input, conditional_output, maybe_sn

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "n_upsamplings"]


def n_upsamplings(image_size: int, levels: Optional[int] = None) -> tuple[int, int]:
    """(base, n): image_size = base · 2ⁿ with 4 <= base <= 7, n >= 1; or, given `levels`, n = levels
    (deeper nets on small images: 8 = 2 · 2², two levels instead of one)."""
    if levels is not None:
        if isinstance(levels, bool) or not isinstance(levels, int) or levels < 1 or image_size % 2 ** levels \
                or image_size // 2 ** levels < 2:
            raise ValueError(f"levels={levels!r}: image_size {image_size} must be base·2^levels with base >= 2")
        return image_size // 2 ** levels, levels
    size, n = int(image_size), 0
    while size % 2 == 0 and size // 2 >= 4:
        size //= 2
        n += 1
    if n == 0 or size > 7:
        raise ValueError(
            f"DCGAN nets need an image size of the form base·2ⁿ with base in 4..7 and n >= 1 "
            f"(e.g. 8, 28, 32, 64), got {image_size}"
        )
    return size, n


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) [, y (B,)] -> image (B, C, S, S) in [-1, 1].

    Linear to (width·2ⁿ⁻¹, base, base), then n transposed convs (k4 s2 p1) that
    halve the channels and double the size, batch norm + ReLU between, tanh out.
    With `num_classes`, `conditioning` says how the label enters: "concat" (a learned label embedding
    of `latent_dim` units concatenated to z) or "cbn" (conditional batch norm: every batch norm gets a
    per-class gain and bias, z alone is the input; Miyato & Koyama 2018, BigGAN).
    `levels`: the number of upsamplings n (default: as many as keep base >= 4).
    """

    def __init__(self, latent_dim: int = 64, channels: int = 1, image_size: int = 8, width: int = 64,
                 num_classes: Optional[int] = None, levels: Optional[int] = None, conditioning: str = "concat"):
        super().__init__()
        check_positive(latent_dim=latent_dim, channels=channels, width=width)
        check_num_classes(num_classes)
        if conditioning not in ("concat", "cbn"):
            raise ValueError(f"conditioning must be 'concat' or 'cbn', got {conditioning!r}")
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        self.num_classes, self.conditioning = num_classes, conditioning
        self.base, n = n_upsamplings(image_size, levels)
        c = width * 2 ** (n - 1)
        self.c0 = c
        cbn = num_classes is not None and conditioning == "cbn"

        def norm(features: int, dims: int) -> nn.Module:
            if cbn:
                return ConditionalBatchNorm(num_classes, features, dims)
            return nn.BatchNorm1d(features) if dims == 1 else nn.BatchNorm2d(features)

        if num_classes is not None and not cbn:
            self.label = nn.Embedding(num_classes, latent_dim)
        d_in = latent_dim * (2 if num_classes is not None and not cbn else 1)
        self.fc = nn.Sequential(nn.Linear(d_in, c * self.base * self.base), norm(c * self.base ** 2, 1), nn.ReLU())
        ups: list[nn.Module] = []
        for i in range(n):
            last = i == n - 1
            c_out = channels if last else c // 2
            ups.append(nn.ConvTranspose2d(c, c_out, 4, 2, 1, bias=last))
            ups += [nn.Tanh()] if last else [norm(c_out, 2), nn.ReLU()]
            c = c_out
        self.ups = nn.Sequential(*ups)

    def forward(self, z: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if self.num_classes is not None and self.conditioning == "cbn":
            y = check_labels(self, y, len(z))  # the label goes to every ConditionalBatchNorm; z alone is the input
        else:
            z, y = conditional_input(self, z, y), None  # [z, e(y)] for "concat"; z when unconditional
        h = _layers(self.fc, z, y).view(z.shape[0], self.c0, self.base, self.base)
        return _layers(self.ups, h, y)  # (B, C, S, S)


def _layers(seq: nn.Sequential, h: torch.Tensor, y: Optional[torch.Tensor]) -> torch.Tensor:
    """`seq(h)`, with the labels y passed to its conditional batch norms."""
    for m in seq:
        h = m(h, y) if isinstance(m, ConditionalBatchNorm) else m(h)
    return h


class DCGANDiscriminator(nn.Module):
    """image (B, C, S, S) [, y (B,)] -> logits (B,).

    n strided convs (k4 s2 p1) doubling the channels, LeakyReLU(0.2), no batch
    norm (it would couple the real and fake batches and breaks R1/R2 penalties),
    then a linear layer on the flattened (width·2ⁿ⁻¹, base, base) features φ.
    With `num_classes`, a projection discriminator: + <e(y), φ> (Miyato & Koyama 2018).
    `levels`: the number of strided convs n (default: as many as keep base >= 4).
    """

    def __init__(self, channels: int = 1, image_size: int = 8, width: int = 64, spectral_norm: bool = False,
                 num_classes: Optional[int] = None, levels: Optional[int] = None):
        super().__init__()
        check_positive(channels=channels, width=width)
        check_num_classes(num_classes)
        self.channels, self.image_size, self.num_classes = channels, image_size, num_classes
        base, n = n_upsamplings(image_size, levels)
        mods: list[nn.Module] = []
        c_in, c = channels, width
        for _ in range(n):
            mods += [maybe_sn(nn.Conv2d(c_in, c, 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
            c_in, c = c, c * 2
        self.convs = nn.Sequential(*mods)
        self.fc = maybe_sn(nn.Linear(c_in * base * base, 1), spectral_norm)
        if num_classes is not None:
            self.projection = Projection(num_classes, c_in * base * base, spectral_norm)

    def forward(self, x: torch.Tensor, y: Optional[torch.Tensor] = None) -> torch.Tensor:
        return conditional_output(self, self.convs(x).flatten(1), y, self.fc)  # (B,)
