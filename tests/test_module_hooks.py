"""GANModule's checks before fitting and its penalties outside the override points."""
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.training import GANModule
from test_module import LATENT, Record, loader, module, nets, trainer


def test_ddp_without_unused_parameter_search_is_rejected():
    import torch.distributed as dist
    from types import SimpleNamespace

    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=0, world_size=1)
    try:
        m = module()
        for unused, fails in ((False, True), (True, False)):
            ddp = DistributedDataParallel(nn.Linear(2, 1), find_unused_parameters=unused)
            m._trainer = SimpleNamespace(strategy=SimpleNamespace(model=ddp, broadcast=lambda x: x),
                                         precision="32-true", datamodule=None)
            if fails:
                with pytest.raises(ValueError, match="strategy='ddp_find_unused_parameters_true'"):
                    m.on_fit_start()
            else:
                m.on_fit_start()
    finally:
        dist.destroy_process_group()


def test_trainer_gradient_clipping_gets_a_gan_message():
    with pytest.raises(ValueError, match=r"use GANModule\(grad_clip=\.\.\., grad_clip_algorithm=\.\.\.\) instead of Trainer"):
        trainer(max_steps=2, gradient_clip_val=1.0).fit(module(), loader())
    with pytest.raises(ValueError, match="does not accumulate"):
        trainer(max_steps=2, accumulate_grad_batches=2).fit(module(), loader())


def test_bf16_with_convolutions_on_cpu_warns_once():
    g = nn.Sequential(nn.Linear(LATENT, 4 * 4 * 4), nn.Unflatten(1, (4, 4, 4)), nn.Conv2d(4, 1, 3, padding=1))
    d = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 16, 1))
    m = GANModule(g, d, loss="nsgan", latent_dim=LATENT)
    data = DataLoader(TensorDataset(torch.randn(16, 1, 4, 4)), batch_size=8)
    with pytest.warns(UserWarning, match="bf16 on the CPU with convolutions is slow") as rec:
        trainer(max_steps=2, precision="bf16-mixed").fit(m, data)
    assert sum("bf16 on the CPU" in str(w.message) for w in rec) == 1


class PlainDStep(GANModule):
    """Overrides the D step without `discriminate`: the loop must still add R1 (with its own D forward)."""

    def discriminator_step(self, real, labels=None):
        with torch.no_grad():
            fake = self.generator(self.sample_latent(len(real)))
        return {"loss": self.loss.d_loss(self.discriminator(real), self.discriminator(fake))}


def d_grad_after_one_step(cls, gamma):
    g, d = nets()
    m = cls(g, d, loss="nsgan", latent_dim=LATENT, r1_gamma=gamma)
    real = torch.randn(8, 2, generator=torch.Generator().manual_seed(1))
    m._trainer = None
    m._penalty_inputs = {"real": None} if gamma else None
    out = m.discriminator_step(real)
    if gamma:
        m._add_penalties(out, real, None, 1)
    grads = torch.autograd.grad(out["loss"], list(m.discriminator.parameters()))
    return torch.cat([x.flatten() for x in grads]), out


@pytest.mark.parametrize("cls", [GANModule, PlainDStep])
def test_r1_reaches_d_whether_or_not_the_step_is_overridden(cls):
    g0, _ = d_grad_after_one_step(cls, 0.0)
    g1, out1 = d_grad_after_one_step(cls, 1.0)
    g2, out2 = d_grad_after_one_step(cls, 2.0)
    assert "r1" in out1 and float(out1["r1"].detach()) > 0
    torch.testing.assert_close(out2["r1"], 2 * out1["r1"])  # (γ/2)E‖∇D‖² is linear in γ
    torch.testing.assert_close(g2 - g0, 2 * (g1 - g0))  # the penalty's gradient enters D's, scaled by γ
    assert not torch.allclose(g1, g0)


def test_overridden_step_keeps_penalties_in_training():
    g, d = nets()
    m, rec = PlainDStep(g, d, loss="nsgan", latent_dim=LATENT, r1_gamma=1.0, r2_gamma=1.0), Record()
    trainer(max_steps=4, callbacks=[rec]).fit(m, loader())
    assert all({"r1", "r2"} <= set(o) for _, o in rec.rows)
