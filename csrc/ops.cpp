// Op schemas of the `lightning_gans` namespace. Kernels are registered per
// device in cpu/ops_cpu.cpp and cuda/ops_cuda.cpp, autograd (for every device)
// in autograd.cpp, fake (meta) kernels in lightning_gans/kernels/ops.py.
// Logits are 1-D (N,) here: the Python wrappers reshape (N, 1).
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>
#include <torch/library.h>

#include "op_handles.h"

// Fast Python entry points for the common case: each takes plain torch.Tensor
// logits that are 1-D on a device with kernels, calls the op through the
// dispatcher (autograd included) with with_grad = "autograd needs it", and
// returns the loss alone; for anything else it returns None and the Python
// wrapper takes its checked path. This skips torch.ops' schema-driven argument
// parsing (~1.5 us of the ~20 us a GAN-sized forward+backward costs). Not used
// under torch.compile, which traces torch.ops.lightning_gans.* instead.
namespace {

using at::Tensor;
namespace h = lightning_gans::handles;

bool device_ok(const Tensor& t) {
#ifdef LG_WITH_CUDA
  return t.is_cpu() || t.is_cuda();
#else
  return t.is_cpu();
#endif
}

// The tensor behind `obj` if it is a plain torch.Tensor (no subclass: those may
// override __torch_function__) of shape (N,) on a supported device, else null.
const Tensor* plain_logits(PyObject* obj) {
  if (Py_TYPE(obj) != reinterpret_cast<PyTypeObject*>(THPVariableClass)) return nullptr;
  const Tensor& t = THPVariable_Unpack(obj);
  return t.dim() == 1 && device_ok(t) ? &t : nullptr;
}

bool as_double(PyObject* obj, double* out) {
  if (PyFloat_Check(obj)) {
    *out = PyFloat_AS_DOUBLE(obj);
    return true;
  }
  if (PyLong_Check(obj)) {
    *out = PyLong_AsDouble(obj);
    return !PyErr_Occurred();
  }
  return false;
}

bool wants_grad(const Tensor& a, const Tensor* b = nullptr) {
  return at::GradMode::is_enabled() && (a.requires_grad() || (b && b->requires_grad()));
}

// fast_<op>(x[, y][, sign]) -> loss or None
PyObject* fast_softplus_mean(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  const Tensor* x = nargs == 2 ? plain_logits(args[0]) : nullptr;
  double sign;
  if (!x || !as_double(args[1], &sign)) Py_RETURN_NONE;
  return THPVariable_Wrap(std::get<0>(h::softplus_mean_op().call(*x, sign, wants_grad(*x))));
  END_HANDLE_TH_ERRORS
}

PyObject* fast_sgan_d(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  const Tensor* r = nargs == 2 ? plain_logits(args[0]) : nullptr;
  const Tensor* f = r ? plain_logits(args[1]) : nullptr;
  if (!f) Py_RETURN_NONE;
  return THPVariable_Wrap(std::get<0>(h::sgan_d_op().call(*r, *f, wants_grad(*r, f))));
  END_HANDLE_TH_ERRORS
}

// rel_paired, rel_all_pairs and rel_average share (real, fake, sign).
template <int kOp>
PyObject* fast_relativistic(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  HANDLE_TH_ERRORS
  const Tensor* r = nargs == 3 ? plain_logits(args[0]) : nullptr;
  const Tensor* f = r ? plain_logits(args[1]) : nullptr;
  double sign;
  if (!f || !as_double(args[2], &sign)) Py_RETURN_NONE;
  const bool grad = wants_grad(*r, f);
  if constexpr (kOp == 0) return THPVariable_Wrap(std::get<0>(h::rel_paired_op().call(*r, *f, sign, grad)));
  if constexpr (kOp == 1) return THPVariable_Wrap(std::get<0>(h::all_pairs_op().call(*r, *f, sign, grad)));
  if constexpr (kOp == 2) return THPVariable_Wrap(std::get<0>(h::average_op().call(*r, *f, sign)));
  END_HANDLE_TH_ERRORS
}

PyMethodDef methods[] = {
    {"fast_softplus_mean", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_softplus_mean)),
     METH_FASTCALL, "softplus_mean(x, sign) loss for plain 1-D logits, else None"},
    {"fast_sgan_d", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_sgan_d)), METH_FASTCALL,
     "sgan_d(real, fake) loss for plain 1-D logits, else None"},
    {"fast_rel_paired", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_relativistic<0>)),
     METH_FASTCALL, "rel_paired(real, fake, sign) loss for plain 1-D logits, else None"},
    {"fast_rel_all_pairs", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_relativistic<1>)),
     METH_FASTCALL, "rel_all_pairs(real, fake, sign) loss for plain 1-D logits, else None"},
    {"fast_rel_average", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(fast_relativistic<2>)),
     METH_FASTCALL, "rel_average(real, fake, sign) loss for plain 1-D logits, else None"},
    {nullptr, nullptr, 0, nullptr}};

}  // namespace

// Importing lightning_gans._C runs the static registrations below (the
// pytorch/extension-cpp pattern) and gives the fast entry points above.
// PyMODINIT_FUNC exports the symbol despite -fvisibility=hidden.
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
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
