// Typed dispatcher handles of the lightning_gans ops, looked up once. Calls
// through them go through the dispatcher like torch.ops.lightning_gans.* (so
// through autograd, or below it under AutoDispatchBelowADInplaceOrView), minus
// the Python argument parsing.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include <tuple>

namespace lightning_gans {
namespace handles {

using at::Tensor;
using T2 = std::tuple<Tensor, Tensor>;
using T3 = std::tuple<Tensor, Tensor, Tensor>;

#define LG_OP(fn, name, sig)                                                                             \
  inline const c10::TypedOperatorHandle<sig>& fn() {                                                    \
    static const auto h =                                                                                \
        c10::Dispatcher::singleton().findSchemaOrThrow("lightning_gans::" name, "").typed<sig>();      \
    return h;                                                                                            \
  }
LG_OP(softplus_mean_op, "softplus_mean", T2(const Tensor&, double, bool))
LG_OP(softplus_mean_bwd_op, "softplus_mean_backward", Tensor(const Tensor&, const Tensor&, const Tensor&, double))
LG_OP(sgan_d_op, "sgan_d", T3(const Tensor&, const Tensor&, bool))
LG_OP(sgan_d_bwd_op, "sgan_d_backward", T2(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&))
LG_OP(rel_paired_op, "rel_paired", T2(const Tensor&, const Tensor&, double, bool))
LG_OP(rel_paired_bwd_op, "rel_paired_backward", T2(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double))
LG_OP(all_pairs_op, "rel_all_pairs", T3(const Tensor&, const Tensor&, double, bool))
LG_OP(all_pairs_bwd_op, "rel_all_pairs_backward",
      T2(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double))
LG_OP(average_op, "rel_average", T2(const Tensor&, const Tensor&, double))
LG_OP(average_bwd_op, "rel_average_backward", T2(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double))
#undef LG_OP

}  // namespace handles
}  // namespace lightning_gans
