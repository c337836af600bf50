// Differentiable elementwise ops.
#include "core/autograd.h"
#include "kernels/elementwise.h"
#include "nn/functional.h"

namespace fn::F {

Tensor add(const Tensor& a, const Tensor& b) {
  check_same_shape("add", a, b);
  Tensor y = Tensor::empty_like(a);
  kernels::add(a, b, y);
  if (needs_grad({a, b}))
    record("add", {a, b}, y, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_same_shape("mul", a, b);
  Tensor y = Tensor::empty_like(a);
  kernels::mul(a, b, y);
  if (needs_grad({a, b}))
    record("mul", {a, b}, y, [a, b](const Tensor& g) {
      Tensor ga, gb;  // only those wanted (a product by a constant mask or weight needs one)
      if (a.requires_grad()) kernels::mul(g, b, ga = Tensor::empty_like(a));
      if (b.requires_grad()) kernels::mul(g, a, gb = Tensor::empty_like(b));
      return std::vector<Tensor>{ga, gb};
    });
  return y;
}

Tensor scale(const Tensor& a, double alpha) {
  Tensor y = Tensor::empty_like(a);
  kernels::scale(a, alpha, y);
  if (needs_grad({a}))
    record("scale", {a}, y, [alpha](const Tensor& g) {
      Tensor ga = Tensor::empty_like(g);
      kernels::scale(g, alpha, ga);
      return std::vector<Tensor>{ga};
    });
  return y;
}

Tensor relu(const Tensor& x) {
  Tensor y = Tensor::empty_like(x);
  kernels::relu_forward(x, y);
  if (needs_grad({x})) {
    // Saves the output rather than the input: the mask y > 0 is the same, and the next op (a convolution)
    // saves y anyway, while x (an addition's output) can then be freed.
    record("relu", {x}, y, [y](const Tensor& g) {
      Tensor gx = Tensor::empty_like(g);
      kernels::relu_backward(y, g, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor relu6(const Tensor& x) {
  Tensor y = Tensor::empty_like(x);
  kernels::relu6_forward(x, y);
  if (needs_grad({x})) {
    // As relu: the mask 0 < x < 6 is 0 < y < 6.
    record("relu6", {x}, y, [y](const Tensor& g) {
      Tensor gx = Tensor::empty_like(g);
      kernels::relu6_backward(y, g, gx);
      return std::vector<Tensor>{gx};
    });
  }
  return y;
}

Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed, int64_t offset) {
  if (!training || p == 0.f) return x;
  Tensor y = Tensor::empty_like(x);
  kernels::dropout_forward(x, p, seed, y, offset);
  if (needs_grad({x}))
    record("dropout", {x}, y, [p, seed, offset](const Tensor& g) {
      Tensor gx = Tensor::empty_like(g);
      kernels::dropout_backward(g, p, seed, gx, offset);
      return std::vector<Tensor>{gx};
    });
  return y;
}

}  // namespace fn::F
