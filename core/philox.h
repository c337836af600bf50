// Counter-based RNG (Philox4x32-10, Salmon et al. 2011). A random number is a pure function of
// (seed, stream, counter), so the CPU loop and a CUDA grid draw identical numbers for the same element,
// whatever the thread mapping, and a run is reproducible from its seed.
#pragma once
#include <cstdint>

#include "core/hd.h"

namespace fn {

struct Philox {
  // Returns 4 random 32-bit words for counter `ctr` of stream (seed, stream).
  static FN_HD void draw(uint64_t seed, uint64_t stream, uint64_t ctr, uint32_t out[4]) {
    uint32_t c0 = uint32_t(ctr), c1 = uint32_t(ctr >> 32), c2 = uint32_t(stream), c3 = uint32_t(stream >> 32);
    uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
    for (int r = 0; r < 10; ++r) {
      uint64_t p0 = uint64_t(0xD2511F53u) * c0, p1 = uint64_t(0xCD9E8D57u) * c2;
      uint32_t n0 = uint32_t(p1 >> 32) ^ c1 ^ k0, n2 = uint32_t(p0 >> 32) ^ c3 ^ k1;
      c1 = uint32_t(p1);
      c3 = uint32_t(p0);
      c0 = n0;
      c2 = n2;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
  }
  // Uniform float in [0, 1) for element i of stream (seed, stream): 4 elements share one Philox block.
  static FN_HD float uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    uint32_t r[4];
    draw(seed, stream, i >> 2, r);
    return float(r[i & 3] >> 8) * (1.0f / 16777216.0f);
  }
};

// A host-side generator for initialisation and shuffles: a Philox stream with a running counter. (The data
// layer's sequential generator is data::Xoshiro256, data/rng.h.)
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}
  uint32_t next_u32() {
    if (have_ == 0) { Philox::draw(seed_, stream_, ctr_++, buf_); have_ = 4; }
    return buf_[4 - have_--];
  }
  uint64_t next_u64() { return (uint64_t(next_u32()) << 32) | next_u32(); }
  double uniform() { return double(next_u64() >> 11) * (1.0 / 9007199254740992.0); }  // [0,1)
  double normal();                                 // Box-Muller
  int64_t below(int64_t n) { return int64_t(uniform() * double(n)); }  // [0, n)
  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_, stream_, ctr_ = 0;
  uint32_t buf_[4] = {};
  int have_ = 0;
};

}  // namespace fn
