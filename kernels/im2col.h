// im2col / col2im: the lowering that turns a convolution into one matrix product per image.
//   col[(c*R + r)*S + s, p*Q + q] = x[c, p*stride - pad + r, q*stride - pad + s]   (0 outside the image)
// so that, per image n, y_n (K, P*Q) = W (K, C*R*S) * col (C*R*S, P*Q). col2im is its adjoint: every col
// entry is added back into the input pixel it was read from (the data gradient of the convolution).
// Layouts: x, y NCHW; W (K, C, R, S) viewed as (K, C*R*S); col row-major (C*R*S, P*Q), one image at a time.
#pragma once
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

// The shape of one convolution: input (N,C,H,W), filters (K,C,R,S), output (N,K,P,Q).
struct ConvGeom {
  int64_t N, C, H, W, K, R, S, stride, pad, P, Q;
  FN_HD int64_t crs() const { return C * R * S; }
  FN_HD int64_t pq() const { return P * Q; }
  FN_HD int64_t chw() const { return C * H * W; }
  double flops() const { return 2.0 * double(N) * double(K) * double(crs()) * double(pq()); }  // multiply + add
  // A 1x1, stride 1, unpadded convolution reads x directly as its col matrix.
  bool is_pointwise() const { return R == 1 && S == 1 && stride == 1 && pad == 0; }
};
// Checks x (N,C,H,W) and w (K,C,R,S) and derives P = (H + 2 pad - R) / stride + 1 (Q likewise).
ConvGeom conv_geom(const Shape& x, const Shape& w, int stride, int pad);

// ---- per-element bodies, shared by the CUDA kernels and the CPU tests of their indexing
// Value of col[row, j] for one image x (C,H,W).
template <class T>
FN_HD T im2col_value(const T* x, const ConvGeom& g, int64_t row, int64_t j) {
  int64_t s = row % g.S, r = (row / g.S) % g.R, c = row / (g.S * g.R);
  int64_t q = j % g.Q, p = j / g.Q;
  int64_t h = p * g.stride - g.pad + r, w = q * g.stride - g.pad + s;
  return (h >= 0 && h < g.H && w >= 0 && w < g.W) ? x[(c * g.H + h) * g.W + w] : T(0);
}
// Value of col2im(col)[c, h, w] for one image: the sum of the col entries that im2col read from (c, h, w),
// gathered rather than scattered so that each pixel is written once, in a fixed order.
template <class T>
FN_HD T col2im_value(const T* col, const ConvGeom& g, int64_t c, int64_t h, int64_t w) {
  T sum = T(0);
  for (int64_t r = 0; r < g.R; ++r) {
    int64_t ph = h + g.pad - r;  // = p * stride when pixel row h is tap r of output row p
    if (ph < 0 || ph % g.stride != 0 || ph / g.stride >= g.P) continue;
    int64_t p = ph / g.stride;
    for (int64_t s = 0; s < g.S; ++s) {
      int64_t qw = w + g.pad - s;
      if (qw < 0 || qw % g.stride != 0 || qw / g.stride >= g.Q) continue;
      sum += col[((c * g.R + r) * g.S + s) * g.pq() + p * g.Q + qw / g.stride];
    }
  }
  return sum;
}

// ---- CPU (row at a time: no per-element index arithmetic, no zero-fill of the whole buffer)
// Rows of channels [c0, c1) of col for one image x (C,H,W); col has g.crs() rows of g.pq().
template <class T> void im2col_cpu(const T* x, const ConvGeom& g, T* col, int64_t c0, int64_t c1);
// Channels [c0, c1) of one image gx (C,H,W) = col2im(col); overwrites those channels.
template <class T> void col2im_cpu(const T* col, const ConvGeom& g, T* gx, int64_t c0, int64_t c1);

#ifdef FN_WITH_CUDA
namespace cuda {
// `images` consecutive images starting at x (each C*H*W) into consecutive col blocks (each crs*pq).
void im2col_f32(const float* x, const ConvGeom& g, int64_t images, float* col);
void col2im_f32(const float* col, const ConvGeom& g, int64_t images, float* gx);
}  // namespace cuda
#endif

}  // namespace fn::kernels
