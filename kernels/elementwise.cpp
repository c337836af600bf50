// CPU reference and device dispatch of the elementwise ops (CUDA side in elementwise.cu).
#include "kernels/elementwise.h"

#include "kernels/elementwise_body.h"
#include "kernels/launch.h"

namespace fn::kernels {
namespace {
void check_binary(const char* op, const Tensor& a, const Tensor& b, const Tensor& y) {
  FN_CHECK(a.numel() == b.numel() && a.numel() == y.numel(), op, ": sizes differ: ", a.describe(), ", ",
           b.describe(), ", ", y.describe());
  FN_CHECK(a.dtype() == b.dtype() && a.dtype() == y.dtype(), op, ": dtypes differ");
  check_same_device(op, a, b);
  check_same_device(op, a, y);
  check_float32_on_cuda(op, a);
}
}  // namespace

void add(const Tensor& a, const Tensor& b, Tensor& y) {
  check_binary("add", a, b, y);
  if (a.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::binary_f32(cuda::Binary::Add, a.f32(), b.f32(), y.f32(), a.numel());
#endif
  }
  FN_DISPATCH_FLOAT(a.dtype(), T, {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    cpu_for(a.numel(), [&](int64_t i) { py[i] = pa[i] + pb[i]; });
  });
}

void mul(const Tensor& a, const Tensor& b, Tensor& y) {
  check_binary("mul", a, b, y);
  if (a.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::binary_f32(cuda::Binary::Mul, a.f32(), b.f32(), y.f32(), a.numel());
#endif
  }
  FN_DISPATCH_FLOAT(a.dtype(), T, {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    cpu_for(a.numel(), [&](int64_t i) { py[i] = pa[i] * pb[i]; });
  });
}

void scale(const Tensor& a, double alpha, Tensor& y) {
  check_binary("scale", a, a, y);
  if (a.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::scale_f32(a.f32(), float(alpha), y.f32(), a.numel());
#endif
  }
  FN_DISPATCH_FLOAT(a.dtype(), T, {
    const T* pa = a.data<T>();
    T* py = y.data<T>();
    cpu_for(a.numel(), [&](int64_t i) { py[i] = T(alpha) * pa[i]; });
  });
}

void relu_forward(const Tensor& x, Tensor& y) {
  check_binary("relu_forward", x, x, y);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::relu_forward_f32(x.f32(), y.f32(), x.numel());
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    cpu_for(x.numel(), [&](int64_t i) { py[i] = relu_fwd(px[i]); });
  });
}

void relu_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  check_binary("relu_backward", y, gy, gx);
  if (y.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::relu_backward_f32(y.f32(), gy.f32(), gx.f32(), y.numel());
#endif
  }
  FN_DISPATCH_FLOAT(y.dtype(), T, {
    const T *py = y.data<T>(), *pg = gy.data<T>();
    T* pgx = gx.data<T>();
    cpu_for(y.numel(), [&](int64_t i) { pgx[i] = relu_bwd(py[i], pg[i]); });
  });
}

void relu6_forward(const Tensor& x, Tensor& y) {
  check_binary("relu6_forward", x, x, y);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::relu6_forward_f32(x.f32(), y.f32(), x.numel());
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    cpu_for(x.numel(), [&](int64_t i) { py[i] = relu6_fwd(px[i]); });
  });
}

void relu6_backward(const Tensor& y, const Tensor& gy, Tensor& gx) {
  check_binary("relu6_backward", y, gy, gx);
  if (y.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::relu6_backward_f32(y.f32(), gy.f32(), gx.f32(), y.numel());
#endif
  }
  FN_DISPATCH_FLOAT(y.dtype(), T, {
    const T *py = y.data<T>(), *pg = gy.data<T>();
    T* pgx = gx.data<T>();
    cpu_for(y.numel(), [&](int64_t i) { pgx[i] = relu6_bwd(py[i], pg[i]); });
  });
}

void dropout_forward(const Tensor& x, float p, uint64_t seed, Tensor& y, int64_t offset) {
  check_binary("dropout_forward", x, x, y);
  FN_CHECK(p >= 0.f && p < 1.f, "dropout probability ", p, " not in [0, 1)");
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::dropout_f32(x.f32(), p, seed, y.f32(), x.numel(), offset);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    cpu_for(x.numel(), [&](int64_t i) { py[i] = dropout_apply(px[i], seed, offset + i, p); });
  });
}

// The backward of inverted dropout is the same mask and scale applied to the gradient.
void dropout_backward(const Tensor& gy, float p, uint64_t seed, Tensor& gx, int64_t offset) {
  dropout_forward(gy, p, seed, gx, offset);
}

}  // namespace fn::kernels
