"""lightning-gans: GAN training for PyTorch Lightning on fused C++/CUDA loss kernels."""
from . import ops, reference
from ._ext import available as extension_available

__version__ = "0.1.0"
__all__ = ["ops", "reference", "losses", "factory", "GANModule", "extension_available", "__version__"]


def __getattr__(name):
    # Lightning and sympy take seconds to import: load them only when asked for.
    if name == "GANModule":
        from .module import GANModule

        return GANModule
    if name in ("losses", "factory"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'lightning_gans' has no attribute {name!r}")
