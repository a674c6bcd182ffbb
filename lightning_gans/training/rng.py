"""The random streams of a GAN run, in one place: latent codes, generator labels, WGAN-GP mixing weights.

All of them come from one `torch.Generator` owned by the module (`RngStreams`), never from torch's
global RNG, which data shuffling and dropout use. Its state, and torch's global states, travel in
every checkpoint, so a resumed run draws exactly what the uninterrupted one would have.

DDP: every rank seeds the stream alike (rank 0's seed, broadcast) and draws the codes of the
*global* batch, keeping its own slice (`rank_slice_draw`). Ranks therefore never share codes, the
union over ranks is what one process would draw for the global batch, and the stream stays
identical on all ranks (one checkpoint resumes them all).
"""
from __future__ import annotations

from typing import Callable, Optional, Union

import torch

from .distributed import world

__all__ = ["SAMPLERS", "resolve_sampler", "rank_slice_draw", "seeded_generator", "proportional_labels", "default_labels",
           "RngStreams"]


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
    return x if size == 1 else x[rank * n:(rank + 1) * n]


def proportional_labels(freq, n: int) -> torch.Tensor:
    """n labels, label c about n·freq[c] times (largest remainders), in a fixed interleaved order."""
    freq = torch.as_tensor(freq, dtype=torch.float64)
    share = freq / freq.sum() * n
    counts = share.floor().long()
    counts[torch.argsort(share - counts, descending=True, stable=True)[: n - int(counts.sum())]] += 1
    labels = torch.repeat_interleave(torch.arange(len(freq)), counts)
    # interleave (label c's i-th copy at position (i + 1/2)/count_c) so any prefix is close to proportional
    pos = torch.cat([(torch.arange(int(c)) + 0.5) / int(c) for c in counts if c > 0])
    return labels[torch.argsort(pos, stable=True)]


def default_labels(n: int, num_classes: int, freq=None) -> torch.Tensor:
    """The labels of n samples when none are given: 0, 1, ..., K-1, 0, ..., or, when G drew its labels from
    the data's frequencies `freq` (label_sampler="data"), labels in those proportions."""
    return torch.arange(n) % num_classes if freq is None else proportional_labels(freq, n)


def seeded_generator(seed: int, device) -> torch.Generator:
    """A torch.Generator on `device` whose stream is decorrelated from torch's global one with the same seed."""
    gen = torch.Generator(device=device)
    # seed_everything(s) seeds the global RNG with s; mixing the seed keeps this stream a different one
    gen.manual_seed((seed * 0x9E3779B1 + 0x7F4A7C15) % 2**63)
    return gen


class RngStreams:
    """The module's training stream and the checkpointed state of every stream a run uses.

    `generator(device)` is the training stream (seeded from `torch.initial_seed()` until `start`
    reseeds it with the seed every rank agrees on). `state_dict()` holds it and torch's global CPU
    and CUDA states as tensors (checkpoints load with `weights_only=True`); `load_state_dict` only
    records them, and `start` applies them: restoring happens at fit start, after Lightning loaded
    the checkpoint and before the first dataloader iterator exists, so loading a checkpoint for
    inference never resets the caller's global RNG.
    """

    def __init__(self) -> None:
        self._gen: Optional[torch.Generator] = None
        self._pending: Optional[dict] = None

    def generator(self, device) -> torch.Generator:
        device = torch.device(device)
        if self._gen is None or self._gen.device != device:
            self._gen = seeded_generator(torch.initial_seed(), device)
        return self._gen

    def start(self, seed: int, device) -> Optional[str]:
        """Seed the stream for a fit (or restore a loaded state); returns a warning text when a state could not be restored."""
        self._gen = seeded_generator(seed, torch.device(device))
        pending, self._pending = self._pending, None
        if pending is None:
            return None
        torch.set_rng_state(pending["torch_rng"])
        if torch.cuda.is_available() and len(pending.get("cuda_rng", [])):
            torch.cuda.set_rng_state_all(pending["cuda_rng"])
        try:
            self._gen.set_state(pending["latent_rng"])
        except RuntimeError as e:  # e.g. a CPU generator's state resumed on CUDA
            return f"could not restore the latent RNG state ({e}); reseeded instead"
        return None

    def state_dict(self) -> dict:
        gen = self._gen if self._gen is not None else self.generator("cpu")
        return {
            "latent_rng": gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }

    def load_state_dict(self, state: dict) -> None:
        self._pending = dict(state)
