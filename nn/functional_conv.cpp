// Differentiable convolution and pooling: conv2d, conv2d_relu (one op, one saved output) and max_pool2d.
// Backward of conv2d: gx = conv2d_backward_data(g, W), gW = conv2d_backward_filter(x, g), gb = bias_grad(g);
// conv2d_relu first masks g by its output (y > 0), then does the same.
#include "core/autograd.h"
#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/maxpool2d.h"
#include "nn/functional.h"

namespace fn::F {
namespace {

// The gradients of x, W and b for an output gradient g of the convolution (before any activation).
std::vector<Tensor> conv_grads(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a) {
  Tensor gx, gw, gb;
  if (x.requires_grad()) {
    gx = Tensor::empty_like(x);
    kernels::conv2d_backward_data(g, w, gx, a.stride, a.pad);
  }
  if (w.requires_grad()) {
    gw = Tensor::empty_like(w);
    kernels::conv2d_backward_filter(x, g, gw, a.stride, a.pad);
  }
  if (b.defined() && b.requires_grad()) {
    gb = Tensor::empty_like(b);
    kernels::bias_grad(g, gb);
  }
  return {gx, gw, gb};
}

Tensor conv_output(const Tensor& x, const Tensor& w, Conv2dArgs a) {
  kernels::ConvGeom g = kernels::conv_geom(x.shape(), w.shape(), a.stride, a.pad);
  return Tensor::empty({g.N, g.K, g.P, g.Q}, x.dtype(), x.device());
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a) {
  Tensor y = conv_output(x, w, a);
  kernels::conv2d_forward(x, w, b, y, a.stride, a.pad, false);
  if (needs_grad({x, w, b}))
    record("conv2d", {x, w, b}, y, [x, w, b, a](const Tensor& g) { return conv_grads(g, x, w, b, a); });
  return y;
}

Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a) {
  Tensor y = conv_output(x, w, a);
  kernels::conv2d_forward(x, w, b, y, a.stride, a.pad, true);
  if (needs_grad({x, w, b})) {
    // The node holds y as its output; a weak reference keeps the closure from owning it a second time.
    std::weak_ptr<TensorImpl> wy = y.impl_ptr();
    record("conv2d_relu", {x, w, b}, y, [x, w, b, a, wy](const Tensor& g) {
      Tensor gpre = Tensor::empty_like(g);
      kernels::relu_backward(Tensor(wy.lock()), g, gpre);
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
    std::weak_ptr<TensorImpl> wy = y.impl_ptr();
    record("max_pool2d", {x}, y, [x, a, wy](const Tensor& gy) {
      Tensor gx = Tensor::empty_like(x);
      kernels::max_pool2d_backward(x, Tensor(wy.lock()), gy, gx, a.kernel, a.stride, a.pad);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace fn::F
