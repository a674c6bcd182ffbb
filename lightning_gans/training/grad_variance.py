"""How noisy is each player's gradient? A callback that measures it during a run, for the run's loss
and for alternatives on the same weights and batches (e.g. paired vs all-pairs RSGAN).

All-pairs pairing averages each real logit against every fake one (N·M terms instead of N), which
should lower the variance of the gradient over batches at equal batch size; this measures by how
much. Every `every_n_steps` optimizer steps, with D and G frozen as they are, it draws `batches`
fresh batches (real samples from the data module's `sample_real`, latents from its own seeded
stream, never the training one, so the run itself is unchanged) and for each loss of `compare`
computes the gradient g_t of L_D w.r.t. D's parameters and of L_G w.r.t. G's. It reports, per
player, the total variance over batches tr Cov = Σ‖g_t − ḡ‖² / (T − 1) and the squared norm of the
mean gradient ‖ḡ‖² (the signal), into `<output_dir>/grad_variance.json`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import lightning.pytorch as pl
import torch

from .. import losses

__all__ = ["GradientVariance", "gradient_variance"]


def _flat_grad(value: torch.Tensor, params: list) -> torch.Tensor:
    return torch.cat([g.flatten() for g in torch.autograd.grad(value, params, retain_graph=True)])


def _stats(grads: list[torch.Tensor]) -> dict:
    g = torch.stack(grads).double()  # (T, P)
    mean = g.mean(0)
    return {"var": float((g - mean).square().sum(1).sum() / (len(g) - 1)), "mean_sq": float(mean.square().sum())}


def gradient_variance(module, sample_real, loss_specs: Sequence, batches: int = 50, batch_size: int = 256,
                      seed: int = 0) -> dict:
    """{loss label: {"d": {"var", "mean_sq"}, "g": {...}}} over `batches` batches, the same for every loss."""
    if module.num_classes is not None:
        raise ValueError("gradient_variance: conditional modules are not supported (labels would need drawing)")
    if batches < 2:
        raise ValueError(f"gradient_variance: batches must be >= 2, got {batches}")
    objs = {_label(s): losses.get(s) for s in loss_specs}
    d_params = [p for p in module.discriminator.parameters() if p.requires_grad]
    g_params = [p for p in module.generator.parameters() if p.requires_grad]
    grads = {k: {"d": [], "g": []} for k in objs}
    gen = torch.Generator(device=module.device).manual_seed(seed)
    d, g = module._discriminator_forward, module.generator
    for t in range(batches):
        real = sample_real(batch_size, seed=seed * 100003 + t).to(module.device, torch.float32)
        z = module._latent_fn((batch_size, *module.latent_shape), gen, module.device)
        # one forward per side serves both players: each gradient is taken w.r.t. its own player's parameters
        real_out, fake_out = d(real, None), d(g(z), None)
        for k, loss in objs.items():
            grads[k]["d"].append(_flat_grad(loss.d_loss(real_out, fake_out), d_params))
            grads[k]["g"].append(_flat_grad(loss.g_loss(real_out.detach(), fake_out), g_params))
    return {k: {p: _stats(v) for p, v in gs.items()} for k, gs in grads.items()}


def _label(spec) -> str:
    if isinstance(spec, str):
        return spec
    return ",".join(f"{k}={v}" for k, v in dict(spec).items()) if hasattr(spec, "items") else type(spec).__name__


class GradientVariance(pl.Callback):
    """Measure `gradient_variance` every `every_n_steps` optimizer steps (and at the end) of a toy run.

    `compare`: loss specs (names or {name, **params}); None: the run's own loss only.
    """

    def __init__(self, output_dir: str, compare: Optional[Sequence] = None, every_n_steps: int = 1000,
                 batches: int = 50, batch_size: int = 256, seed: int = 0):
        if every_n_steps < 1:
            raise ValueError(f"GradientVariance: every_n_steps must be >= 1, got {every_n_steps}")
        self.output_dir, self.every_n_steps = Path(output_dir), every_n_steps
        self.compare = [s if isinstance(s, str) else dict(s) for s in compare] if compare else None
        self.batches, self.batch_size, self.seed = batches, batch_size, seed
        self.history: list[dict] = []

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = int(trainer.global_step)
        last = trainer.max_steps > 0 and step >= trainer.max_steps
        if step % self.every_n_steps and not last:
            return
        if self.history and self.history[-1]["step"] == step:
            return
        sample_real = getattr(trainer.datamodule, "sample_real", None)
        if sample_real is None:
            raise ValueError("GradientVariance needs a data module with sample_real(n, seed)")
        specs = self.compare or [module.hparams.get("loss") or module.loss]
        t0 = time.perf_counter()
        with torch.enable_grad():
            stats = gradient_variance(module, sample_real, specs, self.batches, self.batch_size, self.seed)
        self.history.append({"step": step, "g_steps": int(module.g_steps), "losses": stats,
                             "elapsed_s": round(time.perf_counter() - t0, 3)})  # apart from the run's own time
        self.output_dir.mkdir(parents=True, exist_ok=True)
        (self.output_dir / "grad_variance.json").write_text(json.dumps(self.history, indent=1) + "\n")
