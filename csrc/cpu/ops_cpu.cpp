// CPU implementations of the lightning_gans ops: checks, contiguity, and the
// SPEC §3 formulas expressed through three kernels (sp_sum, sig_affine,
// all_pairs). Sums come back in double; the loss is cast to the input dtype.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mul.h>
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

DType dtype_of(const Tensor& t) { return dtype_tag<DType>(t); }

Tensor scalar_like(const Tensor& t, double v) { return at::empty({}, t.options()).fill_(v); }

double grad_value(const Tensor& grad, const Tensor& like) {
  check_grad(grad, like);
  return grad.item<double>();
}

// out = coef σ(a x + c y + b) + add, elementwise, in x's dtype; with sp_total
// also Σ sp(a x + c y + b) from the same exps.
Tensor sig_affine(const Tensor& x, const Tensor* y, double a, double c, double b, double coef, double add,
                  double* sp_total = nullptr) {
  Tensor out = at::empty_like(x);
  kernels().sig_affine(dtype_of(x), x.data_ptr(), y ? y->data_ptr() : nullptr, x.numel(), a, c, b, coef, add,
                       out.data_ptr(), 0.0, 0.0, nullptr, sp_total);
  return out;
}

Tensor no_grad_like(const Tensor& x) { return at::empty({0}, x.options()); }

// ---------------------------------------------------------------- elementwise
// With with_grad, each forward also returns d loss / d input for a unit
// upstream gradient, computed from the same exp as the loss; the backward
// (grad_scale) only multiplies it by the upstream gradient.
std::tuple<Tensor, Tensor> softplus_mean(const Tensor& x_, double sign, bool with_grad) {
  check_logits(x_, "x");
  const Tensor x = x_.contiguous();
  const int64_t n = x.numel();
  double s[2];
  if (with_grad) {
    Tensor dx = sig_affine(x, nullptr, sign, 0.0, 0.0, sign / n, 0.0, &s[0]);
    return {scalar_like(x, s[0] / n), dx};
  }
  kernels().sp_sum(dtype_of(x), x.data_ptr(), nullptr, n, sign, 0.0, 0.0, false, s);
  return {scalar_like(x, s[0] / n), no_grad_like(x)};
}

std::tuple<Tensor, Tensor, Tensor> sgan_d(const Tensor& real_, const Tensor& fake_, bool with_grad) {
  check_pair(real_, fake_, false);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  double sr[2], sf[2];
  if (with_grad) {
    // d/dr_i = -σ(-r_i)/N,  d/df_j = σ(f_j)/M
    Tensor dr = sig_affine(real, nullptr, -1.0, 0.0, 0.0, -1.0 / n, 0.0, &sr[0]);
    Tensor df = sig_affine(fake, nullptr, 1.0, 0.0, 0.0, 1.0 / m, 0.0, &sf[0]);
    return {scalar_like(real, sr[0] / n + sf[0] / m), dr, df};
  }
  kernels().sp_sum(dtype_of(real), real.data_ptr(), nullptr, n, -1.0, 0.0, 0.0, false, sr);
  kernels().sp_sum(dtype_of(fake), fake.data_ptr(), nullptr, m, 1.0, 0.0, 0.0, false, sf);
  return {scalar_like(real, sr[0] / n + sf[0] / m), no_grad_like(real), no_grad_like(fake)};
}

// ---------------------------------------------------------------- paired
// z_i = sign (f_i - r_i) = (-sign) r_i + sign f_i
std::tuple<Tensor, Tensor> rel_paired(const Tensor& real_, const Tensor& fake_, double sign, bool with_grad) {
  check_pair(real_, fake_, true);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel();
  double s[2];
  if (with_grad) {
    // d/df_i = (sign/N) σ_i; d/dr_i is its negative, made in the backward (one array, not two).
    Tensor df = sig_affine(real, &fake, -sign, sign, 0.0, sign / n, 0.0, &s[0]);
    return {scalar_like(real, s[0] / n), df};
  }
  kernels().sp_sum(dtype_of(real), real.data_ptr(), fake.data_ptr(), n, -sign, sign, 0.0, false, s);
  return {scalar_like(real, s[0] / n), no_grad_like(fake)};
}

// The backward of the three ops above: alpha times the upstream gradient (0-d)
// times the saved unit gradient, in the input's dtype.
Tensor grad_scale(const Tensor& grad, const Tensor& dx, double alpha) {
  check_grad(grad, dx);
  return alpha == 1.0 ? dx.mul(grad) : dx.mul(grad.mul(alpha));
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
  m.impl("sgan_d", &sgan_d);
  m.impl("rel_paired", &rel_paired);
  m.impl("grad_scale", &grad_scale);
  m.impl("rel_all_pairs", &rel_all_pairs);
  m.impl("rel_all_pairs_backward", &rel_all_pairs_backward);
  m.impl("rel_average", &rel_average);
  m.impl("rel_average_backward", &rel_average_backward);
}

}  // namespace lightning_gans
