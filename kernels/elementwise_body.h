// Per-element bodies of the elementwise ops, run by the CPU loop and by the CUDA grid alike.
#pragma once
#include <cstdint>

#include "core/hd.h"
#include "core/philox.h"

namespace fn::kernels {

template <class T> FN_HD T relu_fwd(T x) { return x > T(0) ? x : T(0); }
template <class T> FN_HD T relu_bwd(T y, T gy) { return y > T(0) ? gy : T(0); }
// ReLU6 (MobileNet, EfficientNet-Lite): min(max(x, 0), 6); a NaN stays NaN, as in PyTorch's clamp. Its
// backward passes gy where 0 < x < 6, which is where 0 < y < 6, so it too is written on the output.
template <class T> FN_HD T relu6_fwd(T x) { return x < T(0) ? T(0) : (x > T(6) ? T(6) : x); }
template <class T> FN_HD T relu6_bwd(T y, T gy) { return y > T(0) && y < T(6) ? gy : T(0); }

// Dropout keeps element i when its uniform draw is >= p; stream 0x64726f70 ("drop") separates it from
// other users of the same seed.
FN_HD bool dropout_keep(uint64_t seed, int64_t i, float p) {
  return Philox::uniform(seed, 0x64726f70ull, uint64_t(i)) >= p;
}
template <class T> FN_HD T dropout_apply(T x, uint64_t seed, int64_t i, float p) {
  return dropout_keep(seed, i, p) ? x * T(1.0 / (1.0 - double(p))) : T(0);
}

}  // namespace fn::kernels
