// Raw-pointer CPU kernels, compiled once per CPU capability (kernels_default.cpp
// and, on x86-64, kernels_avx2.cpp and kernels_avx512.cpp) and picked at run
// time by the CPU's features, so one binary is fast on AVX2/AVX-512 machines
// and safe on older ones.
#pragma once
#include <cstdint>

namespace lightning_gans {
namespace cpu {

enum class DType { f32, f64, f16, bf16 };

struct Kernels {
  // out[0] = sum_k sp(z_k), out[1] = sum_k σ(z_k) (only if want_sig), where
  // z_k = a x_k + c y_k + b, and y may be null (then c is ignored).
  void (*sp_sum)(DType, const void* x, const void* y, int64_t n, double a, double c, double b, bool want_sig,
                 double out[2]);
  // σ_k = σ(a x_k + c y_k + b); out_x[k] = coef_x σ_k + add_x, and, when out_y
  // is not null, out_y[k] = coef_y σ_k + add_y. Outputs have the input dtype,
  // or the accumulation dtype when out_acc (a forward saving its gradient).
  // When sp_total is not null, also *sp_total = sum_k sp(z_k) (a forward that
  // computes its gradient in the same pass).
  void (*sig_affine)(DType, const void* x, const void* y, int64_t n, double a, double c, double b, double coef_x,
                     double add_x, void* out_x, double coef_y, double add_y, void* out_y, double* sp_total,
                     bool out_acc);
  // out_x[k] = kx g[k] and, when out_y is not null, out_y[k] = ky g[k], for g
  // in the accumulation dtype and outputs in the input dtype `d` (the backward
  // from a saved gradient).
  void (*scale)(DType d, const void* g, int64_t n, double kx, void* out_x, double ky, void* out_y);
  // All pairs z_ij = s (f_j - r_i): returns sum_ij sp(z_ij); when row/col are
  // not null also row[i] = sum_j σ(z_ij), col[j] = sum_i σ(z_ij), in the
  // accumulation dtype (double for f64, float otherwise).
  double (*all_pairs)(DType, const void* r, const void* f, int64_t n, int64_t m, double s, void* row, void* col);
  // sum_k x_k in double, in a fixed order (batch means of RaSGAN).
  double (*sum)(DType, const void* x, int64_t n);
};

const Kernels& kernels_default();
#if defined(__x86_64__) || defined(_M_X64)
const Kernels& kernels_avx2();
const Kernels& kernels_avx512();
#endif

// The best implementation this CPU supports (chosen once).
const Kernels& kernels();

}  // namespace cpu
}  // namespace lightning_gans
