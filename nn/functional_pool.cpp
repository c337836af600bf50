// Differentiable global average pooling (max_pool2d lives with the convolutions in functional_conv.cpp).
// Backward: gx = gy / HW broadcast over each plane; nothing of the forward is kept but x's shape.
#include "core/autograd.h"
#include "kernels/global_avg_pool2d.h"
#include "nn/functional.h"

namespace fn::F {

Tensor global_avg_pool2d(const Tensor& x) {
  FN_CHECK(x.ndim() == 4, "global_avg_pool2d: x (N,C,H,W) expected, got ", x.describe());
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  kernels::global_avg_pool2d_forward(x, y);
  if (needs_grad({x})) {
    const Shape shape = x.shape();
    record("global_avg_pool2d", {x}, y, [shape](const Tensor& gy) {
      Tensor gx = Tensor::empty(shape, gy.dtype(), gy.device());
      kernels::global_avg_pool2d_backward(gy, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace fn::F
