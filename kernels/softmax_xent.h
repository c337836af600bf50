// Fused softmax cross-entropy over the last dimension (category loss, K = 23 or 50; per-slot visibility
// loss, N*8 rows of K = 2).
//   logits (N, K); labels (N) class indices stored as exact integers in a float tensor (the Tensor is
//   float only), ignore_label (default -1) drops a row; weights (N) optional per-sample weights.
//   CE_i  = lse_i - z_{i, y_i},  lse_i = m_i + log sum_k exp(z_ik - m_i),  m_i = max_k z_ik  (stable)
//   loss  = sum_i w_i CE_i / norm,  norm = sum over non-ignored rows of w_i  (the weighted mean);
//           norm = 0 (every row ignored) gives loss 0 and gradient 0.
//   dloss/dz_ik = g * w_i / norm * (softmax_ik - [k == y_i])
// Label smoothing e in [0, 1) (PyTorch's label_smoothing): the target is q_k = (1 - e) [k == y_i] + e / K,
//   CE_i  = (1 - e) (lse_i - z_{i, y_i}) + e (lse_i - mean_k z_ik),  dCE_i/dz_ik = softmax_ik - q_k.
//   e = 0 is the plain loss, bit for bit (the row mean is not read).
// A label outside [0, K) that is not ignore_label is an error on the CPU, and makes the loss NaN on CUDA
// (a kernel cannot throw; NaN is loud).
//
// Also here, shared by every loss kernel: loss_finalize, the deterministic reduction of per-row terms to
// the scalar loss.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

// ---- the shared final reduction
// loss = sum(terms) / D and norm = D, with D = sum(denominators) when denominators is defined, else
// fixed_denominator; loss = 0 when D = 0. Sums run in double in a fixed order (CPU: index order; CUDA: one
// block, fixed tree), so a run reproduces bitwise. loss and norm are 0-d tensors on the terms' device.
void loss_finalize(const Tensor& terms, const Tensor& denominators, double fixed_denominator, Tensor& loss,
                   Tensor& norm);

// ---- softmax cross-entropy
// Forward: V1RowThread (one thread per row), V2RowWarp, V3RowWarpOnline and V4RowRegisters (one warp per
// row; CUDA). Default: V1 for K <= 8, V4 above (V4 itself runs V2 for rows over 1024 logits).
enum class SoftmaxXentVersion { Default, V1RowThread, V2RowWarp, V3RowWarpOnline, V4RowRegisters };
// Backward: V1Element (one thread per logit), V2RowWarp (one warp per row; CUDA). Default: V1 for K <= 8.
enum class SoftmaxXentBackwardVersion { Default, V1Element, V2RowWarp };

// Writes loss (0-d), and saves lse (N), row_weight (N: w_i, 0 for ignored rows) and norm (0-d) for the backward.
void softmax_xent_forward(const Tensor& logits, const Tensor& labels, const Tensor& weights, int ignore_label,
                          double smoothing, Tensor& loss, Tensor& lse, Tensor& row_weight, Tensor& norm,
                          SoftmaxXentVersion version = SoftmaxXentVersion::Default);
// grad_loss is the 0-d gradient of the loss; grad_logits (N, K) is written in full.
void softmax_xent_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& labels, double smoothing,
                           const Tensor& lse, const Tensor& row_weight, const Tensor& norm, Tensor& grad_logits,
                           SoftmaxXentBackwardVersion version = SoftmaxXentBackwardVersion::Default);

// The labelled part of a row once its lse is known: returns w_i * CE_i and the row's weight (0 if ignored);
// an invalid label yields NaN. With smoothing the row is read once more for its mean (on CUDA by one lane:
// smoothing is for the category loss's few dozen classes).
template <class T>
FN_HD T softmax_xent_label_term(const T* z, int K, T lse, T label, T weight, int ignore_label, T smoothing,
                                T& row_weight) {
  if (label == T(ignore_label)) {
    row_weight = T(0);
    return T(0);
  }
  int y = label >= T(0) && label < T(K) ? int(label) : -1;
  if (y < 0 || T(y) != label) {
    row_weight = T(0);
    return T(NAN);
  }
  row_weight = weight;
  if (smoothing == T(0)) return weight * (lse - z[y]);
  T sum = T(0);
  for (int k = 0; k < K; ++k) sum += z[k];
  return weight * ((T(1) - smoothing) * (lse - z[y]) + smoothing * (lse - sum / T(K)));
}

// Per-row body (CPU loop and CUDA v1): the stable log-sum-exp, then the labelled term.
template <class T>
FN_HD T softmax_xent_row(const T* z, int K, T label, T weight, int ignore_label, T smoothing, T& lse, T& row_weight) {
  T m = z[0];
  for (int k = 1; k < K; ++k) m = z[k] > m ? z[k] : m;
  T s = T(0);
  for (int k = 0; k < K; ++k) s += std::exp(z[k] - m);
  lse = m + std::log(s);
  return softmax_xent_label_term(z, K, lse, label, weight, ignore_label, smoothing, row_weight);
}

// Per-element backward body: gradient of logit k of a row; uniform = smoothing / K.
template <class T>
FN_HD T softmax_xent_grad(T z, T lse, int k, T label, T smoothing, T uniform, T scale_row) {
  T p = std::exp(z - lse) - uniform;
  return scale_row * (T(k) == label ? p - (T(1) - smoothing) : p);
}

#ifdef FN_WITH_CUDA
namespace cuda {
void loss_finalize_f32(const float* terms, const float* denominators, int64_t n, float fixed_denominator, float* loss,
                       float* norm);
void softmax_xent_forward_f32(SoftmaxXentVersion v, const float* logits, const float* labels, const float* weights,
                              int N, int K, int ignore_label, float smoothing, float* terms, float* lse, float* row_weight);
void softmax_xent_backward_f32(SoftmaxXentBackwardVersion v, const float* grad_loss, const float* logits,
                               const float* labels, float smoothing, const float* lse, const float* row_weight, const float* norm, int N,
                               int K, float* grad_logits);
}  // namespace cuda
#endif

}  // namespace fn::kernels
