"""Fused GAN-loss ops: validation, dispatch, fake and autograd registration.

Every public function takes logits of shape (N,) or (N, 1), returns a 0-d
loss in the input dtype, and has a pure-torch twin in `reference.py` with the
same signature. `impl` picks the implementation:

    "auto"  -> native kernel when the extension is loaded and supports the
               device (CPU; CUDA when built with it), else the reference
    "fused" -> native kernel, or an error saying why it is unavailable
    "ref"   -> the pure-torch reference

The native ops live in `torch.ops.lightning_gans` (schemas in csrc/ops.cpp).
When an input requires grad, each forward also computes what its backward
needs, in the same pass: the elementwise ops their gradient for a unit upstream
gradient (the backward, `grad_scale`, only multiplies it), all pairs the row and
column sums of σ (O(N + M)), the batch average four statistics. The backward
ops are native and have an autograd kernel that raises, so a double backward
through a loss fails clearly instead of silently returning zeros.
"""
from __future__ import annotations

import functools

import torch

from . import extension as _ext
from . import reference

__all__ = [
    "softplus_mean",
    "sgan_d",
    "relativistic_paired",
    "relativistic_all_pairs",
    "relativistic_average",
    "IMPLS",
]

IMPLS = ("auto", "fused", "ref")
_FLOAT_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


# ----------------------------------------------------------------------------- validation
def check_logits(t, name: str) -> torch.Tensor:
    """Check one logits argument and return it as a 1-D view (N,)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (N,) or (N, 1), got {type(t).__name__}")
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{name} must have a floating dtype (float32, float64, float16 or bfloat16), got {t.dtype}"
        )
    if not (t.dim() == 1 or (t.dim() == 2 and t.shape[1] == 1)):
        raise ValueError(f"{name} must have shape (N,) or (N, 1), got {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (N = 0); at least one logit is needed")
    return t.reshape(-1)


def check_pair(real, fake, paired: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    r, f = check_logits(real, "real"), check_logits(fake, "fake")
    if r.device != f.device:
        raise ValueError(f"real and fake must be on the same device, got real on {r.device} and fake on {f.device}")
    if r.dtype != f.dtype:
        raise TypeError(f"real and fake must have the same dtype, got real {r.dtype} and fake {f.dtype}")
    if paired and r.shape[0] != f.shape[0]:
        raise ValueError(
            f"paired pairing needs as many fake as real logits: real has N = {r.shape[0]}, "
            f"fake has M = {f.shape[0]} (use pairing='all' for N != M)"
        )
    return r, f


def _check_sign(sign) -> float:
    sign = float(sign)
    if not (sign == sign and abs(sign) != float("inf")):
        raise ValueError(f"sign must be a finite number, got {sign}")
    return sign


def _use_fused(impl: str, device: torch.device) -> bool:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    if impl == "ref":
        return False
    ok_device = device.type in ("cpu", "meta") or (device.type == "cuda" and _ext.cuda_built())
    if impl == "fused":
        if not _ext.available():
            raise RuntimeError(f"impl='fused' but the native extension is unavailable: {_ext.load_error()}")
        if not ok_device:
            raise RuntimeError(f"impl='fused' but the extension has no kernel for device {device}")
        return True
    return ok_device and _ext.available()


def _needs_grad(*ts: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in ts)


# ----------------------------------------------------------------------------- public ops
def softplus_mean(x: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """mean_k sp(sign * x_k) (SPEC §3: -log σ(x) = sp(-x), -log(1-σ(x)) = sp(x))."""
    x, sign = check_logits(x, "x"), _check_sign(sign)
    if _use_fused(impl, x.device):
        return torch.ops.lightning_gans.softplus_mean(x, sign, _needs_grad(x))[0]
    return reference.softplus_mean(x, sign)


def sgan_d(real: torch.Tensor, fake: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Standard GAN discriminator loss mean sp(-T_r) + mean sp(T_f), one op (N != M allowed)."""
    r, f = check_pair(real, fake)
    if _use_fused(impl, r.device):
        return torch.ops.lightning_gans.sgan_d(r, f, _needs_grad(r, f))[0]
    return reference.sgan_d(r, f)


def relativistic_paired(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """mean_i sp(sign (T_f[i] - T_r[i])), N == M. sign=+1: RSGAN's D loss; -1: its G loss."""
    r, f = check_pair(real, fake, paired=True)
    sign = _check_sign(sign)
    if _use_fused(impl, r.device):
        return torch.ops.lightning_gans.rel_paired(r, f, sign, _needs_grad(r, f))[0]
    return reference.relativistic_paired(r, f, sign)


def relativistic_all_pairs(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """(1/NM) sum_ij sp(sign (T_f[j] - T_r[i])) in O(N + M) memory, forward and backward."""
    r, f = check_pair(real, fake)
    sign = _check_sign(sign)
    if _use_fused(impl, r.device):
        return torch.ops.lightning_gans.rel_all_pairs(r, f, sign, _needs_grad(r, f))[0]
    return reference.relativistic_all_pairs(r, f, sign)


def relativistic_average(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """RaSGAN: ½{mean_i sp(sign(m_f - T_r[i])) + mean_j sp(sign(T_f[j] - m_r))}, grads through the means."""
    r, f = check_pair(real, fake)
    sign = _check_sign(sign)
    if _use_fused(impl, r.device):
        return torch.ops.lightning_gans.rel_average(r, f, sign)[0]
    return reference.relativistic_average(r, f, sign)


# ----------------------------------------------------------------------------- registration
def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _register() -> None:
    lib = "lightning_gans::"
    ops = torch.ops.lightning_gans

    # Fake (meta) kernels: shapes and dtypes only, so torch.compile traces the ops.
    def grad_like(t, with_grad):  # the unit-upstream gradient an elementwise forward returns
        return t.new_empty((t.shape[0] if with_grad else 0,))

    @torch.library.register_fake(lib + "softplus_mean")
    def _(x, sign, with_grad):
        return x.new_empty(()), grad_like(x, with_grad)

    @torch.library.register_fake(lib + "sgan_d")
    def _(real, fake, with_grad):
        return real.new_empty(()), grad_like(real, with_grad), grad_like(fake, with_grad)

    @torch.library.register_fake(lib + "rel_paired")
    def _(real, fake, sign, with_grad):
        torch._check(real.shape[0] == fake.shape[0])
        return real.new_empty(()), grad_like(fake, with_grad)

    @torch.library.register_fake(lib + "grad_scale")
    def _(grad, dx, alpha):
        return torch.empty_like(dx)

    @torch.library.register_fake(lib + "rel_all_pairs")
    def _(real, fake, sign, with_grad):
        acc = _acc_dtype(real.dtype)
        n, m = (real.shape[0], fake.shape[0]) if with_grad else (0, 0)
        return real.new_empty(()), real.new_empty((n,), dtype=acc), fake.new_empty((m,), dtype=acc)

    @torch.library.register_fake(lib + "rel_all_pairs_backward")
    def _(grad, real, fake, row, col, sign):
        return torch.empty_like(real), torch.empty_like(fake)

    @torch.library.register_fake(lib + "rel_average")
    def _(real, fake, sign):
        return real.new_empty(()), real.new_empty((4,), dtype=torch.float64)

    @torch.library.register_fake(lib + "rel_average_backward")
    def _(grad, real, fake, stats, sign):
        return torch.empty_like(real), torch.empty_like(fake)

    # Autograd: each backward is one native op.
    # Elementwise losses: the forward (called with with_grad) returned the gradient for a
    # unit upstream gradient, from the same exps as the loss; the backward scales it.
    # Only the loss output is differentiable in practice: no zero tensors for the others.
    # ALPHAS: per differentiable input, the factor on the saved gradient it takes; rel_paired
    # keeps one array, d/dfake, and d/dreal is its negative.
    ALPHAS = {"softplus_mean": (1.0,), "sgan_d": (1.0, 1.0), "rel_paired": (-1.0, 1.0)}

    def setup_elementwise(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(*output[1:])
        ctx.n_args = len(inputs)

    def bwd_elementwise(ctx, grad, *_unused, alphas=()):
        if grad is None:  # only an auxiliary output was differentiated
            return (None,) * ctx.n_args
        saved = ctx.saved_tensors
        if any(d.numel() == 0 for d in saved):
            raise RuntimeError(
                "this lightning_gans op was called with with_grad=False, so it kept no gradient; "
                "call it through lightning_gans.ops"
            )
        grads = tuple(ops.grad_scale(grad, saved[min(k, len(saved) - 1)], a) for k, a in enumerate(alphas))
        return grads + (None,) * (ctx.n_args - len(grads))

    for name, alphas in ALPHAS.items():
        bwd = functools.partial(bwd_elementwise, alphas=alphas)
        torch.library.register_autograd(lib + name, bwd, setup_context=setup_elementwise)

    # All pairs: the forward already reduced the per-row / per-column sigmoid sums
    # (O(N + M)); the backward only scales them. real/fake are saved for their shapes.
    def setup_all_pairs(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        real, fake, sign, _ = inputs
        ctx.save_for_backward(real, fake, output[1], output[2])
        ctx.sign = sign

    def bwd_all_pairs(ctx, grad, _grad_row, _grad_col):
        if grad is None:
            return None, None, None, None
        real, fake, row, col = ctx.saved_tensors
        if row.numel() != real.numel():
            raise RuntimeError(
                "lightning_gans::rel_all_pairs was called with with_grad=False, so it kept no gradient sums; "
                "call it through lightning_gans.ops.relativistic_all_pairs"
            )
        return (*ops.rel_all_pairs_backward(grad, real, fake, row, col, ctx.sign), None, None)

    torch.library.register_autograd(lib + "rel_all_pairs", bwd_all_pairs, setup_context=setup_all_pairs)

    def setup_average(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        real, fake, sign = inputs
        ctx.save_for_backward(real, fake, output[1])
        ctx.sign = sign

    def bwd_average(ctx, grad, _grad_stats):
        if grad is None:
            return None, None, None
        return (*ops.rel_average_backward(grad, *ctx.saved_tensors, ctx.sign), None)

    torch.library.register_autograd(lib + "rel_average", bwd_average, setup_context=setup_average)

    # The backward ops are not differentiable; say so clearly on a double
    # backward (e.g. a penalty on a loss gradient) instead of torch's generic
    # "not used in the graph" error or a silently wrong zero.
    def no_double_backward(ctx, *grads):
        raise RuntimeError(
            f"double backward through the fused op lightning_gans::{ctx.op_name} is not supported; "
            "use impl='ref' for higher-order gradients of the loss itself (R1/R2/GP penalties on "
            "the discriminator's input gradients do not need this)"
        )

    for name in ("grad_scale", "rel_all_pairs_backward", "rel_average_backward"):
        def setup(ctx, inputs, output, _name=name):
            ctx.op_name = _name

        torch.library.register_autograd(lib + name, no_double_backward, setup_context=setup)


if _ext.available():
    _register()
