"""GANModule: the LightningModule that trains any G/D pair with any loss of the library.

Data path of one training batch (manual optimization, optimizers in the fixed order [D, G]):

    batch -> real_from_batch -> discriminator_step(real) -> {"loss": L_D + k·penalties}
          -> manual_backward -> clip (on_before_optimizer_step) -> D step -> D scheduler
    every n_critic-th batch, also:
          -> generator_step(real) -> {"loss": L_G} -> manual_backward -> G step -> G scheduler -> EMA

Override points: `sample_latent(n)`, `real_from_batch(batch)`, `discriminator_step(real)`,
`generator_step(real)` (each step returns a dict with "loss" plus scalars to log).

`global_step` (Lightning's count of optimizer steps): every batch makes one D step and every
n_critic-th batch one G step, so after B batches without skipped steps
    global_step = B + B // n_critic,    generator steps = B // n_critic.
`Trainer(max_steps=GANModule.max_steps_for(g, n_critic))` stops right after the g-th G step.
After each G step global_step is a multiple of n_critic + 1; choose `every_n_train_steps`
of ModelCheckpoint as a multiple of n_critic + 1, or some checkpoints are never hit.
Skipped (non-finite) steps do not advance global_step.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Callable, Optional, Union

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn

from . import regularizers
from .distributed import all_gather_with_grad
from .ema import ema_update, make_ema
from .latents import rank_slice_draw, resolve_sampler, seeded_generator
from .nonfinite import NONFINITE_MODES, NonFiniteLossError, loss_is_finite
from .resume import ResumableState

__all__ = ["GANModule", "NonFiniteLossError"]

# Lightning warns that step-interval checkpoints of a manually optimised module hold the
# state after the optimizer step. For GANModule that is the intended state: the checkpoint
# also holds the step counters and RNG streams (resume.py), and resuming from it continues
# exactly (tests/test_resume.py), so the warning would only mislead.
warnings.filterwarnings("ignore", message="Using ModelCheckpoint with manual optimization and every_n_train_steps")


def _plain(x: Any) -> Any:
    """Config values as builtins (DictConfig/tuples -> dict/list) so checkpoints load with weights_only."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, Sequence) and not isinstance(x, str):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"hyper-parameter value {x!r} is not a plain number, string, list or dict")


def _rand(shape, generator, device):  # U[0, 1): WGAN-GP mixing weights, drawn like latents
    return torch.rand(shape, generator=generator, device=device)


_DEFAULT_OPT = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


class GANModule(ResumableState, pl.LightningModule):
    """Train `generator` against `discriminator` with a loss from `lightning_gans.losses`.

    Args:
        generator, discriminator: nn.Modules; G maps (N, *latent_shape) -> samples, D maps samples -> (N,) or (N, 1).
        loss: a loss name for `lightning_gans.losses.get`, or a GANLoss object (anything with
            `d_loss(real_out, fake_out)` and `g_loss(real_out, fake_out)`).
        loss_params: keyword parameters of the named loss, e.g. {"pairing": "all"} for rsgan.
        g_optimizer, d_optimizer: factories `params -> Optimizer` (Hydra `_partial_: true`); default Adam(2e-4, (0.5, 0.999)).
        g_scheduler, d_scheduler: factories `optimizer -> LRScheduler` or None; stepped after each step of their
            optimizer (`scheduler_interval="step"`) or at each epoch end ("epoch").
        latent_dim: int or shape of one latent code; default `generator.latent_dim`.
        latent_sampler: "normal", "uniform" (U[-1, 1)) or a callable `(shape, generator, device) -> Tensor`.
        n_critic: D steps per G step (each D step on its own batch).
        r1_gamma, r2_gamma: γ of R1 = (γ/2)E_p‖∇T‖² and R2 = (γ/2)E_q‖∇T‖² (SPEC §3); 0 disables.
        gp_weight: λ of the WGAN-GP penalty λE(‖∇T(x̂)‖ - 1)²; 0 disables.
        reg_interval: lazy regularization: penalties on every k-th D step, multiplied by k.
        ema_decay: decay of the generator EMA `g_ema` (used for sampling/evaluation); None disables.
        ema_start: generator steps during which the EMA copies G instead of averaging.
        grad_clip, grad_clip_algorithm: clip both players' gradients ("norm" or "value"), after AMP unscaling.
        nonfinite: "error" (save a checkpoint, raise NonFiniteLossError) or "skip" (drop that optimizer step).
        gather_logits: under DDP, evaluate the loss on all ranks' D outputs (all-gather with gradients), so an
            all-pairs relativistic loss pairs across the global batch.
        impl: kernel choice passed to `losses.get` ("auto", "fused", "ref").

    R3GAN (arXiv 2501.05441) is `loss="rsgan", loss_params={"pairing": "paired"}, r1_gamma=γ, r2_gamma=γ`.
    """

    _counters = ("d_iters", "d_steps", "g_steps", "skipped_steps")  # saved and restored by ResumableState

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        loss: Any = "nsgan",
        loss_params: Optional[Mapping] = None,
        g_optimizer: Optional[Callable] = None,
        d_optimizer: Optional[Callable] = None,
        g_scheduler: Optional[Callable] = None,
        d_scheduler: Optional[Callable] = None,
        latent_dim: Union[int, Sequence[int], None] = None,
        latent_sampler: Union[str, Callable, None] = "normal",
        n_critic: int = 1,
        r1_gamma: float = 0.0,
        r2_gamma: float = 0.0,
        gp_weight: float = 0.0,
        reg_interval: int = 1,
        ema_decay: Optional[float] = 0.999,
        ema_start: int = 0,
        grad_clip: Optional[float] = None,
        grad_clip_algorithm: str = "norm",
        scheduler_interval: str = "step",
        nonfinite: str = "error",
        gather_logits: bool = False,
        impl: str = "auto",
    ) -> None:
        super().__init__()
        self.automatic_optimization = False  # two players: manual optimization (Lightning 2.x has no optimizer_idx)
        if loss is None:
            raise ValueError("loss is required: a loss name or a GANLoss object (a module built with a loss object "
                             "does not record it in its checkpoint: pass loss=... to load_from_checkpoint)")
        if latent_sampler is None:
            raise ValueError("latent_sampler is required (a custom sampler is not recorded in checkpoints: "
                             "pass latent_sampler=... to load_from_checkpoint)")
        if latent_dim is None:
            latent_dim = getattr(generator, "latent_dim", None)
            if latent_dim is None:
                raise ValueError("latent_dim is required (the generator has no `latent_dim` attribute)")
        checks = [  # (argument, valid?, what it must be, value given)
            ("n_critic", n_critic >= 1, ">= 1", n_critic),
            ("reg_interval", reg_interval >= 1, ">= 1", reg_interval),
            ("r1_gamma", r1_gamma >= 0, ">= 0", r1_gamma),
            ("r2_gamma", r2_gamma >= 0, ">= 0", r2_gamma),
            ("gp_weight", gp_weight >= 0, ">= 0", gp_weight),
            ("nonfinite", nonfinite in NONFINITE_MODES, f"one of {NONFINITE_MODES}", nonfinite),
            ("scheduler_interval", scheduler_interval in ("step", "epoch"), "'step' or 'epoch'", scheduler_interval),
            ("ema_decay", ema_decay is None or 0 <= ema_decay <= 1, "None or in [0, 1]", ema_decay),
            ("ema_start", ema_start >= 0, ">= 0", ema_start),
            ("grad_clip", grad_clip is None or grad_clip > 0, "None or > 0", grad_clip),
            ("grad_clip_algorithm", grad_clip_algorithm in ("norm", "value"), "'norm' or 'value'", grad_clip_algorithm),
        ]
        for arg, ok, expected, value in checks:
            if not ok:
                raise ValueError(f"GANModule: {arg} must be {expected}, got {value!r}")
        latent_fn = resolve_sampler(latent_sampler)

        self.save_hyperparameters({
            "loss": loss if isinstance(loss, str) else None, "loss_params": _plain(dict(loss_params or {})),
            "latent_dim": _plain(latent_dim), "latent_sampler": latent_sampler if isinstance(latent_sampler, str) else None,
            "n_critic": n_critic, "r1_gamma": r1_gamma, "r2_gamma": r2_gamma, "gp_weight": gp_weight,
            "reg_interval": reg_interval, "ema_decay": ema_decay, "ema_start": ema_start, "grad_clip": grad_clip,
            "grad_clip_algorithm": grad_clip_algorithm, "scheduler_interval": scheduler_interval,
            "nonfinite": nonfinite, "gather_logits": gather_logits, "impl": impl,
        })
        self.generator, self.discriminator = generator, discriminator
        self.g_ema = make_ema(generator) if ema_decay is not None else None
        if isinstance(loss, str):
            from . import losses

            loss = losses.get(loss, impl=impl, **dict(loss_params or {}))
        self.loss = loss
        self.latent_shape = (latent_dim,) if isinstance(latent_dim, int) else tuple(latent_dim)
        self.latent_dim = latent_dim if isinstance(latent_dim, int) else self.latent_shape  # callbacks read it
        self._latent_fn = latent_fn
        self._opt_factories = (d_optimizer or _DEFAULT_OPT, g_optimizer or _DEFAULT_OPT)
        self._sched_factories = (d_scheduler, g_scheduler)
        self.n_critic, self.reg_interval, self.ema_start = n_critic, reg_interval, ema_start
        self.r1_gamma, self.r2_gamma, self.gp_weight, self.ema_decay = r1_gamma, r2_gamma, gp_weight, ema_decay
        self.grad_clip, self.grad_clip_algorithm = grad_clip, grad_clip_algorithm
        self.scheduler_interval, self.nonfinite, self.gather_logits = scheduler_interval, nonfinite, gather_logits
        # Training counters (in checkpoints, resume.py): D iterations drive the n_critic phase and lazy penalties.
        self.d_iters = self.d_steps = self.g_steps = self.skipped_steps = 0

    # ------------------------------------------------------------------ step budget
    @staticmethod
    def max_steps_for(g_steps: int, n_critic: int = 1) -> int:
        """`Trainer(max_steps=...)` that stops right after `g_steps` generator steps: g_steps·(n_critic + 1)."""
        return g_steps * (n_critic + 1)

    # ------------------------------------------------------------------ override points
    def real_from_batch(self, batch: Any) -> torch.Tensor:
        """Real samples of a batch: the batch itself, its first element (x, y), or batch["image"|"x"]."""
        if torch.is_tensor(batch):
            return batch
        if isinstance(batch, Mapping):
            for key in ("image", "images", "x", "data"):
                if key in batch:
                    return batch[key]
            raise KeyError(f"batch dict has none of the keys image/images/x/data (keys: {list(batch)}); "
                           "override GANModule.real_from_batch")
        if isinstance(batch, (list, tuple)) and batch and torch.is_tensor(batch[0]):
            return batch[0]
        raise TypeError(f"cannot take real samples from a batch of type {type(batch).__name__}; "
                        "override GANModule.real_from_batch")

    def sample_latent(self, n: int) -> torch.Tensor:
        """n latent codes (n, *latent_shape) for this rank, from `latent_generator` (see latents.py for DDP)."""
        return rank_slice_draw(self._latent_fn, n, self.latent_shape, self.latent_generator, self.device)

    def discriminator_step(self, real: torch.Tensor) -> dict:
        """One D loss: L_D(D(x_r), D(G(z))) plus k·(R1 + R2 + GP) on lazy-regularization steps."""
        n = real.shape[0]
        with torch.no_grad():
            fake = self.generator(self.sample_latent(n))
        k = regularizers.lazy_factor(self.d_iters, self.reg_interval)
        use_r1, use_r2 = k > 0 and self.r1_gamma > 0, k > 0 and self.r2_gamma > 0
        real = real.detach().requires_grad_(use_r1)  # input gradients for R1/R2 from the same forward
        fake = fake.detach().requires_grad_(use_r2)
        real_out, fake_out = self.discriminator(real), self.discriminator(fake)
        d_loss = self.loss.d_loss(*self.collect_logits(real_out, fake_out))
        out = {"loss": d_loss, "d_loss": d_loss, "d_real": real_out.detach().float().mean(),
               "d_fake": fake_out.detach().float().mean()}
        if use_r1:
            out["r1"] = regularizers.r1_penalty(real_out, real, self.r1_gamma)
        if use_r2:
            out["r2"] = regularizers.r2_penalty(fake_out, fake, self.r2_gamma)
        if k > 0 and self.gp_weight > 0:
            eps = rank_slice_draw(_rand, min(n, fake.shape[0]), (), self.latent_generator, self.device)
            out["gp"] = regularizers.wgan_gp_penalty(self.discriminator, real, fake, self.gp_weight, eps=eps)
        for name in ("r1", "r2", "gp"):
            if name in out:
                out["loss"] = out["loss"] + k * out[name]
        return out

    def generator_step(self, real: torch.Tensor) -> dict:
        """One G loss: L_G(D(x_r), D(G(z))). D(x_r) enters relativistic G losses; it needs no gradient here."""
        fake_out = self.discriminator(self.generator(self.sample_latent(real.shape[0])))
        if getattr(self.loss, "relativistic", True):
            with torch.no_grad():
                real_out = self.discriminator(real)
        else:  # non-relativistic G losses ignore real_out (GANLoss contract): save a D forward
            real_out = fake_out.detach()
        g_loss = self.loss.g_loss(*self.collect_logits(real_out, fake_out))
        return {"loss": g_loss, "g_loss": g_loss}

    # ------------------------------------------------------------------ helpers for steps
    def collect_logits(self, real_out: torch.Tensor, fake_out: torch.Tensor):
        """The D outputs the loss sees: this rank's, or every rank's when `gather_logits` (see distributed.py)."""
        if self.gather_logits:
            return all_gather_with_grad(real_out), all_gather_with_grad(fake_out)
        return real_out, fake_out

    # ------------------------------------------------------------------ sampling / evaluation
    @property
    def eval_generator(self) -> nn.Module:
        """The EMA generator when there is one, else the training generator."""
        return self.g_ema if self.g_ema is not None else self.generator

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.eval_generator(z)

    @torch.no_grad()
    def sample(self, n: Optional[int] = None, z: Optional[torch.Tensor] = None, ema: bool = True,
               seed: int = 0) -> torch.Tensor:
        """Samples (in eval mode) from codes `z`, or from n codes drawn with `seed`; EMA generator unless ema=False.

        The same n and seed give the same codes: evaluations are comparable across steps and runs.
        """
        if z is None:
            if n is None:
                raise ValueError("sample() needs n (how many samples) or z (the latent codes)")
            z = self._latent_fn((n, *self.latent_shape), seeded_generator(seed, self.device), self.device)
        gen = self.eval_generator if ema else self.generator
        was_training = gen.training
        gen.eval()
        try:
            return gen(z.to(self.device))
        finally:
            gen.train(was_training)

    # ------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        # D steps leave G's parameters without gradients (pitfall 6): DDP must look for unused parameters.
        strategy = self.trainer.strategy
        if isinstance(strategy, DDPStrategy) and hasattr(strategy, "_ddp_kwargs"):
            if strategy._ddp_kwargs.get("find_unused_parameters") is False:
                raise ValueError("GANModule needs DDP with find_unused_parameters=True (each player's step leaves "
                                 "the other's parameters unused); use strategy='ddp' or 'ddp_find_unused_parameters_true'")
            strategy._ddp_kwargs.setdefault("find_unused_parameters", True)

    def configure_optimizers(self):
        """Fixed order [D, G] so checkpoints resume into the right optimizer (pitfall 9)."""
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

    def training_step(self, batch: Any, batch_idx: int) -> dict:
        real = self.real_from_batch(batch)
        d_opt, g_opt = self.optimizers()
        logs = {}
        self.toggle_optimizer(d_opt)  # every toggle has its untoggle (pitfall 5)
        try:
            d_out = self.discriminator_step(real)
            if self._optimize(d_opt, "d_loss", d_out, batch_idx):
                self.d_steps += 1
        finally:
            self.untoggle_optimizer(d_opt)
        self.d_iters += 1
        logs.update(d_out)
        if self.d_iters % self.n_critic == 0:
            self.toggle_optimizer(g_opt)
            try:
                g_out = self.generator_step(real)
                if self._optimize(g_opt, "g_loss", g_out, batch_idx):
                    self.g_steps += 1
                    if self.g_ema is not None:
                        decay = self.ema_decay if self.g_steps > self.ema_start else 0.0
                        ema_update(self.g_ema, self.generator, decay)
            finally:
                self.untoggle_optimizer(g_opt)
            logs.update(g_out)
        logs = {k: v.detach().float() for k, v in logs.items() if k != "loss" and torch.is_tensor(v) and v.dim() == 0}
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True, on_epoch=False, batch_size=len(real))
        self.log("train/skipped_steps", float(self.skipped_steps), on_step=True, on_epoch=False, batch_size=len(real))
        return logs

    def _optimize(self, opt, name: str, out: dict, batch_idx: int) -> bool:
        """zero_grad -> manual_backward -> step (through Lightning's wrapper, pitfall 4) -> scheduler."""
        opt.zero_grad(set_to_none=True)
        if not loss_is_finite(self, name, out, batch_idx):
            return False
        self.manual_backward(out["loss"])  # AMP-aware (pitfall 7): this player's backward and step finish here
        opt.step()
        if self.scheduler_interval == "step":
            for sched in self._schedulers_of(opt.optimizer):
                sched.step()
        return True

    def on_before_optimizer_step(self, optimizer) -> None:
        # Called after the AMP scaler unscaled the gradients; Trainer(gradient_clip_val) is rejected in manual mode.
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
