// The all-pairs backward, shared by the CPU and CUDA registrations: the
// forward already reduced row_i = sum_j σ(z_ij) and col_j = sum_i σ(z_ij),
// and dL/dr_i = -s row_i / (NM), dL/df_j = s col_j / (NM), so only a scale
// remains. Tensor arithmetic keeps the incoming gradient on its device (no
// host sync on CUDA).
#pragma once
#include <ATen/core/Tensor.h>

#include <tuple>

#include "checks.h"

namespace lightning_gans {

inline std::tuple<at::Tensor, at::Tensor> rel_all_pairs_backward(const at::Tensor& grad, const at::Tensor& real,
                                                                 const at::Tensor& fake, const at::Tensor& row,
                                                                 const at::Tensor& col, double sign) {
  check_pair(real, fake, false);
  check_grad(grad, real);
  TORCH_CHECK(row.numel() == real.numel() && col.numel() == fake.numel(),
              "rel_all_pairs_backward: row/col sums missing (the forward ran with with_grad=False)");
  // dL/dr_i = -k row_i, dL/df_j = k col_j, k = grad sign / (N M)
  const double scale = sign / (static_cast<double>(real.numel()) * fake.numel());
  const at::Tensor k = grad.reshape({}).to(row.scalar_type()).mul(scale);
  return {row.mul(k).neg().to(real.scalar_type()), col.mul(k).to(fake.scalar_type())};
}

}  // namespace lightning_gans
