"""The kernel layer: fused GAN-loss ops, their pure-torch references, and loading the native extension.

Imports only torch. Everything above (losses, training, the CLIs) reaches the C++/CUDA kernels
through the functions here:

    >>> from lightning_gans import kernels
    >>> kernels.relativistic_all_pairs(real_logits, fake_logits, sign=1.0)   # O(N + M) memory

`ops` validates its arguments once and dispatches to `torch.ops.lightning_gans.*` (schemas in
csrc/ops.cpp) or to the same-named function of `reference`, the test oracle and the fallback.
`extension` loads `lightning_gans._C` once and reports how it was built.
"""
from . import reference
from .extension import available as extension_available
from .extension import build_info, cuda_built, load_error
from .ops import (
    IMPLS,
    check_logits,
    check_pair,
    relativistic_all_pairs,
    relativistic_average,
    relativistic_paired,
    sgan_d,
    softplus_mean,
)

__all__ = [
    "softplus_mean", "sgan_d", "relativistic_paired", "relativistic_all_pairs", "relativistic_average",
    "check_logits", "check_pair", "IMPLS", "reference", "extension_available", "load_error", "cuda_built", "build_info",
]
