#include "nn/layers.h"

#include <cmath>
#include <utility>

namespace fn::nn {

Conv2d::Conv2d(int in_, int out_, Rng& rng, Conv2dOptions o) : in(in_), out(out_), opt(o) {
  FN_CHECK(o.kernel >= 1 && o.stride >= 1 && o.pad >= 0, "Conv2d: kernel ", o.kernel, " stride ", o.stride, " pad ",
           o.pad);
  FN_CHECK(o.groups == 1 || (o.groups == in_ && out_ == in_), "Conv2d: groups must be 1 or the channel count with as ",
           "many outputs (depthwise); got ", in_, " -> ", out_, " in ", o.groups, " groups");
  const int k = o.kernel;
  const double fan_out = double(out_) * k * k / o.groups;
  weight = add_parameter("weight", Tensor::randn({out_, in_ / o.groups, k, k}, rng, std::sqrt(2.0 / fan_out)));
  if (o.bias) bias = add_parameter("bias", Tensor::zeros({out_}));
}

Tensor Conv2d::operator()(const Tensor& x) const {
  F::Conv2dArgs a;
  a.stride = opt.stride;
  a.pad = opt.pad;
  a.groups = opt.groups;
  return opt.relu ? F::conv2d_relu(x, weight, bias, a) : F::conv2d(x, weight, bias, a);
}

Tensor Conv2d::operator()(Tensor x, const BatchNorm2d& before, F::BatchNormAct act, const BatchNorm2d* after,
                          F::BatchNormAct after_act) const {
  if (opt.groups == 1 || opt.relu) {
    Tensor y = (*this)(before(x, act));
    return after ? (*after)(y, after_act) : y;
  }
  const F::BatchNormRef then = after ? after->ref(after_act) : F::BatchNormRef{};
  return F::batch_norm2d_depthwise(std::move(x), before.ref(act), weight, bias, {opt.stride, opt.pad, opt.groups},
                                   after ? &then : nullptr);
}

Linear::Linear(int in_, int out_, Rng& rng, double init_std) : in(in_), out(out_) {
  weight = add_parameter("weight", Tensor::randn({out_, in_}, rng, init_std));
  bias = add_parameter("bias", Tensor::zeros({out_}));
}

Tensor Linear::operator()(const Tensor& x) const { return F::linear(x, weight, bias); }

}  // namespace fn::nn
