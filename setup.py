"""Builds lightning_gans._C: the CPU kernels always, the CUDA kernels when the
installed torch has CUDA and nvcc is found (no GPU needed to compile).

Switch: LIGHTNING_GANS_CUDA=auto (default) | 1 (require CUDA) | 0 (CPU only).
Build against the installed torch: `pip install --no-build-isolation -e .`.
"""
import os
import shutil

# torch picks CUDA_HOME when cpp_extension is imported; a `nvcc` wrapper on PATH
# outside the toolkit (e.g. /usr/local/bin/nvcc) makes it guess a prefix with no
# libcudart, so point it at the real toolkit first.
if "CUDA_HOME" not in os.environ and "CUDA_PATH" not in os.environ and os.path.isdir("/usr/local/cuda"):
    os.environ["CUDA_HOME"] = "/usr/local/cuda"
# With no GPU visible torch cannot choose architectures; default to A100 and
# H100 (+PTX for newer GPUs). Every extra architecture costs build time.
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
os.environ.setdefault("MAX_JOBS", str(max(1, min(4, os.cpu_count() or 1))))

import torch  # noqa: E402
from setuptools import setup  # noqa: E402
from torch.utils.cpp_extension import CUDA_HOME, BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def want_cuda() -> bool:
    mode = os.environ.get("LIGHTNING_GANS_CUDA", "auto").lower()
    nvcc = CUDA_HOME and os.path.exists(os.path.join(CUDA_HOME, "bin", "nvcc"))
    possible = torch.version.cuda is not None and bool(nvcc)
    if mode in ("1", "true", "yes"):
        if not possible:
            raise RuntimeError(
                f"LIGHTNING_GANS_CUDA=1 but CUDA cannot be built (torch.version.cuda={torch.version.cuda}, "
                f"CUDA_HOME={CUDA_HOME}, nvcc found: {bool(nvcc)})"
            )
        return True
    if mode in ("0", "false", "no"):
        return False
    return possible


cpu_sources = ["csrc/ops.cpp", "csrc/autograd.cpp", "csrc/cpu/ops_cpu.cpp", "csrc/cpu/kernels_default.cpp", "csrc/cpu/kernels_avx2.cpp",
               "csrc/cpu/kernels_avx512.cpp"]
# No -std: torch's builder adds the standard its headers need (C++17 or C++20).
# -fopenmp: at::parallel_for is inline in ATen's headers and runs serially
# unless the including code is compiled with OpenMP (torch's own runtime, libgomp).
cxx_flags = ["-O3", "-fvisibility=hidden", "-fopenmp"]
link_flags = ["-fopenmp"]
if want_cuda():
    print(f"lightning_gans: building CPU + CUDA kernels (CUDA_HOME={CUDA_HOME}, "
          f"TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']})")
    ext = CUDAExtension(
        "lightning_gans._C",
        cpu_sources + ["csrc/cuda/ops_cuda.cpp", "csrc/cuda/kernels.cu"],
        define_macros=[("LG_WITH_CUDA", "1")],
        extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3"]},
        extra_link_args=link_flags,
        py_limited_api=False,
    )
else:
    print("lightning_gans: building CPU kernels only")
    ext = CppExtension("lightning_gans._C", cpu_sources, extra_compile_args={"cxx": cxx_flags},
                       extra_link_args=link_flags)

setup(
    ext_modules=[ext],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=shutil.which("ninja") is not None)},
)
