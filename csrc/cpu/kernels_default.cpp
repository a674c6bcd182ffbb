// Portable build of the CPU kernels (at::vec's generic Vectorized).
#define CPU_CAPABILITY DEFAULT
#include "kernels_impl.h"

namespace lightning_gans {
namespace cpu {

const Kernels& kernels_default() { return DEFAULT::table(); }

const Kernels& kernels() {
#if defined(__x86_64__) || defined(_M_X64)
  // AVX2 + FMA: Vectorized<float> holds 8 lanes and calls SLEEF's exp/log1p.
  static const Kernels& best = (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                                    __builtin_cpu_supports("f16c"))
                                   ? kernels_avx2()
                                   : kernels_default();
  return best;
#else
  return kernels_default();
#endif
}

}  // namespace cpu
}  // namespace lightning_gans
