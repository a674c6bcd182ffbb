// CUDA implementations of the lightning_gans ops (same formulas as
// cpu/ops_cpu.cpp). Nothing here synchronises with the host: the incoming
// gradient and batch statistics stay on the device and kernels read them
// through pointers. Every op runs under a device guard on its inputs' device
// and launches on that device's current stream.
//
// The elementwise forwards return their saved gradients EMPTY (the contract of
// csrc/ops.cpp allows it): each backward recomputes σ from the inputs, reading
// x once and writing dx once, instead of the forward writing N values that the
// backward then reads again.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdlib>
#include <cstring>
#include <tuple>

#include "../checks.h"
#include "kernels.h"

namespace lightning_gans {
namespace {

using at::Tensor;
using cuda::DType;

DType tag(const Tensor& t) { return dtype_tag<DType>(t); }

cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

Tensor doubles(const Tensor& like, int64_t n) { return at::empty({n}, like.options().dtype(at::kDouble)); }

Tensor acc_empty(const Tensor& like, int64_t n) {
  return at::empty({n}, like.options().dtype(acc_type(like.scalar_type())));
}

// The upstream gradient: one element, on the inputs' device, a float dtype (read by the kernels).
DType grad_tag(const Tensor& grad, const Tensor& like) {
  check_grad(grad, like);
  const auto s = grad.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16,
              "grad must be a floating tensor, got ", s);
  return tag(grad);
}

// A tensor the forward saved: on `like`'s device, in `dtype`, with n elements.
void check_saved(const Tensor& t, const Tensor& like, at::ScalarType dtype, int64_t n, const char* op,
                 const char* name) {
  TORCH_CHECK(t.device() == like.device(), op, ": ", name, " must be on ", like.device(), ", got ", t.device());
  TORCH_CHECK(t.scalar_type() == dtype, op, ": ", name, " must be ", dtype, ", got ", t.scalar_type());
  TORCH_CHECK(t.dim() == 1 && t.numel() == n, op, ": ", name, " must have shape (", n, "), got ", t.sizes());
}

// A saved unit gradient g: empty (recompute) or (n,) in the accumulation dtype.
bool has_saved(const Tensor& g, const Tensor& x, const char* op, const char* name) {
  if (g.numel() == 0) return false;
  check_saved(g, x, acc_type(x.scalar_type()), x.numel(), op, name);
  return true;
}

Tensor finish(const Tensor& like, const Tensor& partials, int64_t G, const cuda::Finish& f) {
  Tensor loss = at::empty({}, like.options());
  cuda::reduce_level2(tag(like), partials.data_ptr<double>(), G, f, loss.data_ptr(), stream());
  return loss;
}

// ---------------------------------------------------------------- forwards
std::tuple<Tensor, Tensor> softplus_mean(const Tensor& x_, double sign, bool with_grad) {
  check_logits(x_, "x");
  const c10::cuda::CUDAGuard guard(x_.device());
  const Tensor x = x_.contiguous();
  const int64_t n = x.numel(), G = cuda::reduce_blocks(tag(x), n);
  Tensor partials = doubles(x, 4 * G);
  cuda::Seg s;
  s.x = x.data_ptr();
  s.n = n;
  s.a = sign;
  cuda::reduce_level1(tag(x), cuda::Reduce::sp, &s, 1, G, nullptr, partials.data_ptr<double>(), stream());
  cuda::Finish f;
  f.w[0] = 1.0 / n;
  return {finish(x, partials, G, f), acc_empty(x, 0)};
}

std::tuple<Tensor, Tensor, Tensor> sgan_d(const Tensor& real_, const Tensor& fake_, bool with_grad) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel(), G = cuda::reduce_blocks(tag(real), n + m);
  Tensor partials = doubles(real, 4 * G);
  cuda::Seg s[2];
  s[0].x = real.data_ptr(), s[0].n = n, s[0].a = -1.0;  // sp(-r)
  s[1].x = fake.data_ptr(), s[1].n = m, s[1].a = 1.0;   // sp(f)
  cuda::reduce_level1(tag(real), cuda::Reduce::sp, s, 2, G, nullptr, partials.data_ptr<double>(), stream());
  cuda::Finish f;
  f.w[0] = 1.0 / n;
  f.w[2] = 1.0 / m;
  return {finish(real, partials, G, f), acc_empty(real, 0), acc_empty(fake, 0)};
}

// z_i = sign (f_i - r_i)
std::tuple<Tensor, Tensor> rel_paired(const Tensor& real_, const Tensor& fake_, double sign, bool with_grad) {
  check_pair(real_, fake_, true);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), G = cuda::reduce_blocks(tag(real), 2 * n);
  Tensor partials = doubles(real, 4 * G);
  cuda::Seg s;
  s.x = real.data_ptr(), s.y = fake.data_ptr(), s.n = n, s.a = -sign, s.c = sign;
  cuda::reduce_level1(tag(real), cuda::Reduce::sp, &s, 1, G, nullptr, partials.data_ptr<double>(), stream());
  cuda::Finish f;
  f.w[0] = 1.0 / n;
  return {finish(real, partials, G, f), acc_empty(fake, 0)};
}

// a_i = sign (m_f - r_i), b_j = sign (f_j - m_r); stats = [m_r, m_f, Σσ(a), Σσ(b)]
std::tuple<Tensor, Tensor> rel_average(const Tensor& real_, const Tensor& fake_, double sign) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  const int64_t n = real.numel(), m = fake.numel(), G = cuda::reduce_blocks(tag(real), n + m);
  Tensor sums = doubles(real, 4 * G), partials = doubles(real, 4 * G), stats = doubles(real, 4);
  cuda::Seg s[2];
  s[0].x = real.data_ptr(), s[0].n = n;
  s[1].x = fake.data_ptr(), s[1].n = m;
  cuda::reduce_level1(tag(real), cuda::Reduce::sum, s, 2, G, nullptr, sums.data_ptr<double>(), stream());
  s[0].a = -sign, s[0].shift_src = 1, s[0].shift_coef = sign;  // + sign m_f
  s[1].a = sign, s[1].shift_src = 0, s[1].shift_coef = -sign;  // - sign m_r
  cuda::reduce_level1(tag(real), cuda::Reduce::sp_sig, s, 2, G, sums.data_ptr<double>(), partials.data_ptr<double>(),
                      stream());
  cuda::Finish f;
  f.w[0] = 0.5 / n;
  f.w[2] = 0.5 / m;
  f.mean_partials = sums.data_ptr<double>();
  f.n0 = double(n);
  f.n1 = double(m);
  f.stats = stats.data_ptr<double>();
  return {finish(real, partials, G, f), stats};
}

bool legacy_all_pairs() {
  const char* v = std::getenv("LIGHTNING_GANS_CUDA_ALL_PAIRS");
  return v != nullptr && std::strcmp(v, "legacy") == 0;
}

std::tuple<Tensor, Tensor, Tensor> rel_all_pairs_legacy(const Tensor& real, const Tensor& fake, double sign,
                                                        bool with_grad) {
  const int64_t n = real.numel(), m = fake.numel();
  const bool f64 = real.scalar_type() == at::kDouble;
  Tensor R = acc_empty(real, n), F = acc_empty(real, m);
  cuda::legacy::scale_to_acc(tag(real), real.data_ptr(), n, sign, R.data_ptr(), stream());
  cuda::legacy::scale_to_acc(tag(fake), fake.data_ptr(), m, sign, F.data_ptr(), stream());
  Tensor row = acc_empty(real, with_grad ? n : 0), col = acc_empty(real, with_grad ? m : 0);
  Tensor row_loss = doubles(real, n), loss = at::empty({}, real.options());
  cuda::legacy::pair_strips(f64, R.data_ptr(), n, F.data_ptr(), m, 1.0, row_loss.data_ptr<double>(),
                            with_grad ? row.data_ptr() : nullptr, stream());
  if (with_grad) {
    cuda::legacy::pair_strips(f64, F.data_ptr(), m, R.data_ptr(), n, -1.0, nullptr, col.data_ptr(), stream());
  }
  cuda::legacy::sum_to_loss(tag(real), row_loss.data_ptr<double>(), n, 1.0 / (double(n) * m), loss.data_ptr(),
                            stream());
  return {loss, row, col};
}

// Tiles need rows <= columns for enough blocks when N << M or N >> M, so for
// N > M the roles swap: rows = fake with R = -sign f, columns = real with
// F = -sign r, which gives the same z_ij = sign (f_j - r_i).
std::tuple<Tensor, Tensor, Tensor> rel_all_pairs(const Tensor& real_, const Tensor& fake_, double sign,
                                                 bool with_grad) {
  check_pair(real_, fake_, false);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  if (legacy_all_pairs()) return rel_all_pairs_legacy(real, fake, sign, with_grad);
  const int64_t n = real.numel(), m = fake.numel();
  const bool swap = n > m;
  const Tensor& rows = swap ? fake : real;
  const Tensor& cols = swap ? real : fake;
  const int64_t nr = rows.numel(), mc = cols.numel();
  const tile::Plan P = cuda::all_pairs_plan(nr, mc);
  const bool f64 = real.scalar_type() == at::kDouble;
  Tensor R = acc_empty(real, nr), F = acc_empty(real, mc), cmax = acc_empty(real, P.nct), cmin = acc_empty(real, P.nct);
  Tensor fa = at::empty({f64 ? 0 : mc}, real.options().dtype(at::kFloat));
  Tensor rowpart = acc_empty(real, with_grad ? P.cb * nr : 0), colpart = acc_empty(real, with_grad ? P.rb * mc : 0);
  Tensor losspart = doubles(real, P.rb * P.cb), loss = at::empty({}, real.options());
  Tensor row = acc_empty(real, with_grad ? n : 0), col = acc_empty(real, with_grad ? m : 0);
  cuda::AllPairsArgs g;
  g.rows = rows.data_ptr(), g.cols = cols.data_ptr(), g.nr = nr, g.mc = mc;
  g.row_scale = swap ? -sign : sign, g.col_scale = swap ? -sign : sign, g.grad = with_grad;
  g.R = R.data_ptr(), g.F = F.data_ptr(), g.cmax = cmax.data_ptr(), g.cmin = cmin.data_ptr();
  g.rowpart = with_grad ? rowpart.data_ptr() : nullptr, g.colpart = with_grad ? colpart.data_ptr() : nullptr;
  g.fa = f64 ? nullptr : fa.data_ptr<float>(), g.losspart = losspart.data_ptr<double>();
  g.row_out = with_grad ? (swap ? col : row).data_ptr() : nullptr;
  g.col_out = with_grad ? (swap ? row : col).data_ptr() : nullptr;
  g.loss = loss.data_ptr(), g.loss_scale = 1.0 / (double(n) * double(m));
  cuda::all_pairs_forward(tag(real), g, stream());
  return {loss, row, col};
}

// ---------------------------------------------------------------- backwards
Tensor softplus_mean_backward(const Tensor& grad, const Tensor& x_, const Tensor& g, double sign) {
  check_logits(x_, "x");
  const DType gd = grad_tag(grad, x_);
  const c10::cuda::CUDAGuard guard(x_.device());
  const Tensor x = x_.contiguous();
  Tensor dx = at::empty_like(x);
  if (has_saved(g, x, "softplus_mean_backward", "g")) {
    cuda::saved_backward(tag(x), g.contiguous().data_ptr(), x.numel(), 1.0, grad.data_ptr(), gd, dx.data_ptr(),
                         nullptr, stream());
    return dx;
  }
  cuda::BwdSeg s;  // dx = grad (sign/N) σ(sign x)
  s.x = x.data_ptr(), s.n = x.numel(), s.a = sign, s.coef = sign / x.numel(), s.out = dx.data_ptr();
  cuda::sigmoid_backward(tag(x), &s, 1, grad.data_ptr(), gd, nullptr, stream());
  return dx;
}

std::tuple<Tensor, Tensor> sgan_d_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                           const Tensor& g_real, const Tensor& g_fake) {
  check_pair(real_, fake_, false);
  const DType gd = grad_tag(grad, real_);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  Tensor dr = at::empty_like(real), df = at::empty_like(fake);
  const bool saved_r = has_saved(g_real, real, "sgan_d_backward", "g_real");
  const bool saved_f = has_saved(g_fake, fake, "sgan_d_backward", "g_fake");
  TORCH_CHECK(saved_r == saved_f, "sgan_d_backward: g_real and g_fake must both be saved or both be empty");
  if (saved_r) {
    cuda::saved_backward(tag(real), g_real.contiguous().data_ptr(), real.numel(), 1.0, grad.data_ptr(), gd,
                         dr.data_ptr(), nullptr, stream());
    cuda::saved_backward(tag(fake), g_fake.contiguous().data_ptr(), fake.numel(), 1.0, grad.data_ptr(), gd,
                         df.data_ptr(), nullptr, stream());
    return {dr, df};
  }
  cuda::BwdSeg s[2];  // d/dr = -grad σ(-r)/N, d/df = grad σ(f)/M
  s[0].x = real.data_ptr(), s[0].n = real.numel(), s[0].a = -1.0, s[0].coef = -1.0 / real.numel();
  s[0].out = dr.data_ptr();
  s[1].x = fake.data_ptr(), s[1].n = fake.numel(), s[1].a = 1.0, s[1].coef = 1.0 / fake.numel();
  s[1].out = df.data_ptr();
  cuda::sigmoid_backward(tag(real), s, 2, grad.data_ptr(), gd, nullptr, stream());
  return {dr, df};
}

std::tuple<Tensor, Tensor> rel_paired_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                               const Tensor& g, double sign) {
  check_pair(real_, fake_, true);
  const DType gd = grad_tag(grad, real_);
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous();
  Tensor dr = at::empty_like(real), df = at::empty_like(fake);
  if (has_saved(g, fake, "rel_paired_backward", "g")) {
    cuda::saved_backward(tag(real), g.contiguous().data_ptr(), real.numel(), 1.0, grad.data_ptr(), gd, df.data_ptr(),
                         dr.data_ptr(), stream());
    return {dr, df};
  }
  cuda::BwdSeg s;  // d/df = grad (sign/N) σ(sign (f - r)), d/dr = -d/df
  s.x = real.data_ptr(), s.y = fake.data_ptr(), s.n = real.numel(), s.a = -sign, s.c = sign;
  s.coef = sign / real.numel(), s.out = df.data_ptr(), s.out_neg = dr.data_ptr();
  cuda::sigmoid_backward(tag(real), &s, 1, grad.data_ptr(), gd, nullptr, stream());
  return {dr, df};
}

std::tuple<Tensor, Tensor> rel_all_pairs_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                                  const Tensor& row_, const Tensor& col_, double sign) {
  check_pair(real_, fake_, false);
  const DType gd = grad_tag(grad, real_);
  const int64_t n = real_.numel(), m = fake_.numel();
  TORCH_CHECK(row_.numel() == n && col_.numel() == m,
              "rel_all_pairs_backward: row/col sums missing or of the wrong size (the forward ran with "
              "with_grad=False?): expected (", n, ") and (", m, "), got ", row_.sizes(), " and ", col_.sizes());
  const auto acc = acc_type(real_.scalar_type());
  check_saved(row_, real_, acc, n, "rel_all_pairs_backward", "row");
  check_saved(col_, real_, acc, m, "rel_all_pairs_backward", "col");
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor row = row_.contiguous(), col = col_.contiguous();
  Tensor dr = at::empty_like(real_, at::MemoryFormat::Contiguous), df = at::empty_like(fake_, at::MemoryFormat::Contiguous);
  // dL/dr_i = -k row_i, dL/df_j = k col_j, k = grad sign / (N M)
  cuda::all_pairs_backward(tag(real_), grad.data_ptr(), gd, sign / (double(n) * double(m)), row.data_ptr(), n,
                           col.data_ptr(), m, dr.data_ptr(), df.data_ptr(), stream());
  return {dr, df};
}

std::tuple<Tensor, Tensor> rel_average_backward(const Tensor& grad, const Tensor& real_, const Tensor& fake_,
                                                const Tensor& stats_, double sign) {
  check_pair(real_, fake_, false);
  const DType gd = grad_tag(grad, real_);
  check_saved(stats_, real_, at::kDouble, 4, "rel_average_backward", "stats");
  const c10::cuda::CUDAGuard guard(real_.device());
  const Tensor real = real_.contiguous(), fake = fake_.contiguous(), stats = stats_.contiguous();
  const int64_t n = real.numel(), m = fake.numel();
  Tensor dr = at::empty_like(real), df = at::empty_like(fake);
  // dL/dr_i = kr [σ(a_i) + Σσ(b)/M], kr = -sign grad/(2N), a_i = -sign r_i + sign m_f
  // dL/df_j = kf [σ(b_j) + Σσ(a)/N], kf = sign grad/(2M),  b_j = sign f_j - sign m_r
  cuda::BwdSeg s[2];
  s[0].x = real.data_ptr(), s[0].n = n, s[0].a = -sign, s[0].b_stat = 1, s[0].b_coef = sign;
  s[0].add_stat = 3, s[0].add_coef = 1.0 / m, s[0].coef = -sign / (2.0 * n), s[0].out = dr.data_ptr();
  s[1].x = fake.data_ptr(), s[1].n = m, s[1].a = sign, s[1].b_stat = 0, s[1].b_coef = -sign;
  s[1].add_stat = 2, s[1].add_coef = 1.0 / n, s[1].coef = sign / (2.0 * m), s[1].out = df.data_ptr();
  cuda::sigmoid_backward(tag(real), s, 2, grad.data_ptr(), gd, stats.data_ptr<double>(), stream());
  return {dr, df};
}

}  // namespace

TORCH_LIBRARY_IMPL(lightning_gans, CUDA, m) {
  m.impl("softplus_mean", &softplus_mean);
  m.impl("sgan_d", &sgan_d);
  m.impl("rel_paired", &rel_paired);
  m.impl("softplus_mean_backward", &softplus_mean_backward);
  m.impl("sgan_d_backward", &sgan_d_backward);
  m.impl("rel_paired_backward", &rel_paired_backward);
  m.impl("rel_all_pairs", &rel_all_pairs);
  m.impl("rel_all_pairs_backward", &rel_all_pairs_backward);
  m.impl("rel_average", &rel_average);
  m.impl("rel_average_backward", &rel_average_backward);
}

}  // namespace lightning_gans
