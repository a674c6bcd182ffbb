"""Deprecated: moved to `lightning_gans.kernels.reference` (this alias goes in the next release)."""
import warnings

from .kernels.reference import *  # noqa: F401,F403
from .kernels.reference import __all__  # noqa: F401

warnings.warn("lightning_gans.reference is deprecated; import lightning_gans.kernels.reference instead", DeprecationWarning, stacklevel=2)
