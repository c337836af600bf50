#include "nn/layers.h"

#include <cmath>

namespace fn::nn {

Conv2d::Conv2d(int in_, int out_, Rng& rng, bool relu, int kernel, int pad)
    : in(in_), out(out_), relu_(relu), pad_(pad) {
  double std = std::sqrt(2.0 / double(out_ * kernel * kernel));
  weight = add_parameter("weight", Tensor::randn({out_, in_, kernel, kernel}, rng, std));
  bias = add_parameter("bias", Tensor::zeros({out_}));
}

Tensor Conv2d::operator()(const Tensor& x) const {
  F::Conv2dArgs a;
  a.stride = 1;
  a.pad = pad_;
  return relu_ ? F::conv2d_relu(x, weight, bias, a) : F::conv2d(x, weight, bias, a);
}

Linear::Linear(int in_, int out_, Rng& rng, double init_std) : in(in_), out(out_) {
  weight = add_parameter("weight", Tensor::randn({out_, in_}, rng, init_std));
  bias = add_parameter("bias", Tensor::zeros({out_}));
}

Tensor Linear::operator()(const Tensor& x) const { return F::linear(x, weight, bias); }

}  // namespace fn::nn
