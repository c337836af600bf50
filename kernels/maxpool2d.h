// 2-D max pooling, NCHW: y[n,c,p,q] = max over the window cells (h, w) = (p*stride - pad + i, q*stride - pad + j),
// 0 <= i, j < kernel, that lie inside the image (padding never wins). P = (H + 2 pad - kernel) / stride + 1.
// Backward: each gy[n,c,p,q] goes to the window's argmax; gradients of overlapping windows add up.
// The argmax is the first maximum in row-major window order (ties: first max wins, on the CPU), as in
// PyTorch's CPU kernel; padding is never a candidate (PyTorch pads with -inf). One difference: a NaN always
// wins in PyTorch, here only when it is the window's first cell (cuDNN: CUDNN_NOT_PROPAGATE_NAN).
// CPU: the reference loops below (planes split over the cores), and vectorised paths (float32 and float64
// for 2x2 stride 2; float32 for 3x3 stride 2 pad 0 or 1, ResNet's) that give the reference's bits.
// CUDA: cuDNN pooling, CUDNN_POOLING_MAX_DETERMINISTIC. docs/kernels/maxpool2d.md.
#pragma once
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

struct PoolGeom {
  int64_t N, C, H, W, kernel, stride, pad, P, Q;
};
// Checks x (N,C,H,W) and the window (pad <= kernel / 2, so every window holds a real pixel).
PoolGeom pool_geom(const Shape& x, int kernel, int stride, int pad);

// The window of output (p, q) over one plane x (H, W): its maximum and where it is (h * W + w).
template <class T>
FN_HD T max_pool_window(const T* x, const PoolGeom& g, int64_t p, int64_t q, int64_t* where) {
  int64_t h0 = p * g.stride - g.pad, w0 = q * g.stride - g.pad;
  T best = T(0);
  int64_t at = -1;
  for (int64_t h = h0 < 0 ? 0 : h0; h < h0 + g.kernel && h < g.H; ++h)
    for (int64_t w = w0 < 0 ? 0 : w0; w < w0 + g.kernel && w < g.W; ++w) {
      T v = x[h * g.W + w];
      if (at < 0 || v > best) {  // strictly greater: the first maximum wins
        best = v;
        at = h * g.W + w;
      }
    }
  *where = at;
  return best;
}

// CPU versions, selectable by tests and benchmarks: V1Reference = max_pool_window per output (the backward
// zeroes gx and scatters), Default = the fast path where one applies, else the reference. CUDA: Default only.
enum class MaxPoolCpu { Default, V1Reference };

void max_pool2d_forward(const Tensor& x, Tensor& y, int kernel, int stride, int pad,
                        MaxPoolCpu version = MaxPoolCpu::Default);
// gx (N,C,H,W) overwritten. x and y are the forward's input and output (cuDNN and the CPU's fast paths use y
// to find each window's argmax).
void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, int kernel, int stride,
                         int pad, MaxPoolCpu version = MaxPoolCpu::Default);

#ifdef FN_WITH_CUDA
namespace cuda {
void max_pool2d_forward_f32(const float* x, float* y, const PoolGeom& g);
void max_pool2d_backward_f32(const float* x, const float* y, const float* gy, float* gx, const PoolGeom& g);
}  // namespace cuda
#endif

}  // namespace fn::kernels
