// CPU im2col / col2im. One col row (c, r, s) at a time: for each output row p the in-bounds q range is
// computed once, so the inner loop is a plain copy (memcpy at stride 1) with zeros only at the borders.
#include "kernels/im2col.h"

#include <algorithm>
#include <cstring>

namespace fn::kernels {

ConvGeom conv_geom(const Shape& x, const Shape& w, int stride, int pad) {
  FN_CHECK(x.size() == 4 && w.size() == 4, "conv2d: x (N,C,H,W) and w (K,C,R,S) expected, got ", shape_str(x),
           " and ", shape_str(w));
  FN_CHECK(x[1] == w[1], "conv2d: input has ", x[1], " channels, filters expect ", w[1]);
  FN_CHECK(stride >= 1 && pad >= 0, "conv2d: stride ", stride, " pad ", pad);
  ConvGeom g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], stride, pad, 0, 0};
  FN_CHECK(g.H + 2 * pad >= g.R && g.W + 2 * pad >= g.S, "conv2d: filter ", g.R, "x", g.S, " larger than padded input ",
           g.H + 2 * pad, "x", g.W + 2 * pad);
  g.P = (g.H + 2 * pad - g.R) / stride + 1;
  g.Q = (g.W + 2 * pad - g.S) / stride + 1;
  return g;
}

namespace {
// Output columns q whose input column q*stride - pad + s lies inside [0, W): [lo, hi).
inline void q_range(const ConvGeom& g, int64_t s, int64_t& lo, int64_t& hi) {
  int64_t a = g.pad - s;  // q*stride >= a
  lo = a <= 0 ? 0 : (a + g.stride - 1) / g.stride;
  int64_t b = g.W - 1 + g.pad - s;  // q*stride <= b
  hi = b < 0 ? 0 : b / g.stride + 1;
  if (hi > g.Q) hi = g.Q;
  if (lo > hi) lo = hi;
}
}  // namespace

template <class T>
void im2col_cpu(const T* x, const ConvGeom& g, T* col, int64_t c0, int64_t c1) {
  // Stride 1 with Q == W (VGG's 3x3 pad 1): for a fixed (c, r, s) the in-bounds part of the col row is x
  // shifted by a constant, so one memcpy covers all output rows; the border columns it fills with the
  // neighbouring row's pixels are zeroed after. Otherwise one output row p at a time.
  const bool shifted = g.stride == 1 && g.Q == g.W;
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        T* dst = col + ((c * g.R + r) * g.S + s) * g.pq();
        int64_t lo, hi;
        q_range(g, s, lo, hi);
        const int64_t off = s - g.pad;  // column q reads row[q * stride + off]
        if (shifted) {
          const int64_t pf = std::max<int64_t>(0, g.pad - r), pl = std::min(g.P, g.H + g.pad - r);  // rows in x
          if (pf >= pl || lo >= hi) {
            std::memset(dst, 0, sizeof(T) * size_t(g.pq()));
            continue;
          }
          std::memset(dst, 0, sizeof(T) * size_t(pf * g.Q + lo));
          const T* src = x + (c * g.H + pf - g.pad + r) * g.W + off;  // src[i] is dst row pf's element i
          std::memcpy(dst + pf * g.Q + lo, src + lo, sizeof(T) * size_t((pl - 1 - pf) * g.Q + hi - lo));
          for (int64_t p = pf; p < pl; ++p) {
            T* row = dst + p * g.Q;
            for (int64_t q = 0; q < lo; ++q) row[q] = T(0);
            for (int64_t q = hi; q < g.Q; ++q) row[q] = T(0);
          }
          T* tail = dst + (pl - 1) * g.Q + hi;
          std::memset(tail, 0, sizeof(T) * size_t(dst + g.pq() - tail));
          continue;
        }
        for (int64_t p = 0; p < g.P; ++p, dst += g.Q) {
          int64_t h = p * g.stride - g.pad + r;
          if (h < 0 || h >= g.H) {
            std::memset(dst, 0, sizeof(T) * size_t(g.Q));
            continue;
          }
          const T* row = x + (c * g.H + h) * g.W;
          for (int64_t q = 0; q < lo; ++q) dst[q] = T(0);
          if (g.stride == 1) {
            if (hi > lo) std::memcpy(dst + lo, row + lo + off, sizeof(T) * size_t(hi - lo));
          } else {
            for (int64_t q = lo; q < hi; ++q) dst[q] = row[q * g.stride + off];
          }
          for (int64_t q = hi; q < g.Q; ++q) dst[q] = T(0);
        }
      }
}

template <class T>
void col2im_cpu(const T* col, const ConvGeom& g, T* gx, int64_t c0, int64_t c1) {
  std::memset(gx + c0 * g.H * g.W, 0, sizeof(T) * size_t((c1 - c0) * g.H * g.W));
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t s = 0; s < g.S; ++s) {
        const T* src = col + ((c * g.R + r) * g.S + s) * g.pq();
        int64_t lo, hi;
        q_range(g, s, lo, hi);
        for (int64_t p = 0; p < g.P; ++p, src += g.Q) {
          int64_t h = p * g.stride - g.pad + r;
          if (h < 0 || h >= g.H) continue;
          T* row = gx + (c * g.H + h) * g.W;
          const int64_t off = s - g.pad;
          for (int64_t q = lo; q < hi; ++q) row[q * g.stride + off] += src[q];
        }
      }
}

template void im2col_cpu<float>(const float*, const ConvGeom&, float*, int64_t, int64_t);
template void im2col_cpu<double>(const double*, const ConvGeom&, double*, int64_t, int64_t);
template void col2im_cpu<float>(const float*, const ConvGeom&, float*, int64_t, int64_t);
template void col2im_cpu<double>(const double*, const ConvGeom&, double*, int64_t, int64_t);

}  // namespace fn::kernels
