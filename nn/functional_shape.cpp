// Differentiable reshape, flatten and concat.
#include "core/autograd.h"
#include "kernels/concat.h"
#include "nn/functional.h"

namespace fn::F {

Tensor reshape(const Tensor& x, const Shape& s) {
  Tensor y = x.view(s);
  if (needs_grad({x})) {
    Shape in = x.shape();
    record("reshape", {x}, y, [in](const Tensor& g) { return std::vector<Tensor>{g.view(in)}; });
  }
  return y;
}

Tensor flatten(const Tensor& x) {
  FN_CHECK(x.ndim() >= 1, "flatten: needs a batch dimension, got ", x.describe());
  return reshape(x, {x.size(0), -1});
}

Tensor concat(const std::vector<Tensor>& xs, int dim) {
  FN_CHECK(!xs.empty(), "concat: no inputs");
  const Tensor& x0 = xs[0];
  int nd = x0.ndim();
  if (dim < 0) dim += nd;
  FN_CHECK(dim >= 0 && dim < nd, "concat: dimension ", dim, " out of range for ", x0.describe());
  Shape out = x0.shape();
  out[dim] = 0;
  for (auto& x : xs) {
    FN_CHECK(x.ndim() == nd, "concat: ", x.describe(), " vs ", x0.describe());
    for (int d = 0; d < nd; ++d)
      FN_CHECK(d == dim || x.size(d) == x0.size(d), "concat along ", dim, ": ", x.describe(), " vs ", x0.describe());
    check_same_device("concat", x, x0);
    out[dim] += x.size(dim);
  }
  int64_t outer = 1;
  for (int d = 0; d < dim; ++d) outer *= out[d];
  int64_t row = outer ? shape_numel(out) / outer : 0;
  Tensor y = Tensor::empty(out, x0.dtype(), x0.device());
  std::vector<int64_t> cols, offs;
  int64_t off = 0;
  for (auto& x : xs) {
    int64_t c = outer ? x.numel() / outer : 0;
    kernels::copy_rows(x, 0, c, y, off, row, outer, c);
    cols.push_back(c);
    offs.push_back(off);
    off += c;
  }
  if (needs_grad(xs)) {
    std::vector<Shape> shapes;
    for (auto& x : xs) shapes.push_back(x.shape());
    record("concat", xs, y, [shapes, cols, offs, outer, row](const Tensor& g) {
      std::vector<Tensor> gs;
      for (size_t i = 0; i < shapes.size(); ++i) {
        Tensor gi = Tensor::empty(shapes[i], g.dtype(), g.device());
        kernels::copy_rows(g, offs[i], row, gi, 0, cols[i], outer, cols[i]);
        gs.push_back(gi);
      }
      return gs;
    });
  }
  return y;
}

}  // namespace fn::F
