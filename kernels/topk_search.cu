// Per-row top-k selection of a score block on the GPU (the GEMM before it is cuBLAS; see topk_search.cpp).
// Layout: scores row-major (rows, cols); outputs row-major (rows, k), nearest first.
// Both versions use topk_offer from topk_search.h, the same insertion the CPU search runs, so the tie rule
// (equal scores: lower gallery row first) is the CPU's.
//   v1: one thread per row scans the row alone. Simple, but a warp's 32 threads read 32 different rows
//       (uncoalesced) and a 4096-row block gives only 4096 threads.
//   v2: one warp per row. Lane l scans columns l, l+32, ... (coalesced), keeping its own best-k list; the
//       warp then merges the 32 sorted lists in k rounds: each round a shuffle reduction finds the best head
//       by (score desc, row asc), and the lane that owned it advances.
#include <climits>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/topk_search.h"

namespace fn::kernels::cuda {
namespace {

__global__ void topk_thread_per_row(const float* scores, int64_t rows, int64_t cols, int k, int32_t* index,
                                    float* distance) {
  int64_t row = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (row >= rows) return;
  float best[kCudaMaxK];
  int32_t idx[kCudaMaxK];
  int n = 0;
  const float* s = scores + row * cols;
  for (int64_t j = 0; j < cols; ++j) topk_offer(best, idx, n, k, s[j], int32_t(j));
  for (int c = 0; c < k; ++c) {
    index[row * k + c] = idx[c];
    distance[row * k + c] = distance_from_ip(best[c]);
  }
}

__global__ void topk_warp_per_row(const float* scores, int64_t rows, int64_t cols, int k, int32_t* index,
                                  float* distance) {
  int64_t row = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= rows) return;  // whole warps leave together: a warp is one row
  float best[kCudaMaxK];
  int32_t idx[kCudaMaxK];
  int n = 0;
  const float* s = scores + row * cols;
  for (int64_t j = lane; j < cols; j += 32) topk_offer(best, idx, n, k, s[j], int32_t(j));

  int head = 0;  // next unused entry of this lane's list
  for (int c = 0; c < k; ++c) {
    const float hs = head < n ? best[head] : -INFINITY;
    const int32_t hi = head < n ? idx[head] : INT_MAX;
    float bs = hs;
    int32_t bi = hi;
    // Butterfly reduction: every lane ends with the same (bs, bi), the best by (score desc, row asc).
    for (int off = 16; off > 0; off >>= 1) {
      float os = __shfl_xor_sync(0xffffffffu, bs, off);
      int32_t oi = __shfl_xor_sync(0xffffffffu, bi, off);
      if (os > bs || (os == bs && oi < bi)) {
        bs = os;
        bi = oi;
      }
    }
    if (head < n && hi == bi) ++head;  // gallery rows are unique, so exactly one lane owns the winner
    if (lane == 0) {
      index[row * k + c] = bi;
      distance[row * k + c] = distance_from_ip(bs);
    }
  }
}

}  // namespace

void topk_rows_f32(const float* scores, int64_t rows, int64_t cols, int k, int version, int32_t* index,
                   float* distance) {
  FN_CHECK(k >= 1 && k <= kCudaMaxK && k <= cols, "topk_rows_f32: k = ", k, " must be in [1, min(", cols, ", ",
           kCudaMaxK, ")]");
  if (rows == 0) return;
  const int threads = 256;
  if (version == 1) {
    int64_t blocks = (rows + threads - 1) / threads;
    topk_thread_per_row<<<unsigned(blocks), threads, 0, ::fn::cuda::stream()>>>(scores, rows, cols, k, index,
                                                                                distance);
  } else {
    int64_t blocks = (rows * 32 + threads - 1) / threads;
    topk_warp_per_row<<<unsigned(blocks), threads, 0, ::fn::cuda::stream()>>>(scores, rows, cols, k, index,
                                                                              distance);
  }
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
