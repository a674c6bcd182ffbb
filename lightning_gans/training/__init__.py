"""The training layer: `GANModule` and what is its own.

    module.py       GANModule: the players, the two steps (the override points), penalties, sampling
    loop.py         its Lightning half: manual optimization, non-finite losses, EMA, checkpoint state
    penalties.py    R1, R2, WGAN-GP and lazy intervals
    rng.py          the random streams (latents, labels, GP weights) and their checkpoint state
    distributed.py  cross-rank gathering of D outputs for relativistic pairings under DDP
    grad_variance.py  a callback measuring each player's gradient variance over batches (paired vs all pairs)

May import: losses, kernels (through losses), torch, Lightning. Not: cli, metrics, data.
"""
from .grad_variance import GradientVariance
from .loop import NonFiniteLossError
from .module import GANModule

__all__ = ["GANModule", "NonFiniteLossError", "GradientVariance"]
