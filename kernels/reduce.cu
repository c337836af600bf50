// Sum of n floats. Pass 1: a fixed grid of 256 blocks, each thread accumulates a grid-stride slice in
// double, the block reduces through shared memory to one partial. Pass 2: one block reduces the partials.
// The grid size and the order of additions are fixed, so the result is bitwise reproducible.
// Broadcast: one thread per output element reads the device scalar.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/launch.h"
#include "kernels/reduce.h"

namespace fn::kernels::cuda {
namespace {
constexpr int kBlocks = 256, kThreads = 256;

__device__ double block_sum(double v) {
  __shared__ double s[kThreads];
  s[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) s[threadIdx.x] += s[threadIdx.x + w];
    __syncthreads();
  }
  return s[0];
}

__global__ void partial_sums(const float* x, int64_t n, double* partial) {
  double v = 0;
  for (int64_t i = blockIdx.x * int64_t(kThreads) + threadIdx.x; i < n; i += int64_t(kThreads) * kBlocks) v += x[i];
  double b = block_sum(v);
  if (threadIdx.x == 0) partial[blockIdx.x] = b;
}

__global__ void final_sum(const double* partial, float* out) {
  double b = block_sum(partial[threadIdx.x]);
  if (threadIdx.x == 0) *out = float(b);
}

__global__ void broadcast_kernel(const float* s, float alpha, float* out, int64_t n) {
  float v = alpha * *s;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    out[i] = v;
}
}  // namespace

void sum_all_f32(const float* x, int64_t n, float* out) {
  auto* partial = static_cast<double*>(::fn::cuda::workspace(kBlocks * sizeof(double)));
  partial_sums<<<kBlocks, kThreads, 0, ::fn::cuda::stream()>>>(x, n, partial);
  CUDA_CHECK_LAUNCH();
  final_sum<<<1, kThreads, 0, ::fn::cuda::stream()>>>(partial, out);
  CUDA_CHECK_LAUNCH();
}

void broadcast_scalar_f32(const float* s, float alpha, float* out, int64_t n) {
  if (n == 0) return;
  broadcast_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(s, alpha, out, n);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
