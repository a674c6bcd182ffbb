// All-pairs relativistic kernel on the CPU: for z_ij = F_j - R_i (F = s f,
// R = s r) the sum over all N·M pairs of sp(z_ij), and when a gradient is
// wanted the row sums Σ_j σ(z_ij) and column sums Σ_i σ(z_ij). O(N + M)
// memory: the N x M matrix never exists.
//
// Exact path (every dtype): one exp and one log1p per pair (gan_math.h forms).
//
// Factorised path (float accumulation, i.e. float32/float16/bfloat16), per
// (row i, column tile t) whose z all lie in [kZLo, kZHi]:
//   e^{z_ij} = a_j · b_i,  a_j = e^{F_j - c_t} <= 1,  b_i = e^{c_t - R_i},  c_t = max_{j in t} F_j,
// so x = e^z is one multiply, σ(z) = x / (1 + x) one division, and
// Σ_j sp(z_ij) = log Π_j (1 + x_ij) needs one log1p per K pairs per lane. The
// product is carried as S = Π(1 + x) - 1 through S <- S + x(1 + S), which keeps
// full relative precision when the x are tiny (1 + x would round them away).
// The range check makes a_j, b_i and x normal floats and bounds a K-factor
// product by e^85 < FLT_MAX; NaN or ±inf fails the check and takes the exact path.
// a_j and b_i are computed in double from the float inputs, so x is accurate to ~1 ulp.
//
// Determinism: rows are cut into at most kMaxRowBlocks fixed blocks (claimed by
// threads dynamically, parallel_items), each
// keeping its own column partials; the path taken depends only on the data
// and the fixed tiling, never on the thread count.
#pragma once
#include <c10/core/CPUAllocator.h>

#include <cmath>

#include "vec_math.h"

namespace lightning_gans {
namespace cpu {
namespace CPU_CAPABILITY {

constexpr double kZHi = 20.0, kZLo = -60.0;

// Factors per log1p: K·sp(zmax) <= 85 keeps the product of K factors 1 + x <= 1 + e^zmax
// under e^85 (float overflows past e^88.7). Every factor saves a log1p, so K is as large as
// that allows (13 at zmax = 6.5, 64 at most) rather than a power of two.
inline int product_length(double zmax) {
  const double sp = zmax > 0 ? zmax + std::log1p(std::exp(-zmax)) : std::log1p(std::exp(zmax));
  return static_cast<int>(std::min(64.0, std::max(1.0, std::floor(85.0 / sp))));
}

// Scratch memory from c10's CPU allocator rather than std::vector, so that
// profilers (and lgans-bench's peak-memory column) see these temporaries.
template <typename T>
struct Scratch {
  c10::DataPtr mem;
  T* p;
  explicit Scratch(int64_t n, T fill = T(0))
      : mem(c10::GetCPUAllocator()->allocate(std::max<int64_t>(n, 1) * sizeof(T))), p(static_cast<T*>(mem.get())) {
    std::fill(p, p + n, fill);
  }
  T& operator[](int64_t i) { return p[i]; }
  T* data() { return p; }
};

// Per column tile: c_t = max F (NaN if the tile has a NaN), min F, and a_j = e^{F_j - c_t}.
inline void tile_scale(const float* F, int64_t m, double* fmax, double* fmin, float* a) {
  const int64_t ntile = (m + kTile - 1) / kTile;
  for (int64_t t = 0; t < ntile; ++t) {
    const int64_t j0 = t * kTile, j1 = std::min(m, j0 + kTile);
    double hi = -INFINITY, lo = INFINITY;
    bool nan = false;
    for (int64_t j = j0; j < j1; ++j) {
      nan |= F[j] != F[j];
      hi = std::max(hi, double(F[j]));
      lo = std::min(lo, double(F[j]));
    }
    fmax[t] = nan ? NAN : hi;
    fmin[t] = lo;
    for (int64_t j = j0; j < j1; ++j) a[j] = float(std::exp(double(F[j]) - hi));
  }
}

// One row against columns [j0, j1) on the factorised path; returns the index
// where the scalar tail starts (the caller finishes it with the exact formula).
template <bool GRAD>
int64_t factorised_row(const float* a, int64_t j0, int64_t j1, float b, int K, float* cp, double& loss,
                       double& sig) {
  using V = Vectorized<float>;
  const V one(1.f), vb(b);
  V acc_loss(0.f), acc_sig(0.f);
  int64_t j = j0;
  while (j + V::size() <= j1) {
    V S(0.f);
    for (int k = 0; k < K && j + V::size() <= j1; ++k, j += V::size()) {
      const V x = V::loadu(a + j) * vb, p = x + one;
      S = at::vec::fmadd(S, p, x);  // S + x(1 + S) as (1 + x)S + x: one FMA on the carried chain
      if constexpr (GRAD) {
        const V sg = x / p;
        acc_sig = acc_sig + sg;
        (V::loadu(cp + j) + sg).store(cp + j);
      }
    }
    acc_loss = acc_loss + log1p_product(S);
  }
  loss += hsum(acc_loss);
  if constexpr (GRAD) sig += hsum(acc_sig);
  return j;
}

// Columns [j, j1) of one row by the scalar exact formula: the tails of both paths.
template <typename A, bool GRAD>
void exact_tail(const A* F, A ri, int64_t j, int64_t j1, A* cp, double& loss, double& sig) {
  for (; j < j1; ++j) {
    A sp, sg;
    math::softplus_sigmoid(F[j] - ri, sp, sg);
    loss += sp;
    if constexpr (GRAD) {
      sig += sg;
      cp[j] += sg;
    }
  }
}

// One row against columns [j0, j1) pair by pair (any dtype, any values).
template <typename A, bool GRAD>
void exact_row(const A* F, A ri_, int64_t j0, int64_t j1, A* cp, double& loss, double& sig) {
  using V = Vectorized<A>;
  const V ri(ri_);
  V acc_sp(A(0)), acc_sig(A(0));
  int64_t j = j0;
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
  loss += hsum(acc_sp);
  if constexpr (GRAD) sig += hsum(acc_sig);
  exact_tail<A, GRAD>(F, ri_, j, j1, cp, loss, sig);
}

template <typename A, bool GRAD>
double all_pairs_blocks(const A* R, const A* F, int64_t n, int64_t m, A* row, A* col) {
  constexpr bool kFactorise = std::is_same_v<A, float>;
  const int64_t ntile = (m + kTile - 1) / kTile;
  Scratch<double> fmax(kFactorise ? ntile : 0), fmin(kFactorise ? ntile : 0);
  Scratch<float> a(kFactorise ? m : 0);
  if constexpr (kFactorise) tile_scale(F, m, fmax.data(), fmin.data(), a.data());
  const int64_t nblk = std::min<int64_t>(kMaxRowBlocks, (n + 31) / 32);
  const int64_t br = (n + nblk - 1) / nblk;
  Scratch<A> colpart(GRAD ? nblk * m : 0);
  Scratch<double> losspart(nblk);
  parallel_items(nblk, 1, [&](int64_t blk) {
    const int64_t i0 = blk * br, i1 = std::min(n, i0 + br);
    if (i0 >= i1) return;
    Scratch<double> rowsum(i1 - i0);
    double loss = 0.0;
    A* cp = GRAD ? colpart.data() + blk * m : nullptr;
    for (int64_t j0 = 0, t = 0; j0 < m; j0 += kTile, ++t) {
      const int64_t j1 = std::min(m, j0 + kTile);
      for (int64_t i = i0; i < i1; ++i) {
        double& sig = rowsum[i - i0];
        if constexpr (kFactorise) {
          const double zmax = fmax[t] - double(R[i]), zmin = fmin[t] - double(R[i]);
          if (zmax <= kZHi && zmin >= kZLo) {  // false for NaN and ±inf
            const float b = float(std::exp(fmax[t] - double(R[i])));
            const int64_t j = factorised_row<GRAD>(a.data(), j0, j1, b, product_length(zmax), cp, loss, sig);
            exact_tail<float, GRAD>(F, R[i], j, j1, cp, loss, sig);
            continue;
          }
        }
        exact_row<A, GRAD>(F, R[i], j0, j1, cp, loss, sig);
      }
    }
    losspart[blk] = loss;
    if constexpr (GRAD) {
      for (int64_t i = i0; i < i1; ++i) row[i] = static_cast<A>(rowsum[i - i0]);
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
  for (int64_t blk = 0; blk < nblk; ++blk) total += losspart[blk];
  return total;
}

template <typename T>
double all_pairs_impl(const void* rv, const void* fv, int64_t n, int64_t m, double s, void* rowv, void* colv) {
  using A = acc_t<T>;
  const T* r = static_cast<const T*>(rv);
  const T* f = static_cast<const T*>(fv);
  // z_ij = s f_j - s r_i; for s = ±1 this is exactly s (f_j - r_i).
  Scratch<A> R(n), F(m);
  for (int64_t i = 0; i < n; ++i) R[i] = A(s) * static_cast<A>(r[i]);
  for (int64_t j = 0; j < m; ++j) F[j] = A(s) * static_cast<A>(f[j]);
  if (rowv) {
    return all_pairs_blocks<A, true>(R.data(), F.data(), n, m, static_cast<A*>(rowv), static_cast<A*>(colv));
  }
  return all_pairs_blocks<A, false>(R.data(), F.data(), n, m, nullptr, nullptr);
}

}  // namespace CPU_CAPABILITY
}  // namespace cpu
}  // namespace lightning_gans
