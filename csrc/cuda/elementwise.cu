// Elementwise CUDA kernels (softplus_mean, sgan_d, rel_paired, rel_average):
// one pass over the inputs per forward and per backward. Loads are 16-byte
// vectors (float4, 8 halves, 2 doubles) when every pointer is aligned, kUnroll
// of them issued before any is used (grid-stride, no load waits behind another);
// the remainder (and unaligned inputs) take a scalar grid-stride loop.
// Coefficients (sign, 1/N) are kernel arguments; the upstream gradient and the
// batch statistics are read on the device.
#include <c10/cuda/CUDAException.h>

#include "../gan_math.h"
#include "common.cuh"

namespace lightning_gans {
namespace cuda {
namespace {

using namespace dev;

constexpr int64_t kMaxLevel1Blocks = 1024;  // level 2 then sums <= 1024 partials per quantity
constexpr int64_t kMaxBackwardBlocks = 4096;

struct Segs { Seg s[2]; };
struct BwdSegs { BwdSeg s[2]; };

bool aligned16(const void* p) { return p == nullptr || reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Adds the summand(s) of z to (s0, s1).
template <int KIND, typename A>
__device__ __forceinline__ void accumulate(A z, A& s0, A& s1) {
  if constexpr (KIND == int(Reduce::sum)) {
    s0 += z;
  } else if constexpr (KIND == int(Reduce::sp)) {
    s0 += math::softplus(z);
  } else {
    A sp, sg;
    math::softplus_sigmoid(z, sp, sg);
    s0 += sp;
    s1 += sg;
  }
}

template <typename T, int KIND, bool TWO>
__global__ void __launch_bounds__(kThreads)
    level1_kernel(Segs segs, int nseg, bool vec, const double* shift_partials, double* partials) {
  using A = acc_t<T>;
  constexpr int W = kVec<T>;
  __shared__ double buf[kThreads];
  const int64_t G = gridDim.x;
  for (int s = 0; s < nseg; ++s) {
    const Seg& g = segs.s[s];
    const T* x = static_cast<const T*>(g.x);
    const T* y = static_cast<const T*>(g.y);
    double shift = 0.0;
    if (shift_partials && g.shift_src >= 0) {  // block-uniform: every block gets the same mean
      shift = g.shift_coef * (fixed_sum(shift_partials + 2 * g.shift_src * G, G, buf) /
                              double(segs.s[g.shift_src].n));
    }
    const A a = static_cast<A>(g.a), c = static_cast<A>(g.c), b = static_cast<A>(g.b + shift);
    double acc0 = 0.0, acc1 = 0.0;
    const int64_t nvec = vec ? g.n / W : 0;
    for (int64_t v0 = blockIdx.x * int64_t(kThreads) * kUnroll + threadIdx.x; v0 < nvec;
         v0 += G * kThreads * kUnroll) {
      A xv[kUnroll][W], yv[kUnroll][TWO ? W : 1];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {  // all loads first: kUnroll independent requests
        const int64_t v = v0 + int64_t(u) * kThreads;
        if (v < nvec) {
          load_vec(x, v, xv[u]);
          if constexpr (TWO) load_vec(y, v, yv[u]);
        }
      }
      A p0 = A(0), p1 = A(0);  // float over kUnroll * W elements, then double
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (v0 + int64_t(u) * kThreads < nvec) {
#pragma unroll
          for (int w = 0; w < W; ++w) {
            A z = KIND == int(Reduce::sum) ? xv[u][w] : a * xv[u][w] + b;
            if constexpr (TWO) z += c * yv[u][w];
            accumulate<KIND>(z, p0, p1);
          }
        }
      }
      acc0 += double(p0);
      acc1 += double(p1);
    }
    A p0 = A(0), p1 = A(0);
    for (int64_t k = nvec * W + blockIdx.x * int64_t(kThreads) + threadIdx.x; k < g.n; k += G * kThreads) {
      A z = KIND == int(Reduce::sum) ? to_acc(x[k]) : a * to_acc(x[k]) + b;
      if constexpr (TWO) z += c * to_acc(y[k]);
      accumulate<KIND>(z, p0, p1);
    }
    acc0 += double(p0);
    acc1 += double(p1);
    const double t0 = block_sum(acc0, buf);
    if (threadIdx.x == 0) partials[(2 * s) * G + blockIdx.x] = t0;
    if constexpr (KIND == int(Reduce::sp_sig)) {
      const double t1 = block_sum(acc1, buf);
      if (threadIdx.x == 0) partials[(2 * s + 1) * G + blockIdx.x] = t1;
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads) level2_kernel(const double* partials, int64_t G, Finish f, T* loss) {
  __shared__ double buf[kThreads];
  double total = 0.0, S[4] = {0, 0, 0, 0};
  for (int q = 0; q < 4; ++q) {
    if (f.w[q] != 0.0 || (f.stats && (q == 1 || q == 3))) S[q] = fixed_sum(partials + q * G, G, buf);
    total += f.w[q] * S[q];
  }
  double m0 = 0.0, m1 = 0.0;
  if (f.stats) {  // the same sums and divisions as level1_kernel's shift: the same bits
    m0 = fixed_sum(f.mean_partials, G, buf) / f.n0;
    m1 = fixed_sum(f.mean_partials + 2 * G, G, buf) / f.n1;
  }
  if (threadIdx.x == 0) {
    *loss = from_acc<T>(total);
    if (f.stats) {
      f.stats[0] = m0;
      f.stats[1] = m1;
      f.stats[2] = S[1];
      f.stats[3] = S[3];
    }
  }
}

template <typename T, bool TWO>
__global__ void __launch_bounds__(kThreads)
    sigmoid_backward_kernel(BwdSegs segs, int nseg, bool vec, const void* grad, DType gd, const double* stats) {
  using A = acc_t<T>;
  constexpr int W = kVec<T>;
  const double gv = read_scalar(grad, gd);
  const int64_t G = gridDim.x;
  for (int s = 0; s < nseg; ++s) {
    const BwdSeg& g = segs.s[s];
    const T* x = static_cast<const T*>(g.x);
    const T* y = static_cast<const T*>(g.y);
    T* out = static_cast<T*>(g.out);
    T* neg = static_cast<T*>(g.out_neg);
    const A a = static_cast<A>(g.a), c = static_cast<A>(g.c);
    const A b = static_cast<A>(g.b + (g.b_stat >= 0 ? g.b_coef * stats[g.b_stat] : 0.0));
    const A add = static_cast<A>(g.add_stat >= 0 ? g.add_coef * stats[g.add_stat] : 0.0);
    const A k = static_cast<A>(g.coef * gv);
    const int64_t nvec = vec ? g.n / W : 0;
    for (int64_t v0 = blockIdx.x * int64_t(kThreads) * kUnroll + threadIdx.x; v0 < nvec;
         v0 += G * kThreads * kUnroll) {
      A xv[kUnroll][W], yv[kUnroll][TWO ? W : 1];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t v = v0 + int64_t(u) * kThreads;
        if (v < nvec) {
          load_vec(x, v, xv[u]);
          if constexpr (TWO) load_vec(y, v, yv[u]);
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t v = v0 + int64_t(u) * kThreads;
        if (v < nvec) {
          A o[W];
#pragma unroll
          for (int w = 0; w < W; ++w) {
            A z = a * xv[u][w] + b;
            if constexpr (TWO) z += c * yv[u][w];
            o[w] = k * (math::sigmoid(z) + add);
          }
          store_vec(out, v, o);
          if (neg) {
#pragma unroll
            for (int w = 0; w < W; ++w) o[w] = -o[w];
            store_vec(neg, v, o);
          }
        }
      }
    }
    for (int64_t e = nvec * W + blockIdx.x * int64_t(kThreads) + threadIdx.x; e < g.n; e += G * kThreads) {
      A z = a * to_acc(x[e]) + b;
      if constexpr (TWO) z += c * to_acc(y[e]);
      const A o = k * (math::sigmoid(z) + add);
      out[e] = from_acc<T>(o);
      if (neg) neg[e] = from_acc<T>(-o);
    }
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    saved_backward_kernel(const acc_t<T>* g, int64_t n, double coef, const void* grad, DType gd, T* out, T* neg) {
  using A = acc_t<T>;
  const A k = static_cast<A>(coef * read_scalar(grad, gd));
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  for (int64_t e0 = blockIdx.x * int64_t(kThreads) + threadIdx.x; e0 < n; e0 += stride * kUnroll) {
    A gv[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) gv[u] = e0 + u * stride < n ? g[e0 + u * stride] : A(0);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t e = e0 + u * stride;
      if (e < n) {
        out[e] = from_acc<T>(k * gv[u]);
        if (neg) neg[e] = from_acc<T>(-k * gv[u]);
      }
    }
  }
}

int64_t vec_width(DType d) { return d == DType::f64 ? 2 : (d == DType::f32 ? 4 : 8); }

unsigned backward_blocks(DType d, int64_t n_total) {
  const int64_t per_block = int64_t(kThreads) * kUnroll * vec_width(d);
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(kMaxBackwardBlocks, (n_total + per_block - 1) / per_block)));
}

}  // namespace

int64_t reduce_blocks(DType d, int64_t n_total) {
  const int64_t per_block = int64_t(kThreads) * kUnroll * vec_width(d);
  return std::max<int64_t>(1, std::min(kMaxLevel1Blocks, (n_total + per_block - 1) / per_block));
}

void reduce_level1(DType d, Reduce kind, const Seg* segs, int nseg, int64_t G, const double* shift_partials,
                   double* partials, cudaStream_t stream) {
  Segs s;
  bool vec = true;
  for (int k = 0; k < nseg; ++k) {
    s.s[k] = segs[k];
    vec = vec && aligned16(segs[k].x) && aligned16(segs[k].y);
  }
  const bool two = segs[0].y != nullptr;
  const auto blocks = static_cast<unsigned>(G);
  LG_CUDA_DISPATCH(d, {
    if (kind == Reduce::sum) {
      level1_kernel<T, int(Reduce::sum), false><<<blocks, kThreads, 0, stream>>>(s, nseg, vec, shift_partials, partials);
    } else if (kind == Reduce::sp_sig) {
      level1_kernel<T, int(Reduce::sp_sig), false>
          <<<blocks, kThreads, 0, stream>>>(s, nseg, vec, shift_partials, partials);
    } else if (two) {
      level1_kernel<T, int(Reduce::sp), true><<<blocks, kThreads, 0, stream>>>(s, nseg, vec, shift_partials, partials);
    } else {
      level1_kernel<T, int(Reduce::sp), false><<<blocks, kThreads, 0, stream>>>(s, nseg, vec, shift_partials, partials);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void reduce_level2(DType d, const double* partials, int64_t G, const Finish& f, void* loss, cudaStream_t stream) {
  LG_CUDA_DISPATCH(d, (level2_kernel<T><<<1, kThreads, 0, stream>>>(partials, G, f, static_cast<T*>(loss))));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void sigmoid_backward(DType d, const BwdSeg* segs, int nseg, const void* grad, DType grad_dtype, const double* stats,
                      cudaStream_t stream) {
  BwdSegs s;
  bool vec = true;
  int64_t total = 0;
  for (int k = 0; k < nseg; ++k) {
    s.s[k] = segs[k];
    vec = vec && aligned16(segs[k].x) && aligned16(segs[k].y) && aligned16(segs[k].out) && aligned16(segs[k].out_neg);
    total += segs[k].n;
  }
  const bool two = segs[0].y != nullptr;
  const unsigned blocks = backward_blocks(d, total);
  LG_CUDA_DISPATCH(d, {
    if (two) {
      sigmoid_backward_kernel<T, true><<<blocks, kThreads, 0, stream>>>(s, nseg, vec, grad, grad_dtype, stats);
    } else {
      sigmoid_backward_kernel<T, false><<<blocks, kThreads, 0, stream>>>(s, nseg, vec, grad, grad_dtype, stats);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

void saved_backward(DType d, const void* g, int64_t n, double coef, const void* grad, DType grad_dtype, void* out,
                    void* out_neg, cudaStream_t stream) {
  const unsigned blocks = backward_blocks(d, n);
  LG_CUDA_DISPATCH(d, (saved_backward_kernel<T><<<blocks, kThreads, 0, stream>>>(
                          static_cast<const acc_t<T>*>(g), n, coef, grad, grad_dtype, static_cast<T*>(out),
                          static_cast<T*>(out_neg))));
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

}  // namespace cuda
}  // namespace lightning_gans
