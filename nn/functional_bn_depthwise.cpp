// A batch norm (with its activation) feeding a depthwise convolution, as one op: conv2d(act(bn(x)), w, b) with
// groups = C. On the CPU the convolution normalises its input as it gathers it (kernels::DwInputNorm), so
// act(bn(x)), the largest tensor of an MBConv block, is never written, read back or kept for the backward:
// the forward computes the batch norm's statistics alone, the backward takes the convolution's gradients with
// the same gather-time norm, then the batch norm's backward (which rebuilds the activation's mask from x). The
// same bits as F::batch_norm2d then F::conv2d, whose kernels these are. CUDA runs the two ops.
#include "core/autograd.h"
#include "kernels/bias.h"
#include "kernels/depthwise_conv2d.h"
#include "nn/functional.h"

namespace fn::F {

Tensor batch_norm2d_depthwise(const Tensor& x, const Tensor& bn_weight, const Tensor& bn_bias,
                              const Tensor& running_mean, const Tensor& running_var, BatchNormMode mode,
                              BatchNormArgs bn, const Tensor& w, const Tensor& b, Conv2dArgs c) {
  FN_CHECK(x.ndim() == 4 && c.groups == x.size(1), "batch_norm2d_depthwise: a depthwise convolution (groups = the ",
           "channel count) of x (N,C,H,W) expected; got x ", x.describe(), " and groups = ", c.groups);
  if (x.is_cuda()) return conv2d(batch_norm2d(x, bn_weight, bn_bias, running_mean, running_var, mode, bn), w, b, c);
  const auto stats = mode == BatchNormMode::Train ? kernels::BatchNormStats::Batch : kernels::BatchNormStats::Running;
  const kernels::DwGeom g = kernels::depthwise_geom(x.shape(), w.shape(), c.stride, c.pad);
  Tensor mean = Tensor::empty({g.C}, x.dtype(), x.device()), inv_std = Tensor::empty_like(mean), none;
  Tensor rm = running_mean, rv = running_var;  // handles: the kernel updates their storage in place
  kernels::batch_norm2d_forward(x, bn_weight, bn_bias, rm, rv, stats, bn.momentum, bn.eps, none, mean, inv_std,
                                kernels::BatchNormAlgo::Auto, bn.act);
  const kernels::DwInputNorm norm{bn_weight, bn_bias, mean, inv_std, bn.act};
  Tensor y = Tensor::empty({g.N, g.C, g.P, g.Q}, x.dtype(), x.device());
  kernels::depthwise_conv2d_forward(x, w, b, y, c.stride, c.pad, false, kernels::DepthwiseAlgo::Auto, norm);
  if (needs_grad({x, bn_weight, bn_bias, w, b})) {
    record("batch_norm2d_depthwise", {x, bn_weight, bn_bias, w, b}, y,
           [x, w, b, c, stats, norm](const Tensor& gy) {
             const auto wanted = [](const Tensor& t) { return t.defined() && t.requires_grad(); };
             const Tensor &bn_weight = norm.weight, &bn_bias = norm.bias;
             const bool bn_grads = wanted(x) || wanted(bn_weight) || wanted(bn_bias);
             Tensor gxn, gw, gb, gx, gbn_w, gbn_b;  // gxn: the gradient of act(bn(x))
             if (bn_grads) gxn = Tensor::empty_like(x);
             if (wanted(w)) gw = Tensor::empty_like(w);
             kernels::depthwise_conv2d_backward(x, gy, w, bn_grads ? &gxn : nullptr, gw.defined() ? &gw : nullptr,
                                                c.stride, c.pad, kernels::DepthwiseAlgo::Auto, norm);
             if (wanted(b)) {
               gb = Tensor::empty_like(b);
               kernels::bias_grad(gy, gb);
             }
             if (bn_grads) {
               if (wanted(x)) gx = Tensor::empty_like(x);
               if (wanted(bn_weight)) gbn_w = Tensor::empty_like(bn_weight);
               if (wanted(bn_bias)) gbn_b = Tensor::empty_like(bn_bias);
               kernels::batch_norm2d_backward(gxn, x, bn_weight, bn_bias, norm.mean, norm.inv_std, stats, gx, gbn_w,
                                              gbn_b, kernels::BatchNormAlgo::Auto, norm.act);
             }
             return std::vector<Tensor>{gx, gbn_w, gbn_b, gw, gb};
           });
  }
  return y;
}

}  // namespace fn::F
