#include "nn/batchnorm2d.h"

namespace fn::nn {

BatchNorm2d::BatchNorm2d(int64_t channels_, F::BatchNormArgs a, bool affine) : channels(channels_), args(a) {
  FN_CHECK(channels_ > 0, "BatchNorm2d: channels must be positive, got ", channels_);
  FN_CHECK(a.eps > 0 && a.momentum >= 0 && a.momentum <= 1, "BatchNorm2d: eps ", a.eps, " momentum ", a.momentum);
  if (affine) {
    weight = add_parameter("weight", Tensor::full({channels_}, 1.0));
    bias = add_parameter("bias", Tensor::zeros({channels_}));
  }
  running_mean = add_buffer("running_mean", Tensor::zeros({channels_}));
  running_var = add_buffer("running_var", Tensor::full({channels_}, 1.0));
}

F::BatchNormMode BatchNorm2d::mode() const {
  if (!is_training()) return F::BatchNormMode::Eval;
  return frozen_ ? F::BatchNormMode::Frozen : F::BatchNormMode::Train;
}

F::BatchNormRef BatchNorm2d::ref(F::BatchNormAct act) const {
  F::BatchNormArgs a = args;
  a.act = act;
  return {weight, bias, running_mean, running_var, mode(), a};
}

Tensor BatchNorm2d::operator()(const Tensor& x, F::BatchNormAct act) const {
  FN_CHECK(x.ndim() == 4 && x.size(1) == channels, "BatchNorm2d(", channels, "): x must be (N,", channels,
           ",H,W), got ", x.describe());
  F::BatchNormArgs a = args;
  a.act = act;
  return F::batch_norm2d(x, weight, bias, running_mean, running_var, mode(), a);
}

}  // namespace fn::nn
