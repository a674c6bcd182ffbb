"""Deprecated: moved to `lightning_gans.kernels` (this alias goes in the next release)."""
import warnings

from .kernels.ops import *  # noqa: F401,F403
from .kernels.ops import __all__  # noqa: F401

warnings.warn("lightning_gans.ops is deprecated; import lightning_gans.kernels instead", DeprecationWarning, stacklevel=2)
