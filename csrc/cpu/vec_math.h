// Vector helpers shared by the CPU kernels (kernels_impl.h, all_pairs_impl.h),
// compiled once per CPU capability: the includer defines CPU_CAPABILITY first.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <atomic>
#include <type_traits>
#include <vector>

#include "../gan_math.h"
#include "kernels.h"

namespace lightning_gans {
namespace cpu {
namespace CPU_CAPABILITY {

using at::vec::Vectorized;

constexpr int64_t kChunk = 4096;  // elementwise partition (fixed: reductions add chunk partials in order)
// Elementwise ops go parallel only above kGrainChunks chunks (N > 16K): an OpenMP fork/join
// costs a few microseconds, about what one thread takes for 8K logits (the previous grain of
// one chunk forked from N = 8K). Not tuned by measurement: the development machine was too
// loaded for parallel timings to mean anything (a busy core stalls the join).
#ifndef LG_GRAIN_CHUNKS
#define LG_GRAIN_CHUNKS 4
#endif
constexpr int64_t kGrainChunks = LG_GRAIN_CHUNKS;
constexpr int64_t kTile = 1024;   // all-pairs column tile (F and col partials stay in L1)
constexpr int64_t kMaxRowBlocks = 16;  // all-pairs: col partials cost kMaxRowBlocks * M, i.e. O(M)

// fn(item) for every item in [0, n), in parallel when n > grain. Threads claim items one at
// a time from a shared counter instead of taking equal shares up front: when another process
// holds a core, the thread that runs takes over the stalled one's items instead of the op
// waiting for it (at::parallel_for's static split made a loaded 2-core machine as slow as its
// slowest core). Each item writes only its own results, so which thread ran it changes
// nothing: results stay bitwise the same for any thread count or timing.
template <typename F>
void parallel_items(int64_t n, int64_t grain, const F& fn) {
  std::atomic<int64_t> next{0};
  at::parallel_for(0, n, grain, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1, std::memory_order_relaxed); i < n;
         i = next.fetch_add(1, std::memory_order_relaxed)) {
      fn(i);
    }
  });
}

// float32 accumulation for half types and float32; float64 for float64.
template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// x[0, len) in the accumulation type: a pointer into x, or converted into buf.
template <typename T>
const acc_t<T>* as_acc(const T* x, int64_t len, acc_t<T>* buf) {
  if constexpr (std::is_same_v<T, acc_t<T>>) {
    return x;
  } else {
    for (int64_t k = 0; k < len; ++k) buf[k] = static_cast<float>(x[k]);
    return buf;
  }
}

// log1p(e) for e in [0, 1], the only range the softplus needs. For float:
// 2 atanh(u), u = e / (2 + e) <= 1/3, by its series in w = u² <= 1/9; eight
// terms leave a relative error below 2e-8 (under float's 6e-8), tiny e stay
// exact (u ~ e/2), and it costs 8 FMAs instead of a full-range log1p. NaN
// propagates. Double keeps SLEEF's log1p (15 more terms would be needed).
inline Vectorized<float> log1p_from_u(const Vectorized<float>& u) {
  using V = Vectorized<float>;
  const V w = u * u;
  V p(1.f / 15.f);
  for (float c : {1.f / 13.f, 1.f / 11.f, 1.f / 9.f, 1.f / 7.f, 1.f / 5.f, 1.f / 3.f, 1.f}) {
    p = at::vec::fmadd(p, w, V(c));
  }
  return (u + u) * p;
}

template <typename A>
inline Vectorized<A> log1p_unit(const Vectorized<A>& e) {
  if constexpr (std::is_same_v<A, float>) {
    return log1p_from_u(e / (e + Vectorized<float>(2.f)));
  } else {
    return e.log1p();
  }
}

// log1p(S) for finite S >= 0 of any size (the all-pairs product S = Π(1 + x) - 1 reaches e^85).
// SLEEF's full-range log1pf took 4/5 of the all-pairs kernel's time; this one costs two
// divisions and eight FMAs. 1 + S = m · 2^e with m in [0.75, 1.5) read from the float's bits,
// log m by the atanh series (u = (m - 1)/(m + 1) in [-1/7, 1/5]), and c / y puts back the part
// of S that 1 + S rounded away, so tiny S keep full relative precision (log1p(S) ~ S).
inline Vectorized<float> log1p_product(const Vectorized<float>& S) {
  using V = Vectorized<float>;
  using VI = Vectorized<int32_t>;
  const V one(1.f), y = S + one;
  const V c = S - (y - one);
  const VI t = at::vec::cast<int32_t>(y) - VI(0x3F400000);  // bits of y minus those of 0.75
  const V m = at::vec::cast<float>((t & VI(0x007FFFFF)) + VI(0x3F400000));
  const V e = at::vec::convert_to_fp_of_same_size<float>(t >> VI(23));
  const V f = m - one, u = f / (f + V(2.f)), w = u * u;
  // log m = 2 atanh(u) = 2u Σ w^k / (2k + 1): w <= 1/25, so five terms leave < 1e-8 relative;
  // Estrin's scheme: a shorter dependency chain for the out-of-order core to hide behind the next products.
  const V w2 = w * w;
  const V poly = at::vec::fmadd(w2 * w2, V(1.f / 9.f),
                                at::vec::fmadd(w2, at::vec::fmadd(w, V(1.f / 7.f), V(1.f / 5.f)),
                                               at::vec::fmadd(w, V(1.f / 3.f), one)));
  // ln 2 = hi + lo, hi on 15 bits: e · hi is exact for every exponent a float has
  return at::vec::fmadd(e, V(0.693145751953125f),
                        at::vec::fmadd(u + u, poly, at::vec::fmadd(e, V(1.4286068202862268e-06f), c / y)));
}

// Vector forms of gan_math.h: e = exp(-|z|) once for both sp and σ. NaN propagates through
// e (exp(-|NaN|) is NaN), not through the max(z, 0) blend, which alone would turn NaN into 0.
template <typename A>
inline Vectorized<A> vec_sp(const Vectorized<A>& z) {
  using V = Vectorized<A>;
  const V zero(A(0));
  return V::blendv(zero, z, z > zero) + log1p_unit(z.abs().neg().exp());
}

template <typename A>
inline Vectorized<A> vec_sig(const Vectorized<A>& z) {
  using V = Vectorized<A>;
  const V zero(A(0)), one(A(1));
  const V e = z.abs().neg().exp();
  const V inv = one / (one + e);
  return V::blendv(e * inv, inv, z >= zero);  // NaN z: e is NaN, so σ is NaN
}

template <typename A>
inline void vec_sp_sig(const Vectorized<A>& z, Vectorized<A>& sp, Vectorized<A>& sig) {
  using V = Vectorized<A>;
  const V zero(A(0)), one(A(1));
  const V e = z.abs().neg().exp();
  V inv;
  if constexpr (std::is_same_v<A, float>) {
    // One division for both 1/(1+e) and u = e/(2+e): r = 1/((1+e)(2+e)).
    const V p = one + e, q = V(2.f) + e;
    const V r = one / (p * q);
    inv = q * r;
    sp = V::blendv(zero, z, z > zero) + log1p_from_u(e * p * r);
  } else {
    inv = one / (one + e);
    sp = V::blendv(zero, z, z > zero) + e.log1p();
  }
  sig = V::blendv(e * inv, inv, z >= zero);
}

// Lanes added in a fixed order.
template <typename A>
inline double hsum(const Vectorized<A>& v) {
  A lanes[Vectorized<A>::size()];
  v.store(lanes);
  double s = 0;
  for (int l = 0; l < Vectorized<A>::size(); ++l) s += lanes[l];
  return s;
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace lightning_gans
