"""Deprecated: moved to `lightning_gans.training` (this alias goes in the next release)."""
import warnings

from .training import *  # noqa: F401,F403
from .training import __all__  # noqa: F401

warnings.warn("lightning_gans.module is deprecated; import lightning_gans.training instead", DeprecationWarning, stacklevel=2)
