// Weighted binary cross-entropy on logits for the attributes (A = 463 or 1000 at FashionNet's shapes).
//   logits z (N, A); targets a (N, A) in {0, 1}; known (N, A) 1 = label known, 0 = unknown (contributes
//   nothing), or undefined = all known; w_pos, w_neg (A) per-attribute weights.
//   loss = (1/N) sum_{n,j} known_nj [ w_pos_j a_nj softplus(-z_nj) + w_neg_j (1 - a_nj) softplus(z_nj) ]
//   which is -[w_pos a log s(z) + w_neg (1-a) log(1 - s(z))] with the stable log-sigmoid
//   log s(z) = -softplus(-z), log(1 - s(z)) = -softplus(z), softplus(x) = max(x, 0) + log1p(exp(-|x|)).
//   Normaliser: N (images), so the loss scale does not move with how many labels happen to be known.
//   dloss/dz = g/N * known * (w_neg (1-a) s(z) - w_pos a (1 - s(z)))
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

enum class AttrBceVersion { Default, V1Element, V2RowBlock };

// loss is 0-d. known may be undefined.
void attr_bce_forward(const Tensor& logits, const Tensor& targets, const Tensor& known, const Tensor& w_pos,
                      const Tensor& w_neg, Tensor& loss, AttrBceVersion version = AttrBceVersion::Default);
// grad_loss 0-d; grad_logits (N, A) written in full.
void attr_bce_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& targets, const Tensor& known,
                       const Tensor& w_pos, const Tensor& w_neg, Tensor& grad_logits);

// Per-attribute weights from training-set counts (DeepFashion's unknown labels excluded from both):
//   w_pos = M/(2 pos), w_neg = M/(2 neg) with M = pos + neg, so that each attribute's positives and negatives
//   carry equal total weight; clamped to [lo, hi]. Since M/(2 count) >= 1/2, only hi (rare side boosted at
//   most hi-fold) and a lo above 1/2 can bite; the default lo = 0.05 is a guard, inert with this formula. pos = 0 (or
//   neg = 0) gives the clamp's hi for the empty side; pos = neg = 0 (never labelled) gives 1 and 1.
struct AttributeWeights {
  std::vector<float> w_pos, w_neg;
};
AttributeWeights attribute_weights(const std::vector<int64_t>& pos, const std::vector<int64_t>& neg, float lo = 0.05f,
                                   float hi = 20.f);

template <class T>
FN_HD T softplus(T x) {
  return (x > T(0) ? x : T(0)) + std::log1p(std::exp(-std::fabs(x)));
}
template <class T>
FN_HD T sigmoid(T x) {
  // Never exp of a large positive number: overflow-free for either sign.
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}

// One element's loss term (before the 1/N).
template <class T>
FN_HD T attr_bce_term(T z, T a, T known, T wp, T wn) {
  if (known == T(0)) return T(0);  // unknown: nothing, even where z is not finite
  return known * (wp * a * softplus(-z) + wn * (T(1) - a) * softplus(z));
}
// One element's gradient; scale = g / N.
template <class T>
FN_HD T attr_bce_grad(T z, T a, T known, T wp, T wn, T scale) {
  if (known == T(0)) return T(0);
  T s = sigmoid(z);
  return scale * known * (wn * (T(1) - a) * s - wp * a * (T(1) - s));
}

#ifdef FN_WITH_CUDA
namespace cuda {
// Writes per-element (v1) or per-row (v2) terms into `terms` and returns how many it wrote.
int64_t attr_bce_terms_f32(AttrBceVersion v, const float* z, const float* a, const float* known, const float* wp,
                           const float* wn, int N, int A, float* terms);
void attr_bce_backward_f32(const float* grad_loss, const float* z, const float* a, const float* known, const float* wp,
                           const float* wn, int N, int A, float* grad_logits);
}  // namespace cuda
#endif

}  // namespace fn::kernels
