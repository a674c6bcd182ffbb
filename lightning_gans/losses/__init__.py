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

__all__ = ["GANLoss", "DesignedLoss", "get", "names", "REGISTRY", "FGAN_GENERATORS"]

REGISTRY: dict[str, type[GANLoss]] = {
    cls.name: cls
    for cls in (SGAN, NSGAN, SGANT, ExpGAN, LSGAN, HingeGAN, WGAN, *FGAN_CLASSES,
                RSGAN, RaSGAN, RaLSGAN, RaHingeGAN, DesignedLoss)
}


def names() -> list[str]:
    """Every loss name `get` accepts."""
    return list(REGISTRY)


def get(spec, impl: str = "auto", **params) -> GANLoss:
    """A loss from a name ("rsgan"), a mapping {"name": "rsgan", "pairing": "all", ...} or a GANLoss (returned as is).

    Parameters may also be given as keywords. Null (None) parameters mean "the loss's default".
    `impl` is "auto" | "fused" | "ref" (which kernels back the loss).
    """
    if isinstance(spec, GANLoss):
        if params:
            raise TypeError(f"losses.get: parameters {sorted(params)} given with a ready-made {spec!r}")
        return spec
    if isinstance(spec, Mapping):
        spec = dict(spec)
        if "name" not in spec:
            raise ValueError(f"loss: a mapping needs a 'name' (one of {', '.join(names())}), got keys {sorted(spec)}")
        name = spec.pop("name")
        params = {**spec, **params}
    elif isinstance(spec, str):
        name = spec
    else:
        raise TypeError(f"loss must be a name, a mapping {{'name': ..., **params}} or a GANLoss, got {type(spec).__name__}")
    if name not in REGISTRY:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(names())}")
    cls = REGISTRY[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "impl")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(f"loss {name!r} got unknown parameter(s) {unknown}; "
                        + (f"it accepts {accepted}" if accepted else "it takes no parameters"))
    return cls(impl=impl, **{k: v for k, v in params.items() if v is not None})
