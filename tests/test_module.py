"""GANModule: step order and counts, override points, clipping, schedulers, EMA, AMP, non-finite losses."""
import functools
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans import losses
from lightning_gans.training import GANModule, NonFiniteLossError

LATENT = 4


def nets(seed=0):
    torch.manual_seed(seed)
    g = nn.Sequential(nn.Linear(LATENT, 16), nn.ReLU(), nn.Linear(16, 2))
    d = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    return g, d


def loader(n=64, batch=8, seed=0):
    data = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed))
    return DataLoader(TensorDataset(data), batch_size=batch, shuffle=False)


def trainer(**kw):
    kw.setdefault("max_steps", 6)
    return pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                      enable_checkpointing=False, enable_model_summary=False, **kw)


def module(**kw):
    g, d = nets()
    kw.setdefault("loss", "nsgan")
    return GANModule(g, d, latent_dim=LATENT, **kw)


class Record(pl.Callback):
    """Collects (global_step, outputs of training_step) after every batch."""

    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append((trainer.global_step, {k: float(v) for k, v in outputs.items()}))


def flat(m):
    return torch.cat([p.detach().flatten() for p in m.parameters()])


@pytest.mark.parametrize("n_critic", [1, 3])
def test_global_step_counts_both_players(n_critic):
    m, rec = module(n_critic=n_critic), Record()
    g_steps = 3
    t = trainer(max_steps=GANModule.max_steps_for(g_steps, n_critic), callbacks=[rec])
    t.fit(m, loader())
    batches = len(rec.rows)
    assert batches == g_steps * n_critic  # max_steps_for stops right after the g-th G step
    assert t.global_step == batches + batches // n_critic
    assert (m.d_steps, m.g_steps, m.d_iters) == (batches, g_steps, batches)
    # global_step after batch b (1-based) is b + b // n_critic; G losses appear on every n_critic-th batch
    assert [s for s, _ in rec.rows] == [b + b // n_critic for b in range(1, batches + 1)]
    assert [("g_loss" in o) for _, o in rec.rows] == [b % n_critic == 0 for b in range(1, batches + 1)]


@pytest.mark.parametrize("name", losses.names())
def test_every_library_loss_trains(name):
    m, rec = module(loss=name), Record()
    trainer(max_steps=2, callbacks=[rec]).fit(m, loader())  # one D and one G step
    assert m.g_steps == 1 and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(rec.rows[0][1])
    assert all(map(torch.isfinite, map(torch.tensor, rec.rows[0][1].values())))


def test_optimizers_are_d_then_g():
    m = module()
    (d_cfg, g_cfg) = m.configure_optimizers()
    d_ids = {id(p) for group in d_cfg["optimizer"].param_groups for p in group["params"]}
    g_ids = {id(p) for group in g_cfg["optimizer"].param_groups for p in group["params"]}
    assert d_ids == {id(p) for p in m.discriminator.parameters()}
    assert g_ids == {id(p) for p in m.generator.parameters()}


def docs_example() -> str:
    """The complete subclass of docs/module.md (pasted into the README)."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "module.md").read_text()
    return re.search(r"## A complete subclass.*?```python\n(.*?)```", text, re.S).group(1)


def test_subclass_overrides_one_step(tmp_path, monkeypatch):
    code = docs_example()
    assert len(code.splitlines()) < 40 and "max_steps_for(500)" in code
    monkeypatch.chdir(tmp_path)  # the example's Trainer logs to ./lightning_logs
    scope = {}
    exec(compile(code.replace("max_steps_for(500)", "max_steps_for(2)"), "docs/module.md", "exec"), scope)
    model, metrics = scope["model"], scope["trainer"].callback_metrics
    assert type(model).__name__ == "ModeSeekingGAN" and model.g_steps == 2 and model.d_steps == 2
    # the overridden G step (its "ms" term) and the inherited D step with R3GAN's penalties both ran
    assert {"train/ms", "train/g_loss", "train/d_loss", "train/r1", "train/r2"} <= set(metrics)
    assert scope["samples"].shape == (1000, 2)


class UniformFromDict(GANModule):
    def sample_latent(self, n):
        self.sampled = getattr(self, "sampled", 0) + 1
        return torch.rand(n, LATENT, generator=self.latent_generator) * 2 - 1

    def real_from_batch(self, batch):
        return batch["points"]


def test_latent_and_batch_override_points():
    g, d = nets()
    m = UniformFromDict(g, d, loss="nsgan", latent_dim=LATENT)
    data = [{"points": torch.randn(8, 2)} for _ in range(4)]
    trainer(max_steps=4).fit(m, DataLoader(data, batch_size=None))
    assert m.sampled == 4  # one D and one G draw per batch, two batches


def test_default_real_from_batch():
    m, x = module(), torch.randn(3, 2)
    for batch in (x, (x, torch.zeros(3)), [x], {"image": x}, {"x": x}):
        assert m.real_from_batch(batch) is x
    with pytest.raises(KeyError, match="override GANModule.real_from_batch"):
        m.real_from_batch({"label": x})


def test_gradient_clipping_bounds_each_update():
    clip, lr = 1e-3, 1.0
    sgd = functools.partial(torch.optim.SGD, lr=lr)
    m = module(grad_clip=clip, g_optimizer=sgd, d_optimizer=sgd, ema_decay=None)
    g0, d0 = flat(m.generator), flat(m.discriminator)
    trainer(max_steps=2).fit(m, loader())  # one D step and one G step
    # plain SGD moves by lr·‖clipped grad‖ <= lr·clip; unclipped the gradients are ~100x larger
    assert 0 < (flat(m.discriminator) - d0).norm() <= lr * clip * 1.0001
    assert 0 < (flat(m.generator) - g0).norm() <= lr * clip * 1.0001


@pytest.mark.parametrize("interval", ["step", "epoch"])
def test_schedulers_are_stepped(interval):
    decay = functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1, gamma=0.5)
    m = module(d_scheduler=decay, g_scheduler=decay, scheduler_interval=interval, n_critic=2)
    t = trainer(max_steps=GANModule.max_steps_for(4, 2))  # 8 batches = 1 epoch: 8 D steps, 4 G steps
    t.fit(m, loader(n=64, batch=8))
    d_opt, g_opt = t.optimizers
    expect = (2e-4 * 0.5 ** 8, 2e-4 * 0.5 ** 4) if interval == "step" else (2e-4 * 0.5, 2e-4 * 0.5)
    assert d_opt.param_groups[0]["lr"] == pytest.approx(expect[0])
    assert g_opt.param_groups[0]["lr"] == pytest.approx(expect[1])


class GTrace(pl.Callback):
    def __init__(self):
        self.after_g = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if "g_loss" in outputs:
            self.after_g.append([p.detach().clone() for p in pl_module.generator.parameters()])


def test_ema_follows_the_generator():
    m, trace = module(ema_decay=0.7, ema_start=1), GTrace()
    trainer(max_steps=8, callbacks=[trace]).fit(m, loader())
    ema = [p.clone() for p in trace.after_g[0]]  # ema_start=1: the first G step copies
    for params in trace.after_g[1:]:
        ema = [0.7 * e + 0.3 * p for e, p in zip(ema, params)]
    for e, p in zip(ema, m.g_ema.parameters()):
        torch.testing.assert_close(p, e)
    assert not torch.equal(flat(m.g_ema), flat(m.generator))
    z = torch.randn(5, LATENT)
    torch.testing.assert_close(m.sample(z=z), m.g_ema(z))
    torch.testing.assert_close(m.sample(z=z, ema=False), m.generator(z))
    assert m.sample(n=7).shape == (7, 2)


def test_ema_copies_buffers_and_lives_in_the_checkpoint():
    torch.manual_seed(0)
    g = nn.Sequential(nn.Linear(LATENT, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))
    d = nn.Sequential(nn.Linear(2, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))
    m = GANModule(g, d, loss="nsgan", latent_dim=LATENT, ema_decay=0.9)
    trainer(max_steps=4).fit(m, loader())
    assert torch.equal(m.g_ema.module[1].running_mean, m.generator[1].running_mean)  # buffers copied, not averaged
    assert m.g_ema.module[1].running_mean.abs().sum() > 0
    assert int(m.g_ema.n_averaged) == 2 and "g_ema.n_averaged" in m.state_dict()


class DtypeProbe(GANModule):
    def discriminator_step(self, real, labels=None):
        out = super().discriminator_step(real, labels)
        self.d_dtype = self.discriminator(real).dtype
        return out


def test_bf16_mixed_on_cpu():
    g, d = nets()
    m = DtypeProbe(g, d, loss={"name": "rsgan", "pairing": "all"}, latent_dim=LATENT, r1_gamma=1.0, r2_gamma=1.0)
    g0, rec = flat(m.generator), Record()
    trainer(max_steps=4, precision="bf16-mixed", callbacks=[rec]).fit(m, loader())
    assert m.d_dtype == torch.bfloat16  # the fused loss saw bf16 logits
    assert all(torch.isfinite(torch.tensor(list(o.values()))).all() for _, o in rec.rows)
    assert "r1" in rec.rows[0][1] and not torch.equal(g0, flat(m.generator))


def test_fp16_mixed_with_grad_scaler_on_cpu():
    from lightning.pytorch.plugins import MixedPrecision

    g, d = nets()
    m = DtypeProbe(g, d, loss={"name": "rsgan", "pairing": "all"}, latent_dim=LATENT, r1_gamma=1.0, grad_clip=1.0)
    class CountingScaler(torch.amp.GradScaler):
        scaled = 0

        def scale(self, outputs):
            self.scaled += 1
            return super().scale(outputs)

    scaler = CountingScaler("cpu")
    g0, rec = flat(m.generator), Record()
    trainer(max_steps=6, plugins=[MixedPrecision("16-mixed", "cpu", scaler)], callbacks=[rec]).fit(m, loader())
    assert m.d_dtype == torch.float16  # the fused all-pairs loss and R1 ran on fp16 logits
    assert scaler.scaled == 6  # manual_backward scaled all 3 D and 3 G losses
    assert m.g_steps == 3 and "r1" in rec.rows[0][1]
    assert all(torch.isfinite(torch.tensor(list(o.values()))).all() for _, o in rec.rows)
    assert not torch.equal(g0, flat(m.generator))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 AMP needs Lightning's CUDA GradScaler")
def test_fp16_mixed_with_grad_scaler_on_cuda():
    m = module(loss={"name": "rsgan", "pairing": "all"}, r1_gamma=1.0, grad_clip=1.0)
    rec = Record()
    t = pl.Trainer(accelerator="cuda", devices=1, precision="16-mixed", max_steps=6, logger=False,
                   enable_progress_bar=False, enable_checkpointing=False, callbacks=[rec])
    t.fit(m, loader())
    assert t.precision_plugin.scaler is not None
    assert m.g_steps == 3 and all(torch.isfinite(torch.tensor(list(o.values()))).all() for _, o in rec.rows)


class NaNOnCall:
    """Wraps a loss; the chosen call of d_loss or g_loss returns NaN."""

    def __init__(self, inner, which, call):
        self.inner, self.which, self.call, self.n = inner, which, call, 0

    def d_loss(self, r, f):
        return self._maybe_nan("d", self.inner.d_loss(r, f))

    def g_loss(self, r, f):
        return self._maybe_nan("g", self.inner.g_loss(r, f))

    def _maybe_nan(self, who, value):
        if who == self.which:
            self.n += 1
            if self.n == self.call:
                return value * float("nan")
        return value


def test_nonfinite_error_names_step_and_loss_and_saves_checkpoint(tmp_path):
    m = module(loss=NaNOnCall(losses.get("nsgan"), "g", 2))
    with pytest.raises(NonFiniteLossError, match=r"non-finite g_loss at global_step 3 \(epoch 0, batch 1\)") as e:
        trainer(max_steps=10, default_root_dir=tmp_path).fit(m, loader())
    path = re.search(r"saved to (\S+);", str(e.value)).group(1)
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["global_step"] == 3 and ckpt["gan_module"]["g_steps"] == 1


class Snapshots(pl.Callback):
    """D's parameters at the start and at the end of every batch."""

    def __init__(self):
        self.start, self.end = {}, {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.start[batch_idx] = flat(pl_module.discriminator)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.end[batch_idx] = flat(pl_module.discriminator)


def test_nonfinite_skip_drops_the_step():
    m, rec, snap = module(loss=NaNOnCall(losses.get("nsgan"), "d", 2), nonfinite="skip"), Record(), Snapshots()
    m.max_skipped_fraction = 0.5
    with pytest.warns(UserWarning, match="skipped the D step at global_step 2"):
        trainer(max_steps=5, callbacks=[rec, snap]).fit(m, loader())
    assert m.skipped_steps == 1 and m.d_steps == 2 and m.d_iters == 3 and m.g_steps == 3
    assert [s for s, _ in rec.rows] == [2, 3, 5]  # the skipped D step does not advance global_step
    assert torch.equal(snap.start[1], snap.end[1])  # batch 1: D's step was dropped (its G step still ran)
    assert not torch.equal(snap.start[0], snap.end[0]) and not torch.equal(snap.start[2], snap.end[2])


def test_too_many_skipped_steps_fail_the_run_after_its_checkpoints(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    m = module(loss=NaNOnCall(losses.get("nsgan"), "d", 2), nonfinite="skip")  # 1 of 5 steps skipped > 1 %
    ckpt = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    t = pl.Trainer(accelerator="cpu", max_steps=5, logger=False, enable_progress_bar=False, callbacks=[ckpt],
                   enable_model_summary=False)
    with pytest.warns(UserWarning, match="skipped"), pytest.raises(NonFiniteLossError, match="skipped 1 of 6 optimizer steps"):
        t.fit(m, loader())
    assert (tmp_path / "last.ckpt").is_file()


def test_argument_validation():
    g, d = nets()
    with pytest.raises(ValueError, match="n_critic must be >= 1, got 0"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, n_critic=0)
    with pytest.raises(ValueError, match="nonfinite must be one of .* got 'ignore'"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, nonfinite="ignore")
    with pytest.raises(ValueError, match="latent_dim is required"):
        GANModule(g, d, loss="nsgan")
    with pytest.raises(TypeError, match="loss must be a name, a mapping"):
        GANModule(g, d, loss=None, latent_dim=LATENT)
    with pytest.raises(ValueError, match="num_classes must be None or an int >= 1, got 0"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, num_classes=0)
    with pytest.raises(ValueError, match="latent_sampler must be one of"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, latent_sampler="cauchy")
    with pytest.raises(ValueError, match="grad_clip_algorithm must be 'norm' or 'value', got 'l1'"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, grad_clip=1.0, grad_clip_algorithm="l1")


class Penalties(GANModule):
    """Keeps every D step's output dict, to check which penalties entered the loss and with what factor."""

    def discriminator_step(self, real, labels=None):
        out = super().discriminator_step(real, labels)
        self.d_outs = getattr(self, "d_outs", []) + [out]  # the loop adds the penalties to this dict
        return out


@pytest.mark.parametrize("interval", [1, 3])
def test_lazy_regularization_every_k_steps_scaled_by_k(interval):
    g, d = nets()
    m = Penalties(g, d, loss="wgan", latent_dim=LATENT, r1_gamma=2.0, r2_gamma=1.0, gp_weight=10.0,
                  reg_interval=interval)
    trainer(max_steps=12).fit(m, loader())  # 6 D steps
    assert [("r1" in o) for o in m.d_outs] == [i % interval == 0 for i in range(6)]
    for o in m.d_outs:
        k = interval if "r1" in o else 0
        assert ({"r1", "r2", "gp"} <= set(o)) if k else not ({"r1", "r2", "gp"} & set(o))
        penalties = o["r1"] + o["r2"] + o["gp"] if k else 0.0
        torch.testing.assert_close(o["loss"], o["d_loss"] + k * penalties)


def test_r3gan_is_one_config():
    """R3GAN (arXiv 2501.05441) = paired rsgan + R1 + R2; the kwargs docs/module.md shows."""
    g, d = nets()
    m = Penalties(g, d, loss={"name": "rsgan", "pairing": "paired"}, r1_gamma=0.5, r2_gamma=0.5,
                  latent_dim=LATENT)
    assert m.loss.relativistic and m.loss.pairing == "paired"
    trainer(max_steps=4).fit(m, loader())
    assert all({"r1", "r2"} <= set(o) and "gp" not in o for o in m.d_outs)
    torch.testing.assert_close(m.d_outs[0]["loss"], m.d_outs[0]["d_loss"] + m.d_outs[0]["r1"] + m.d_outs[0]["r2"])


class CountD(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x):
        self.calls += 1
        return self.inner(x)


@pytest.mark.parametrize("loss, d_calls_per_g_step", [("nsgan", 1), ("rsgan", 2)])
def test_generator_step_evaluates_d_real_only_for_relativistic_losses(loss, d_calls_per_g_step):
    g, d = nets()
    m = GANModule(g, CountD(d), loss=loss, latent_dim=LATENT)
    m.discriminator.calls = 0
    m.generator_step(torch.randn(8, 2))
    assert m.discriminator.calls == d_calls_per_g_step


def test_sample_is_deterministic_and_leaves_the_training_stream_alone():
    m = module()
    state = m.latent_generator.get_state()
    a, b = m.sample(n=5, seed=3), m.sample(n=5, seed=3)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, m.sample(n=5, seed=4))
    assert torch.equal(state, m.latent_generator.get_state())
    with pytest.raises(ValueError, match="needs n"):
        m.sample()


def test_plateau_scheduler_is_rejected_by_name():
    plateau = functools.partial(torch.optim.lr_scheduler.ReduceLROnPlateau)
    with pytest.raises(ValueError, match="g_scheduler/d_scheduler: ReduceLROnPlateau"):
        module(g_scheduler=plateau).configure_optimizers()
