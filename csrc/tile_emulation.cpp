// Host emulation of the CUDA all-pairs kernel (cuda/all_pairs.cu): the same
// __host__ __device__ tile math (tile_math.h), the same grid (Plan), and every
// accumulation in the kernel's order: per thread (warp w, lane l) the rows of
// a row tile in order, the per-row lane partials summed over lanes 0..31, the
// column partials over warps 0..7, the block's loss by the same shared-memory
// tree, then the fixed-order finalize. Device and host differ only inside
// expf/log1pf/exp and the approximate reciprocal (an ulp or so), so a GPU-free
// test of this op checks the algorithm, its ranges and its reduction order.
//
// lightning_gans::all_pairs_tile_emulate(real, fake, sign) -> (loss, row, col, paths):
// loss is the float64 mean (before the cast to the input dtype), row/col are
// the sums of σ per real / fake logit in the accumulation dtype, and paths
// counts the (row, chunk) pieces per path [exact, factorised S form, factorised
// p form], so that tests can tell which path a regime exercised.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/scalar_tensor.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <array>
#include <tuple>
#include <vector>

#include "checks.h"
#include "tile_math.h"

namespace lightning_gans {
namespace {

using namespace tile;

// The kernel's block_sum / fixed_sum (cuda/common.cuh) over kThreads slots.
double tree_sum(std::array<double, kThreads> buf) {
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    for (int t = 0; t < w; ++t) buf[t] += buf[t + w];
  }
  return buf[0];
}

double fixed_sum(const std::vector<double>& p) {
  std::array<double, kThreads> buf{};
  for (int t = 0; t < kThreads; ++t) {
    double s = 0.0;
    for (size_t k = t; k < p.size(); k += kThreads) s += p[k];
    buf[t] = s;
  }
  return tree_sum(buf);
}

template <typename A, bool GRAD>
double emulate(const std::vector<A>& R, const std::vector<A>& F, A* row_out, A* col_out, int64_t* paths) {
  constexpr bool kFloat = std::is_same_v<A, float>;
  const int64_t nr = R.size(), mc = F.size();
  const Plan P = make_plan(nr, mc);
  // prep_kernel
  std::vector<A> cmaxv(P.nct), cminv(P.nct);
  std::vector<float> fa(kFloat ? mc : 0);
  if constexpr (kFloat) {
    for (int64_t t = 0; t < P.nct; ++t) {
      float hi = -INFINITY, lo = INFINITY;
      bool nan = false;
      for (int64_t j = t * kChunk; j < imin(mc, (t + 1) * kChunk); ++j) chunk_minmax_update(F[j], hi, lo, nan);
      cmaxv[t] = nan ? NAN : hi;
      cminv[t] = lo;
      for (int64_t j = t * kChunk; j < imin(mc, (t + 1) * kChunk); ++j) fa[j] = col_factor(F[j], cmaxv[t]);
    }
  }
  // tiles_kernel, block by block (blocks are independent)
  std::vector<A> rowpart(GRAD ? P.cb * nr : 0), colpart(GRAD ? P.rb * mc : 0);
  std::vector<double> losspart(P.rb * P.cb);
  for (int64_t bid = 0; bid < P.rb * P.cb; ++bid) {
    const int64_t rbi = bid / P.cb, cbi = bid % P.cb;
    const int64_t u0 = rbi * P.rtpb, u1 = imin(P.nrt, u0 + P.rtpb), t0 = cbi * P.ctpb, t1 = imin(P.nct, t0 + P.ctpb);
    std::vector<Chain> chain(kThreads);
    std::array<double, kThreads> lossd{};
    for (int64_t t = t0; t < t1; ++t) {
      std::vector<std::array<double, kColsPerLane>> cold(kThreads, std::array<double, kColsPerLane>{});
      for (int64_t u = u0; u < u1; ++u) {
        std::vector<std::array<A, kLanes>> rowbuf(kRowTile);
        for (int w = 0; w < kWarps; ++w) {
          RowParams q[kRowsPerWarp];
          A r[kRowsPerWarp];
          for (int k = 0; k < kRowsPerWarp; ++k) {
            const int64_t i = row_of(u, w, k);
            q[k] = RowParams{0.0f, kSkip};
            r[k] = A(0);
            if (i < nr) {
              r[k] = R[i];
              if constexpr (kFloat) q[k] = row_params(r[k], cmaxv[t], cminv[t]);
              else q[k].mode = kExact;
              paths[q[k].mode - kExact] += 1;
            }
          }
          int rows_p = 0;  // the kernel's __popc of its p-form ballot
          for (int k = 0; k < kRowsPerWarp; ++k) rows_p += q[k].mode == kFactP;
          for (int lane = 0; lane < kLanes; ++lane) {
            const int tid = w * kLanes + lane;
            A f[kColsPerLane], colf[kColsPerLane];
            float a[kColsPerLane];
            bool valid[kColsPerLane];
            for (int c = 0; c < kColsPerLane; ++c) {
              const int64_t j = col_of(t, lane, c);
              valid[c] = j < mc;
              f[c] = valid[c] ? F[j] : A(0);
              a[c] = (kFloat && valid[c]) ? fa[j] : 0.0f;
              colf[c] = A(0);
            }
            A lossf = A(0);
            // Every row on a factorised path first (exact and padded rows with b = 0
            // on the S form: no change), then the exact rows.
            for (int k = 0; k < kRowsPerWarp; ++k) {
              A rho = A(0);
              if constexpr (kFloat) fact_row<GRAD>(q[k].mode == kFactP ? kFactP : kFactS, q[k].b, a, chain[tid], rho, colf);
              rowbuf[w + kWarps * k][lane] = rho;
            }
            for (int k = 0; k < kRowsPerWarp; ++k) {
              if (q[k].mode != kExact) continue;
              A rho = A(0);
              lossf += exact_row<A, GRAD>(f, valid, r[k], rho, colf);
              rowbuf[w + kWarps * k][lane] = rho;
            }
            lossd[tid] += double(lossf);
            if constexpr (kFloat) lossd[tid] += drain_exponents(chain[tid], rows_p, kRowsPerWarp);
            for (int c = 0; c < kColsPerLane; ++c) cold[tid][c] += double(colf[c]);
          }
        }
        if (GRAD) {
          for (int rl = 0; rl < kRowTile; ++rl) {
            A part[kRowReducers];  // the reducing threads' values through the xor-shuffle steps
            for (int q = 0; q < kRowReducers; ++q) part[q] = row_part(rowbuf[rl].data(), q);
            for (int m = 1; m < kRowReducers; m <<= 1) {
              A next[kRowReducers];
              for (int q = 0; q < kRowReducers; ++q) next[q] = part[q] + part[q ^ m];
              for (int q = 0; q < kRowReducers; ++q) part[q] = next[q];
            }
            const A s = part[0];
            const int64_t i = u * kRowTile + rl;
            if (i < nr) rowpart[cbi * nr + i] = (t == t0) ? s : rowpart[cbi * nr + i] + s;
          }
        }
      }
      if (GRAD) {
        for (int tid = 0; tid < kThreads; ++tid) {  // column tid of the chunk
          double s = 0.0;
          for (int w = 0; w < kWarps; ++w) s += cold[w * kLanes + tid % kLanes][tid / kLanes];
          const int64_t j = t * kChunk + tid;
          if (j < mc) colpart[rbi * mc + j] = static_cast<A>(s);
        }
      }
    }
    if constexpr (kFloat) {
      for (int tid = 0; tid < kThreads; ++tid) lossd[tid] += drain_log1p(chain[tid]);
    }
    losspart[bid] = tree_sum(lossd);
  }
  // finalize_kernel
  if (GRAD) {
    for (int64_t i = 0; i < nr; ++i) {
      double s = 0.0;
      for (int64_t k = 0; k < P.cb; ++k) s += double(rowpart[k * nr + i]);
      row_out[i] = static_cast<A>(s);
    }
    for (int64_t j = 0; j < mc; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < P.rb; ++k) s += double(colpart[k * mc + j]);
      col_out[j] = static_cast<A>(s);
    }
  }
  return fixed_sum(losspart);
}

template <typename A>
std::vector<A> scaled(const at::Tensor& x, double s) {
  const at::Tensor xa = x.to(std::is_same_v<A, double> ? at::kDouble : at::kFloat).contiguous();
  const A* p = xa.data_ptr<A>();
  std::vector<A> out(xa.numel());
  for (int64_t k = 0; k < xa.numel(); ++k) out[k] = A(s) * p[k];  // prep_kernel: A(scale) * A(x)
  return out;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> all_pairs_tile_emulate(const at::Tensor& real, const at::Tensor& fake,
                                                                      double sign) {
  check_pair(real, fake, false);
  TORCH_CHECK(real.device().is_cpu(), "all_pairs_tile_emulate runs on the CPU, got ", real.device());
  const int64_t n = real.numel(), m = fake.numel();
  const bool swap = n > m;  // as rel_all_pairs on CUDA: rows = the shorter side
  const at::ScalarType acc = acc_type(real.scalar_type());
  at::Tensor row = at::empty({n}, real.options().dtype(acc)), col = at::empty({m}, real.options().dtype(acc));
  at::Tensor paths = at::zeros({3}, real.options().dtype(at::kLong));
  double total;
  auto run = [&](auto zero) {
    using A = decltype(zero);
    const std::vector<A> R = scaled<A>(swap ? fake : real, swap ? -sign : sign);
    const std::vector<A> F = scaled<A>(swap ? real : fake, swap ? -sign : sign);
    A* rp = (swap ? col : row).data_ptr<A>();
    A* cp = (swap ? row : col).data_ptr<A>();
    total = emulate<A, true>(R, F, rp, cp, paths.data_ptr<int64_t>());
  };
  if (acc == at::kDouble) run(0.0);
  else run(0.0f);
  const double loss = total * (1.0 / (double(n) * double(m)));
  return {at::scalar_tensor(loss, real.options().dtype(at::kDouble)), row, col, paths};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lightning_gans, m) {
  m.def(
      "all_pairs_tile_emulate(Tensor real, Tensor fake, float sign) -> (Tensor loss, Tensor row, Tensor col, Tensor paths)");
}

TORCH_LIBRARY_IMPL(lightning_gans, CPU, m) { m.impl("all_pairs_tile_emulate", &all_pairs_tile_emulate); }

}  // namespace lightning_gans
