"""lightning-gans: GAN training for PyTorch Lightning on fused C++/CUDA loss kernels."""
from . import ops, reference
from ._ext import available as extension_available

__version__ = "0.1.0"
__all__ = ["ops", "reference", "extension_available", "__version__"]
