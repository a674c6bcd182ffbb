"""Helpers of tests/test_ops_cuda.py: inputs, calls, float64 oracles and
dtype-aware comparisons. Self-contained (lightning_gans.kernels only)."""
import torch
import torch.nn.functional as F

from lightning_gans import kernels
from lightning_gans.kernels import reference

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16]
# Relative tolerances on the loss and on gradients (relative to the largest).
TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
# name -> (fused, reference, arity, takes_sign, needs_equal_sizes)
OPS = {
    "softplus_mean": (kernels.softplus_mean, reference.softplus_mean, 1, True, False),
    "sgan_d": (kernels.sgan_d, reference.sgan_d, 2, False, False),
    "paired": (kernels.relativistic_paired, reference.relativistic_paired, 2, True, True),
    "all_pairs": (kernels.relativistic_all_pairs, reference.relativistic_all_pairs, 2, True, False),
    "average": (kernels.relativistic_average, reference.relativistic_average, 2, True, False),
}


def cuda_ready() -> bool:
    return torch.cuda.is_available() and kernels.extension_available() and kernels.cuda_built()


def make_inputs(name, n, dtype, scale=3.0, seed=0, device="cpu", m=None):
    """Logits (N,) [, (M,)] drawn in float64 on the CPU (the same on every device), then cast."""
    g = torch.Generator().manual_seed(seed + n)
    arity, equal = OPS[name][2], OPS[name][4]
    sizes = [n] if arity == 1 else [n, n if equal else (m if m is not None else n + 3)]
    return [(scale * torch.randn(s, generator=g, dtype=torch.float64)).to(dtype).to(device) for s in sizes]


def call(name, impl, xs, sign=-1.0):
    fused, ref, _, takes_sign, _ = OPS[name]
    args = (*xs, sign) if takes_sign else tuple(xs)
    return ref(*args) if impl == "ref" else fused(*args, impl=impl)


def value_and_grads(name, impl, xs, sign=-1.0, upstream=1.0):
    """The loss and d(upstream * loss)/d inputs (the upstream gradient goes in on the device)."""
    xs = [x.detach().clone().requires_grad_(True) for x in xs]
    loss = call(name, impl, xs, sign)
    up = torch.tensor(upstream, dtype=loss.dtype, device=loss.device)
    return loss.detach(), list(torch.autograd.grad(loss, xs, grad_outputs=up))


def all_pairs_chunked(r, f, sign, max_elems=2**27):
    """All-pairs loss and gradients in float64 without the N x M matrix: row chunks of
    at most max_elems pairs (1 GiB each), so 70,001^2 fits any large GPU."""
    n, m = r.numel(), f.numel()
    rows = max(1, max_elems // m)
    loss = torch.zeros((), dtype=torch.float64, device=r.device)
    row = torch.empty(n, dtype=torch.float64, device=r.device)
    col = torch.zeros(m, dtype=torch.float64, device=r.device)
    for i0 in range(0, n, rows):
        z = sign * (f[None, :] - r[i0:i0 + rows, None])
        loss += F.softplus(z).sum()
        s = torch.sigmoid(z)
        row[i0:i0 + rows] = s.sum(1)
        col += s.sum(0)
    k = sign / (n * m)
    return loss / (n * m), -k * row, k * col


def reference_f64(name, xs, sign=-1.0, upstream=1.0):
    """The float64 oracle from the inputs' (rounded) values."""
    x64 = [x.detach().double() for x in xs]
    if name == "all_pairs":
        loss, gr, gf = all_pairs_chunked(*x64, sign)
        return loss, [gr * upstream, gf * upstream]
    return value_and_grads(name, "ref", x64, sign, upstream)


def assert_rel(a, b, rtol, what):
    a, b = a.double().cpu(), b.double().cpu()
    err = float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:.3g}"


def assert_grad_close(a, b, dtype, what):
    """|a - b| <= TOL * max|b| + one step of the dtype's subnormals: the gradients of a
    mean over N are ~1/N, below float16's normal range (6.1e-5) for N > 16384, where
    float16 keeps only an absolute precision of 2^-24."""
    if a.numel() == 0:
        return
    a, b = a.double(), b.double()
    atol = 2.0**-24 if dtype == torch.float16 else 0.0
    bound = TOL[dtype] * float(b.abs().max()) + atol
    err = float((a - b).abs().max())
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g}"
