// CUDA kernels of the lightning_gans ops; see kernels.h for the contract.
// Math comes from ../gan_math.h, shared with the CPU kernels. Half inputs are
// computed and accumulated in float32; partial sums are kept in double.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "../gan_math.h"
#include "kernels.h"

namespace lightning_gans {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kPerThread = 8;
constexpr int64_t kItems = int64_t(kThreads) * kPerThread;  // elements per level-1 block
constexpr int kWarpsPerBlock = kThreads / 32;

void check_launch(const char* what) {
  const cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("lightning_gans CUDA kernel ") + what + " failed: " + cudaGetErrorString(err));
  }
}

// Storage types: at::Half / at::BFloat16 have the layout of __half / __nv_bfloat16.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };

__device__ __forceinline__ float load(const float* p, int64_t k) { return p[k]; }
__device__ __forceinline__ double load(const double* p, int64_t k) { return p[k]; }
__device__ __forceinline__ float load(const __half* p, int64_t k) { return __half2float(p[k]); }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t k) { return __bfloat162float(p[k]); }

__device__ __forceinline__ void store(float* p, int64_t k, double v) { p[k] = static_cast<float>(v); }
__device__ __forceinline__ void store(double* p, int64_t k, double v) { p[k] = v; }
__device__ __forceinline__ void store(__half* p, int64_t k, double v) { p[k] = __float2half_rn(static_cast<float>(v)); }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t k, double v) {
  p[k] = __float2bfloat16_rn(static_cast<float>(v));
}

// Fixed-order block reduction of two doubles (tree in shared memory).
__device__ void block_sum2(double& a, double& b) {
  __shared__ double sa[kThreads], sb[kThreads];
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      sa[threadIdx.x] += sa[threadIdx.x + w];
      sb[threadIdx.x] += sb[threadIdx.x + w];
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
}

template <typename T, bool TWO>
__global__ void sp_partials_kernel(const T* x, const T* y, int64_t n, double a, double c, double b,
                                   const double* shift, double shift_scale, bool want_sig, bool identity,
                                   double* partials) {
  using A = typename Acc<T>::type;
  const A off = static_cast<A>(b + (shift ? shift_scale * shift[0] : 0.0));
  const int64_t base = int64_t(blockIdx.x) * kItems;
  A s_sp = 0, s_sig = 0;
#pragma unroll
  for (int it = 0; it < kPerThread; ++it) {
    const int64_t k = base + int64_t(it) * kThreads + threadIdx.x;  // coalesced
    if (k < n) {
      if (identity) {
        s_sp += load(x, k);
        continue;
      }
      A z = load(x, k) * A(a) + off;
      if (TWO) z = z + load(y, k) * A(c);
      A sp, sg;
      math::softplus_sigmoid(z, sp, sg);
      s_sp += sp;
      if (want_sig) s_sig += sg;
    }
  }
  double da = s_sp, db = s_sig;
  block_sum2(da, db);
  if (threadIdx.x == 0) {
    partials[2 * blockIdx.x] = da;
    partials[2 * blockIdx.x + 1] = db;
  }
}

__global__ void reduce_kernel(const double* p, int64_t count, int stride, double* res) {
  double a = 0, b = 0;
  for (int64_t k = threadIdx.x; k < count; k += kThreads) {
    a += p[stride * k];
    if (stride == 2) b += p[stride * k + 1];
  }
  block_sum2(a, b);
  if (threadIdx.x == 0) {
    res[0] = a;
    res[1] = b;
  }
}

template <typename T>
__global__ void write_loss_kernel(T* out, const double* r0, double w0, const double* r1, double w1) {
  store(out, 0, w0 * r0[0] + (r1 ? w1 * r1[0] : 0.0));
}

__global__ void average_stats_kernel(double* st, const double* sr, int64_t n, const double* sf, int64_t m,
                                     const double* sa, const double* sb) {
  st[0] = sr[0] / n;
  st[1] = sf[0] / m;
  st[2] = sa[1];
  st[3] = sb[1];
}

template <typename T>
__global__ void sig_affine_kernel(const T* x, const T* y, int64_t n, double a, double c, double b,
                                  const double* shift, double shift_scale, const double* coef_x, const double* add_x,
                                  T* out_x, const double* coef_y, const double* add_y, T* out_y) {
  using A = typename Acc<T>::type;
  const A off = static_cast<A>(b + (shift ? shift_scale * shift[0] : 0.0));
  const A cx = static_cast<A>(coef_x[0]), ax = add_x ? static_cast<A>(add_x[0]) : A(0);
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    A z = load(x, k) * A(a) + off;
    if (y) z = z + load(y, k) * A(c);
    const A sg = math::sigmoid(z);
    store(out_x, k, cx * sg + ax);
    if (out_y) store(out_y, k, static_cast<A>(coef_y[0]) * sg + (add_y ? static_cast<A>(add_y[0]) : A(0)));
  }
}

template <typename T, typename A>
__global__ void scale_kernel(const T* x, int64_t n, double s, A* out) {
  for (int64_t k = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; k < n; k += int64_t(gridDim.x) * blockDim.x) {
    out[k] = A(s) * static_cast<A>(load(x, k));
  }
}

// One warp per own element; lanes stride over `other` (coalesced) and keep
// double accumulators; a fixed shuffle tree combines the lanes.
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

int grid_for(int64_t n) { return static_cast<int>(std::min<int64_t>((n + kThreads - 1) / kThreads, 65535)); }

#define LG_CUDA_DISPATCH(d, ...)                                 \
  switch (d) {                                                   \
    case DType::f32: { using T = float; __VA_ARGS__; break; }    \
    case DType::f64: { using T = double; __VA_ARGS__; break; }   \
    case DType::f16: { using T = __half; __VA_ARGS__; break; }   \
    default: { using T = __nv_bfloat16; __VA_ARGS__; break; }    \
  }

}  // namespace

int64_t num_partials(int64_t n) { return (n + kItems - 1) / kItems; }

void sp_partials(DType d, const void* x, const void* y, int64_t n, double a, double c, double b, const double* shift,
                 double shift_scale, bool want_sig, bool identity, double* partials, cudaStream_t stream) {
  const auto blocks = static_cast<unsigned>(num_partials(n));
  LG_CUDA_DISPATCH(d, {
    if (y) {
      sp_partials_kernel<T, true><<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(x), static_cast<const T*>(y),
                                                                   n, a, c, b, shift, shift_scale, want_sig, identity,
                                                                   partials);
    } else {
      sp_partials_kernel<T, false><<<blocks, kThreads, 0, stream>>>(static_cast<const T*>(x), nullptr, n, a, c, b,
                                                                    shift, shift_scale, want_sig, identity, partials);
    }
  });
  check_launch("sp_partials");
}

void reduce(const double* p, int64_t count, int stride, double* res, cudaStream_t stream) {
  reduce_kernel<<<1, kThreads, 0, stream>>>(p, count, stride, res);
  check_launch("reduce");
}

void write_loss(DType d, void* out, const double* r0, double w0, const double* r1, double w1, cudaStream_t stream) {
  LG_CUDA_DISPATCH(d, (write_loss_kernel<T><<<1, 1, 0, stream>>>(static_cast<T*>(out), r0, w0, r1, w1)));
  check_launch("write_loss");
}

void write_average_stats(double* stats, const double* sum_r, int64_t n, const double* sum_f, int64_t m,
                         const double* sa, const double* sb, cudaStream_t stream) {
  average_stats_kernel<<<1, 1, 0, stream>>>(stats, sum_r, n, sum_f, m, sa, sb);
  check_launch("average_stats");
}

void sig_affine(DType d, const void* x, const void* y, int64_t n, double a, double c, double b, const double* shift,
                double shift_scale, const double* coef_x, const double* add_x, void* out_x, const double* coef_y,
                const double* add_y, void* out_y, cudaStream_t stream) {
  LG_CUDA_DISPATCH(d, (sig_affine_kernel<T><<<grid_for(n), kThreads, 0, stream>>>(
                          static_cast<const T*>(x), static_cast<const T*>(y), n, a, c, b, shift, shift_scale, coef_x,
                          add_x, static_cast<T*>(out_x), coef_y, add_y, static_cast<T*>(out_y))));
  check_launch("sig_affine");
}

void scale_to_acc(DType d, const void* x, int64_t n, double s, void* out, cudaStream_t stream) {
  if (d == DType::f64) {
    scale_kernel<double, double><<<grid_for(n), kThreads, 0, stream>>>(static_cast<const double*>(x), n, s,
                                                                       static_cast<double*>(out));
  } else {
    LG_CUDA_DISPATCH(d, (scale_kernel<T, float><<<grid_for(n), kThreads, 0, stream>>>(static_cast<const T*>(x), n, s,
                                                                                        static_cast<float*>(out))));
  }
  check_launch("scale_to_acc");
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
  check_launch("pair_strips");
}

}  // namespace cuda
}  // namespace lightning_gans
