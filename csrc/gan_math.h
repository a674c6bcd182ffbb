// Scalar math shared by the CPU and CUDA kernels, so both compute the same
// formulas (docs/theory.md, "Stable forms"). Everything is written in terms of
// e = exp(-|z|) <= 1, which never overflows: sp(z) = max(z, 0) + log1p(e),
// σ(z) = 1/(1+e) for z >= 0 and e/(1+e) otherwise.
//
// NaN in gives NaN out, explicitly: a comparison such as `z > 0 ? z : 0` maps
// NaN to 0 (every comparison with NaN is false), so each function returns z
// itself when z != z instead of relying on which libm call happens to see it.
// ±inf: sp(+inf) = +inf, sp(-inf) = 0, σ(+inf) = 1, σ(-inf) = 0.
#pragma once

#if defined(__CUDACC__)
#define LG_HD __host__ __device__ __forceinline__
#else
#define LG_HD inline
#include <cmath>
#endif

namespace lightning_gans {
namespace math {

LG_HD float lg_exp(float x) { return expf(x); }
LG_HD double lg_exp(double x) { return exp(x); }
LG_HD float lg_log1p(float x) { return log1pf(x); }
LG_HD double lg_log1p(double x) { return log1p(x); }
LG_HD float lg_abs(float x) { return fabsf(x); }
LG_HD double lg_abs(double x) { return fabs(x); }

// Softplus and sigmoid of z from one exp.
template <typename T>
LG_HD void softplus_sigmoid(T z, T& sp, T& sig) {
  const T e = lg_exp(-lg_abs(z));
  const T inv = T(1) / (T(1) + e);
  sp = (z > T(0) ? z : T(0)) + lg_log1p(e);
  sig = z >= T(0) ? inv : e * inv;
  if (z != z) sp = sig = z;  // NaN: the comparisons above chose a branch arbitrarily
}

template <typename T>
LG_HD T softplus(T z) {
  const T sp = (z > T(0) ? z : T(0)) + lg_log1p(lg_exp(-lg_abs(z)));
  return z != z ? z : sp;
}

template <typename T>
LG_HD T sigmoid(T z) {
  const T e = lg_exp(-lg_abs(z));
  const T inv = T(1) / (T(1) + e);
  const T sig = z >= T(0) ? inv : e * inv;
  return z != z ? z : sig;
}

}  // namespace math
}  // namespace lightning_gans
