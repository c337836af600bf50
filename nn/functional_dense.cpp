// Differentiable dense ops: matmul and linear (PyTorch's layout, W (out, in)), on kernels::gemm.
//   matmul  y = a b:        ga = g b^T,  gb = a^T g
//   linear  y = x W^T + b:  gx = g W,    gW = g^T x,   gb = column sums of g
#include "core/autograd.h"
#include "kernels/bias.h"
#include "kernels/gemm.h"
#include "nn/functional.h"

namespace fn::F {

Tensor matmul(const Tensor& a, const Tensor& b) {
  FN_CHECK(a.ndim() == 2 && b.ndim() == 2 && a.size(1) == b.size(0), "matmul: (M,K) x (K,N) expected, got ",
           a.describe(), " x ", b.describe());
  Tensor y = Tensor::empty({a.size(0), b.size(1)}, a.dtype(), a.device());
  kernels::gemm(false, false, 1.0, a, b, 0.0, y);
  if (needs_grad({a, b}))
    record("matmul", {a, b}, y, [a, b](const Tensor& g) {
      Tensor ga, gb;
      if (a.requires_grad()) {
        ga = Tensor::empty_like(a);
        kernels::gemm(false, true, 1.0, g, b, 0.0, ga);
      }
      if (b.requires_grad()) {
        gb = Tensor::empty_like(b);
        kernels::gemm(true, false, 1.0, a, g, 0.0, gb);
      }
      return std::vector<Tensor>{ga, gb};
    });
  return y;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  FN_CHECK(x.ndim() == 2 && w.ndim() == 2 && x.size(1) == w.size(1), "linear: x (N, in) and W (out, in) expected, got ",
           x.describe(), " and ", w.describe());
  FN_CHECK(!b.defined() || (b.ndim() == 1 && b.size(0) == w.size(0)), "linear: bias ", b.describe(), " for ",
           w.size(0), " outputs");
  Tensor y = Tensor::empty({x.size(0), w.size(0)}, x.dtype(), x.device());
  kernels::gemm(false, true, 1.0, x, w, 0.0, y);
  if (b.defined()) kernels::bias_add(y, b);
  if (needs_grad({x, w, b}))
    record("linear", {x, w, b}, y, [x, w, b](const Tensor& g) {
      Tensor gx, gw, gb;
      if (x.requires_grad()) {
        gx = Tensor::empty_like(x);
        kernels::gemm(false, false, 1.0, g, w, 0.0, gx);
      }
      if (w.requires_grad()) {
        gw = Tensor::empty_like(w);
        kernels::gemm(true, false, 1.0, g, x, 0.0, gw);
      }
      if (b.defined() && b.requires_grad()) {
        gb = Tensor::empty_like(b);
        kernels::bias_grad(g, gb);
      }
      return std::vector<Tensor>{gx, gw, gb};
    });
  return y;
}

}  // namespace fn::F
