// Global average pooling: the CPU reference, the fast CPU path and device dispatch (CUDA side in
// global_avg_pool2d.cu). Math and versions: global_avg_pool2d.h.
#include "kernels/global_avg_pool2d.h"

#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/launch.h"

namespace fn::kernels {
namespace {

struct Planes {
  int64_t planes, hw;  // N*C planes of H*W cells
};

Planes check(const char* op, const Tensor& x4, const Tensor& y2) {
  FN_CHECK(x4.ndim() == 4, op, ": x / gx must be (N, C, H, W), got ", x4.describe());
  const int64_t n = x4.size(0), c = x4.size(1);
  FN_CHECK(y2.ndim() == 2 && y2.size(0) == n && y2.size(1) == c, op, ": y / gy must be (", n, ", ", c, "), got ",
           y2.describe());
  FN_CHECK(x4.size(2) > 0 && x4.size(3) > 0, op, ": an empty plane ", x4.describe(), " has no average");
  check_same_device(op, x4, y2);
  FN_CHECK(x4.dtype() == y2.dtype(), op, ": dtypes differ: ", x4.describe(), ", ", y2.describe());
  check_float32_on_cuda(op, x4);
  return {n * c, x4.size(2) * x4.size(3)};
}

// All cores (blas_threads()) from 1 Mi values (4 MB of float32), measured with bench_pool (default against
// default_1t, docs/kernels/global_avg_pool2d.md): below, waking a kept worker (core/thread_pool.h) cost
// about what it saved, or more on a busy machine (up to 2x at Lite0's 16x1280x5x5, a 0.06 ms pass: the
// worker waits for a free core); from 2 M values (32x1280x7x7, 32x2048x7x7) it paid, 1.1-1.7x. Planes are
// split into contiguous ranges, one writer per output: the result does not depend on the thread count.
constexpr int64_t kThreadedValues = int64_t(1) << 20;
int threads_for(const Planes& p) { return p.planes * p.hw >= kThreadedValues ? std::max(1, blas_threads()) : 1; }

// The fast plane sum: four double lanes (lane k takes cells k, k+4, ...), combined as (s0 + s1) + (s2 + s3),
// then the tail: the order is the one written here (nothing reassociated), the four lanes one AVX2
// register of doubles where available, the plain loop otherwise. K planes side by
// side (each in that order, so the bits do not depend on K): a 5x5 or 7x7 plane is only 6-12 vector adds,
// one dependent chain, so one plane at a time runs at the add's latency; K chains overlap.
#ifdef __AVX2__
inline __m256d load4(const float* x) { return _mm256_cvtps_pd(_mm_loadu_ps(x)); }
inline __m256d load4(const double* x) { return _mm256_loadu_pd(x); }
#endif

template <int K, class T>
void plane_sums4(const T* x, int64_t hw, T* y) {
  double s[K][4] = {};
  int64_t i = 0;
#ifdef __AVX2__
  // The same lanes in registers: GCC's own vectorisation of the loop below gathers the floats one by one.
  __m256d v[K];
  for (int k = 0; k < K; ++k) v[k] = _mm256_setzero_pd();
  for (; i + 4 <= hw; i += 4)
    for (int k = 0; k < K; ++k) v[k] = _mm256_add_pd(v[k], load4(x + k * hw + i));
  for (int k = 0; k < K; ++k) _mm256_storeu_pd(s[k], v[k]);
#endif
  for (; i + 4 <= hw; i += 4)
    for (int k = 0; k < K; ++k)
      for (int l = 0; l < 4; ++l) s[k][l] += double(x[k * hw + i + l]);
  for (int k = 0; k < K; ++k) {
    double t = (s[k][0] + s[k][1]) + (s[k][2] + s[k][3]);
    for (int64_t j = i; j < hw; ++j) t += double(x[k * hw + j]);
    y[k] = T(t / double(hw));
  }
}

template <class T>
void forward_fast(const T* x, T* y, int64_t plane0, int64_t plane1, int64_t hw) {
  int64_t plane = plane0;
  for (; plane + 4 <= plane1; plane += 4) plane_sums4<4>(x + plane * hw, hw, y + plane);
  for (; plane < plane1; ++plane) plane_sums4<1>(x + plane * hw, hw, y + plane);
}

}  // namespace

void global_avg_pool2d_forward(const Tensor& x, Tensor& y, GlobalAvgPoolForward version) {
  const Planes p = check("global_avg_pool2d_forward", x, y);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::global_avg_pool2d_forward_f32(version, x.f32(), y.f32(), p.planes, p.hw);
#endif
  }
  FN_CHECK(version == GlobalAvgPoolForward::Default || version == GlobalAvgPoolForward::V1Reference,
           "global_avg_pool2d: V1Thread, V2Warp and V3Block are CUDA versions");
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    if (version == GlobalAvgPoolForward::V1Reference) {
      for (int64_t plane = 0; plane < p.planes; ++plane) {
        double s = 0;
        for (int64_t i = 0; i < p.hw; ++i) s += double(px[plane * p.hw + i]);
        py[plane] = T(s / double(p.hw));
      }
      return;
    }
    cpu_parallel_ranges(p.planes, threads_for(p), [&](int64_t a, int64_t b) {
      forward_fast(px, py, a, b, p.hw);
    });
  });
}

void global_avg_pool2d_backward(const Tensor& gy, Tensor& gx, GlobalAvgPoolBackward version) {
  const Planes p = check("global_avg_pool2d_backward", gx, gy);
  if (gx.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::global_avg_pool2d_backward_f32(gy.f32(), gx.f32(), p.planes, p.hw);
#endif
  }
  FN_DISPATCH_FLOAT(gx.dtype(), T, {
    const T* pg = gy.data<T>();
    T* px = gx.data<T>();
    const T hw = T(p.hw);
    if (version == GlobalAvgPoolBackward::V1Reference) {
      for (int64_t i = 0; i < p.planes * p.hw; ++i) px[i] = pg[i / p.hw] / hw;
      return;
    }
    // One division per plane, then a fill the compiler turns into vector stores.
    cpu_parallel_ranges(p.planes, threads_for(p), [&](int64_t a, int64_t b) {
      for (int64_t plane = a; plane < b; ++plane) std::fill_n(px + plane * p.hw, p.hw, pg[plane] / hw);
    });
  });
}

}  // namespace fn::kernels
