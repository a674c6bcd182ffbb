"""What flows through GANModule's steps: D forwards, labels, penalty inputs (issue 15, mutation testing).

A step can compute the right loss the wrong way: a penalty that re-runs D instead of reusing the
step's forward, a real input made a grad-requiring leaf for a penalty that is off, labels dropped
(an unconditional-looking D call), GP drawn from the global RNG. The nets here record every call,
and the penalties are recomputed from their definitions:

    R1 = (γ₁/2) mean_i ‖∇_x D(x_i)‖² on the images D saw in the step (after augmentation),
    R2 the same on the step's fakes, GP = λ mean_i (‖∇_x D(x̂_i)‖ - 1)², x̂ = ε x_r + (1 - ε) x_f,
    ε ~ U[0, 1) drawn from the module's latent stream (`latent_generator`) after the step's forwards.
"""
import pytest
import torch
from torch import nn

from lightning_gans import losses
from lightning_gans.training import GANModule

LATENT, N, K = 3, 5, 3


class RecD(nn.Module):
    """D(x) or D(x, y) = a small MLP (+ a label embedding); records (x, x.requires_grad, y) per call."""

    def __init__(self, conditional=False):
        super().__init__()
        torch.manual_seed(4)
        self.net = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
        self.emb = nn.Embedding(K, 2) if conditional else None
        self.calls = []

    def forward(self, x, y=None):
        self.calls.append((x.detach().clone(), x.requires_grad, y))
        return self.net(x if self.emb is None else x + self.emb(y))


class RecG(nn.Module):
    def __init__(self, conditional=False):
        super().__init__()
        torch.manual_seed(5)
        self.net = nn.Linear(LATENT, 2)
        self.emb = nn.Embedding(K, 2) if conditional else None
        self.calls = []

    def forward(self, z, y=None):
        out = self.net(z) if self.emb is None else self.net(z) + self.emb(y)
        self.calls.append((z.clone(), y, out.detach().clone()))
        return out


class Codes:
    """latent_sampler: codes 0, 1, 2, ... of a fixed table, in order."""

    def __init__(self):
        self.table = torch.randn(8, N, LATENT, generator=torch.Generator().manual_seed(6))
        self.i = 0

    def __call__(self, shape, generator, device):
        assert tuple(shape) == (N, LATENT)
        self.i += 1
        return self.table[self.i - 1].clone()


def make(cls=GANModule, conditional=False, **kw):
    kw.setdefault("loss", "nsgan")
    m = cls(RecG(conditional), RecD(conditional), latent_dim=LATENT, latent_sampler=Codes(), ema_decay=None,
            num_classes=K if conditional else None, **kw)
    m._trainer = None
    return m


REAL = torch.randn(N, 2, generator=torch.Generator().manual_seed(7))
Y_REAL = torch.tensor([0, 2, 1, 1, 0])


def d_step(m, real=REAL, labels=None):
    """One regularized D step the way training_step runs it: the step, then the penalties (k = 1)."""
    roles = {r for r, on in (("real", m.r1_gamma > 0 or m.gp_weight > 0),
                             ("fake", m.r2_gamma > 0 or m.gp_weight > 0)) if on}
    m._penalty_inputs = dict.fromkeys(roles) if roles else None
    out = m.discriminator_step(real, labels)
    m.eps_state = m.latent_generator.get_state()  # the GP's ε comes next from this stream
    if roles:
        m._add_penalties(out, real, labels, 1)
    m._penalty_inputs = None
    return out


def grad_norms(d, x, y=None):
    x = x.detach().requires_grad_(True)
    (gx,) = torch.autograd.grad(d.net(x if y is None else x + d.emb(y)).sum(), x)
    return gx.norm(dim=1)


def expected_gp(m, x_r, x_f, weight, y=None):
    eps = torch.rand(N, generator=torch.Generator().set_state(m.eps_state))[:, None]
    x_hat = eps * x_r + (1 - eps) * x_f
    return weight * (grad_norms(m.discriminator, x_hat, y) - 1).square().mean()


# ----------------------------------------------------------------------------- the training_step path
@pytest.mark.parametrize("r1, r2, gp", [(0, 0, 0), (1.0, 0, 0), (0, 1.0, 0), (1.0, 2.0, 0), (0, 0, 0.5), (0, 0, 3.0)])
def test_trainer_d_step_reuses_its_forwards_for_the_penalties(r1, r2, gp, tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    class Phased(GANModule):
        def discriminator_step(self, real, labels=None):
            self.discriminator.calls.clear()
            out = super().discriminator_step(real, labels)
            self.d_out = out
            return out

        def generator_step(self, real, labels=None):
            self.d_calls = list(self.discriminator.calls)  # the D step's, penalties included
            return super().generator_step(real, labels)

    m = Phased(RecG(), RecD(), loss="nsgan", latent_dim=LATENT, latent_sampler=Codes(), r1_gamma=r1, r2_gamma=r2,
               gp_weight=gp, ema_decay=None)
    t = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                   enable_model_summary=False, max_steps=2, default_root_dir=tmp_path)
    t.fit(m, DataLoader(TensorDataset(REAL), batch_size=N))
    calls = m.d_calls
    # real and fake forwards, then one more for GP's interpolates; never a second forward for R1/R2
    assert len(calls) == 2 + (gp > 0)
    assert calls[0][1] is (r1 > 0 or gp > 0) and calls[1][1] is (r2 > 0 or gp > 0)  # leaves only when needed
    torch.testing.assert_close(calls[0][0], REAL)
    assert {k for k in ("r1", "r2", "gp") if k in m.d_out} == {k for k, v in (("r1", r1), ("r2", r2), ("gp", gp)) if v}


@pytest.mark.parametrize("augment", [False, True])
def test_penalties_are_taken_on_what_d_saw(augment):
    m = make(r1_gamma=1.5, r2_gamma=0.5, gp_weight=2.0)
    if augment:
        m.augment = lambda x: 2 * x + 1  # any deterministic map: the penalties see its output
    out = d_step(m)
    aug = m.augment or (lambda x: x)
    (z, _, fake), = m.generator.calls
    torch.testing.assert_close(z, m._latent_fn.table[0])
    x_r, x_f = aug(REAL), aug(fake)
    torch.testing.assert_close(out["r1"], 0.75 * grad_norms(m.discriminator, x_r).square().mean())
    torch.testing.assert_close(out["r2"], 0.25 * grad_norms(m.discriminator, x_f).square().mean())
    torch.testing.assert_close(out["gp"], expected_gp(m, x_r, x_f, 2.0))
    torch.testing.assert_close(out["loss"], out["d_loss"] + out["r1"] + out["r2"] + out["gp"])
    assert len(m.discriminator.calls) == 3


class PlainDStep(GANModule):
    """An overridden D step that calls D directly: the penalties need their own forwards."""

    def discriminator_step(self, real, labels=None):
        with torch.no_grad():
            fake = self.generate(self.sample_latent(len(real)), None)
        return {"loss": self.loss.d_loss(self.discriminator(real), self.discriminator(fake))}


def test_penalties_of_an_overridden_step_draw_their_own_inputs():
    m = make(PlainDStep, r1_gamma=1.0, r2_gamma=3.0, gp_weight=0.5)
    out = d_step(m)
    # codes: 0 for the step's fakes, 1 for R2's, 2 for GP's; R1 and GP take the batch's reals.
    # D: the step's two forwards, then R1's (reals), R2's (code 1), GP's fakes (code 2), GP's x̂
    assert m._latent_fn.i == 3 and [c[1] for c in m.discriminator.calls] == [False, False, True, True, True, True]
    fake_r2, fake_gp = m.generator.calls[1][2], m.generator.calls[2][2]
    torch.testing.assert_close(out["r1"], 0.5 * grad_norms(m.discriminator, REAL).square().mean())
    torch.testing.assert_close(out["r2"], 1.5 * grad_norms(m.discriminator, fake_r2).square().mean())
    torch.testing.assert_close(out["gp"], expected_gp(m, REAL, fake_gp, 0.5))
    torch.testing.assert_close(m.discriminator.calls[3][0], fake_r2)
    assert m._penalty_inputs is None


class PlainCondDStep(GANModule):
    def discriminator_step(self, real, labels=None):
        with torch.no_grad():
            y_f = self.sample_labels(len(real))
            fake = self.generate(self.sample_latent(len(real)), y_f)
        return {"loss": self.loss.d_loss(self.discriminator(real, labels), self.discriminator(fake, y_f))}


def test_penalty_forwards_of_an_overridden_conditional_step_carry_labels():
    m = make(PlainCondDStep, conditional=True, r1_gamma=1.0, r2_gamma=1.0)
    out = d_step(m, REAL, Y_REAL)
    (_, y_step, _), (_, y_r2, fake_r2) = m.generator.calls
    assert y_r2.shape == (N,) and y_r2.dtype == torch.int64  # R2's fakes get their own labels, like the step's
    r1_call, r2_call = m.discriminator.calls[2:]
    assert r1_call[1] and torch.equal(r1_call[0], REAL) and torch.equal(r1_call[2], Y_REAL)
    assert r2_call[1] and torch.equal(r2_call[0], fake_r2) and torch.equal(r2_call[2], y_r2)
    grads = grad_norms(m.discriminator, fake_r2, y_r2)
    torch.testing.assert_close(out["r2"], 0.5 * grads.square().mean())


# ----------------------------------------------------------------------------- labels
@pytest.mark.parametrize("loss", ["nsgan", "rsgan"])
def test_labels_reach_g_and_d_in_both_steps(loss):
    m = make(conditional=True, loss=loss, r1_gamma=1.0, gp_weight=1.0)
    d_step(m, REAL, Y_REAL)
    (z, y_f, fake), = m.generator.calls
    assert y_f.shape == (N,) and y_f.dtype == torch.int64
    (x0, _, y0), (x1, _, y1), (_, _, y2) = m.discriminator.calls
    torch.testing.assert_close(x0, REAL)
    assert torch.equal(y0, Y_REAL) and torch.equal(x1, fake) and torch.equal(y1, y_f)
    assert torch.equal(y2, Y_REAL)  # GP's interpolates are scored with the real labels
    x_f = fake
    out_gp = expected_gp(m, REAL, x_f, 1.0, Y_REAL)
    m.generator.calls.clear(), m.discriminator.calls.clear()
    m.generator_step(REAL, Y_REAL)
    (z2, y_g, fake2), = m.generator.calls
    assert y_g is not None and y_g.shape == (N,) and not torch.equal(z2, z)
    assert torch.equal(m.discriminator.calls[0][0], fake2) and torch.equal(m.discriminator.calls[0][2], y_g)
    if loss == "rsgan":  # relativistic: D(x_r, y_r) too
        assert len(m.discriminator.calls) == 2 and torch.equal(m.discriminator.calls[1][2], Y_REAL)
    else:
        assert len(m.discriminator.calls) == 1
    assert torch.isfinite(out_gp)


def test_conditional_gp_value():
    m = make(conditional=True, gp_weight=1.5)
    out = d_step(m, REAL, Y_REAL)
    fake = m.generator.calls[0][2]
    torch.testing.assert_close(out["gp"], expected_gp(m, REAL, fake, 1.5, Y_REAL))


# ----------------------------------------------------------------------------- what the G loss receives
class Spy:
    """A loss object (not a GANLoss) that records what g_loss gets; `relativistic` only when given."""

    def __init__(self, **attrs):
        self.inner, self.seen = losses.get("nsgan"), []
        self.__dict__.update(attrs)

    def d_loss(self, r, f):
        return self.inner.d_loss(r, f)

    def g_loss(self, r, f):
        self.seen.append((r, f))
        return self.inner.g_loss(r, f)


@pytest.mark.parametrize("attrs, d_calls", [({}, 2), ({"relativistic": True}, 2), ({"relativistic": False}, 1)])
def test_g_step_scores_reals_unless_the_loss_says_it_is_not_relativistic(attrs, d_calls):
    m = make(loss=Spy(**attrs))
    m.generator_step(REAL)
    assert len(m.discriminator.calls) == d_calls  # no attribute: assume relativistic (the safe choice)
    (r, f), = m.loss.seen
    assert torch.is_tensor(r) and r.shape == f.shape and not r.requires_grad and f.requires_grad
    if d_calls == 2:
        torch.testing.assert_close(r, m.discriminator.net(REAL))


def test_training_step_passes_the_batch_labels_to_the_penalty_forwards(tmp_path):
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    m = PlainCondDStep(RecG(True), RecD(True), latent_dim=LATENT, latent_sampler=Codes(), num_classes=K,
                       r1_gamma=1.0, ema_decay=None)
    t = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                   enable_model_summary=False, max_steps=1, default_root_dir=tmp_path)
    t.fit(m, DataLoader(TensorDataset(REAL, Y_REAL), batch_size=N))
    r1_call = m.discriminator.calls[2]  # after the step's real and fake forwards
    assert r1_call[1] and torch.equal(r1_call[0], REAL) and torch.equal(r1_call[2], Y_REAL)
