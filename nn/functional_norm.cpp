// Differentiable normalisation: batch_norm2d, optionally with its activation (args.act). The forward saves the
// per-channel mean and inv_std it normalised by (the batch's in Train, the running ones in Eval and Frozen);
// the backward is kernels::batch_norm2d_backward with the same statistics (kernels/batchnorm2d.h has the
// formulas).
// Eval and Frozen are the same op: what differs is the module's intent (nn/batchnorm2d.h). Either records a
// backward only when some input needs a gradient, like every op.
#include "core/autograd.h"
#include "kernels/batchnorm2d.h"
#include "nn/functional.h"

namespace fn::F {

Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, BatchNormMode mode, BatchNormArgs a) {
  FN_CHECK(x.ndim() == 4, "batch_norm2d: x must be (N,C,H,W), got ", x.describe());
  const auto stats = batch_norm_stats(mode);
  Tensor y = Tensor::empty_like(x);
  Tensor mean = Tensor::empty({x.size(1)}, x.dtype(), x.device()), inv_std = Tensor::empty_like(mean);
  Tensor rm = running_mean, rv = running_var;  // handles: the kernel updates their storage in place
  kernels::batch_norm2d_forward(x, weight, bias, rm, rv, stats, a.momentum, a.eps, y, mean, inv_std,
                                kernels::BatchNormAlgo::Auto, a.act);
  if (needs_grad({x, weight, bias})) {
    // With an activation the output masks the gradient, so it is saved; without one only x is.
    const Tensor out = a.act != BatchNormAct::None ? y : Tensor();
    record("batch_norm2d", {x, weight, bias}, y,
           [x, weight, bias, mean, inv_std, stats, act = a.act, out](const Tensor& g) {
             Tensor gx, gw, gb;
             if (x.requires_grad()) gx = Tensor::empty_like(x);
             if (weight.defined() && weight.requires_grad()) gw = Tensor::empty_like(weight);
             if (bias.defined() && bias.requires_grad()) gb = Tensor::empty_like(bias);
             kernels::batch_norm2d_backward(g, x, weight, bias, mean, inv_std, stats, gx, gw, gb,
                                            kernels::BatchNormAlgo::Auto, act, out);
             return std::vector<Tensor>{gx, gw, gb};
           });
  }
  return y;
}

}  // namespace fn::F
