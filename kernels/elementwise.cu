// Elementwise ops on the GPU. Math: see elementwise.h. Layout: flat arrays of n floats.
// Thread mapping: one thread per element, grid-stride loop, 256 threads a block; memory-bound, so the
// only aim is coalesced loads and stores (consecutive threads touch consecutive floats).
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/elementwise.h"
#include "kernels/elementwise_body.h"
#include "kernels/launch.h"
#include "kernels/launch.cuh"

namespace fn::kernels::cuda {
namespace {

__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) { FN_GRID_STRIDE(i, n) y[i] = a[i] + b[i]; }
__global__ void mul_kernel(const float* a, const float* b, float* y, int64_t n) { FN_GRID_STRIDE(i, n) y[i] = a[i] * b[i]; }
__global__ void scale_kernel(const float* a, float s, float* y, int64_t n) { FN_GRID_STRIDE(i, n) y[i] = s * a[i]; }
__global__ void relu_fwd_kernel(const float* x, float* y, int64_t n) { FN_GRID_STRIDE(i, n) y[i] = relu_fwd(x[i]); }
__global__ void relu_bwd_kernel(const float* y, const float* gy, float* gx, int64_t n) {
  FN_GRID_STRIDE(i, n) gx[i] = relu_bwd(y[i], gy[i]);
}
__global__ void relu6_fwd_kernel(const float* x, float* y, int64_t n) { FN_GRID_STRIDE(i, n) y[i] = relu6_fwd(x[i]); }
__global__ void relu6_bwd_kernel(const float* y, const float* gy, float* gx, int64_t n) {
  FN_GRID_STRIDE(i, n) gx[i] = relu6_bwd(y[i], gy[i]);
}
__global__ void dropout_kernel(const float* x, float p, uint64_t seed, float* y, int64_t n, int64_t offset) {
  FN_GRID_STRIDE(i, n) y[i] = dropout_apply(x[i], seed, offset + i, p);
}

}  // namespace

void binary_f32(Binary op, const float* a, const float* b, float* y, int64_t n) {
  if (n == 0) return;
  if (op == Binary::Add) add_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(a, b, y, n);
  else mul_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(a, b, y, n);
  CUDA_CHECK_LAUNCH();
}
void scale_f32(const float* a, float alpha, float* y, int64_t n) {
  if (n == 0) return;
  scale_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(a, alpha, y, n);
  CUDA_CHECK_LAUNCH();
}
void relu_forward_f32(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  relu_fwd_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
}
void relu_backward_f32(const float* y, const float* gy, float* gx, int64_t n) {
  if (n == 0) return;
  relu_bwd_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(y, gy, gx, n);
  CUDA_CHECK_LAUNCH();
}
void relu6_forward_f32(const float* x, float* y, int64_t n) {
  if (n == 0) return;
  relu6_fwd_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(x, y, n);
  CUDA_CHECK_LAUNCH();
}
void relu6_backward_f32(const float* y, const float* gy, float* gx, int64_t n) {
  if (n == 0) return;
  relu6_bwd_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(y, gy, gx, n);
  CUDA_CHECK_LAUNCH();
}
void dropout_f32(const float* x, float p, uint64_t seed, float* y, int64_t n, int64_t offset) {
  if (n == 0) return;
  dropout_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(x, p, seed, y, n, offset);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
