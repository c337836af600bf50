// BatchNorm2d: batch normalisation of an NCHW tensor per channel, as PyTorch's nn.BatchNorm2d, with its names:
// parameters "weight" (ones) and "bias" (zeros), buffers "running_mean" (zeros) and "running_var" (ones), so
// checkpoints map one to one (PyTorch's num_batches_tracked is only used when momentum is None, which this
// layer does not offer, and is not kept). The module's mode decides what the forward does (nn/module.h):
//   training mode            Train: the batch's statistics; the running ones move by momentum (F::batch_norm2d)
//   training, frozen stats   Frozen: the running statistics, left alone; gradients still reach x, weight and
//                            bias (fine-tuning with small batches)
//   eval mode                Eval: the running statistics
#pragma once
#include <cstdint>

#include "nn/functional.h"
#include "nn/module.h"

namespace fn::nn {

class BatchNorm2d : public Module {
 public:
  // affine = false: no weight or bias (y = xhat).
  explicit BatchNorm2d(int64_t channels, F::BatchNormArgs args = {}, bool affine = true);
  // In Train mode this updates running_mean and running_var in place (their storage, as PyTorch's forward does).
  Tensor operator()(const Tensor& x) const { return (*this)(x, args.act); }
  // act(bn(x)) as one op (F::BatchNormArgs::act): conv-BN-ReLU6 and conv-BN-ReLU write it this way.
  Tensor operator()(const Tensor& x, F::BatchNormAct act) const;
  // This batch norm with `act`, to run inside another op (F::batch_norm2d_depthwise): its tensors, mode and args.
  F::BatchNormRef ref(F::BatchNormAct act) const;
  // Keeps the running statistics fixed while the module trains (the mode F::BatchNormMode::Frozen).
  void freeze_statistics(bool on = true) { frozen_ = on; }
  bool statistics_frozen() const { return frozen_; }
  F::BatchNormMode mode() const;

  int64_t channels;
  F::BatchNormArgs args;
  Tensor weight, bias, running_mean, running_var;

 private:
  bool frozen_ = false;
};

}  // namespace fn::nn
