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
// VGG's pooling (kernel == stride, no padding) has disjoint windows: every input element belongs to at most
// one window, so the backward can write each window's gradients directly instead of zero-filling gx and
// scattering into it, and the forward needs no bounds tests. Same first-maximum rule as max_pool_window.
bool disjoint_windows(const PoolGeom& g) {
  return g.kernel == g.stride && g.pad == 0;
}

template <class T>
void forward_disjoint(const T* x, T* y, const PoolGeom& g) {
  const int64_t k = g.kernel;
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    T* yp = y + plane * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p)
      for (int64_t q = 0; q < g.Q; ++q) {
        const T* w = xp + p * k * g.W + q * k;
        T best = w[0];
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j)
            if (w[i * g.W + j] > best) best = w[i * g.W + j];
        yp[p * g.Q + q] = best;
      }
  }
}

template <class T>
void backward_disjoint(const T* x, const T* gy, T* gx, const PoolGeom& g) {
  const int64_t k = g.kernel;
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    T* gp = gx + plane * g.H * g.W;
    const T* gyp = gy + plane * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p)
      for (int64_t q = 0; q < g.Q; ++q) {
        const int64_t base = p * k * g.W + q * k;
        int64_t at = base;
        for (int64_t i = 0; i < k; ++i)
          for (int64_t j = 0; j < k; ++j) {
            const int64_t o = base + i * g.W + j;
            gp[o] = T(0);
            if (xp[o] > xp[at]) at = o;
          }
        gp[at] = gyp[p * g.Q + q];
      }
    // Rows and columns no window covers (odd H or W) get no gradient.
    for (int64_t h = 0; h < g.H; ++h) {
      const int64_t w0 = h < g.P * k ? g.Q * k : 0;
      for (int64_t w = w0; w < g.W; ++w) gp[h * g.W + w] = T(0);
    }
  }
}

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
    if (disjoint_windows(g)) return forward_disjoint(px, py, g);
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
    if (disjoint_windows(g)) return backward_disjoint(px, pgy, pgx, g);
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
