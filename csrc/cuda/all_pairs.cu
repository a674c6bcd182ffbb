// All-pairs relativistic loss on CUDA, 2-D tiles (math and layout in
// ../tile_math.h, shared with the CPU emulation op). Three launches per
// forward: prep (scale to the accumulation type, per-chunk max/min and a_j),
// tiles (every pair once, into row, column and loss partials), finalize
// (fixed-order sums of the partials). No atomics: every partial has one writer.
#include <c10/cuda/CUDAException.h>

#include "../tile_math.h"
#include "common.cuh"

namespace lightning_gans {
namespace cuda {
namespace {

using namespace dev;
using tile::kChunk;
using tile::kColsPerLane;
using tile::kLanes;
using tile::kRowsPerWarp;
using tile::kRowTile;
using tile::kWarps;

static_assert(tile::kThreads == kThreads, "one block size for all kernels");

// Blocks [0, nct): one column chunk each (F, a_j, c_t = max F, min F);
// blocks after: 256 rows each (R).
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    prep_kernel(const T* rsrc, int64_t nr, double rscale, const T* csrc, int64_t mc, double cscale, int64_t nct, A* R,
                A* F, float* fa, A* cmaxv, A* cminv) {
  const int64_t bid = blockIdx.x;
  if (bid >= nct) {
    const int64_t i = (bid - nct) * kThreads + threadIdx.x;
    if (i < nr) R[i] = A(rscale) * static_cast<A>(to_acc(rsrc[i]));
    return;
  }
  const int64_t j = bid * kChunk + threadIdx.x;
  const bool valid = j < mc;
  const A f = valid ? A(cscale) * static_cast<A>(to_acc(csrc[j])) : A(0);
  if (valid) F[j] = f;
  if constexpr (std::is_same_v<A, float>) {
    // max/min are exact in any order, so this tree gives the emulation's values.
    __shared__ float hi[kThreads], lo[kThreads];
    __shared__ int nan[kThreads];
    hi[threadIdx.x] = valid ? f : -INFINITY;
    lo[threadIdx.x] = valid ? f : INFINITY;
    nan[threadIdx.x] = valid && f != f;
    __syncthreads();
    for (int w = kThreads / 2; w > 0; w >>= 1) {
      if (threadIdx.x < w) {
        hi[threadIdx.x] = fmaxf(hi[threadIdx.x], hi[threadIdx.x + w]);
        lo[threadIdx.x] = fminf(lo[threadIdx.x], lo[threadIdx.x + w]);
        nan[threadIdx.x] |= nan[threadIdx.x + w];
      }
      __syncthreads();
    }
    const float cmax = nan[0] ? NAN : hi[0];
    if (threadIdx.x == 0) {
      cmaxv[bid] = cmax;
      cminv[bid] = lo[0];
    }
    if (valid) fa[j] = tile::col_factor(f, cmax);
  }
}

// 3 blocks (24 warps) per SM: enough warps to hide the FMA chains' latency,
// and it caps registers at 85 per thread (ptxas -v: no spills).
template <typename A, bool GRAD>
__global__ void __launch_bounds__(kThreads, 3)
    tiles_kernel(const A* R, const A* F, const float* fa, const A* cmaxv, const A* cminv, tile::Plan P, A* rowpart,
                 A* colpart, double* losspart) {
  constexpr bool kFloat = std::is_same_v<A, float>;
  // rowbuf (per row tile) and colbuf (per chunk, after a __syncthreads) share memory:
  // with float64 both would not fit in 48 KB of static shared memory.
  // Rows padded by 16 bytes (36 floats): 16-byte aligned, so a row's 16 lanes are
  // read with 4 LDS.128 (not 16 LDS), and the 8 threads of a quarter warp hit
  // distinct banks.
  constexpr int kRowStride = kLanes + 16 / int(sizeof(A));
  constexpr size_t kRowBytes = sizeof(A) * kRowTile * kRowStride;
  constexpr size_t kColBytes = sizeof(double) * kWarps * kChunk;
  __shared__ __align__(16) unsigned char smem[kRowBytes > kColBytes ? kRowBytes : kColBytes];
  auto rowbuf = reinterpret_cast<A(*)[kRowStride]>(smem);
  auto colbuf = reinterpret_cast<double(*)[kChunk]>(smem);
  __shared__ double red[kThreads];
  const int lane = threadIdx.x % kLanes, warp = threadIdx.x / kLanes;
  const int64_t bid = blockIdx.x, rbi = bid / P.cb, cbi = bid % P.cb;
  const int64_t u0 = rbi * P.rtpb, u1 = tile::imin(P.nrt, u0 + P.rtpb);
  const int64_t t0 = cbi * P.ctpb, t1 = tile::imin(P.nct, t0 + P.ctpb);
  __shared__ float rowb[kWarps][kRowsPerWarp];
  __shared__ A rowr[kWarps][kRowsPerWarp];
  double lossd = 0.0;
  tile::Chain chain;  // one running product per thread for the whole block
  for (int64_t t = t0; t < t1; ++t) {
    // Column c of the lane exists iff lane + 32c < ncols: one 32-bit compare each.
    // Only a_j is loaded here; F (for exact rows only) when a row tile has some.
    const int ncols = static_cast<int>(tile::imin(P.mc - t * kChunk, kChunk));
    const float* fat = kFloat ? fa + t * kChunk + lane : nullptr;  // fa: float accumulation only
    float a[kColsPerLane];
#pragma unroll
    for (int c = 0; c < kColsPerLane; ++c) a[c] = (kFloat && lane + kLanes * c < ncols) ? fat[kLanes * c] : 0.0f;
    const float cmax = kFloat ? float(cmaxv[t]) : 0.0f, cmin = kFloat ? float(cminv[t]) : 0.0f;
    double cold[kColsPerLane];
#pragma unroll
    for (int c = 0; c < kColsPerLane; ++c) cold[c] = 0.0;
    for (int64_t u = u0; u < u1; ++u) {
      A colf[kColsPerLane];
#pragma unroll
      for (int c = 0; c < kColsPerLane; ++c) colf[c] = A(0);
      A lossf = A(0);
      // Lanes 0..15 set up the warp's 16 rows: b through shared memory (one
      // broadcast load per row), the path as ballot bit masks. A ballot is
      // warp-uniform and the compiler knows it: each row's path test is one LOP3
      // and a branch, without the convergence barrier (BSSY/BSYNC) that a mode
      // read from shared memory costs.
      int my_mode = tile::kSkip;
      if (lane < kRowsPerWarp) {
        const int64_t i = tile::row_of(u, warp, lane);
        tile::RowParams q{0.0f, tile::kSkip};
        A r = A(0);
        if (i < P.nr) {
          r = R[i];
          if constexpr (kFloat) q = tile::row_params(r, cmax, cmin);
          else q.mode = tile::kExact;
        }
        rowb[warp][lane] = q.b;
        rowr[warp][lane] = r;
        my_mode = q.mode;
      }
      const unsigned p_rows = __ballot_sync(0xffffffffu, my_mode == tile::kFactP);  // bit k: row k
      const unsigned exact_rows = __ballot_sync(0xffffffffu, my_mode == tile::kExact);
      __syncwarp();
      // All rows unrolled (shared-memory addresses become constants, no loop
      // counter), each on a factorised path: p form or S form, one uniform test
      // per row. Exact and padded rows have b = 0 and take the S form, where x = 0
      // changes nothing (a is finite, see col_factor). Exact rows (rare) then run
      // again in one rolled loop, so that the long exact code is inlined once.
      // The emulation keeps this order.
#pragma unroll
      for (int k = 0; k < kRowsPerWarp; ++k) {
        A rho = A(0);
        if constexpr (kFloat) {
          const int mode = p_rows >> k & 1u ? tile::kFactP : tile::kFactS;
          tile::fact_row<GRAD>(mode, rowb[warp][k], a, chain, rho, colf);
        }
        if (GRAD) rowbuf[warp + kWarps * k][lane] = rho;
      }
      if (exact_rows != 0) {  // warp-uniform
        A f[kColsPerLane];
        bool valid[kColsPerLane];
#pragma unroll
        for (int c = 0; c < kColsPerLane; ++c) {
          valid[c] = lane + kLanes * c < ncols;
          f[c] = valid[c] ? F[tile::col_of(t, lane, c)] : A(0);
        }
#pragma unroll 1
        for (unsigned m = exact_rows; m != 0; m &= m - 1) {
          const int k = __ffs(m) - 1;
          A rho = A(0);
          lossf += tile::exact_row<A, GRAD>(f, valid, rowr[warp][k], rho, colf);
          if (GRAD) rowbuf[warp + kWarps * k][lane] = rho;
        }
      }
      __syncwarp();  // rowb, rowr are rewritten for the next row tile
      lossd += double(lossf);
      if constexpr (kFloat) lossd += tile::drain_exponents(chain, __popc(p_rows), kRowsPerWarp);
      if (GRAD) {
#pragma unroll
        for (int c = 0; c < kColsPerLane; ++c) cold[c] += double(colf[c]);
        __syncthreads();
        {  // every thread: a part of one row's lanes, then xor shuffles
          const int rl = threadIdx.x / tile::kRowReducers, q = threadIdx.x % tile::kRowReducers;
          A s = tile::row_part(rowbuf[rl], q);
#pragma unroll
          for (int m = 1; m < tile::kRowReducers; m <<= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
          const int64_t i = u * kRowTile + rl;  // = row_of(u, w, k) for rl = w + kWarps k
          if (q == 0 && i < P.nr) {
            A* dst = rowpart + cbi * P.nr + i;  // this block's own partial: no other writer
            *dst = (t == t0) ? s : *dst + s;
          }
        }
        __syncthreads();
      }
    }
    if (GRAD) {
#pragma unroll
      for (int c = 0; c < kColsPerLane; ++c) colbuf[warp][lane + kLanes * c] = cold[c];
      __syncthreads();
      const int64_t j = t * kChunk + threadIdx.x;
      double s = 0.0;
      for (int w = 0; w < kWarps; ++w) s += colbuf[w][threadIdx.x];
      if (j < P.mc) colpart[rbi * P.mc + j] = static_cast<A>(s);
      __syncthreads();
    }
  }
  if constexpr (kFloat) lossd += tile::drain_log1p(chain);
  const double total = block_sum(lossd, red);
  if (threadIdx.x == 0) losspart[bid] = total;
}

// Blocks [0, nrb): row sums; [nrb, nrb + ncb): column sums; the last block: the loss.
template <typename T, typename A>
__global__ void __launch_bounds__(kThreads)
    finalize_kernel(const A* rowpart, const A* colpart, const double* losspart, tile::Plan P, int64_t nrb, int64_t ncb,
                    A* row_out, A* col_out, T* loss, double loss_scale) {
  __shared__ double red[kThreads];
  const int64_t bid = blockIdx.x;
  if (bid < nrb) {
    const int64_t i = bid * kThreads + threadIdx.x;
    if (i >= P.nr) return;
    double s = 0.0;
    for (int64_t k = 0; k < P.cb; ++k) s += double(rowpart[k * P.nr + i]);
    row_out[i] = static_cast<A>(s);
  } else if (bid < nrb + ncb) {
    const int64_t j = (bid - nrb) * kThreads + threadIdx.x;
    if (j >= P.mc) return;
    double s = 0.0;
    for (int64_t k = 0; k < P.rb; ++k) s += double(colpart[k * P.mc + j]);
    col_out[j] = static_cast<A>(s);
  } else {
    const double total = fixed_sum(losspart, P.rb * P.cb, red);
    if (threadIdx.x == 0) *loss = from_acc<T>(total * loss_scale);
  }
}

template <typename T, typename A>
__global__ void backward_kernel(const void* grad, DType gd, double scale, const A* row, int64_t n, const A* col,
                                int64_t m, T* dr, T* df) {
  const A k = static_cast<A>(read_scalar(grad, gd) * scale);
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n + m; e += int64_t(gridDim.x) * blockDim.x) {
    if (e < n) dr[e] = from_acc<T>(-k * row[e]);
    else df[e - n] = from_acc<T>(k * col[e - n]);
  }
}

}  // namespace

tile::Plan all_pairs_plan(int64_t nr, int64_t mc) { return tile::make_plan(nr, mc); }

void all_pairs_forward(DType d, const AllPairsArgs& g, cudaStream_t stream) {
  const tile::Plan P = tile::make_plan(g.nr, g.mc);
  const int64_t nrows_blocks = tile::cdiv(g.nr, kThreads);
  LG_CUDA_DISPATCH(d, {
    using A = acc_t<T>;
    prep_kernel<T, A><<<static_cast<unsigned>(P.nct + nrows_blocks), kThreads, 0, stream>>>(
        static_cast<const T*>(g.rows), g.nr, g.row_scale, static_cast<const T*>(g.cols), g.mc, g.col_scale, P.nct,
        static_cast<A*>(g.R), static_cast<A*>(g.F), g.fa, static_cast<A*>(g.cmax), static_cast<A*>(g.cmin));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const auto blocks = static_cast<unsigned>(P.rb * P.cb);
    if (g.grad) {
      tiles_kernel<A, true><<<blocks, kThreads, 0, stream>>>(
          static_cast<const A*>(g.R), static_cast<const A*>(g.F), g.fa, static_cast<const A*>(g.cmax),
          static_cast<const A*>(g.cmin), P, static_cast<A*>(g.rowpart), static_cast<A*>(g.colpart), g.losspart);
    } else {
      tiles_kernel<A, false><<<blocks, kThreads, 0, stream>>>(
          static_cast<const A*>(g.R), static_cast<const A*>(g.F), g.fa, static_cast<const A*>(g.cmax),
          static_cast<const A*>(g.cmin), P, nullptr, nullptr, g.losspart);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    const int64_t nrb = g.grad ? tile::cdiv(g.nr, kThreads) : 0, ncb = g.grad ? tile::cdiv(g.mc, kThreads) : 0;
    finalize_kernel<T, A><<<static_cast<unsigned>(nrb + ncb + 1), kThreads, 0, stream>>>(
        static_cast<const A*>(g.rowpart), static_cast<const A*>(g.colpart), g.losspart, P, nrb, ncb,
        static_cast<A*>(g.row_out), static_cast<A*>(g.col_out), static_cast<T*>(g.loss), g.loss_scale);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void all_pairs_backward(DType d, const void* grad, DType gd, double scale, const void* row, int64_t n, const void* col,
                        int64_t m, void* dr, void* df, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(tile::imin(tile::cdiv(n + m, kThreads), 4096));
  LG_CUDA_DISPATCH(d, {
    using A = acc_t<T>;
    backward_kernel<T, A><<<blocks, kThreads, 0, stream>>>(grad, gd, scale, static_cast<const A*>(row), n,
                                                           static_cast<const A*>(col), m, static_cast<T*>(dr),
                                                           static_cast<T*>(df));
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace lightning_gans
