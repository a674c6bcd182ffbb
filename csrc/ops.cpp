// Op schemas of the `lightning_gans` namespace. Kernels are registered per
// device in cpu/ops_cpu.cpp and cuda/ops_cuda.cpp, autograd (for every device)
// in autograd.cpp, fake (meta) kernels in lightning_gans/kernels/ops.py.
// Logits are 1-D (N,) here: the Python wrappers reshape (N, 1).
#include <Python.h>
#include <torch/library.h>

// Importing lightning_gans._C runs the static registrations below; the module
// itself is empty (the pytorch/extension-cpp pattern). PyMODINIT_FUNC exports
// the symbol despite -fvisibility=hidden.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&def);
}

namespace lightning_gans {

static bool built_with_cuda() {
#ifdef LG_WITH_CUDA
  return true;
#else
  return false;
#endif
}

TORCH_LIBRARY(lightning_gans, m) {
  // Elementwise losses. With with_grad the forward also returns `g`, the gradient of the loss
  // for a unit upstream gradient (same exps as the loss), in the ACCUMULATION dtype (float32
  // for float16/bfloat16/float32 inputs, float64 for float64: σ/N rounded to half would be
  // subnormal or 0); without it `g` is empty. The autograd kernel (autograd.cpp) sets with_grad
  // only when a gradient is needed and saving it is cheaper than recomputing it on this device
  // at this N; a device kernel returns `g` exactly when with_grad is true (the fake kernels
  // assume so).
  // mean_k sp(sign * x_k)
  m.def("softplus_mean(Tensor x, float sign, bool with_grad) -> (Tensor, Tensor)");
  // mean sp(-real) + mean sp(fake)
  m.def("sgan_d(Tensor real, Tensor fake, bool with_grad) -> (Tensor, Tensor, Tensor)");
  // mean_i sp(sign (fake_i - real_i)); the gradient is d/dfake (d/dreal is its negative)
  m.def("rel_paired(Tensor real, Tensor fake, float sign, bool with_grad) -> (Tensor, Tensor)");
  // Elementwise backwards: dx = grad * g when `g` is non-empty, else recomputed from the
  // logits (fewer bytes moved for large N: no gradient array written by the forward and read
  // back). grad is the 0-d upstream gradient; outputs have the input dtype.
  m.def("softplus_mean_backward(Tensor grad, Tensor x, Tensor g, float sign) -> Tensor");
  m.def("sgan_d_backward(Tensor grad, Tensor real, Tensor fake, Tensor g_real, Tensor g_fake) -> (Tensor, Tensor)");
  m.def("rel_paired_backward(Tensor grad, Tensor real, Tensor fake, Tensor g, float sign) -> (Tensor, Tensor)");
  // (1/NM) sum_ij sp(sign (fake_j - real_i)); with_grad also returns
  // row_i = sum_j σ(z_ij) and col_j = sum_i σ(z_ij) for the backward.
  m.def("rel_all_pairs(Tensor real, Tensor fake, float sign, bool with_grad) -> (Tensor, Tensor, Tensor)");
  m.def(
      "rel_all_pairs_backward(Tensor grad, Tensor real, Tensor fake, Tensor row, Tensor col, float sign)"
      " -> (Tensor, Tensor)");
  // ½{mean_i sp(sign(m_f - real_i)) + mean_j sp(sign(fake_j - m_r))};
  // stats = [m_r, m_f, sum_i σ(a_i), sum_j σ(b_j)] for the backward.
  m.def("rel_average(Tensor real, Tensor fake, float sign) -> (Tensor, Tensor)");
  m.def(
      "rel_average_backward(Tensor grad, Tensor real, Tensor fake, Tensor stats, float sign)"
      " -> (Tensor, Tensor)");
  m.def("built_with_cuda() -> bool", &built_with_cuda);
}

}  // namespace lightning_gans
