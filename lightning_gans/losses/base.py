"""The `GANLoss` interface every loss implements, and shared helpers.

A loss maps discriminator outputs on a real batch (`real_out`, N values) and a
fake batch (`fake_out`, M values) to two scalars to *minimise*:
`d_loss(real_out, fake_out)` for the discriminator and `g_loss(real_out,
fake_out)` for the generator. Outputs have shape (N,) or (N, 1). Every loss
accepts `real_out` in `g_loss` (relativistic generators need it; the others
ignore it), so a training loop can call every loss the same way.

Convention: for every loss a larger discriminator output means "more real".

Validation happens once per call: a loss backed by a fused op hands the outputs to the kernel
layer, which checks them; every other loss checks them in `elementwise`.
"""
from __future__ import annotations

import abc

import torch

from .. import kernels
from ..kernels import IMPLS

__all__ = ["GANLoss", "elementwise"]


class GANLoss(abc.ABC):
    """Base class: a pair of losses to minimise, `d_loss` and `g_loss`.

    Attributes:
        name: the registry name (`lightning_gans.losses.get(name)`).
        impl: "auto" (fused kernel where one exists and the device has it, else
            pure torch), "fused" (fused kernel or an error) or "ref" (pure torch).
        relativistic: True when the losses compare real and fake outputs.
        pairing: how a relativistic loss pairs the batches: "paired", "all",
            "average"; None for non-relativistic losses.
        has_fused: whether any fused op backs this loss.
    """

    name = "base"
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
        return self._d(real_out, fake_out)

    def g_loss(self, real_out: torch.Tensor, fake_out: torch.Tensor) -> torch.Tensor:
        """The generator's loss. `real_out` may be detached; non-relativistic losses ignore it."""
        return self._g(real_out, fake_out)

    @abc.abstractmethod
    def _d(self, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """L_D on the outputs as given: validated by the kernel op or by `elementwise`."""

    @abc.abstractmethod
    def _g(self, r: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        """L_G on the outputs as given."""

    # ------------------------------------------------------------------ helpers
    def params(self) -> dict:
        """The constructor parameters (besides impl) that define this loss."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in {**self.params(), "impl": self.impl}.items())
        return f"{type(self).__name__}({args})"


def elementwise(fn, *xs: torch.Tensor, paired: bool = False) -> torch.Tensor:
    """fn on validated 1-D outputs (real, fake) or (fake,); half inputs computed in float32, result in
    the inputs' dtype (as the fused ops do)."""
    xs = kernels.check_pair(*xs, paired=paired) if len(xs) == 2 else (kernels.check_logits(xs[0], "fake"),)
    acc = tuple(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x for x in xs)
    return fn(*acc).to(xs[0].dtype)
