// Softmax cross-entropy and the shared loss reduction on the GPU.
// Math: see softmax_xent.h. CE_i = lse_i - z_{i,y_i}; loss = sum_i w_i CE_i / sum_i w_i (non-ignored rows);
// label smoothing e mixes in e (lse_i - mean_k z_ik), which lane 0 (v1: the row's thread) reads the row for.
// Layouts: logits and grad_logits (N, K) row-major; labels, weights, lse, row weights (N).
// Thread mapping:
//   forward v1 (row thread)  one thread per row runs the CPU's row body: K loads per thread, strided across
//                            the warp by K floats (uncoalesced for K >= 8). Best for K = 2 (visibility),
//                            where a warp per row would leave 30 of 32 lanes idle.
//   forward v2 (row warp)    one warp per row: lanes stride over k (coalesced), max and sum by butterfly
//                            shuffles; lane 0 writes the row's term. For K = 23 / 50 (categories).
//   forward v3 (online)      one warp per row, one pass: each lane keeps a running max and a sum rescaled
//                            whenever its max grows; lanes merge (m, s) pairs by shuffles. Reads each logit
//                            once (v2 reads the row twice, the second time from L1).
//   forward v4 (row in regs) one warp per row, one DRAM pass with every load in flight at once: each lane
//                            loads its ceil(K/32) logits (16-byte loads where K % 4 == 0) into registers up
//                            front, then max and sum of exp run from registers. v2 and v3 keep about one
//                            load per lane in flight, which at K = 1000 leaves them latency-bound (60% and
//                            44% of copy on the H100; v4 74%). Rows of up to 1024 logits; v2 above that.
//   default                  v1 for K <= 8, v4 above (H100 figures in docs/kernels/softmax_xent.md).
//   backward v1 (element)    one thread per logit, grid-stride, the CPU's per-element body. Its 64-bit
//                            i / K and i % K per element cost more than the memory traffic on wide rows.
//   backward v2 (row warp)   one warp per row: the row's scale and label loaded once, lanes stride over k
//                            (coalesced), no division. Default for K > 8.
//   loss_finalize            one block of 256 threads: each thread sums a strided slice in double, then
//                            block_reduce's fixed tree; deterministic, and close to the CPU's double sum.
#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/launch.h"
#include "kernels/softmax_xent.h"
#include "kernels/block_reduce.cuh"

namespace fn::kernels::cuda {
namespace {

constexpr int kFinalizeThreads = 256;

// Blocks of 256 threads for the one-warp-per-row kernels: 8 rows a block.
unsigned warp_row_blocks(int N) { return unsigned((N + 7) / 8); }

// The row of this thread's warp in those kernels (it may be >= N: the whole warp then returns).
__device__ int64_t warp_row() { return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; }

// Once the warp knows its row's max m and sum of exp(z - m) s, lane 0 writes lse and the labelled term.
__device__ void finish_row(const float* zr, int K, float m, float s, int64_t row, const float* labels, const float* w,
                           int ignore, float e, float* terms, float* lse, float* row_weight) {
  if ((threadIdx.x & 31) != 0) return;
  const float l = m + logf(s);
  lse[row] = l;
  terms[row] = softmax_xent_label_term(zr, K, l, labels[row], w ? w[row] : 1.f, ignore, e, row_weight[row]);
}

__global__ void finalize_kernel(const float* __restrict__ terms, const float* __restrict__ den, int64_t n,
                                float fixed_den, float* loss, float* norm) {
  double sum = 0, d = 0;
  for (int64_t i = threadIdx.x; i < n; i += kFinalizeThreads) {
    sum += double(terms[i]);
    if (den) d += double(den[i]);
  }
  sum = block_reduce<kFinalizeThreads, ReduceSum>(sum);
  d = block_reduce<kFinalizeThreads, ReduceSum>(d);
  if (threadIdx.x == 0) {
    double D = den ? d : double(fixed_den);
    loss[0] = D != 0 ? float(sum / D) : 0.f;
    norm[0] = float(D);
  }
}

__global__ void xent_v1(const float* __restrict__ z, const float* __restrict__ labels, const float* __restrict__ w,
                        int N, int K, int ignore, float e, float* terms, float* lse, float* row_weight) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < N; i += blockDim.x * gridDim.x)
    terms[i] = softmax_xent_row(z + int64_t(i) * K, K, labels[i], w ? w[i] : 1.f, ignore, e, lse[i], row_weight[i]);
}

__global__ void xent_v2(const float* __restrict__ z, const float* __restrict__ labels, const float* __restrict__ w,
                        int N, int K, int ignore, float e, float* terms, float* lse, float* row_weight) {
  const int lane = threadIdx.x & 31;
  const int64_t row = warp_row();
  if (row >= N) return;  // whole warps leave together
  const float* zr = z + row * K;
  float m = -INFINITY;
  for (int k = lane; k < K; k += 32) m = fmaxf(m, zr[k]);
  m = warp_reduce<ReduceMax>(m);
  float s = 0.f;
  for (int k = lane; k < K; k += 32) s += expf(zr[k] - m);
  finish_row(zr, K, m, warp_reduce<ReduceSum>(s), row, labels, w, ignore, e, terms, lse, row_weight);
}

__global__ void xent_v3(const float* __restrict__ z, const float* __restrict__ labels, const float* __restrict__ w,
                        int N, int K, int ignore, float e, float* terms, float* lse, float* row_weight) {
  const int lane = threadIdx.x & 31;
  const int64_t row = warp_row();
  if (row >= N) return;
  const float* zr = z + row * K;
  float m = -INFINITY, s = 0.f;
  for (int k = lane; k < K; k += 32) {
    const float x = zr[k];
    if (x > m) {
      s = s * expf(m - x) + 1.f;  // exp(-inf) = 0 on the first element
      m = x;
    } else if (x != -INFINITY) {  // a -inf logit adds nothing (and must not form -inf - -inf)
      s += expf(x - m);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float mo = __shfl_xor_sync(0xffffffffu, m, o), so = __shfl_xor_sync(0xffffffffu, s, o);
    const float mm = fmaxf(m, mo);
    // A lane with no element has m = -inf and s = 0: its term is 0, and -inf - -inf is never formed.
    s = (s == 0.f ? 0.f : s * expf(m - mm)) + (so == 0.f ? 0.f : so * expf(mo - mm));
    m = mm;
  }
  finish_row(zr, K, m, s, row, labels, w, ignore, e, terms, lse, row_weight);
}

// kPer: logits per lane (a multiple of 4 when kVec4). Lane `lane` holds logits lane + 32 j (scalar) or the
// float4s lane + 32 j (vector); slots past K hold -inf and are skipped by index, so a real -inf logit
// behaves as in v2.
template <int kPer, bool kVec4>
__global__ void xent_v4(const float* __restrict__ z, const float* __restrict__ labels, const float* __restrict__ w,
                        int N, int K, int ignore, float e, float* terms, float* lse, float* row_weight) {
  const int lane = threadIdx.x & 31;
  const int64_t row = warp_row();
  if (row >= N) return;
  const float* zr = z + row * K;
  float v[kPer];
  bool in[kPer];
  if (kVec4) {
    const float4* z4 = reinterpret_cast<const float4*>(zr);
#pragma unroll
    for (int j = 0; j < kPer / 4; ++j) {
      const int k4 = lane + 32 * j;
      const bool ok = k4 < K / 4;
      const float4 q = ok ? __ldg(z4 + k4) : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
      v[4 * j] = q.x, v[4 * j + 1] = q.y, v[4 * j + 2] = q.z, v[4 * j + 3] = q.w;
      in[4 * j] = in[4 * j + 1] = in[4 * j + 2] = in[4 * j + 3] = ok;
    }
  } else {
#pragma unroll
    for (int j = 0; j < kPer; ++j) {
      const int k = lane + 32 * j;
      in[j] = k < K;
      v[j] = in[j] ? __ldg(zr + k) : -INFINITY;
    }
  }
  float m = -INFINITY;
#pragma unroll
  for (int j = 0; j < kPer; ++j) m = fmaxf(m, v[j]);
  m = warp_reduce<ReduceMax>(m);
  float s = 0.f;
#pragma unroll
  for (int j = 0; j < kPer; ++j)
    if (in[j]) s += expf(v[j] - m);
  finish_row(zr, K, m, warp_reduce<ReduceSum>(s), row, labels, w, ignore, e, terms, lse, row_weight);
}

// Launches v4 with the fewest logits per lane that hold a row; false when K > 1024 (the caller uses v2).
bool launch_xent_v4(const float* z, const float* labels, const float* w, int N, int K, int ignore, float e,
                    float* terms, float* lse, float* row_weight) {
  const unsigned blocks = warp_row_blocks(N);
  cudaStream_t st = ::fn::cuda::stream();
  const bool vec4 = K % 4 == 0 && reinterpret_cast<uintptr_t>(z) % 16 == 0;
#define FN_XENT_V4(PER, VEC) \
  xent_v4<PER, VEC><<<blocks, 256, 0, st>>>(z, labels, w, N, K, ignore, e, terms, lse, row_weight)
  if (vec4) {
    if (K <= 128) FN_XENT_V4(4, true);
    else if (K <= 256) FN_XENT_V4(8, true);
    else if (K <= 512) FN_XENT_V4(16, true);
    else if (K <= 1024) FN_XENT_V4(32, true);
    else return false;
  } else {
    if (K <= 32) FN_XENT_V4(1, false);
    else if (K <= 64) FN_XENT_V4(2, false);
    else if (K <= 128) FN_XENT_V4(4, false);
    else if (K <= 256) FN_XENT_V4(8, false);
    else if (K <= 512) FN_XENT_V4(16, false);
    else if (K <= 1024) FN_XENT_V4(32, false);
    else return false;
  }
#undef FN_XENT_V4
  return true;
}

__global__ void xent_backward_rows(const float* __restrict__ grad_loss, const float* __restrict__ z,
                                   const float* __restrict__ labels, float e, const float* __restrict__ lse,
                                   const float* __restrict__ row_weight, const float* __restrict__ norm, int N, int K,
                                   float* __restrict__ gz) {
  const int lane = threadIdx.x & 31;
  const int64_t row = warp_row();
  if (row >= N) return;
  const float den = norm[0];
  const float scale_row = den != 0.f ? grad_loss[0] * row_weight[row] / den : 0.f;
  const float l = lse[row], label = labels[row];
  const float* zr = z + row * K;
  float* gr = gz + row * K;
  const float uniform = e / float(K);
  for (int k = lane; k < K; k += 32) gr[k] = softmax_xent_grad(zr[k], l, k, label, e, uniform, scale_row);
}

__global__ void xent_backward(const float* __restrict__ grad_loss, const float* __restrict__ z,
                              const float* __restrict__ labels, float e, const float* __restrict__ lse,
                              const float* __restrict__ row_weight, const float* __restrict__ norm, int64_t total,
                              int K, float* gz) {
  const float g = grad_loss[0], den = norm[0], uniform = e / float(K);
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t r = i / K;
    float scale_row = den != 0.f ? g * row_weight[r] / den : 0.f;
    gz[i] = softmax_xent_grad(z[i], lse[r], int(i % K), labels[r], e, uniform, scale_row);
  }
}

}  // namespace

void loss_finalize_f32(const float* terms, const float* den, int64_t n, float fixed_den, float* loss, float* norm) {
  finalize_kernel<<<1, kFinalizeThreads, 0, ::fn::cuda::stream()>>>(terms, den, n, fixed_den, loss, norm);
  CUDA_CHECK_LAUNCH();
}

void softmax_xent_forward_f32(SoftmaxXentVersion v, const float* z, const float* labels, const float* w, int N, int K,
                              int ignore, float e, float* terms, float* lse, float* row_weight) {
  if (N == 0) return;
  if (v == SoftmaxXentVersion::Default) v = K <= 8 ? SoftmaxXentVersion::V1RowThread : SoftmaxXentVersion::V4RowRegisters;
  const unsigned warp_blocks = warp_row_blocks(N);
  if (v == SoftmaxXentVersion::V4RowRegisters) {
    if (!launch_xent_v4(z, labels, w, N, K, ignore, e, terms, lse, row_weight))
      xent_v2<<<warp_blocks, 256, 0, ::fn::cuda::stream()>>>(z, labels, w, N, K, ignore, e, terms, lse, row_weight);
  } else if (v == SoftmaxXentVersion::V1RowThread) {
    xent_v1<<<grid_for(N), 256, 0, ::fn::cuda::stream()>>>(z, labels, w, N, K, ignore, e, terms, lse, row_weight);
  } else if (v == SoftmaxXentVersion::V3RowWarpOnline) {
    xent_v3<<<warp_blocks, 256, 0, ::fn::cuda::stream()>>>(z, labels, w, N, K, ignore, e, terms, lse, row_weight);
  } else {
    xent_v2<<<warp_blocks, 256, 0, ::fn::cuda::stream()>>>(z, labels, w, N, K, ignore, e, terms, lse, row_weight);
  }
  CUDA_CHECK_LAUNCH();
}

void softmax_xent_backward_f32(SoftmaxXentBackwardVersion v, const float* grad_loss, const float* z, const float* labels,
                               float e, const float* lse, const float* row_weight, const float* norm, int N, int K,
                               float* gz) {
  const int64_t total = int64_t(N) * K;
  if (total == 0) return;
  if (v == SoftmaxXentBackwardVersion::Default)
    v = K <= 8 ? SoftmaxXentBackwardVersion::V1Element : SoftmaxXentBackwardVersion::V2RowWarp;
  if (v == SoftmaxXentBackwardVersion::V2RowWarp) {
    xent_backward_rows<<<warp_row_blocks(N), 256, 0, ::fn::cuda::stream()>>>(grad_loss, z, labels, e, lse, row_weight,
                                                                            norm, N, K, gz);
    CUDA_CHECK_LAUNCH();
    return;
  }
  xent_backward<<<grid_for(total), 256, 0, ::fn::cuda::stream()>>>(grad_loss, z, labels, e, lse, row_weight, norm,
                                                                   total, K, gz);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
