// The layers FashionNet is built from. Each owns its parameters (PyTorch layouts, so checkpoints map
// one to one onto torchvision and onto the PyTorch twin in bench/pytorch) and calls the ops in
// nn/functional.h.
#pragma once
#include <cstdint>

#include "core/philox.h"
#include "nn/functional.h"
#include "nn/module.h"

namespace fn::nn {

// 3x3 convolution, stride 1, pad 1 (VGG's only kind), followed by ReLU when `relu` is set.
// Init: weights N(0, sqrt(2 / fan_out)) (Kaiming, as torchvision initialises VGG), bias 0.
class Conv2d : public Module {
 public:
  Conv2d(int in, int out, Rng& rng, bool relu = true, int kernel = 3, int pad = 1);
  Tensor operator()(const Tensor& x) const;
  int in, out;
  Tensor weight, bias;

 private:
  bool relu_;
  int pad_;
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
