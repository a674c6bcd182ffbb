"""The loss library: one small class per loss, in the papers' notation (docs/losses.md, docs/theory.md).

    >>> from lightning_gans import losses
    >>> loss = losses.get({"name": "rsgan", "pairing": "all"})   # or losses.get("rsgan")
    >>> l_d = loss.d_loss(d(x_real), d(x_fake)); l_g = loss.g_loss(d(x_real), d(x_fake))

Every loss takes "larger discriminator output = more real". May import: kernels, factory.
"""
from __future__ import annotations

import inspect
from collections.abc import Mapping

from .base import GANLoss
from .designed import DesignedLoss
from .fgan import FGAN_CLASSES, FGAN_GENERATORS
from .relativistic import RaHingeGAN, RaLSGAN, RaSGAN, RSGAN
from .standard import NSGAN, SGAN, SGANT, WGAN, ExpGAN, HingeGAN, LSGAN

__all__ = ["GANLoss", "DesignedLoss", "LossConfigError", "get", "names", "REGISTRY", "FGAN_GENERATORS"]


class LossConfigError(ValueError, TypeError):
    """A loss that cannot be built: unknown name or parameter, or an invalid value (message names which)."""

REGISTRY: dict[str, type[GANLoss]] = {
    cls.name: cls
    for cls in (SGAN, NSGAN, SGANT, ExpGAN, LSGAN, HingeGAN, WGAN, *FGAN_CLASSES,
                RSGAN, RaSGAN, RaLSGAN, RaHingeGAN, DesignedLoss)
}


def names() -> list[str]:
    """Every loss name `get` accepts."""
    return list(REGISTRY)


def get(spec, impl: str = "auto", **params) -> GANLoss:
    """A loss from a name ("rsgan"), a mapping {"name": "rsgan", "pairing": "all", ...}, or a ready-made loss
    (a GANLoss, or any object with `d_loss(real_out, fake_out)` and `g_loss(real_out, fake_out)`), returned as is.

    Parameters may also be given as keywords. Null (None) parameters mean "the loss's default".
    `impl` is "auto" | "fused" | "ref" (which kernels back the loss).
    """
    if callable(getattr(spec, "d_loss", None)) and callable(getattr(spec, "g_loss", None)):
        if params:
            raise TypeError(f"losses.get: parameters {sorted(params)} given with a ready-made {spec!r}")
        return spec
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" not in spec:
            raise LossConfigError(f"loss: a mapping needs a 'name' (one of {', '.join(names())}), got keys {sorted(spec)}")
        name = spec.pop("name")
        params = {**spec, **params}
    elif isinstance(spec, str):
        name = spec
    else:
        raise LossConfigError(f"loss must be a name, a mapping {{'name': ..., **params}} or a GANLoss, got "
                        f"{type(spec).__name__}")
    if name not in REGISTRY:
        raise LossConfigError(f"unknown loss {name!r}; choose one of: {', '.join(names())}")
    cls = REGISTRY[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "impl")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise LossConfigError(f"loss {name!r} got unknown parameter(s) {unknown}; "
                        + (f"it accepts {accepted}" if accepted else "it takes no parameters"))
    given = {k: v for k, v in params.items() if v is not None}
    try:
        return cls(impl=impl, **given)
    except (ValueError, TypeError) as e:  # the message names the parameter; say which loss it belongs to
        raise LossConfigError(f"loss={name} {given}: {e}") from e
