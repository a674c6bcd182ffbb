// Argument checks shared by the CPU and CUDA op implementations and the
// autograd kernels. They are the only checks on the fused fast path (the
// Python wrappers check just what C++ cannot see: non-tensors and (N, 1)
// shapes), so each message names the argument and says what was expected,
// and each raises the Python exception a Python check would (TypeError for
// dtypes, ValueError for shapes, sizes and devices).
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <sstream>
#include <string>

namespace lightning_gans {

// torch's Python name of a dtype ("torch.int64", not C++'s "Long"), so that an
// error raised here reads like one raised by the Python wrappers.
inline std::string py_dtype(at::ScalarType s) {
  switch (s) {
    case at::kFloat: return "torch.float32";
    case at::kDouble: return "torch.float64";
    case at::kHalf: return "torch.float16";
    case at::kBFloat16: return "torch.bfloat16";
    case at::kLong: return "torch.int64";
    case at::kInt: return "torch.int32";
    case at::kShort: return "torch.int16";
    case at::kChar: return "torch.int8";
    case at::kByte: return "torch.uint8";
    case at::kBool: return "torch.bool";
    case at::kComplexFloat: return "torch.complex64";
    case at::kComplexDouble: return "torch.complex128";
    default: return std::string("torch.") + c10::toString(s);
  }
}

// A shape as Python prints it: (4, 2), (3,), (). Symbolic sizes (torch.compile
// with dynamic shapes traces the autograd kernels, which run these checks) print as s0.
inline std::string py_shape(c10::SymIntArrayRef sizes) {
  std::ostringstream os;
  os << '(';
  for (size_t k = 0; k < sizes.size(); ++k) os << (k ? ", " : "") << sizes[k];
  os << (sizes.size() == 1 ? ",)" : ")");
  return os.str();
}

inline bool is_logit_dtype(at::ScalarType s) {
  return s == at::kFloat || s == at::kDouble || s == at::kHalf || s == at::kBFloat16;
}

inline void check_logits(const at::Tensor& t, const char* name) {
  TORCH_CHECK_TYPE(is_logit_dtype(t.scalar_type()), name,
                   " must have a floating dtype (float32, float64, float16 or bfloat16), got ",
                   py_dtype(t.scalar_type()));
  TORCH_CHECK_VALUE(t.dim() == 1, name, " must be 1-D (N,) (the Python wrappers also take (N, 1)), got shape ",
                    py_shape(t.sym_sizes()));
  TORCH_CHECK_VALUE(t.sym_numel() != 0, name, " is an empty batch (N = 0); at least one logit is needed");
}

// Device and dtype agreement only (cheap: the autograd kernels run it on every call).
inline void check_same(const at::Tensor& real, const at::Tensor& fake) {
  TORCH_CHECK_VALUE(real.device() == fake.device(), "real and fake must be on the same device, got real on ",
                    real.device(), " and fake on ", fake.device());
  TORCH_CHECK_TYPE(real.scalar_type() == fake.scalar_type(), "real and fake must have the same dtype, got real ",
                   py_dtype(real.scalar_type()), " and fake ", py_dtype(fake.scalar_type()));
}

inline void check_pair(const at::Tensor& real, const at::Tensor& fake, bool paired) {
  check_logits(real, "real");
  check_logits(fake, "fake");
  check_same(real, fake);
  if (paired) {
    TORCH_CHECK_VALUE(real.sym_numel() == fake.sym_numel(),
                      "paired pairing needs as many fake as real logits: real has N = ", real.sym_numel(),
                      ", fake has M = ", fake.sym_numel(), " (use pairing='all' for N != M)");
  }
}

inline void check_sign(double sign) {
  TORCH_CHECK_VALUE(std::isfinite(sign), "sign must be a finite number, got ", sign);
}

// The upstream gradient of a 0-d loss.
inline void check_grad(const at::Tensor& grad, const at::Tensor& like) {
  TORCH_CHECK_VALUE(grad.numel() == 1, "grad (the upstream gradient of the 0-d loss) must have one element, got shape ",
                    py_shape(grad.sym_sizes()));
  TORCH_CHECK_VALUE(grad.device() == like.device(), "grad must be on ", like.device(), " like the logits, got ",
                    grad.device());
}

// Accumulation dtype: float32 for half types and float32, float64 for float64.
inline at::ScalarType acc_type(at::ScalarType s) { return s == at::kDouble ? at::kDouble : at::kFloat; }

// A saved unit-upstream gradient of `x` (a forward's `g` output): either empty
// (the forward left it to the backward to recompute) or N values in the
// accumulation dtype on x's device. Returns whether it is present.
inline bool check_saved(const at::Tensor& g, const at::Tensor& x, const char* name) {
  if (g.numel() == 0) return false;
  TORCH_CHECK_VALUE(g.dim() == 1 && g.numel() == x.numel(), name, " must be empty or have shape (",
                    x.numel(), ",) like its logits, got ", py_shape(g.sym_sizes()));
  TORCH_CHECK_TYPE(g.scalar_type() == acc_type(x.scalar_type()), name, " must be in the accumulation dtype ",
                   py_dtype(acc_type(x.scalar_type())), " for ", py_dtype(x.scalar_type()), " logits, got ",
                   py_dtype(g.scalar_type()));
  TORCH_CHECK_VALUE(g.device() == x.device(), name, " must be on ", x.device(), ", got ", g.device());
  return true;
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

}  // namespace lightning_gans
