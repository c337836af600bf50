// Memory for tensors. Both devices go through a caching allocator: freed blocks are kept in size buckets
// and handed out again, so a training step that allocates the same shapes every iteration does not pay
// cudaMalloc (GPU) or fresh page faults (CPU) each time.
#pragma once
#include <cstddef>

#include "core/device.h"

namespace fn {

void* device_alloc(Device d, size_t bytes);
void device_free(Device d, void* p, size_t bytes);

struct AllocatorStats {
  size_t in_use = 0;  // bytes handed out now
  size_t peak = 0;    // most bytes handed out at once since the last reset
  size_t cached = 0;  // bytes held in free lists
};
AllocatorStats allocator_stats(Device d);
void allocator_reset_peak(Device d);
void allocator_empty_cache(Device d);  // returns cached blocks to the system

}  // namespace fn
