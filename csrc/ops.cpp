// Op schemas of the `lightning_gans` namespace. Kernels are registered per
// device in cpu/ops_cpu.cpp and cuda/ops_cuda.cpp; fake (meta) kernels and
// autograd live in lightning_gans/ops.py. Logits are 1-D (N,) here: the Python
// wrappers reshape (N, 1) and validate with friendlier messages.
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
  // Elementwise losses: with_grad also returns the gradient of the loss for a
  // unit upstream gradient (same exps as the loss; empty without with_grad),
  // and the backward is grad_scale(grad, saved, alpha) = alpha * grad * saved.
  // mean_k sp(sign * x_k)
  m.def("softplus_mean(Tensor x, float sign, bool with_grad) -> (Tensor, Tensor)");
  // mean sp(-real) + mean sp(fake)
  m.def("sgan_d(Tensor real, Tensor fake, bool with_grad) -> (Tensor, Tensor, Tensor)");
  // mean_i sp(sign (fake_i - real_i)); the gradient is d/dfake (d/dreal is its negative)
  m.def("rel_paired(Tensor real, Tensor fake, float sign, bool with_grad) -> (Tensor, Tensor)");
  m.def("grad_scale(Tensor grad, Tensor dx, float alpha) -> Tensor");  // being replaced by the *_backward ops
  // Elementwise backwards. `g*` are the forward's saved unit-upstream gradients in the
  // accumulation dtype (float32 for half inputs, float64 for float64), or empty when the
  // device's forward chose not to save them (then the backward recomputes from the inputs,
  // which moves less memory for large N). grad is the 0-d upstream gradient (read on device).
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
