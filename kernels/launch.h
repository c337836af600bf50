// Helpers shared by the kernel launchers: the CPU loop that drives an FN_HD per-element body, and the
// checks every launcher makes before choosing a device.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fn::kernels {

// Runs body(i) for i in [0, n) on the CPU: the same per-element body the CUDA grid runs.
template <class F>
inline void cpu_for(int64_t n, F&& body) {
  for (int64_t i = 0; i < n; ++i) body(i);
}

// Launch geometry for one-thread-per-element kernels with a grid-stride loop.
inline int grid_for(int64_t n, int block = 256) {
  int64_t b = (n + block - 1) / block;
  return int(b > 65535 * 8 ? 65535 * 8 : (b < 1 ? 1 : b));
}

}  // namespace fn::kernels
