"""The loss library: every loss of SPEC.md as a small class in the papers' notation.

    >>> from lightning_gans import losses
    >>> loss = losses.get("rsgan", pairing="all")       # fused all-pairs kernel
    >>> l_d = loss.d_loss(d(x_real), d(x_fake)); l_g = loss.g_loss(d(x_real), d(x_fake))

`get(name, impl="auto", **params)` builds a loss by name; `names()` lists them.
Every named loss uses "larger discriminator output = more real"; `designed`
(the factory) keeps the article's "larger = more fake" (`loss.larger_is_real`).
"""
from __future__ import annotations

import inspect

from .base import GANLoss
from .designed import DesignedLoss
from .fgan import FGAN_CLASSES
from .relativistic import RaHingeGAN, RaLSGAN, RaSGAN, RSGAN
from .standard import NSGAN, SGAN, SGANT, WGAN, ExpGAN, HingeGAN, LSGAN

__all__ = ["GANLoss", "get", "names", "REGISTRY"]

REGISTRY: dict[str, type[GANLoss]] = {
    cls.name: cls
    for cls in (SGAN, NSGAN, SGANT, ExpGAN, LSGAN, HingeGAN, WGAN, *FGAN_CLASSES,
                RSGAN, RaSGAN, RaLSGAN, RaHingeGAN, DesignedLoss)
}


def names() -> list[str]:
    """Every loss name `get` accepts."""
    return list(REGISTRY)


def get(name: str, impl: str = "auto", **params) -> GANLoss:
    """Build the loss `name` with its parameters; `impl` is "auto" | "fused" | "ref"."""
    if isinstance(name, GANLoss):
        return name
    if name not in REGISTRY:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(names())}")
    cls = REGISTRY[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "impl")]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise TypeError(
            f"loss {name!r} got unknown parameter(s) {unknown}; "
            + (f"it accepts {accepted}" if accepted else "it takes no parameters")
        )
    return cls(impl=impl, **params)
