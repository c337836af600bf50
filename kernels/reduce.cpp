// CPU reference and dispatch of the reductions.
#include "kernels/reduce.h"

#include "kernels/launch.h"

namespace fn::kernels {

void sum_all(const Tensor& x, Tensor& out) {
  FN_CHECK(out.numel() == 1 && out.dtype() == x.dtype(), "sum_all: output must be one ", dtype_name(x.dtype()));
  check_same_device("sum_all", x, out);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    check_float32_on_cuda("sum_all", x);
    return cuda::sum_all_f32(x.f32(), x.numel(), out.f32());
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    // Eight interleaved double partial sums, added in a fixed order at the end: the compiler can vectorise
    // it (one running sum cannot be reordered), and the result still repeats bitwise.
    const T* p = x.data<T>();
    const int64_t n = x.numel();
    double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) lane[k] += double(p[i + k]);
    double s = 0;
    for (; i < n; ++i) s += double(p[i]);
    s += ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    out.data<T>()[0] = T(s);
  });
}

void broadcast_scalar(const Tensor& s, double alpha, Tensor& out) {
  FN_CHECK(s.numel() == 1 && s.dtype() == out.dtype(), "broadcast_scalar: one-element source expected, got ",
           s.describe());
  check_same_device("broadcast_scalar", s, out);
  if (s.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::broadcast_scalar_f32(s.f32(), float(alpha), out.f32(), out.numel());
#endif
  }
  FN_DISPATCH_FLOAT(s.dtype(), T, {
    T v = T(alpha * double(s.data<T>()[0]));
    T* o = out.data<T>();
    cpu_for(out.numel(), [&](int64_t i) { o[i] = v; });
  });
}

}  // namespace fn::kernels
