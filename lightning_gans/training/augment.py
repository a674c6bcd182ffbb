"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

The same random, differentiable transformation T is applied to every image the discriminator sees,
real and fake, in both players' steps: D learns on T(x) and T(G(z)), and G's gradient flows back
through T. Augmenting only the reals would teach G to produce augmented images; augmenting both
but not differentiating through T would leave G unable to follow D (the paper's §3). R1 is taken
on the augmented reals, as the authors' code does (GANModule.discriminate augments first).

Ops (each as in the authors' PyTorch code, for images in [-1, 1]):
    color        brightness + U(-0.5, 0.5); saturation × U(0, 2) about the channel mean;
                 contrast × U(0.5, 1.5) about the image mean
    translation  shift by up to 1/8 of the size in each direction, zero padding
    cutout       zero a square of half the size at a random position

`p` (ADA-style, Karras et al. 2020): each op is applied to each sample with probability p
(DiffAugment is p = 1). Every random number comes from the torch.Generator the caller supplies
(GANModule: its latent stream, whose state is in every checkpoint), so runs are deterministic and
resume exactly. Under DDP each draw is the global batch's worth and every rank keeps its own slice
(`rank_slice_draw`), so ranks augment differently and the stream stays the same on every rank.
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F

from .rng import rank_slice_draw

__all__ = ["DiffAugment", "OPS", "parse_policy"]


def _uniform(n: int, gen: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    """(n, 1, 1, 1) U[0, 1) in x's dtype: this rank's slice of the global draw."""
    u = rank_slice_draw(lambda s, g, d: torch.rand(s, generator=g, device=d), n, (), gen, x.device)
    return u.to(x.dtype).view(n, 1, 1, 1)


def _randint(lo: int, hi: int, n: int, gen: torch.Generator, device) -> torch.Tensor:
    """(n, 1, 1) integers in [lo, hi): this rank's slice of the global draw."""
    return rank_slice_draw(lambda s, g, d: torch.randint(lo, hi, s, generator=g, device=d), n, (), gen,
                           device).view(n, 1, 1)


def brightness(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return x + (_uniform(len(x), gen, x) - 0.5)


def saturation(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)  # a one-channel image is its own channel mean: unchanged
    return (x - mean) * (_uniform(len(x), gen, x) * 2) + mean


def contrast(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(len(x), gen, x) + 0.5) + mean


def translation(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    tx, ty = _randint(-sh, sh + 1, n, gen, x.device), _randint(-sw, sw + 1, n, gen, x.device)
    b, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(h, device=x.device),
                               torch.arange(w, device=x.device), indexing="ij")
    # indices into the image padded by one zero pixel: anything shifted in from outside reads the padding
    gx = torch.clamp(gx + tx + 1, 0, h + 1)
    gy = torch.clamp(gy + ty + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # (n, h+2, w+2, c)
    return padded[b, gx, gy].permute(0, 3, 1, 2)  # a gather: differentiable w.r.t. x


def cutout(x: torch.Tensor, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ox = _randint(0, h + (1 - ch % 2), n, gen, x.device)
    oy = _randint(0, w + (1 - cw % 2), n, gen, x.device)
    b, gx, gy = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(ch, device=x.device),
                               torch.arange(cw, device=x.device), indexing="ij")
    gx = torch.clamp(gx + ox - ch // 2, 0, h - 1)
    gy = torch.clamp(gy + oy - cw // 2, 0, w - 1)
    mask = torch.ones(n, h, w, dtype=x.dtype, device=x.device)
    mask[b, gx, gy] = 0
    return x * mask.unsqueeze(1)


OPS: dict[str, tuple[Callable, ...]] = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: Union[str, Sequence[str]]) -> list[str]:
    """"translation,cutout,color" (or a list of names, e.g. Hydra's model.augment=[translation,cutout])
    -> ["translation", "cutout", "color"]; one line naming an unknown op."""
    parts = policy.split(",") if isinstance(policy, str) else [str(p) for p in policy]
    names = [s.strip() for s in parts if s.strip()]
    expected = f"a comma-separated list of {', '.join(OPS)}"
    if not names:
        raise ValueError(f"augment: no op in {policy!r}; expected {expected} (or null for none)")
    unknown = [s for s in names if s not in OPS]
    if unknown:
        raise ValueError(f"augment: unknown op {unknown[0]!r} in {policy!r}; expected {expected}")
    return names


class DiffAugment:
    """x (N, C, H, W) -> T(x), differentiable, with T drawn from `generator(x.device)`.

    Args:
        policy: comma-separated ops (or a list of them), applied in the order given ("translation,cutout,color").
        p: probability that each op is applied to each sample (1.0: always, as in DiffAugment).
        generator: `device -> torch.Generator` (GANModule passes its latent stream) or a Generator.
    """

    def __init__(self, policy: Union[str, Sequence[str]], p: float = 1.0,
                 generator: Union[Callable[[torch.device], torch.Generator], torch.Generator, None] = None):
        self.names = parse_policy(policy)
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"augment_p must be a number in [0, 1], got {p!r}")
        self.policy, self.p = ",".join(self.names), float(p)
        self._generator = generator

    def generator(self, device) -> torch.Generator:
        g = self._generator
        if g is None:
            raise ValueError("DiffAugment needs a torch.Generator (generator=...) to draw its transformations")
        return g if isinstance(g, torch.Generator) else g(device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4:
            raise ValueError(f"augment: DiffAugment takes images (N, C, H, W), got shape {tuple(x.shape)}")
        gen = self.generator(x.device)
        for name in self.names:
            for op in OPS[name]:
                y = op(x, gen)
                if self.p < 1:  # the mask is drawn after the op's parameters: p changes no other draw
                    keep = _uniform(len(x), gen, x) < self.p
                    y = torch.where(keep, y, x)
                x = y
        return x

    def __repr__(self) -> str:
        return f"DiffAugment({self.policy!r}, p={self.p})"
