// Sum of n floats, or of their squares. Pass 1: a fixed grid of 256 blocks, each thread accumulates a
// grid-stride slice in double, then block_reduce (kernels/block_reduce.cuh) turns the block's 256 sums into one
// partial. Pass 2: one block reduces the partials the same way. The grid size and the order of additions are
// fixed, so the result is bitwise reproducible. sum_squares_each does this for up to 64 tensors at once (the
// gradient clip's 50 gradients: two launches instead of a hundred), with a second grid dimension over the tensors.
// Where x is 16-byte aligned, each thread issues four float4 loads before adding any: 65,536 threads with
// one scalar load in flight each keep ~256 KB in flight, far too little to stream a large tensor at DRAM
// speed (the gradient clip reads every gradient, 0.7 GB at the paper preset); four float4 each keep 4 MB
// in flight. The tail (and an unaligned x) takes the scalar loop.
// Broadcast: one thread per output element reads the device scalar.
#include <algorithm>
#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/block_reduce.cuh"
#include "kernels/launch.h"
#include "kernels/reduce.h"

namespace fn::kernels::cuda {
namespace {
constexpr int kBlocks = 256, kThreads = 256;

// Up to kMaxListTensors tensors in one launch, passed by value as a kernel parameter (1 KB).
struct TensorList {
  const float* x[kMaxListTensors];
  int64_t n[kMaxListTensors];
};

template <bool Square>
__device__ __forceinline__ double term(float v) {
  return Square ? double(v) * double(v) : double(v);
}

template <bool Square>
__device__ __forceinline__ double term4(float4 a) {
  return (term<Square>(a.x) + term<Square>(a.y)) + (term<Square>(a.z) + term<Square>(a.w));
}

// Thread t of the kBlocks x kThreads grid: its grid-stride slice of x, summed in double.
template <bool Square>
__device__ double slice_sum(const float* x, int64_t n, int64_t t) {
  const int64_t stride = int64_t(kThreads) * kBlocks;
  double v = 0;
  int64_t scalar_from = 0;
  if ((reinterpret_cast<uintptr_t>(x) & 15) == 0) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    const int64_t n4 = n / 4;
    int64_t i = t;
    for (; i + 3 * stride < n4; i += 4 * stride) {
      float4 a[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) a[k] = x4[i + k * stride];
#pragma unroll
      for (int k = 0; k < 4; ++k) v += term4<Square>(a[k]);
    }
    for (; i < n4; i += stride) v += term4<Square>(x4[i]);
    scalar_from = n4 * 4;
  }
  for (int64_t i = scalar_from + t; i < n; i += stride) v += term<Square>(x[i]);
  return v;
}

// Grid (kBlocks, tensors): block (b, j) writes partial[j * kBlocks + b] for tensor j. A list of one is the
// single-tensor reduction, so a tensor's sum is bitwise the same alone or in a list.
template <bool Square>
__global__ void partial_sums(TensorList list, double* partial) {
  const int j = blockIdx.y;
  double b = block_reduce<kThreads, ReduceSum>(
      slice_sum<Square>(list.x[j], list.n[j], blockIdx.x * int64_t(kThreads) + threadIdx.x));
  if (threadIdx.x == 0) partial[j * kBlocks + blockIdx.x] = b;
}

// One block per tensor reduces its kBlocks partials (kBlocks == kThreads).
static_assert(kBlocks == kThreads, "final_sum: one thread per partial");
__global__ void final_sum(const double* partial, float* out) {
  double b = block_reduce<kThreads, ReduceSum>(partial[blockIdx.x * kBlocks + threadIdx.x]);
  if (threadIdx.x == 0) out[blockIdx.x] = float(b);
}

__global__ void broadcast_kernel(const float* s, float alpha, float* out, int64_t n) {
  float v = alpha * *s;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = v;
}

template <bool Square>
void reduce_list_f32(const TensorList& list, int count, float* out) {
  auto* partial = static_cast<double*>(::fn::cuda::workspace(size_t(count) * kBlocks * sizeof(double)));
  partial_sums<Square><<<dim3(kBlocks, count), kThreads, 0, ::fn::cuda::stream()>>>(list, partial);
  CUDA_CHECK_LAUNCH();
  final_sum<<<count, kThreads, 0, ::fn::cuda::stream()>>>(partial, out);
  CUDA_CHECK_LAUNCH();
}

template <bool Square>
void reduce_f32(const float* x, int64_t n, float* out) {
  TensorList one{};
  one.x[0] = x;
  one.n[0] = n;
  reduce_list_f32<Square>(one, 1, out);
}

}  // namespace

void sum_all_f32(const float* x, int64_t n, float* out) { reduce_f32<false>(x, n, out); }
void sum_squares_f32(const float* x, int64_t n, float* out) { reduce_f32<true>(x, n, out); }

void sum_squares_each_f32(const float* const* xs, const int64_t* ns, int count, float* out) {
  for (int from = 0; from < count; from += kMaxListTensors) {
    TensorList list{};
    const int m = std::min(kMaxListTensors, count - from);
    for (int j = 0; j < m; ++j) {
      list.x[j] = xs[from + j];
      list.n[j] = ns[from + j];
    }
    reduce_list_f32<true>(list, m, out + from);
  }
}

void broadcast_scalar_f32(const float* s, float alpha, float* out, int64_t n) {
  if (n == 0) return;
  broadcast_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(s, alpha, out, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
