// CPU reference and dispatch of the softmax: one row at a time.
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

namespace fn::kernels {
namespace {
void check(const char* op, const Tensor& a, const Tensor& b) {
  check_same_shape(op, a, b);
  check_same_device(op, a, b);
  check_float32_on_cuda(op, a);
  FN_CHECK(a.ndim() >= 1, op, ": needs at least one dimension");
}
}  // namespace

void softmax_forward(const Tensor& x, Tensor& y) {
  check("softmax_forward", x, y);
  int64_t cols = x.size(-1), rows = cols ? x.numel() / cols : 0;
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::softmax_forward_f32(x.f32(), y.f32(), rows, cols);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    for (int64_t r = 0; r < rows; ++r) {
      const T* xr = x.data<T>() + r * cols;
      T* yr = y.data<T>() + r * cols;
      T m = *std::max_element(xr, xr + cols);
      T s = 0;
      for (int64_t c = 0; c < cols; ++c) s += (yr[c] = std::exp(xr[c] - m));
      for (int64_t c = 0; c < cols; ++c) yr[c] /= s;
    }
  });
}

void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  check("softmax_backward", y, gy);
  check("softmax_backward", y, gx);
  int64_t cols = y.size(-1), rows = cols ? y.numel() / cols : 0;
  if (y.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::softmax_backward_f32(y.f32(), gy.f32(), gx.f32(), rows, cols);
#endif
  }
  FN_DISPATCH_FLOAT(y.dtype(), T, {
    for (int64_t r = 0; r < rows; ++r) {
      const T* yr = y.data<T>() + r * cols;
      const T* gr = gy.data<T>() + r * cols;
      T* o = gx.data<T>() + r * cols;
      T dot = 0;
      for (int64_t c = 0; c < cols; ++c) dot += gr[c] * yr[c];
      for (int64_t c = 0; c < cols; ++c) o[c] = yr[c] * (gr[c] - dot);
    }
  });
}

}  // namespace fn::kernels
