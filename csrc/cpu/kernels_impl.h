// CPU kernels: vectorised with at::vec, parallel with at::parallel_for.
// Included once per CPU capability (kernels_default.cpp, kernels_avx2.cpp),
// each defining CPU_CAPABILITY first so the definitions land in their own
// inline namespace, as in ATen.
//
// Determinism: work is cut into fixed chunks that depend only on the sizes,
// never on the thread count (threads claim chunks dynamically, parallel_items);
// each chunk writes its own partial result, and partials are added in chunk order. So losses and gradients are bitwise the
// same whatever at::get_num_threads() is.
#pragma once
#include "all_pairs_impl.h"
#include "vec_math.h"

namespace lightning_gans {
namespace cpu {
namespace CPU_CAPABILITY {

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
  parallel_items(nch, kGrainChunks, [&](int64_t ch) {
    const int64_t s = ch * kChunk, len = std::min(kChunk, n - s);
    const T* ys = y ? y + s : nullptr;
    double* o = &part[2 * ch];
    if (y && want_sig) sp_sum_chunk<T, true, true>(x + s, ys, len, A(a), A(c), A(b), o);
    else if (y) sp_sum_chunk<T, true, false>(x + s, ys, len, A(a), A(c), A(b), o);
    else if (want_sig) sp_sum_chunk<T, false, true>(x + s, ys, len, A(a), A(c), A(b), o);
    else sp_sum_chunk<T, false, false>(x + s, ys, len, A(a), A(c), A(b), o);
  });
  out[0] = out[1] = 0.0;
  for (int64_t ch = 0; ch < nch; ++ch) {
    out[0] += part[2 * ch];
    out[1] += part[2 * ch + 1];
  }
}

// ---------------------------------------------------------------- sig_affine
template <typename T, typename O>
void store_as(const acc_t<T>* src, O* dst, int64_t len) {
  for (int64_t k = 0; k < len; ++k) dst[k] = static_cast<O>(src[k]);
}

// Outputs of type O: the input type T (a gradient) or acc_t<T> (a forward's
// saved gradient, never rounded to half: σ/N would be subnormal or 0 there).
// With SP, also the chunk's Σ sp(z) (from the same e = exp(-|z|)) into *sp_part:
// a forward that hands its gradient to the backward evaluates each exp once.
template <typename T, typename O, bool SP>
void sig_affine_chunk(const T* x, const T* y, int64_t len, acc_t<T> a, acc_t<T> c, acc_t<T> b, acc_t<T> coef_x,
                      acc_t<T> add_x, O* out_x, acc_t<T> coef_y, acc_t<T> add_y, O* out_y, double* sp_part) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  A bx[kChunk], by[kChunk], bo[kChunk], bo2[kChunk];
  const A* xa = as_acc(x, len, bx);
  const A* ya = y ? as_acc(y, len, by) : nullptr;
  // Outputs in A are written in place; half outputs go through a float buffer.
  constexpr bool kDirect = std::is_same_v<O, A>;
  A* ox = kDirect ? reinterpret_cast<A*>(out_x) : bo;
  A* oy = kDirect && out_y ? reinterpret_cast<A*>(out_y) : bo2;
  V acc_sp(A(0));
  int64_t k = 0;
  for (; k + V::size() <= len; k += V::size()) {
    V z = V::loadu(xa + k) * V(a) + V(b);
    if (ya) z = z + V::loadu(ya + k) * V(c);
    V sg;
    if constexpr (SP) {
      V sp;
      vec_sp_sig(z, sp, sg);
      acc_sp = acc_sp + sp;
    } else {
      sg = vec_sig(z);
    }
    (sg * V(coef_x) + V(add_x)).store(ox + k);
    if (out_y) (sg * V(coef_y) + V(add_y)).store(oy + k);
  }
  double tail_sp = 0.0;
  for (; k < len; ++k) {
    A z = xa[k] * a + b;
    if (ya) z = z + ya[k] * c;
    A sp, sg;
    math::softplus_sigmoid(z, sp, sg);
    tail_sp += sp;
    ox[k] = sg * coef_x + add_x;
    oy[k] = sg * coef_y + add_y;
  }
  if constexpr (SP) *sp_part = hsum(acc_sp) + tail_sp;
  if constexpr (!kDirect) {
    store_as<T>(ox, out_x, len);
    if (out_y) store_as<T>(oy, out_y, len);
  }
}

template <typename T, typename O>
void sig_affine_typed(const T* x, const T* y, int64_t n, double a, double c, double b, double coef_x, double add_x,
                      O* out_x, double coef_y, double add_y, O* out_y, double* sp_total) {
  using A = acc_t<T>;
  const int64_t nch = (n + kChunk - 1) / kChunk;
  std::vector<double> part(sp_total ? nch : 0);
  parallel_items(nch, kGrainChunks, [&](int64_t ch) {
    const int64_t s = ch * kChunk, len = std::min(kChunk, n - s);
    const T* ys = y ? y + s : nullptr;
    O* oys = out_y ? out_y + s : nullptr;
    if (sp_total) {
      sig_affine_chunk<T, O, true>(x + s, ys, len, A(a), A(c), A(b), A(coef_x), A(add_x), out_x + s, A(coef_y),
                                   A(add_y), oys, &part[ch]);
    } else {
      sig_affine_chunk<T, O, false>(x + s, ys, len, A(a), A(c), A(b), A(coef_x), A(add_x), out_x + s, A(coef_y),
                                    A(add_y), oys, nullptr);
    }
  });
  if (sp_total) {
    *sp_total = 0.0;
    for (double p : part) *sp_total += p;  // chunk order: independent of the thread count
  }
}

template <typename T>
void sig_affine_impl(const void* xv, const void* yv, int64_t n, double a, double c, double b, double coef_x,
                     double add_x, void* out_xv, double coef_y, double add_y, void* out_yv, double* sp_total,
                     bool out_acc) {
  const T* x = static_cast<const T*>(xv);
  const T* y = static_cast<const T*>(yv);
  if (out_acc) {
    using A = acc_t<T>;
    sig_affine_typed<T, A>(x, y, n, a, c, b, coef_x, add_x, static_cast<A*>(out_xv), coef_y, add_y,
                           static_cast<A*>(out_yv), sp_total);
  } else {
    sig_affine_typed<T, T>(x, y, n, a, c, b, coef_x, add_x, static_cast<T*>(out_xv), coef_y, add_y,
                           static_cast<T*>(out_yv), sp_total);
  }
}

// ---------------------------------------------------------------- scale
template <typename T>
void scale_impl(const void* gv, int64_t n, double kx, void* out_xv, double ky, void* out_yv) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  const A* g = static_cast<const A*>(gv);
  T* out_x = static_cast<T*>(out_xv);
  T* out_y = static_cast<T*>(out_yv);
  const int64_t nch = (n + kChunk - 1) / kChunk;
  parallel_items(nch, kGrainChunks, [&](int64_t ch) {
    const int64_t k0 = ch * kChunk, k1 = std::min(n, k0 + kChunk);
    const V vx(static_cast<A>(kx)), vy(static_cast<A>(ky));
    int64_t k = k0;
    if constexpr (std::is_same_v<T, A>) {
      for (; k + V::size() <= k1; k += V::size()) {
        const V gk = V::loadu(g + k);
        (gk * vx).store(out_x + k);
        if (out_y) (gk * vy).store(out_y + k);
      }
    }
    for (; k < k1; ++k) {  // half outputs: the compiler vectorises the converting loop
      out_x[k] = static_cast<T>(g[k] * A(kx));
      if (out_y) out_y[k] = static_cast<T>(g[k] * A(ky));
    }
  });
}

// ---------------------------------------------------------------- sum
template <typename T>
double sum_impl(const void* xv, int64_t n) {
  using A = acc_t<T>;
  using V = Vectorized<A>;
  const T* x = static_cast<const T*>(xv);
  const int64_t nch = (n + kChunk - 1) / kChunk;
  std::vector<double> part(nch);
  parallel_items(nch, kGrainChunks, [&](int64_t ch) {
    A buf[kChunk];
    const int64_t s = ch * kChunk, len = std::min(kChunk, n - s);
    const A* xa = as_acc(x + s, len, buf);
    V acc(A(0));
    int64_t k = 0;
    for (; k + V::size() <= len; k += V::size()) acc = acc + V::loadu(xa + k);
    double t = hsum(acc);
    for (; k < len; ++k) t += xa[k];
    part[ch] = t;
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
                       double coef_x, double add_x, void* out_x, double coef_y, double add_y, void* out_y,
                       double* sp_total, bool out_acc) {
  LG_DISPATCH(d, sig_affine_impl, x, y, n, a, c, b, coef_x, add_x, out_x, coef_y, add_y, out_y, sp_total, out_acc)
}

inline void scale(DType d, const void* g, int64_t n, double kx, void* out_x, double ky, void* out_y) {
  LG_DISPATCH(d, scale_impl, g, n, kx, out_x, ky, out_y)
}

inline double all_pairs(DType d, const void* r, const void* f, int64_t n, int64_t m, double s, void* row,
                        void* col) {
  LG_DISPATCH(d, all_pairs_impl, r, f, n, m, s, row, col)
}
inline double sum(DType d, const void* x, int64_t n) { LG_DISPATCH(d, sum_impl, x, n) }
#undef LG_DISPATCH

inline const Kernels& table() {
  static const Kernels k{&sp_sum, &sig_affine, &scale, &all_pairs, &sum};
  return k;
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace lightning_gans
