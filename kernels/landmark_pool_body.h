// Per-element bodies of landmark pooling, run by the CPU loop and by the CUDA grid alike, so the CPU tests
// exercise the coordinate transform, the window clipping and the argmax scan that the GPU runs.
//
// Conventions (docs/kernels/landmark_pool.md):
//   centre      c = floor(x / S + 0.5): round half up, so 3.5 cells -> 4 and -0.5 -> 0.
//   window      [c - r, c + r] in each axis, clipped to [0, H-1] x [0, W-1].
//   unusable    a slot whose visibility is <= 0.5, whose coordinate is not finite, or whose clipped window is
//               empty (landmark more than r cells outside the map) is treated as invisible.
//   invisible   mode Corner: the window [0, min(2r, H-1)] x [0, min(2r, W-1)] (top-left corner);
//               mode Zero: output 0 and argmax -1 (no gradient).
//   argmax      flat index h*W + w inside the (n, c) plane; the scan is row-major with a strict '>', so the
//               first maximum in scan order wins a tie (the same on CPU and GPU).
#pragma once
#include <cstdint>

#include "core/hd.h"

namespace fn::kernels {

enum class LandmarkPoolMode : int { Corner = 0, Zero = 1 };

// A window of cells, inclusive bounds; empty when h0 > h1 or w0 > w1.
struct PoolWindow {
  int h0, h1, w0, w1;
  FN_HD bool empty() const { return h0 > h1 || w0 > w1; }
};

// The coordinate transform: input pixels -> feature cell, round half up. Coordinates are clamped to
// +-2^20 cells before the conversion to int so that a wild prediction cannot overflow; a NaN maps to a
// far-away cell (and so to an empty window).
template <class T>
FN_HD int landmark_cell(T coord_pixels, int stride) {
  T c = coord_pixels / T(stride) + T(0.5);
  const T lim = T(1 << 20);
  if (!(c > -lim)) c = -lim;  // also catches NaN
  if (c > lim) c = lim;
  T f = T(int(c));       // truncation toward zero ...
  if (f > c) f -= T(1);  // ... corrected to floor for negative values
  return int(f);
}

FN_HD int clip_lo(int v) { return v < 0 ? 0 : v; }
FN_HD int clip_hi(int v, int n) { return v > n - 1 ? n - 1 : v; }

// The window centred on a landmark, clipped to the H x W map.
template <class T>
FN_HD PoolWindow landmark_window(T x, T y, int stride, int radius, int H, int W) {
  int cx = landmark_cell(x, stride), cy = landmark_cell(y, stride);
  return PoolWindow{clip_lo(cy - radius), clip_hi(cy + radius, H), clip_lo(cx - radius), clip_hi(cx + radius, W)};
}

// The fixed window that stands in for an invisible slot in mode Corner.
FN_HD PoolWindow corner_window(int radius, int H, int W) {
  return PoolWindow{0, clip_hi(2 * radius, H), 0, clip_hi(2 * radius, W)};
}

// The window a slot pools from, after the visibility rule; returns false when the slot outputs zero.
template <class T>
FN_HD bool slot_window(T x, T y, T visibility, int stride, int radius, int H, int W, LandmarkPoolMode mode,
                       PoolWindow& win) {
  bool usable = visibility > T(0.5) && x == x && y == y;  // x == x is false for NaN
  if (usable) {
    win = landmark_window(x, y, stride, radius, H, W);
    usable = !win.empty();
  }
  if (usable) return true;
  if (mode == LandmarkPoolMode::Zero) return false;
  win = corner_window(radius, H, W);
  return true;
}

// Max over the window of one (n, c) plane; writes the value and the flat argmax.
template <class T>
FN_HD void window_max(const T* plane, int W, const PoolWindow& win, T& value, int32_t& argmax) {
  T best = plane[win.h0 * W + win.w0];
  int32_t arg = win.h0 * W + win.w0;
  for (int h = win.h0; h <= win.h1; ++h)
    for (int w = win.w0; w <= win.w1; ++w) {
      T v = plane[h * W + w];
      if (v > best) {
        best = v;
        arg = h * W + w;
      }
    }
  value = best;
  argmax = arg;
}

// Forward of one output element out[n, s*C + c] (index i = (n*L + s)*C + c), the body of the CPU loop and
// of the naive CUDA kernel.
template <class T>
FN_HD void landmark_pool_element(int64_t i, const T* feat, const T* landmarks, const T* visibility, int C, int H, int W,
                                 int L, int stride, int radius, LandmarkPoolMode mode, T* out, int32_t* argmax) {
  int c = int(i % C);
  int64_t ns = i / C;  // n*L + s
  int64_t n = ns / L;
  PoolWindow win;
  if (!slot_window(landmarks[2 * ns], landmarks[2 * ns + 1], visibility[ns], stride, radius, H, W, mode, win)) {
    out[i] = T(0);
    argmax[i] = -1;
    return;
  }
  window_max(feat + (n * C + c) * int64_t(H) * W, W, win, out[i], argmax[i]);
}

// Backward as a gather: the gradient of one input cell is the sum, in slot order, of the output gradients
// whose argmax is that cell. `argmax` and `grad_out` point at slot 0 of the cell's (n, c) and advance by
// `step` per slot (C in the (N, L*C) layout, 1 for a copy in shared memory). The fixed order makes the
// result bitwise reproducible.
template <class T>
FN_HD T landmark_pool_gather(int32_t cell, int L, const int32_t* argmax, const T* grad_out, int64_t step) {
  T sum = T(0);
  for (int s = 0; s < L; ++s)
    if (argmax[s * step] == cell) sum += grad_out[s * step];
  return sum;
}

// Backward as a scatter, one (n, c) plane: adds the plane's L output gradients into their argmax cells of
// `gf` (the gradient planes, N*C of `plane` cells), in slot order. Over zeros this equals the gather bitwise;
// over another consumer's gradient it is the sparse accumulation (a plane has one writer: no atomics).
template <class T>
FN_HD void landmark_pool_scatter_plane(int64_t nc, int C, int L, int64_t plane, const int32_t* argmax,
                                       const T* grad_out, T* gf) {
  const int64_t first = (nc / C) * L * C + nc % C;  // output (n, slot 0, c)
  T* x = gf + nc * plane;
  for (int s = 0; s < L; ++s) {
    const int32_t a = argmax[first + int64_t(s) * C];
    if (a >= 0) x[a] += grad_out[first + int64_t(s) * C];
  }
}

}  // namespace fn::kernels
