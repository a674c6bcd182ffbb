// AVX2 build of the CPU kernels, selected at run time by kernels() when the
// CPU supports it (AVX2, FMA, F16C). The pragma (not a global -mavx2) keeps the rest of the
// extension runnable on CPUs without AVX2.
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx2,fma,f16c")
#include "isa_macros.h"
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "kernels_impl.h"

namespace lightning_gans {
namespace cpu {
const Kernels& kernels_avx2() { return AVX2::table(); }
}  // namespace cpu
}  // namespace lightning_gans
#endif
