// CUDA implementations of the lightning_gans ops (same formulas as
// cpu/ops_cpu.cpp). Nothing here synchronises with the host: the incoming
// gradient and batch statistics stay on the device and kernels read them
// through pointers. Launches go on the current stream of the inputs' device.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mul.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "../all_pairs_backward.h"
#include "../checks.h"
#include "kernels.h"

namespace lightning_gans {
namespace {

using at::Tensor;
using cuda::DType;

DType dtype_of(const Tensor& t) { return dtype_tag<DType>(t); }

cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

const double* dptr(const Tensor& t) { return t.data_ptr<double>(); }

// Device-side [sum sp(z), sum σ(z)] (or [sum x, 0] with identity), two levels.
Tensor sums(const Tensor& x, const Tensor* y, double a, double c, double b, const double* shift, double shift_scale,
            bool want_sig, bool identity = false) {
  const int64_t n = x.numel(), np = cuda::num_partials(n);
  const auto dopt = x.options().dtype(at::kDouble);
  Tensor partials = at::empty({2 * np}, dopt), res = at::empty({2}, dopt);
  cuda::sp_partials(dtype_of(x), x.data_ptr(), y ? y->data_ptr() : nullptr, n, a, c, b, shift, shift_scale, want_sig,
                    identity, partials.data_ptr<double>(), stream());
  cuda::reduce(dptr(partials), np, 2, res.data_ptr<double>(), stream());
  return res;
}

Tensor loss_from(const Tensor& like, const Tensor& r0, double w0, const Tensor* r1 = nullptr, double w1 = 0.0) {
  Tensor out = at::empty({}, like.options());
  cuda::write_loss(dtype_of(like), out.data_ptr(), dptr(r0), w0, r1 ? dptr(*r1) : nullptr, w1, stream());
  return out;
}

// grad (0-d, any float dtype) times k, as a device double.
Tensor gscale(const Tensor& grad, const Tensor& like, double k) {
  check_grad(grad, like);
  return grad.reshape({}).to(at::kDouble).mul(k).contiguous();
}

Tensor sig_affine(const Tensor& x, double a, const double* shift, double shift_scale, const Tensor& coef,
                  const Tensor* add) {
  Tensor out = at::empty_like(x);
  cuda::sig_affine(dtype_of(x), x.data_ptr(), nullptr, x.numel(), a, 0.0, 0.0, shift, shift_scale, dptr(coef),
                   add ? dptr(*add) : nullptr, out.data_ptr(), nullptr, nullptr, nullptr, stream());
  return out;
}

// A unit upstream gradient on the device (no host synchronisation).
Tensor unit(const Tensor& like) { return at::empty({}, like.options()).fill_(1.0); }

Tensor no_grad_like(const Tensor& x) { return at::empty({0}, x.options()); }

// The elementwise forwards return, with with_grad, the gradient for a unit
// upstream gradient (the schema of ops.cpp); the backward is grad_scale.
// On the GPU these ops are memory-bound, so the gradient is a second launch.
Tensor softplus_mean_backward(const Tensor& grad, const Tensor& x_, double sign) {
  check_logits(x_, "x");
  const c10::cuda::CUDAGuard guard(x_.device());
  const Tensor x = x_.contiguous();
  return sig_affine(x, sign, nullptr, 0.0, gscale(grad, x, sign / x.numel()), nullptr);
}

std::tuple<Tensor, Tensor> sgan_d_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  return {sig_affine(real, -1.0, nullptr, 0.0, gscale(grad, real, -1.0 / real.numel()), nullptr),
          sig_affine(fake, 1.0, nullptr, 0.0, gscale(grad, real, 1.0 / fake.numel()), nullptr)};
}

std::tuple<Tensor, Tensor> rel_paired_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                               double sign) {
  check_pair(real_, fake_, true);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const Tensor k = gscale(grad, real, sign / real.numel()), neg_k = gscale(grad, real, -sign / real.numel());
  Tensor gr = at::empty_like(real), gf = at::empty_like(fake);
  cuda::sig_affine(dtype_of(real), real.data_ptr(), fake.data_ptr(), real.numel(), -sign, sign, 0.0, nullptr, 0.0,
                   dptr(neg_k), nullptr, gr.data_ptr(), dptr(k), nullptr, gf.data_ptr(), stream());
  return {gr, gf};
}

std::tuple<Tensor, Tensor> softplus_mean(const Tensor& x_, double sign, bool with_grad) {
  check_logits(x_, "x");
  const c10::cuda::CUDAGuard guard(x_.device());
  const Tensor x = x_.contiguous();
  Tensor loss = loss_from(x, sums(x, nullptr, sign, 0.0, 0.0, nullptr, 0.0, false), 1.0 / x.numel());
  return {loss, with_grad ? softplus_mean_backward(unit(x), x, sign) : no_grad_like(x)};
}

std::tuple<Tensor, Tensor, Tensor> sgan_d(const Tensor& real_, const Tensor& fake_, bool with_grad) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const Tensor sr = sums(real, nullptr, -1.0, 0.0, 0.0, nullptr, 0.0, false);
  const Tensor sf = sums(fake, nullptr, 1.0, 0.0, 0.0, nullptr, 0.0, false);
  Tensor loss = loss_from(real, sr, 1.0 / real.numel(), &sf, 1.0 / fake.numel());
  if (!with_grad) return {loss, no_grad_like(real), no_grad_like(fake)};
  auto [dr, df] = sgan_d_backward(unit(real), real, fake);
  return {loss, dr, df};
}

std::tuple<Tensor, Tensor> rel_paired(const Tensor& real_, const Tensor& fake_, double sign, bool with_grad) {
  check_pair(real_, fake_, true);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  Tensor loss = loss_from(real, sums(real, &fake, -sign, sign, 0.0, nullptr, 0.0, false), 1.0 / real.numel());
  if (!with_grad) return {loss, no_grad_like(fake)};
  return {loss, std::get<1>(rel_paired_backward(unit(real), real, fake, sign))};
}

Tensor grad_scale(const Tensor& grad, const Tensor& dx, double alpha) {
  check_grad(grad, dx);
  const c10::cuda::CUDAGuard guard(dx.device());
  return alpha == 1.0 ? dx.mul(grad) : dx.mul(grad.mul(alpha));
}

std::tuple<Tensor, Tensor, Tensor> rel_all_pairs(const Tensor& real_, const Tensor& fake_, double sign,
                                                 bool with_grad) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const auto acc = real.options().dtype(acc_type(real.scalar_type()));
  const bool f64 = real.scalar_type() == at::kDouble;
  // z_ij = F_j - R_i with R = sign r, F = sign f (O(N + M) scratch).
  Tensor R = at::empty({n}, acc), F = at::empty({m}, acc);
  cuda::scale_to_acc(dtype_of(real), real.data_ptr(), n, sign, R.data_ptr(), stream());
  cuda::scale_to_acc(dtype_of(fake), fake.data_ptr(), m, sign, F.data_ptr(), stream());
  Tensor row = at::empty({with_grad ? n : 0}, acc), col = at::empty({with_grad ? m : 0}, acc);
  Tensor row_loss = at::empty({n}, real.options().dtype(at::kDouble)), res = at::empty({2}, row_loss.options());
  // Rows: sum_j sp(F_j - R_i) and sum_j σ; columns: sum_i σ(F_j - R_i) = σ(-(R_i - F_j)).
  cuda::pair_strips(f64, R.data_ptr(), n, F.data_ptr(), m, 1.0, row_loss.data_ptr<double>(),
                    with_grad ? row.data_ptr() : nullptr, stream());
  if (with_grad) cuda::pair_strips(f64, F.data_ptr(), m, R.data_ptr(), n, -1.0, nullptr, col.data_ptr(), stream());
  cuda::reduce(dptr(row_loss), n, 1, res.data_ptr<double>(), stream());
  return {loss_from(real, res, 1.0 / (static_cast<double>(n) * m)), row, col};
}

std::tuple<Tensor, Tensor> rel_average(const Tensor& real_, const Tensor& fake_, double sign) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const Tensor sr = sums(real, nullptr, 1.0, 0.0, 0.0, nullptr, 0.0, false, true);
  const Tensor sf = sums(fake, nullptr, 1.0, 0.0, 0.0, nullptr, 0.0, false, true);
  // a_i = -sign r_i + sign m_f,  b_j = sign f_j - sign m_r  (means read on the device)
  const Tensor sa = sums(real, nullptr, -sign, 0.0, 0.0, dptr(sf), sign / m, true);
  const Tensor sb = sums(fake, nullptr, sign, 0.0, 0.0, dptr(sr), -sign / n, true);
  Tensor stats = at::empty({4}, real.options().dtype(at::kDouble));
  cuda::write_average_stats(stats.data_ptr<double>(), dptr(sr), n, dptr(sf), m, dptr(sa), dptr(sb), stream());
  return {loss_from(real, sa, 0.5 / n, &sb, 0.5 / m), stats};
}

std::tuple<Tensor, Tensor> rel_average_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                                const Tensor& stats_, double sign) {
  check_pair(real_, fake_, false);
  TORCH_CHECK(stats_.numel() == 4 && stats_.scalar_type() == at::kDouble, "rel_average_backward: bad stats");
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous(), st = stats_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  // dL/dr_i = kr [σ(a_i) + Σσ(b)/M],  dL/df_j = kf [Σσ(a)/N + σ(b_j)]
  const Tensor kr = gscale(grad, real, -sign / (2.0 * n)), kf = gscale(grad, real, sign / (2.0 * m));
  const Tensor ar = kr.mul(st.select(0, 3)).div(m).contiguous(), af = kf.mul(st.select(0, 2)).div(n).contiguous();
  return {sig_affine(real, -sign, dptr(st) + 1, sign, kr, &ar), sig_affine(fake, sign, dptr(st), -sign, kf, &af)};
}

}  // namespace

TORCH_LIBRARY_IMPL(lightning_gans, CUDA, m) {
  m.impl("softplus_mean", &softplus_mean);
  m.impl("sgan_d", &sgan_d);
  m.impl("rel_paired", &rel_paired);
  m.impl("grad_scale", &grad_scale);
  m.impl("rel_all_pairs", &rel_all_pairs);
  m.impl("rel_all_pairs_backward", &lightning_gans::rel_all_pairs_backward);
  m.impl("rel_average", &rel_average);
  m.impl("rel_average_backward", &rel_average_backward);
}

}  // namespace lightning_gans
