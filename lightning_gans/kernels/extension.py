"""Loads the native extension `lightning_gans._C` once.

Importing `_C` runs its static `TORCH_LIBRARY` registrations, which define the
ops under `torch.ops.lightning_gans`. If it is missing or broken the package
falls back to the pure-torch references and says so in one warning (never once
per call). `LIGHTNING_GANS_DISABLE_EXT=1` forces the reference path.
"""
from __future__ import annotations

import importlib
import os
import warnings

import torch

_loaded: bool | None = None
_error: str | None = None


def available() -> bool:
    """True when the native ops are registered (loads them on first call)."""
    global _loaded, _error
    if _loaded is None:
        if os.environ.get("LIGHTNING_GANS_DISABLE_EXT", "0") not in ("", "0"):
            _loaded, _error = False, "LIGHTNING_GANS_DISABLE_EXT is set"
        else:
            try:
                importlib.import_module("lightning_gans._C")
                _loaded = hasattr(torch.ops.lightning_gans, "softplus_mean")
                _error = None if _loaded else "lightning_gans._C registered no ops"
            except (ImportError, OSError, RuntimeError) as e:  # missing, ABI mismatch, bad CUDA libs
                _loaded, _error = False, f"{type(e).__name__}: {e}"
        if not _loaded:
            warnings.warn(
                f"lightning_gans: native extension unavailable ({_error}); using the pure-torch "
                "reference ops (correct but slower). Rebuild with `make install`.",
                RuntimeWarning,
                stacklevel=3,
            )
    return _loaded


def load_error() -> str | None:
    """Why the extension did not load, or None."""
    available()
    return _error


def cuda_built() -> bool:
    """True when the extension was compiled with its CUDA kernels."""
    return available() and bool(torch.ops.lightning_gans.built_with_cuda())


def build_info() -> dict:
    """How the loaded extension was built: OpenMP, CPU ISA variants, CUDA and its architectures,
    the torch version and compiler it was built against. Empty when the extension is unavailable."""
    import json

    if not available():
        return {}
    return json.loads(torch.ops.lightning_gans.build_info())
