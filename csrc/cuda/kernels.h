// Raw-pointer CUDA launchers (kernels.cu). Everything runs on the given stream
// and never synchronises: scalars the kernels need (batch means, incoming
// gradients) are read from device memory.
//
// Determinism: grids depend only on the sizes; every block writes its own
// partial sum and partials are reduced by one block in a fixed order (a
// fixed-order two-level reduction). No atomics.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace lightning_gans {
namespace cuda {

enum class DType { f32, f64, f16, bf16 };

// Number of level-1 blocks for n elements (each block covers kItems elements).
int64_t num_partials(int64_t n);

// Level 1. For block b: partials[2b] = sum sp(z), partials[2b+1] = sum σ(z)
// (0 unless want_sig), with z = a x + c y + b + shift_scale * shift[0]
// (y and shift may be null). With identity = true the summand is x itself.
void sp_partials(DType d, const void* x, const void* y, int64_t n, double a, double c, double b, const double* shift,
                 double shift_scale, bool want_sig, bool identity, double* partials, cudaStream_t stream);

// Level 2: res[0] = sum_k p[stride k], res[1] = sum_k p[stride k + 1] (if
// stride == 2), over k < count, in a fixed order, by one block.
void reduce(const double* p, int64_t count, int stride, double* res, cudaStream_t stream);

// out[0] = (T)(w0 * r0[0] + w1 * r1[0]); r1 may be null.
void write_loss(DType d, void* out, const double* r0, double w0, const double* r1, double w1, cudaStream_t stream);

// stats = [sum_r / n, sum_f / m, sa[1], sb[1]] for the RaSGAN backward.
void write_average_stats(double* stats, const double* sum_r, int64_t n, const double* sum_f, int64_t m,
                         const double* sa, const double* sb, cudaStream_t stream);

// σ_k = σ(a x_k + c y_k + b + shift_scale * shift[0]);
// out_x[k] = coef_x[0] σ_k + add_x[0], out_y[k] = coef_y[0] σ_k + add_y[0]
// (add_* may be null for 0; out_y null to skip).
void sig_affine(DType d, const void* x, const void* y, int64_t n, double a, double c, double b, const double* shift,
                double shift_scale, const double* coef_x, const double* add_x, void* out_x, const double* coef_y,
                const double* add_y, void* out_y, cudaStream_t stream);

// All pairs. scaled[k] = s * x[k] in the accumulation type (float, or double
// for f64) so half inputs are converted once.
void scale_to_acc(DType d, const void* x, int64_t n, double s, void* out, cudaStream_t stream);
// For each own element k: sums over other elements l of z = sgn (other[l] - own[k]):
// sp_out[k] = sum sp(z) (double, skipped when null) and sig_out[k] = sum σ(z)
// (accumulation type, skipped when null). One warp per own element.
void pair_strips(bool f64, const void* own, int64_t n_own, const void* other, int64_t n_other, double sgn,
                 double* sp_out, void* sig_out, cudaStream_t stream);

}  // namespace cuda
}  // namespace lightning_gans
