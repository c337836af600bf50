// The embedding's kernels on the GPU: L2 normalisation, pairwise distances (around a cuBLAS GEMM) and the
// triplet loss. Math: see triplet.h.
// Layouts: embeddings (N, D) row-major (D = 4096 at full width); distance matrices (N, N) row-major;
//          labels (N).
// Thread mapping:
//   l2_normalize v1 (row thread)  one thread per row runs the CPU's body: D strided loads per thread.
//   l2_normalize v2 (row block)   one block of 256 threads per row: coalesced loads, block_reduce's fixed
//                                 tree for ||x||^2, then a coalesced scaled store. Default.
//   l2 backward, row norms        one block per row, the same reduction (for y.gy and ||x||^2).
//   distance epilogues            one thread per matrix element (clamp, sqrt guard, S + S^T, gx += 2 r x).
//   triplet forward / backward    one thread per anchor row, the CPU's bodies: batch-hard is O(N) per anchor,
//                                 batch-all O(N^2); N is a batch (32..256), so the GEMM dominates. Each
//                                 thread owns one gradient row: deterministic without atomics.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/block_reduce.cuh"
#include "kernels/launch.h"
#include "kernels/launch.cuh"
#include "kernels/triplet.h"

namespace fn::kernels::cuda {
namespace {

constexpr int kRowThreads = 256;

__global__ void l2n_v1(const float* __restrict__ x, int N, int D, float eps, float* y, float* norms) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < N; i += blockDim.x * gridDim.x) {
    const float* xr = x + int64_t(i) * D;
    float r = sqrtf(row_sq_norm(xr, D)), inv = l2_inverse_scale(r, eps);
    norms[i] = r;
    for (int k = 0; k < D; ++k) y[int64_t(i) * D + k] = xr[k] * inv;
  }
}

__global__ void l2n_v2(const float* __restrict__ x, int D, float eps, float* y, float* norms) {
  const float* xr = x + int64_t(blockIdx.x) * D;
  float acc = 0.f;
  for (int k = threadIdx.x; k < D; k += kRowThreads) acc += xr[k] * xr[k];
  float r = sqrtf(block_reduce<kRowThreads, ReduceSum>(acc)), inv = l2_inverse_scale(r, eps);
  if (threadIdx.x == 0) norms[blockIdx.x] = r;
  float* yr = y + int64_t(blockIdx.x) * D;
  for (int k = threadIdx.x; k < D; k += kRowThreads) yr[k] = xr[k] * inv;
}

__global__ void l2n_backward(const float* __restrict__ gy, const float* __restrict__ y, const float* __restrict__ norms,
                             int D, float eps, float* gx) {
  const int64_t base = int64_t(blockIdx.x) * D;
  const float norm = norms[blockIdx.x];
  if (!(norm > eps)) {
    for (int k = threadIdx.x; k < D; k += kRowThreads) gx[base + k] = gy[base + k] / eps;
    return;
  }
  float acc = 0.f;
  for (int k = threadIdx.x; k < D; k += kRowThreads) acc += y[base + k] * gy[base + k];
  float dot = block_reduce<kRowThreads, ReduceSum>(acc);
  for (int k = threadIdx.x; k < D; k += kRowThreads) gx[base + k] = (gy[base + k] - y[base + k] * dot) / norm;
}

__global__ void sq_norms(const float* __restrict__ x, int D, float* out) {
  const float* xr = x + int64_t(blockIdx.x) * D;
  float acc = 0.f;
  for (int k = threadIdx.x; k < D; k += kRowThreads) acc += xr[k] * xr[k];
  float r = block_reduce<kRowThreads, ReduceSum>(acc);
  if (threadIdx.x == 0) out[blockIdx.x] = r;
}

__global__ void finish_sq(const float* __restrict__ na, const float* __restrict__ nb, int N, int64_t total, bool self,
                          float* out) {
  FN_GRID_STRIDE(k, total) {
    int64_t i = k / N, j = k % N;
    out[k] = clamped_sq_distance(na[i], nb[j], out[k], self && i == j);
  }
}

__global__ void sqrt_guard(const float* __restrict__ d2, int64_t n, float eps, float* d) {
  FN_GRID_STRIDE(k, n) d[k] = sqrtf(d2[k] + eps);
}

__global__ void grad_sym(const float* __restrict__ gd, const float* __restrict__ d, const float* __restrict__ d2, int N,
                         float* t) {
  FN_GRID_STRIDE(k, int64_t(N) * N) {
    int64_t i = k / N, j = k % N, kt = j * N + i;
    float a = d2[k] > 0.f ? gd[k] / (2.f * d[k]) : 0.f;
    float b = d2[kt] > 0.f ? gd[kt] / (2.f * d[kt]) : 0.f;
    t[k] = a + b;
  }
}

__global__ void row_sums(const float* __restrict__ t, int N, float* r) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < N; i += blockDim.x * gridDim.x) {
    float s = 0.f;
    for (int j = 0; j < N; ++j) s += t[int64_t(i) * N + j];
    r[i] = s;
  }
}

__global__ void add_row_scaled(const float* __restrict__ x, const float* __restrict__ r, int D, int64_t total,
                               float alpha, float* gx) {
  FN_GRID_STRIDE(k, total) gx[k] += alpha * r[k / D] * x[k];
}

__global__ void anchors(const float* __restrict__ d, const float* __restrict__ labels, int N, float margin,
                        TripletMode mode, float* loss, float* valid, float* active) {
  for (int a = blockIdx.x * blockDim.x + threadIdx.x; a < N; a += blockDim.x * gridDim.x) {
    AnchorTerms<float> r = triplet_anchor(d + int64_t(a) * N, labels, a, N, margin, mode);
    loss[a] = r.loss;
    valid[a] = r.valid;
    active[a] = r.active;
  }
}

__global__ void anchors_backward(const float* __restrict__ grad_loss, const float* __restrict__ d,
                                 const float* __restrict__ labels, const float* __restrict__ norm, int N, float margin,
                                 TripletMode mode, float* gd) {
  const float den = norm[0], s = den != 0.f ? grad_loss[0] / den : 0.f;
  for (int a = blockIdx.x * blockDim.x + threadIdx.x; a < N; a += blockDim.x * gridDim.x)
    triplet_anchor_grad(d + int64_t(a) * N, labels, a, N, margin, mode, s, gd + int64_t(a) * N);
}

}  // namespace

void l2_normalize_forward_f32(L2NormalizeVersion v, const float* x, int N, int D, float eps, float* y, float* norms) {
  if (N == 0) return;
  if (v == L2NormalizeVersion::V1RowThread)
    l2n_v1<<<grid_for(N, 128), 128, 0, ::fn::cuda::stream()>>>(x, N, D, eps, y, norms);
  else
    l2n_v2<<<N, kRowThreads, 0, ::fn::cuda::stream()>>>(x, D, eps, y, norms);
  CUDA_CHECK_LAUNCH();
}

void l2_normalize_backward_f32(const float* gy, const float* y, const float* norms, int N, int D, float eps,
                               float* gx) {
  if (N == 0) return;
  l2n_backward<<<N, kRowThreads, 0, ::fn::cuda::stream()>>>(gy, y, norms, D, eps, gx);
  CUDA_CHECK_LAUNCH();
}

void row_sq_norms_f32(const float* x, int N, int D, float* out) {
  if (N == 0) return;
  sq_norms<<<N, kRowThreads, 0, ::fn::cuda::stream()>>>(x, D, out);
  CUDA_CHECK_LAUNCH();
}

void finish_sq_distances_f32(const float* na, const float* nb, int M, int N, bool self, float* out) {
  const int64_t total = int64_t(M) * N;
  if (total == 0) return;
  finish_sq<<<grid_for(total), 256, 0, ::fn::cuda::stream()>>>(na, nb, N, total, self, out);
  CUDA_CHECK_LAUNCH();
}

void sqrt_guard_f32(const float* d2, int64_t n, float eps, float* d) {
  if (n == 0) return;
  sqrt_guard<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(d2, n, eps, d);
  CUDA_CHECK_LAUNCH();
}

void distance_grad_sym_f32(const float* gd, const float* d, const float* d2, int N, float* t, float* rowsum) {
  if (N == 0) return;
  grad_sym<<<grid_for(int64_t(N) * N), 256, 0, ::fn::cuda::stream()>>>(gd, d, d2, N, t);
  CUDA_CHECK_LAUNCH();
  row_sums<<<grid_for(N, 128), 128, 0, ::fn::cuda::stream()>>>(t, N, rowsum);
  CUDA_CHECK_LAUNCH();
}

void add_row_scaled_f32(const float* x, const float* rowsum, int N, int D, float alpha, float* gx) {
  const int64_t total = int64_t(N) * D;
  if (total == 0) return;
  add_row_scaled<<<grid_for(total), 256, 0, ::fn::cuda::stream()>>>(x, rowsum, D, total, alpha, gx);
  CUDA_CHECK_LAUNCH();
}

void triplet_anchors_f32(const float* d, const float* labels, int N, float margin, TripletMode mode, float* loss,
                         float* valid, float* active) {
  if (N == 0) return;
  anchors<<<grid_for(N, 64), 64, 0, ::fn::cuda::stream()>>>(d, labels, N, margin, mode, loss, valid, active);
  CUDA_CHECK_LAUNCH();
}

void triplet_backward_f32(const float* grad_loss, const float* d, const float* labels, const float* norm, int N,
                          float margin, TripletMode mode, float* gd) {
  if (N == 0) return;
  anchors_backward<<<grid_for(N, 64), 64, 0, ::fn::cuda::stream()>>>(grad_loss, d, labels, norm, N, margin, mode, gd);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
