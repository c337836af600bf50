// CPU reference and device dispatch of the per-channel bias (CUDA side in bias.cu).
#include "kernels/bias.h"

#include "kernels/launch.h"

namespace fn::kernels {
namespace {
struct Extents {
  int64_t outer, channels, inner;
};
Extents extents_of(const char* op, const Tensor& y, const Tensor& b) {
  FN_CHECK(y.ndim() >= 2, op, ": output needs a channel dimension, got ", y.describe());
  FN_CHECK(b.ndim() == 1 && b.size(0) == y.size(1), op, ": bias ", b.describe(), " does not match channels of ",
           y.describe());
  FN_CHECK(y.dtype() == b.dtype(), op, ": dtypes differ");
  check_same_device(op, y, b);
  check_float32_on_cuda(op, y);
  int64_t channels = y.size(1), outer = y.size(0);
  int64_t inner = channels * outer == 0 ? 0 : y.numel() / (channels * outer);
  return {outer, channels, inner};
}
// Sum of a row in 8 interleaved partial sums: the compiler vectorises this (a single running sum it may
// not reorder), and the order is fixed, so results still repeat bitwise.
template <class T>
T row_sum(const T* row, int64_t n) {
  T part[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += row[i + j];
  T s = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; i < n; ++i) s += row[i];
  return s;
}
}  // namespace

void bias_add(Tensor& y, const Tensor& b, bool relu) {
  Extents e = extents_of("bias_add", y, b);
  if (y.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::bias_add_f32(y.f32(), b.f32(), e.outer, e.channels, e.inner, relu);
#endif
  }
  FN_DISPATCH_FLOAT(y.dtype(), T, {
    T* py = y.data<T>();
    const T* pb = b.data<T>();
    for (int64_t n = 0; n < e.outer; ++n)
      for (int64_t k = 0; k < e.channels; ++k) {
        T* row = py + (n * e.channels + k) * e.inner;
        const T bk = pb[k];
        if (relu)
          for (int64_t i = 0; i < e.inner; ++i) row[i] = row[i] + bk > T(0) ? row[i] + bk : T(0);
        else
          for (int64_t i = 0; i < e.inner; ++i) row[i] += bk;
      }
  });
}

void bias_grad(const Tensor& gy, Tensor& gb) {
  Extents e = extents_of("bias_grad", gy, gb);
  if (gy.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::bias_grad_f32(gy.f32(), gb.f32(), e.outer, e.channels, e.inner);
#endif
  }
  FN_DISPATCH_FLOAT(gy.dtype(), T, {
    const T* pg = gy.data<T>();
    T* pb = gb.data<T>();
    for (int64_t k = 0; k < e.channels; ++k) pb[k] = T(0);
    for (int64_t n = 0; n < e.outer; ++n)
      for (int64_t k = 0; k < e.channels; ++k) {
        pb[k] += row_sum(pg + (n * e.channels + k) * e.inner, e.inner);
      }
  });
}

}  // namespace fn::kernels
