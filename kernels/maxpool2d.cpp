// Max pooling: the CPU reference and device dispatch (CUDA side in maxpool2d.cu).
#include "kernels/maxpool2d.h"

#include <cstring>

namespace fn::kernels {

PoolGeom pool_geom(const Shape& x, int kernel, int stride, int pad) {
  FN_CHECK(x.size() == 4, "max_pool2d: x (N,C,H,W) expected, got ", shape_str(x));
  FN_CHECK(kernel >= 1 && stride >= 1 && pad >= 0 && 2 * pad <= kernel, "max_pool2d: kernel ", kernel, " stride ",
           stride, " pad ", pad, " (need pad <= kernel / 2)");
  PoolGeom g{x[0], x[1], x[2], x[3], kernel, stride, pad, 0, 0};
  FN_CHECK(g.H + 2 * pad >= kernel && g.W + 2 * pad >= kernel, "max_pool2d: window ", kernel,
           " larger than the padded input ", shape_str(x));
  g.P = (g.H + 2 * pad - kernel) / stride + 1;
  g.Q = (g.W + 2 * pad - kernel) / stride + 1;
  return g;
}

namespace {
void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  check_same_device(op, a, b);
  FN_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", a.describe(), ", ", b.describe());
}
}  // namespace

void max_pool2d_forward(const Tensor& x, Tensor& y, int kernel, int stride, int pad) {
  PoolGeom g = pool_geom(x.shape(), kernel, stride, pad);
  FN_CHECK(y.shape() == Shape({g.N, g.C, g.P, g.Q}), "max_pool2d_forward: output ", y.describe(), " should be ",
           shape_str({g.N, g.C, g.P, g.Q}));
  check_pair("max_pool2d_forward", x, y);
  check_float32_on_cuda("max_pool2d_forward", x);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::max_pool2d_forward_f32(x.f32(), y.f32(), g);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t plane = 0; plane < g.N * g.C; ++plane)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          int64_t at;
          py[(plane * g.P + p) * g.Q + q] = max_pool_window(px + plane * g.H * g.W, g, p, q, &at);
        }
  });
}

void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, int kernel, int stride,
                         int pad) {
  PoolGeom g = pool_geom(x.shape(), kernel, stride, pad);
  Shape ys{g.N, g.C, g.P, g.Q};
  FN_CHECK(y.shape() == ys && gy.shape() == ys && gx.shape() == x.shape(), "max_pool2d_backward: shapes ",
           x.describe(), ", ", y.describe(), ", ", gy.describe(), ", ", gx.describe());
  check_pair("max_pool2d_backward", x, y);
  check_pair("max_pool2d_backward", x, gy);
  check_pair("max_pool2d_backward", x, gx);
  check_float32_on_cuda("max_pool2d_backward", x);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::max_pool2d_backward_f32(x.f32(), y.f32(), gy.f32(), gx.f32(), g);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *px = x.data<T>(), *pgy = gy.data<T>();
    T* pgx = gx.data<T>();
    std::memset(pgx, 0, gx.nbytes());
    for (int64_t plane = 0; plane < g.N * g.C; ++plane)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          int64_t at;
          max_pool_window(px + plane * g.H * g.W, g, p, q, &at);
          pgx[plane * g.H * g.W + at] += pgy[(plane * g.P + p) * g.Q + q];
        }
  });
}

}  // namespace fn::kernels
