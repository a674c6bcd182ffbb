// Autograd for the lightning_gans ops, registered for every device at the
// Autograd key. Each forward redispatches below autograd to the device kernel
// and records one graph node that saves what the backward needs; the node's
// backward is one backward op. No Python runs on the path: at the batch sizes
// GANs use (N = 64 .. 1K on a CPU) the per-call overhead, not the arithmetic,
// is the cost (torch.library.register_autograd put a Python autograd.Function
// around every call, ~10 us each way).
//
// The backward ops are not differentiable: if their result is differentiated
// again (a double backward through a loss), the node recorded here raises a
// clear error instead of torch's generic one or a silent zero.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/library.h>

#include <array>
#include <string>
#include <tuple>

#include "checks.h"
#include "op_handles.h"

namespace lightning_gans {
namespace {

using at::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using namespace handles;

// Save-vs-recompute for the elementwise losses. Saving: the forward writes the
// unit-upstream gradient g (4 bytes per logit) and the backward reads it back and
// scales it. Recomputing: the backward reads the logits again and evaluates σ
// (one more exp per logit) and no g is allocated. While g stays in cache, the
// write and read cost less than the exp; once it does not (g > 8 MB against a
// 32 MB L3 shared with x and dx), and above all once it is large enough for
// glibc to mmap it afresh on every call (> 32 MB: page faults and zeroing),
// recomputing wins. CUDA: the exp is free next to memory traffic, so recompute.
//
// Measured (benchmarks/results/cpu_2026-12-02_crossover.md): `lgans-bench --crossover
// --threads 1 --sizes 256,4K,64K,256K,1M,2M,4M,8M,16M`, float32 fwd+bwd on the raw ops,
// time saved / time recomputed; AMD EPYC (Zen 4), 2 cores, torch 2.14.1, load average
// ~8.5 from other jobs (so single points are noisy; an earlier run gave the same trend):
//   N              256   4K    64K   256K  1M    2M    4M    8M    16M
//   softplus_mean  1.04  0.91  0.86  0.82  0.96  0.97  1.03  1.44  1.62
//   sgan_d         0.99  0.88  0.77  0.80  0.88  0.89  1.45  1.43  1.46
//   rel_paired     1.04  0.89  0.79  0.76  0.85  1.88  0.90  1.60  1.30
// Saving is 5-25% faster from 4K to 2M, the crossover lies near 4M, recomputing is
// 1.3-1.6x faster from 8M: save up to 2M.
constexpr int64_t kCpuSaveMaxN = int64_t(1) << 21;
constexpr int64_t kCudaSaveMaxN = 0;

bool save_gradient(const Tensor& x) {
  const int64_t limit = x.device().is_cuda() ? kCudaSaveMaxN : kCpuSaveMaxN;
  // sym_numel: under torch.compile with dynamic shapes N is symbolic (this guards on it).
  return limit > 0 && x.sym_numel() <= limit;
}

bool needs_grad(const Tensor& a) { return at::GradMode::is_enabled() && a.requires_grad(); }
bool needs_grad(const Tensor& a, const Tensor& b) {
  return at::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad());
}


// f() with autograd's dispatch keys excluded: the device kernel.
template <typename F>
auto below_autograd(F f) {
  at::AutoDispatchBelowADInplaceOrView below;
  return f();
}

// ---------------------------------------------------------------- forwards
// One graph node per loss, written as ATen's generated nodes are (a Node with
// SavedVariables, history set on the loss only) rather than through
// torch::autograd::Function, whose bookkeeping (per-input/output info, saved
// data map, output wrapping) cost ~3 us per call, as much as the whole N = 64
// kernel. apply() calls the backward op through the dispatcher, so under
// create_graph its no-double-backward kernel records the error node.
using torch::autograd::Node;
using torch::autograd::SavedVariable;

template <size_t K>
struct LossNode : public Node {
  std::array<SavedVariable, K> saved;
  double sign = 0.0;
  const char* op = "";

  std::string name() const override { return std::string("lightning_gans::") + op + "_backward"; }
  void release_variables() override {
    for (auto& v : saved) v.reset_data();
  }
  std::array<Tensor, K> unpack() {
    std::array<Tensor, K> out;
    for (size_t k = 0; k < K; ++k) out[k] = saved[k].unpack();
    return out;
  }
  variable_list apply(variable_list&& grads) override {
    if (!grads[0].defined()) return variable_list(num_outputs());  // only reached through a non-loss output
    return backward(grads[0], unpack());
  }
  virtual variable_list backward(const Tensor& grad, std::array<Tensor, K> s) = 0;
};

// The node for `loss`, with next edges to `inputs` and `to_save` saved (none is an
// output of the node, so SavedVariable keeps them without a reference cycle).
template <typename N, typename... Inputs>
void record(const Tensor& loss, const char* op, double sign, std::initializer_list<Tensor> to_save,
            const Inputs&... inputs) {
  auto node = c10::make_intrusive<N>();
  node->set_next_edges(torch::autograd::collect_next_edges(inputs...));
  node->op = op;
  node->sign = sign;
  size_t k = 0;
  for (const auto& t : to_save) node->saved[k++] = SavedVariable(t, false);
  torch::autograd::set_history(loss, c10::intrusive_ptr<Node>(node));
}

struct SoftplusMeanNode : LossNode<2> {  // saved: x, g
  variable_list backward(const Tensor& grad, std::array<Tensor, 2> s) override {
    return {softplus_mean_bwd_op().call(grad, s[0], s[1], sign)};
  }
};
struct SganDNode : LossNode<4> {  // saved: real, fake, g_real, g_fake
  variable_list backward(const Tensor& grad, std::array<Tensor, 4> s) override {
    auto [dr, df] = sgan_d_bwd_op().call(grad, s[0], s[1], s[2], s[3]);
    return {dr, df};
  }
};
struct RelPairedNode : LossNode<3> {  // saved: real, fake, g
  variable_list backward(const Tensor& grad, std::array<Tensor, 3> s) override {
    auto [dr, df] = rel_paired_bwd_op().call(grad, s[0], s[1], s[2], sign);
    return {dr, df};
  }
};
struct AllPairsNode : LossNode<4> {  // saved: real, fake, row, col
  variable_list backward(const Tensor& grad, std::array<Tensor, 4> s) override {
    auto [dr, df] = all_pairs_bwd_op().call(grad, s[0], s[1], s[2], s[3], sign);
    return {dr, df};
  }
};
struct AverageNode : LossNode<3> {  // saved: real, fake, stats
  variable_list backward(const Tensor& grad, std::array<Tensor, 3> s) override {
    auto [dr, df] = average_bwd_op().call(grad, s[0], s[1], s[2], sign);
    return {dr, df};
  }
};

// The Autograd-key kernels. Without a gradient to track they only redispatch,
// honouring with_grad as given: a graph traced by torch.compile replays its
// forward under no_grad and still needs the pieces its backward graph reads.
// With a gradient to track, all pairs must keep its row and column sums
// (recomputing them is another O(NM) pass); the elementwise ops keep g only
// where save_gradient says that is cheaper than recomputing it.
T2 softplus_mean_ad(const Tensor& x, double sign, bool with_grad) {
  check_logits(x, "x");
  check_sign(sign);
  if (!needs_grad(x)) return below_autograd([&] { return softplus_mean_op().call(x, sign, with_grad); });
  auto out = below_autograd([&] { return softplus_mean_op().call(x, sign, with_grad && save_gradient(x)); });
  record<SoftplusMeanNode>(std::get<0>(out), "softplus_mean", sign, {x, std::get<1>(out)}, x);
  return out;
}

T3 sgan_d_ad(const Tensor& real, const Tensor& fake, bool with_grad) {
  check_pair(real, fake, false);  // here too: for a mixed cpu/meta pair the dispatcher would pick Meta
  if (!needs_grad(real, fake)) return below_autograd([&] { return sgan_d_op().call(real, fake, with_grad); });
  const bool save = with_grad && save_gradient(real) && save_gradient(fake);
  auto out = below_autograd([&] { return sgan_d_op().call(real, fake, save); });
  record<SganDNode>(std::get<0>(out), "sgan_d", 0.0, {real, fake, std::get<1>(out), std::get<2>(out)}, real, fake);
  return out;
}

T2 rel_paired_ad(const Tensor& real, const Tensor& fake, double sign, bool with_grad) {
  check_pair(real, fake, true);
  check_sign(sign);
  if (!needs_grad(real, fake)) return below_autograd([&] { return rel_paired_op().call(real, fake, sign, with_grad); });
  const bool save = with_grad && save_gradient(real);
  auto out = below_autograd([&] { return rel_paired_op().call(real, fake, sign, save); });
  record<RelPairedNode>(std::get<0>(out), "rel_paired", sign, {real, fake, std::get<1>(out)}, real, fake);
  return out;
}

T3 all_pairs_ad(const Tensor& real, const Tensor& fake, double sign, bool with_grad) {
  check_pair(real, fake, false);
  check_sign(sign);
  if (!needs_grad(real, fake)) return below_autograd([&] { return all_pairs_op().call(real, fake, sign, with_grad); });
  auto out = below_autograd([&] { return all_pairs_op().call(real, fake, sign, true); });
  record<AllPairsNode>(std::get<0>(out), "rel_all_pairs", sign, {real, fake, std::get<1>(out), std::get<2>(out)},
                       real, fake);
  return out;
}

T2 average_ad(const Tensor& real, const Tensor& fake, double sign) {
  check_pair(real, fake, false);
  check_sign(sign);
  if (!needs_grad(real, fake)) return below_autograd([&] { return average_op().call(real, fake, sign); });
  auto out = below_autograd([&] { return average_op().call(real, fake, sign); });
  record<AverageNode>(std::get<0>(out), "rel_average", sign, {real, fake, std::get<1>(out)}, real, fake);
  return out;
}

// ---------------------------------------------------------------- backwards
// Records `outs` (computed below autograd) with a node whose backward raises.
struct NoDoubleBackward : public torch::autograd::Function<NoDoubleBackward> {
  static variable_list forward(AutogradContext* ctx, at::TensorList /*inputs*/, std::string op, variable_list outs) {
    ctx->saved_data["op"] = op;
    return outs;
  }
  static variable_list backward(AutogradContext* ctx, variable_list /*grads*/) {
    TORCH_CHECK(false, "double backward through the fused op lightning_gans::", ctx->saved_data["op"].toStringRef(),
                " is not supported; use impl='ref' for higher-order gradients of the loss itself (R1/R2/GP "
                "penalties on the discriminator's input gradients do not need this)");
    return {};
  }
};

// `out` of a backward op (computed below autograd), recorded with a node that
// raises when some tensor input (`tracked`) requires grad in grad mode, i.e.
// when the backward itself runs with create_graph=True.
template <typename Out>
Out no_double_backward(const char* op, std::initializer_list<Tensor> tracked, Out out) {
  if (!at::GradMode::is_enabled()) return out;
  bool any = false;
  for (const auto& t : tracked) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  const at::TensorList inputs(tracked);
  if constexpr (std::is_same_v<Out, Tensor>) {
    return NoDoubleBackward::apply(inputs, std::string(op), variable_list{out})[0];
  } else {
    const auto w = NoDoubleBackward::apply(inputs, std::string(op), variable_list{std::get<0>(out), std::get<1>(out)});
    return {w[0], w[1]};
  }
}

Tensor softplus_mean_backward_ad(const Tensor& grad, const Tensor& x, const Tensor& g, double sign) {
  return no_double_backward("softplus_mean_backward", {grad, x, g},
                            below_autograd([&] { return softplus_mean_bwd_op().call(grad, x, g, sign); }));
}
T2 sgan_d_backward_ad(const Tensor& grad, const Tensor& real, const Tensor& fake, const Tensor& gr,
                      const Tensor& gf) {
  return no_double_backward("sgan_d_backward", {grad, real, fake, gr, gf},
                            below_autograd([&] { return sgan_d_bwd_op().call(grad, real, fake, gr, gf); }));
}
T2 rel_paired_backward_ad(const Tensor& grad, const Tensor& real, const Tensor& fake, const Tensor& g, double sign) {
  return no_double_backward("rel_paired_backward", {grad, real, fake, g},
                            below_autograd([&] { return rel_paired_bwd_op().call(grad, real, fake, g, sign); }));
}
T2 all_pairs_backward_ad(const Tensor& grad, const Tensor& real, const Tensor& fake, const Tensor& row,
                         const Tensor& col, double sign) {
  return no_double_backward(
      "rel_all_pairs_backward", {grad, real, fake, row, col},
      below_autograd([&] { return all_pairs_bwd_op().call(grad, real, fake, row, col, sign); }));
}
T2 average_backward_ad(const Tensor& grad, const Tensor& real, const Tensor& fake, const Tensor& stats, double sign) {
  return no_double_backward("rel_average_backward", {grad, real, fake, stats},
                            below_autograd([&] { return average_bwd_op().call(grad, real, fake, stats, sign); }));
}

}  // namespace

TORCH_LIBRARY_IMPL(lightning_gans, Autograd, m) {
  m.impl("softplus_mean", &softplus_mean_ad);
  m.impl("sgan_d", &sgan_d_ad);
  m.impl("rel_paired", &rel_paired_ad);
  m.impl("rel_all_pairs", &all_pairs_ad);
  m.impl("rel_average", &average_ad);
  m.impl("softplus_mean_backward", &softplus_mean_backward_ad);
  m.impl("sgan_d_backward", &sgan_d_backward_ad);
  m.impl("rel_paired_backward", &rel_paired_backward_ad);
  m.impl("rel_all_pairs_backward", &all_pairs_backward_ad);
  m.impl("rel_average_backward", &average_backward_ad);
}

}  // namespace lightning_gans
