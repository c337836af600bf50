// How a batch norm's output is made from x on the CPU, per channel: y = act(fma(x - m, a, b)) with
// a = w * inv_std (from the saved inv_std, rounded once) and b the bias (kernels/batchnorm2d.h has the math).
// One fused multiply-add, in vector and scalar code alike, so that every reader of x that rebuilds y gets the
// forward's bits: the batch norm's backward (its activation's mask) and the depthwise convolution, which
// applies a batch norm to its input as it gathers it (DwInputNorm, kernels/depthwise_conv2d.h).
// The activations are elementwise_body.h's rules; the AVX2 forms keep them, NaN and -0 included: max(v, 0)
// returns 0 for a NaN v as relu_fwd does, max(0, v) and min(6, v) return v, as relu6_fwd does.
// CPU only (the CUDA batch norm writes its output and the activation runs as its own kernel).
#pragma once
#include <cmath>
#include <cstdint>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "kernels/batchnorm2d.h"
#include "kernels/elementwise_body.h"

namespace fn::kernels {

template <BatchNormAct A, class T>
inline T act_value(T v) {
  if constexpr (A == BatchNormAct::Relu) return relu_fwd(v);
  else if constexpr (A == BatchNormAct::Relu6) return relu6_fwd(v);
  else return v;
}

template <class T>
struct Affine {
  T m, a, b;
};
// Channel c's affine from the forward's saved statistics; w, b null: no affine (1, 0).
template <class T>
Affine<T> affine_of(int64_t c, const T* w, const T* b, const T* mean, const T* inv_std) {
  return {mean[c], T((w ? double(w[c]) : 1.0) * double(inv_std[c])), b ? b[c] : T(0)};
}
template <BatchNormAct A, class T>
inline T output_at(T x, const Affine<T>& f) {
  return act_value<A>(std::fma(x - f.m, f.a, f.b));
}

#ifdef __AVX2__
template <BatchNormAct A>
inline __m256 act_value(__m256 v) {
  if constexpr (A == BatchNormAct::Relu) return _mm256_max_ps(v, _mm256_setzero_ps());
  else if constexpr (A == BatchNormAct::Relu6)
    return _mm256_min_ps(_mm256_set1_ps(6.f), _mm256_max_ps(_mm256_setzero_ps(), v));
  else return v;
}
struct AffineV {
  __m256 m, a, b;
  AffineV() = default;
  explicit AffineV(const Affine<float>& f) : m(_mm256_set1_ps(f.m)), a(_mm256_set1_ps(f.a)), b(_mm256_set1_ps(f.b)) {}
};
template <BatchNormAct A>
inline __m256 output_at(__m256 x, const AffineV& f) {
  return act_value<A>(_mm256_fmadd_ps(_mm256_sub_ps(x, f.m), f.a, f.b));
}
#endif

}  // namespace fn::kernels
