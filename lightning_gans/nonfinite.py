"""What GANModule does when a loss is NaN or infinite: stop with a checkpoint, or skip the step."""
from __future__ import annotations

import os

import torch
from lightning.pytorch.utilities import rank_zero_warn

__all__ = ["NonFiniteLossError", "NONFINITE_MODES", "loss_is_finite"]

NONFINITE_MODES = ("error", "skip")


class NonFiniteLossError(RuntimeError):
    """A loss was NaN or infinite and `nonfinite="error"`; the message names the step, the loss and the checkpoint."""


def loss_is_finite(module, name: str, out: dict, batch_idx: int) -> bool:
    """True when `out["loss"]` is finite on every rank; otherwise skip (False) or save a checkpoint and raise.

    Runs before the backward, so the saved checkpoint holds the weights just before the offending step.
    """
    trainer = module.trainer
    bad = not bool(torch.isfinite(out["loss"].detach()).all())
    # one rank's NaN must send every rank down the same branch, or the next collective deadlocks
    bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
    if not bad:
        return True
    terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in out.items() if torch.is_tensor(v) and v.dim() == 0)
    where = f"global_step {module.global_step} (epoch {module.current_epoch}, batch {batch_idx})"
    player = name[0].upper()
    if module.nonfinite == "skip":
        module.skipped_steps += 1
        rank_zero_warn(f"GANModule: skipped the {player} step at {where}: non-finite {name} ({terms})")
        return False
    root = trainer.log_dir or trainer.default_root_dir
    path = os.path.join(root, "checkpoints", f"nonfinite-step={module.global_step}.ckpt")
    trainer.save_checkpoint(path)  # every rank calls it (the decision above is shared); rank 0 writes
    raise NonFiniteLossError(
        f"non-finite {name} at {where}: {terms}. The state just before this {player} step was saved to {path}; "
        "lower the learning rate, add a penalty (r1_gamma) or set nonfinite='skip'.")
