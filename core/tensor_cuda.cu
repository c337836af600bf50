// Tensor utilities on the GPU. fill: p[i] = v. axpy: y[i] += alpha * x[i] (gradient accumulation).
// One thread per element, grid-stride loop; memory-bound.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "core/tensor_cuda.h"

namespace fn::cuda {
namespace {
__global__ void fill_kernel(float* p, int64_t n, float v) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    p[i] = v;
}
__global__ void axpy_kernel(float* y, const float* x, int64_t n, float a) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    y[i] += a * x[i];
}
int blocks_for(int64_t n) {
  int64_t b = (n + 255) / 256;
  return int(b > 65535 ? 65535 : (b < 1 ? 1 : b));
}
}  // namespace

void fill_f32(float* p, int64_t n, float v) {
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), 256, 0, stream()>>>(p, n, v);
  CUDA_CHECK_LAUNCH();
}
void axpy_f32(float* y, const float* x, int64_t n, float alpha) {
  if (n == 0) return;
  axpy_kernel<<<blocks_for(n), 256, 0, stream()>>>(y, x, n, alpha);
  CUDA_CHECK_LAUNCH();
}
void memcpy_d2d(void* dst, const void* src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream()));
}
void memcpy_h2d(void* dst, const void* src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream()));
  CUDA_CHECK(cudaStreamSynchronize(stream()));  // the host buffer may be freed right after
}
void memcpy_d2h(void* dst, const void* src, size_t bytes) {
  CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream()));
  CUDA_CHECK(cudaStreamSynchronize(stream()));
}
}  // namespace fn::cuda
