"""A training step on the fused loss is the reference step, to float rounding, for every fused loss.

The ring8 runs of rasgan parted from their reference runs within tens of steps
(scripts/fused_vs_ref.py): this pins the first D and G step, so that a kernel which computed another
loss or gradient, rather than rounding differently, fails here. The steps are plain SGD: Adam's first
step, g / (|g| + eps), turns rounding in a gradient that is 0 in exact arithmetic into a full step,
and relativistic losses have such gradients (T_r - T_f is unchanged by any shift of T common to all
samples: D's output bias, and the bias of a last hidden unit that every sample drives in one regime).
"""
import lightning.pytorch as pl
import pytest
import torch

from lightning_gans import losses
from lightning_gans.cli import train

QUIET = ["logger=none", "~callbacks.metrics", "~callbacks.samples", "~callbacks.checkpoint",
         "trainer.enable_checkpointing=false", "trainer.enable_progress_bar=false", "trainer.max_steps=2",
         "model.g_optimizer._target_=torch.optim.SGD", "~model.g_optimizer.betas",
         "model.d_optimizer._target_=torch.optim.SGD", "~model.d_optimizer.betas"]
FUSED = [(name, extra) for name in losses.names() if losses.get(name).has_fused
         for extra in ([["loss.pairing=paired"], ["loss.pairing=all"]] if name == "rsgan" else [[]])]


def updates_of_one_d_and_one_g_step(tmp_path, loss, extra, impl):
    cfg = train.compose_config(["experiment=ring8", f"loss={loss}", *extra, f"model.impl={impl}",
                                f"paths.output_dir={tmp_path / impl}", *QUIET])
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    parts = train.build(cfg)
    init = [flat(parts["model"].discriminator), flat(parts["model"].generator)]
    parts["trainer"].fit(parts["model"], datamodule=parts["datamodule"])
    m = parts["model"]
    assert m.trainer.global_step == 2
    return [flat(net) - w for net, w in zip((m.discriminator, m.generator), init)]


def flat(net):
    return torch.cat([p.detach().flatten() for p in net.parameters()])


@pytest.mark.parametrize("loss, extra", FUSED, ids=[" ".join([n, *e]) for n, e in FUSED])
def test_fused_step_matches_the_reference_step(tmp_path, loss, extra):
    fused = updates_of_one_d_and_one_g_step(tmp_path, loss, extra, "fused")
    ref = updates_of_one_d_and_one_g_step(tmp_path, loss, extra, "ref")
    for net, a, b in zip(("D", "G"), fused, ref):
        # the same SGD update from the same init, up to float32 rounding
        assert float(b.norm()) > 0, (loss, net)
        assert float((a - b).norm() / b.norm()) < 1e-4, (loss, net)
