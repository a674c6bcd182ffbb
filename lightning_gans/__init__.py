"""lightning-gans: GAN training for PyTorch Lightning on fused C++/CUDA loss kernels.

Layers, each a subpackage that imports only the ones below it:

    kernels   fused ops (C++/CUDA), their pure-torch references, extension loading   (torch only)
    factory   "Designing GANs": ω(r), ρ(t) -> φ, ψ, and the checks                   (sympy, numpy)
    losses    one small class per loss, in the papers' notation                      (kernels, factory)
    nets, data, metrics   networks, data modules, evaluation and sample pictures     (torch, Lightning)
    training  GANModule and what is its own (penalties, RNG streams, DDP pairing)    (losses, kernels)
    cli       lgans-train (Hydra), lgans-design, lgans-bench, lgans-sample           (everything)
"""
import importlib

from . import kernels
from .kernels import build_info, extension_available

__version__ = "0.2.0"
__all__ = ["kernels", "losses", "factory", "GANModule", "extension_available", "build_info", "__version__"]


def __getattr__(name):
    # Lightning and sympy take seconds to import: load them only when asked for.
    if name == "GANModule":
        return importlib.import_module(".training", __name__).GANModule
    if name in ("losses", "factory", "training", "nets", "data", "metrics"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lightning_gans' has no attribute {name!r}")
