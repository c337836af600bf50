// Max pooling: the CPU reference, the CPU fast paths (2x2 / 3x3 disjoint windows; 3x3 stride 2, ResNet's)
// and device dispatch (CUDA side in maxpool2d.cu). Math and rules: maxpool2d.h, docs/kernels/maxpool2d.md.
#include "kernels/maxpool2d.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/gemm.h"
#include "kernels/launch.h"

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

// The CPU threads a pooling pass uses: all of them (the GEMM's count) once the input is large enough
// that waking a worker (core/thread_pool.h) is small beside the pass. At ResNet-50's stem pool
// (25.7 M values) the second core gives 1.3-1.4x when it is free (docs/kernels/maxpool2d.md).
int pool_threads(const PoolGeom& g) {
  return g.N * g.C * g.H * g.W >= (int64_t(1) << 17) ? std::max(1, blas_threads()) : 1;
}

// 2x2 windows (all of VGG's pools). The forward is the max of the four; the backward gives gy to the first
// window element, in the order (0,0), (0,1), (1,0), (1,1), that equals the forward's maximum y: the same
// element the strict first-maximum loop picks. Eight windows at a time with AVX2 (the data is random, so a
// branchy scalar loop mispredicts half its branches), a scalar loop for the rest of a row.
template <class T>
inline void window_2x2_backward(const T* r0, const T* r1, T m, T v, T* g0, T* g1) {
  const bool ea = r0[0] == m, eb = !ea && r0[1] == m, ec = !ea && !eb && r1[0] == m;
  const bool ed = !ea && !eb && !ec;
  g0[0] = ea ? v : T(0);
  g0[1] = eb ? v : T(0);
  g1[0] = ec ? v : T(0);
  g1[1] = ed ? v : T(0);
}

template <class T>
inline T window_2x2_max(const T* r0, const T* r1) {
  T m = r0[0];
  if (r0[1] > m) m = r0[1];
  if (r1[0] > m) m = r1[0];
  if (r1[1] > m) m = r1[1];
  return m;
}

#ifdef __AVX2__
// y[0..8) = max of the eight 2x2 windows whose rows start at r0 and r1 (16 columns).
inline void forward_2x2_x8(const float* r0, const float* r1, float* y) {
  __m256 m0 = _mm256_max_ps(_mm256_loadu_ps(r0), _mm256_loadu_ps(r1));          // columns 0..7
  __m256 m1 = _mm256_max_ps(_mm256_loadu_ps(r0 + 8), _mm256_loadu_ps(r1 + 8));  // columns 8..15
  __m256 ev = _mm256_shuffle_ps(m0, m1, _MM_SHUFFLE(2, 0, 2, 0));  // per 128-bit lane: windows 0 1 4 5 | 2 3 6 7
  __m256 od = _mm256_shuffle_ps(m0, m1, _MM_SHUFFLE(3, 1, 3, 1));
  __m256 w = _mm256_max_ps(ev, od);
  _mm256_storeu_ps(y, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(w), _MM_SHUFFLE(3, 1, 2, 0))));
}

// The gradients of eight 2x2 windows: m, v their maxima and output gradients.
inline void backward_2x2_x8(const float* r0, const float* r1, const float* m, const float* v, float* g0, float* g1) {
  const __m256i lo = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3), hi = _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7);
  const __m256 odd = _mm256_castsi256_ps(_mm256_setr_epi32(0, -1, 0, -1, 0, -1, 0, -1));
  const __m256 mv = _mm256_loadu_ps(m), vv = _mm256_loadu_ps(v);
  for (int half = 0; half < 2; ++half) {  // columns 0..7 (windows 0..3), then 8..15 (windows 4..7)
    const __m256i idx = half ? hi : lo;
    const __m256 mu = _mm256_permutevar8x32_ps(mv, idx), vu = _mm256_permutevar8x32_ps(vv, idx);
    const __m256 e0 = _mm256_cmp_ps(_mm256_loadu_ps(r0 + 8 * half), mu, _CMP_EQ_OQ);  // a, b per pair
    const __m256 e1 = _mm256_cmp_ps(_mm256_loadu_ps(r1 + 8 * half), mu, _CMP_EQ_OQ);  // c, d per pair
    const __m256 p0 = _mm256_permute_ps(e0, _MM_SHUFFLE(2, 3, 0, 1));  // each lane's pair partner
    const __m256 p1 = _mm256_permute_ps(e1, _MM_SHUFFLE(2, 3, 0, 1));
    const __m256 first0 = _mm256_andnot_ps(_mm256_and_ps(p0, odd), e0);  // b counts only when a is not the max
    const __m256 any0 = _mm256_or_ps(e0, p0);
    const __m256 first1 = _mm256_andnot_ps(any0, _mm256_andnot_ps(_mm256_and_ps(p1, odd), e1));
    _mm256_storeu_ps(g0 + 8 * half, _mm256_and_ps(first0, vu));
    _mm256_storeu_ps(g1 + 8 * half, _mm256_and_ps(first1, vu));
  }
}
#endif

// ResNet's pool: kernel 3, stride 2, pad 0 or 1, float32. Window (p, q) has its top-left cell at
// (2p - pad, 2q - pad). Interior windows (all nine cells real) run eight at a time, the edge windows (pad 1:
// the first row and column; odd H or W: the last) run max_pool_window itself.
// Forward: the max folded in row-major window order as m = max_ps(v, m), which is `v > m ? v : m`: the
// reference's strict first-maximum loop, NaN rule included (a NaN first cell stays, a later one loses), so
// the bits are the reference's. Three streams per input row: a = cells 2j, b = 2j + 1, c = 2j + 2 of the
// eight windows, separated by shuffle_ps from two pairs of loads; the lanes come out permuted (windows
// 0 1 4 5 | 2 3 6 7) and one permute4x64 restores the order of the result.
// Backward: each window's argmax is its first cell (row-major) equal to the forward's y, the cell the strict
// loop picks (an earlier cell equal to the max, +0 against -0 included, would have stopped later updates);
// no cell equals a NaN y, and then the first cell (the NaN) is the argmax, as in the reference. The eight
// argmax offsets come from nine compares and blends, last cell to first; then a scalar scatter
// gx[at] += gy in output order (row-major p, q): the reference's order of additions, so gx is bitwise its.
// Each plane is zeroed just before its scatter (it stays in the L2 cache).
#ifdef __AVX2__
bool resnet_pool(const PoolGeom& g) {
  return g.kernel == 3 && g.stride == 2 && g.pad <= 1;
}

// [lo, hi): the outputs along one axis of size n whose 3 cells 2i - pad .. 2i - pad + 2 are all inside.
struct Span {
  int64_t lo, hi;
};
Span interior(int64_t n, int64_t pad, int64_t count) {
  const int64_t hi = n - 3 + pad >= 0 ? std::min(count, (n - 3 + pad) / 2 + 1) : 0;
  return {pad, std::max(pad, hi)};
}

// Cells 2j, 2j + 1, 2j + 2 (j = 0..7) of the row from r, lanes in the order 0 1 4 5 | 2 3 6 7. The last
// load leaves out r[17], which no window needs (it may lie past the end of x).
inline void row_streams_x8(const float* r, __m256& a, __m256& b, __m256& c) {
  const __m256i first7 = _mm256_setr_epi32(-1, -1, -1, -1, -1, -1, -1, 0);
  const __m256 l0 = _mm256_loadu_ps(r), l1 = _mm256_loadu_ps(r + 8);
  const __m256 l2 = _mm256_loadu_ps(r + 2), l3 = _mm256_maskload_ps(r + 10, first7);
  a = _mm256_shuffle_ps(l0, l1, _MM_SHUFFLE(2, 0, 2, 0));
  b = _mm256_shuffle_ps(l0, l1, _MM_SHUFFLE(3, 1, 3, 1));
  c = _mm256_shuffle_ps(l2, l3, _MM_SHUFFLE(2, 0, 2, 0));
}

// Swaps the middle 64-bit quarters: turns the lane order 0 1 4 5 | 2 3 6 7 into 0..7 and back.
inline __m256 swap_mid(__m256 v) {
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(v), _MM_SHUFFLE(3, 1, 2, 0)));
}

// y[0..8) = the maxima of eight interior 3x3 windows whose top-left cells are x, x + 2, ..., x + 14.
inline void forward_3x3s2_x8(const float* x, int64_t W, float* y) {
  __m256 a, b, c, m;
  row_streams_x8(x, a, b, c);
  m = _mm256_max_ps(c, _mm256_max_ps(b, a));
  for (int r = 1; r < 3; ++r) {
    row_streams_x8(x + r * W, a, b, c);
    m = _mm256_max_ps(c, _mm256_max_ps(b, _mm256_max_ps(a, m)));
  }
  _mm256_storeu_ps(y, swap_mid(m));
}

// at[0..8) = the argmax offsets (row * W + column, from the top-left cell) of the same eight windows, given
// their maxima y.
inline void argmax_3x3s2_x8(const float* x, int64_t W, const float* y, int32_t* at) {
  const __m256 m = swap_mid(_mm256_loadu_ps(y));
  __m256i k = _mm256_setzero_si256();  // no cell equal (y NaN): the first cell
  auto take = [&](__m256 v, int64_t off) {
    const __m256i eq = _mm256_castps_si256(_mm256_cmp_ps(v, m, _CMP_EQ_OQ));
    k = _mm256_blendv_epi8(k, _mm256_set1_epi32(int32_t(off)), eq);
  };
  for (int r = 2; r >= 0; --r) {  // last cell to first: the first equal cell is the one left
    __m256 a, b, c;
    row_streams_x8(x + r * W, a, b, c);
    take(c, r * W + 2), take(b, r * W + 1), take(a, r * W);
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(at), _mm256_castps_si256(swap_mid(_mm256_castsi256_ps(k))));
}

void forward_3x3s2(const float* x, float* y, const PoolGeom& g, int64_t plane0, int64_t plane1) {
  const Span rows = interior(g.H, g.pad, g.P), cols = interior(g.W, g.pad, g.Q);
  for (int64_t plane = plane0; plane < plane1; ++plane) {
    const float* xp = x + plane * g.H * g.W;
    float* yp = y + plane * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p) {
      float* out = yp + p * g.Q;
      int64_t at;
      auto edge = [&](int64_t q) { out[q] = max_pool_window(xp, g, p, q, &at); };
      if (p < rows.lo || p >= rows.hi || cols.hi - cols.lo < 8) {
        for (int64_t q = 0; q < g.Q; ++q) edge(q);
        continue;
      }
      const float* top = xp + (2 * p - g.pad) * g.W - g.pad;  // window (p, 0)'s top-left cell
      for (int64_t q = 0; q < cols.lo; ++q) edge(q);
      // Blocks of eight; the last block ends at cols.hi and may overlap the one before (same values).
      for (int64_t q = cols.lo; q < cols.hi; q += 8) {
        const int64_t q0 = std::min(q, cols.hi - 8);
        forward_3x3s2_x8(top + 2 * q0, g.W, out + q0);
      }
      for (int64_t q = cols.hi; q < g.Q; ++q) edge(q);
    }
  }
}

void backward_3x3s2(const float* x, const float* y, const float* gy, float* gx, const PoolGeom& g, int64_t plane0,
                    int64_t plane1) {
  const Span rows = interior(g.H, g.pad, g.P), cols = interior(g.W, g.pad, g.Q);
  const int64_t hw = g.H * g.W;
  for (int64_t plane = plane0; plane < plane1; ++plane) {
    const float* xp = x + plane * hw;
    float* gp = gx + plane * hw;
    std::memset(gp, 0, size_t(hw) * sizeof(float));
    for (int64_t p = 0; p < g.P; ++p) {
      const float* m = y + (plane * g.P + p) * g.Q;
      const float* v = gy + (plane * g.P + p) * g.Q;
      auto edge = [&](int64_t q) {
        int64_t at;
        max_pool_window(xp, g, p, q, &at);
        gp[at] += v[q];
      };
      if (p < rows.lo || p >= rows.hi || cols.hi - cols.lo < 8) {
        for (int64_t q = 0; q < g.Q; ++q) edge(q);
        continue;
      }
      const int64_t top = (2 * p - g.pad) * g.W - g.pad;  // window (p, 0)'s top-left cell
      for (int64_t q = 0; q < cols.lo; ++q) edge(q);
      alignas(32) int32_t at[8];
      for (int64_t q = cols.lo; q < cols.hi; q += 8) {
        const int64_t q0 = std::min(q, cols.hi - 8);  // the last block may overlap: scatter only its new windows
        argmax_3x3s2_x8(xp + top + 2 * q0, g.W, m + q0, at);
        for (int64_t j = q - q0; j < 8; ++j) gp[top + 2 * (q0 + j) + at[j]] += v[q0 + j];
      }
      for (int64_t q = cols.hi; q < g.Q; ++q) edge(q);
    }
  }
}
#endif

// The ResNet pool's fast path where it applies (float32, AVX2), planes split over the cores; false otherwise.
template <class T>
bool resnet_pool_forward([[maybe_unused]] const T* x, [[maybe_unused]] T* y, [[maybe_unused]] const PoolGeom& g) {
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>)
    if (resnet_pool(g)) {
      cpu_parallel_ranges(g.N * g.C, pool_threads(g), [&](int64_t a, int64_t b) { forward_3x3s2(x, y, g, a, b); });
      return true;
    }
#endif
  return false;
}

template <class T>
bool resnet_pool_backward([[maybe_unused]] const T* x, [[maybe_unused]] const T* y, [[maybe_unused]] const T* gy,
                          [[maybe_unused]] T* gx, [[maybe_unused]] const PoolGeom& g) {
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>)
    if (resnet_pool(g)) {
      cpu_parallel_ranges(g.N * g.C, pool_threads(g),
                          [&](int64_t a, int64_t b) { backward_3x3s2(x, y, gy, gx, g, a, b); });
      return true;
    }
#endif
  return false;
}

template <class T>
void forward_2x2(const T* x, T* y, const PoolGeom& g, int64_t plane0, int64_t plane1) {
  for (int64_t plane = plane0; plane < plane1; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    T* yp = y + plane * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p) {
      const T* r0 = xp + 2 * p * g.W;
      const T* r1 = r0 + g.W;
      T* out = yp + p * g.Q;
      int64_t q = 0;
#ifdef __AVX2__
      if constexpr (std::is_same_v<T, float>)
        for (; q + 8 <= g.Q; q += 8) forward_2x2_x8(r0 + 2 * q, r1 + 2 * q, out + q);
#endif
      for (; q < g.Q; ++q) out[q] = window_2x2_max(r0 + 2 * q, r1 + 2 * q);
    }
  }
}

template <class T>
void backward_2x2(const T* x, const T* y, const T* gy, T* gx, const PoolGeom& g, int64_t plane0, int64_t plane1) {
  for (int64_t plane = plane0; plane < plane1; ++plane) {
    const T* xp = x + plane * g.H * g.W;
    T* gp = gx + plane * g.H * g.W;
    const T* yp = y + plane * g.P * g.Q;
    const T* gyp = gy + plane * g.P * g.Q;
    for (int64_t p = 0; p < g.P; ++p) {
      const T* r0 = xp + 2 * p * g.W;
      const T* r1 = r0 + g.W;
      T* g0 = gp + 2 * p * g.W;
      T* g1 = g0 + g.W;
      const T *m = yp + p * g.Q, *v = gyp + p * g.Q;
      int64_t q = 0;
#ifdef __AVX2__
      if constexpr (std::is_same_v<T, float>)
        for (; q + 8 <= g.Q; q += 8) backward_2x2_x8(r0 + 2 * q, r1 + 2 * q, m + q, v + q, g0 + 2 * q, g1 + 2 * q);
#endif
      for (; q < g.Q; ++q) window_2x2_backward(r0 + 2 * q, r1 + 2 * q, m[q], v[q], g0 + 2 * q, g1 + 2 * q);
    }
  }
}

// Rows and columns no window covers (odd H or W) get no gradient.
template <class T>
void zero_uncovered(T* gx, const PoolGeom& g) {
  if (g.H == g.P * g.kernel && g.W == g.Q * g.kernel) return;
  for (int64_t plane = 0; plane < g.N * g.C; ++plane) {
    T* gp = gx + plane * g.H * g.W;
    for (int64_t h = 0; h < g.H; ++h) {
      const int64_t w0 = h < g.P * g.kernel ? g.Q * g.kernel : 0;
      for (int64_t w = w0; w < g.W; ++w) gp[h * g.W + w] = T(0);
    }
  }
}

template <class T>
void forward_disjoint(const T* x, T* y, const PoolGeom& g) {
  if (g.kernel == 2)
    return cpu_parallel_ranges(g.N * g.C, pool_threads(g), [&](int64_t a, int64_t b) { forward_2x2(x, y, g, a, b); });
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
void backward_disjoint(const T* x, const T* y, const T* gy, T* gx, const PoolGeom& g) {
  zero_uncovered(gx, g);
  if (g.kernel == 2)
    return cpu_parallel_ranges(g.N * g.C, pool_threads(g),
                               [&](int64_t a, int64_t b) { backward_2x2(x, y, gy, gx, g, a, b); });
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
  }
}

void check_pair(const char* op, const Tensor& a, const Tensor& b) {
  check_same_device(op, a, b);
  FN_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", a.describe(), ", ", b.describe());
}
}  // namespace

void max_pool2d_forward(const Tensor& x, Tensor& y, int kernel, int stride, int pad, MaxPoolCpu version) {
  PoolGeom g = pool_geom(x.shape(), kernel, stride, pad);
  FN_CHECK(y.shape() == Shape({g.N, g.C, g.P, g.Q}), "max_pool2d_forward: output ", y.describe(), " should be ",
           shape_str({g.N, g.C, g.P, g.Q}));
  check_pair("max_pool2d_forward", x, y);
  check_float32_on_cuda("max_pool2d_forward", x);
  if (x.is_cuda()) {
    FN_CHECK(version == MaxPoolCpu::Default, "max_pool2d_forward: V1Reference is a CPU version");
#ifdef FN_WITH_CUDA
    return cuda::max_pool2d_forward_f32(x.f32(), y.f32(), g);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const bool fast = version == MaxPoolCpu::Default;
    if (fast && disjoint_windows(g)) return forward_disjoint(px, py, g);
    if (fast && resnet_pool_forward(px, py, g)) return;
    // The reference (any geometry): the shared window body, planes split over the cores (one writer per
    // plane, so the result does not depend on the thread count).
    cpu_parallel_ranges(g.N * g.C, pool_threads(g), [&](int64_t a, int64_t b) {
      for (int64_t plane = a; plane < b; ++plane)
        for (int64_t p = 0; p < g.P; ++p)
          for (int64_t q = 0; q < g.Q; ++q) {
            int64_t at;
            py[(plane * g.P + p) * g.Q + q] = max_pool_window(px + plane * g.H * g.W, g, p, q, &at);
          }
    });
  });
}

void max_pool2d_backward(const Tensor& x, const Tensor& y, const Tensor& gy, Tensor& gx, int kernel, int stride,
                         int pad, MaxPoolCpu version) {
  PoolGeom g = pool_geom(x.shape(), kernel, stride, pad);
  Shape ys{g.N, g.C, g.P, g.Q};
  FN_CHECK(y.shape() == ys && gy.shape() == ys && gx.shape() == x.shape(), "max_pool2d_backward: shapes ",
           x.describe(), ", ", y.describe(), ", ", gy.describe(), ", ", gx.describe());
  check_pair("max_pool2d_backward", x, y);
  check_pair("max_pool2d_backward", x, gy);
  check_pair("max_pool2d_backward", x, gx);
  check_float32_on_cuda("max_pool2d_backward", x);
  if (x.is_cuda()) {
    FN_CHECK(version == MaxPoolCpu::Default, "max_pool2d_backward: V1Reference is a CPU version");
#ifdef FN_WITH_CUDA
    return cuda::max_pool2d_backward_f32(x.f32(), y.f32(), gy.f32(), gx.f32(), g);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *px = x.data<T>(), *pgy = gy.data<T>();
    T* pgx = gx.data<T>();
    const bool fast = version == MaxPoolCpu::Default;
    if (fast && disjoint_windows(g)) return backward_disjoint(px, y.data<T>(), pgy, pgx, g);
    if (fast && resnet_pool_backward(px, y.data<T>(), pgy, pgx, g)) return;
    // A cell can be the maximum of several overlapping windows: their gradients add up in output order
    // (row-major p, q), as in PyTorch's CPU kernel. Planes are independent, so they split over the cores.
    cpu_parallel_ranges(g.N * g.C, pool_threads(g), [&](int64_t a, int64_t b) {
      const int64_t hw = g.H * g.W;
      std::memset(pgx + a * hw, 0, size_t((b - a) * hw) * sizeof(T));
      for (int64_t plane = a; plane < b; ++plane)
        for (int64_t p = 0; p < g.P; ++p)
          for (int64_t q = 0; q < g.Q; ++q) {
            int64_t at;
            max_pool_window(px + plane * hw, g, p, q, &at);
            pgx[plane * hw + at] += pgy[(plane * g.P + p) * g.Q + q];
          }
    });
  });
}

}  // namespace fn::kernels
