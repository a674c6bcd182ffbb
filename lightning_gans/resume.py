"""Exact resumption for GANModule: training counters and random streams travel in the checkpoint.

Lightning restores weights, optimizers, schedulers and loop progress; a GAN also draws
latents (and WGAN-GP mixing weights) from its own `torch.Generator`, shuffles data and
applies dropout from torch's global RNG, and keeps its own counters (n_critic phase, lazy
regularization phase, EMA warm-up). All of them are saved under `checkpoint["gan_module"]`
as tensors and ints, so the checkpoint still loads with `torch.load(weights_only=True)`.

Restoring happens in `on_fit_start`, which Lightning calls after `on_load_checkpoint`
and before the first dataloader iterator is created, so the resumed run shuffles and
samples exactly as the uninterrupted one would have. Strategies that restore checkpoints
only after setup (FSDP, DeepSpeed) are not covered.
"""
from __future__ import annotations

from typing import Optional

import torch
from lightning.pytorch.utilities import rank_zero_warn

from .latents import seeded_generator

__all__ = ["ResumableState"]


class ResumableState:
    """Mixin for a LightningModule with counters named in `_counters` and a latent generator."""

    _counters: tuple[str, ...] = ()
    _z_gen: Optional[torch.Generator] = None
    _pending_rng: Optional[dict] = None

    @property
    def latent_generator(self) -> torch.Generator:
        """The torch.Generator of training latents and GP mixing weights (its state is in checkpoints).

        Seeded from torch.initial_seed() (rank 0's, broadcast) at fit start. Evaluation sampling
        (`GANModule.sample`) never draws from it, so plots and metrics leave the training run unchanged.
        """
        if self._z_gen is None or self._z_gen.device != self.device:
            self._z_gen = seeded_generator(torch.initial_seed(), self.device)
        return self._z_gen

    def on_fit_start(self) -> None:
        seed = self.trainer.strategy.broadcast(torch.initial_seed())  # the same latent stream on every rank
        if self._z_gen is None or self._z_gen.device != self.device or self._pending_rng is not None:
            self._z_gen = seeded_generator(seed, self.device)
        pending, self._pending_rng = self._pending_rng, None
        if pending is None:
            return
        try:
            self._z_gen.set_state(pending["latent"])
        except RuntimeError as e:  # e.g. a CPU generator's state resumed on CUDA
            rank_zero_warn(f"GANModule: could not restore the latent RNG state ({e}); reseeded instead")
        torch.set_rng_state(pending["torch"])
        if torch.cuda.is_available() and pending.get("cuda"):
            torch.cuda.set_rng_state_all(pending["cuda"])

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_module"] = {
            **{name: getattr(self, name) for name in self._counters},
            "latent_rng": self.latent_generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gan_module")
        if state is None:  # e.g. a checkpoint written by another module: weights only, fresh counters
            return
        for name in self._counters:
            setattr(self, name, state[name])
        # applied in on_fit_start: loading for inference (load_from_checkpoint) must not reset global RNGs
        self._pending_rng = {"latent": state["latent_rng"], "torch": state["torch_rng"], "cuda": state["cuda_rng"]}
