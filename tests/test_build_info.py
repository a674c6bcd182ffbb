"""lightning_gans.build_info(): how the loaded extension was built (issue 15)."""
import json
import shutil
import subprocess

import pytest
import torch

import lightning_gans
from lightning_gans import kernels

pytestmark = pytest.mark.skipif(not kernels.extension_available(), reason="native extension not built")

KEYS = {"openmp", "cpu_isa_variants", "cuda", "cuda_archs", "cuda_version", "torch_version", "compiler"}


def test_keys_and_types():
    info = lightning_gans.build_info()
    assert KEYS <= set(info), f"missing keys: {KEYS - set(info)}"
    assert isinstance(info["openmp"], bool) and isinstance(info["cuda"], bool)
    assert isinstance(info["cpu_isa_variants"], list) and "default" in info["cpu_isa_variants"]
    assert all(isinstance(info[k], str) for k in ("cuda_archs", "cuda_version", "torch_version", "compiler"))
    # the raw op returns valid JSON on its own
    assert json.loads(torch.ops.lightning_gans.build_info()) == info


def test_built_against_the_running_torch():
    # A stale build (compiled against another torch) is caught here rather than as an ABI crash later.
    assert lightning_gans.build_info()["torch_version"] == torch.__version__


def test_cuda_fields_agree_with_the_build():
    info = lightning_gans.build_info()
    assert info["cuda"] == kernels.cuda_built()
    if info["cuda"]:
        assert info["cuda_archs"] and info["cuda_version"]
        assert info["cuda_version"].split(".")[0] == torch.version.cuda.split(".")[0]
    else:
        assert info["cuda_archs"] == "" and info["cuda_version"] == ""


def test_openmp_where_the_compiler_supports_it():
    info = lightning_gans.build_info()
    if info["compiler"].startswith("gcc"):  # gcc always supports -fopenmp, which setup.py passes
        assert info["openmp"] is True
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx and info["compiler"].startswith("gcc"):
        version = subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True).stdout.strip()
        assert version and version in info["compiler"], (version, info["compiler"])
