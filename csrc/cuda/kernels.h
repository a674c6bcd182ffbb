// Raw-pointer CUDA launchers. Everything runs on the given stream and never
// synchronises: scalars the kernels need (the upstream gradient, batch means,
// the RaSGAN statistics) are read from device memory.
//
// Determinism: grids depend only on the sizes (and dtype); every block writes
// its own partials and they are reduced in a fixed order. No atomics.
//
// Launches per op call (forward / backward):
//   softplus_mean, sgan_d, rel_paired   2 / 1   (partials, then loss)
//   rel_average                         3 / 1   (sums, means + sp/σ sums, loss + stats)
//   rel_all_pairs                       3 / 1   (prep, tiles, finalize)
// plus one copy per non-contiguous input.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

#include "../tile_math.h"

namespace lightning_gans {
namespace cuda {

enum class DType { f32, f64, f16, bf16 };

// ---------------------------------------------------------------- elementwise
// A segment of an elementwise op: z_k = a x_k + c y_k + b (y may be null).
struct Seg {
  const void* x = nullptr;
  const void* y = nullptr;
  int64_t n = 0;
  double a = 1.0, c = 0.0, b = 0.0;
  // b += shift_coef * sum of the level-1 sum partials of segment shift_src (rel_average's means).
  int shift_src = -1;
  double shift_coef = 0.0;
};

enum class Reduce { sum, sp, sp_sig };

// Level-1 blocks for segments of n0 + n1 elements (depends only on sizes and dtype).
int64_t reduce_blocks(DType d, int64_t n_total);

// Level 1: partials[(2 s + q) G + block] for segment s < nseg, q = 0: Σ sp(z)
// (or Σ x with Reduce::sum), q = 1: Σ σ(z) (Reduce::sp_sig only). 4 G doubles.
// shift_partials: the partials of an earlier Reduce::sum call with the same G (or null).
void reduce_level1(DType d, Reduce kind, const Seg* segs, int nseg, int64_t G, const double* shift_partials,
                   double* partials, cudaStream_t stream);

// Level 2, one block: S_q = fixed-order Σ_block partials[q G + block];
// loss[0] = (T)(Σ_q w[q] S_q). With stats (rel_average): stats = [mean_0, mean_1, S_1, S_3],
// mean_s = (Σ shift_partials of segment s) / n_s.
struct Finish {
  double w[4] = {0, 0, 0, 0};
  const double* mean_partials = nullptr;
  double n0 = 1, n1 = 1;
  double* stats = nullptr;
};
void reduce_level2(DType d, const double* partials, int64_t G, const Finish& f, void* loss, cudaStream_t stream);

// Backward of one or two segments, one launch:
//   out[k] = coef · grad · (σ(a x_k + c y_k + b') + add),  out_neg[k] = -out[k] (out_neg may be null),
// b' = b + b_coef · stats[b_stat], add = add_coef · stats[add_stat] (stats indices -1: unused).
struct BwdSeg {
  const void* x = nullptr;
  const void* y = nullptr;
  int64_t n = 0;
  double a = 1.0, c = 0.0, b = 0.0, coef = 1.0;
  int b_stat = -1, add_stat = -1;
  double b_coef = 0.0, add_coef = 0.0;
  void* out = nullptr;
  void* out_neg = nullptr;
};
void sigmoid_backward(DType d, const BwdSeg* segs, int nseg, const void* grad, DType grad_dtype, const double* stats,
                      cudaStream_t stream);

// Backward from a saved unit-upstream gradient g (accumulation dtype):
// out[k] = coef · grad · g[k], out_neg[k] = -out[k] (may be null).
void saved_backward(DType d, const void* g, int64_t n, double coef, const void* grad, DType grad_dtype, void* out,
                    void* out_neg, cudaStream_t stream);

// ---------------------------------------------------------------- all pairs (tiles)
// rows r (nr <= mc) and columns c: R = row_scale r, F = col_scale c, z_ij = F_j - R_i.
// Scratch: R (nr), F (mc) in the accumulation type; fa (mc floats; float accumulation
// only); cmax, cmin (nct, accumulation type); rowpart (cb nr), colpart (rb mc) with grad;
// losspart (rb cb doubles). row_out (nr) / col_out (mc): accumulation type.
struct AllPairsArgs {
  const void* rows;
  const void* cols;
  int64_t nr, mc;
  double row_scale, col_scale;
  bool grad;
  void *R, *F, *cmax, *cmin, *rowpart, *colpart;
  float* fa;
  double* losspart;
  void *row_out, *col_out, *loss;
  double loss_scale;
};
tile::Plan all_pairs_plan(int64_t nr, int64_t mc);
void all_pairs_forward(DType d, const AllPairsArgs& args, cudaStream_t stream);
// dr = -k row, df = k col, k = grad · scale (grad read on the device); row/col in the accumulation type.
void all_pairs_backward(DType d, const void* grad, DType grad_dtype, double scale, const void* row, int64_t n,
                        const void* col, int64_t m, void* dr, void* df, cudaStream_t stream);

// ---------------------------------------------------------------- all pairs (legacy)
// The previous kernel (one warp per row, then one per column; every pair twice),
// kept for comparison on a GPU (LIGHTNING_GANS_CUDA_ALL_PAIRS=legacy).
namespace legacy {
void scale_to_acc(DType d, const void* x, int64_t n, double s, void* out, cudaStream_t stream);
void pair_strips(bool f64, const void* own, int64_t n_own, const void* other, int64_t n_other, double sgn,
                 double* sp_out, void* sig_out, cudaStream_t stream);
// loss[0] = (T)(scale · Σ_k p[k]) by one block.
void sum_to_loss(DType d, const double* p, int64_t count, double scale, void* loss, cudaStream_t stream);
}  // namespace legacy

}  // namespace cuda
}  // namespace lightning_gans
