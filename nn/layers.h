// The layers FashionNet is built from. Each owns its parameters (PyTorch layouts, so checkpoints map
// one to one onto torchvision and onto the PyTorch twin in bench/pytorch) and calls the ops in
// nn/functional.h.
#pragma once
#include <cstdint>

#include "core/philox.h"
#include "nn/batchnorm2d.h"
#include "nn/functional.h"
#include "nn/module.h"

namespace fn::nn {

// A k x k convolution (the defaults: VGG's 3x3, stride 1, pad 1, with bias, then ReLU). groups is 1 or
// `in` (depthwise: out == in, weight (in, 1, k, k)); see F::conv2d.
struct Conv2dOptions {
  int kernel = 3, stride = 1, pad = 1, groups = 1;
  bool bias = true;  // without: no "bias" parameter (a batch norm follows)
  bool relu = true;  // ReLU fused into the convolution's op
};

// Init: weights N(0, sqrt(2 / fan_out)) with fan_out = out * k * k / groups (Kaiming fan-out, as
// torchvision initialises VGG and ResNet; the / groups is MobileNet's and EfficientNet's rule for
// depthwise layers), bias 0. Weights are drawn first, in one randn call, so VGG's draws are unchanged.
class Conv2d : public Module {
 public:
  Conv2d(int in, int out, Rng& rng, Conv2dOptions opt = {});
  Tensor operator()(const Tensor& x) const;
  // This convolution of act(before(x)), then after(., after_act) when `after` is given: a depthwise one without
  // ReLU runs F::batch_norm2d_depthwise (the same bits, fewer tensors stored on the CPU); any other, the ops in
  // turn. x by value, passed on (F::batch_norm2d_depthwise lets go of it early without gradients).
  Tensor operator()(Tensor x, const BatchNorm2d& before, F::BatchNormAct act, const BatchNorm2d* after = nullptr,
                    F::BatchNormAct after_act = F::BatchNormAct::None) const;
  int in, out;
  Conv2dOptions opt;
  Tensor weight, bias;  // bias undefined when !opt.bias
};

// y = x W^T + b. Init: weights N(0, std) with std = sqrt(2 / in) for hidden layers followed by ReLU
// (Kaiming) and 0.01 for output heads; bias 0.
class Linear : public Module {
 public:
  Linear(int in, int out, Rng& rng, double init_std);
  Tensor operator()(const Tensor& x) const;
  int in, out;
  Tensor weight, bias;
};

}  // namespace fn::nn
