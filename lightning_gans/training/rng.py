"""Latent samplers and the rank-consistent draws GANModule makes from them.

A sampler is any callable `(shape, generator, device) -> Tensor`; "normal" and
"uniform" are built in. Under DDP every rank draws the codes of the *global* batch
from the same `torch.Generator` and keeps its own rows, so rank r's codes are rows
r·n..(r+1)·n of what one process would draw for the global batch, and the generator
state stays identical on all ranks (one checkpoint resumes them all).
"""
from __future__ import annotations

from typing import Callable, Union

import torch

from .distributed import world

__all__ = ["SAMPLERS", "resolve_sampler", "rank_slice_draw", "seeded_generator"]


def normal(shape, generator: torch.Generator, device) -> torch.Tensor:
    """z ~ N(0, I)."""
    return torch.randn(shape, generator=generator, device=device)


def uniform(shape, generator: torch.Generator, device) -> torch.Tensor:
    """z ~ U[-1, 1)."""
    return torch.rand(shape, generator=generator, device=device) * 2 - 1


SAMPLERS: dict[str, Callable] = {"normal": normal, "uniform": uniform}


def resolve_sampler(sampler: Union[str, Callable]) -> Callable:
    """The sampler function for a name of SAMPLERS, or a callable unchanged."""
    if callable(sampler):
        return sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"latent_sampler must be one of {sorted(SAMPLERS)} or a callable "
                         f"(shape, generator, device) -> Tensor, got {sampler!r}")
    return SAMPLERS[sampler]


def rank_slice_draw(fn: Callable, n: int, shape: tuple, generator: torch.Generator, device) -> torch.Tensor:
    """This rank's n rows of `fn((n·world_size, *shape), generator, device)`: (n, *shape)."""
    rank, size = world()
    x = fn((n * size, *shape), generator, device)
    return x[rank * n:(rank + 1) * n]


def seeded_generator(seed: int, device) -> torch.Generator:
    """A torch.Generator on `device` whose stream is decorrelated from torch's global one with the same seed."""
    gen = torch.Generator(device=device)
    # seed_everything(s) seeds the global RNG with s; mixing the seed keeps the latent stream a different one
    gen.manual_seed((seed * 0x9E3779B1 + 0x7F4A7C15) % 2**63)
    return gen
