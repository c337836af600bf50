// Masked landmark L2 regression (docs/fashionnet.md sec. 3, L_landmarks).
//   pred (N, L, 2) and target (N, L, 2) in [0,1] coordinates of the network input; visibility v (N, L).
//   loss = (1/N) sum_n sum_j || v_nj (pred_nj - target_nj) ||^2     (normaliser: N images)
//   dloss/dpred_nj = g * 2 v_nj^2 (pred_nj - target_nj) / N;  dloss/dtarget = -dloss/dpred
// v is 0/1 in DeepFashion; any real weight works (it enters squared, as in the formula).
#pragma once
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

// loss is 0-d.
void landmark_l2_forward(const Tensor& pred, const Tensor& target, const Tensor& visibility, Tensor& loss);
// grad_pred (and grad_target when defined) written in full.
void landmark_l2_backward(const Tensor& grad_loss, const Tensor& pred, const Tensor& target, const Tensor& visibility,
                          Tensor& grad_pred, Tensor& grad_target);

// One image's term: sum over its L slots.
template <class T>
FN_HD T landmark_l2_row(const T* p, const T* t, const T* v, int L) {
  T sum = T(0);
  for (int j = 0; j < L; ++j) {
    T dx = v[j] * (p[2 * j] - t[2 * j]), dy = v[j] * (p[2 * j + 1] - t[2 * j + 1]);
    sum += dx * dx + dy * dy;
  }
  return sum;
}
// One coordinate's gradient wrt pred; scale = g / N.
template <class T>
FN_HD T landmark_l2_grad(T p, T t, T v, T scale) {
  return scale * T(2) * v * v * (p - t);
}

#ifdef FN_WITH_CUDA
namespace cuda {
void landmark_l2_terms_f32(const float* pred, const float* target, const float* vis, int N, int L, float* terms);
void landmark_l2_backward_f32(const float* grad_loss, const float* pred, const float* target, const float* vis, int N,
                              int L, float* grad_pred, float* grad_target);
}  // namespace cuda
#endif

}  // namespace fn::kernels
