// landmark_pool as a differentiable op: the forward launcher saves each output's argmax cell, the backward
// routes gradients there (or adds them in place into an existing feature gradient).
#include "nn/landmark_pool.h"

#include <memory>

#include "core/autograd.h"

namespace fn::F {

Tensor landmark_pool(const Tensor& features, const Tensor& landmarks, const Tensor& visibility,
                     const kernels::LandmarkPoolArgs& args) {
  FN_CHECK(features.ndim() == 4 && landmarks.ndim() == 3, "landmark_pool: features (N,C,H,W) and landmarks (N,L,2)",
           " expected, got ", features.describe(), " and ", landmarks.describe());
  const int64_t N = features.size(0), C = features.size(1), L = landmarks.size(1);
  Tensor out = Tensor::empty({N, L * C}, features.dtype(), features.device());
  auto argmax = std::make_shared<kernels::Int32Buffer>(features.device(), N * L * C);
  kernels::landmark_pool_forward(features, landmarks, visibility, args, out, *argmax);
  if (needs_grad({features})) {
    Shape fshape = features.shape();
    record(
        "landmark_pool", {features, landmarks, visibility}, out,
        [argmax, fshape](const Tensor& g) {
          Tensor gf = Tensor::empty(fshape, g.dtype(), g.device());
          kernels::landmark_pool_backward(g, *argmax, gf);
          return std::vector<Tensor>{gf, Tensor(), Tensor()};  // no gradient to the landmarks or visibility
        },
        // When the features' gradient already exists (FashionNet: pool4's), add into it: ~1 in 100 cells.
        [argmax](const Tensor& g, Tensor& gf) { kernels::landmark_pool_backward_accumulate(g, *argmax, gf); });
  }
  return out;
}

}  // namespace fn::F
