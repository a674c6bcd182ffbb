// AVX-512 build of the CPU kernels (16 float lanes), selected at run time by
// kernels() when the CPU has AVX512F/BW/VL/DQ, as ATen's own kernels are. Same
// pragma scheme as kernels_avx2.cpp: only this translation unit uses AVX-512.
#if defined(__x86_64__) || defined(_M_X64)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#include "isa_macros.h"
#ifndef __AVX512F__
#define __AVX512F__ 1
#endif
#ifndef __AVX512BW__
#define __AVX512BW__ 1
#endif
#ifndef __AVX512VL__
#define __AVX512VL__ 1
#endif
#ifndef __AVX512DQ__
#define __AVX512DQ__ 1
#endif
#define CPU_CAPABILITY AVX512
#define CPU_CAPABILITY_AVX512
#include "kernels_impl.h"

namespace lightning_gans {
namespace cpu {
const Kernels& kernels_avx512() { return AVX512::table(); }
}  // namespace cpu
}  // namespace lightning_gans
#endif
