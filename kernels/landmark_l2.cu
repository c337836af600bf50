// Masked landmark L2 on the GPU.
// Math: see landmark_l2.h: loss = (1/N) sum_n sum_j ||v_nj (pred_nj - target_nj)||^2.
// Layouts: pred, target (N, L, 2); visibility (N, L).
// Thread mapping: forward one thread per image (L = 8 slots, 16 floats: too little work to split), then the
// shared one-block loss_finalize; backward one thread per coordinate, grid-stride. One version: at N = 32
// the op is a few hundred bytes and launch-bound.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/landmark_l2.h"
#include "kernels/launch.h"

namespace fn::kernels::cuda {
namespace {

__global__ void terms_kernel(const float* __restrict__ p, const float* __restrict__ t, const float* __restrict__ v,
                             int N, int L, float* terms) {
  for (int n = blockIdx.x * blockDim.x + threadIdx.x; n < N; n += blockDim.x * gridDim.x)
    terms[n] = landmark_l2_row(p + 2 * int64_t(n) * L, t + 2 * int64_t(n) * L, v + int64_t(n) * L, L);
}

__global__ void backward_kernel(const float* __restrict__ grad_loss, const float* __restrict__ p,
                                const float* __restrict__ t, const float* __restrict__ v, int N, int64_t total,
                                float* gp, float* gt) {
  const float scale = grad_loss[0] / float(N);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    float g = landmark_l2_grad(p[i], t[i], v[i / 2], scale);
    gp[i] = g;
    if (gt) gt[i] = -g;
  }
}

}  // namespace

void landmark_l2_terms_f32(const float* p, const float* t, const float* v, int N, int L, float* terms) {
  if (N == 0) return;
  terms_kernel<<<grid_for(N), 256, 0, ::fn::cuda::stream()>>>(p, t, v, N, L, terms);
  CUDA_CHECK_LAUNCH();
}

void landmark_l2_backward_f32(const float* grad_loss, const float* p, const float* t, const float* v, int N, int L,
                              float* gp, float* gt) {
  const int64_t total = int64_t(N) * L * 2;
  if (total == 0) return;
  backward_kernel<<<grid_for(total), 256, 0, ::fn::cuda::stream()>>>(grad_loss, p, t, v, N, total, gp, gt);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
