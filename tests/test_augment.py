"""DiffAugment: the same transformations for reals and fakes, gradients through them to G, seeded from the
module's stream (bitwise-identical runs, exact resume, disjoint DDP slices), clear errors."""
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_gans.nets import DCGANDiscriminator, DCGANGenerator
from lightning_gans.training import GANModule, rng
from lightning_gans.training.augment import OPS, DiffAugment

ALL = "translation,cutout,color"


def module(augment=ALL, num_classes=None, **kw):
    torch.manual_seed(0)
    g = DCGANGenerator(latent_dim=8, channels=3, image_size=8, width=8, num_classes=num_classes)
    d = DCGANDiscriminator(channels=3, image_size=8, width=8, num_classes=num_classes)
    return GANModule(g, d, loss="rsgan", augment=augment, num_classes=num_classes, **kw)


def images(n=32, seed=0, labels=False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 8, 8, generator=gen) * 2 - 1
    return TensorDataset(x, torch.randint(4, (n,), generator=gen)) if labels else TensorDataset(x)


def impulses(n):
    """Images that are -1 except one white centre pixel: after `translation`, where it went is the shift."""
    x = -torch.ones(n, 1, 8, 8)
    x[:, :, 4, 4] = 1
    return x


def shifts(x):
    flat = x.flatten(1).argmax(1)
    return torch.stack([flat // 8 - 4, flat % 8 - 4], 1)


class Impulse(nn.Module):
    """A 'generator' of impulse images (plus a trainable scale, so it has a gradient)."""
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, z):
        return impulses(len(z)) * self.scale


class Recorder(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin, self.seen = nn.Linear(64, 1), []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        return self.lin(x.flatten(1)).squeeze(1)


def test_reals_and_fakes_get_the_same_transformation_distribution_in_both_steps():
    m = GANModule(Impulse(), Recorder(), loss="rsgan", augment="translation")
    m.rng.start(0, "cpu")
    n = 3000
    m.discriminator_step(impulses(n))
    m.generator_step(impulses(n))
    real_d, fake_d, fake_g, real_g = m.discriminator.seen  # D step: real, fake; G step: fake, then real
    uniform = torch.full((3,), 1 / 3)
    for x in (real_d, fake_d, fake_g, real_g):
        s = shifts(x)
        assert int(s.abs().max()) == 1  # translation by up to 1/8 of 8 pixels
        for axis in (0, 1):  # each shift is uniform over {-1, 0, 1}, for reals and fakes alike
            share = torch.bincount(s[:, axis] + 1, minlength=3).float() / n
            assert torch.allclose(share, uniform, atol=0.035), share
    assert not torch.equal(shifts(real_d), shifts(fake_d))  # independent draws, not one shared shift


@pytest.mark.parametrize("policy", list(OPS))
def test_gradients_reach_g_through_each_op(policy):
    m = module(augment=policy)
    m.rng.start(0, "cpu")
    out = m.generator_step(images()[:][0])
    grads = torch.autograd.grad(out["loss"], list(m.generator.parameters()), allow_unused=True)
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    x = torch.rand(4, 3, 8, 8, requires_grad=True)
    (gx,) = torch.autograd.grad(DiffAugment(policy, generator=torch.Generator().manual_seed(0))(x).sum(), x)
    assert gx.abs().sum() > 0  # every op is differentiable w.r.t. its input


def test_each_op_changes_images_and_p_zero_is_the_identity():
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    for policy in OPS:
        assert not torch.equal(DiffAugment(policy, generator=torch.Generator().manual_seed(0))(x), x), policy
    assert torch.equal(DiffAugment(ALL, p=0.0, generator=torch.Generator().manual_seed(0))(x), x)
    half = DiffAugment("cutout", p=0.5, generator=torch.Generator().manual_seed(0))(x.repeat(50, 1, 1, 1))
    changed = (half != x.repeat(50, 1, 1, 1)).flatten(1).any(1).float().mean()
    assert 0.4 < float(changed) < 0.6


def test_r1_is_taken_on_the_augmented_reals():
    m = GANModule(Impulse(), Recorder(), loss="nsgan", augment="translation", r1_gamma=1.0)
    m.rng.start(0, "cpu")
    m._penalty_inputs = {"real": None}
    m.discriminator_step(impulses(64))
    x_penalised, _, _ = m._penalty_inputs["real"]
    assert torch.equal(x_penalised.detach(), m.discriminator.seen[0])  # what D saw: translated impulses
    assert (shifts(x_penalised.detach()) != 0).any()


def test_ddp_ranks_draw_disjoint_slices_of_the_global_draw(monkeypatch):
    x = torch.rand(8, 3, 8, 8) * 2 - 1
    aug = DiffAugment(ALL, p=0.7, generator=torch.Generator().manual_seed(3))
    whole = aug(x)  # one process, global batch of 8
    parts = []
    for rank in (0, 1):
        monkeypatch.setattr(rng, "world", lambda r=rank: (r, 2))
        parts.append(DiffAugment(ALL, p=0.7, generator=torch.Generator().manual_seed(3))(x[4 * rank:4 * rank + 4]))
    assert torch.equal(torch.cat(parts), whole)


def run(tmp_path, max_steps, seed=7, ckpt_path=None, every=None, num_classes=4):
    m = module(num_classes=num_classes, r1_gamma=0.5, augment_p=0.8)  # the same initial nets for every seed
    pl.seed_everything(seed, verbose=False)  # the seed of the data order and of the latent/augmentation stream
    callbacks = [ModelCheckpoint(dirpath=tmp_path, every_n_train_steps=every, save_top_k=-1, filename="{step}")] \
        if every else []
    t = pl.Trainer(accelerator="cpu", devices=1, max_steps=max_steps, deterministic=True, logger=False,
                   enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks,
                   enable_checkpointing=bool(every), default_root_dir=tmp_path)
    t.fit(m, DataLoader(images(labels=True), batch_size=8, shuffle=True), ckpt_path=ckpt_path)
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_same_seed_gives_bitwise_identical_runs_and_another_seed_does_not(tmp_path):
    a, b, c = run(tmp_path, 6), run(tmp_path, 6), run(tmp_path, 6, seed=8)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_resume_with_augmentation_is_exact(tmp_path):
    full = run(tmp_path / "full", 16)
    run(tmp_path / "ck", 8, every=8)  # one epoch: 4 batches = 8 optimizer steps
    resumed = run(tmp_path / "res", 16, ckpt_path=tmp_path / "ck" / "step=8.ckpt")
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_unknown_op_and_bad_p_are_one_line_errors():
    with pytest.raises(ValueError, match="augment: unknown op 'flip' in 'translation,flip'; expected a "
                                         "comma-separated list of color, translation, cutout"):
        module(augment="translation,flip")
    with pytest.raises(ValueError, match="augment: no op in ','"):
        DiffAugment(",")
    with pytest.raises(ValueError, match=r"augment_p must be a number in \[0, 1\], got 1.5"):
        module(augment_p=1.5)
    with pytest.raises(ValueError, match="DiffAugment takes images"):
        DiffAugment("color", generator=torch.Generator())(torch.zeros(4, 2))
