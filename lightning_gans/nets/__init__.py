"""Generator / discriminator pairs.

- `MLPGenerator` / `MLPDiscriminator`: for 2-D toys (or any flat data).
- `DCGANGenerator` / `DCGANDiscriminator`: DCGAN-style convolutional pair for
  square images of any size that halves down to 4..7 pixels (8, 28, 32, 64).

Every discriminator returns raw logits of shape (B,) (the losses take (N,)),
and takes `spectral_norm=True` to wrap its linear/conv layers in
`torch.nn.utils.parametrizations.spectral_norm`. Generators expose
`latent_dim` and produce data in [-1, 1] for images (tanh) or unbounded
values for toys.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as _sn

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator", "n_upsamplings"]


def _act(name: str) -> nn.Module:
    acts = {"relu": nn.ReLU, "lrelu": lambda: nn.LeakyReLU(0.2), "elu": nn.ELU, "tanh": nn.Tanh}
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(acts)}")
    return acts[name]()


def _check_positive(**kw) -> None:
    for k, v in kw.items():
        if int(v) <= 0:
            raise ValueError(f"{k} must be a positive integer, got {v}")


def _mlp(d_in: int, d_out: int, hidden: int, layers: int, act: str, sn: bool) -> nn.Sequential:
    wrap = _sn if sn else (lambda m: m)
    mods: list[nn.Module] = []
    d = d_in
    for _ in range(layers):
        mods += [wrap(nn.Linear(d, hidden)), _act(act)]
        d = hidden
    mods.append(wrap(nn.Linear(d, d_out)))
    return nn.Sequential(*mods)


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> x (B, out_dim) through `layers` hidden layers of `hidden` units."""

    def __init__(self, latent_dim: int = 16, out_dim: int = 2, hidden: int = 128, layers: int = 3,
                 activation: str = "lrelu", spectral_norm: bool = False):
        super().__init__()
        _check_positive(latent_dim=latent_dim, out_dim=out_dim, hidden=hidden, layers=layers)
        self.latent_dim, self.out_dim = latent_dim, out_dim
        self.net = _mlp(latent_dim, out_dim, hidden, layers, activation, spectral_norm)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)  # (B, out_dim)


class MLPDiscriminator(nn.Module):
    """x (B, in_dim) -> logits (B,)."""

    def __init__(self, in_dim: int = 2, hidden: int = 128, layers: int = 3, activation: str = "lrelu",
                 spectral_norm: bool = False):
        super().__init__()
        _check_positive(in_dim=in_dim, hidden=hidden, layers=layers)
        self.in_dim = in_dim
        self.net = _mlp(in_dim, 1, hidden, layers, activation, spectral_norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)  # (B,)


def n_upsamplings(image_size: int) -> tuple[int, int]:
    """(base, n): image_size = base · 2ⁿ with 4 <= base <= 7, n >= 1."""
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
    """z (B, latent_dim) -> image (B, C, S, S) in [-1, 1].

    Linear to (width·2ⁿ⁻¹, base, base), then n transposed convs (k4 s2 p1) that
    halve the channels and double the size, batch norm + ReLU between, tanh out.
    """

    def __init__(self, latent_dim: int = 64, channels: int = 1, image_size: int = 8, width: int = 64):
        super().__init__()
        _check_positive(latent_dim=latent_dim, channels=channels, width=width)
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        self.base, n = n_upsamplings(image_size)
        c = width * 2 ** (n - 1)
        self.c0 = c
        self.fc = nn.Sequential(nn.Linear(latent_dim, c * self.base * self.base), nn.BatchNorm1d(c * self.base ** 2),
                                nn.ReLU())
        ups: list[nn.Module] = []
        for i in range(n):
            last = i == n - 1
            c_out = channels if last else c // 2
            ups.append(nn.ConvTranspose2d(c, c_out, 4, 2, 1, bias=last))
            ups += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU()]
            c = c_out
        self.ups = nn.Sequential(*ups)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(z.shape[0], self.c0, self.base, self.base)  # (B, c0, base, base)
        return self.ups(h)  # (B, C, S, S)


class DCGANDiscriminator(nn.Module):
    """image (B, C, S, S) -> logits (B,).

    n strided convs (k4 s2 p1) doubling the channels, LeakyReLU(0.2), no batch
    norm (it would couple the real and fake batches and breaks R1/R2 penalties),
    then a linear layer on the flattened (width·2ⁿ⁻¹, base, base) features.
    """

    def __init__(self, channels: int = 1, image_size: int = 8, width: int = 64, spectral_norm: bool = False):
        super().__init__()
        _check_positive(channels=channels, width=width)
        self.channels, self.image_size = channels, image_size
        base, n = n_upsamplings(image_size)
        wrap = _sn if spectral_norm else (lambda m: m)
        mods: list[nn.Module] = []
        c_in, c = channels, width
        for _ in range(n):
            mods += [wrap(nn.Conv2d(c_in, c, 4, 2, 1)), nn.LeakyReLU(0.2)]
            c_in, c = c, c * 2
        self.convs = nn.Sequential(*mods)
        self.fc = wrap(nn.Linear(c_in * base * base, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x).flatten(1)).squeeze(1)  # (B,)
