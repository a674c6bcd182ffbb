// Per-tile math of the CUDA all-pairs kernel (cuda/all_pairs.cu), written as
// __host__ __device__ functions so that the CPU emulation (tile_emulation.cpp,
// the op lightning_gans::all_pairs_tile_emulate) runs the very same code in the
// kernel's order and can be tested without a GPU.
//
// Problem: for rows R_i (i < nr) and columns F_j (j < mc), z_ij = F_j - R_i,
//   loss = Σ_ij sp(z_ij),  row_i = Σ_j σ(z_ij),  col_j = Σ_i σ(z_ij).
// Layout: the columns are cut into chunks of kChunk = 256 (lane l of a warp
// owns columns l + 32c, c < kColsPerLane = 8, so loads coalesce); the rows
// into row tiles of kRowTile = 128 (warp w of 8 owns rows w + 8k, k < 16).
// A block owns a rectangle of row tiles x chunks (Plan), visits every pair once
// and adds σ to both its row and its column sum.
//
// Factorised path (float accumulation; the same algebra as the CPU kernel,
// cpu/all_pairs_impl.h): per chunk t, c_t = max F, a_j = e^{F_j - c_t} <= 1; per
// (row, chunk) b_i = e^{c_t - R_i}; then x = e^{z} = a_j b_i (one multiply).
// Along a lane's pairs the running product is kept as S = Π(1+x) - 1 through
// S <- S + x(1+S) (one FADD + one FFMA; S keeps full relative precision for
// tiny x, where 1 + x would round x away), so Σ sp = log1p(S) costs one log per
// e^80 of product (Chain: across rows and chunks too). The K sigmoids σ_c = x_c/(1+x_c)
// share ONE reciprocal (Montgomery's batch inversion): the prefix products
// p_c = 1 + S_c are already there, inv = 1/p_{K-1}, and walking back
// 1/(1+x_c) = p_{c-1}·inv_c, inv_{c-1} = inv_c·(1+x_c) = fma(inv_c, x_c, inv_c).
// Per pair: FMUL x, FADD p, FFMA S, FMUL y, FFMA inv, FFMA row, FFMA col = 7
// instructions and no special-function op (see docs/cuda.md for the SASS).
// The range check z in [kZLo, kZHi] over the (row, chunk) keeps a_j, b_i, x,
// 1/p normal floats and bounds a K-column group by e^80 < FLT_MAX; K = 8 for
// z_max <= 10 and K = 4 up to 20. NaN and ±inf fail the check and take the exact
// per-pair path (gan_math.h), as does float64 always.
#pragma once
#include <cstdint>

#include "gan_math.h"

#if !defined(__CUDACC__)
#include <algorithm>
#include <cmath>
#endif

#if defined(__CUDACC__)
#define LG_UNROLL _Pragma("unroll")
#else
#define LG_UNROLL
#endif

namespace lightning_gans {
namespace tile {

constexpr int kWarps = 8, kLanes = 32, kThreads = kWarps * kLanes;
constexpr int kColsPerLane = 8, kChunk = kLanes * kColsPerLane;  // 256 columns per chunk
// 16 rows per warp and row tile: the per-row-tile work (row set-up, reductions)
// is spread over 16 x 8 pairs per lane.
constexpr int kRowsPerWarp = 16, kRowTile = kWarps * kRowsPerWarp;  // 128 rows per row tile
constexpr double kZHi = 20.0, kZLo = -60.0, kZHiK8 = 10.0;
// Grid sizing: at most kMaxRowBlocks row blocks (column partials cost kMaxRowBlocks·M
// floats) and about kTargetBlocks blocks in all (several waves on 132 SMs).
constexpr int64_t kMaxRowBlocks = 32, kTargetBlocks = 2048;

enum Mode : int { kSkip = 0, kExact = 1, kFactK8 = 2, kFactK4 = 3 };

LG_HD int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }
LG_HD int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
LG_HD int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }

// The grid depends only on (nr, mc): bitwise the same result on any GPU.
struct Plan {
  int64_t nr, mc;      // rows, columns (the caller makes nr <= mc)
  int64_t nrt, nct;    // row tiles, column chunks
  int64_t rtpb, ctpb;  // row tiles and chunks per block
  int64_t rb, cb;      // row blocks, column blocks; blocks = rb * cb
};

LG_HD Plan make_plan(int64_t nr, int64_t mc) {
  Plan p;
  p.nr = nr;
  p.mc = mc;
  p.nrt = cdiv(nr, kRowTile);
  p.nct = cdiv(mc, kChunk);
  p.rtpb = cdiv(p.nrt, imin(p.nrt, kMaxRowBlocks));
  p.rb = cdiv(p.nrt, p.rtpb);
  const int64_t want_cb = imin(p.nct, imax(1, cdiv(kTargetBlocks, p.rb)));
  p.ctpb = cdiv(p.nct, want_cb);
  p.cb = cdiv(p.nct, p.ctpb);
  return p;
}

LG_HD int64_t col_of(int64_t chunk, int lane, int c) { return chunk * kChunk + lane + kLanes * c; }
LG_HD int64_t row_of(int64_t tile, int warp, int k) { return tile * kRowTile + warp + kWarps * k; }

// Reciprocal of p >= 1 (p <= e^80): one MUFU.RCP on the device (relative error
// ~1 ulp; FTZ is harmless since 1/p >= e^-80 is normal), IEEE division on the host.
LG_HD float fast_rcp(float p) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(p));
  return r;
#else
  return 1.0f / p;
#endif
}

LG_HD double lg_exp_d(double x) {
#if defined(__CUDA_ARCH__)
  return exp(x);
#else
  return std::exp(x);
#endif
}

// Path of one (row, chunk) for float accumulation, b = e^{c_t - R_i} and h, an
// upper bound on log Π(1 + x) over one group of K columns (K sp(z_max), with
// sp(z) <= max(z, 0) + min(ln 2, e^z)). Run once per row and chunk by 8 lanes
// of a warp, so it is kept cheap: z_max is exact in double (a difference of two
// floats) and e^{z_max} = e^{hi} (1 + lo) with hi + lo = z_max, i.e. one float exp
// (relative error ~2 ulp on the device, so x = a_j b is accurate to ~3 ulp).
// Comparisons are false for NaN, and ±inf gives z_max = ±inf or z_min = -inf.
struct RowParams {
  float b, h;
  int mode;
};

LG_HD RowParams row_params(float r, float cmax, float cmin) {
  const double zmax = double(cmax) - double(r), zmin = double(cmin) - double(r);
  RowParams q{0.0f, 0.0f, kExact};
  if (!(zmax <= kZHi && zmin >= kZLo)) return q;
  const float hi = static_cast<float>(zmax), lo = static_cast<float>(zmax - double(hi));
  const float e = math::lg_exp(hi);
  q.b = fmaf(e, lo, e);
  q.mode = zmax <= kZHiK8 ? kFactK8 : kFactK4;
  const float ln2 = 0.693147182f;  // rounded up
  const float sp_bound = hi > 0.0f ? hi + ln2 : (q.b < ln2 ? q.b : ln2);
  q.h = (q.mode == kFactK8 ? 8.0f : 4.0f) * sp_bound * 1.0001f;  // margin for the float rounding
  return q;
}

// a_j = e^{F_j - c_t} (<= 1) in double, rounded to float.
LG_HD float col_factor(float f, double cmax) { return static_cast<float>(lg_exp_d(double(f) - cmax)); }

// The running product of one lane, S = Π(1 + x) - 1 and p = 1 + S over every
// factorised pair since the last flush. It runs across columns, rows and
// chunks (Σ sp over any set of pairs is the log of their product), so the log
// is paid once per `kBudget` worth of log Π: flush() adds log1p(S) to the
// loss before a group whose bound h would take the product past e^kBudget
// (FLT_MAX = e^88.7, and 1/p must stay a normal float: e^-87.3).
constexpr float kBudget = 80.0f;

struct Chain {
  float S = 0.0f, p = 1.0f, used = 0.0f, loss = 0.0f;
};

// log2 of p >= 2 (one MUFU.LG2 on the device, absolute error ~2^-22, i.e. a
// relative error <= 2e-7 of log p >= ln 2), std::log2 on the host.
LG_HD float fast_log2(float p) {
#if defined(__CUDA_ARCH__)
  float r;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(p));  // p >= 2: FTZ changes nothing
  return r;
#else
  return std::log2(p);
#endif
}

// log1pf out of line: the rare branch of flush() (S < 1), kept out of the
// unrolled row code so that the compiler branches instead of computing both.
#if defined(__CUDACC__)
static __host__ __device__ __noinline__  // static: one copy per translation unit, no ODR clash
#else
inline
#endif
    float
    log1p_cold(float s) {
  return log1pf(s);
}

// Adds log Π(1 + x) = log1p(S) to the loss and restarts the product. Usually the
// product is large by then (the budget is full), and log p costs one MUFU; for
// S < 1 (p < 2) the accurate log1pf keeps the relative precision of tiny S.
LG_HD void flush(Chain& ch) {
  ch.loss += ch.S >= 1.0f ? fast_log2(ch.p) * 0.693147181f : log1p_cold(ch.S);
  ch.S = 0.0f;
  ch.p = 1.0f;
  ch.used = 0.0f;
}

LG_HD void reserve(Chain& ch, float h) {
  if (ch.used + h > kBudget) flush(ch);
  ch.used += h;
}

// K consecutive columns c0.. of one lane for one row on the factorised path,
// continuing the chain. With GRAD adds σ to rho (row) and col[c].
// Padded columns have a = 0, hence x = 0: they leave S, inv, rho, col unchanged.
template <int K, bool GRAD>
LG_HD void fact_group(const float* a, int c0, float b, Chain& ch, float& rho, float* col) {
  float x[K], pprev[K];
  float S = ch.S, p = ch.p;
LG_UNROLL
  for (int c = 0; c < K; ++c) {
    x[c] = a[c0 + c] * b;
    pprev[c] = p;
    S = fmaf(x[c], p, S);  // S + x(1 + S)
    p = S + 1.0f;
  }
  ch.S = S;
  ch.p = p;
  if (GRAD) {
    float inv = fast_rcp(p);  // 1 / p_{K-1}
LG_UNROLL
    for (int c = K - 1; c >= 0; --c) {
      const float y = pprev[c] * inv;  // p_{c-1} / p_c = 1 / (1 + x_c)
      rho = fmaf(x[c], y, rho);        // σ_c = x_c y
      col[c0 + c] = fmaf(x[c], y, col[c0 + c]);
      inv = fmaf(inv, x[c], inv);      // 1 / p_{c-1}
    }
  }
}

// The lane's kColsPerLane pairs of one row on the factorised path.
template <bool GRAD>
LG_HD void fact_row(const RowParams& q, const float* a, Chain& ch, float& rho, float* col) {
  reserve(ch, q.h);
  if (q.mode == kFactK8) {
    fact_group<8, GRAD>(a, 0, q.b, ch, rho, col);
    return;
  }
  fact_group<4, GRAD>(a, 0, q.b, ch, rho, col);
  reserve(ch, q.h);
  fact_group<4, GRAD>(a, 4, q.b, ch, rho, col);
}

// The lane's pairs of one row pair by pair (any values, float or double);
// columns with valid[c] false are padding. The kernel calls it from one
// rolled loop after the unrolled factorised rows, so it is inlined once.
template <typename A, bool GRAD>
LG_HD A exact_row(const A* f, const bool* valid, A r, A& rho, A* col) {
  A loss = A(0);
LG_UNROLL
  for (int c = 0; c < kColsPerLane; ++c) {
    if (!valid[c]) continue;
    A sp, sg;
    math::softplus_sigmoid(f[c] - r, sp, sg);
    loss += sp;
    if (GRAD) {
      rho += sg;
      col[c] += sg;
    }
  }
  return loss;
}

// Sum of one row's 32 lane partials, in the kernel's order: kRowReducers
// threads sum 32 / kRowReducers lanes each, then xor-shuffle steps 1, 2, ...
// (thread 0's order: (q0 + q1) for 2 reducers, ((q0 + q1) + (q2 + q3)) for 4).
constexpr int kRowReducers = kThreads / kRowTile;
static_assert(kRowReducers >= 1 && kLanes % kRowReducers == 0, "row reduction layout");
template <typename A>
LG_HD A row_part(const A* lanes, int q) {
  constexpr int w = kLanes / kRowReducers;
  A s = A(0);
  for (int l = q * w; l < (q + 1) * w; ++l) s += lanes[l];
  return s;
}

// Chunk statistics: NaN-aware max (NaN if any F is NaN) and min.
LG_HD void chunk_minmax_update(float f, float& hi, float& lo, bool& nan) {
  nan = nan || (f != f);
  hi = f > hi ? f : hi;
  lo = f < lo ? f : lo;
}

}  // namespace tile
}  // namespace lightning_gans
