// Exact k-nearest-neighbour search of query rows against gallery rows, for retrieval evaluation.
//
// Both sets hold L2-normalised embeddings (one per row), so the Euclidean distance is a function of the
// inner product: |q - g|^2 = 2 - 2 <q, g>. The search therefore ranks by the largest inner product and
// reports the distance sqrt(max(0, 2 - 2 ip)) (the max() absorbs rounding just above ip = 1).
//
// How: queries are processed in blocks of rows. Each block's scores against the whole gallery are one GEMM
// (S = Q_block G^T; OpenBLAS on the CPU, cuBLAS on CUDA), and each row of S is reduced to its k best entries
// while the block is still in memory. Ties are broken deterministically: equal scores rank the lower gallery
// row first. Rows of the result are nearest first.
//
// The CPU path runs worker threads over query blocks, each calling a single-threaded OpenBLAS sgemm, so a
// row's scores, and the result, are bitwise the same for any thread count. The other schedule, one
// multi-threaded GEMM per block followed by threaded selection, measured the same within the noise of the
// shared 2-core build machine (docs/search.md) and is kept selectable for the benchmark.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

// Result: query q's neighbours are index[q*k .. q*k + k), nearest first, with their distances.
// k is min(requested k, gallery rows), so a search of a small gallery returns every gallery row ranked.
struct Neighbours {
  int64_t rows = 0;
  int64_t k = 0;
  std::vector<int32_t> index;
  std::vector<float> distance;
  const int32_t* row_index(int64_t q) const { return index.data() + q * k; }
  const float* row_distance(int64_t q) const { return distance.data() + q * k; }
};

enum class CpuSchedule {
  ThreadsOverBlocks,  // each worker thread: single-threaded GEMM of its block, then selection
  BlasThreads,        // one multi-threaded GEMM per block, then selection split over the threads
};

struct SearchOptions {
  int64_t k = 50;
  int64_t query_block = 0;  // query rows per GEMM; 0: 1024 on the CPU, 4096 on CUDA
  int threads = 0;          // CPU threads; 0: all hardware threads
  CpuSchedule schedule = CpuSchedule::ThreadsOverBlocks;
  int cuda_version = 2;     // top-k kernel: 1 one thread per row, 2 one warp per row
};

constexpr int kCudaMaxK = 64;  // the CUDA selection kernels keep up to this many candidates per thread

// query (Q, D), gallery (G, D): float32, both on one device; dispatches on that device.
Neighbours topk_search(const Tensor& query, const Tensor& gallery, const SearchOptions& opt = {});

// The CPU implementation on raw row-major arrays.
Neighbours topk_search_cpu(const float* query, int64_t nq, const float* gallery, int64_t ng, int64_t dim,
                           const SearchOptions& opt = {});

// The test reference: every inner product in double precision, a full sort by (score desc, row asc).
Neighbours topk_search_reference(const float* query, int64_t nq, const float* gallery, int64_t ng, int64_t dim,
                                 int64_t k);

// Divides each row of a CPU float32 matrix by its L2 norm (accumulated in double). All-zero rows are left
// at zero (distance sqrt(2) to everything); returns how many there were so callers can warn.
int64_t l2_normalize_rows(Tensor& x);

// Distance reported for an inner product of two unit vectors.
FN_HD float distance_from_ip(float ip) {
  float d2 = 2.0f - 2.0f * ip;
  return d2 > 0.0f ? sqrtf(d2) : 0.0f;
}

// Offers the candidate (s, i) to a best-first list of n <= k entries (score desc). Candidates must be
// offered in increasing i: an equal score then never displaces an earlier row, and an insertion goes after
// the entries with equal scores, which gives the "lower gallery row first" tie rule. Shared by the CPU
// search and the CUDA kernels.
FN_HD void topk_offer(float* score, int32_t* index, int& n, int k, float s, int32_t i) {
  int pos;
  if (n == k) {
    if (!(s > score[k - 1])) return;  // the common case: not better than the current k-th
    pos = k - 1;
  } else {
    pos = n++;
  }
  while (pos > 0 && score[pos - 1] < s) {
    score[pos] = score[pos - 1];
    index[pos] = index[pos - 1];
    --pos;
  }
  score[pos] = s;
  index[pos] = i;
}

#ifdef FN_WITH_CUDA
namespace cuda {
// Per-row top-k of a row-major (rows, cols) score block in device memory, written to device arrays
// index/distance (rows, k) starting at row 0. Requires 1 <= k <= min(cols, kCudaMaxK).
void topk_rows_f32(const float* scores, int64_t rows, int64_t cols, int k, int version, int32_t* index,
                   float* distance);
}  // namespace cuda
#endif

}  // namespace fn::kernels
