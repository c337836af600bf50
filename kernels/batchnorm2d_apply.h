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
#include <type_traits>
#include <vector>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "kernels/batchnorm2d.h"
#include "kernels/elementwise_body.h"

namespace fn::kernels {

// Calls f(std::integral_constant<BatchNormAct, a>{}): the CPU loops are compiled once per activation.
template <class F>
void with_act(BatchNormAct a, F&& f) {
  switch (a) {
    case BatchNormAct::None: return f(std::integral_constant<BatchNormAct, BatchNormAct::None>{});
    case BatchNormAct::Relu: return f(std::integral_constant<BatchNormAct, BatchNormAct::Relu>{});
    case BatchNormAct::Relu6: return f(std::integral_constant<BatchNormAct, BatchNormAct::Relu6>{});
  }
}

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
// Every channel's affine; w, b undefined: no affine.
template <class T>
std::vector<Affine<T>> affines_of(const Tensor& w, const Tensor& b, const Tensor& mean, const Tensor& inv_std) {
  std::vector<Affine<T>> f;
  for (int64_t c = 0; c < mean.numel(); ++c)
    f.push_back(affine_of(c, w.defined() ? w.data<T>() : nullptr, b.defined() ? b.data<T>() : nullptr,
                          mean.data<T>(), inv_std.data<T>()));
  return f;
}
template <BatchNormAct A, class T>
inline T output_at(T x, const Affine<T>& f) {
  return act_value<A>(std::fma(x - f.m, f.a, f.b));
}

// The activation's backward on its output y (elementwise_body.h's rules).
template <BatchNormAct A, class T>
inline T act_grad(T y, T g) {
  if constexpr (A == BatchNormAct::Relu) return relu_bwd(y, g);
  else if constexpr (A == BatchNormAct::Relu6) return relu6_bwd(y, g);
  else return g;
}
// g masked by the activation at the output rebuilt from x (A != None); g itself otherwise.
template <BatchNormAct A, class T>
inline T masked(T g, T x, const Affine<T>& f) {
  if constexpr (A == BatchNormAct::None) return g;
  else return act_grad<A>(output_at<A>(x, f), g);
}

// The backward's per-channel coefficients (from its sums, kernels/batchnorm2d.cpp): with A = f.a,
//   Batch:   dx = fma(mask(g) + C0, A, (x - m) B)        Running: dx = mask(g) A
// computed by grad_at, one value at a time, so that every reader that forms dx gets the same bits.
template <class T>
struct GradCoef {
  Affine<T> f;
  T B, C0;
};
template <BatchNormAct A, bool Batch, class T>
inline T grad_at(T g, T x, const GradCoef<T>& k) {
  if constexpr (Batch) return std::fma(masked<A>(g, x, k.f) + k.C0, k.f.a, (x - k.f.m) * k.B);
  else return masked<A>(g, x, k.f) * k.f.a;
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
template <BatchNormAct A>
inline __m256 act_grad(__m256 y, __m256 g) {
  if constexpr (A == BatchNormAct::None) return g;
  const __m256 pass = _mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ);
  if constexpr (A == BatchNormAct::Relu) return _mm256_and_ps(pass, g);
  else return _mm256_and_ps(_mm256_and_ps(pass, _mm256_cmp_ps(y, _mm256_set1_ps(6.f), _CMP_LT_OQ)), g);
}
template <BatchNormAct A>
inline __m256 masked(__m256 g, __m256 x, const AffineV& f) {
  if constexpr (A == BatchNormAct::None) return g;
  else return act_grad<A>(output_at<A>(x, f), g);
}
struct GradCoefV {
  AffineV f;
  __m256 B, C0;
  GradCoefV() = default;
  explicit GradCoefV(const GradCoef<float>& k) : f(k.f), B(_mm256_set1_ps(k.B)), C0(_mm256_set1_ps(k.C0)) {}
};
template <BatchNormAct A, bool Batch>
inline __m256 grad_at(__m256 g, __m256 x, const GradCoefV& k) {
  if constexpr (Batch) {
    const __m256 t = _mm256_mul_ps(_mm256_sub_ps(x, k.f.m), k.B);
    return _mm256_fmadd_ps(_mm256_add_ps(masked<A>(g, x, k.f), k.C0), k.f.a, t);
  } else {
    return _mm256_mul_ps(masked<A>(g, x, k.f), k.f.a);
  }
}
#endif

}  // namespace fn::kernels
