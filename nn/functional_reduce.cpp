// Differentiable sum, mean and softmax.
#include "core/autograd.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "nn/functional.h"

namespace fn::F {
namespace {
Tensor reduce_all(const Tensor& x, double factor, const char* op) {
  Tensor s = Tensor::empty({1}, x.dtype(), x.device());
  kernels::sum_all(x, s);
  Tensor y = s;
  if (factor != 1.0) {
    y = Tensor::empty({1}, x.dtype(), x.device());
    kernels::broadcast_scalar(s, factor, y);
  }
  if (needs_grad({x})) {
    Shape shape = x.shape();
    record(op, {x}, y, [shape, factor](const Tensor& g) {
      Tensor gx = Tensor::empty(shape, g.dtype(), g.device());
      kernels::broadcast_scalar(g, factor, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}
}  // namespace

Tensor sum(const Tensor& x) { return reduce_all(x, 1.0, "sum"); }

Tensor mean(const Tensor& x) {
  FN_CHECK(x.numel() > 0, "mean of an empty tensor");
  return reduce_all(x, 1.0 / double(x.numel()), "mean");
}

Tensor softmax(const Tensor& x) {
  Tensor y = Tensor::empty_like(x);
  kernels::softmax_forward(x, y);
  if (needs_grad({x})) {
    record("softmax", {x}, y, [y](const Tensor& g) {
      Tensor gx = Tensor::empty_like(g);
      kernels::softmax_backward(y, g, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

}  // namespace fn::F
