// Batch norm 2d on the GPU (float32 data, double sums). The math is in batchnorm2d.h.
// Layouts: x, y, gy, gx NCHW contiguous. Channel c's n = N*H*W values are N rows of HW floats, a row every
//   C*HW floats. A channel's flat index j = r*HW + k (row r, column k) is walked by threads with a stride;
//   where HW is a multiple of 4 (every Lite0 map but the last, 7x7 at 224 px and 5x5 at 160 px) and the
//   pointers are 16-byte aligned, rows are read as float4 (V = 4), else as floats (V = 1).
// Thread mapping and versions:
//   v1 TwoPass  forward: a block of 256 per channel sums x (double) -> mean; a second kernel, again a block
//               per channel, sums (x - mean)^2 -> var, finalises (mean, inv_std, running statistics); an
//               elementwise apply kernel writes y = (x - mean) * w inv_std + b. x is read three times.
//               backward: a block per channel sums g and g (x - mean); its thread 0 writes dw, db and the
//               per-channel coefficients of dx; an elementwise kernel writes dx.
//   v2 OnePass  forward: one kernel, a block per channel: shifted sums s1 = sum (x - K), s2 = sum (x - K)^2
//               with K the channel's first value (no cancellation when |mean| >> std), the block reduction of
//               kernels/block_reduce.cuh, thread 0 finalises into shared memory, then the same block writes
//               its channel's y (the second read mostly hits L2). backward: the same, fused.
//   v3 Split    a channel is cut into S contiguous slices of its flat index, one block each (grid S x C), so
//               that a layer with few channels and large maps (Lite0's stem: 32 channels of 112x112 at batch
//               32) still fills the GPU. Each block writes its partial sums (double2) to a workspace; a
//               second kernel, a thread per channel, adds the S partials in slice order (deterministic) and
//               finalises; the elementwise kernel applies. S = about 4 blocks per SM over the channels, with at
//               least 4096 values per block; S = 1 runs v2.
//   cuDNN       cudnnBatchNormalizationForwardTraining / ForwardInference / Backward (spatial mode): the
//               vendor baseline. Its running variance is unbiased too (PyTorch's CUDA path is this call).
//               Backward with running statistics (not in cuDNN) runs v2.
// Every sum runs in an order fixed by the shape: a run reproduces bitwise.
#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "core/allocator.h"
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/batchnorm2d.h"
#include "kernels/block_reduce.cuh"
#include "kernels/cudnn_desc.h"
#include "kernels/launch.cuh"
#include "kernels/launch.h"

namespace fn::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMinSliceValues = 4096;  // v3: fewer values per block cost more in launches than they gain

// The shape every kernel takes; HWv = HW / V units of V floats per row.
struct Geom {
  int64_t N, C, HW;
  __host__ __device__ int64_t count() const { return N * HW; }
};

template <int V>
__device__ __forceinline__ void load(const float* __restrict__ p, float (&v)[V]) {
  if constexpr (V == 4) {
    const float4 t = *reinterpret_cast<const float4*>(p);
    v[0] = t.x, v[1] = t.y, v[2] = t.z, v[3] = t.w;
  } else {
    v[0] = *p;
  }
}
template <int V>
__device__ __forceinline__ void store(float* p, const float (&v)[V]) {
  if constexpr (V == 4) {
    *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  } else {
    *p = v[0];
  }
}

// Calls f(offset) for the units u = first, first + step, ... < last of channel c (u = r*HWv + k), offset being
// the unit's first float in the NCHW tensor. The row index advances by a fixed step, not a division per unit.
template <int V, class F>
__device__ __forceinline__ void walk_channel(const Geom& g, int64_t c, int64_t first, int64_t last, int step, F&& f) {
  if (first >= last) return;
  const int64_t HWv = g.HW / V;
  int64_t r = first / HWv, k = first - r * HWv;
  const int64_t dr = step / HWv, dk = step - dr * HWv;  // a step is dr whole rows and dk more units
  for (int64_t u = first; u < last; u += step) {
    f((r * g.C + c) * g.HW + k * V);
    r += dr, k += dk;
    if (k >= HWv) k -= HWv, ++r;
  }
}

// From a channel's sums to its saved statistics and running update (one thread per channel).
__device__ void finalize_stats(int64_t c, double mean, double var, int64_t n, double momentum, double eps,
                               float* running_mean, float* running_var, float* save_mean, float* save_inv_std) {
  save_mean[c] = float(mean);
  save_inv_std[c] = float(1.0 / sqrt(var + eps));
  if (running_mean) running_mean[c] = float((1 - momentum) * double(running_mean[c]) + momentum * mean);
  if (running_var && n > 1)
    running_var[c] = float((1 - momentum) * double(running_var[c]) + momentum * var * double(n) / double(n - 1));
}

// The per-channel coefficients of dx = A (g + C0) + B (x - mean), and dw = GX, db = G (GX = inv_std sum g (x - mean)).
struct GradCoef {
  float A, B, C0;
};
__device__ GradCoef finalize_grad(int64_t c, double G, double GXraw, int64_t n, bool batch, const float* w,
                                  const float* inv_std, float* gw, float* gb) {
  const double is = inv_std[c], A = (w ? double(w[c]) : 1.0) * is, GX = GXraw * is;
  if (gw) gw[c] = float(GX);
  if (gb) gb[c] = float(G);
  GradCoef k{float(A), 0.f, 0.f};
  if (batch) k.B = float(-A * is * GX / double(n)), k.C0 = float(-G / double(n));
  return k;
}

// ---------------------------------------------------------------- shared pieces

// y = (x - mean) * (w inv_std) + b, one thread per V floats.
template <int V>
__global__ void apply_kernel(const float* __restrict__ x, const float* __restrict__ mean, const float* __restrict__ inv_std,
                             const float* __restrict__ w, const float* __restrict__ b, Geom g, float* __restrict__ y) {
  const int64_t HWv = g.HW / V, units = g.N * g.C * HWv;
  FN_GRID_STRIDE(u, units) {
    const int64_t c = (u / HWv) % g.C;
    const float m = mean[c], a = (w ? w[c] : 1.f) * inv_std[c], bc = b ? b[c] : 0.f;
    float v[V];
    load<V>(x + u * V, v);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = fmaf(v[i] - m, a, bc);
    store<V>(y + u * V, v);
  }
}

// dx = A (g + C0) + B (x - mean) (Batch), A g (Running), one thread per V floats.
template <int V>
__global__ void grad_apply_kernel(const float* __restrict__ gy, const float* __restrict__ x, const float* __restrict__ mean,
                                  const GradCoef* __restrict__ coef, bool batch, Geom g, float* __restrict__ gx) {
  const int64_t HWv = g.HW / V, units = g.N * g.C * HWv;
  FN_GRID_STRIDE(u, units) {
    const int64_t c = (u / HWv) % g.C;
    const GradCoef k = coef[c];
    float gv[V];
    load<V>(gy + u * V, gv);
    if (batch) {
      float xv[V];
      load<V>(x + u * V, xv);
      const float m = mean[c];
#pragma unroll
      for (int i = 0; i < V; ++i) gv[i] = fmaf(gv[i] + k.C0, k.A, (xv[i] - m) * k.B);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) gv[i] *= k.A;
    }
    store<V>(gx + u * V, gv);
  }
}

// Running statistics: the saved mean and inv_std are the running ones (a thread per channel).
__global__ void running_stats_kernel(const float* rm, const float* rv, double eps, int64_t C, float* mean,
                                     float* inv_std) {
  FN_GRID_STRIDE(c, C) {
    mean[c] = rm[c];
    inv_std[c] = float(1.0 / sqrt(double(rv[c]) + eps));
  }
}

// Backward coefficients where no sum is needed (Running statistics, no dw or db).
__global__ void running_coef_kernel(const float* w, const float* inv_std, int64_t C, GradCoef* coef) {
  FN_GRID_STRIDE(c, C) coef[c] = GradCoef{(w ? w[c] : 1.f) * inv_std[c], 0.f, 0.f};
}

// One block's sums over its units of channel c: (sum a, sum a b) with a, b from f(offset, a, b) per float.
// Forward: a = x - K, b = a. Backward: a = g, b = x - mean.
template <int V, bool kGrad>
__device__ __forceinline__ void block_sums(const float* __restrict__ p, const float* __restrict__ q, const Geom& g,
                                           int64_t c, int64_t first, int64_t last, double shift, double& s1,
                                           double& s2) {
  double a1 = 0, a2 = 0;
  walk_channel<V>(g, c, first + threadIdx.x, last, kThreads, [&](int64_t off) {
    float pv[V];
    load<V>(p + off, pv);
    if constexpr (kGrad) {
      float qv[V];
      load<V>(q + off, qv);
#pragma unroll
      for (int i = 0; i < V; ++i) a1 += double(pv[i]), a2 += double(pv[i]) * (double(qv[i]) - shift);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const double e = double(pv[i]) - shift;
        a1 += e, a2 += e * e;
      }
    }
  });
  s1 = block_reduce<kThreads, ReduceSum>(a1);
  s2 = block_reduce<kThreads, ReduceSum>(a2);
}

// ---------------------------------------------------------------- v1: two passes

template <int V>
__global__ void v1_mean_kernel(const float* __restrict__ x, Geom g, double* __restrict__ mean_d) {
  const int64_t c = blockIdx.x;
  double s = 0;
  walk_channel<V>(g, c, threadIdx.x, g.count() / V, kThreads, [&](int64_t off) {
    float v[V];
    load<V>(x + off, v);
#pragma unroll
    for (int i = 0; i < V; ++i) s += double(v[i]);
  });
  s = block_reduce<kThreads, ReduceSum>(s);
  if (threadIdx.x == 0) mean_d[c] = s / double(g.count());
}

template <int V>
__global__ void v1_var_kernel(const float* __restrict__ x, Geom g, const double* __restrict__ mean_d, double momentum,
                              double eps, float* rm, float* rv, float* mean, float* inv_std) {
  const int64_t c = blockIdx.x;
  const double m = mean_d[c];
  double q = 0;
  walk_channel<V>(g, c, threadIdx.x, g.count() / V, kThreads, [&](int64_t off) {
    float v[V];
    load<V>(x + off, v);
#pragma unroll
    for (int i = 0; i < V; ++i) q += (double(v[i]) - m) * (double(v[i]) - m);
  });
  q = block_reduce<kThreads, ReduceSum>(q);
  if (threadIdx.x == 0) finalize_stats(c, m, q / double(g.count()), g.count(), momentum, eps, rm, rv, mean, inv_std);
}

template <int V>
__global__ void v1_grad_reduce_kernel(const float* __restrict__ gy, const float* __restrict__ x, Geom g,
                                      const float* __restrict__ w, const float* __restrict__ mean,
                                      const float* __restrict__ inv_std, bool batch, float* gw, float* gb,
                                      GradCoef* coef) {
  const int64_t c = blockIdx.x;
  double G, GX;
  block_sums<V, true>(gy, x, g, c, 0, g.count() / V, double(mean[c]), G, GX);
  if (threadIdx.x == 0) coef[c] = finalize_grad(c, G, GX, g.count(), batch, w, inv_std, gw, gb);
}

// ---------------------------------------------------------------- v2: one pass, a block per channel, fused

template <int V>
__global__ void v2_forward_kernel(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                                  Geom g, double momentum, double eps, float* rm, float* rv, float* mean,
                                  float* inv_std, float* __restrict__ y) {
  const int64_t c = blockIdx.x, units = g.count() / V;
  const double K = x[c * g.HW];
  double s1, s2;
  block_sums<V, false>(x, nullptr, g, c, 0, units, K, s1, s2);
  __shared__ float sm, sa, sb;
  if (threadIdx.x == 0) {
    const double n = double(g.count()), d1 = s1 / n;
    finalize_stats(c, K + d1, fmax(s2 / n - d1 * d1, 0.0), g.count(), momentum, eps, rm, rv, mean, inv_std);
    sm = mean[c];
    sa = (w ? w[c] : 1.f) * inv_std[c];
    sb = b ? b[c] : 0.f;
  }
  __syncthreads();
  const float m = sm, a = sa, bc = sb;
  walk_channel<V>(g, c, threadIdx.x, units, kThreads, [&](int64_t off) {
    float v[V];
    load<V>(x + off, v);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = fmaf(v[i] - m, a, bc);
    store<V>(y + off, v);
  });
}

template <int V>
__global__ void v2_backward_kernel(const float* __restrict__ gy, const float* __restrict__ x, Geom g,
                                   const float* __restrict__ w, const float* __restrict__ mean,
                                   const float* __restrict__ inv_std, bool batch, float* gw, float* gb,
                                   float* __restrict__ gx) {
  const int64_t c = blockIdx.x, units = g.count() / V;
  const float m = mean[c];
  double G, GX;
  block_sums<V, true>(gy, x, g, c, 0, units, double(m), G, GX);
  __shared__ GradCoef sk;
  if (threadIdx.x == 0) sk = finalize_grad(c, G, GX, g.count(), batch, w, inv_std, gw, gb);
  __syncthreads();
  if (!gx) return;
  const GradCoef k = sk;
  walk_channel<V>(g, c, threadIdx.x, units, kThreads, [&](int64_t off) {
    float gv[V], xv[V];
    load<V>(gy + off, gv);
    if (batch) {
      load<V>(x + off, xv);
#pragma unroll
      for (int i = 0; i < V; ++i) gv[i] = fmaf(gv[i] + k.C0, k.A, (xv[i] - m) * k.B);
    } else {
#pragma unroll
      for (int i = 0; i < V; ++i) gv[i] *= k.A;
    }
    store<V>(gx + off, gv);
  });
}

// ---------------------------------------------------------------- v3: a channel split over S blocks

// Block (s, c) sums slice s of channel c: units [s * units / S, (s + 1) * units / S).
template <int V, bool kGrad>
__global__ void v3_partial_kernel(const float* __restrict__ p, const float* __restrict__ q, Geom g,
                                  const float* __restrict__ mean, double2* __restrict__ part) {
  const int64_t c = blockIdx.y, s = blockIdx.x, S = gridDim.x, units = g.count() / V;
  const double shift = kGrad ? double(mean[c]) : double(p[c * g.HW]);
  double s1, s2;
  block_sums<V, kGrad>(p, q, g, c, s * units / S, (s + 1) * units / S, shift, s1, s2);
  if (threadIdx.x == 0) part[c * S + s] = make_double2(s1, s2);
}

__global__ void v3_combine_stats_kernel(const float* __restrict__ x, Geom g, const double2* __restrict__ part, int S,
                                        double momentum, double eps, float* rm, float* rv, float* mean,
                                        float* inv_std) {
  FN_GRID_STRIDE(c, g.C) {
    double s1 = 0, s2 = 0;
    for (int s = 0; s < S; ++s) s1 += part[c * S + s].x, s2 += part[c * S + s].y;
    const double n = double(g.count()), d1 = s1 / n;
    finalize_stats(c, double(x[c * g.HW]) + d1, fmax(s2 / n - d1 * d1, 0.0), g.count(), momentum, eps, rm, rv, mean,
                   inv_std);
  }
}

__global__ void v3_combine_grad_kernel(const double2* __restrict__ part, int S, Geom g, bool batch, const float* w,
                                       const float* inv_std, float* gw, float* gb, GradCoef* coef) {
  FN_GRID_STRIDE(c, g.C) {
    double G = 0, GX = 0;
    for (int s = 0; s < S; ++s) G += part[c * S + s].x, GX += part[c * S + s].y;
    coef[c] = finalize_grad(c, G, GX, g.count(), batch, w, inv_std, gw, gb);
  }
}

// ---------------------------------------------------------------- host side

// v3's slices per channel: about 4 blocks per SM over all channels, each with at least kMinSliceValues.
int split_slices(const Geom& g) {
  if (g.C > kMaxGridY) return 1;  // v3's grid has a row per channel
  const int64_t want = (4 * int64_t(::fn::cuda::sm_count()) + g.C - 1) / g.C;
  const int64_t most = std::max<int64_t>(1, g.count() / kMinSliceValues);
  return int(std::max<int64_t>(1, std::min<int64_t>({want, most, 1024})));
}

// Scratch for the per-channel coefficients and partial sums, from the engine's workspace.
struct Scratch {
  GradCoef* coef;
  double2* part;  // also v1's double means
};
Scratch scratch(const Geom& g, int S) {
  const size_t coef_bytes = (size_t(g.C) * sizeof(GradCoef) + 255) / 256 * 256;
  char* p = static_cast<char*>(::fn::cuda::workspace(coef_bytes + size_t(g.C) * size_t(S) * sizeof(double2)));
  return {reinterpret_cast<GradCoef*>(p), reinterpret_cast<double2*>(p + coef_bytes)};
}

// Runs launch(std::integral_constant<int, V>) with V = 4 where every row is a whole number of aligned float4s.
template <class L>
void with_width(const Geom& g, std::initializer_list<const float*> ptrs, L&& launch) {
  bool aligned = g.HW % 4 == 0;
  for (const float* p : ptrs) aligned = aligned && reinterpret_cast<uintptr_t>(p) % 16 == 0;
  if (aligned)
    launch(std::integral_constant<int, 4>{});
  else
    launch(std::integral_constant<int, 1>{});
}

void forward_cudnn(const float* x, const float* w, const float* b, float* rm, float* rv, bool batch, double momentum,
                   double eps, const Geom& g, float* y, float* mean, float* inv_std) {
  FN_CHECK(w && b, "batch_norm2d: the cuDNN version needs weight and bias");
  TensorDesc xd(g.N, g.C, 1, g.HW), pd(1, g.C, 1, 1);
  const float one = 1.f, zero = 0.f;
  cudnnHandle_t h = ::fn::cuda::cudnn();
  if (batch) {
    CUDNN_CHECK(cudnnBatchNormalizationForwardTraining(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, x, xd.d, y, pd.d,
                                                       w, b, momentum, rm, rv, eps, mean, inv_std));
  } else {
    CUDNN_CHECK(cudnnBatchNormalizationForwardInference(h, CUDNN_BATCHNORM_SPATIAL, &one, &zero, xd.d, x, xd.d, y,
                                                        pd.d, w, b, rm, rv, eps));
    running_stats_kernel<<<grid_for(g.C), kThreads, 0, ::fn::cuda::stream()>>>(rm, rv, eps, g.C, mean, inv_std);
    CUDA_CHECK_LAUNCH();
  }
}

void backward_cudnn(const float* gy, const float* x, const float* w, const float* mean, const float* inv_std,
                    const Geom& g, float* gx, float* gw, float* gb) {
  FN_CHECK(w, "batch_norm2d backward: the cuDNN version needs the weight");
  // cuDNN writes all three gradients: the ones not wanted go to scratch.
  const size_t x_bytes = size_t(g.N * g.C * g.HW) * sizeof(float), c_bytes = size_t(g.C) * sizeof(float);
  float* sx = gx ? nullptr : static_cast<float*>(device_alloc(Device::CUDA, x_bytes));
  float* sp = gw && gb ? nullptr : static_cast<float*>(device_alloc(Device::CUDA, 2 * c_bytes));
  TensorDesc xd(g.N, g.C, 1, g.HW), pd(1, g.C, 1, 1);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnBatchNormalizationBackward(::fn::cuda::cudnn(), CUDNN_BATCHNORM_SPATIAL, &one, &zero, &one, &zero,
                                              xd.d, x, xd.d, gy, xd.d, gx ? gx : sx, pd.d, w, gw ? gw : sp,
                                              gb ? gb : sp + g.C, CUDNN_BN_MIN_EPSILON, mean, inv_std));
  // (epsilon is not read: the saved mean and inverse std are given)
  // The caching allocator hands a freed block out again only to later work on this same stream.
  if (sx) device_free(Device::CUDA, sx, x_bytes);
  if (sp) device_free(Device::CUDA, sp, 2 * c_bytes);
}

}  // namespace

void batch_norm2d_forward_f32(BatchNormAlgo a, const float* x, const float* w, const float* b, float* rm, float* rv,
                              bool batch, double momentum, double eps, int64_t N, int64_t C, int64_t HW, float* y,
                              float* mean, float* inv_std) {
  const Geom g{N, C, HW};
  if (C == 0) return;
  cudaStream_t st = ::fn::cuda::stream();
  if (a == BatchNormAlgo::Cudnn) return forward_cudnn(x, w, b, rm, rv, batch, momentum, eps, g, y, mean, inv_std);
  if (!batch) {
    running_stats_kernel<<<grid_for(C), kThreads, 0, st>>>(rm, rv, eps, C, mean, inv_std);
    CUDA_CHECK_LAUNCH();
    if (N * HW == 0) return;
    with_width(g, {x, y}, [&](auto v) {
      constexpr int V = decltype(v)::value;
      apply_kernel<V><<<grid_for(N * C * HW / V), kThreads, 0, st>>>(x, mean, inv_std, w, b, g, y);
    });
    CUDA_CHECK_LAUNCH();
    return;
  }
  const int S = a == BatchNormAlgo::TwoPass || a == BatchNormAlgo::OnePass ? 1 : split_slices(g);
  with_width(g, {x, y}, [&](auto v) {
    constexpr int V = decltype(v)::value;
    if (a == BatchNormAlgo::TwoPass) {
      double* mean_d = reinterpret_cast<double*>(scratch(g, 1).part);
      v1_mean_kernel<V><<<unsigned(C), kThreads, 0, st>>>(x, g, mean_d);
      v1_var_kernel<V><<<unsigned(C), kThreads, 0, st>>>(x, g, mean_d, momentum, eps, rm, rv, mean, inv_std);
      apply_kernel<V><<<grid_for(N * C * HW / V), kThreads, 0, st>>>(x, mean, inv_std, w, b, g, y);
    } else if (S == 1) {  // OnePass, and Split where a block per channel already fills the GPU
      v2_forward_kernel<V><<<unsigned(C), kThreads, 0, st>>>(x, w, b, g, momentum, eps, rm, rv, mean, inv_std, y);
    } else {
      double2* part = scratch(g, S).part;
      v3_partial_kernel<V, false><<<dim3(unsigned(S), unsigned(C)), kThreads, 0, st>>>(x, nullptr, g, nullptr, part);
      v3_combine_stats_kernel<<<grid_for(C), kThreads, 0, st>>>(x, g, part, S, momentum, eps, rm, rv, mean, inv_std);
      apply_kernel<V><<<grid_for(N * C * HW / V), kThreads, 0, st>>>(x, mean, inv_std, w, b, g, y);
    }
  });
  CUDA_CHECK_LAUNCH();
}

void batch_norm2d_backward_f32(BatchNormAlgo a, const float* gy, const float* x, const float* w, const float* mean,
                               const float* inv_std, bool batch, int64_t N, int64_t C, int64_t HW, float* gx,
                               float* gw, float* gb) {
  const Geom g{N, C, HW};
  if (C == 0) return;
  if (a == BatchNormAlgo::Cudnn && batch) return backward_cudnn(gy, x, w, mean, inv_std, g, gx, gw, gb);
  if (a == BatchNormAlgo::Cudnn) a = BatchNormAlgo::OnePass;  // cuDNN has no backward by fixed statistics
  cudaStream_t st = ::fn::cuda::stream();
  const bool sums = batch || gw || gb;
  const int S = a == BatchNormAlgo::TwoPass || a == BatchNormAlgo::OnePass ? 1 : split_slices(g);
  with_width(g, {gy, x, gx}, [&](auto v) {
    constexpr int V = decltype(v)::value;
    const unsigned elems = unsigned(grid_for(N * C * HW / V));
    if (!sums) {  // Running statistics, dx only: dx = w inv_std g
      Scratch s = scratch(g, 1);
      running_coef_kernel<<<grid_for(C), kThreads, 0, st>>>(w, inv_std, C, s.coef);
      if (gx) grad_apply_kernel<V><<<elems, kThreads, 0, st>>>(gy, x, mean, s.coef, false, g, gx);
    } else if (a == BatchNormAlgo::TwoPass) {
      Scratch s = scratch(g, 1);
      v1_grad_reduce_kernel<V><<<unsigned(C), kThreads, 0, st>>>(gy, x, g, w, mean, inv_std, batch, gw, gb, s.coef);
      if (gx) grad_apply_kernel<V><<<elems, kThreads, 0, st>>>(gy, x, mean, s.coef, batch, g, gx);
    } else if (S == 1) {
      v2_backward_kernel<V><<<unsigned(C), kThreads, 0, st>>>(gy, x, g, w, mean, inv_std, batch, gw, gb, gx);
    } else {
      Scratch s = scratch(g, S);
      v3_partial_kernel<V, true><<<dim3(unsigned(S), unsigned(C)), kThreads, 0, st>>>(gy, x, g, mean, s.part);
      v3_combine_grad_kernel<<<grid_for(C), kThreads, 0, st>>>(s.part, S, g, batch, w, inv_std, gw, gb, s.coef);
      if (gx) grad_apply_kernel<V><<<elems, kThreads, 0, st>>>(gy, x, mean, s.coef, batch, g, gx);
    }
  });
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
