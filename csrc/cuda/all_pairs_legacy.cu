// The previous all-pairs kernel, kept selectable (LIGHTNING_GANS_CUDA_ALL_PAIRS=legacy)
// until a GPU run has compared it with the tiled one (all_pairs.cu): one warp
// per row for the loss and row sums, then one warp per column for the column
// sums, so every pair's exp/log is computed twice with gradients.
#include <c10/cuda/CUDAException.h>

#include "../gan_math.h"
#include "common.cuh"

namespace lightning_gans {
namespace cuda {
namespace legacy {
namespace {

using namespace dev;
constexpr int kWarpsPerBlock = kThreads / 32;

int grid_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

template <typename T, typename A>
__global__ void scale_kernel(const T* x, int64_t n, double s, A* out) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    out[k] = A(s) * static_cast<A>(to_acc(x[k]));
  }
}

// One warp per own element; lanes stride over `other` and keep double
// accumulators; a fixed shuffle tree combines the lanes.
template <typename A>
__global__ void pair_strips_kernel(const A* own, int64_t n_own, const A* other, int64_t n_other, A sgn,
                                   double* sp_out, A* sig_out) {
  const int64_t k = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (k >= n_own) return;
  const A o = own[k];
  double s_sp = 0, s_sig = 0;
  for (int64_t l = lane; l < n_other; l += 32) {
    const A z = sgn * (other[l] - o);
    if (sp_out) {
      A sp, sg;
      math::softplus_sigmoid(z, sp, sg);
      s_sp += sp;
      s_sig += sg;
    } else {
      s_sig += math::sigmoid(z);
    }
  }
  for (int w = 16; w > 0; w >>= 1) {
    s_sp += __shfl_down_sync(0xffffffffu, s_sp, w);
    s_sig += __shfl_down_sync(0xffffffffu, s_sig, w);
  }
  if (lane == 0) {
    if (sp_out) sp_out[k] = s_sp;
    if (sig_out) sig_out[k] = static_cast<A>(s_sig);
  }
}

template <typename T>
__global__ void sum_to_loss_kernel(const double* p, int64_t count, double scale, T* loss) {
  __shared__ double buf[kThreads];
  const double s = fixed_sum(p, count, buf);
  if (threadIdx.x == 0) *loss = from_acc<T>(s * scale);
}

}  // namespace

void scale_to_acc(DType d, const void* x, int64_t n, double s, void* out, cudaStream_t stream) {
  LG_CUDA_DISPATCH(d, (scale_kernel<T, acc_t<T>><<<grid_for(n), kThreads, 0, stream>>>(
                          static_cast<const T*>(x), n, s, static_cast<acc_t<T>*>(out))));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void pair_strips(bool f64, const void* own, int64_t n_own, const void* other, int64_t n_other, double sgn,
                 double* sp_out, void* sig_out, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>((n_own + kWarpsPerBlock - 1) / kWarpsPerBlock);
  if (f64) {
    pair_strips_kernel<double><<<blocks, kThreads, 0, stream>>>(static_cast<const double*>(own), n_own,
                                                                static_cast<const double*>(other), n_other, sgn,
                                                                sp_out, static_cast<double*>(sig_out));
  } else {
    pair_strips_kernel<float><<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(own), n_own,
                                                               static_cast<const float*>(other), n_other,
                                                               static_cast<float>(sgn), sp_out,
                                                               static_cast<float*>(sig_out));
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void sum_to_loss(DType d, const double* p, int64_t count, double scale, void* loss, cudaStream_t stream) {
  LG_CUDA_DISPATCH(d, (sum_to_loss_kernel<T><<<1, kThreads, 0, stream>>>(p, count, scale, static_cast<T*>(loss))));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace legacy
}  // namespace cuda
}  // namespace lightning_gans
