// CPU kernels: vectorised with at::vec, parallel with at::parallel_for.
// Included once per CPU capability (kernels_default.cpp, kernels_avx2.cpp),
// each defining CPU_CAPABILITY first so the definitions land in their own
// inline namespace, as in ATen.
//
// Determinism: work is cut into fixed chunks that depend only on the sizes,
// never on the thread count; each chunk writes its own partial result, and
// partials are added in chunk order. So losses and gradients are bitwise the
// same whatever at::get_num_threads() is.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/vec.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "../gan_math.h"
#include "kernels.h"

namespace lightning_gans {
namespace cpu {
namespace CPU_CAPABILITY {

using at::vec::Vectorized;

constexpr int64_t kChunk = 4096;  // elementwise partition
constexpr int64_t kTile = 1024;   // all-pairs column tile (F and col partials stay in L1)
constexpr int64_t kMaxRowBlocks = 16;  // all-pairs: col partials cost kMaxRowBlocks * M, i.e. O(M)

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

// Vector forms of gan_math.h: e = exp(-|z|) once for both sp and σ.
template <typename A>
inline Vectorized<A> vec_sp(const Vectorized<A>& z) {
  using V = Vectorized<A>;
  const V zero(A(0));
  return V::blendv(zero, z, z > zero) + z.abs().neg().exp().log1p();
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
  sp = V::blendv(zero, z, z > zero) + e.log1p();
  const V inv = one / (one + e);
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

// ---------------------------------------------------------------- sp_sum
template <typename T, bool TWO, bool SIG>
void sp_sum_chunk(const T* x, const T* y, int64_t len, acc_t<T> a, acc_t<T> c, acc_t<T> b, double* out) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  A bx[kChunk], by[kChunk];
  const A* xa = as_acc(x, len, bx);
  const A* ya = TWO ? as_acc(y, len, by) : nullptr;
  V acc_sp(A(0)), acc_sig(A(0));
  int64_t k = 0;
  for (; k + V::size() <= len; k += V::size()) {
    V z = V::loadu(xa + k) * V(a) + V(b);
    if constexpr (TWO) z = z + V::loadu(ya + k) * V(c);
    if constexpr (SIG) {
      V sp, sg;
      vec_sp_sig(z, sp, sg);
      acc_sp = acc_sp + sp;
      acc_sig = acc_sig + sg;
    } else {
      acc_sp = acc_sp + vec_sp(z);
    }
  }
  double s_sp = hsum(acc_sp), s_sig = SIG ? hsum(acc_sig) : 0.0;
  for (; k < len; ++k) {  // tail, same formula in scalar form
    A z = xa[k] * a + b;
    if constexpr (TWO) z = z + ya[k] * c;
    A sp, sg;
    math::softplus_sigmoid(z, sp, sg);
    s_sp += sp;
    s_sig += sg;
  }
  out[0] = s_sp;
  out[1] = s_sig;
}

template <typename T>
void sp_sum_impl(const void* xv, const void* yv, int64_t n, double a, double c, double b, bool want_sig,
                 double out[2]) {
  using A = acc_t<T>;
  const T* x = static_cast<const T*>(xv);
  const T* y = static_cast<const T*>(yv);
  const int64_t nch = (n + kChunk - 1) / kChunk;
  std::vector<double> part(2 * nch);
  at::parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t s = ch * kChunk, len = std::min(kChunk, n - s);
      const T* ys = y ? y + s : nullptr;
      double* o = &part[2 * ch];
      if (y && want_sig) sp_sum_chunk<T, true, true>(x + s, ys, len, A(a), A(c), A(b), o);
      else if (y) sp_sum_chunk<T, true, false>(x + s, ys, len, A(a), A(c), A(b), o);
      else if (want_sig) sp_sum_chunk<T, false, true>(x + s, ys, len, A(a), A(c), A(b), o);
      else sp_sum_chunk<T, false, false>(x + s, ys, len, A(a), A(c), A(b), o);
    }
  });
  out[0] = out[1] = 0.0;
  for (int64_t ch = 0; ch < nch; ++ch) {
    out[0] += part[2 * ch];
    out[1] += part[2 * ch + 1];
  }
}

// ---------------------------------------------------------------- sig_affine
template <typename T>
void store_as(const acc_t<T>* src, T* dst, int64_t len) {
  for (int64_t k = 0; k < len; ++k) dst[k] = static_cast<T>(src[k]);
}

template <typename T>
void sig_affine_impl(const void* xv, const void* yv, int64_t n, double a, double c, double b, double coef_x,
                     double add_x, void* out_xv, double coef_y, double add_y, void* out_yv) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  const T* x = static_cast<const T*>(xv);
  const T* y = static_cast<const T*>(yv);
  T* out_x = static_cast<T*>(out_xv);
  T* out_y = static_cast<T*>(out_yv);
  const int64_t nch = (n + kChunk - 1) / kChunk;
  at::parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    A bx[kChunk], by[kChunk], ox[kChunk], oy[kChunk];
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t s = ch * kChunk, len = std::min(kChunk, n - s);
      const A* xa = as_acc(x + s, len, bx);
      const A* ya = y ? as_acc(y + s, len, by) : nullptr;
      int64_t k = 0;
      for (; k + V::size() <= len; k += V::size()) {
        V z = V::loadu(xa + k) * V(A(a)) + V(A(b));
        if (ya) z = z + V::loadu(ya + k) * V(A(c));
        const V sg = vec_sig(z);
        (sg * V(A(coef_x)) + V(A(add_x))).store(ox + k);
        if (out_y) (sg * V(A(coef_y)) + V(A(add_y))).store(oy + k);
      }
      for (; k < len; ++k) {
        A z = xa[k] * A(a) + A(b);
        if (ya) z = z + ya[k] * A(c);
        const A sg = math::sigmoid(z);
        ox[k] = sg * A(coef_x) + A(add_x);
        oy[k] = sg * A(coef_y) + A(add_y);
      }
      store_as<T>(ox, out_x + s, len);
      if (out_y) store_as<T>(oy, out_y + s, len);
    }
  });
}

// ---------------------------------------------------------------- all pairs
// Rows (real) are cut into at most kMaxRowBlocks fixed blocks processed in
// parallel; each block sweeps all columns tile by tile, keeping per-row sums
// in double across tiles and its own column partials (M values per block).
// Memory: O(kMaxRowBlocks * M + N); the N x M matrix never exists.
template <typename T, bool GRAD>
double all_pairs_blocks(const acc_t<T>* R, const acc_t<T>* F, int64_t n, int64_t m, acc_t<T>* row,
                        acc_t<T>* col) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  const int64_t nblk = std::min<int64_t>(kMaxRowBlocks, (n + 31) / 32);
  const int64_t br = (n + nblk - 1) / nblk;
  std::vector<A> colpart(GRAD ? nblk * m : 0, A(0));
  std::vector<double> losspart(nblk, 0.0);
  at::parallel_for(0, nblk, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t i0 = blk * br, i1 = std::min(n, i0 + br);
      if (i0 >= i1) continue;
      std::vector<double> rowsum(GRAD ? i1 - i0 : 0, 0.0);
      double loss = 0.0;
      A* cp = GRAD ? colpart.data() + blk * m : nullptr;
      for (int64_t j0 = 0; j0 < m; j0 += kTile) {
        const int64_t j1 = std::min(m, j0 + kTile);
        for (int64_t i = i0; i < i1; ++i) {
          const V ri(R[i]);
          V acc_sp(A(0)), acc_sig(A(0));
          int64_t j = j0;
          double tail_sp = 0.0, tail_sig = 0.0;
          for (; j + V::size() <= j1; j += V::size()) {
            const V z = V::loadu(F + j) - ri;
            if constexpr (GRAD) {
              V sp, sg;
              vec_sp_sig(z, sp, sg);
              acc_sp = acc_sp + sp;
              acc_sig = acc_sig + sg;
              (V::loadu(cp + j) + sg).store(cp + j);
            } else {
              acc_sp = acc_sp + vec_sp(z);
            }
          }
          for (; j < j1; ++j) {
            A sp, sg;
            math::softplus_sigmoid(F[j] - R[i], sp, sg);
            tail_sp += sp;
            if constexpr (GRAD) {
              tail_sig += sg;
              cp[j] += sg;
            }
          }
          loss += hsum(acc_sp) + tail_sp;
          if constexpr (GRAD) rowsum[i - i0] += hsum(acc_sig) + tail_sig;
        }
      }
      losspart[blk] = loss;
      if constexpr (GRAD) {
        for (int64_t i = i0; i < i1; ++i) row[i] = static_cast<A>(rowsum[i - i0]);
      }
    }
  });
  if constexpr (GRAD) {
    at::parallel_for(0, m, kChunk, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        double s = 0.0;
        for (int64_t blk = 0; blk < nblk; ++blk) s += colpart[blk * m + j];
        col[j] = static_cast<A>(s);
      }
    });
  }
  double total = 0.0;
  for (double l : losspart) total += l;
  return total;
}

template <typename T>
double all_pairs_impl(const void* rv, const void* fv, int64_t n, int64_t m, double s, void* rowv, void* colv) {
  using A = acc_t<T>;
  const T* r = static_cast<const T*>(rv);
  const T* f = static_cast<const T*>(fv);
  // z_ij = s f_j - s r_i; for s = ±1 this is exactly s (f_j - r_i).
  std::vector<A> R(n), F(m);
  for (int64_t i = 0; i < n; ++i) R[i] = A(s) * static_cast<A>(r[i]);
  for (int64_t j = 0; j < m; ++j) F[j] = A(s) * static_cast<A>(f[j]);
  if (rowv) {
    return all_pairs_blocks<T, true>(R.data(), F.data(), n, m, static_cast<A*>(rowv), static_cast<A*>(colv));
  }
  return all_pairs_blocks<T, false>(R.data(), F.data(), n, m, nullptr, nullptr);
}

// ---------------------------------------------------------------- sum
template <typename T>
double sum_impl(const void* xv, int64_t n) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  const T* x = static_cast<const T*>(xv);
  const int64_t nch = (n + kChunk - 1) / kChunk;
  std::vector<double> part(nch);
  at::parallel_for(0, nch, 1, [&](int64_t c0, int64_t c1) {
    A buf[kChunk];
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t s = ch * kChunk, len = std::min(kChunk, n - s);
      const A* xa = as_acc(x + s, len, buf);
      V acc(A(0));
      int64_t k = 0;
      for (; k + V::size() <= len; k += V::size()) acc = acc + V::loadu(xa + k);
      double t = hsum(acc);
      for (; k < len; ++k) t += xa[k];
      part[ch] = t;
    }
  });
  double total = 0.0;
  for (double p : part) total += p;
  return total;
}

// ---------------------------------------------------------------- table
#define LG_DISPATCH(d, FN, ...)                                   \
  switch (d) {                                                    \
    case DType::f32: return FN<float>(__VA_ARGS__);               \
    case DType::f64: return FN<double>(__VA_ARGS__);              \
    case DType::f16: return FN<c10::Half>(__VA_ARGS__);           \
    default: return FN<c10::BFloat16>(__VA_ARGS__);               \
  }

inline void sp_sum(DType d, const void* x, const void* y, int64_t n, double a, double c, double b, bool want_sig,
                   double out[2]) {
  LG_DISPATCH(d, sp_sum_impl, x, y, n, a, c, b, want_sig, out)
}

inline void sig_affine(DType d, const void* x, const void* y, int64_t n, double a, double c, double b,
                       double coef_x, double add_x, void* out_x, double coef_y, double add_y, void* out_y) {
  LG_DISPATCH(d, sig_affine_impl, x, y, n, a, c, b, coef_x, add_x, out_x, coef_y, add_y, out_y)
}

inline double all_pairs(DType d, const void* r, const void* f, int64_t n, int64_t m, double s, void* row,
                        void* col) {
  LG_DISPATCH(d, all_pairs_impl, r, f, n, m, s, row, col)
}
inline double sum(DType d, const void* x, int64_t n) { LG_DISPATCH(d, sum_impl, x, n) }
#undef LG_DISPATCH

inline const Kernels& table() {
  static const Kernels k{&sp_sum, &sig_affine, &all_pairs, &sum};
  return k;
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace lightning_gans
