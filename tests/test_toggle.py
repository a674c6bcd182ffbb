"""GANModule's own toggling of the players' parameters matches Lightning's toggle_optimizer/untoggle_optimizer."""
import lightning.pytorch as pl
import torch
from torch import nn

from lightning_gans.training import GANModule
from lightning_gans.training.loop import _untoggle
from test_module import LATENT, loader, nets, trainer


def flags(m):
    return [p.requires_grad for p in m.parameters()]


class Compare(pl.Callback):
    """After every batch: for each optimizer, `_toggle` leaves the flags `toggle_optimizer` leaves, and both undo."""

    def __init__(self):
        self.checked = 0

    def on_train_batch_end(self, trainer, m, outputs, batch, batch_idx):
        before = flags(m)
        for opt in m.optimizers():
            frozen = m._toggle(opt)
            ours = flags(m)
            _untoggle(frozen)
            assert flags(m) == before
            m.toggle_optimizer(opt)
            theirs = flags(m)
            m.untoggle_optimizer(opt)
            assert flags(m) == before and ours == theirs
            self.checked += 1


class Seen(GANModule):
    """Records the flags inside each step; its D step runs G with autograd on (no torch.no_grad)."""

    def discriminator_step(self, real, labels=None):
        self.seen_d = ([p.requires_grad for p in self.generator.parameters()],
                       [p.requires_grad for p in self.discriminator.parameters()])
        fake = self.generator(self.sample_latent(len(real)))  # would reach G's parameters if they required grad
        return {"loss": self.loss.d_loss(self.discriminator(real), self.discriminator(fake))}

    def generator_step(self, real, labels=None):
        self.seen_g = ([p.requires_grad for p in self.generator.parameters()],
                       [p.requires_grad for p in self.discriminator.parameters()])
        return super().generator_step(real, labels)


class WithShared(nn.Module):
    """A generator that also holds one of D's layers (so that layer is in both optimizers) without using it."""

    def __init__(self, net, shared):
        super().__init__()
        self.net, self.shared = net, shared

    def forward(self, z):
        return self.net(z)


def test_toggle_matches_lightning_with_a_frozen_and_a_shared_parameter():
    g, d = nets()
    g[0].bias.requires_grad_(False)  # frozen by the user: must stay frozen
    m, check = GANModule(WithShared(g, d[0]), d, loss="nsgan", latent_dim=LATENT), Compare()
    trainer(max_steps=4, callbacks=[check]).fit(m, loader())
    assert check.checked == 2 * 2
    assert not g[0].bias.requires_grad and all(p.requires_grad for p in d.parameters())


class GradsAtDStep(pl.Callback):
    def on_before_optimizer_step(self, trainer, m, optimizer):
        if optimizer is trainer.optimizers[0]:  # D's step: G accumulated nothing
            self.g_grads = [p.grad for p in m.generator.parameters()]


def test_each_step_freezes_only_the_idle_player():
    g, d = nets()
    m, cb = Seen(g, d, loss="nsgan", latent_dim=LATENT), GradsAtDStep()
    trainer(max_steps=2, callbacks=[cb]).fit(m, loader())
    n_g, n_d = len(list(g.parameters())), len(list(d.parameters()))
    assert m.seen_d == ([False] * n_g, [True] * n_d)
    assert m.seen_g == ([True] * n_g, [False] * n_d)
    assert cb.g_grads == [None] * n_g  # G ran with autograd on in the D step, yet got no gradient
    assert all(p.requires_grad for p in list(g.parameters()) + list(d.parameters()))
