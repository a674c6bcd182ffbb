"""GANModule's step logic against a replica written in this file (issue 15, mutation testing).

The replica is plain torch: per batch, D ← D - lr·∇(L_D + k·(R1 + R2)) with k = reg_interval on
every reg_interval-th D step (0 otherwise); every n_critic-th batch also G ← G - lr·∇L_G, then the
EMA: a copy of G during the first max(ema_start, 1) G steps, afterwards ema ← d·ema + (1 - d)·G.
L_D, L_G, R1 and R2 are written from their definitions (not the library's losses or penalties).
SGD without momentum makes every update the plain gradient step, and a fixed latent sampler
(GANModule's `latent_sampler` callable) gives the replica the same codes the module draws.
"""
import functools

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans import losses
from lightning_gans.training import GANModule, NonFiniteLossError

LATENT, BATCH, LR = 3, 4, 0.05


def nets():
    torch.manual_seed(1)
    g = nn.Sequential(nn.Linear(LATENT, 8), nn.Tanh(), nn.Linear(8, 2))
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    return g, d


def data(batches):
    return torch.randn(batches * BATCH, 2, generator=torch.Generator().manual_seed(2))


def codes(n):
    return list(torch.randn(n, BATCH, LATENT, generator=torch.Generator().manual_seed(3)))


class FixedSampler:
    """latent_sampler returning the given codes in order (and counting the draws)."""

    def __init__(self, zs):
        self.zs, self.calls = list(zs), 0

    def __call__(self, shape, generator, device):
        assert tuple(shape) == (BATCH, LATENT) and isinstance(generator, torch.Generator)
        self.calls += 1
        return self.zs.pop(0).clone()


def fit(batches, n_critic=1, **kw):
    g, d = nets()
    sampler = FixedSampler(codes(2 * batches))
    sgd = functools.partial(torch.optim.SGD, lr=LR)
    m = GANModule(g, d, latent_dim=LATENT, latent_sampler=sampler, g_optimizer=sgd, d_optimizer=sgd,
                  n_critic=n_critic, **kw)
    t = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_checkpointing=False,
                   enable_model_summary=False, max_steps=batches + batches // n_critic)
    loader = DataLoader(TensorDataset(data(batches)), batch_size=BATCH, shuffle=False)
    t.fit(m, loader)
    return m, t, sampler


def grad_x(d, x):
    x = x.detach().requires_grad_(True)
    (gx,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return gx


def replica(batches, n_critic=1, loss="nsgan", r1=0.0, r2=0.0, reg_interval=1, ema_decay=0.5, ema_start=0):
    """The expected G, D and EMA parameters after `batches` batches."""
    g, d = nets()
    zs, xs = codes(2 * batches), data(batches).split(BATCH)
    ema, g_steps, d_losses = None, 0, []
    for b, x in enumerate(xs):
        k = reg_interval if b % reg_interval == 0 else 0
        with torch.no_grad():
            fake = g(zs.pop(0))
        t_r, t_f = d(x).flatten(), d(fake).flatten()
        if loss == "nsgan":
            l_d = F.softplus(-t_r).mean() + F.softplus(t_f).mean()
        else:  # rsgan, paired
            l_d = F.softplus(-(t_r - t_f)).mean()
        d_losses.append(float(l_d.detach()))
        pen = 0.5 * r1 * grad_x(d, x).square().sum(1).mean() + 0.5 * r2 * grad_x(d, fake).square().sum(1).mean()
        grads = torch.autograd.grad(l_d + k * pen, list(d.parameters()))
        with torch.no_grad():
            for p, gr in zip(d.parameters(), grads):
                p -= LR * gr
        if (b + 1) % n_critic:
            continue
        t_f = d(g(zs.pop(0))).flatten()
        if loss == "nsgan":
            l_g = F.softplus(-t_f).mean()
        else:
            l_g = F.softplus(-(t_f - d(x).flatten().detach())).mean()
        grads = torch.autograd.grad(l_g, list(g.parameters()))
        with torch.no_grad():
            for p, gr in zip(g.parameters(), grads):
                p -= LR * gr
        g_steps += 1
        now = [p.detach().clone() for p in g.parameters()]
        if g_steps <= max(ema_start, 1):
            ema = now
        else:
            ema = [ema_decay * e + (1 - ema_decay) * p for e, p in zip(ema, now)]
    return g, d, ema, d_losses


def assert_params(module, params):
    for p, q in zip(module.parameters(), params, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)


CASES = {
    "plain": dict(batches=3),
    "n_critic=2": dict(batches=4, n_critic=2),
    "r1+r2 lazy": dict(batches=4, r1=0.7, r2=0.3, reg_interval=2),
    "r1 only, rsgan": dict(batches=3, r1=1.5, loss="rsgan"),
    "r2 only, n_critic=3": dict(batches=3, n_critic=3, r2=2.0),
    "ema_start=2": dict(batches=4, ema_start=2, ema_decay=0.7),
}


@pytest.mark.parametrize("case", CASES)
def test_parameters_follow_the_replica(case):
    kw = dict(CASES[case])
    batches, n_critic = kw.pop("batches"), kw.get("n_critic", 1)
    g, d, ema, _ = replica(batches, **kw)
    loss = kw.pop("loss", "nsgan")
    mod_kw = {"loss": {"name": "rsgan", "pairing": "paired"} if loss == "rsgan" else loss,
              "r1_gamma": kw.pop("r1", 0.0), "r2_gamma": kw.pop("r2", 0.0), "ema_decay": 0.5, **kw}
    m, t, sampler = fit(batches, **mod_kw)
    assert_params(m.discriminator, d.parameters())
    assert_params(m.generator, g.parameters())
    assert_params(m.g_ema.module, ema)
    g_steps = batches // n_critic
    assert (m.d_iters, m.d_steps, m.g_steps, m.skipped_steps) == (batches, batches, g_steps, 0)
    assert t.global_step == batches + g_steps and sampler.calls == batches + g_steps
    assert int(m.g_ema.n_averaged) == g_steps - max(kw.get("ema_start", 0), 1) + 1


def test_no_ema_when_decay_is_none():
    m, _, _ = fit(2, ema_decay=None)
    assert m.g_ema is None and m.eval_generator is m.generator


class LastOutputs(pl.Callback):
    def __init__(self):
        self.rows = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append(dict(outputs))


def test_outputs_are_the_detached_scalars_of_both_steps():
    _, _, _, d_losses = replica(2, r1=1.0)
    g, d = nets()
    rec = LastOutputs()
    m = GANModule(g, d, latent_dim=LATENT, latent_sampler=FixedSampler(codes(4)), r1_gamma=1.0, ema_decay=None,
                  g_optimizer=functools.partial(torch.optim.SGD, lr=LR),
                  d_optimizer=functools.partial(torch.optim.SGD, lr=LR))
    t = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                   enable_model_summary=False, max_steps=4, callbacks=[rec])
    t.fit(m, DataLoader(TensorDataset(data(2)), batch_size=BATCH))
    assert [set(r) for r in rec.rows] == [{"d_loss", "d_real", "d_fake", "r1", "g_loss"}] * 2  # no "loss"
    assert all(not v.requires_grad and v.dim() == 0 for r in rec.rows for v in r.values())
    assert [float(r["d_loss"]) for r in rec.rows] == pytest.approx(d_losses, rel=1e-5)


# ----------------------------------------------------------------------------- non-finite losses
class NaNLoss:
    """nsgan, with the `player` loss NaN on the given calls (1-based)."""

    def __init__(self, player, calls):
        self.inner, self.player, self.calls, self.n = losses.get("nsgan"), player, set(calls), 0
        self.relativistic = False

    def d_loss(self, r, f):
        return self._maybe("d", self.inner.d_loss(r, f))

    def g_loss(self, r, f):
        return self._maybe("g", self.inner.g_loss(r, f))

    def _maybe(self, player, value):
        if player == self.player:
            self.n += 1
            if self.n in self.calls:
                return value * float("nan")
        return value


def fit_nan(player, calls, batches, **kw):
    g, d = nets()
    m = GANModule(g, d, loss=NaNLoss(player, calls), latent_dim=LATENT, ema_decay=0.5, nonfinite="skip", **kw)
    t = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                   enable_model_summary=False, max_steps=100, max_epochs=1)
    with pytest.warns(UserWarning, match=f"skipped the {player.upper()} step at global_step"):
        t.fit(m, DataLoader(TensorDataset(data(batches)), batch_size=BATCH))
    return m, t


def test_a_skipped_g_step_leaves_g_and_its_ema_alone():
    m, t = fit_nan("g", {2}, batches=3, max_skipped_fraction=0.5)
    assert (m.d_iters, m.d_steps, m.g_steps, m.skipped_steps) == (3, 3, 2, 1)
    assert t.global_step == 5
    assert int(m.g_ema.n_averaged) == 2  # the EMA is updated after G steps that ran only


def test_skipped_fraction_at_the_bound_passes_and_above_it_fails():
    # 4 batches, n_critic=1: 8 attempted steps; 2 skipped = 25 %
    m, _ = fit_nan("d", {1, 3}, batches=4, max_skipped_fraction=0.25)
    assert m.skipped_steps == 2 and m.d_steps == 2
    with pytest.raises(NonFiniteLossError, match=r"skipped 2 of 8 optimizer steps .*max_skipped_fraction=0.2\)"):
        fit_nan("d", {1, 3}, batches=4, max_skipped_fraction=0.2)
    # n_critic=2: 4 batches = 4 D + 2 G attempts = 6; 1 skipped is 1/6 > 0.16
    with pytest.raises(NonFiniteLossError, match="skipped 1 of 6 optimizer steps"):
        fit_nan("g", {1}, batches=4, n_critic=2, max_skipped_fraction=0.16)


def test_a_run_of_one_attempted_step_is_judged_on_that_step():
    # one batch with n_critic=2: one attempted (D) step, skipped: 1 > 0.5 * 1
    msg = (r"^the run skipped 1 of 1 optimizer steps for non-finite losses \(more than max_skipped_fraction=0.5\); "
           r"its results are not trustworthy: lower the learning rate or add a penalty$")
    with pytest.raises(NonFiniteLossError, match=msg):
        fit_nan("d", {1}, batches=1, n_critic=2, max_skipped_fraction=0.5)
