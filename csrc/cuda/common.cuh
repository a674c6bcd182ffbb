// Device helpers shared by the CUDA kernels: dtype mapping, vectorised
// loads/stores, reading the 0-d upstream gradient on the device, and a
// fixed-order block reduction (the same tree on every run and every GPU, so
// results are bitwise reproducible; no atomics anywhere).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels.h"

namespace lightning_gans {
namespace cuda {
namespace dev {

constexpr int kThreads = 256;
constexpr int kUnroll = 4;  // independent 16-byte loads in flight per thread and iteration

// Storage types: at::Half / at::BFloat16 have the layout of __half / __nv_bfloat16.
template <typename T> struct Acc { using type = float; };
template <> struct Acc<double> { using type = double; };
template <typename T> using acc_t = typename Acc<T>::type;

// Elements per 16-byte vector.
template <typename T> constexpr int kVec = 16 / sizeof(T);

__device__ __forceinline__ float to_acc(float v) { return v; }
__device__ __forceinline__ double to_acc(double v) { return v; }
__device__ __forceinline__ float to_acc(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_acc(float v);
template <> __device__ __forceinline__ float from_acc<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <typename T> __device__ __forceinline__ T from_acc(double v) {
  if constexpr (std::is_same_v<T, double>) return v;
  else return from_acc<T>(static_cast<float>(v));
}

// One 16-byte vector: kVec<T> elements of x starting at element W*v, converted.
template <typename T>
__device__ __forceinline__ void load_vec(const T* x, int64_t v, acc_t<T> (&out)[kVec<T>]) {
  union { uint4 u; T t[kVec<T>]; } raw;
  raw.u = __ldg(reinterpret_cast<const uint4*>(x) + v);
#pragma unroll
  for (int w = 0; w < kVec<T>; ++w) out[w] = to_acc(raw.t[w]);
}

template <typename T>
__device__ __forceinline__ void store_vec(T* x, int64_t v, const acc_t<T> (&in)[kVec<T>]) {
  union { uint4 u; T t[kVec<T>]; } raw;
#pragma unroll
  for (int w = 0; w < kVec<T>; ++w) raw.t[w] = from_acc<T>(in[w]);
  reinterpret_cast<uint4*>(x)[v] = raw.u;
}

// The upstream gradient: a 0-d tensor of any float dtype, read on the device
// (no host synchronisation).
__device__ __forceinline__ double read_scalar(const void* p, DType d) {
  switch (d) {
    case DType::f32: return *static_cast<const float*>(p);
    case DType::f64: return *static_cast<const double*>(p);
    case DType::f16: return __half2float(*static_cast<const __half*>(p));
    default: return __bfloat162float(*static_cast<const __nv_bfloat16*>(p));
  }
}

// Sum of v over the block's kThreads threads, by a fixed tree in shared
// memory; every thread gets the result. `buf` holds kThreads doubles.
__device__ __forceinline__ double block_sum(double v, double* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
#pragma unroll
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) buf[threadIdx.x] += buf[threadIdx.x + w];
    __syncthreads();
  }
  const double r = buf[0];
  __syncthreads();  // buf may be reused right after
  return r;
}

// p[0] + ... + p[count-1] in a fixed order (thread t sums t, t + kThreads, ...
// in sequence, then the tree): the same bits in every block that calls it.
__device__ __forceinline__ double fixed_sum(const double* p, int64_t count, double* buf) {
  double s = 0.0;
  for (int64_t k = threadIdx.x; k < count; k += kThreads) s += p[k];
  return block_sum(s, buf);
}

}  // namespace dev
}  // namespace cuda
}  // namespace lightning_gans

// T names the storage type (float, double, __half, __nv_bfloat16) inside the body.
#define LG_CUDA_DISPATCH(d, ...)                                                  \
  switch (d) {                                                                    \
    case ::lightning_gans::cuda::DType::f32: { using T = float; __VA_ARGS__; break; }  \
    case ::lightning_gans::cuda::DType::f64: { using T = double; __VA_ARGS__; break; } \
    case ::lightning_gans::cuda::DType::f16: { using T = __half; __VA_ARGS__; break; } \
    default: { using T = __nv_bfloat16; __VA_ARGS__; break; }                     \
  }
