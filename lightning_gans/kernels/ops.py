"""Fused GAN-loss ops: the Python entry points and the fake (meta) kernels.

Every public function takes logits of shape (N,) or (N, 1), returns a 0-d
loss in the input dtype, and has a pure-torch twin in `reference.py` with the
same signature. `impl` picks the implementation:

    "auto"  -> native kernel when the extension is loaded and supports the
               device (CPU; CUDA when built with it), else the reference. On the
               CPU the fused op is faster than the reference at every size
               lgans-bench measures (N = 64 .. 64M, float32 fwd+bwd), so auto
               has no size threshold
    "fused" -> native kernel, or an error saying why it is unavailable
    "ref"   -> the pure-torch reference

The native ops live in `torch.ops.lightning_gans` (schemas in csrc/ops.cpp)
and their autograd in C++ (csrc/autograd.cpp): a forward and a backward are
one native op each, with no Python on the path. At the batch sizes GANs use
the per-call overhead is the whole cost, so the wrappers here are minimal:
1-D tensors on a supported device go straight to the op, whose C++ checks
name the argument and what was expected (TypeError for dtypes, ValueError for
shapes, sizes, devices and signs); only what C++ cannot see (non-tensors,
(N, 1) shapes, other devices, impl="ref") takes the Python checks below.
"""
from __future__ import annotations

import torch

from . import extension as _ext
from . import reference

__all__ = [
    "softplus_mean",
    "sgan_d",
    "relativistic_paired",
    "relativistic_all_pairs",
    "relativistic_average",
    "check_logits",
    "check_pair",
    "IMPLS",
]

IMPLS = ("auto", "fused", "ref")
_FLOAT_DTYPES = frozenset((torch.float32, torch.float64, torch.float16, torch.bfloat16))


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
    return t if t.dim() == 1 else t.reshape(-1)


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


# ----------------------------------------------------------------------------- fast path
# The native ops, resolved once (an OpOverload call skips the packet's overload lookup), and
# the extension's fast entry points: _C.fast_<op>(...) returns the loss for plain 1-D tensors
# on a device with kernels (calling the same op, autograd included) and None otherwise, so the
# common call costs one C call here. torch.compile traces the OpOverload path instead.
_NATIVE = _ext.available()
if _NATIVE:
    import importlib

    _C = importlib.import_module("lightning_gans._C")
    _L = torch.ops.lightning_gans
    _sp_mean, _sgan_d, _paired = _L.softplus_mean.default, _L.sgan_d.default, _L.rel_paired.default
    _all_pairs, _average = _L.rel_all_pairs.default, _L.rel_average.default
_FAST_IMPLS = ("auto", "fused") if _NATIVE else ()
_compiling = torch.compiler.is_compiling
_grad_enabled = torch.is_grad_enabled


def _wants(a, b=None) -> bool:
    """with_grad: whether autograd will need this call's gradient."""
    return _grad_enabled() and (a.requires_grad or (b is not None and b.requires_grad))


# ----------------------------------------------------------------------------- public ops
# Each op: the fast path, else full Python validation and the choice of implementation.
# with_grad says whether autograd will need the gradient; the C++ autograd kernel then lets
# the elementwise forwards save it only where that beats recomputing it at this N.
def softplus_mean(x: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """mean_k sp(sign * x_k): -log σ(x) = sp(-x), -log(1 - σ(x)) = sp(x) (Goodfellow et al. 2014)."""
    if impl in _FAST_IMPLS and not _compiling():
        loss = _C.fast_softplus_mean(x, sign)
        if loss is not None:
            return loss
    x, sign = check_logits(x, "x"), _check_sign(sign)
    if _use_fused(impl, x.device):
        return _sp_mean(x, sign, _wants(x))[0]
    return reference.softplus_mean(x, sign)


def sgan_d(real: torch.Tensor, fake: torch.Tensor, impl: str = "auto") -> torch.Tensor:
    """Standard GAN discriminator loss mean sp(-T_r) + mean sp(T_f), one op (N != M allowed)."""
    if impl in _FAST_IMPLS and not _compiling():
        loss = _C.fast_sgan_d(real, fake)
        if loss is not None:
            return loss
    r, f = check_pair(real, fake)
    if _use_fused(impl, r.device):
        return _sgan_d(r, f, _wants(r, f))[0]
    return reference.sgan_d(r, f)


def relativistic_paired(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """mean_i sp(sign (T_f[i] - T_r[i])), N == M. sign=+1: RSGAN's D loss; -1: its G loss."""
    if impl in _FAST_IMPLS and not _compiling():
        loss = _C.fast_rel_paired(real, fake, sign)
        if loss is not None:
            return loss
    r, f = check_pair(real, fake, paired=True)
    sign = _check_sign(sign)
    if _use_fused(impl, r.device):
        return _paired(r, f, sign, _wants(r, f))[0]
    return reference.relativistic_paired(r, f, sign)


def relativistic_all_pairs(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """(1/NM) sum_ij sp(sign (T_f[j] - T_r[i])) in O(N + M) memory, forward and backward."""
    if impl in _FAST_IMPLS and not _compiling():
        loss = _C.fast_rel_all_pairs(real, fake, sign)
        if loss is not None:
            return loss
    r, f = check_pair(real, fake)
    sign = _check_sign(sign)
    if _use_fused(impl, r.device):
        return _all_pairs(r, f, sign, _wants(r, f))[0]
    return reference.relativistic_all_pairs(r, f, sign)


def relativistic_average(real: torch.Tensor, fake: torch.Tensor, sign: float = 1.0, impl: str = "auto") -> torch.Tensor:
    """RaSGAN: ½{mean_i sp(sign(m_f - T_r[i])) + mean_j sp(sign(T_f[j] - m_r))}, grads through the means."""
    if impl in _FAST_IMPLS and not _compiling():
        loss = _C.fast_rel_average(real, fake, sign)
        if loss is not None:
            return loss
    r, f = check_pair(real, fake)
    sign = _check_sign(sign)
    if _use_fused(impl, r.device):
        return _average(r, f, sign)[0]
    return reference.relativistic_average(r, f, sign)


# ----------------------------------------------------------------------------- fake kernels
# Shapes and dtypes only, so torch.compile (fullgraph) traces the ops. A forward's saved
# gradient pieces are in the accumulation dtype; `g` is present exactly when with_grad is
# true (the autograd kernel has already folded in whether saving it is worth it).
def _acc_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _register_fakes() -> None:
    lib = "lightning_gans::"

    def saved(t, with_grad):
        return t.new_empty((t.shape[0] if with_grad else 0,), dtype=_acc_dtype(t.dtype))

    def saved_elementwise(t, with_grad):
        # The CUDA elementwise forwards never save g (their backwards recompute σ: fewer bytes moved),
        # so a CUDA forward returns it empty whatever with_grad says; the CPU honours with_grad.
        return saved(t, with_grad and t.device.type != "cuda")

    def like(t):
        return t.new_empty(t.shape)

    def same_device(**tensors):
        # A cpu tensor mixed with a meta one dispatches here (Meta wins): say so, not compute.
        (first, t0), *rest = tensors.items()
        for name, t in rest:
            if t.device != t0.device:
                raise ValueError(f"{name} must be on {t0.device} like {first}, got {t.device}")

    @torch.library.register_fake(lib + "softplus_mean")
    def _(x, sign, with_grad):
        return x.new_empty(()), saved_elementwise(x, with_grad)

    @torch.library.register_fake(lib + "softplus_mean_backward")
    def _(grad, x, g, sign):
        same_device(x=x, grad=grad, g=g)
        return like(x)

    @torch.library.register_fake(lib + "sgan_d")
    def _(real, fake, with_grad):
        same_device(real=real, fake=fake)
        return real.new_empty(()), saved_elementwise(real, with_grad), saved_elementwise(fake, with_grad)

    @torch.library.register_fake(lib + "sgan_d_backward")
    def _(grad, real, fake, g_real, g_fake):
        same_device(real=real, fake=fake, grad=grad, g_real=g_real, g_fake=g_fake)
        return like(real), like(fake)

    @torch.library.register_fake(lib + "rel_paired")
    def _(real, fake, sign, with_grad):
        same_device(real=real, fake=fake)
        torch._check(real.shape[0] == fake.shape[0])
        return real.new_empty(()), saved_elementwise(fake, with_grad)

    @torch.library.register_fake(lib + "rel_paired_backward")
    def _(grad, real, fake, g, sign):
        same_device(real=real, fake=fake, grad=grad, g=g)
        return like(real), like(fake)

    @torch.library.register_fake(lib + "rel_all_pairs")
    def _(real, fake, sign, with_grad):
        same_device(real=real, fake=fake)
        return real.new_empty(()), saved(real, with_grad), saved(fake, with_grad)

    @torch.library.register_fake(lib + "rel_all_pairs_backward")
    def _(grad, real, fake, row, col, sign):
        same_device(real=real, fake=fake, grad=grad, row=row, col=col)
        return like(real), like(fake)

    @torch.library.register_fake(lib + "rel_average")
    def _(real, fake, sign):
        same_device(real=real, fake=fake)
        return real.new_empty(()), real.new_empty((4,), dtype=torch.float64)

    @torch.library.register_fake(lib + "rel_average_backward")
    def _(grad, real, fake, stats, sign):
        same_device(real=real, fake=fake, grad=grad, stats=stats)
        return like(real), like(fake)


if _NATIVE:
    _register_fakes()
