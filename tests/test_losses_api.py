"""The loss library's API around the math: `get` specs, validation messages, impl routing, half precision,
DesignedLoss options. Written to kill the surviving mutants of `make mutate` (docs/testing.md)."""
import math
import warnings

import pytest
import torch

from lightning_gans import kernels, losses
from lightning_gans.factory import DesignCheckError, design

FUSED_NAMES = [("sgan", {}), ("nsgan", {}), ("fgan_js", {"generator": "nonsat"}), ("fgan_js", {"generator": "saddle"}),
               ("rasgan", {}), ("rsgan", {"pairing": "paired"}), ("rsgan", {"pairing": "all"}),
               ("rsgan", {"pairing": "all", "h": "minimax"})]


# ------------------------------------------------------------------ get()
def test_get_accepts_a_mapping_and_keywords_and_none_means_default():
    a = losses.get({"name": "lsgan", "a": 0.0, "b": 2.0}, c=1.0)
    assert (a.a, a.b, a.c) == (0.0, 2.0, 1.0)
    assert losses.get({"name": "rsgan", "pairing": None}).pairing == "paired"  # None: the loss's default


def test_get_returns_a_ready_made_loss_as_is():
    loss = losses.get("hinge")
    assert losses.get(loss) is loss
    with pytest.raises(TypeError, match=r"parameters \['h'\] given with a ready-made"):
        losses.get(loss, h="linear")


def test_get_needs_both_losses_on_a_ready_made_object():
    class HalfLoss:  # d_loss only: not a loss pair
        def d_loss(self, r, f):
            return r.mean()

    with pytest.raises(losses.LossConfigError, match="loss must be a name, a mapping"):
        losses.get(HalfLoss())


def test_fused_without_a_kernel_says_what_to_use():
    with pytest.raises(losses.LossConfigError, match=r"loss 'hinge' has no fused kernel \(it is plain torch "
                                                     r"elementwise math\); use impl='auto' or impl='ref'"):
        losses.get("hinge", impl="fused")


NAMES = ", ".join(losses.names())  # "sgan, nsgan, ...": the messages list every name, comma-separated


@pytest.mark.parametrize("spec,words", [
    ({"pairing": "all"}, f"loss: a mapping needs a 'name' (one of {NAMES}), got keys ['pairing']"),
    (3, "loss must be a name, a mapping {'name': ..., **params} or a GANLoss, got int"),
    ("sgann", f"unknown loss 'sgann'; choose one of: {NAMES}"),
])
def test_get_bad_specs(spec, words):
    with pytest.raises(losses.LossConfigError) as e:
        losses.get(spec)
    assert str(e.value) == words


def test_unknown_parameter_messages_say_what_is_accepted():
    with pytest.raises(losses.LossConfigError) as e:
        losses.get("lsgan", d=1)
    assert str(e.value) == "loss 'lsgan' got unknown parameter(s) ['d']; it accepts ['a', 'b', 'c']"
    with pytest.raises(losses.LossConfigError) as e:
        losses.get("hinge", a=1)
    assert str(e.value) == "loss 'hinge' got unknown parameter(s) ['a']; it takes no parameters"


@pytest.mark.parametrize("params,words", [
    ({"b": float("nan")}, "lsgan parameter b must be a finite number"),
    ({"c": float("inf")}, "lsgan parameter c must be a finite number"),
    ({"a": True}, "lsgan parameter a must be a finite number"),   # a bool is not a label
    ({"a": 1.0, "b": 1.0}, "real label b above the fake label a"),  # b = a: no margin, refused
])
def test_lsgan_label_errors_name_the_label(params, words):
    with pytest.raises(losses.LossConfigError, match=words):
        losses.get("lsgan", **params)


def test_fgan_generator_error_names_the_choices():
    with pytest.raises(losses.LossConfigError, match=r"fgan_kl generator must be one of \('nonsat', 'saddle'\), "
                                                     r"got 'minimax'"):
        losses.get("fgan_kl", generator="minimax")


def test_repr_and_params_name_the_loss():
    assert repr(losses.get("rsgan", pairing="all", impl="ref")) == "RSGAN(pairing='all', h='nonsat', impl='ref')"
    assert repr(losses.get("hinge")) == "HingeGAN(impl='auto')"
    assert losses.get("fgan_tv", generator="saddle").params() == {"generator": "saddle"}
    assert losses.get("lsgan", c=0.5).params() == {"a": -1.0, "b": 1.0, "c": 0.5}
    assert losses.get("designed", omega="0.5*log(r)", rho="exp(-t)", beta="exp(t)", constants={"k": 2}).params() == {
        "omega": "0.5*log(r)", "rho": "exp(-t)", "alpha": None, "beta": "exp(t)", "generator": "auto",
        "constants": {"k": 2}}


# ------------------------------------------------------------------ impl routing
@pytest.mark.parametrize("name,params", FUSED_NAMES, ids=[f"{n}{p}" for n, p in FUSED_NAMES])
def test_impl_ref_really_runs_the_reference(name, params):
    # The fused ops refuse a double backward; the pure-torch reference allows it. So impl="ref" must reach
    # the reference (a loss that forgot to pass impl on would run the fused op under "auto").
    r = torch.tensor([0.3, -0.8, 1.2], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([0.5, -1.1, 0.1], dtype=torch.float64, requires_grad=True)
    for which in ("d_loss", "g_loss"):
        loss = getattr(losses.get(name, impl="ref", **params), which)(r, f)
        (gf,) = torch.autograd.grad(loss, f, create_graph=True)
        (ggf,) = torch.autograd.grad(gf.square().sum(), f)
        assert torch.isfinite(ggf).all()


@pytest.mark.skipif(not kernels.extension_available(), reason="no native extension")
@pytest.mark.parametrize("name,params", FUSED_NAMES, ids=[f"{n}{p}" for n, p in FUSED_NAMES])
def test_impl_fused_really_runs_the_kernel(name, params):
    r = torch.tensor([0.3, -0.8, 1.2], dtype=torch.float64, requires_grad=True)
    f = torch.tensor([0.5, -1.1, 0.1], dtype=torch.float64, requires_grad=True)
    loss = losses.get(name, impl="fused", **params).d_loss(r, f)
    (gf,) = torch.autograd.grad(loss, f, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        torch.autograd.grad(gf.square().sum(), f)


# ------------------------------------------------------------------ half precision
def test_half_inputs_are_computed_in_float32():
    # (300 - 1)² = 89401 overflows float16 (max 65504), but the loss, ½ mean over 4 samples = 11175.1,
    # does not: computed in float32 and cast back, it is finite.
    r = torch.tensor([300.0, 1.0, 1.0, 1.0], dtype=torch.float16)
    f = torch.full((4,), -1.0, dtype=torch.float16)
    val = losses.get("lsgan").d_loss(r, f)
    assert val.dtype == torch.float16 and float(val) == pytest.approx(0.5 * 299.0**2 / 4, rel=1e-3)


# ------------------------------------------------------------------ DesignedLoss options
def test_designed_argument_errors():
    with pytest.raises(TypeError, match="design must be a lightning_gans.factory.Design, got str"):
        losses.DesignedLoss(design="log(r)")
    with pytest.raises(TypeError, match="constants must be a dict of name -> number, got list"):
        losses.DesignedLoss(constants=[1])


def test_designed_squash_true_is_honoured():
    assert losses.get("designed", squash=True).squash is True  # Ω = ℝ: auto would say False
    assert losses.get("designed", squash=False).squash is False


def test_designed_passes_alpha_to_the_design():
    loss = losses.get("designed", alpha="softplus(t)", beta="softplus(t)")
    assert loss.params()["alpha"] == "softplus(t)" and loss.design.formulas["alpha"] == "softplus(t)"
    t = torch.linspace(-3, 3, 7, dtype=torch.float64)
    torch.testing.assert_close(loss.design.alpha(t), torch.nn.functional.softplus(t))


def test_designed_check_report_and_warning():
    ok = losses.DesignedLoss(design(), allow_failed_check=True)
    assert ok.check_report.ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a passing design says nothing
        losses.DesignedLoss(design(), allow_failed_check=True)
    with pytest.warns(UserWarning) as rec:
        bad = losses.DesignedLoss(design(beta="-t"), allow_failed_check=True)
    assert not bad.check_report.ok and isinstance(bad.check_report.failed[0], DesignCheckError)
    (w,) = [w for w in rec if "fails its check" in str(w.message)]
    assert "training a design that fails its check (allow_failed_check=True)" in str(w.message)
    # stacklevel points past the loss module at whoever built the loss (here this file; under mutmut its
    # trampoline, one frame between, which is why this does not insist on __file__)
    assert "lightning_gans/losses" not in w.filename.replace("\\", "/")
    assert math.isfinite(float(bad.g_loss(torch.zeros(2), torch.ones(2))))


def test_classes_built_directly_default_to_auto():
    # losses.get always passes impl; a class built directly must still default to "auto".
    for name, cls in losses.REGISTRY.items():
        assert cls().impl == "auto", name
