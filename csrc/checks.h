// Argument checks shared by the CPU and CUDA op implementations. The Python
// wrappers check first with friendlier messages; these guard direct calls of
// torch.ops.lightning_gans.* so that bad input never reaches a kernel.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace lightning_gans {

inline void check_logits(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 1, name, " must be 1-D (N,), got shape ", t.sizes());
  TORCH_CHECK(t.numel() > 0, name, " is an empty batch (N = 0)");
  const auto s = t.scalar_type();
  TORCH_CHECK(s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16, name,
              " must be float32, float64, float16 or bfloat16, got ", s);
}

inline void check_pair(const at::Tensor& real, const at::Tensor& fake, bool paired) {
  check_logits(real, "real");
  check_logits(fake, "fake");
  TORCH_CHECK(real.device() == fake.device(), "real and fake must be on the same device, got ",
              real.device(), " and ", fake.device());
  TORCH_CHECK(real.scalar_type() == fake.scalar_type(), "real and fake must have the same dtype, got ",
              real.scalar_type(), " and ", fake.scalar_type());
  if (paired) {
    TORCH_CHECK(real.numel() == fake.numel(), "paired pairing needs N == M, got real N = ", real.numel(),
                " and fake M = ", fake.numel());
  }
}

inline void check_grad(const at::Tensor& grad, const at::Tensor& like) {
  TORCH_CHECK(grad.numel() == 1, "grad must be a scalar, got shape ", grad.sizes());
  TORCH_CHECK(grad.device() == like.device(), "grad must be on ", like.device(), ", got ", grad.device());
}

// The kernels' dtype tag (cpu::DType or cuda::DType, which both list f32, f64,
// f16, bf16) of a tensor that passed check_logits.
template <typename DType>
DType dtype_tag(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat: return DType::f32;
    case at::kDouble: return DType::f64;
    case at::kHalf: return DType::f16;
    default: return DType::bf16;
  }
}

// Accumulation dtype: float32 for half types and float32, float64 for float64.
inline at::ScalarType acc_type(at::ScalarType s) { return s == at::kDouble ? at::kDouble : at::kFloat; }

}  // namespace lightning_gans
