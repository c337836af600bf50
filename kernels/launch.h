// Helpers shared by the kernel launchers: the CPU loop that drives an FN_HD per-element body, and the
// checks every launcher makes before choosing a device.
#pragma once
#include <cstdint>
#include "core/tensor.h"
#include "core/thread_pool.h"

namespace fn::kernels {

// Runs body(i) for i in [0, n) on the CPU: the same per-element body the CUDA grid runs.
template <class F>
inline void cpu_for(int64_t n, F&& body) {
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Runs body(begin, end) over [0, n) cut into `threads` contiguous ranges, the first on the caller and the
// others on the kept worker threads (core/thread_pool.h). For memory-bound passes where every element is
// written by exactly one range, so the result does not depend on the thread count.
template <class F>
inline void cpu_parallel_ranges(int64_t n, int threads, F&& body) {
  if (threads > n) threads = int(n);
  if (threads <= 1) {
    if (n > 0) body(int64_t(0), n);
    return;
  }
  parallel_run(threads, [&body, n, threads](int t) { body(n * t / threads, n * (t + 1) / threads); });
}

// CUDA's limit on gridDim.y and gridDim.z (gridDim.x goes to 2^31 - 1).
constexpr int64_t kMaxGridY = 65535;

// Launch geometry for one-thread-per-element kernels with a grid-stride loop.
inline int grid_for(int64_t n, int block = 256) {
  int64_t b = (n + block - 1) / block;
  return int(b > 65535 * 8 ? 65535 * 8 : (b < 1 ? 1 : b));
}

}  // namespace fn::kernels
