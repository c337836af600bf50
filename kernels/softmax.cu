// Softmax over rows of a (rows, cols) row-major matrix. Thread mapping: one warp per row; each lane
// strides over the columns, the row max and sum are reduced with warp shuffles (no shared memory), and
// the exponentials are recomputed in the normalising pass rather than stored (one read more, no scratch).
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/softmax.h"
#include "kernels/block_reduce.cuh"

namespace fn::kernels::cuda {
namespace {
constexpr int kWarpsPerBlock = 8;

__global__ void softmax_fwd(const float* x, float* y, int64_t rows, int64_t cols) {
  int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* xr = x + r * cols;
  float m = -INFINITY;
  for (int64_t c = lane; c < cols; c += 32) m = fmaxf(m, xr[c]);
  m = warp_reduce<ReduceMax>(m);
  float s = 0.f;
  for (int64_t c = lane; c < cols; c += 32) s += __expf(xr[c] - m);
  s = warp_reduce<ReduceSum>(s);
  float inv = 1.f / s;
  for (int64_t c = lane; c < cols; c += 32) y[r * cols + c] = __expf(xr[c] - m) * inv;
}

__global__ void softmax_bwd(const float* y, const float* gy, float* gx, int64_t rows, int64_t cols) {
  int64_t r = blockIdx.x * int64_t(kWarpsPerBlock) + threadIdx.x / 32;
  int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float *yr = y + r * cols, *gr = gy + r * cols;
  float d = 0.f;
  for (int64_t c = lane; c < cols; c += 32) d += gr[c] * yr[c];
  d = warp_reduce<ReduceSum>(d);
  for (int64_t c = lane; c < cols; c += 32) gx[r * cols + c] = yr[c] * (gr[c] - d);
}

int blocks(int64_t rows) { return int((rows + kWarpsPerBlock - 1) / kWarpsPerBlock); }
}  // namespace

void softmax_forward_f32(const float* x, float* y, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  softmax_fwd<<<blocks(rows), kWarpsPerBlock * 32, 0, ::fn::cuda::stream()>>>(x, y, rows, cols);
  CUDA_CHECK_LAUNCH();
}
void softmax_backward_f32(const float* y, const float* gy, float* gx, int64_t rows, int64_t cols) {
  if (rows == 0) return;
  softmax_bwd<<<blocks(rows), kWarpsPerBlock * 32, 0, ::fn::cuda::stream()>>>(y, gy, gx, rows, cols);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
