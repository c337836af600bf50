// Exact k-nearest search: the CPU implementation, the brute-force reference and the device dispatch
// (the CUDA selection kernels are in topk_search.cu). Math and tie rule: see topk_search.h.
#include "kernels/topk_search.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <limits>
#include <numeric>
#include <thread>

#include "kernels/gemm.h"

#ifdef FN_WITH_CUDA
#include "core/allocator.h"
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

namespace fn::kernels {
namespace {

void check_sizes(int64_t nq, int64_t ng, int64_t dim, int64_t k) {
  FN_CHECK(k >= 1, "topk_search: k must be at least 1, got ", k);
  FN_CHECK(nq >= 0 && ng >= 0 && dim >= 1, "topk_search: bad sizes: ", nq, " queries, ", ng, " gallery rows, ", dim,
           " dims");
  FN_CHECK(ng <= std::numeric_limits<int32_t>::max(), "topk_search: gallery of ", ng, " rows exceeds int32 indices");
}

Neighbours make_result(int64_t nq, int64_t k) {
  Neighbours r;
  r.rows = nq;
  r.k = k;
  r.index.assign(static_cast<size_t>(nq * k), -1);
  r.distance.assign(static_cast<size_t>(nq * k), 0.0f);
  return r;
}

// Top-k of one row of scores. The first k entries fill the list; after that a candidate costs one compare
// against the k-th best, kept in a register, until it beats it.
void select_row(const float* s, int64_t ng, int k, float* best, int32_t* index, float* distance) {
  int n = 0;
  int64_t j = 0;
  for (; j < ng && n < k; ++j) topk_offer(best, index, n, k, s[j], int32_t(j));
  float kth = best[k - 1];
  for (; j < ng; ++j) {
    if (s[j] > kth) {
      topk_offer(best, index, n, k, s[j], int32_t(j));
      kth = best[k - 1];
    }
  }
  for (int c = 0; c < k; ++c) distance[c] = distance_from_ip(best[c]);
}

// Restores OpenBLAS's thread count when a search ends, also on an exception.
struct BlasThreadsGuard {
  explicit BlasThreadsGuard(int n) : saved(blas_threads()) { set_blas_threads(n); }
  ~BlasThreadsGuard() { set_blas_threads(saved); }
  int saved;
};

// Runs fn(t) on threads t = 0..n-1 (t = 0 on the caller) and rethrows the first exception.
template <class F>
void run_threads(int n, F&& fn) {
  std::vector<std::exception_ptr> errors(static_cast<size_t>(n));
  std::vector<std::thread> pool;
  auto guarded = [&](int t) {
    try {
      fn(t);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  };
  for (int t = 1; t < n; ++t) pool.emplace_back(guarded, t);
  guarded(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

Neighbours topk_search_cpu(const float* query, int64_t nq, const float* gallery, int64_t ng, int64_t dim,
                           const SearchOptions& opt) {
  check_sizes(nq, ng, dim, opt.k);
  const int64_t k = std::min(opt.k, ng);
  Neighbours r = make_result(nq, k);
  if (nq == 0 || k == 0) return r;
  const int64_t block = opt.query_block > 0 ? opt.query_block : 1024;
  const int64_t nblocks = (nq + block - 1) / block;
  int threads = opt.threads > 0 ? opt.threads : int(std::max(1u, std::thread::hardware_concurrency()));

  auto gemm_block = [&](int64_t r0, int64_t m, float* scores) {
    gemm_cpu(false, true, m, ng, dim, 1.0f, query + r0 * dim, dim, gallery, dim, 0.0f, scores, ng);
  };
  auto select_rows = [&](const float* scores, int64_t r0, int64_t a, int64_t b, std::vector<float>& best) {
    for (int64_t i = a; i < b; ++i)
      select_row(scores + i * ng, ng, int(k), best.data(), r.index.data() + (r0 + i) * k,
                 r.distance.data() + (r0 + i) * k);
  };

  if (opt.schedule == CpuSchedule::ThreadsOverBlocks) {
    threads = int(std::min<int64_t>(threads, nblocks));
    BlasThreadsGuard single(1);  // the parallelism is ours: one block per thread
    std::atomic<int64_t> next{0};
    run_threads(threads, [&](int) {
      std::vector<float> scores(static_cast<size_t>(std::min(block, nq) * ng)), best(static_cast<size_t>(k));
      for (int64_t b; (b = next.fetch_add(1)) < nblocks;) {
        int64_t r0 = b * block, m = std::min(block, nq - r0);
        gemm_block(r0, m, scores.data());
        select_rows(scores.data(), r0, 0, m, best);
      }
    });
  } else {
    BlasThreadsGuard all(threads);
    std::vector<float> scores(static_cast<size_t>(std::min(block, nq) * ng));
    std::vector<std::vector<float>> best(static_cast<size_t>(threads), std::vector<float>(static_cast<size_t>(k)));
    for (int64_t b = 0; b < nblocks; ++b) {
      int64_t r0 = b * block, m = std::min(block, nq - r0);
      gemm_block(r0, m, scores.data());
      run_threads(threads, [&](int t) {
        select_rows(scores.data(), r0, m * t / threads, m * (t + 1) / threads, best[static_cast<size_t>(t)]);
      });
    }
  }
  return r;
}

Neighbours topk_search_reference(const float* query, int64_t nq, const float* gallery, int64_t ng, int64_t dim,
                                 int64_t k_req) {
  check_sizes(nq, ng, dim, k_req);
  const int64_t k = std::min(k_req, ng);
  Neighbours r = make_result(nq, k);
  std::vector<double> score(static_cast<size_t>(ng));
  std::vector<int32_t> order(static_cast<size_t>(ng));
  for (int64_t q = 0; q < nq; ++q) {
    for (int64_t j = 0; j < ng; ++j) {
      double s = 0;
      for (int64_t c = 0; c < dim; ++c) s += double(query[q * dim + c]) * double(gallery[j * dim + c]);
      score[static_cast<size_t>(j)] = s;
    }
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
      return score[static_cast<size_t>(a)] != score[static_cast<size_t>(b)] ? score[static_cast<size_t>(a)] > score[static_cast<size_t>(b)] : a < b;
    });
    for (int64_t c = 0; c < k; ++c) {
      r.index[static_cast<size_t>(q * k + c)] = order[static_cast<size_t>(c)];
      double d2 = 2.0 - 2.0 * score[static_cast<size_t>(order[static_cast<size_t>(c)])];
      r.distance[static_cast<size_t>(q * k + c)] = float(d2 > 0 ? std::sqrt(d2) : 0.0);
    }
  }
  return r;
}

int64_t l2_normalize_rows(Tensor& x) {
  FN_CHECK(x.ndim() == 2 && x.dtype() == DType::F32 && !x.is_cuda(),
           "l2_normalize_rows: a 2-D float32 CPU matrix expected, got ", x.describe());
  int64_t rows = x.size(0), dim = x.size(1), zero = 0;
  float* p = x.f32();
  for (int64_t i = 0; i < rows; ++i) {
    float* row = p + i * dim;
    double ss = 0;
    for (int64_t c = 0; c < dim; ++c) ss += double(row[c]) * double(row[c]);
    if (ss == 0) {
      ++zero;
      continue;
    }
    const double inv = 1.0 / std::sqrt(ss);
    for (int64_t c = 0; c < dim; ++c) row[c] = float(double(row[c]) * inv);
  }
  return zero;
}

#ifdef FN_WITH_CUDA
namespace {
// Device memory for the duration of one search.
struct DeviceBuffer {
  explicit DeviceBuffer(size_t b) : bytes(b), ptr(b ? device_alloc(Device::CUDA, b) : nullptr) {}
  ~DeviceBuffer() {
    if (ptr) device_free(Device::CUDA, ptr, bytes);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T> T* as() const { return static_cast<T*>(ptr); }
  size_t bytes;
  void* ptr;
};

Neighbours topk_search_cuda(const float* query, int64_t nq, const float* gallery, int64_t ng, int64_t dim,
                            const SearchOptions& opt) {
  check_sizes(nq, ng, dim, opt.k);
  const int64_t k = std::min(opt.k, ng);
  FN_CHECK(k <= kCudaMaxK, "topk_search on CUDA: k = ", k, " exceeds the kernels' limit of ", kCudaMaxK);
  FN_CHECK(opt.cuda_version == 1 || opt.cuda_version == 2, "topk_search: unknown CUDA version ", opt.cuda_version);
  Neighbours r = make_result(nq, k);
  if (nq == 0 || k == 0) return r;
  const int64_t block = std::min(opt.query_block > 0 ? opt.query_block : 4096, nq);
  DeviceBuffer scores(static_cast<size_t>(block * ng) * 4), index(static_cast<size_t>(nq * k) * 4), distance(static_cast<size_t>(nq * k) * 4);
  for (int64_t r0 = 0; r0 < nq; r0 += block) {
    int64_t m = std::min(block, nq - r0);
    gemm_cuda(false, true, m, ng, dim, 1.0f, query + r0 * dim, dim, gallery, dim, 0.0f, scores.as<float>(), ng);
    cuda::topk_rows_f32(scores.as<float>(), m, ng, int(k), opt.cuda_version, index.as<int32_t>() + r0 * k,
                        distance.as<float>() + r0 * k);
  }
  CUDA_CHECK(cudaMemcpyAsync(r.index.data(), index.ptr, index.bytes, cudaMemcpyDeviceToHost, ::fn::cuda::stream()));
  CUDA_CHECK(cudaMemcpyAsync(r.distance.data(), distance.ptr, distance.bytes, cudaMemcpyDeviceToHost,
                             ::fn::cuda::stream()));
  CUDA_CHECK(cudaStreamSynchronize(::fn::cuda::stream()));
  return r;
}
}  // namespace
#endif

Neighbours topk_search(const Tensor& query, const Tensor& gallery, const SearchOptions& opt) {
  FN_CHECK(query.ndim() == 2 && gallery.ndim() == 2, "topk_search: 2-D query and gallery expected, got ",
           query.describe(), ", ", gallery.describe());
  FN_CHECK(query.size(1) == gallery.size(1), "topk_search: query dimension ", query.size(1),
           " differs from gallery dimension ", gallery.size(1));
  FN_CHECK(query.dtype() == DType::F32 && gallery.dtype() == DType::F32, "topk_search: float32 expected, got ",
           query.describe(), ", ", gallery.describe());
  check_same_device("topk_search", query, gallery);
  if (query.is_cuda()) {
#ifdef FN_WITH_CUDA
    return topk_search_cuda(query.f32(), query.size(0), gallery.f32(), gallery.size(0), query.size(1), opt);
#endif
  }
  return topk_search_cpu(query.f32(), query.size(0), gallery.f32(), gallery.size(0), query.size(1), opt);
}

}  // namespace fn::kernels
