"""Deprecated: moved to `lightning_gans.metrics.samples` (this alias goes in the next release)."""
import warnings

from .metrics.samples import *  # noqa: F401,F403
from .metrics.samples import __all__  # noqa: F401

warnings.warn("lightning_gans.callbacks is deprecated; import lightning_gans.metrics.samples instead", DeprecationWarning, stacklevel=2)
