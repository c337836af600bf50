// Small, portable random numbers for the data layer. std::shuffle and std::uniform_*_distribution differ
// between standard libraries, so every random choice here goes through these functions: a seed then gives
// the same batches, crops and synthetic images on every platform.
//
// Xoshiro256 is a sequential generator (each number follows from the last): the data layer draws one stream
// per image, item or epoch (derive_seed). It is not core/philox.h's fn::Rng, the counter-based Philox stream
// of the tensors' random initialisation and of dropout, whose numbers the GPU can draw per element; the two
// give different numbers for the same seed and are not interchangeable.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace fn::data {

// SplitMix64 finaliser: a good 64-bit mixer, used to derive independent streams from (seed, a, b, ...).
inline uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
inline uint64_t derive_seed(uint64_t seed, uint64_t a, uint64_t b = 0, uint64_t c = 0) {
  return mix64(mix64(mix64(mix64(seed) ^ a) ^ b) ^ c);
}

// xoshiro256** (Blackman & Vigna) seeded through SplitMix64.
class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed = 0) {
    for (auto& w : s_) w = seed = mix64(seed);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0]; s_[3] ^= s_[1]; s_[1] ^= s_[2]; s_[0] ^= s_[3];
    s_[2] ^= t; s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform integer in [0, n) without modulo bias (Lemire's multiply-shift with rejection).
  uint64_t below(uint64_t n) {
    if (n <= 1) return 0;
    while (true) {
      const unsigned __int128 m = (unsigned __int128)next() * n;
      const uint64_t lo = (uint64_t)m;
      if (lo >= n || lo >= (-n) % n) return (uint64_t)(m >> 64);
    }
  }
  int range(int lo, int hi) { return lo + (int)below((uint64_t)(hi - lo + 1)); }  // inclusive
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }         // [0, 1)
  float uniform(float lo, float hi) { return lo + (hi - lo) * (float)uniform(); }
  bool chance(double p) { return uniform() < p; }
  template <class T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace fn::data
