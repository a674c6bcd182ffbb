"""Deprecated: moved to `lightning_gans.cli.train` (`lgans-train` is unchanged; this alias goes in the next release)."""
import warnings

from .cli.train import *  # noqa: F401,F403
from .cli.train import __all__, main  # noqa: F401

warnings.warn("lightning_gans.train is deprecated; use lgans-train or lightning_gans.cli.train", DeprecationWarning,
              stacklevel=2)

if __name__ == "__main__":
    main()
