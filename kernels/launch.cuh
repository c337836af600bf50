// Device-side launch helpers for the .cu files (kernels/launch.h holds the host-side ones).
#pragma once
#include <cstdint>

// Grid-stride loop over i in [0, n): thread (blockIdx.x, threadIdx.x) takes i = its global index, then steps by
// the whole grid. i is int64_t; use with grid_for (kernels/launch.h) and a 1-D launch.
#define FN_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(blockDim.x) * gridDim.x)
