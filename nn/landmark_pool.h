// Landmark pooling, FashionNet's own layer (docs/fashionnet.md sec. 2; the kernel: kernels/landmark_pool.h,
// docs/kernels/landmark_pool.md), as a differentiable op.
#pragma once
#include "core/tensor.h"
#include "kernels/landmark_pool.h"

namespace fn::F {

// features (N,C,H,W), landmarks (N,L,2) in input pixels, visibility (N,L) -> (N, L*C) slot-major.
// Gradient to the features only (never to the landmarks). Rules: kernels/landmark_pool_body.h.
Tensor landmark_pool(const Tensor& features, const Tensor& landmarks, const Tensor& visibility,
                     const kernels::LandmarkPoolArgs& args = {});

}  // namespace fn::F
