"""GANModule: the LightningModule that trains any G/D pair with any loss of the library.

One batch (manual optimization, optimizers in the fixed order [D, G]):

    batch -> (x, y) -> discriminator_step(x, y) -> {"loss": L_D} -> + k·(R1 + R2 + GP) -> backward -> D step
    every n_critic-th batch, also:
          -> generator_step(x, y) -> {"loss": L_G} -> backward -> G step -> EMA update

The steps are the override points; the loop around them adds the penalties, checks for
non-finite losses, steps optimizers and schedulers, updates the EMA and logs, so a subclass
that overrides one step keeps all of that. Inside a step, `discriminate(x, y)` is D (after
DiffAugment, when on) and `generate(z, y)` is G; y is None for an unconditional GAN.

`global_step` (Lightning's count of optimizer steps): one D step per batch plus one G step every
n_critic-th batch, so after B batches without skipped steps global_step = B + B // n_critic.
`Trainer(max_steps=GANModule.max_steps_for(g, n_critic))` stops right after the g-th G step.
Everything this module logs uses global_step as its x-axis (Lightning's "step" key).
"""
from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, Callable, Optional, Union

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .. import losses
from . import penalties
from .distributed import all_gather_with_grad
from .augment import DiffAugment
from .loop import NONFINITE_MODES, ManualGANLoop, NonFiniteLossError, _set
from .rng import RngStreams, default_labels, rank_slice_draw, resolve_sampler, seeded_generator

__all__ = ["GANModule", "NonFiniteLossError"]

_DEFAULT_OPT = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))


def _plain(x: Any) -> Any:
    """Config values as builtins (DictConfig/tuples -> dict/list) so checkpoints load with weights_only."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, Sequence) and not isinstance(x, str):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    raise TypeError(f"hyper-parameter value {x!r} is not a plain number, string, list or dict")


def _check_args(**kw) -> None:
    rules = {  # argument: (valid?, what it must be)
        "n_critic": (lambda v: v >= 1, ">= 1"), "reg_interval": (lambda v: v >= 1, ">= 1"),
        "r1_gamma": (lambda v: v >= 0, ">= 0"), "r2_gamma": (lambda v: v >= 0, ">= 0"),
        "gp_weight": (lambda v: v >= 0, ">= 0"), "ema_start": (lambda v: v >= 0, ">= 0"),
        "nonfinite": (lambda v: v in NONFINITE_MODES, f"one of {NONFINITE_MODES}"),
        "max_skipped_fraction": (lambda v: 0 <= v <= 1, "in [0, 1]"),
        "scheduler_interval": (lambda v: v in ("step", "epoch"), "'step' or 'epoch'"),
        "ema_decay": (lambda v: v is None or 0 <= v <= 1, "None or in [0, 1]"),
        "grad_clip": (lambda v: v is None or v > 0, "None or > 0"),
        "grad_clip_algorithm": (lambda v: v in ("norm", "value"), "'norm' or 'value'"),
        "num_classes": (lambda v: v is None or (isinstance(v, int) and v >= 1), "None or an int >= 1"),
        "label_sampler": (lambda v: v in ("uniform", "data"), "'uniform' or 'data'"),
        "pack": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "an int >= 1"),
    }
    for arg, value in kw.items():
        ok, expected = rules[arg]
        if not ok(value):
            raise ValueError(f"GANModule: {arg} must be {expected}, got {value!r}")
    if kw["pack"] > 1 and kw["num_classes"] is not None:
        # a pack mixes labels: which class would D's one output be judged against?
        raise ValueError(f"GANModule: pack={kw['pack']} needs an unconditional GAN (num_classes=None), "
                         f"got num_classes={kw['num_classes']}")


class GANModule(ManualGANLoop):
    """Train `generator` against `discriminator` with a loss from `lightning_gans.losses`.

    Args:
        generator, discriminator: nn.Modules. G maps (N, *latent_shape) -> samples, D maps samples -> (N,) or
            (N, 1); with `num_classes`, G is called as G(z, y) and D as D(x, y), y an int64 (N,) of labels.
        loss: a loss name, a mapping {"name": ..., **params} (e.g. {"name": "rsgan", "pairing": "all"}) or a
            GANLoss object; see `lightning_gans.losses.get`.
        g_optimizer, d_optimizer: factories `params -> Optimizer` (Hydra `_partial_: true`); default Adam(2e-4, (0.5, 0.999)).
        g_scheduler, d_scheduler: factories `optimizer -> LRScheduler` or None; stepped after each step of their
            optimizer (`scheduler_interval="step"`) or at each epoch end ("epoch").
        latent_dim: int or shape of one latent code; default `generator.latent_dim`.
        latent_sampler: "normal", "uniform" (U[-1, 1)) or a callable `(shape, generator, device) -> Tensor`.
        n_critic: D steps per G step (each D step on its own batch).
        r1_gamma, r2_gamma: γ of R1 = (γ/2)E_p‖∇_x D‖² and R2 = (γ/2)E_q‖∇_x D‖² (gradients w.r.t. the images only).
        gp_weight: λ of the WGAN-GP penalty λE(‖∇D(x̂)‖ - 1)²; 0 disables.
        reg_interval: lazy regularization: penalties on every k-th D step, multiplied by k.
        ema_decay: decay of the generator EMA `g_ema` (torch's AveragedModel; used by `sample`); None disables.
        ema_start: generator steps during which the EMA copies G instead of averaging (it always starts as
            a copy of G after its first step).
        grad_clip, grad_clip_algorithm: clip both players' gradients ("norm" or "value"), after AMP unscaling.
        nonfinite: "error" (save a checkpoint, raise NonFiniteLossError) or "skip" (drop that optimizer step).
        max_skipped_fraction: with "skip", a run that skipped more than this share of its optimizer steps
            raises NonFiniteLossError at the end (after its checkpoints are written).
        gather_logits: under DDP, evaluate the loss on all ranks' D outputs (all-gather with gradients), so an
            all-pairs relativistic loss pairs across the global batch.
        num_classes: K for a class-conditional GAN (labels in [0, K)); None: unconditional.
        label_sampler: the generator's labels: "uniform" over [0, K), or "data" (the data module's
            `class_frequencies`); drawn from the same seeded stream as the latents.
        augment: DiffAugment ops applied to every image D sees, real and fake, in both steps (Zhao et al.
            2020), e.g. "translation,cutout,color" or a list of ops; None: off. See augment.py.
        augment_p: probability of each op per sample (1.0 as in DiffAugment).
        pack: PacGAN's packing (Lin et al. 2018): D judges `pack` samples at once, concatenated along
            dim 1 (features, or channels for images), so it sees B/pack inputs per batch of B and every
            loss and penalty works on packs (a relativistic pairing pairs packs). D's input width must
            be pack × the data's (conf/model/*.yaml set it from `model.pack`). 1: off.
        impl: kernel choice for the loss ("auto", "fused", "ref").
    """

    def __init__(self, generator: nn.Module, discriminator: nn.Module, loss: Any = "nsgan",
                 g_optimizer: Optional[Callable] = None, d_optimizer: Optional[Callable] = None,
                 g_scheduler: Optional[Callable] = None, d_scheduler: Optional[Callable] = None,
                 latent_dim: Union[int, Sequence[int], None] = None, latent_sampler: Union[str, Callable] = "normal",
                 n_critic: int = 1, r1_gamma: float = 0.0, r2_gamma: float = 0.0, gp_weight: float = 0.0,
                 reg_interval: int = 1, ema_decay: Optional[float] = 0.999, ema_start: int = 0,
                 grad_clip: Optional[float] = None, grad_clip_algorithm: str = "norm",
                 scheduler_interval: str = "step", nonfinite: str = "error", max_skipped_fraction: float = 0.01,
                 gather_logits: bool = False, num_classes: Optional[int] = None, label_sampler: str = "uniform",
                 augment: Union[str, Sequence[str], None] = None, augment_p: float = 1.0, pack: int = 1,
                 impl: str = "auto", loss_params: Optional[Mapping] = None) -> None:
        super().__init__()
        self.automatic_optimization = False  # two players: manual optimization (Lightning 2.x has no optimizer_idx)
        if loss_params:
            warnings.warn("GANModule(loss_params=...) is deprecated: pass loss={'name': ..., **params}",
                          DeprecationWarning, stacklevel=2)
            loss = {"name": loss, **dict(loss_params)}
        if latent_dim is None:
            latent_dim = getattr(generator, "latent_dim", None)
            if latent_dim is None:
                raise ValueError("GANModule: latent_dim is required (the generator has no `latent_dim` attribute)")
        _check_args(n_critic=n_critic, reg_interval=reg_interval, r1_gamma=r1_gamma, r2_gamma=r2_gamma,
                    gp_weight=gp_weight, ema_start=ema_start, nonfinite=nonfinite,
                    max_skipped_fraction=max_skipped_fraction, scheduler_interval=scheduler_interval,
                    ema_decay=ema_decay, grad_clip=grad_clip, grad_clip_algorithm=grad_clip_algorithm,
                    num_classes=num_classes, label_sampler=label_sampler, pack=pack)
        self._latent_fn = resolve_sampler(latent_sampler)
        self.loss = losses.get(loss, impl=impl)
        self.save_hyperparameters({
            "loss": _plain(loss) if isinstance(loss, (str, Mapping)) else None, "latent_dim": _plain(latent_dim),
            "latent_sampler": latent_sampler if isinstance(latent_sampler, str) else None,
            "n_critic": n_critic, "r1_gamma": r1_gamma, "r2_gamma": r2_gamma, "gp_weight": gp_weight,
            "reg_interval": reg_interval, "ema_decay": ema_decay, "ema_start": ema_start, "grad_clip": grad_clip,
            "grad_clip_algorithm": grad_clip_algorithm, "scheduler_interval": scheduler_interval,
            "nonfinite": nonfinite, "max_skipped_fraction": max_skipped_fraction, "gather_logits": gather_logits,
            "num_classes": num_classes, "label_sampler": label_sampler, "augment": _plain(augment),
            "augment_p": augment_p, "pack": pack, "impl": impl,
        })
        self.generator, self.discriminator = generator, discriminator
        self.g_ema = None
        if ema_decay is not None:
            self.g_ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=False)
            self.g_ema.requires_grad_(False)
        self.latent_shape = (latent_dim,) if isinstance(latent_dim, int) else tuple(latent_dim)
        self.latent_dim = latent_dim if isinstance(latent_dim, int) else self.latent_shape  # callbacks read it
        self._opt_factories = (d_optimizer or _DEFAULT_OPT, g_optimizer or _DEFAULT_OPT)
        self._sched_factories = (d_scheduler, g_scheduler)
        self.n_critic, self.reg_interval, self.ema_start = n_critic, reg_interval, ema_start
        self.r1_gamma, self.r2_gamma, self.gp_weight, self.ema_decay = r1_gamma, r2_gamma, gp_weight, ema_decay
        self.grad_clip, self.grad_clip_algorithm = grad_clip, grad_clip_algorithm
        self.scheduler_interval, self.nonfinite, self.gather_logits = scheduler_interval, nonfinite, gather_logits
        self.max_skipped_fraction, self.num_classes, self.label_sampler = max_skipped_fraction, num_classes, label_sampler
        self.pack = pack
        self.class_frequencies: Optional[torch.Tensor] = None  # set at fit start for label_sampler="data"
        self.rng = RngStreams()
        # x -> augmented x, applied in `discriminate`; drawn from the latent stream (checkpointed, rank-sliced)
        self.augment: Optional[Callable] = DiffAugment(augment, augment_p, self.rng.generator) if augment else None
        self.d_iters = self.d_steps = self.g_steps = self.skipped_steps = 0
        self._penalty_inputs: Optional[dict] = None  # filled by `discriminate` during a regularized D step
        self._legacy_steps = {name: len(inspect.signature(getattr(self, name)).parameters) == 1
                              for name in ("discriminator_step", "generator_step")}
        for name, legacy in self._legacy_steps.items():
            if legacy:
                warnings.warn(f"{type(self).__name__}.{name}(real) is deprecated: steps now take (real, labels)",
                              DeprecationWarning, stacklevel=2)

    @staticmethod
    def max_steps_for(g_steps: int, n_critic: int = 1) -> int:
        """`Trainer(max_steps=...)` that stops right after `g_steps` generator steps: g_steps·(n_critic + 1)."""
        return g_steps * (n_critic + 1)

    # ------------------------------------------------------------------ inputs
    @property
    def latent_generator(self) -> torch.Generator:
        """The torch.Generator of training latents, labels and GP mixing weights (its state is in checkpoints)."""
        return self.rng.generator(self.device)

    def real_from_batch(self, batch: Any) -> torch.Tensor:
        """The images (samples) of a batch: the batch itself, its first element (x, y), or batch["image"|"x"]."""
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

    def labels_from_batch(self, batch: Any) -> Optional[torch.Tensor]:
        """The labels of a batch, (x, y) or {"label"|"labels"|"y": y}, for a conditional GAN; None otherwise."""
        if self.num_classes is None:
            return None
        y = None
        if isinstance(batch, Mapping):
            y = next((batch[k] for k in ("label", "labels", "y") if k in batch), None)
        elif isinstance(batch, (list, tuple)) and len(batch) > 1:
            y = batch[1]
        if not torch.is_tensor(y):
            raise ValueError(f"GANModule(num_classes={self.num_classes}) needs labelled batches, (x, y) or "
                             "{'image': x, 'label': y}; this batch has no labels")
        return self.check_labels(y, "batch labels")

    def check_labels(self, y: torch.Tensor, what: str = "labels") -> torch.Tensor:
        if self.num_classes is None:
            raise ValueError(f"{what} given to an unconditional GANModule (num_classes=None)")
        y = torch.as_tensor(y, device=self.device).long().reshape(-1)
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes):
            raise ValueError(f"{what} must lie in [0, {self.num_classes}), got values in "
                             f"[{int(y.min())}, {int(y.max())}]")
        return y

    def sample_latent(self, n: int) -> torch.Tensor:
        """n latent codes (n, *latent_shape) for this rank, from `latent_generator` (see rng.py for DDP)."""
        return rank_slice_draw(self._latent_fn, n, self.latent_shape, self.latent_generator, self.device)

    def sample_labels(self, n: int) -> Optional[torch.Tensor]:
        """n generator labels for this rank (None when unconditional), from the latent stream."""
        if self.num_classes is None:
            return None
        if self.label_sampler == "data":
            freq = self.class_frequencies.to(self.device)
            return rank_slice_draw(lambda s, g, d: torch.multinomial(freq, s[0], True, generator=g),
                                   n, (), self.latent_generator, self.device)
        k = self.num_classes
        return rank_slice_draw(lambda s, g, d: torch.randint(k, s, generator=g, device=d), n, (),
                               self.latent_generator, self.device)

    # ------------------------------------------------------------------ the players
    def generate(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None, net: Optional[nn.Module] = None):
        """G(z) or, when conditional, G(z, y)."""
        net = self.generator if net is None else net
        return net(z) if self.num_classes is None else net(z, labels)

    def discriminate(self, x: torch.Tensor, labels: Optional[torch.Tensor] = None, role: Optional[str] = None):
        """D's outputs on x (augmented first, when `augment` is set): D(x), or D(x, y) when conditional.

        role="real" / "fake" in a regularized D step lets the penalties reuse this forward: x then
        becomes a leaf that requires grad (R1/R2 differentiate w.r.t. the images D saw, never the labels).
        """
        if self.augment is not None:
            x = self.augment(x)
        if self._penalty_inputs is not None and role in self._penalty_inputs:
            x = x.detach().requires_grad_(True)
        out = self._discriminator_forward(x, labels)
        if self._penalty_inputs is not None and role in self._penalty_inputs:
            self._penalty_inputs[role] = (x, labels, out)
        return out

    def _discriminator_forward(self, x: torch.Tensor, labels: Optional[torch.Tensor]) -> torch.Tensor:
        """D(x) or D(x, y) on packs of `pack` consecutive samples (B/pack outputs for B samples)."""
        if self.pack > 1:
            if x.shape[0] % self.pack:
                raise ValueError(f"GANModule(pack={self.pack}): D's batches must be a multiple of pack, "
                                 f"got {x.shape[0]} samples (set the data's batch size to a multiple)")
            # (B, C, ...) -> (B/m, m·C, ...): a view of contiguous rows, so pack i is samples i·m .. i·m+m-1
            x = x.reshape(x.shape[0] // self.pack, self.pack * x.shape[1], *x.shape[2:])
        return self.discriminator(x) if self.num_classes is None else self.discriminator(x, labels)

    def collect_logits(self, real_out: torch.Tensor, fake_out: torch.Tensor):
        """The D outputs the loss sees: this rank's, or every rank's when `gather_logits` (see distributed.py)."""
        if self.gather_logits:
            return all_gather_with_grad(real_out), all_gather_with_grad(fake_out)
        return real_out, fake_out

    # ------------------------------------------------------------------ override points
    def discriminator_step(self, real: torch.Tensor, labels: Optional[torch.Tensor] = None) -> dict:
        """L_D(D(x_r), D(G(z))): a dict with "loss" plus scalars to log (penalties are added by the loop)."""
        n = real.shape[0]
        with torch.no_grad():
            fake_labels = self.sample_labels(n)
            fake = self.generate(self.sample_latent(n), fake_labels)
        real_out = self.discriminate(real, labels, role="real")
        fake_out = self.discriminate(fake, fake_labels, role="fake")
        d_loss = self.loss.d_loss(*self.collect_logits(real_out, fake_out))
        return {"loss": d_loss, "d_loss": d_loss, "d_real": real_out.detach().float().mean(),
                "d_fake": fake_out.detach().float().mean()}

    def generator_step(self, real: torch.Tensor, labels: Optional[torch.Tensor] = None) -> dict:
        """L_G(D(x_r), D(G(z))). D(x_r) enters relativistic G losses and needs no gradient here."""
        n = real.shape[0]
        fake_labels = self.sample_labels(n)
        fake_out = self.discriminate(self.generate(self.sample_latent(n), fake_labels), fake_labels)
        if getattr(self.loss, "relativistic", True):
            with torch.no_grad():
                real_out = self.discriminate(real, labels)
        else:  # non-relativistic G losses ignore real_out (GANLoss contract): save a D forward
            real_out = fake_out.detach()
        g_loss = self.loss.g_loss(*self.collect_logits(real_out, fake_out))
        return {"loss": g_loss, "g_loss": g_loss}

    # ------------------------------------------------------------------ penalties (outside the override points)
    def _add_penalties(self, out: dict, real: torch.Tensor, labels, k: int) -> None:
        """out["loss"] += k·(R1 + R2 + GP), reusing the step's D forwards when it went through `discriminate`."""
        seen = self._penalty_inputs
        _set(self, "_penalty_inputs", None)
        for role, gamma, name in (("real", self.r1_gamma, "r1"), ("fake", self.r2_gamma, "r2")):
            if gamma > 0:
                x, y, d_out = seen.get(role) or self._penalty_forward(role, real, labels)
                out[name] = penalties.zero_centred(d_out, x, gamma)
        if self.gp_weight > 0:
            x_r, y_r, _ = seen.get("real") or (real, labels, None)
            x_f, y_f, _ = seen.get("fake") or self._penalty_forward("fake", real, labels)
            n = min(len(x_r), len(x_f))
            eps = rank_slice_draw(lambda s, g, d: torch.rand(s, generator=g, device=d), n, (),
                                  self.latent_generator, self.device)
            d = lambda x: self._discriminator_forward(x, None if y_r is None else y_r[:n])  # noqa: E731
            out["gp"] = penalties.wgan_gp(d, x_r, x_f, self.gp_weight, eps=eps)
        for name in ("r1", "r2", "gp"):
            if name in out:  # k = 1 (no lazy interval): the same sum without a multiply by 1 and its backward
                out["loss"] = out["loss"] + (out[name] if k == 1 else k * out[name])

    def _penalty_forward(self, role: str, real, labels):
        """A D forward for a penalty when an overridden step did not go through `discriminate(role=...)`."""
        self._penalty_inputs = {role: None}
        if role == "fake":
            with torch.no_grad():
                labels = self.sample_labels(real.shape[0])
                real = self.generate(self.sample_latent(real.shape[0]), labels)
        self.discriminate(real, labels, role=role)
        seen, self._penalty_inputs = self._penalty_inputs, None
        return seen[role]

    # ------------------------------------------------------------------ sampling
    @property
    def eval_generator(self) -> nn.Module:
        """The EMA generator when there is one, else the training generator."""
        return self.g_ema.module if self.g_ema is not None else self.generator

    def forward(self, z: torch.Tensor, labels: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.generate(z, labels, self.eval_generator)

    @staticmethod
    def load_generator(path, ema: bool = True, generator: Optional[nn.Module] = None,
                       map_location="cpu") -> nn.Module:
        """The eval-mode generator of a run (a .ckpt or the run directory), EMA weights unless ema=False.

        The net is rebuilt from the run's config.yaml (what lgans-train writes), or pass `generator`
        to fill; weights load with weights_only=True. Call it as G(z) or, conditional, G(z, y). See runs.py.
        """
        from .runs import load_run

        return load_run(path, ema=ema, generator=generator, map_location=map_location).generator

    @torch.no_grad()
    def sample(self, n: Optional[int] = None, z: Optional[torch.Tensor] = None, labels=None, ema: bool = True,
               seed: int = 0) -> torch.Tensor:
        """Samples (in eval mode) from codes `z`, or from n codes drawn with `seed`; EMA generator unless ema=False.

        Conditional: `labels` (n,) ints in [0, K); default 0, 1, ..., K-1, 0, 1, ..., or with
        label_sampler="data" the labels in the data's proportions (`rng.default_labels`). The same n
        and seed give the same codes, so evaluations are comparable across steps and runs.
        """
        if z is None:
            if n is None:
                raise ValueError("sample() needs n (how many samples) or z (the latent codes)")
            z = self._latent_fn((n, *self.latent_shape), seeded_generator(seed, self.device), self.device)
        if self.num_classes is not None:
            if labels is None:
                freq = getattr(self, "class_frequencies", None) if self.label_sampler == "data" else None
                labels = default_labels(len(z), self.num_classes, freq)
            labels = self.check_labels(labels, "sample(labels=...)")
            if len(labels) != len(z):
                raise ValueError(f"sample(labels=...) needs one label per sample: {len(labels)} labels, {len(z)} codes")
        elif labels is not None:
            self.check_labels(labels, "sample(labels=...)")
        gen = self.eval_generator if ema else self.generator
        was_training = gen.training
        gen.eval()
        try:
            return self.generate(z.to(self.device), labels, gen)
        finally:
            gen.train(was_training)
