"""The Lightning half of GANModule: the manual-optimization loop around its two steps.

`ManualGANLoop` owns what Lightning needs from a two-player module (optimizers in the fixed order
[D, G], stepping through Lightning's optimizer wrappers so global_step advances, toggling each
player's parameters, AMP-aware backward, clipping after unscaling, schedulers, the EMA update,
non-finite losses, the training counters and RNG streams in checkpoints). `GANModule` (module.py)
subclasses it and supplies the GAN: the steps, the penalties, the players and sampling.
"""
from __future__ import annotations

import math
import os
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .penalties import lazy_factor

__all__ = ["ManualGANLoop", "NonFiniteLossError", "NONFINITE_MODES"]

NONFINITE_MODES = ("error", "skip")
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_COUNTERS = ("d_iters", "d_steps", "g_steps", "skipped_steps")  # saved in checkpoints with the RNG streams


def _set(module: nn.Module, name: str, value) -> None:
    """Set a plain (non-tensor, non-module) attribute without nn.Module.__setattr__'s parameter, buffer and
    module checks (~20x the cost of a plain store; the counters change on every batch). Same result: the
    value lands in the instance dict, as nn.Module.__setattr__ puts it there for such values."""
    object.__setattr__(module, name, value)


def _untoggle(frozen: list) -> None:
    """Undo `ManualGANLoop._toggle`: the saved requires_grad of each parameter it froze."""
    for p, requires_grad in frozen:
        p.requires_grad = requires_grad


class NonFiniteLossError(RuntimeError):
    """A loss was NaN or infinite (nonfinite="error"), or a run skipped more steps than it allows."""


class ManualGANLoop(pl.LightningModule):
    """Manual optimization for a D step per batch and a G step every n_critic-th batch (see GANModule)."""

    # ------------------------------------------------------------------ checks before fitting
    def configure_callbacks(self):
        # Lightning calls this before it validates the Trainer, so a GAN-specific message wins over its generic
        # "switch to automatic optimization" (manual optimization rejects both flags).
        trainer = self.trainer
        if trainer.gradient_clip_val is not None:
            raise ValueError("GANModule clips gradients itself: use GANModule(grad_clip=..., grad_clip_algorithm=...) "
                             f"instead of Trainer(gradient_clip_val={trainer.gradient_clip_val})")
        if trainer.accumulate_grad_batches != 1:
            raise ValueError("GANModule steps both players by hand and does not accumulate gradients: use a larger "
                             f"batch instead of Trainer(accumulate_grad_batches={trainer.accumulate_grad_batches})")
        return []

    def on_fit_start(self) -> None:
        strategy = self.trainer.strategy
        # Each player's step leaves the other's parameters without gradients: DDP must look for unused ones.
        if isinstance(strategy.model, DistributedDataParallel) and not strategy.model.find_unused_parameters:
            raise ValueError("GANModule under DDP needs Trainer(strategy='ddp_find_unused_parameters_true') (the CLI: "
                             "trainer=ddp): each player's step leaves the other player's parameters unused")
        seed = strategy.broadcast(torch.initial_seed())  # the same latent stream on every rank
        problem = self.rng.start(seed, self.device)
        if problem:
            rank_zero_warn(f"GANModule: {problem}")
        precision = str(self.trainer.precision)
        convs = any(isinstance(m, _CONVS) for m in self.modules())
        if precision.startswith("bf16") and self.device.type == "cpu" and convs:
            rank_zero_warn("GANModule: bf16 on the CPU with convolutions is slow (PyTorch's bf16 CPU convolution "
                           "backward; about 11x slower than 32-true for the DCGAN pair here): use 32-true on a CPU")
        if (self.num_classes is not None and self.label_sampler != "data"
                and getattr(self.trainer.datamodule, "label_kind", None) == "cluster"):
            # uniform draws over k-means clusters of unequal sizes would train G on another distribution
            raise ValueError("label_sampler: the data's labels are k-means clusters (data.clusters), which G must "
                             "draw in the data's proportions; set model.label_sampler=data")
        if self.num_classes is not None and self.label_sampler == "data":
            freq = getattr(self.trainer.datamodule, "class_frequencies", None)
            if freq is None or len(freq) != self.num_classes:
                raise ValueError(f"label_sampler='data' needs a data module with class_frequencies of length "
                                 f"{self.num_classes}; got {None if freq is None else len(freq)}")
            self.class_frequencies = torch.as_tensor(freq, dtype=torch.float)

    def configure_optimizers(self):
        """Fixed order [D, G] so checkpoints resume into the right optimizer."""
        configs = []
        for make_opt, make_sched, module in zip(self._opt_factories, self._sched_factories,
                                                (self.discriminator, self.generator)):
            opt = make_opt(module.parameters())
            cfg = {"optimizer": opt}
            if make_sched is not None:
                sched = make_sched(opt)
                if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                    # manual optimization steps schedulers here, and here there is no metric to give it
                    raise ValueError("g_scheduler/d_scheduler: ReduceLROnPlateau needs a monitored metric and is "
                                     "not supported; use a step- or epoch-based scheduler")
                cfg["lr_scheduler"] = {"scheduler": sched, "interval": self.scheduler_interval}
            configs.append(cfg)
        return configs

    # ------------------------------------------------------------------ one batch
    def training_step(self, batch: Any, batch_idx: int) -> dict:
        real, labels = self.real_from_batch(batch), self.labels_from_batch(batch)
        d_opt, g_opt = self.optimizers()
        logs = {}
        frozen = self._toggle(d_opt)  # every toggle has its untoggle
        try:
            k = lazy_factor(self.d_iters, self.reg_interval)
            roles = {r for r, on in (("real", self.r1_gamma > 0 or self.gp_weight > 0),
                                     ("fake", self.r2_gamma > 0 or self.gp_weight > 0)) if on and k}
            _set(self, "_penalty_inputs", dict.fromkeys(roles) if roles else None)
            d_out = self._run_step("discriminator_step", real, labels)
            if roles:
                self._add_penalties(d_out, real, labels, k)
            if self._optimize(d_opt, "d_loss", d_out, batch_idx):
                _set(self, "d_steps", self.d_steps + 1)
        finally:
            _set(self, "_penalty_inputs", None)
            _untoggle(frozen)
        _set(self, "d_iters", self.d_iters + 1)
        logs.update(d_out)
        if self.d_iters % self.n_critic == 0:
            frozen = self._toggle(g_opt)
            try:
                g_out = self._run_step("generator_step", real, labels)
                if self._optimize(g_opt, "g_loss", g_out, batch_idx):
                    _set(self, "g_steps", self.g_steps + 1)
                    if self.g_ema is not None:
                        self._update_ema()
            finally:
                _untoggle(frozen)
            logs.update(g_out)
        logs = {k: v.detach() for k, v in logs.items() if k != "loss" and torch.is_tensor(v) and v.dim() == 0}
        if self._log_this_batch():
            scalars = {f"train/{k}": v.float() for k, v in logs.items()}
            scalars["train/skipped_steps"] = float(self.skipped_steps)
            self.log_dict(scalars, on_step=True, on_epoch=False, batch_size=len(real))
        return logs

    def _toggle(self, optimizer) -> list:
        """What `toggle_optimizer(optimizer)` does, at a fraction of its cost (it was ~3 % of the toy step).

        The parameters of the other optimizers that `optimizer` does not hold stop requiring grad (so the
        idle player accumulates no gradients); returns their (parameter, requires_grad) pairs, which
        `_untoggle` restores, as `untoggle_optimizer` does. Lightning's pair saves and resets every
        parameter of every optimizer through a dict keyed by tensors (Python-level hashing) on each call;
        this touches only the idle player's parameters and keeps no state on the module.
        """
        skip = {id(p) for group in optimizer.param_groups for p in group["params"]}
        frozen = []
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                for p in group["params"]:
                    if id(p) not in skip:
                        skip.add(id(p))
                        frozen.append((p, p.requires_grad))
                        p.requires_grad = False
        return frozen

    def _log_this_batch(self) -> bool:
        """Log on the batches Lightning writes to its loggers (every `log_every_n_steps` batches) and on the last.

        `self.log` costs far more than a small GAN's step (it was ~half of the step time on the default toy
        problem); on other batches its values would be dropped anyway. d_iters counts batches like Lightning's
        own logging counter, and both are restored on resume.
        """
        n, trainer = self.trainer.log_every_n_steps, self.trainer
        last = trainer.max_steps is not None and 0 < trainer.max_steps <= self.global_step
        return (n > 0 and self.d_iters % n == 0) or last or trainer.should_stop

    def _run_step(self, name: str, real, labels) -> dict:
        step = getattr(self, name)
        return step(real) if self._legacy_steps[name] else step(real, labels)

    def _optimize(self, opt, name: str, out: dict, batch_idx: int) -> bool:
        """zero_grad -> manual_backward -> step (through Lightning's wrapper, so global_step advances) -> scheduler."""
        opt.zero_grad(set_to_none=True)
        if not self._loss_is_finite(name, out, batch_idx):
            return False
        self.manual_backward(out["loss"])  # AMP-aware: this player's backward and step finish here
        opt.step()
        if self.scheduler_interval == "step":
            for sched in self._schedulers_of(opt.optimizer):
                sched.step()
        return True

    def _loss_is_finite(self, name: str, out: dict, batch_idx: int) -> bool:
        """True when out["loss"] is finite on every rank; otherwise skip (False) or save a checkpoint and raise.

        Runs before the backward, so the saved checkpoint holds the weights just before the offending step.
        """
        trainer = self.trainer
        bad = not math.isfinite(out["loss"].item())  # one host read (item() needs no detach); the step needs it
        # one rank's NaN must send every rank down the same branch, or the next collective deadlocks
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return True
        terms = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in out.items() if torch.is_tensor(v) and v.dim() == 0)
        where = f"global_step {self.global_step} (epoch {self.current_epoch}, batch {batch_idx})"
        player = name[0].upper()
        if self.nonfinite == "skip":
            _set(self, "skipped_steps", self.skipped_steps + 1)
            rank_zero_warn(f"GANModule: skipped the {player} step at {where}: non-finite {name} ({terms})")
            return False
        ckpt = trainer.checkpoint_callback
        folder = getattr(ckpt, "dirpath", None) or os.path.join(trainer.default_root_dir, "checkpoints")
        path = os.path.join(folder, f"nonfinite-step={self.global_step}.ckpt")
        trainer.save_checkpoint(path)  # every rank calls it (the decision above is shared); rank 0 writes
        raise NonFiniteLossError(
            f"non-finite {name} at {where}: {terms}. The state just before this {player} step was saved to {path}; "
            "lower the learning rate, add a penalty (r1_gamma) or set nonfinite='skip'.")

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.g_steps <= self.ema_start and self.g_ema.n_averaged > 0:  # warm-up: the EMA copies G
            self.g_ema.module.load_state_dict(self.generator.state_dict())
        else:  # AveragedModel copies on its first update (n_averaged = 0), then averages
            self.g_ema.update_parameters(self.generator)
        for b_ema, b in zip(self.g_ema.module.buffers(), self.generator.buffers()):  # e.g. BN statistics: copied
            b_ema.copy_(b)

    def on_before_optimizer_step(self, optimizer) -> None:
        # Called after the AMP scaler unscaled the gradients.
        if self.grad_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip,
                                gradient_clip_algorithm=self.grad_clip_algorithm)

    def on_train_epoch_end(self) -> None:
        if self.scheduler_interval == "epoch":
            for sched in self._schedulers_of(None):
                sched.step()

    def _schedulers_of(self, optimizer) -> list:
        scheds = self.lr_schedulers()
        scheds = [] if scheds is None else scheds if isinstance(scheds, list) else [scheds]
        return [s for s in scheds if optimizer is None or s.optimizer is optimizer]

    def on_train_end(self) -> None:
        # Callbacks' on_train_end (checkpoints, metrics) ran before this hook: nothing written is lost.
        attempted = self.d_iters + self.d_iters // self.n_critic
        if self.skipped_steps > self.max_skipped_fraction * max(attempted, 1):
            raise NonFiniteLossError(
                f"the run skipped {self.skipped_steps} of {attempted} optimizer steps for non-finite losses (more "
                f"than max_skipped_fraction={self.max_skipped_fraction}); its results are not trustworthy: lower the "
                "learning rate or add a penalty")

    # ------------------------------------------------------------------ checkpoint state
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["gan_module"] = {**{name: getattr(self, name) for name in _COUNTERS}, **self.rng.state_dict()}
        if getattr(self, "class_frequencies", None) is not None:  # label_sampler="data": lgans-sample draws alike
            checkpoint["gan_module"]["class_frequencies"] = self.class_frequencies.tolist()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("gan_module")
        if state is None:  # e.g. a checkpoint written by another module: weights only, fresh counters
            return
        for name in _COUNTERS:
            setattr(self, name, state[name])
        self.rng.load_state_dict({k: state[k] for k in ("latent_rng", "torch_rng", "cuda_rng")})
        if "class_frequencies" in state:
            self.class_frequencies = torch.tensor(state["class_frequencies"], dtype=torch.float)
