// Optimizer updates on the GPU. Math: see optim.h (PyTorch's SGD with momentum / weight decay, and Adam).
// Layout: flat arrays of n floats (a parameter and its state tensors, same order).
// Thread mapping: one thread per element, grid-stride, the CPU's FN_HD body: pure streaming (SGD reads p, g,
// v and writes p, v: 20 bytes per element; Adam 28), so coalescing is all there is to it.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/launch.h"
#include "kernels/optim.h"

namespace fn::kernels::cuda {
namespace {

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ v, int64_t n,
                           float lr, float mu, float wd, bool nesterov) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    sgd_element(p[i], g[i], v ? v + i : nullptr, lr, mu, wd, nesterov);
}

__global__ void adam_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                            float* __restrict__ v, int64_t n, float b1, float b2, float eps, float wd, float step_size,
                            float bias2_sqrt) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(blockDim.x) * gridDim.x)
    adam_element(p[i], g[i], m[i], v[i], b1, b2, eps, wd, step_size, bias2_sqrt);
}

}  // namespace

void sgd_step_f32(float* p, const float* g, float* v, int64_t n, const SgdHyper& h) {
  if (n == 0) return;
  sgd_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(p, g, v, n, h.lr, h.momentum, h.weight_decay, h.nesterov);
  CUDA_CHECK_LAUNCH();
}

void adam_step_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h, AdamScalars s) {
  if (n == 0) return;
  adam_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(p, g, m, v, n, h.beta1, h.beta2, h.eps, h.weight_decay,
                                                             s.step_size, s.bias2_sqrt);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
