"""ManualGANLoop around the steps: logging, non-finite handling, clipping, schedulers, legacy steps (issue 15).

Written against the survivors of the first mutation pass over loop.py: each test states the
behaviour (from the docstrings in loop.py and the torch/Lightning semantics they rely on) and
fails when it is broken. The `_log_this_batch` and `_loss_is_finite` tests drive the methods with
a stand-in trainer holding just the attributes they read.
"""
import functools
import os
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.training import GANModule, NonFiniteLossError

LATENT = 3


def nets(seed=0):
    torch.manual_seed(seed)
    return (nn.Sequential(nn.Linear(LATENT, 8), nn.Tanh(), nn.Linear(8, 2)),
            nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1)))


def loader(batches=4, batch=4):
    return DataLoader(TensorDataset(torch.randn(batches * batch, 2, generator=torch.Generator().manual_seed(1))),
                      batch_size=batch)


def trainer(**kw):
    return pl.Trainer(accelerator="cpu", devices=1, enable_progress_bar=False, enable_checkpointing=False,
                      enable_model_summary=False, **{"logger": False, **kw})


def flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


# ----------------------------------------------------------------------------- logging
@pytest.mark.parametrize("n, d_iters, max_steps, global_step, should_stop, expected", [
    (3, 3, 100, 4, False, True),    # every n-th batch
    (3, 4, 100, 5, False, False),
    (3, 6, 100, 8, False, True),
    (1, 5, 100, 6, False, True),
    (0, 5, 100, 6, False, False),   # n = 0: only the last batch (and never a division by 0)
    (0, 5, 6, 6, False, True),      # the last batch: global_step reached max_steps
    (3, 4, 10, 9, False, False),
    (3, 4, 1, 1, False, True),
    (3, 4, 0, 5, False, False),     # max_steps = 0 or -1: no step limit, no "last"
    (3, 4, -1, 5, False, False),
    (3, 4, None, 5, False, False),
    (3, 4, 100, 5, True, True),     # a stopping trainer logs its last batch
])
def test_log_this_batch(n, d_iters, max_steps, global_step, should_stop, expected):
    m = GANModule(*nets(), latent_dim=LATENT)
    m._trainer = SimpleNamespace(log_every_n_steps=n, max_steps=max_steps, global_step=global_step,
                                 should_stop=should_stop)
    m.d_iters = d_iters
    assert m._log_this_batch() is expected


class Collect(Logger):
    name, version = "collect", 0

    def __init__(self):
        super().__init__()
        self.rows = []

    def log_metrics(self, metrics, step=None):
        self.rows.append((step, dict(metrics)))

    def log_hyperparams(self, params, *args, **kwargs):
        pass

    @property
    def experiment(self):
        return None


def test_logged_keys_and_the_last_batch():
    log, last = Collect(), {}

    class Last(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            last.update(outputs)

    m = GANModule(*nets(), latent_dim=LATENT, r1_gamma=1.0)
    t = trainer(logger=log, log_every_n_steps=2, max_steps=6, callbacks=[Last()])
    t.fit(m, loader())  # 3 batches: the logger is written on batch 2 (d_iters % 2 == 0) only
    keys = {"train/d_loss", "train/d_real", "train/d_fake", "train/r1", "train/g_loss", "train/skipped_steps"}
    rows = [r for _, r in log.rows if any(k.startswith("train/") for k in r)]
    assert [set(r) - {"epoch"} for r in rows] == [keys]  # step values only: no "_step"/"_epoch" variants
    assert rows[0]["train/skipped_steps"] == 0.0
    # the last batch is logged too (callbacks monitoring train/* see its values, not batch 2's)
    assert float(t.callback_metrics["train/d_loss"]) == pytest.approx(float(last["d_loss"]))
    assert float(t.callback_metrics["train/g_loss"]) == pytest.approx(float(last["g_loss"]))


# ----------------------------------------------------------------------------- non-finite losses
class Saves:
    def __init__(self):
        self.paths = []

    def __call__(self, path):
        self.paths.append(path)


def stand_in(nonfinite, other_rank_bad=False, dirpath=None, root="/runs/r"):
    m = GANModule(*nets(), latent_dim=LATENT, nonfinite=nonfinite)
    # a 2-rank reduction where the other rank's decision is `other_rank_bad`: any (all=False) or all (all=True)
    reduce = lambda bad, all=True: (bad and other_rank_bad) if all else (bad or other_rank_bad)  # noqa: E731
    m._trainer = SimpleNamespace(strategy=SimpleNamespace(reduce_boolean_decision=reduce), global_step=7,
                                 current_epoch=2, save_checkpoint=Saves(), default_root_dir=root,
                                 checkpoint_callback=SimpleNamespace(dirpath=dirpath) if dirpath else None)
    return m


OUT = {"loss": torch.tensor(float("nan")), "d_loss": torch.tensor(float("inf")), "d_real": torch.tensor(0.123456),
       "vector": torch.ones(3), "note": 1.5}
TERMS = "loss=nan, d_loss=inf, d_real=0.1235"


def test_another_ranks_nonfinite_loss_skips_this_ranks_step():
    m = stand_in("skip", other_rank_bad=True)
    with pytest.warns(UserWarning, match=r"skipped the D step"):
        assert m._loss_is_finite("d_loss", {"loss": torch.tensor(1.0)}, 3) is False
    assert m.skipped_steps == 1
    assert stand_in("skip")._loss_is_finite("d_loss", {"loss": torch.tensor(1.0)}, 3) is True


def test_skip_warning_lists_the_scalar_terms():
    m = stand_in("skip")
    msg = rf"^GANModule: skipped the G step at global_step 7 \(epoch 2, batch 3\): non-finite g_loss \({TERMS}\)$"
    with pytest.warns(UserWarning, match=msg):
        assert m._loss_is_finite("g_loss", OUT, 3) is False


@pytest.mark.parametrize("dirpath, folder", [("/ck/points", "/ck/points"), (None, "/runs/r/checkpoints")])
def test_error_saves_where_the_checkpoints_go_and_says_so(dirpath, folder):
    m = stand_in("error", dirpath=dirpath)
    path = os.path.join(folder, "nonfinite-step=7.ckpt")
    msg = (rf"^non-finite d_loss at global_step 7 \(epoch 2, batch 3\): {TERMS}\. The state just before this D step "
           rf"was saved to {path}; lower the learning rate, add a penalty \(r1_gamma\) or set nonfinite='skip'\.$")
    with pytest.raises(NonFiniteLossError, match=msg):
        m._loss_is_finite("d_loss", OUT, 3)
    assert m._trainer.save_checkpoint.paths == [path]


class NaND(GANModule):
    def discriminator_step(self, real, labels=None):
        out = super().discriminator_step(real, labels)
        if self.d_iters == 1:
            out["loss"] = out["loss"] * float("nan")
        return out


def test_nonfinite_d_loss_in_training_names_its_batch(tmp_path):
    m = NaND(*nets(), latent_dim=LATENT)
    with pytest.raises(NonFiniteLossError, match=r"^non-finite d_loss at global_step 2 \(epoch 0, batch 1\)"):
        trainer(max_steps=10, default_root_dir=tmp_path).fit(m, loader())


# ----------------------------------------------------------------------------- optimizers, clipping, schedulers
class GatedG(nn.Module):
    """G whose extra bias `b` is used by the first gradient-carrying call only."""

    def __init__(self):
        super().__init__()
        self.net, self.b, self.grad_calls = nets()[0], nn.Parameter(torch.zeros(2)), 0

    def forward(self, z):
        if torch.is_grad_enabled():
            self.grad_calls += 1
            if self.grad_calls == 1:
                return self.net(z) + self.b
        return self.net(z)


def test_a_parameter_a_step_does_not_use_is_not_stepped():
    """zero_grad(set_to_none=True): Adam skips a parameter without a gradient (with a zero one it still moves)."""
    g = GatedG()
    m = GANModule(g, nets()[1], latent_dim=LATENT, ema_decay=None)
    states = []

    class Watch(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            states.append(pl_module.generator.b.detach().clone())

    trainer(max_steps=4, callbacks=[Watch()]).fit(m, loader())
    assert not torch.equal(states[0], torch.zeros(2)) and torch.equal(states[1], states[0])


def test_value_clipping_bounds_each_coordinate_not_the_norm():
    clip, sgd = 1e-3, functools.partial(torch.optim.SGD, lr=1.0)
    m = GANModule(*nets(), latent_dim=LATENT, grad_clip=clip, grad_clip_algorithm="value", g_optimizer=sgd,
                  d_optimizer=sgd, ema_decay=None)
    d0 = flat(m.discriminator)
    trainer(max_steps=1).fit(m, loader())
    step = flat(m.discriminator) - d0
    assert step.abs().max() <= clip * 1.0001 and step.norm() > 2 * clip  # norm clipping would give <= clip


def test_one_players_scheduler():
    decay = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    m = GANModule(*nets(), latent_dim=LATENT, d_scheduler=decay)
    t = trainer(max_steps=6)
    t.fit(m, loader())
    d_opt, g_opt = t.optimizers
    assert d_opt.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5 ** 3) and g_opt.param_groups[0]["lr"] == 2e-4


def test_plateau_message_in_full():
    m = GANModule(*nets(), latent_dim=LATENT, g_scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(ValueError, match=r"^g_scheduler/d_scheduler: ReduceLROnPlateau needs a monitored metric and "
                                         r"is not supported; use a step- or epoch-based scheduler$"):
        m.configure_optimizers()


def test_gather_logits_on_one_process_is_the_plain_loss():
    outs = []
    for gather in (False, True):
        m = GANModule(*nets(), latent_dim=LATENT, gather_logits=gather, loss="rsgan")
        m._trainer = None
        torch.manual_seed(3)
        outs.append(m.discriminator_step(torch.randn(4, 2))["loss"])
    torch.testing.assert_close(outs[1], outs[0])


# ----------------------------------------------------------------------------- deprecated one-argument steps
class LegacySteps(GANModule):
    def discriminator_step(self, real):
        self.d_seen = real
        return super().discriminator_step(real)

    def generator_step(self, real):
        self.g_seen = real
        return super().generator_step(real)


def test_legacy_one_argument_steps_get_the_batch():
    with pytest.warns(DeprecationWarning, match=r"LegacySteps.discriminator_step\(real\) is deprecated"):
        m = LegacySteps(*nets(), latent_dim=LATENT)
    data = loader(batches=1)
    trainer(max_steps=2).fit(m, data)
    (x,) = next(iter(data))
    assert torch.equal(m.d_seen, x) and torch.equal(m.g_seen, x) and m.g_steps == 1
