// The caching allocator (core/allocator.h): blocks kept and handed out again, the statistics, and, under
// AddressSanitizer, the marks that let the sanitizer see through the cache.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "core/allocator.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

using namespace fn;

TEST_CASE("allocator: a freed block is cached and handed out again; the statistics follow") {
  allocator_empty_cache(Device::CPU);
  allocator_reset_peak(Device::CPU);
  const AllocatorStats s0 = allocator_stats(Device::CPU);
  REQUIRE(s0.cached == 0);
  void* a = device_alloc(Device::CPU, 1000);  // rounded up to 1,024 bytes
  REQUIRE(reinterpret_cast<uintptr_t>(a) % 64 == 0);
  REQUIRE(allocator_stats(Device::CPU).in_use == s0.in_use + 1024);
  device_free(Device::CPU, a, 1000);
  REQUIRE(allocator_stats(Device::CPU).in_use == s0.in_use);
  REQUIRE(allocator_stats(Device::CPU).cached == 1024);
  REQUIRE(allocator_stats(Device::CPU).peak == s0.in_use + 1024);
  void* b = device_alloc(Device::CPU, 1010);  // the same bucket: the same block
  REQUIRE(b == a);
  REQUIRE(allocator_stats(Device::CPU).cached == 0);
  device_free(Device::CPU, b, 1010);
  allocator_empty_cache(Device::CPU);
  REQUIRE(allocator_stats(Device::CPU).cached == 0);
}

#if defined(__SANITIZE_ADDRESS__)
// Only in the sanitizer builds (`./build.sh sanitize`, and cudasim for its device memory).
TEST_CASE("allocator: under AddressSanitizer the rounding and cached blocks are poisoned, new blocks are NaN") {
  allocator_empty_cache(Device::CPU);
  auto* p = static_cast<float*>(device_alloc(Device::CPU, 10 * sizeof(float)));  // in a 256-byte block
  REQUIRE(!__asan_address_is_poisoned(p + 9));
  REQUIRE(__asan_address_is_poisoned(p + 10));  // the first float past the tensor
  REQUIRE(__asan_address_is_poisoned(reinterpret_cast<char*>(p) + 255));
  for (int i = 0; i < 10; ++i) REQUIRE(std::isnan(p[i]));
  for (int i = 0; i < 10; ++i) p[i] = 1.f;
  device_free(Device::CPU, p, 10 * sizeof(float));
  REQUIRE(__asan_address_is_poisoned(p));  // in the cache

  auto* q = static_cast<float*>(device_alloc(Device::CPU, 20 * sizeof(float)));  // the cached block again
  REQUIRE(q == p);
  REQUIRE(!__asan_address_is_poisoned(q + 19));
  REQUIRE(__asan_address_is_poisoned(q + 20));
  for (int i = 0; i < 20; ++i) REQUIRE(std::isnan(q[i]));  // not the previous tensor's ones
  device_free(Device::CPU, q, 20 * sizeof(float));
  allocator_empty_cache(Device::CPU);  // unpoisoned before it goes back to the system
}
#endif
