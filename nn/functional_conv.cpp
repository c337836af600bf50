// Differentiable convolution and pooling: conv2d, conv2d_relu (one op, one saved output) and max_pool2d.
// Backward of conv2d: gx = conv2d_backward_data(g, W), gW = conv2d_backward_filter(x, g), gb = bias_grad(g);
// conv2d_relu first masks g by its output (y > 0), then does the same. groups = 1 runs kernels/conv2d.h,
// groups = C (depthwise) kernels/depthwise_conv2d.h, with the same structure.
#include "core/autograd.h"
#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/depthwise_conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/maxpool2d.h"
#include "nn/functional.h"

namespace fn::F {
namespace {

// Whether this convolution is depthwise; refuses group counts other than 1 and the channel count.
bool depthwise(const Tensor& x, const Tensor& w, Conv2dArgs a) {
  FN_CHECK(x.ndim() == 4 && w.ndim() == 4, "conv2d: x (N,C,H,W) and w (K,C/groups,R,S) expected, got ",
           x.describe(), " and ", w.describe());
  const int64_t C = x.size(1);
  FN_CHECK(a.groups == 1 || a.groups == C, "conv2d: groups must be 1 or the channel count (", C,
           ", depthwise); got groups = ", a.groups);
  if (a.groups == 1) return false;
  FN_CHECK(w.size(0) == C && w.size(1) == 1, "conv2d: a depthwise convolution (groups = ", C,
           ") takes filters (", C, ",1,R,S), one per channel; got ", w.describe());
  return true;
}

// The gradients of x, W and b for an output gradient g of the convolution (before any activation).
std::vector<Tensor> conv_grads(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a) {
  Tensor gx, gw, gb;
  if (x.requires_grad()) gx = Tensor::empty_like(x);
  if (w.requires_grad()) gw = Tensor::empty_like(w);
  if (a.groups != 1) {  // depthwise (checked by depthwise() in the forward): both gradients in one call
    kernels::depthwise_conv2d_backward(x, g, w, gx.defined() ? &gx : nullptr, gw.defined() ? &gw : nullptr, a.stride,
                                       a.pad);
  } else {
    if (gx.defined()) kernels::conv2d_backward_data(g, w, gx, a.stride, a.pad);
    if (gw.defined()) kernels::conv2d_backward_filter(x, g, gw, a.stride, a.pad);
  }
  if (b.defined() && b.requires_grad()) {
    gb = Tensor::empty_like(b);
    kernels::bias_grad(g, gb);
  }
  return {gx, gw, gb};
}

// The output of the forward, bias added and ReLU applied when `relu`.
Tensor conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a, bool relu) {
  if (depthwise(x, w, a)) {
    kernels::DwGeom g = kernels::depthwise_geom(x.shape(), w.shape(), a.stride, a.pad);
    Tensor y = Tensor::empty({g.N, g.C, g.P, g.Q}, x.dtype(), x.device());
    kernels::depthwise_conv2d_forward(x, w, b, y, a.stride, a.pad, relu);
    return y;
  }
  kernels::ConvGeom g = kernels::conv_geom(x.shape(), w.shape(), a.stride, a.pad);
  Tensor y = Tensor::empty({g.N, g.K, g.P, g.Q}, x.dtype(), x.device());
  kernels::conv2d_forward(x, w, b, y, a.stride, a.pad, relu);
  return y;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a) {
  Tensor y = conv_forward(x, w, b, a, false);
  if (needs_grad({x, w, b}))
    record("conv2d", {x, w, b}, y, [x, w, b, a](const Tensor& g) { return conv_grads(g, x, w, b, a); });
  return y;
}

Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a) {
  Tensor y = conv_forward(x, w, b, a, true);
  if (needs_grad({x, w, b})) {
    // The ReLU's mask from the output: the next op saves y anyway, the pre-activation is never kept.
    record("conv2d_relu", {x, w, b}, y, [x, w, b, a, y](const Tensor& g) {
      Tensor gpre = Tensor::empty_like(g);
      kernels::relu_backward(y, g, gpre);
      return conv_grads(gpre, x, w, b, a);
    });
  }
  return y;
}

Tensor max_pool2d(const Tensor& x, Pool2dArgs a) {
  kernels::PoolGeom g = kernels::pool_geom(x.shape(), a.kernel, a.stride, a.pad);
  Tensor y = Tensor::empty({g.N, g.C, g.P, g.Q}, x.dtype(), x.device());
  kernels::max_pool2d_forward(x, y, a.kernel, a.stride, a.pad);
  if (needs_grad({x})) {
    record("max_pool2d", {x}, y, [x, a, y](const Tensor& gy) {
      Tensor gx = Tensor::empty_like(x);
      kernels::max_pool2d_backward(x, y, gy, gx, a.kernel, a.stride, a.pad);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace fn::F
