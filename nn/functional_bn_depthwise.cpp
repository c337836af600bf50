// Batch norms (with their activations) around a depthwise convolution, as one op: conv2d(act(bn(x)), w, b) with
// groups = C, and optionally a batch norm after it. On the CPU:
// - the convolution normalises its input as it gathers it (kernels::DwInputNorm), so act(bn(x)), the largest
//   tensor of an MBConv block, is never written, read back or kept for the backward: the forward computes the
//   first batch norm's statistics alone, the backward takes the convolution's gradients with the same
//   gather-time norm, then the batch norm's backward (which rebuilds the activation's mask from x);
// - with a batch norm after (MBConv's depthwise_bn), its backward computes its sums (per-channel coefficients)
//   and the convolution's backward forms the gradient of its output from them as it gathers the gradient and
//   the output (kernels::DwOutputNorm), so that gradient is never stored either.
// The same bits as F::batch_norm2d, F::conv2d and F::batch_norm2d in turn, whose kernels these are. CUDA, and a
// convolution with a bias and a batch norm after it, run the ops in turn.
#include "core/autograd.h"
#include "kernels/bias.h"
#include "kernels/depthwise_conv2d.h"
#include "nn/functional.h"

namespace fn::F {
namespace {

Tensor bn(const Tensor& x, const BatchNormRef& r) {
  return batch_norm2d(x, r.weight, r.bias, r.running_mean, r.running_var, r.mode, r.args);
}
bool wanted(const Tensor& t) { return t.defined() && t.requires_grad(); }

// The backward from the gradient of z, the convolution's output (out: z's batch norm, when the gradient given is
// of its output): {gx, g weight, g bias of the batch norm before, gw, gb}.
std::vector<Tensor> conv_grads(const Tensor& gy, const kernels::DwOutputNorm& out, const Tensor& x, const Tensor& w,
                               const Tensor& b, Conv2dArgs c, kernels::BatchNormStats stats,
                               const kernels::DwInputNorm& norm) {
  const Tensor &bn_weight = norm.weight, &bn_bias = norm.bias;
  const bool bn_grads = wanted(x) || wanted(bn_weight) || wanted(bn_bias);
  Tensor gxn, gw, gb, gx, gbn_w, gbn_b;  // gxn: the gradient of act(bn(x))
  if (bn_grads) gxn = Tensor::empty_like(x);
  if (wanted(w)) gw = Tensor::empty_like(w);
  if (bn_grads || gw.defined())
    kernels::depthwise_conv2d_backward(x, gy, w, bn_grads ? &gxn : nullptr, gw.defined() ? &gw : nullptr, c.stride,
                                       c.pad, kernels::DepthwiseAlgo::Auto, norm, out);
  if (wanted(b)) {  // never with `out` (a bias and a batch norm after it run the ops in turn)
    gb = Tensor::empty_like(b);
    kernels::bias_grad(gy, gb);
  }
  if (bn_grads) {
    if (wanted(x)) gx = Tensor::empty_like(x);
    if (wanted(bn_weight)) gbn_w = Tensor::empty_like(bn_weight);
    if (wanted(bn_bias)) gbn_b = Tensor::empty_like(bn_bias);
    kernels::batch_norm2d_backward(gxn, x, bn_weight, bn_bias, norm.mean, norm.inv_std, stats, gx, gbn_w, gbn_b,
                                   kernels::BatchNormAlgo::Auto, norm.act);
  }
  return {gx, gbn_w, gbn_b, gw, gb};
}

}  // namespace

Tensor batch_norm2d_depthwise(Tensor x, const BatchNormRef& before, const Tensor& w, const Tensor& b, Conv2dArgs c,
                              const BatchNormRef* after) {
  FN_CHECK(x.ndim() == 4 && c.groups == x.size(1), "batch_norm2d_depthwise: a depthwise convolution (groups = the ",
           "channel count) of x (N,C,H,W) expected; got x ", x.describe(), " and groups = ", c.groups);
  if (x.is_cuda() || (after && b.defined())) {
    Tensor z = conv2d(bn(x, before), w, b, c);
    return after ? bn(z, *after) : z;
  }
  const kernels::DwGeom g = kernels::depthwise_geom(x.shape(), w.shape(), c.stride, c.pad);
  const auto stats = batch_norm_stats(before.mode);
  Tensor mean = Tensor::empty({g.C}, x.dtype(), x.device()), inv_std = Tensor::empty_like(mean), none;
  Tensor rm = before.running_mean, rv = before.running_var;  // handles: the kernel updates their storage in place
  kernels::batch_norm2d_forward(x, before.weight, before.bias, rm, rv, stats, before.args.momentum, before.args.eps,
                                none, mean, inv_std, kernels::BatchNormAlgo::Auto, before.args.act);
  const kernels::DwInputNorm norm{before.weight, before.bias, mean, inv_std, before.args.act};
  Tensor z = Tensor::empty({g.N, g.C, g.P, g.Q}, x.dtype(), x.device());
  kernels::depthwise_conv2d_forward(x, w, b, z, c.stride, c.pad, false, kernels::DepthwiseAlgo::Auto, norm);

  if (!after) {
    if (needs_grad({x, before.weight, before.bias, w, b}))
      record("batch_norm2d_depthwise", {x, before.weight, before.bias, w, b}, z,
             [x, w, b, c, stats, norm](const Tensor& gy) { return conv_grads(gy, {}, x, w, b, c, stats, norm); });
    return z;
  }
  const Tensor aw = after->weight, ab = after->bias;
  const bool grads = needs_grad({x, before.weight, before.bias, w, aw, ab});
  // Without gradients x is not needed any more: released here (when the caller passed it on), x, z and the
  // output are never all alive at once (embedding).
  if (!grads) x = Tensor();

  // The batch norm after: its forward as F::batch_norm2d runs it.
  const auto stats2 = batch_norm_stats(after->mode);
  Tensor mean2 = Tensor::empty({g.C}, z.dtype(), z.device()), inv_std2 = Tensor::empty_like(mean2);
  Tensor rm2 = after->running_mean, rv2 = after->running_var, y = Tensor::empty_like(z);
  kernels::batch_norm2d_forward(z, after->weight, after->bias, rm2, rv2, stats2, after->args.momentum,
                                after->args.eps, y, mean2, inv_std2, kernels::BatchNormAlgo::Auto, after->args.act);
  if (grads) {
    record("batch_norm2d_depthwise_batch_norm2d", {x, before.weight, before.bias, w, aw, ab}, y,
           [x, w, c, stats, norm, z, aw, ab, mean2, inv_std2, stats2, act2 = after->args.act](const Tensor& gy) {
             Tensor gaw, gab, coef = Tensor::empty({z.size(1), 2}, z.dtype(), z.device());
             if (wanted(aw)) gaw = Tensor::empty_like(aw);
             if (wanted(ab)) gab = Tensor::empty_like(ab);
             kernels::batch_norm2d_backward_coefficients(gy, z, aw, ab, mean2, inv_std2, stats2, gaw, gab, act2, coef);
             const kernels::DwOutputNorm out{z, aw, ab, mean2, inv_std2, coef, act2,
                                             stats2 == kernels::BatchNormStats::Batch};
             std::vector<Tensor> g = conv_grads(gy, out, x, w, Tensor(), c, stats, norm);
             g[4] = gaw;  // the convolution has no bias here
             g.push_back(gab);
             return g;
           });
  }
  return y;
}

}  // namespace fn::F
