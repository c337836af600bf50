#include "core/allocator.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <vector>

#include "core/error.h"
#ifdef FN_WITH_CUDA
#include "core/cuda_check.h"
#endif
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace fn {
namespace {

// Under AddressSanitizer (the sanitize and cudasim builds) the cache must not hide what the system allocator
// would show: a block in the free lists is poisoned, a block handed out is addressable only up to the bytes
// asked for, and it starts as 0xFF bytes (NaN floats), so that code reading past its tensor, a freed tensor,
// or a tensor it never wrote fails there. Only memory the host can address is filled: the CPU's, and the
// simulated device's.
#if defined(__SANITIZE_ADDRESS__)
void mark_handed_out(Device d, void* p, size_t bytes, size_t block) {
  ASAN_UNPOISON_MEMORY_REGION(p, bytes);
  ASAN_POISON_MEMORY_REGION(static_cast<char*>(p) + bytes, block - bytes);
#ifndef FN_CUDA_SIM
  if (d != Device::CPU) return;
#endif
  std::memset(p, 0xFF, bytes);
}
void mark_cached(void* p, size_t block) { ASAN_POISON_MEMORY_REGION(p, block); }
void mark_released(void* p, size_t block) { ASAN_UNPOISON_MEMORY_REGION(p, block); }
#else
void mark_handed_out(Device, void*, size_t, size_t) {}
void mark_cached(void*, size_t) {}
void mark_released(void*, size_t) {}
#endif

// Rounds requests up so that nearby sizes share buckets: 256 B granularity below 1 MiB, 2 MiB above.
size_t round_size(size_t b) {
  if (b == 0) return 256;
  if (b < (1u << 20)) return (b + 255) & ~size_t(255);
  return (b + (2u << 20) - 1) & ~((size_t(2) << 20) - 1);
}

class CachingAllocator {
 public:
  explicit CachingAllocator(Device d) : dev_(d) {}
  void* alloc(size_t bytes) {
    size_t sz = round_size(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    auto it = free_.find(sz);
    void* p = nullptr;
    if (it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      st_.cached -= sz;
    } else {
      p = raw_alloc(sz);
      if (!p) {  // out of memory: give back what is cached and try once more
        release_cached();
        p = raw_alloc(sz);
      }
      FN_CHECK(p, "out of ", device_name(dev_), " memory allocating ", bytes, " bytes (in use ", st_.in_use, ")");
    }
    st_.in_use += sz;
    if (st_.in_use > st_.peak) st_.peak = st_.in_use;
    mark_handed_out(dev_, p, bytes, sz);
    return p;
  }
  void free(void* p, size_t bytes) {
    if (!p) return;
    size_t sz = round_size(bytes);
    std::lock_guard<std::mutex> lk(mu_);
    mark_cached(p, sz);
    free_[sz].push_back(p);
    st_.in_use -= sz;
    st_.cached += sz;
  }
  AllocatorStats stats() {
    std::lock_guard<std::mutex> lk(mu_);
    return st_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lk(mu_);
    st_.peak = st_.in_use;
  }
  void empty() {
    std::lock_guard<std::mutex> lk(mu_);
    release_cached();
  }

 private:
  void* raw_alloc(size_t sz) {
    if (dev_ == Device::CPU) return std::aligned_alloc(64, sz);
#ifdef FN_WITH_CUDA
    void* p = nullptr;
    if (cudaMalloc(&p, sz) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error so the retry can succeed
      return nullptr;
    }
    return p;
#else
    FN_FAIL("CUDA memory requested, but this build has no CUDA");
#endif
  }
  void raw_free(void* p) {
    if (dev_ == Device::CPU) {
      std::free(p);
      return;
    }
#ifdef FN_WITH_CUDA
    cudaFree(p);
#endif
  }
  void release_cached() {
    for (auto& [sz, v] : free_)
      for (void* p : v) {
        mark_released(p, sz);
        raw_free(p);
      }
    free_.clear();
    st_.cached = 0;
  }

  Device dev_;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
  AllocatorStats st_;
};

CachingAllocator& allocator(Device d) {
  // Never destroyed: tensors held in static objects may be freed after main returns.
  static auto* cpu = new CachingAllocator(Device::CPU);
  static auto* gpu = new CachingAllocator(Device::CUDA);
  return d == Device::CPU ? *cpu : *gpu;
}

}  // namespace

void* device_alloc(Device d, size_t bytes) { return allocator(d).alloc(bytes); }
void device_free(Device d, void* p, size_t bytes) { allocator(d).free(p, bytes); }
AllocatorStats allocator_stats(Device d) { return allocator(d).stats(); }
void allocator_reset_peak(Device d) { allocator(d).reset_peak(); }
void allocator_empty_cache(Device d) { allocator(d).empty(); }

}  // namespace fn
