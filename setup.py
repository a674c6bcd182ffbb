"""Builds lightning_gans._C: the CPU kernels always, the CUDA kernels when the
installed torch has CUDA and a matching nvcc is found (no GPU needed to compile).

Switch: LIGHTNING_GANS_CUDA=auto (default) | 1 (require CUDA) | 0 (CPU only).
Build against the installed torch: `pip install --no-build-isolation -e .`.
"""
import os
import re
import shutil
import subprocess

# torch picks CUDA_HOME when cpp_extension is imported; a `nvcc` wrapper on PATH
# outside the toolkit (e.g. /usr/local/bin/nvcc) makes it guess a prefix with no
# libcudart, so point it at the real toolkit first.
if "CUDA_HOME" not in os.environ and "CUDA_PATH" not in os.environ and os.path.isdir("/usr/local/cuda"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
# With no GPU visible torch cannot choose architectures. Default: Turing (T4),
# A100, A10/RTX 30, L4/L40/RTX 40, H100/H200, +PTX so that newer GPUs JIT from
# sm_90 PTX. Measured on 2 shared cores (docs/cuda.md): a clean build of the
# whole extension costs 3.4 min of CPU with these five against 2.2 min with
# "8.0;9.0+PTX", i.e. ~1.7 vs ~1.1 min of wall time on an idle 2-core runner:
# well within CI's budget (a build over ~10 minutes would not be).
# scripts/gpu_check.sh builds 9.0 only.
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "7.5;8.0;8.6;8.9;9.0+PTX")
os.environ.setdefault("MAX_JOBS", str(max(1, min(4, os.cpu_count() or 1))))

import torch  # noqa: E402
from setuptools import setup  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def nvcc_version() -> str | None:
    """nvcc's release, e.g. '13.0', or None when there is no nvcc."""
    nvcc = os.path.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else None
    if not nvcc or not os.path.exists(nvcc):
        return None
    try:
        out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"release (\d+)\.(\d+)", out)
    return f"{m.group(1)}.{m.group(2)}" if m else None


def want_cuda(nvcc: str | None) -> bool:
    mode = os.environ.get("LIGHTNING_GANS_CUDA", "auto").lower()
    if mode in ("0", "false", "no"):
        return False
    why_not = None
    if torch.version.cuda is None:
        why_not = f"torch {torch.__version__} is a CPU-only build"
    elif nvcc is None:
        why_not = f"no nvcc under CUDA_HOME={CUDA_HOME}"
    elif nvcc.split(".")[0] != torch.version.cuda.split(".")[0]:
        # torch's cpp_extension aborts the whole build on a major mismatch.
        why_not = f"nvcc {nvcc} and torch's CUDA {torch.version.cuda} have different major versions"
    if why_not is None:
        return True
    if mode in ("1", "true", "yes"):
        raise RuntimeError(f"LIGHTNING_GANS_CUDA=1 but CUDA cannot be built: {why_not}")
    print(f"lightning_gans: building without CUDA: {why_not}")
    return False


def token(s: str) -> str:
    """A build-info value as bare preprocessor tokens (build_info.cpp stringifies them).
    Lists are ':'-separated: nvcc splits a -D value at commas into several macros."""
    return re.sub(r"[^A-Za-z0-9.+_-]", ":", s).strip(":")


isa_sources = ["csrc/cpu/kernels_default.cpp", "csrc/cpu/kernels_avx2.cpp", "csrc/cpu/kernels_avx512.cpp"]
cpu_sources = ["csrc/ops.cpp", "csrc/autograd.cpp", "csrc/cpu/ops_cpu.cpp", *isa_sources, "csrc/build_info.cpp", "csrc/tile_emulation.cpp"]
cuda_sources = ["csrc/cuda/ops_cuda.cpp", "csrc/cuda/elementwise.cu", "csrc/cuda/all_pairs.cu",
                "csrc/cuda/all_pairs_legacy.cu"]
# No -std: torch's builder adds the standard its headers need (C++17 or C++20).
# -fopenmp: at::parallel_for is inline in ATen's headers and runs serially
# unless the including code is compiled with OpenMP (torch's own runtime, libgomp).
cxx_flags = ["-O3", "-fvisibility=hidden", "-fopenmp"]
link_flags = ["-fopenmp"]
nvcc = nvcc_version()
with_cuda = want_cuda(nvcc)
macros = [
    ("LG_TORCH_VERSION", token(torch.__version__)),
    ("LG_CPU_ISA_VARIANTS", ":".join(os.path.basename(s)[len("kernels_"):-len(".cpp")] for s in isa_sources)),
]
if with_cuda:
    archs = os.environ["TORCH_CUDA_ARCH_LIST"]
    print(f"lightning_gans: building CPU + CUDA kernels (CUDA_HOME={CUDA_HOME}, nvcc {nvcc}, "
          f"TORCH_CUDA_ARCH_LIST={archs})")
    macros += [("LG_WITH_CUDA", "1"), ("LG_CUDA_ARCHS", token(archs)), ("LG_CUDA_VERSION", token(nvcc))]
    # -lineinfo: source lines in profiles (Nsight Compute) at no runtime cost and
    # little build time.
    ext = CUDAExtension(
        "lightning_gans._C",
        cpu_sources + cuda_sources,
        define_macros=macros,
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "-lineinfo"]},
        extra_link_args=link_flags,
        py_limited_api=False,
    )
else:
    print("lightning_gans: building CPU kernels only")
    ext = CppExtension("lightning_gans._C", cpu_sources, define_macros=macros, extra_compile_args={"cxx": cxx_flags},
                       extra_link_args=link_flags)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=shutil.which("ninja") is not None)},
)
