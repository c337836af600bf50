// The differentiable building blocks of FashionNet's five losses (docs/fashionnet.md sec. 3). Each runs a
// launcher from kernels/ and records its backward on the tape.
// Losses return 0-d tensors. Integer inputs (class labels, item ids) are float tensors holding exact
// integers, on the same device and of the same dtype as the op's main input.
#pragma once
#include "core/tensor.h"
#include "kernels/triplet.h"

namespace fn::F {

// Softmax cross-entropy, weighted mean over the rows whose label is not ignore_label.
// logits (N,K), labels (N); weights (N) optional (undefined = 1). smoothing e in [0, 1): the target puts
// 1 - e on the label and e spread evenly over the K classes (PyTorch's label_smoothing; kernels/softmax_xent.h).
Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& weights = Tensor(),
                             int ignore_label = -1, double smoothing = 0.0);

// Weighted attribute BCE on logits (N,A), divided by N. known (N,A) optional: 0 drops a label.
Tensor attribute_bce(const Tensor& logits, const Tensor& targets, const Tensor& known, const Tensor& w_pos,
                     const Tensor& w_neg);

// sum_j ||v_j (pred_j - target_j)||^2 / N, pred/target (N,L,2), visibility (N,L). Gradients to pred and target.
Tensor landmark_l2(const Tensor& pred, const Tensor& target, const Tensor& visibility);

// Rows divided by max(||x_i||, eps).
Tensor l2_normalize(const Tensor& x, double eps = 1e-12);

// Guarded Euclidean distances between the rows of x (N,D): d_ij = sqrt(max(D2_ij, 0) + eps), d_ii = sqrt(eps).
Tensor pairwise_distance(const Tensor& x, double eps = 1e-12);

struct TripletArgs {
  float margin = 0.2f;  // on L2-normalised embeddings, where distances lie in [0, 2]
  kernels::TripletMode mode = kernels::TripletMode::BatchHard;
  double eps = 1e-12;  // the sqrt guard of pairwise_distance
};
struct TripletResult {
  Tensor loss;             // 0-d, differentiable
  Tensor active_fraction;  // 0-d, #active / #valid triplets (a diagnostic, no gradient)
};
// On a distance matrix d (N,N) with item ids (N).
TripletResult triplet_loss_from_distances(const Tensor& d, const Tensor& labels, const TripletArgs& args = {});
// On embeddings (N,D) (L2-normalise them first): pairwise_distance then triplet_loss_from_distances.
TripletResult triplet_loss(const Tensor& embeddings, const Tensor& labels, const TripletArgs& args = {});

}  // namespace fn::F
