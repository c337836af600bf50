// Differentiable wrappers of the loss kernels: run the forward launcher, save what the backward needs,
// record the backward on the tape.
#include "nn/losses.h"

#include <memory>

#include "core/autograd.h"
#include "kernels/attr_bce.h"
#include "kernels/landmark_l2.h"
#include "kernels/softmax_xent.h"

namespace fn::F {

Tensor softmax_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& weights, int ignore_label,
                             double smoothing) {
  FN_CHECK(logits.ndim() == 2, "softmax_cross_entropy: logits must be (N,K), got ", logits.describe());
  const int64_t N = logits.size(0);
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  Tensor lse = Tensor::empty({N}, logits.dtype(), logits.device()), row_weight = Tensor::empty_like(lse);
  Tensor norm = Tensor::empty({}, logits.dtype(), logits.device());
  kernels::softmax_xent_forward(logits, labels, weights, ignore_label, smoothing, loss, lse, row_weight, norm);
  if (needs_grad({logits}))
    record("softmax_cross_entropy", {logits, labels, weights}, loss,
           [logits, labels, smoothing, lse, row_weight, norm](const Tensor& g) {
             Tensor gz = Tensor::empty_like(logits);
             kernels::softmax_xent_backward(g, logits, labels, smoothing, lse, row_weight, norm, gz);
             return std::vector<Tensor>{gz, Tensor(), Tensor()};
           });
  return loss;
}

Tensor attribute_bce(const Tensor& logits, const Tensor& targets, const Tensor& known, const Tensor& w_pos,
                     const Tensor& w_neg) {
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  kernels::attr_bce_forward(logits, targets, known, w_pos, w_neg, loss);
  if (needs_grad({logits}))
    record("attribute_bce", {logits, targets, known, w_pos, w_neg}, loss, [=](const Tensor& g) {
      Tensor gz = Tensor::empty_like(logits);
      kernels::attr_bce_backward(g, logits, targets, known, w_pos, w_neg, gz);
      return std::vector<Tensor>{gz, Tensor(), Tensor(), Tensor(), Tensor()};
    });
  return loss;
}

Tensor landmark_l2(const Tensor& pred, const Tensor& target, const Tensor& visibility) {
  Tensor loss = Tensor::empty({}, pred.dtype(), pred.device());
  kernels::landmark_l2_forward(pred, target, visibility, loss);
  if (needs_grad({pred, target}))
    record("landmark_l2", {pred, target, visibility}, loss, [=](const Tensor& g) {
      Tensor gp = Tensor::empty_like(pred);
      Tensor gt = target.requires_grad() ? Tensor::empty_like(target) : Tensor();
      kernels::landmark_l2_backward(g, pred, target, visibility, gp, gt);
      return std::vector<Tensor>{gp, gt, Tensor()};
    });
  return loss;
}

Tensor l2_normalize(const Tensor& x, double eps) {
  FN_CHECK(x.ndim() == 2, "l2_normalize: (N,D) expected, got ", x.describe());
  Tensor y = Tensor::empty_like(x), norms = Tensor::empty({x.size(0)}, x.dtype(), x.device());
  kernels::l2_normalize_forward(x, eps, y, norms);
  if (needs_grad({x})) {
    record("l2_normalize", {x}, y, [y, norms, eps](const Tensor& g) {
      Tensor gx = Tensor::empty_like(g);
      kernels::l2_normalize_backward(g, y, norms, eps, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor pairwise_distance(const Tensor& x, double eps) {
  FN_CHECK(x.ndim() == 2, "pairwise_distance: (N,D) expected, got ", x.describe());
  const int64_t N = x.size(0);
  Tensor d = Tensor::empty({N, N}, x.dtype(), x.device()), d2 = Tensor::empty_like(d);
  kernels::pairwise_distance_forward(x, eps, d, d2);
  if (needs_grad({x})) {
    record("pairwise_distance", {x}, d, [x, d, d2](const Tensor& g) {
      Tensor gx = Tensor::empty_like(x);
      kernels::pairwise_distance_backward(g, x, d, d2, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return d;
}

TripletResult triplet_loss_from_distances(const Tensor& d, const Tensor& labels, const TripletArgs& a) {
  TripletResult r;
  r.loss = Tensor::empty({}, d.dtype(), d.device());
  r.active_fraction = Tensor::empty({}, d.dtype(), d.device());
  Tensor norm = Tensor::empty({}, d.dtype(), d.device());
  kernels::triplet_forward(d, labels, a.margin, a.mode, r.loss, r.active_fraction, norm);
  if (needs_grad({d}))
    record("triplet_loss", {d, labels}, r.loss, [d, labels, a, norm](const Tensor& g) {
      Tensor gd = Tensor::empty_like(d);
      kernels::triplet_backward(g, d, labels, a.margin, a.mode, norm, gd);
      return std::vector<Tensor>{gd, Tensor()};
    });
  return r;
}

TripletResult triplet_loss(const Tensor& embeddings, const Tensor& labels, const TripletArgs& a) {
  return triplet_loss_from_distances(pairwise_distance(embeddings, a.eps), labels, a);
}

}  // namespace fn::F
