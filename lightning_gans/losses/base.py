"""The `GANLoss` interface every loss implements, and shared helpers.

A loss maps discriminator outputs on a real batch (`real_out`, N values) and a
fake batch (`fake_out`, M values) to two scalars to *minimise*:
`d_loss(real_out, fake_out)` for the discriminator and `g_loss(real_out,
fake_out)` for the generator. Outputs have shape (N,) or (N, 1). Every loss
accepts `real_out` in `g_loss` (relativistic generators need it; the others
ignore it), so a training loop can call every loss the same way.

Convention: for every named loss a larger discriminator output means "more
real" (`larger_is_real = True`). Losses built by the Designing-GANs factory keep
the article's convention, larger = more fake, and say so (`larger_is_real =
False`).
"""
from __future__ import annotations

import abc

import torch

from .. import ops
from ..ops import IMPLS
from ..reference import _acc

__all__ = ["GANLoss", "check_outputs", "elementwise"]


def check_outputs(real_out, fake_out, paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate (N,)/(N, 1) floating outputs on one device; return them as 1-D views.

    The same checks (and messages) as the fused ops, so a bad batch fails the
    same way whichever loss or implementation runs.
    """
    return ops._check_pair(real_out, fake_out, paired=paired)


class GANLoss(abc.ABC):
    """Base class: a pair of losses to minimise, `d_loss` and `g_loss`.

    Attributes:
        name: the registry name (`lightning_gans.losses.get(name)`).
        impl: "auto" (fused kernel where one exists and the device has it, else
            pure torch), "fused" (fused kernel or an error) or "ref" (pure torch).
        larger_is_real: the output convention (True for every named loss).
        relativistic: True when the losses compare real and fake outputs.
        pairing: how a relativistic loss pairs the batches: "paired", "all",
            "average"; None for non-relativistic losses.
        has_fused: whether any fused op backs this loss.
    """

    name = "base"
    larger_is_real = True
    relativistic = False
    pairing: str | None = None
    has_fused = False

    def __init__(self, impl: str = "auto"):
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if impl == "fused" and not self.has_fused:
            raise ValueError(
                f"loss {self.name!r} has no fused kernel (it is plain torch elementwise math); "
                "use impl='auto' or impl='ref'"
            )
        self.impl = impl

    # ------------------------------------------------------------------ interface
    def d_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """The discriminator's loss (a 0-d tensor in the outputs' dtype)."""
        r, f = check_outputs(real_out, fake_out, paired=self.pairing == "paired")
        return self._d(r, f)

    def g_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """The generator's loss. `real_out` may be detached; non-relativistic losses ignore it."""
        r, f = check_outputs(real_out, fake_out, paired=self.pairing == "paired")
        return self._g(r, f)

    @abc.abstractmethod
    def _d(self, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """L_D on validated 1-D outputs."""

    @abc.abstractmethod
    def _g(self, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """L_G on validated 1-D outputs."""

    # ------------------------------------------------------------------ helpers
    def params(self) -> dict:
        """The constructor parameters (besides impl) that define this loss."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.params(), "impl": self.impl}.items())
        return f"{type(self).__name__}({args})"


def elementwise(fn, *xs: torch.Tensor) -> torch.Tensor:
    """fn on half inputs computed in float32, result in the inputs' dtype (as the fused ops do)."""
    return fn(*(_acc(x) for x in xs)).to(xs[0].dtype)
