// The retrieval embedding's kernels: row L2 normalisation, pairwise distances by GEMM, and the triplet loss
// on a distance matrix (docs/fashionnet.md sec. 3, L_triplet; P items x K images per batch).
//
// l2_normalize   y_i = x_i / max(||x_i||, eps);  backward gx = (gy - y (y.gy)) / ||x|| (gy / eps when clamped)
// sq distances   D2_ij = ||a_i||^2 + ||b_j||^2 - 2 a_i.b_j (one GEMM), clamped >= 0
// distance       d_ij = sqrt(D2_ij + eps) on one embedding matrix X (N, D), with D2_ii = 0 exactly. The eps
//                guards the sqrt: coincident rows give d = sqrt(eps) and a zero gradient, never NaN.
//                backward: S_ij = gd_ij / (2 d_ij) where D2_ij > 0, else 0 (clamp, diagonal, coincident);
//                gX = 2 diag(rowsum(S + S^T)) X - 2 (S + S^T) X.
// triplet        labels (N) item ids stored as exact integers in a float tensor; margin m.
//   BatchHard    per anchor a: p = argmax_{j != a, y_j = y_a} d_aj, n = argmin_{y_j != y_a} d_aj (first index wins
//                a tie); valid when both exist; loss = sum_a max(0, m + d_ap - d_an) / #valid anchors.
//   BatchAll     every (a, p, n) with y_p = y_a, p != a, y_n != y_a; loss = sum max(0, m + d_ap - d_an) / #active
//                triplets (Hermans et al.'s "batch all": averaging over the many inactive ones would shrink the
//                gradient as training succeeds).
//   active       a triplet with a strictly positive hinge; active_fraction = #active / #valid (0 if none valid).
//   An empty denominator gives loss 0 and gradient 0.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

enum class TripletMode { BatchHard, BatchAll };
enum class L2NormalizeVersion { Default, V1RowThread, V2RowBlock };

// ---- L2 normalisation of rows: x (N, D) -> y (N, D); norms (N) saves the unclamped ||x_i||.
void l2_normalize_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms,
                          L2NormalizeVersion version = L2NormalizeVersion::Default);
void l2_normalize_backward(const Tensor& gy, const Tensor& y, const Tensor& norms, double eps, Tensor& gx);

// ---- distances. a (M, D), b (N, D) -> out (M, N) squared Euclidean distances, clamped >= 0 (retrieval).
void pairwise_sq_distances(const Tensor& a, const Tensor& b, Tensor& out);
// One embedding matrix x (N, D) -> d (N, N) guarded Euclidean distances, d2 (N, N) the clamped squares.
void pairwise_distance_forward(const Tensor& x, double eps, Tensor& d, Tensor& d2);
void pairwise_distance_backward(const Tensor& gd, const Tensor& x, const Tensor& d, const Tensor& d2, Tensor& gx);

// ---- triplet loss on a distance matrix d (N, N): loss and active_fraction are 0-d; norm (0-d) is saved
// for the backward.
void triplet_forward(const Tensor& d, const Tensor& labels, float margin, TripletMode mode, Tensor& loss,
                     Tensor& active_fraction, Tensor& norm);
// gd (N, N) written in full.
void triplet_backward(const Tensor& grad_loss, const Tensor& d, const Tensor& labels, float margin, TripletMode mode,
                      const Tensor& norm, Tensor& gd);

// ---- per-row bodies, run by the CPU loops and the CUDA kernels
template <class T>
FN_HD T row_sq_norm(const T* x, int D) {
  T s = T(0);
  for (int k = 0; k < D; ++k) s += x[k] * x[k];
  return s;
}

template <class T>
FN_HD T l2_inverse_scale(T norm, T eps) {
  return T(1) / (norm > eps ? norm : eps);
}

// gx for one row: (gy - y (y.gy)) / norm where the norm was not clamped, gy / eps where it was.
template <class T>
FN_HD void l2_normalize_grad_row(const T* gy, const T* y, T norm, T eps, int D, T* gx) {
  if (!(norm > eps)) {
    for (int k = 0; k < D; ++k) gx[k] = gy[k] / eps;
    return;
  }
  T dot = T(0);
  for (int k = 0; k < D; ++k) dot += y[k] * gy[k];
  for (int k = 0; k < D; ++k) gx[k] = (gy[k] - y[k] * dot) / norm;
}

// d_ij from the GEMM's inner product: the clamp, the exact zero diagonal, the eps guard.
template <class T>
FN_HD T clamped_sq_distance(T ni, T nj, T dot, bool diagonal) {
  T v = ni + nj - T(2) * dot;
  return diagonal || !(v > T(0)) ? T(0) : v;
}

// Per-anchor results of the forward.
template <class T>
struct AnchorTerms {
  T loss = T(0);    // sum of the anchor's hinges
  T valid = T(0);   // triplets (BatchAll) or 1/0 (BatchHard) the anchor forms
  T active = T(0);  // of which have a positive hinge
};

// Batch-hard choice for anchor a: hardest positive and negative (-1 when absent).
template <class T>
FN_HD void hardest_pair(const T* drow, const T* labels, int a, int N, int& p, int& n) {
  p = -1;
  n = -1;
  for (int j = 0; j < N; ++j) {
    if (labels[j] == labels[a]) {
      if (j != a && (p < 0 || drow[j] > drow[p])) p = j;
    } else if (n < 0 || drow[j] < drow[n]) {
      n = j;
    }
  }
}

template <class T>
FN_HD AnchorTerms<T> triplet_anchor(const T* drow, const T* labels, int a, int N, T margin, TripletMode mode) {
  AnchorTerms<T> r;
  if (mode == TripletMode::BatchHard) {
    int p, n;
    hardest_pair(drow, labels, a, N, p, n);
    if (p < 0 || n < 0) return r;
    T h = margin + drow[p] - drow[n];
    r.valid = T(1);
    if (h > T(0)) {
      r.loss = h;
      r.active = T(1);
    }
    return r;
  }
  for (int p = 0; p < N; ++p) {
    if (p == a || labels[p] != labels[a]) continue;
    for (int n = 0; n < N; ++n) {
      if (labels[n] == labels[a]) continue;
      T h = margin + drow[p] - drow[n];
      r.valid += T(1);
      if (h > T(0)) {
        r.loss += h;
        r.active += T(1);
      }
    }
  }
  return r;
}

// Gradient row a of the distance matrix: +s at each active triplet's positive, -s at its negative, in a
// fixed loop order (the row is owned by one thread: deterministic). s = g / norm.
template <class T>
FN_HD void triplet_anchor_grad(const T* drow, const T* labels, int a, int N, T margin, TripletMode mode, T s, T* grow) {
  for (int j = 0; j < N; ++j) grow[j] = T(0);
  if (mode == TripletMode::BatchHard) {
    int p, n;
    hardest_pair(drow, labels, a, N, p, n);
    if (p < 0 || n < 0 || !(margin + drow[p] - drow[n] > T(0))) return;
    grow[p] += s;
    grow[n] -= s;
    return;
  }
  for (int p = 0; p < N; ++p) {
    if (p == a || labels[p] != labels[a]) continue;
    for (int n = 0; n < N; ++n) {
      if (labels[n] == labels[a] || !(margin + drow[p] - drow[n] > T(0))) continue;
      grow[p] += s;
      grow[n] -= s;
    }
  }
}

#ifdef FN_WITH_CUDA
namespace cuda {
void l2_normalize_forward_f32(L2NormalizeVersion v, const float* x, int N, int D, float eps, float* y, float* norms);
void l2_normalize_backward_f32(const float* gy, const float* y, const float* norms, int N, int D, float eps, float* gx);
void row_sq_norms_f32(const float* x, int N, int D, float* out);
// out (M, N) holds a.b^T on entry; becomes the clamped squared distances (diagonal zeroed when self).
void finish_sq_distances_f32(const float* na, const float* nb, int M, int N, bool self, float* out);
void sqrt_guard_f32(const float* d2, int64_t n, float eps, float* d);
// t = S + S^T with S_ij = gd_ij / (2 d_ij) where d2_ij > 0; rowsum (N) of t.
void distance_grad_sym_f32(const float* gd, const float* d, const float* d2, int N, float* t, float* rowsum);
void add_row_scaled_f32(const float* x, const float* rowsum, int N, int D, float alpha,
                        float* gx);  // gx += alpha*r_i*x_i
void triplet_anchors_f32(const float* d, const float* labels, int N, float margin, TripletMode mode, float* loss,
                         float* valid, float* active);
void triplet_backward_f32(const float* grad_loss, const float* d, const float* labels, const float* norm, int N,
                          float margin, TripletMode mode, float* gd);
}  // namespace cuda
#endif

}  // namespace fn::kernels
