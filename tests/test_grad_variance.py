"""training/grad_variance.py: the gradient variance over batches, against the gradients computed here by
hand for RSGAN's two pairings (formulas written in the test), and the callback inside a real fit."""
import json

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lightning_gans.data import ToyDataModule
from lightning_gans.training import GANModule, GradientVariance
from lightning_gans.training.grad_variance import gradient_variance


class Lin(nn.Module):
    def __init__(self, d_in, d_out, latent_dim=None):
        super().__init__()
        self.lin = nn.Linear(d_in, d_out)
        if latent_dim:
            self.latent_dim = latent_dim

    def forward(self, x):
        return self.lin(x).squeeze(-1)


def real_sampler(n, seed):
    return torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)) + 1.0


def by_hand(m, pairing, batches, bs, seed):
    gen = torch.Generator().manual_seed(seed)
    dg, gg = [], []
    for t in range(batches):
        real = real_sampler(bs, seed * 100003 + t)
        z = torch.randn(bs, 3, generator=gen)
        fake = m.generator(z)
        r, f = m.discriminator(real), m.discriminator(fake)
        diff = (r[:, None] - f[None, :]) if pairing == "all" else (r - f)
        d_loss = nn.functional.softplus(-diff).mean()  # RSGAN's D: E softplus(-(r - f))
        g_diff = (f[None, :] - r.detach()[:, None]) if pairing == "all" else (f - r.detach())
        g_loss = nn.functional.softplus(-g_diff).mean()  # its G: E softplus(-(f - r))
        dg.append(torch.cat([g.flatten() for g in torch.autograd.grad(d_loss, list(m.discriminator.parameters()),
                                                                       retain_graph=True)]))
        gg.append(torch.cat([g.flatten() for g in torch.autograd.grad(g_loss, list(m.generator.parameters()))]))
    out = {}
    for name, gs in (("d", dg), ("g", gg)):
        g = torch.stack(gs).double()
        mean = g.mean(0)
        out[name] = {"var": float(((g - mean) ** 2).sum() / (len(g) - 1)), "mean_sq": float((mean ** 2).sum())}
    return out


def test_variance_and_signal_match_the_gradients_computed_by_hand():
    torch.manual_seed(0)
    m = GANModule(Lin(3, 2, latent_dim=3), Lin(2, 1), loss="rsgan", ema_decay=None)
    specs = [{"name": "rsgan", "pairing": "paired"}, {"name": "rsgan", "pairing": "all"}]
    got = gradient_variance(m, real_sampler, specs, batches=6, batch_size=5, seed=3)
    for spec in specs:
        want = by_hand(m, spec["pairing"], 6, 5, 3)
        for player in ("d", "g"):
            for k in ("var", "mean_sq"):
                assert got[f"name=rsgan,pairing={spec['pairing']}"][player][k] == pytest.approx(want[player][k],
                                                                                              rel=1e-5)
    # the two pairings differ on these weights and batches (N > 1)
    assert got["name=rsgan,pairing=all"]["d"]["var"] != pytest.approx(got["name=rsgan,pairing=paired"]["d"]["var"])
    with pytest.raises(ValueError, match="batches must be >= 2"):
        gradient_variance(m, real_sampler, specs, batches=1)


def test_the_callback_measures_during_a_fit_without_changing_it(tmp_path):
    def fit(callbacks):
        torch.manual_seed(0)
        from lightning_gans.nets import MLPDiscriminator, MLPGenerator
        m = GANModule(MLPGenerator(latent_dim=4, hidden=8, layers=1), MLPDiscriminator(hidden=8, layers=1),
                      loss="rsgan", ema_decay=None)
        dm = ToyDataModule("ring8", batch_size=16, steps_per_epoch=10, seed=0)
        pl.Trainer(accelerator="cpu", max_steps=6, logger=False, enable_progress_bar=False,
                   enable_checkpointing=False, enable_model_summary=False, callbacks=callbacks).fit(m, dm)
        return torch.cat([p.detach().flatten() for p in m.parameters()])

    cb = GradientVariance(str(tmp_path), compare=["rsgan", {"name": "rsgan", "pairing": "all"}], every_n_steps=4,
                          batches=3, batch_size=8)
    assert torch.equal(fit([cb]), fit([]))  # its own streams: training sees the same numbers
    hist = json.loads((tmp_path / "grad_variance.json").read_text())
    assert [h["step"] for h in hist] == [4, 6] and [h["g_steps"] for h in hist] == [2, 3]
    assert set(hist[0]["losses"]) == {"rsgan", "name=rsgan,pairing=all"}
    assert all(v[p]["var"] > 0 for h in hist for v in h["losses"].values() for p in ("d", "g"))
