// Portable build of the CPU kernels (at::vec's generic Vectorized).
#define CPU_CAPABILITY DEFAULT
#include "kernels_impl.h"

namespace lightning_gans {
namespace cpu {

const Kernels& kernels_default() { return DEFAULT::table(); }

const Kernels& kernels() {
#if defined(__x86_64__) || defined(_M_X64)
  // AVX-512: 16 float lanes; AVX2 + FMA: 8 lanes; both call SLEEF's exp.
  static const Kernels& best = [&]() -> const Kernels& {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
      return kernels_avx512();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
      return kernels_avx2();
    return kernels_default();
  }();
  return best;
#else
  return kernels_default();
#endif
}

}  // namespace cpu
}  // namespace lightning_gans
