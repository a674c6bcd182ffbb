// CPU implementations of the lightning_gans ops: checks, contiguity, and the
// SPEC §3 formulas expressed through three kernels (sp_sum, sig_affine,
// all_pairs). Sums come back in double; the loss is cast to the input dtype.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <tuple>

#include "../all_pairs_backward.h"
#include "../checks.h"
#include "kernels.h"

namespace lightning_gans {
namespace {

using at::Tensor;
using cpu::DType;
using cpu::kernels;

DType dtype_of(const Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::f32;
    case at::kDouble: return DType::f64;
    case at::kHalf: return DType::f16;
    default: return DType::bf16;
  }
}

Tensor scalar_like(const Tensor& t, double v) { return at::empty({}, t.options()).fill_(v); }

double grad_value(const Tensor& grad, const Tensor& like) {
  check_grad(grad, like);
  return grad.item<double>();
}

// out = coef σ(a x + c y + b) + add, elementwise, in x's dtype.
Tensor sig_affine(const Tensor& x, const Tensor* y, double a, double c, double b, double coef, double add) {
  Tensor out = at::empty_like(x);
  kernels().sig_affine(dtype_of(x), x.data_ptr(), y ? y->data_ptr() : nullptr, x.numel(), a, c, b, coef, add,
                       out.data_ptr(), 0.0, 0.0, nullptr);
  return out;
}

// ---------------------------------------------------------------- elementwise
Tensor softplus_mean(const Tensor& x_, double sign) {
  check_logits(x_, "x");
  const Tensor x = x_.contiguous();
  double s[2];
  kernels().sp_sum(dtype_of(x), x.data_ptr(), nullptr, x.numel(), sign, 0.0, 0.0, false, s);
  return scalar_like(x, s[0] / x.numel());
}

Tensor softplus_mean_backward(const Tensor& grad, const Tensor& x_, double sign) {
  check_logits(x_, "x");
  const Tensor x = x_.contiguous();
  const double g = grad_value(grad, x);
  return sig_affine(x, nullptr, sign, 0.0, 0.0, g * sign / x.numel(), 0.0);
}

Tensor sgan_d(const Tensor& real_, const Tensor& fake_) {
  check_pair(real_, fake_, false);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  double sr[2], sf[2];
  kernels().sp_sum(dtype_of(real), real.data_ptr(), nullptr, real.numel(), -1.0, 0.0, 0.0, false, sr);
  kernels().sp_sum(dtype_of(fake), fake.data_ptr(), nullptr, fake.numel(), 1.0, 0.0, 0.0, false, sf);
  return scalar_like(real, sr[0] / real.numel() + sf[0] / fake.numel());
}

std::tuple<Tensor, Tensor> sgan_d_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_) {
  check_pair(real_, fake_, false);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const double g = grad_value(grad, real);
  return {sig_affine(real, nullptr, -1.0, 0.0, 0.0, -g / real.numel(), 0.0),
          sig_affine(fake, nullptr, 1.0, 0.0, 0.0, g / fake.numel(), 0.0)};
}

// ---------------------------------------------------------------- paired
// z_i = sign (f_i - r_i) = (-sign) r_i + sign f_i
Tensor rel_paired(const Tensor& real_, const Tensor& fake_, double sign) {
  check_pair(real_, fake_, true);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  double s[2];
  kernels().sp_sum(dtype_of(real), real.data_ptr(), fake.data_ptr(), real.numel(), -sign, sign, 0.0, false, s);
  return scalar_like(real, s[0] / real.numel());
}

std::tuple<Tensor, Tensor> rel_paired_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                               double sign) {
  check_pair(real_, fake_, true);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const double k = grad_value(grad, real) * sign / real.numel();
  Tensor gr = at::empty_like(real), gf = at::empty_like(fake);
  // One σ per pair feeds both gradients: dL/dr_i = -k σ_i, dL/df_i = k σ_i.
  kernels().sig_affine(dtype_of(real), real.data_ptr(), fake.data_ptr(), real.numel(), -sign, sign, 0.0, -k, 0.0,
                       gr.data_ptr(), k, 0.0, gf.data_ptr());
  return {gr, gf};
}

// ---------------------------------------------------------------- all pairs
std::tuple<Tensor, Tensor, Tensor> rel_all_pairs(const Tensor& real_, const Tensor& fake_, double sign,
                                                 bool with_grad) {
  check_pair(real_, fake_, false);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const auto acc = real.options().dtype(acc_type(real.scalar_type()));
  Tensor row = at::empty({with_grad ? n : 0}, acc), col = at::empty({with_grad ? m : 0}, acc);
  const double total = kernels().all_pairs(dtype_of(real), real.data_ptr(), fake.data_ptr(), n, m, sign,
                                           with_grad ? row.data_ptr() : nullptr,
                                           with_grad ? col.data_ptr() : nullptr);
  return {scalar_like(real, total / (static_cast<double>(n) * m)), row, col};
}

// ---------------------------------------------------------------- average (RaSGAN)
// a_i = sign (m_f - r_i) = (-sign) r_i + sign m_f;  b_j = sign (f_j - m_r)
std::tuple<Tensor, Tensor> rel_average(const Tensor& real_, const Tensor& fake_, double sign) {
  check_pair(real_, fake_, false);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const DType d = dtype_of(real);
  const double m_r = kernels().sum(d, real.data_ptr(), n) / n;
  const double m_f = kernels().sum(d, fake.data_ptr(), m) / m;
  double sa[2], sb[2];
  kernels().sp_sum(d, real.data_ptr(), nullptr, n, -sign, 0.0, sign * m_f, true, sa);
  kernels().sp_sum(d, fake.data_ptr(), nullptr, m, sign, 0.0, -sign * m_r, true, sb);
  Tensor stats = at::empty({4}, real.options().dtype(at::kDouble));
  double* st = stats.data_ptr<double>();
  st[0] = m_r;
  st[1] = m_f;
  st[2] = sa[1];
  st[3] = sb[1];
  return {scalar_like(real, 0.5 * (sa[0] / n + sb[0] / m)), stats};
}

std::tuple<Tensor, Tensor> rel_average_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                                const Tensor& stats_, double sign) {
  check_pair(real_, fake_, false);
  TORCH_CHECK(stats_.numel() == 4 && stats_.scalar_type() == at::kDouble, "rel_average_backward: bad stats");
  const Tensor real = real_.contiguous(), fake = fake_.contiguous(), stats = stats_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const double g = grad_value(grad, real);
  const double* st = stats.data_ptr<double>();
  const double m_r = st[0], m_f = st[1], sum_sa = st[2], sum_sb = st[3];
  // dL/dr_i = -sign g/(2N) [σ(a_i) + Σσ(b)/M];  dL/df_j = sign g/(2M) [Σσ(a)/N + σ(b_j)]
  const double kr = -sign * g / (2.0 * n), kf = sign * g / (2.0 * m);
  return {sig_affine(real, nullptr, -sign, 0.0, sign * m_f, kr, kr * sum_sb / m),
          sig_affine(fake, nullptr, sign, 0.0, -sign * m_r, kf, kf * sum_sa / n)};
}

}  // namespace

TORCH_LIBRARY_IMPL(lightning_gans, CPU, m) {
  m.impl("softplus_mean", &softplus_mean);
  m.impl("softplus_mean_backward", &softplus_mean_backward);
  m.impl("sgan_d", &sgan_d);
  m.impl("sgan_d_backward", &sgan_d_backward);
  m.impl("rel_paired", &rel_paired);
  m.impl("rel_paired_backward", &rel_paired_backward);
  m.impl("rel_all_pairs", &rel_all_pairs);
  m.impl("rel_all_pairs_backward", &rel_all_pairs_backward);
  m.impl("rel_average", &rel_average);
  m.impl("rel_average_backward", &rel_average_backward);
}

}  // namespace lightning_gans
