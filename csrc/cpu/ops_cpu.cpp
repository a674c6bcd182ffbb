// CPU implementations of the lightning_gans ops: checks, contiguity, and the
// softplus forms of the losses (sp(z) = log(1 + e^z), σ = sp') through four kernels (sp_sum,
// sig_affine, scale, all_pairs). Sums come back in double; the loss is cast
// to the input dtype. Autograd is registered separately (csrc/autograd.cpp);
// these run below it.
#include <ATen/EmptyTensor.h>
#include <ATen/core/Tensor.h>
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

// at::detail::empty_cpu skips the dispatcher: at N = 64 a whole forward is a
// few hundred nanoseconds of arithmetic, so each dispatched call shows.
Tensor new_empty(int64_t n, at::ScalarType s) { return at::detail::empty_cpu({n}, s, false, std::nullopt); }
Tensor new_like(const Tensor& x) { return new_empty(x.numel(), x.scalar_type()); }

// A 0-d tensor of dtype s holding v, written in place (no dispatched fill_).
Tensor scalar(double v, at::ScalarType s) {
  Tensor out = at::detail::empty_cpu({}, s, false, std::nullopt);
  switch (s) {
    case at::kFloat: *out.data_ptr<float>() = static_cast<float>(v); break;
    case at::kDouble: *out.data_ptr<double>() = v; break;
    case at::kHalf: *out.data_ptr<at::Half>() = static_cast<at::Half>(static_cast<float>(v)); break;
    default: *out.data_ptr<at::BFloat16>() = static_cast<at::BFloat16>(static_cast<float>(v)); break;
  }
  return out;
}

// The upstream gradient's value, read directly for the dtypes a loss has.
double grad_value(const Tensor& grad, const Tensor& like) {
  check_grad(grad, like);
  switch (grad.scalar_type()) {
    case at::kFloat: return *grad.const_data_ptr<float>();
    case at::kDouble: return *grad.const_data_ptr<double>();
    case at::kHalf: return static_cast<float>(*grad.const_data_ptr<at::Half>());
    case at::kBFloat16: return static_cast<float>(*grad.const_data_ptr<at::BFloat16>());
    default: return grad.item<double>();
  }
}

// out = coef σ(a x + c y + b) + add, elementwise, in x's dtype (or, with out_acc,
// the accumulation dtype); with sp_total also Σ sp(a x + c y + b) from the same exps.
Tensor sig_affine(const Tensor& x, const Tensor* y, double a, double c, double b, double coef, double add,
                  double* sp_total = nullptr, bool out_acc = false) {
  Tensor out = new_empty(x.numel(), out_acc ? acc_type(x.scalar_type()) : x.scalar_type());
  kernels().sig_affine(dtype_of(x), x.data_ptr(), y ? y->data_ptr() : nullptr, x.numel(), a, c, b, coef, add,
                       out.data_ptr(), 0.0, 0.0, nullptr, sp_total, out_acc);
  return out;
}

// Two outputs from one σ: out_x = kx σ(a x + c y), out_y = ky σ(a x + c y), in x's dtype.
std::tuple<Tensor, Tensor> sig_pair(const Tensor& x, const Tensor& y, double a, double c, double kx, double ky) {
  Tensor ox = new_like(x), oy = new_like(y);
  kernels().sig_affine(dtype_of(x), x.data_ptr(), y.data_ptr(), x.numel(), a, c, 0.0, kx, 0.0, ox.data_ptr(), ky,
                       0.0, oy.data_ptr(), nullptr, false);
  return {ox, oy};
}

// k g in like's dtype, for a saved gradient g in the accumulation dtype.
Tensor scaled(const Tensor& g, double k, const Tensor& like) {
  const Tensor gc = g.contiguous();
  Tensor out = new_like(like);
  kernels().scale(dtype_of(like), gc.data_ptr(), gc.numel(), k, out.data_ptr(), 0.0, nullptr);
  return out;
}

Tensor no_grad_like(const Tensor& x) { return new_empty(0, acc_type(x.scalar_type())); }

// ---------------------------------------------------------------- elementwise
// With with_grad, each forward also returns d loss / d input for a unit
// upstream gradient, in the accumulation dtype, from the same exp as the loss;
// the backward only scales it. Without it the backward recomputes σ from the
// logits. Which of the two is cheaper depends on N: autograd.cpp decides.
std::tuple<Tensor, Tensor> softplus_mean(const Tensor& x_, double sign, bool with_grad) {
  check_logits(x_, "x");
  check_sign(sign);
  const Tensor x = x_.contiguous();
  const int64_t n = x.numel();
  double s[2];
  if (with_grad) {
    Tensor g = sig_affine(x, nullptr, sign, 0.0, 0.0, sign / n, 0.0, &s[0], true);
    return {scalar(s[0] / n, x.scalar_type()), g};
  }
  kernels().sp_sum(dtype_of(x), x.data_ptr(), nullptr, n, sign, 0.0, 0.0, false, s);
  return {scalar(s[0] / n, x.scalar_type()), no_grad_like(x)};
}

Tensor softplus_mean_backward(const Tensor& grad, const Tensor& x_, const Tensor& g, double sign) {
  check_logits(x_, "x");
  const double k = grad_value(grad, x_);
  if (check_saved(g, x_, "g")) return scaled(g, k, x_);
  const Tensor x = x_.contiguous();
  return sig_affine(x, nullptr, sign, 0.0, 0.0, k * sign / x.numel(), 0.0);  // d/dx_k = (sign/N) σ(sign x_k)
}

std::tuple<Tensor, Tensor, Tensor> sgan_d(const Tensor& real_, const Tensor& fake_, bool with_grad) {
  check_pair(real_, fake_, false);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  double sr[2], sf[2];
  if (with_grad) {
    // d/dr_i = -σ(-r_i)/N,  d/df_j = σ(f_j)/M
    Tensor gr = sig_affine(real, nullptr, -1.0, 0.0, 0.0, -1.0 / n, 0.0, &sr[0], true);
    Tensor gf = sig_affine(fake, nullptr, 1.0, 0.0, 0.0, 1.0 / m, 0.0, &sf[0], true);
    return {scalar(sr[0] / n + sf[0] / m, real.scalar_type()), gr, gf};
  }
  kernels().sp_sum(dtype_of(real), real.data_ptr(), nullptr, n, -1.0, 0.0, 0.0, false, sr);
  kernels().sp_sum(dtype_of(fake), fake.data_ptr(), nullptr, m, 1.0, 0.0, 0.0, false, sf);
  return {scalar(sr[0] / n + sf[0] / m, real.scalar_type()), no_grad_like(real), no_grad_like(fake)};
}

std::tuple<Tensor, Tensor> sgan_d_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                           const Tensor& g_real, const Tensor& g_fake) {
  check_pair(real_, fake_, false);
  const double k = grad_value(grad, real_);
  const int64_t n = real_.numel(), m = fake_.numel();
  Tensor dr = check_saved(g_real, real_, "g_real")
                  ? scaled(g_real, k, real_)
                  : sig_affine(real_.contiguous(), nullptr, -1.0, 0.0, 0.0, -k / n, 0.0);
  Tensor df = check_saved(g_fake, fake_, "g_fake") ? scaled(g_fake, k, fake_)
                                                    : sig_affine(fake_.contiguous(), nullptr, 1.0, 0.0, 0.0, k / m, 0.0);
  return {dr, df};
}

// ---------------------------------------------------------------- paired
// z_i = sign (f_i - r_i) = (-sign) r_i + sign f_i
std::tuple<Tensor, Tensor> rel_paired(const Tensor& real_, const Tensor& fake_, double sign, bool with_grad) {
  check_pair(real_, fake_, true);
  check_sign(sign);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel();
  double s[2];
  if (with_grad) {
    // d/df_i = (sign/N) σ_i; d/dr_i is its negative, made in the backward (one array, not two).
    Tensor g = sig_affine(real, &fake, -sign, sign, 0.0, sign / n, 0.0, &s[0], true);
    return {scalar(s[0] / n, real.scalar_type()), g};
  }
  kernels().sp_sum(dtype_of(real), real.data_ptr(), fake.data_ptr(), n, -sign, sign, 0.0, false, s);
  return {scalar(s[0] / n, real.scalar_type()), no_grad_like(fake)};
}

std::tuple<Tensor, Tensor> rel_paired_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                               const Tensor& g_, double sign) {
  check_pair(real_, fake_, true);
  const double k = grad_value(grad, real_);
  if (check_saved(g_, fake_, "g")) {
    const Tensor g = g_.contiguous();
    Tensor dr = new_like(real_), df = new_like(fake_);
    kernels().scale(dtype_of(real_), g.data_ptr(), g.numel(), -k, dr.data_ptr(), k, df.data_ptr());
    return {dr, df};
  }
  const double kf = k * sign / real_.numel();
  return sig_pair(real_.contiguous(), fake_.contiguous(), -sign, sign, -kf, kf);
}

// ---------------------------------------------------------------- all pairs
std::tuple<Tensor, Tensor, Tensor> rel_all_pairs(const Tensor& real_, const Tensor& fake_, double sign,
                                                 bool with_grad) {
  check_pair(real_, fake_, false);
  check_sign(sign);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const auto acc = acc_type(real.scalar_type());
  Tensor row = new_empty(with_grad ? n : 0, acc), col = new_empty(with_grad ? m : 0, acc);
  const double total = kernels().all_pairs(dtype_of(real), real.data_ptr(), fake.data_ptr(), n, m, sign,
                                           with_grad ? row.data_ptr() : nullptr,
                                           with_grad ? col.data_ptr() : nullptr);
  return {scalar(total / (static_cast<double>(n) * m), real.scalar_type()), row, col};
}

// ---------------------------------------------------------------- average (RaSGAN)
// a_i = sign (m_f - r_i) = (-sign) r_i + sign m_f;  b_j = sign (f_j - m_r)
std::tuple<Tensor, Tensor> rel_average(const Tensor& real_, const Tensor& fake_, double sign) {
  check_pair(real_, fake_, false);
  check_sign(sign);
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  const DType d = dtype_of(real);
  const double m_r = kernels().sum(d, real.data_ptr(), n) / n;
  const double m_f = kernels().sum(d, fake.data_ptr(), m) / m;
  double sa[2], sb[2];
  kernels().sp_sum(d, real.data_ptr(), nullptr, n, -sign, 0.0, sign * m_f, true, sa);
  kernels().sp_sum(d, fake.data_ptr(), nullptr, m, sign, 0.0, -sign * m_r, true, sb);
  Tensor stats = new_empty(4, at::kDouble);
  double* st = stats.data_ptr<double>();
  st[0] = m_r;
  st[1] = m_f;
  st[2] = sa[1];
  st[3] = sb[1];
  return {scalar(0.5 * (sa[0] / n + sb[0] / m), real.scalar_type()), stats};
}

std::tuple<Tensor, Tensor> rel_average_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                                const Tensor& stats_, double sign) {
  check_pair(real_, fake_, false);
  TORCH_CHECK_VALUE(stats_.numel() == 4 && stats_.scalar_type() == at::kDouble,
                    "stats must be the 4 float64 statistics rel_average returned, got shape ",
                    py_shape(stats_.sym_sizes()), " and dtype ", py_dtype(stats_.scalar_type()));
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
