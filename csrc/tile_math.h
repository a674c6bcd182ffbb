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
// Along a lane's pairs a running product p = Π(1+x) gives Σ sp = log p, kept
// below 2^126 by moving its binary exponent into an integer after every row
// (Chain, renorm_*: exact, branch-free), so the only log is one log1p per
// thread. The 8 sigmoids σ_c = x_c/(1+x_c) of a row share one reciprocal per
// 4 or 8 columns (Montgomery's batch inversion): the prefix products p_c are
// already there, inv = 1/p_last, and walking back 1/(1+x_c) = p_{c-1}·inv_c,
// inv_{c-1} = inv_c·(1+x_c) = fma(inv_c, x_c, inv_c). Two forms of the product:
// p <- fma(p, x, p) (p form, z_max > 2) or S = p - 1 <- S + x(1+S) (S form,
// z_max <= 2: keeps tiny x that 1 + x would round away). Per pair: FMUL x,
// FFMA p (or FFMA S + FADD p), FMUL y, FFMA inv, FFMA row, FFMA col = 6 (7)
// instructions; per row of 8 pairs 2 (1) MUFU.RCP (see docs/cuda.md for the SASS).
// The range check z in [kZLo, kZHi] over the (row, chunk) keeps a_j, b_i, x
// and the products in range. NaN and ±inf fail the check and take the exact
// per-pair path (gan_math.h), as does float64 always.
#pragma once
#include <cstdint>
#include <cstring>  // std::memcpy: float_bits / bits_float on the host

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
constexpr double kZHi = 20.0, kZLo = -60.0;
// Rows with z_max <= kZPrecise take the S form (see Chain), the others the p form.
constexpr double kZPrecise = 2.0;
// Grid sizing: at most kMaxRowBlocks row blocks (column partials cost kMaxRowBlocks·M
// floats) and about kTargetBlocks blocks in all (several waves on 132 SMs).
constexpr int64_t kMaxRowBlocks = 32, kTargetBlocks = 2048;

enum Mode : int { kSkip = 0, kExact = 1, kFactS = 2, kFactP = 3 };

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

// Reciprocal of p in [2^-112, 2^120]: one MUFU.RCP on the device (relative error
// ~1 ulp; FTZ is harmless since 1/p is normal), IEEE division on the host.
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

// Path of one (row, chunk) for float accumulation and b = e^{c_t - R_i}. Run
// once per row and chunk by 16 lanes of a warp, so it is kept cheap: z_max is
// exact in double (a difference of two floats) and e^{z_max} = e^{hi} (1 + lo)
// with hi + lo = z_max, i.e. one float exp (relative error ~2 ulp on the
// device, so x = a_j b is accurate to ~3 ulp). Comparisons are false for NaN,
// and ±inf gives z_max = ±inf or z_min = -inf.
struct RowParams {
  float b;
  int mode;
};

LG_HD RowParams row_params(float r, float cmax, float cmin) {
  const double zmax = double(cmax) - double(r), zmin = double(cmin) - double(r);
  RowParams q{0.0f, kExact};
  if (!(zmax <= kZHi && zmin >= kZLo)) return q;
  const float hi = static_cast<float>(zmax), lo = static_cast<float>(zmax - double(hi));
  const float e = math::lg_exp(hi);
  q.b = fmaf(e, lo, e);
  q.mode = zmax <= kZPrecise ? kFactS : kFactP;
  return q;
}

// a_j = e^{F_j - c_t} (<= 1) in double, rounded to float; 0 when c_t is NaN or
// ±inf. Every row of such a chunk is exact, but all rows also run through the
// factorised code with b = 0 (tiles_kernel), and x = a b must then be 0, not NaN.
LG_HD float col_factor(float f, double cmax) {
  return cmax - cmax == 0.0 ? static_cast<float>(lg_exp_d(double(f) - cmax)) : 0.0f;
}

LG_HD int float_bits(float v) {
#if defined(__CUDA_ARCH__)
  return __float_as_int(v);
#else
  int i;
  std::memcpy(&i, &v, sizeof i);
  return i;
#endif
}

LG_HD float bits_float(int i) {
#if defined(__CUDA_ARCH__)
  return __int_as_float(i);
#else
  float v;
  std::memcpy(&v, &i, sizeof v);
  return v;
#endif
}

// The running product of one lane, S = Π(1 + x) - 1 and p = 1 + S, times 2^-E:
// Σ sp over the lane's factorised pairs so far = E ln 2 + log1p(S). It runs
// across columns, rows and chunks, and after every row renorm moves p's binary
// exponent into E (exact: a power-of-2 scaling), so every row starts from
// p in [1, 2). That replaces a per-row budget test and branch, and a log per
// e^80 of product, with 4-6 branch-free instructions per row; the only log is
// log1p(S) once per thread at the end (drain_log1p). E is biased: a row adds
// 127 + e, and drain_exponents() removes the bias once per row tile.
//
// Two forms of the row (mode from row_params, warp-uniform):
// * S form (z_max <= kZPrecise, or b = 0): S <- S + x(1 + S), p = S + 1, two
//   instructions per pair; S keeps full relative precision for tiny x (1 + x
//   would round x away), e.g. when every z << 0.
// * p form (kZPrecise < z_max <= kZHi): p <- p(1 + x), one FFMA per pair. Its
//   rounding costs <= 2^-24 absolute in log p per pair, as the S form's once S
//   >= 1; the row's pairs add >= sp(kZPrecise) = 2.13 to the loss, so it is
//   relatively small (and x = a_j b itself carries ~3 ulp). p grows by up to
//   (1 + e^20)^4 = 2^115.4 per 4 columns, so after column 4 p is scaled by
//   kMidScale = 2^-112 (exact): p stays within [2^-112, 2^120], a normal float
//   with a normal reciprocal; each half takes its own reciprocal.
constexpr int kBiasS = 127, kBiasP = 127 - 112;
constexpr float kMidScale = 0x1p-112f;
constexpr double kLn2 = 0.69314718055994530942;

struct Chain {
  float S = 0.0f, p = 1.0f;
  int E = 0;  // Σ (127 + e) over the rows of the current row tile
};

// S form: p in [2^e, 2^(e+1)) (p >= 1, or just below 1 after a rounding: e =
// -1, equally exact). S' = (1 + S) 2^-e - 1 in one fma: S itself (full relative
// precision for tiny S) when e = 0, p' - 1 rounded once otherwise.
LG_HD void renorm_s(Chain& ch) {
  const int pb = float_bits(ch.p);
  ch.E += static_cast<int>(static_cast<unsigned>(pb) >> 23);  // p > 0: the sign bit is 0
  const float sc = bits_float(0x7f000000 - (pb & 0x7f800000));  // 2^-e
  ch.S = fmaf(ch.S, sc, sc - 1.0f);
  ch.p = ch.S + 1.0f;
}

// p form: p' = p 2^-e in [1, 2) by integer arithmetic on the exponent field
// (p in [2^-112, 2^120] is normal), S = p' - 1 exactly.
LG_HD void renorm_p(Chain& ch, float p) {
  const int pb = float_bits(p);
  ch.E += static_cast<int>(static_cast<unsigned>(pb) >> 23);
  ch.p = bits_float(pb - (pb & 0x7f800000) + 0x3f800000);
  ch.S = ch.p - 1.0f;
}

// E ln 2 for the row tile, in double, given how many of its rows took the p
// form (kRowsPerWarp rows in all); E restarts, so it never overflows.
LG_HD double drain_exponents(Chain& ch, int rows_p, int rows) {
  const double l = double(ch.E - kBiasS * (rows - rows_p) - kBiasP * rows_p) * kLn2;
  ch.E = 0;
  return l;
}

// log1p(S) (S in [0, 1)): once per thread, at the end of the block.
LG_HD double drain_log1p(const Chain& ch) { return double(log1pf(ch.S)); }

// Walks back over columns c1-1 .. c0 from inv = 1/p_{c1-1} (Montgomery's batch
// inversion): 1/(1 + x_c) = p_{c-1}/p_c, 1/p_{c-1} = inv_c (1 + x_c). Adds
// σ_c = x_c/(1 + x_c) to rho and col[c].
template <int C0, int C1>
LG_HD void walk_back(const float* x, const float* pprev, float inv, float& rho, float* col) {
LG_UNROLL
  for (int c = C1 - 1; c >= C0; --c) {
    const float y = pprev[c] * inv;  // 1 / (1 + x_c)
    rho = fmaf(x[c], y, rho);
    col[c] = fmaf(x[c], y, col[c]);
    if (c > C0) inv = fmaf(inv, x[c], inv);
  }
}

// One row of the lane's kColsPerLane columns, continuing the chain; with GRAD
// adds σ to rho (row) and col[c]. Padded columns have a = 0, hence x = 0: they
// leave the product, rho and col unchanged; so do rows with b = 0 (exact and
// padded rows, S form). Per pair: FMUL x, FFMA p (p form) or FFMA S + FADD p
// (S form), FMUL y, FFMA inv, FFMA row, FFMA col.
template <bool GRAD>
LG_HD void fact_row(int mode, float b, const float* a, Chain& ch, float& rho, float* col) {
  constexpr int K = kColsPerLane, H = K / 2;
  float x[K], pprev[K];
  if (mode == kFactP) {
    float p = ch.p, phalf = 1.0f;
LG_UNROLL
    for (int c = 0; c < K; ++c) {
      if (c == H) {
        phalf = p;
        p *= kMidScale;
      }
      x[c] = a[c] * b;
      pprev[c] = p;
      p = fmaf(p, x[c], p);  // p (1 + x)
    }
    renorm_p(ch, p);  // off the critical path: the walks below use the unscaled p
    if (GRAD) {
      walk_back<H, K>(x, pprev, fast_rcp(p), rho, col);
      walk_back<0, H>(x, pprev, fast_rcp(phalf), rho, col);
    }
    return;
  }
  float S = ch.S, p = ch.p;
LG_UNROLL
  for (int c = 0; c < K; ++c) {
    x[c] = a[c] * b;
    pprev[c] = p;
    S = fmaf(x[c], p, S);  // S + x(1 + S)
    p = S + 1.0f;
  }
  ch.S = S;
  ch.p = p;
  renorm_s(ch);
  if (GRAD) walk_back<0, K>(x, pprev, fast_rcp(p), rho, col);
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
  const A* part = lanes + q * w;
  A s = part[0];  // not 0 + part[0]: one FADD fewer, the same value
LG_UNROLL
  for (int l = 1; l < w; ++l) s += part[l];
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
