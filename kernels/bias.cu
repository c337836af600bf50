// Per-channel bias on the GPU. Math: see bias.h. Layout: y (outer, channels, inner), row-major.
// bias_add: one thread per element of y (grid-stride), channel k = (i / inner) % channels; memory-bound.
// bias_grad, two mappings chosen by the shape:
//   inner == 1 (linear, y (N, out)): one thread per column k loops down the rows; consecutive threads read
//     consecutive floats of a row, so loads are coalesced.
//   inner > 1 (conv, y (N, K, P*Q)): one 256-thread block per channel; each thread sums a strided share
//     of that channel's outer*inner values, then block_reduce's fixed tree adds the 256 partials. The order
//     is fixed by the launch shape, so the result is deterministic (no atomics).
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/bias.h"
#include "kernels/block_reduce.cuh"
#include "kernels/launch.h"

namespace fn::kernels::cuda {
namespace {

__global__ void bias_add_kernel(float* y, const float* b, int64_t n, int64_t channels, int64_t inner, bool relu) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x) {
    float v = y[i] + (b ? b[(i / inner) % channels] : 0.f);
    y[i] = relu ? fmaxf(v, 0.f) : v;
  }
}

__global__ void column_sum_kernel(const float* gy, float* gb, int64_t rows, int64_t cols) {
  int64_t k = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (k >= cols) return;
  float s = 0.f;
  for (int64_t r = 0; r < rows; ++r) s += gy[r * cols + k];
  gb[k] = s;
}

constexpr int kBlock = 256;
__global__ void channel_sum_kernel(const float* gy, float* gb, int64_t outer, int64_t channels, int64_t inner) {
  const int64_t k = blockIdx.x, m = outer * inner;
  float s = 0.f;
  for (int64_t j = threadIdx.x; j < m; j += kBlock) {
    int64_t o = j / inner, i = j - o * inner;
    s += gy[(o * channels + k) * inner + i];
  }
  s = block_reduce<kBlock, ReduceSum>(s);
  if (threadIdx.x == 0) gb[k] = s;
}

}  // namespace

void bias_add_f32(float* y, const float* b, int64_t outer, int64_t channels, int64_t inner, bool relu) {
  int64_t n = outer * channels * inner;
  if (n == 0) return;
  bias_add_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(y, b, n, channels, inner, relu);
  CUDA_CHECK_LAUNCH();
}

void bias_grad_f32(const float* gy, float* gb, int64_t outer, int64_t channels, int64_t inner) {
  if (channels == 0) return;
  if (inner == 1) {
    column_sum_kernel<<<int((channels + 255) / 256), 256, 0, ::fn::cuda::stream()>>>(gy, gb, outer, channels);
  } else {
    channel_sum_kernel<<<int(channels), kBlock, 0, ::fn::cuda::stream()>>>(gy, gb, outer, channels, inner);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
