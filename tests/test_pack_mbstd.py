"""PacGAN packing (GANModule(pack=m)) and the minibatch-std layer (nets/minibatch_std.py), against
expectations written out here: which samples form a pack or a group, the statistic's value, the
penalties' per-pack gradient norm, and one training step of every loss on packed batches."""
import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans import losses
from lightning_gans.nets import MLPDiscriminator, MLPGenerator
from lightning_gans.nets.minibatch_std import MinibatchStd
from lightning_gans.training import GANModule, penalties


class Recorder(nn.Module):
    """D(p) = <w, p> on packed inputs p; remembers what it was called with."""

    def __init__(self, width):
        super().__init__()
        self.w = nn.Parameter(torch.arange(1.0, width + 1))
        self.seen = []

    def forward(self, p):
        self.seen.append(p.detach().clone())
        return p.flatten(1) @ self.w


def packed_module(pack, d=None, **kw):
    g = MLPGenerator(latent_dim=3, out_dim=2, hidden=8, layers=1)
    return GANModule(g, d if d is not None else Recorder(2 * pack), pack=pack, ema_decay=None, **kw)


def test_a_pack_is_consecutive_samples_concatenated_along_dim_1():
    m = packed_module(3)
    x = torch.arange(12.0).view(6, 2)
    out = m.discriminate(x)
    p = m.discriminator.seen[-1]
    assert p.shape == (2, 6)
    assert torch.equal(p[0], torch.cat([x[0], x[1], x[2]])) and torch.equal(p[1], torch.cat([x[3], x[4], x[5]]))
    assert torch.equal(out, torch.stack([p[0] @ torch.arange(1.0, 7), p[1] @ torch.arange(1.0, 7)]))
    # images: channels are concatenated, (B, C, H, W) -> (B/m, m·C, H, W)
    img = torch.randn(4, 3, 2, 2)
    m2 = packed_module(2, d=Recorder(24))
    m2.discriminate(img)
    q = m2.discriminator.seen[-1]
    assert q.shape == (2, 6, 2, 2) and torch.equal(q[1, 3:], img[3]) and torch.equal(q[1, :3], img[2])


def test_penalties_bound_the_gradient_of_each_pack():
    # D(p) = <w, p>: every pack's gradient is w, so R1 = (γ/2)‖w‖², WGAN-GP = λ(‖w‖ - 1)², whatever m is.
    for pack in (1, 2, 4):
        m = packed_module(pack)
        w2 = float((torch.arange(1.0, 2 * pack + 1) ** 2).sum())
        x = torch.randn(8, 2).requires_grad_(True)
        r1 = penalties.zero_centred(m.discriminate(x), x, gamma=2.0)
        assert float(r1.detach()) == pytest.approx(w2)
        gp = penalties.wgan_gp(lambda v: m._discriminator_forward(v, None), torch.randn(8, 2), torch.randn(8, 2),
                               weight=1.0, eps=torch.rand(8))
        assert float(gp.detach()) == pytest.approx((w2 ** 0.5 - 1) ** 2)


def test_bad_pack_arguments_name_the_argument():
    with pytest.raises(ValueError, match="pack must be an int >= 1"):
        packed_module(0)
    with pytest.raises(ValueError, match="pack=2 needs an unconditional GAN"):
        GANModule(MLPGenerator(num_classes=3), MLPDiscriminator(in_dim=4, num_classes=3), pack=2, num_classes=3)
    with pytest.raises(ValueError, match=r"pack=4.*multiple of pack, got 6 samples"):
        packed_module(4).discriminate(torch.randn(6, 2))


@pytest.mark.parametrize("name", losses.names())
def test_every_loss_trains_on_packs_with_every_penalty(name):
    torch.manual_seed(0)
    d = MLPDiscriminator(in_dim=4, hidden=8, layers=2)
    m = packed_module(2, d=d, loss=name, r1_gamma=1.0, r2_gamma=1.0, gp_weight=1.0)
    d0 = torch.cat([p.detach().flatten() for p in d.parameters()])
    loader = DataLoader(TensorDataset(torch.randn(16, 2)), batch_size=8)
    pl.Trainer(accelerator="cpu", max_steps=2, logger=False, enable_progress_bar=False, enable_checkpointing=False,
               enable_model_summary=False).fit(m, loader)
    assert m.d_steps == 1 and m.g_steps == 1 and m.skipped_steps == 0
    assert not torch.equal(torch.cat([p.detach().flatten() for p in d.parameters()]), d0)


def _mbstd_by_hand(h, g):
    b = h.shape[0]
    out = []
    for i in range(b):
        members = [j for j in range(b) if j % (b // g) == i % (b // g)]  # strided groups
        grp = h[members].double()
        std = ((grp - grp.mean(0)).pow(2).mean(0) + 1e-8).sqrt()
        out.append(float(std.mean()))
    return torch.tensor(out)


@pytest.mark.parametrize("shape, g", [((8, 3), 4), ((3, 5), 4), ((6, 2), 2), ((4, 2, 3, 3), 2), ((1, 4), 4)])
def test_minibatch_std_appends_each_group_spread(shape, g):
    h = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
    out = MinibatchStd(g)(h)
    assert out.shape == (shape[0], shape[1] + 1, *shape[2:])
    assert torch.equal(out[:, :shape[1]], h)
    want = _mbstd_by_hand(h, min(g, shape[0]))
    got = out[:, shape[1]].reshape(shape[0], -1)
    assert torch.allclose(got, want.view(-1, 1).expand_as(got).float(), atol=1e-6)


def test_minibatch_std_sees_collapse_and_errors_name_the_argument():
    same = torch.ones(8, 4)
    assert torch.allclose(MinibatchStd(4)(same)[:, -1], torch.full((8,), 1e-4))  # sqrt(eps)
    with pytest.raises(ValueError, match="multiple of the group size"):
        MinibatchStd(4)(torch.randn(6, 3))
    for bad in (1, 0, True, 2.5):
        with pytest.raises(ValueError, match="group_size must be an int >= 2"):
            MinibatchStd(bad)
    with pytest.raises(ValueError, match="minibatch_std must be 0"):
        MLPDiscriminator(minibatch_std=1)
    d = MLPDiscriminator(hidden=8, layers=2, minibatch_std=4)
    assert any(isinstance(layer, MinibatchStd) for layer in d.net) and d(torch.randn(8, 2)).shape == (8,)
