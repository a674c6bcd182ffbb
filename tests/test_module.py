"""GANModule: step order and counts, override points, clipping, schedulers, EMA, AMP, non-finite losses."""
import functools
import re

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans import losses
from lightning_gans.ema import ema_update
from lightning_gans.module import GANModule, NonFiniteLossError

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


def test_optimizers_are_d_then_g():
    m = module()
    (d_cfg, g_cfg) = m.configure_optimizers()
    d_ids = {id(p) for group in d_cfg["optimizer"].param_groups for p in group["params"]}
    g_ids = {id(p) for group in g_cfg["optimizer"].param_groups for p in group["params"]}
    assert d_ids == {id(p) for p in m.discriminator.parameters()}
    assert g_ids == {id(p) for p in m.generator.parameters()}


class ModeSeeking(GANModule):
    """The README's subclass: a mode-seeking term (MSGAN, Mao et al. 2019) added to the G step only."""

    def __init__(self, *args, lambda_ms=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.lambda_ms = lambda_ms
        self.g_calls = 0

    def generator_step(self, real):
        self.g_calls += 1
        n = real.shape[0]
        z1, z2 = self.sample_latent(n), self.sample_latent(n)
        fake1, fake2 = self.generator(z1), self.generator(z2)
        with torch.no_grad():
            real_out = self.discriminator(real)
        fake_out = self.discriminator(torch.cat([fake1, fake2]))
        adv = self.loss.g_loss(torch.cat([real_out, real_out]), fake_out)
        ratio = (fake1 - fake2).abs().flatten(1).mean(1) / (z1 - z2).abs().flatten(1).mean(1)
        ms = 1.0 / (ratio.mean() + 1e-5)
        return {"loss": adv + self.lambda_ms * ms, "g_loss": adv, "ms": ms}


def test_subclass_overrides_one_step():
    g, d = nets()
    m = ModeSeeking(g, d, loss="rsgan", loss_params={"pairing": "paired"}, latent_dim=LATENT, lambda_ms=0.5)
    d_before, rec = flat(m.discriminator), Record()
    trainer(max_steps=4, callbacks=[rec]).fit(m, loader())
    assert m.g_calls == 2 == m.g_steps
    assert all("ms" in o and "d_loss" in o for _, o in rec.rows)  # the overridden G step and the stock D step
    assert not torch.equal(d_before, flat(m.discriminator))


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


def test_ema_update_buffers_and_bounds():
    src, ema = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    src.running_mean.fill_(2.0)
    nn.init.constant_(src.weight, 3.0)
    ema_update(ema, src, 0.25)
    torch.testing.assert_close(ema.weight, torch.full((3,), 0.25 + 0.75 * 3.0))
    torch.testing.assert_close(ema.running_mean, src.running_mean)
    with pytest.raises(ValueError, match="decay"):
        ema_update(ema, src, 1.5)


class DtypeProbe(GANModule):
    def discriminator_step(self, real):
        out = super().discriminator_step(real)
        self.d_dtype = self.discriminator(real).dtype
        return out


def test_bf16_mixed_on_cpu():
    g, d = nets()
    m = DtypeProbe(g, d, loss="rsgan", loss_params={"pairing": "all"}, latent_dim=LATENT, r1_gamma=1.0, r2_gamma=1.0)
    g0, rec = flat(m.generator), Record()
    trainer(max_steps=4, precision="bf16-mixed", callbacks=[rec]).fit(m, loader())
    assert m.d_dtype == torch.bfloat16  # the fused loss saw bf16 logits
    assert all(torch.isfinite(torch.tensor(list(o.values()))).all() for _, o in rec.rows)
    assert "r1" in rec.rows[0][1] and not torch.equal(g0, flat(m.generator))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 AMP needs Lightning's CUDA GradScaler")
def test_fp16_mixed_with_grad_scaler_on_cuda():
    m = module(loss="rsgan", loss_params={"pairing": "all"}, r1_gamma=1.0, grad_clip=1.0)
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
    with pytest.warns(UserWarning, match="skipped the D step at global_step 2"):
        trainer(max_steps=5, callbacks=[rec, snap]).fit(m, loader())
    assert m.skipped_steps == 1 and m.d_steps == 2 and m.d_iters == 3 and m.g_steps == 3
    assert [s for s, _ in rec.rows] == [2, 3, 5]  # the skipped D step does not advance global_step
    assert torch.equal(snap.start[1], snap.end[1])  # batch 1: D's step was dropped (its G step still ran)
    assert not torch.equal(snap.start[0], snap.end[0]) and not torch.equal(snap.start[2], snap.end[2])


def test_argument_validation():
    g, d = nets()
    with pytest.raises(ValueError, match="n_critic >= 1"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, n_critic=0)
    with pytest.raises(ValueError, match="nonfinite"):
        GANModule(g, d, loss="nsgan", latent_dim=LATENT, nonfinite="ignore")
    with pytest.raises(ValueError, match="latent_dim is required"):
        GANModule(g, d, loss="nsgan")
    with pytest.raises(ValueError, match="loss is required"):
        GANModule(g, d, loss=None, latent_dim=LATENT)


def test_checkpoint_loads_weights_only_and_rebuilds(tmp_path):
    from omegaconf import OmegaConf

    adam = functools.partial(torch.optim.Adam, lr=1e-3)
    params = OmegaConf.create({"pairing": "paired"})
    m = module(loss="rsgan", loss_params=params, g_optimizer=adam, d_optimizer=adam, r1_gamma=1.0, r2_gamma=1.0)
    t = trainer(max_steps=2)
    t.fit(m, loader())
    t.save_checkpoint(tmp_path / "r3gan.ckpt")
    ckpt = torch.load(tmp_path / "r3gan.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["loss_params"] == {"pairing": "paired"}
    assert any(k.startswith("g_ema.") for k in ckpt["state_dict"])
    g, d = nets(seed=1)
    back = GANModule.load_from_checkpoint(tmp_path / "r3gan.ckpt", generator=g, discriminator=d)
    assert back.r1_gamma == back.r2_gamma == 1.0 and back.g_steps == 1
    torch.testing.assert_close(flat(back.g_ema), flat(m.g_ema))
