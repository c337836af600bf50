// CPU reference and dispatch of the reductions.
#include "kernels/reduce.h"

#include "kernels/launch.h"

namespace fn::kernels {

namespace {

// Eight interleaved double partial sums of f(x[i]), added in a fixed order at the end: the compiler can
// vectorise it (one running sum cannot be reordered), and the result still repeats bitwise.
template <typename T, typename F>
double sum_lanes(const T* p, int64_t n, F f) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += f(double(p[i + k]));
  double s = 0;
  for (; i < n; ++i) s += f(double(p[i]));
  return s + (((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7])));
}

// The two reductions differ only in the term.
void reduce_all(const char* what, const Tensor& x, Tensor& out, bool squares) {
  FN_CHECK(out.numel() == 1 && out.dtype() == x.dtype(), what, ": output must be one ", dtype_name(x.dtype()));
  check_same_device(what, x, out);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    check_float32_on_cuda(what, x);
    return (squares ? cuda::sum_squares_f32 : cuda::sum_all_f32)(x.f32(), x.numel(), out.f32());
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* p = x.data<T>();
    const double s = squares ? sum_lanes(p, x.numel(), [](double v) { return v * v; })
                             : sum_lanes(p, x.numel(), [](double v) { return v; });
    out.data<T>()[0] = T(s);
  });
}

}  // namespace

void sum_all(const Tensor& x, Tensor& out) { reduce_all("sum_all", x, out, false); }
void sum_squares(const Tensor& x, Tensor& out) { reduce_all("sum_squares", x, out, true); }

void sum_squares_each(const std::vector<Tensor>& xs, Tensor& out) {
  FN_CHECK(out.ndim() == 1 && out.numel() == int64_t(xs.size()), "sum_squares_each: output must be 1-D, one element per tensor (",
           xs.size(), "), got ", out.describe());
  for (const Tensor& x : xs) {
    FN_CHECK(x.dtype() == out.dtype(), "sum_squares_each: every tensor must be ", dtype_name(out.dtype()), ", got ",
             x.describe());
    check_same_device("sum_squares_each", x, out);
  }
  if (out.is_cuda()) {
#ifdef FN_WITH_CUDA
    check_float32_on_cuda("sum_squares_each", out);
    std::vector<const float*> ptrs;
    std::vector<int64_t> sizes;
    for (const Tensor& x : xs) {
      ptrs.push_back(x.f32());
      sizes.push_back(x.numel());
    }
    return cuda::sum_squares_each_f32(ptrs.data(), sizes.data(), int(xs.size()), out.f32());
#endif
  }
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor s = out.slice0(int64_t(i), int64_t(i) + 1);
    reduce_all("sum_squares_each", xs[i], s, true);
  }
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
