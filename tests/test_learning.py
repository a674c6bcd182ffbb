"""Learning end to end (issue 15): the default MLP pair learns ring8 in a short run, and a broken step does not.

The run is the default experiment (conf/train.yaml, conf/model/mlp.yaml, conf/data/ring8.yaml: RSGAN,
Adam 5e-3 with linear decay to 1 %, R1 γ = 1, no EMA) at a short budget: 600 generator steps instead
of 6,000, the LR schedule compressed to match. The bar, by the toy protocol of docs/theory.md §4
(lightning_gans.metrics.toy_metrics on 2,500 samples): at least 6 of the 8 modes covered and at least
5 % high-quality samples. Calibrated on seed 0 (2-core CPU, one torch thread): 8 modes, 14.9 % high
quality, about 50 s on a loaded machine. Each broken variant below misses the bar (docs/testing.md).
"""
import functools

import lightning.pytorch as pl
import pytest
import torch

from lightning_gans.data import ToyDataModule
from lightning_gans.metrics import toy_metrics
from lightning_gans.nets import MLPDiscriminator, MLPGenerator
from lightning_gans.training import GANModule, NonFiniteLossError, penalties

G_STEPS = 600
MIN_MODES, MIN_HQ = 6, 0.05


class FrozenGenerator(GANModule):
    """A broken step: the generator's loss is multiplied by 0, so G never moves."""

    def generator_step(self, real, labels=None):
        out = super().generator_step(real, labels)
        out["loss"] = out["loss"] * 0.0
        return out


def train_ring8(module_cls=GANModule, scheduler=None, seed=0):
    pl.seed_everything(seed, verbose=False)
    opt = functools.partial(torch.optim.Adam, lr=5e-3, betas=(0.5, 0.999))
    if scheduler is None:  # conf/model/mlp.yaml: linear decay to 1 % over the run's steps of each player
        scheduler = functools.partial(torch.optim.lr_scheduler.LinearLR, start_factor=1.0, end_factor=0.01,
                                      total_iters=G_STEPS)
    module = module_cls(
        MLPGenerator(latent_dim=16, out_dim=2, hidden=128, layers=6, activation="lrelu"),
        MLPDiscriminator(in_dim=2, hidden=128, layers=3, activation="lrelu"),
        loss="rsgan", g_optimizer=opt, d_optimizer=opt, g_scheduler=scheduler, d_scheduler=scheduler,
        r1_gamma=1.0, ema_decay=None)
    data = ToyDataModule("ring8", batch_size=256, steps_per_epoch=500, seed=seed)
    trainer = pl.Trainer(max_steps=GANModule.max_steps_for(G_STEPS), accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # reproducible and fast on a shared 2-core machine (no thread oversubscription)
    try:
        trainer.fit(module, data)
    finally:
        torch.set_num_threads(threads)
    return toy_metrics(module.sample(2500, seed=0), data.dist)


def meets_bar(m):
    return m["modes_covered"] >= MIN_MODES and m["high_quality_fraction"] >= MIN_HQ


@pytest.mark.slow
def test_default_mlp_pair_learns_ring8():
    m = train_ring8()
    assert meets_bar(m), m


def _r1_sign_flipped(monkeypatch):
    original = penalties.zero_centred
    monkeypatch.setattr(penalties, "zero_centred", lambda out, x, gamma: -original(out, x, gamma))
    return {}


BROKEN = {
    "generator not updated": lambda mp: {"module_cls": FrozenGenerator},
    "R1 sign flipped": _r1_sign_flipped,
    "LR schedule to zero": lambda mp: {"scheduler": functools.partial(torch.optim.lr_scheduler.LambdaLR,
                                                                      lr_lambda=lambda step: 0.0)},
}


@pytest.mark.slow
@pytest.mark.parametrize("how", list(BROKEN))
def test_a_broken_step_misses_the_bar(how, monkeypatch):
    kwargs = BROKEN[how](monkeypatch)
    try:
        m = train_ring8(**kwargs)
    except NonFiniteLossError:  # a run that blows up has certainly not learned ring8
        return
    assert not meets_bar(m), (how, m)
