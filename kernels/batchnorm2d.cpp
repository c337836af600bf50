// Batch norm 2d: the launchers, the CPU reference and the two threaded CPU paths (CUDA side in batchnorm2d.cu).
// The math is in batchnorm2d.h; the derivation and the measured figures in docs/kernels/batchnorm2d.md.
//
// Reference: per channel, plain loops in double: the mean, then the variance as a second pass over x - mean
//   (the textbook two-pass form, the most accurate), then y = (x - mean) * inv_std * w + b.
// The fast paths share the per-value work:
//   forward   one pass for both sums, shifted by the channel's first value K (s1 = sum (x - K),
//             s2 = sum (x - K)^2, in double: no cancellation when |mean| >> std), then y = (x - mean) a + b
//             with a = w inv_std. A constant channel gives x - mean = 0: y = b exactly.
//   backward  one pass for G = sum g and sum g (x - mean) (double), then dx = A (g + C0) + B (x - mean) with
//             per-channel coefficients (A = w inv_std, C0 = -G / n, B = -A inv_std GX / n). Where the batch
//             holds one value per channel g + C0 is exactly 0, and so is dx (no rounding residue).
//   float32 inner loops are AVX2: 16 values per step into eight double accumulators (four independent add
//   chains per sum hide the add latency); float64 runs the same loops in scalar code.
// and differ in the order they visit memory (blas_threads() threads either way):
//   Channels  a thread owns whole channels: the sums over the channel's N rows, then the apply while the
//             channel is in cache (x read from memory once). Rows lie C*HW apart; short ones end before the
//             hardware prefetcher locks on.
//   Planes    memory order: pass 1 sums every (n, c) plane into its own partials (planes split over the
//             threads), the partials are added per channel in image order, pass 2 applies plane by plane. One
//             stream per pass; x is read twice (from L3 where the tensor fits).
// Auto: Channels for tensors of 48 MB and more with planes of 8 KB and more, Planes otherwise (measured).
// An activation in the same op (BatchNormAct, the backbones' conv-BN-ReLU6 and conv-BN-ReLU): the apply
// clamps what it writes; the backward masks g by the op's output, which the fast paths rebuild from x to the
// bit (output_at: the forward's own fused multiply-add) instead of reading it, in the sums' pass and in the
// apply's. The reference writes the mask by the output itself into a copy of g first: the definition.
// Every sum runs in an order fixed by the shape alone, so results are bitwise the same whatever the thread
// count, and run to run.
#include "kernels/batchnorm2d.h"
#include "kernels/batchnorm2d_apply.h"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>
#ifdef __AVX2__
#include <immintrin.h>
#endif

#include "kernels/elementwise.h"
#include "kernels/elementwise_body.h"
#include "kernels/gemm.h"
#include "kernels/launch.h"

namespace fn::kernels {

const char* batch_norm_algo_name(BatchNormAlgo a) {
  switch (a) {
    case BatchNormAlgo::Auto: return "auto";
    case BatchNormAlgo::Reference: return "reference";
    case BatchNormAlgo::Channels: return "channels";
    case BatchNormAlgo::Planes: return "planes";
    case BatchNormAlgo::TwoPass: return "v1_two_pass";
    case BatchNormAlgo::OnePass: return "v2_one_pass";
    case BatchNormAlgo::Split: return "v3_split";
    case BatchNormAlgo::Cudnn: return "cudnn";
  }
  return "?";
}

const char* batch_norm_act_name(BatchNormAct a) {
  switch (a) {
    case BatchNormAct::None: return "none";
    case BatchNormAct::Relu: return "relu";
    case BatchNormAct::Relu6: return "relu6";
  }
  return "?";
}

namespace {

using Act = BatchNormAct;


struct Dims {
  int64_t N, C, HW;
  int64_t count() const { return N * HW; }  // values per channel
};

void check_vector(const char* op, const Tensor& x, const Tensor& v, int64_t C, const char* what) {
  if (!v.defined()) return;
  FN_CHECK(v.ndim() == 1 && v.size(0) == C, op, ": ", what, " must be (", C, "), got ", v.describe());
  check_same_device(op, x, v);
  FN_CHECK(v.dtype() == x.dtype(), op, ": ", what, " ", v.describe(), " and x ", x.describe(), " differ in dtype");
}

Dims check_x(const char* op, const Tensor& x) {
  FN_CHECK(x.ndim() == 4, op, ": x must be (N,C,H,W), got ", x.describe());
  check_float32_on_cuda(op, x);
  return {x.size(0), x.size(1), x.size(2) * x.size(3)};
}

// The backward's inputs: gy like x, the per-channel tensors (C) where defined, the saved statistics given.
Dims check_backward(const char* op, const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Tensor& mean, const Tensor& inv_std, const Tensor& gweight, const Tensor& gbias) {
  const Dims d = check_x(op, x);
  check_same_device(op, x, gy);
  check_same_shape(op, x, gy);
  FN_CHECK(gy.dtype() == x.dtype(), op, ": gy ", gy.describe(), " and x ", x.describe(), " differ in dtype");
  check_vector(op, x, weight, d.C, "weight");
  check_vector(op, x, bias, d.C, "bias");
  check_vector(op, x, mean, d.C, "mean");
  check_vector(op, x, inv_std, d.C, "inv_std");
  check_vector(op, x, gweight, d.C, "gweight");
  check_vector(op, x, gbias, d.C, "gbias");
  FN_CHECK(mean.defined() && inv_std.defined(), op, ": the forward's mean and inv_std must be given");
  return d;
}

bool cuda_algo(BatchNormAlgo a) {
  return a == BatchNormAlgo::TwoPass || a == BatchNormAlgo::OnePass || a == BatchNormAlgo::Split ||
         a == BatchNormAlgo::Cudnn;
}

template <class T>
const T* ptr(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}
template <class T>
T* mut(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// Where the running statistics are updated: the batch's mean and biased variance over n values.
template <class T>
void update_running(T* rm, T* rv, int64_t c, double mean, double var, int64_t n, double momentum) {
  if (rm) rm[c] = T((1 - momentum) * double(rm[c]) + momentum * mean);
  if (rv && n > 1) rv[c] = T((1 - momentum) * double(rv[c]) + momentum * var * double(n) / double(n - 1));
}

// ---------------------------------------------------------------- reference (plain loops, double)

template <Act A, class T>
void forward_reference(const T* x, const T* w, const T* b, T* rm, T* rv, bool batch, double momentum, double eps,
                       const Dims& d, T* y, T* mean, T* inv_std) {
  const int64_t n = d.count();
  for (int64_t c = 0; c < d.C; ++c) {
    double m, var;
    if (batch) {
      double s = 0;
      for (int64_t i = 0; i < d.N; ++i)
        for (int64_t j = 0; j < d.HW; ++j) s += double(x[(i * d.C + c) * d.HW + j]);
      m = s / double(n);
      double q = 0;
      for (int64_t i = 0; i < d.N; ++i)
        for (int64_t j = 0; j < d.HW; ++j) {
          double e = double(x[(i * d.C + c) * d.HW + j]) - m;
          q += e * e;
        }
      var = q / double(n);
      update_running(rm, rv, c, m, var, n, momentum);
    } else {
      m = double(rm[c]);
      var = double(rv[c]);
    }
    const double is = 1.0 / std::sqrt(var + eps);
    mean[c] = T(m);
    inv_std[c] = T(is);
    if (!y) continue;  // statistics only
    const double wc = w ? double(w[c]) : 1.0, bc = b ? double(b[c]) : 0.0;
    for (int64_t i = 0; i < d.N; ++i)
      for (int64_t j = 0; j < d.HW; ++j) {
        const int64_t k = (i * d.C + c) * d.HW + j;
        y[k] = act_value<A>(T((double(x[k]) - m) * is * wc + bc));
      }
  }
}

template <class T>
void backward_reference(const T* gy, const T* x, const T* w, const T* mean, const T* inv_std, bool batch,
                        const Dims& d, T* gx, T* gw, T* gb) {
  const double n = double(d.count());
  for (int64_t c = 0; c < d.C; ++c) {
    const double m = double(mean[c]), is = double(inv_std[c]);
    double G = 0, GX = 0;
    for (int64_t i = 0; i < d.N; ++i)
      for (int64_t j = 0; j < d.HW; ++j) {
        const int64_t k = (i * d.C + c) * d.HW + j;
        G += double(gy[k]);
        GX += double(gy[k]) * (double(x[k]) - m) * is;
      }
    if (gw) gw[c] = T(GX);
    if (gb) gb[c] = T(G);
    if (!gx) continue;
    const double a = (w ? double(w[c]) : 1.0) * is;
    for (int64_t i = 0; i < d.N; ++i)
      for (int64_t j = 0; j < d.HW; ++j) {
        const int64_t k = (i * d.C + c) * d.HW + j;
        const double g = double(gy[k]);
        gx[k] = T(batch ? a * (g - G / n - (double(x[k]) - m) * is * GX / n) : a * g);
      }
  }
}

// With an activation, the definition itself: the mask by the fused forward's output ya into a copy of gy
// (relu_bwd / relu6_bwd), then batch norm's backward on it.
template <Act A, class T>
void backward_reference(const T* gy, const T* ya, const T* x, const T* w, const T* mean, const T* inv_std, bool batch,
                        const Dims& d, T* gx, T* gw, T* gb) {
  if constexpr (A == Act::None) {
    backward_reference(gy, x, w, mean, inv_std, batch, d, gx, gw, gb);
  } else {
    std::vector<T> g(size_t(d.N * d.C * d.HW));
    for (size_t k = 0; k < g.size(); ++k) g[k] = act_grad<A>(ya[k], gy[k]);
    backward_reference(g.data(), x, w, mean, inv_std, batch, d, gx, gw, gb);
  }
}

// ---------------------------------------------------------------- threaded (fast) path

// Running double sums of one channel, carried over its N rows; combined in one fixed order at the end.
struct Sums {
#ifdef __AVX2__
  __m256d v[8] = {_mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(),
                  _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd(), _mm256_setzero_pd()};
#endif
  double s1 = 0, s2 = 0;  // the scalar tails
#ifdef __AVX2__
  static double hsum(__m256d a) {
    __m128d l = _mm256_castpd256_pd128(a), h = _mm256_extractf128_pd(a, 1);
    l = _mm_add_pd(l, h);
    return _mm_cvtsd_f64(_mm_add_sd(l, _mm_unpackhi_pd(l, l)));
  }
#endif
  // The totals: vector lanes first (accumulators 0-3 hold the first sum, 4-7 the second), then the tails.
  double first() const {
#ifdef __AVX2__
    return hsum(_mm256_add_pd(_mm256_add_pd(v[0], v[1]), _mm256_add_pd(v[2], v[3]))) + s1;
#else
    return s1;
#endif
  }
  double second() const {
#ifdef __AVX2__
    return hsum(_mm256_add_pd(_mm256_add_pd(v[4], v[5]), _mm256_add_pd(v[6], v[7]))) + s2;
#else
    return s2;
#endif
  }
};

#ifdef __AVX2__
inline void split_pd(__m256 v, __m256d& lo, __m256d& hi) {
  lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
  hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
}
// With an activation the backward's float32 loops end a row with masked loads and stores, not scalar code: a
// 6x6 map's 36 values are two 16-value steps and 4 more, and the scalar tail's mask rebuilding and dependent
// adds had cost as much as the vector steps (without an activation the scalar tail is the cheaper, measured).
// lanes(n): lanes [0, n) of 8 (none for n <= 0). Masked-off lanes are not read (no fault) and load 0.
inline __m256i lanes(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(std::min<int64_t>(n, 8))), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// The 8 values at p + j of a row of len: masked where the row ends within them.
inline __m256 load8(const float* p, int64_t j, int64_t len) {
  return j + 8 <= len ? _mm256_loadu_ps(p + j) : _mm256_maskload_ps(p + j, lanes(len - j));
}
inline void store8(float* p, int64_t j, int64_t len, __m256 v) {
  if (j + 8 <= len) _mm256_storeu_ps(p + j, v);
  else _mm256_maskstore_ps(p + j, lanes(len - j), v);
}
#endif

// s1 += sum (p - K), s2 += sum (p - K)^2 over len values.
template <class T>
void add_shifted_sums(const T* p, int64_t len, double K, Sums& s) {
  int64_t j = 0;
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>) {
    const __m256d k = _mm256_set1_pd(K);
    for (; j + 16 <= len; j += 16) {
      __m256d a0, a1, b0, b1;
      split_pd(_mm256_loadu_ps(p + j), a0, a1);
      split_pd(_mm256_loadu_ps(p + j + 8), b0, b1);
      a0 = _mm256_sub_pd(a0, k), a1 = _mm256_sub_pd(a1, k), b0 = _mm256_sub_pd(b0, k), b1 = _mm256_sub_pd(b1, k);
      s.v[0] = _mm256_add_pd(s.v[0], a0), s.v[1] = _mm256_add_pd(s.v[1], a1);
      s.v[2] = _mm256_add_pd(s.v[2], b0), s.v[3] = _mm256_add_pd(s.v[3], b1);
      s.v[4] = _mm256_fmadd_pd(a0, a0, s.v[4]), s.v[5] = _mm256_fmadd_pd(a1, a1, s.v[5]);
      s.v[6] = _mm256_fmadd_pd(b0, b0, s.v[6]), s.v[7] = _mm256_fmadd_pd(b1, b1, s.v[7]);
    }
  }
#endif
  for (; j < len; ++j) {
    const double e = double(p[j]) - K;
    s.s1 += e;
    s.s2 += e * e;
  }
}


// s1 += sum g, s2 += sum g (x - m) over len values; g masked first by the output rebuilt from x (A != None).
template <Act A, class T>
void add_grad_sums(const T* g, const T* x, int64_t len, const Affine<T>& f, Sums& s) {
  const double m = double(f.m);
  int64_t j = 0;
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>) {
    const AffineV fv(f);
    const __m256d mv = _mm256_set1_pd(m);
    // Past the row's end g loads 0, which adds 0 to both sums (0 * (0 - m) is a zero too).
    for (; A != Act::None ? j < len : j + 16 <= len; j += 16) {
      const __m256 xa = load8(x, j, len), xb = load8(x, j + 8, len);
      __m256d g0, g1, g2, g3, x0, x1, x2, x3;
      split_pd(masked<A>(load8(g, j, len), xa, fv), g0, g1);
      split_pd(masked<A>(load8(g, j + 8, len), xb, fv), g2, g3);
      split_pd(xa, x0, x1);
      split_pd(xb, x2, x3);
      s.v[0] = _mm256_add_pd(s.v[0], g0), s.v[1] = _mm256_add_pd(s.v[1], g1);
      s.v[2] = _mm256_add_pd(s.v[2], g2), s.v[3] = _mm256_add_pd(s.v[3], g3);
      s.v[4] = _mm256_fmadd_pd(g0, _mm256_sub_pd(x0, mv), s.v[4]);
      s.v[5] = _mm256_fmadd_pd(g1, _mm256_sub_pd(x1, mv), s.v[5]);
      s.v[6] = _mm256_fmadd_pd(g2, _mm256_sub_pd(x2, mv), s.v[6]);
      s.v[7] = _mm256_fmadd_pd(g3, _mm256_sub_pd(x3, mv), s.v[7]);
    }
  }
#endif
  for (; j < len; ++j) {
    const double gj = double(masked<A>(g[j], x[j], f));
    s.s1 += gj;
    s.s2 = std::fma(gj, double(x[j]) - m, s.s2);  // explicit: GCC contracts a * b + c or not by context
  }
}

// y = act((x - m) * a + b) over len values (float: 8 at a time).
template <Act A, class T>
void apply_affine(const T* x, int64_t len, const Affine<T>& f, T* y) {
  int64_t j = 0;
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>) {
    const AffineV fv(f);
    for (; j + 8 <= len; j += 8) _mm256_storeu_ps(y + j, output_at<A>(_mm256_loadu_ps(x + j), fv));
  }
#endif
  for (; j < len; ++j) y[j] = output_at<A>(x[j], f);
}

// dx = A (g + C0) + B (x - m) over len values (Batch statistics); dx = A g (Running: x read only for the
// mask); g masked first by the output rebuilt from x (Ac != None).
template <Act Ac, class T>
void apply_grad(const T* g, const T* x, int64_t len, const GradCoef<T>& k, bool batch, T* dx) {
  int64_t j = 0;
#ifdef __AVX2__
  if constexpr (std::is_same_v<T, float>) {
    const GradCoefV kv(k);
    if (batch) {
      for (; Ac != Act::None ? j < len : j + 8 <= len; j += 8)
        store8(dx, j, len, grad_at<Ac, true>(load8(g, j, len), load8(x, j, len), kv));
    } else {  // x only for the activation's mask (unused, its load is dropped, without one)
      for (; Ac != Act::None ? j < len : j + 8 <= len; j += 8)
        store8(dx, j, len, grad_at<Ac, false>(load8(g, j, len), load8(x, j, len), kv));
    }
  }
#endif
  if (batch) {
    for (; j < len; ++j) dx[j] = grad_at<Ac, true>(g[j], x[j], k);
  } else {
    for (; j < len; ++j) dx[j] = grad_at<Ac, false>(g[j], x[j], k);
  }
}
// Below this many values the work runs on the calling thread: starting a thread costs tens of microseconds.
constexpr int64_t kThreadedValues = int64_t(1) << 15;
int cpu_threads(const Dims& d) { return d.N * d.C * d.HW >= kThreadedValues ? std::max(1, blas_threads()) : 1; }

// Auto runs Channels where both hold (x read once, its rows long enough to stream), Planes otherwise: beyond
// the L3 of the machines measured (32 MB) Planes' second read of x goes to memory (docs/kernels/batchnorm2d.md).
constexpr int64_t kChannelsMinPlaneBytes = 8192, kChannelsMinTensorBytes = int64_t(48) << 20;

template <class T>
bool auto_channels(const Dims& d) {
  const int64_t plane = d.HW * int64_t(sizeof(T));
  return plane >= kChannelsMinPlaneBytes && d.N * d.C * plane >= kChannelsMinTensorBytes;
}

// body(i) for i in [0, n), contiguous ranges of i on the threads.
template <class F>
void parallel_for(int64_t n, const Dims& d, F&& body) {
  cpu_parallel_ranges(n, cpu_threads(d), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) body(i);
  });
}

// A channel's saved statistics from its shifted sums (Batch) or its running statistics; returns what the
// apply needs: y = act((x - m) * a + b).
template <class T>
Affine<T> finalize_forward(int64_t c, bool batch, double K, double s1, double s2, int64_t n, const T* w, const T* b,
                           T* rm, T* rv, double momentum, double eps, T* mean, T* inv_std) {
  double m, var;
  if (batch) {
    const double d1 = s1 / double(n);
    m = K + d1;
    var = std::max(s2 / double(n) - d1 * d1, 0.0);
    update_running(rm, rv, c, m, var, n, momentum);
  } else {
    m = double(rm[c]);
    var = double(rv[c]);
  }
  const double is = 1.0 / std::sqrt(var + eps);
  mean[c] = T(m);
  inv_std[c] = T(is);
  return affine_of(c, w, b, mean, inv_std);
}

// A channel's dw, db and its dx coefficients from G and sum g (x - m).
template <class T>
GradCoef<T> finalize_backward(const Affine<T>& f, int64_t c, bool batch, double G, double GXraw, int64_t n,
                              const T* inv_std, T* gw, T* gb) {
  const double is = double(inv_std[c]), A = double(f.a), GX = GXraw * is;
  if (gw) gw[c] = T(GX);
  if (gb) gb[c] = T(G);
  return {f, batch ? T(-A * is * GX / double(n)) : T(0), batch ? T(-G / double(n)) : T(0)};
}

// Channels: a thread owns whole channels; per channel the sums over its N rows, then the apply while the
// channel is in cache.
template <Act A, class T>
void forward_channels(const T* x, const T* w, const T* b, T* rm, T* rv, bool batch, double momentum, double eps,
                      const Dims& d, T* y, T* mean, T* inv_std) {
  const int64_t stride = d.C * d.HW;
  parallel_for(d.C, d, [&](int64_t c) {
    const T* xc = x + c * d.HW;
    const double K = batch ? double(xc[0]) : 0.0;
    Sums s;
    if (batch)
      for (int64_t i = 0; i < d.N; ++i) add_shifted_sums(xc + i * stride, d.HW, K, s);
    const Affine<T> f = finalize_forward(c, batch, K, s.first(), s.second(), d.count(), w, b, rm, rv, momentum, eps,
                                         mean, inv_std);
    if (y)
      for (int64_t i = 0; i < d.N; ++i) apply_affine<A>(xc + i * stride, d.HW, f, y + c * d.HW + i * stride);
  });
}

template <Act A, class T>
void backward_channels(const T* gy, const T* x, const T* w, const T* b, const T* mean, const T* inv_std, bool batch,
                       const Dims& d, T* gx, T* gw, T* gb, GradCoef<T>* kout = nullptr) {
  const int64_t stride = d.C * d.HW;
  const bool sums = batch || gw || gb;
  parallel_for(d.C, d, [&](int64_t c) {
    const int64_t off = c * d.HW;
    const Affine<T> f = affine_of(c, w, b, mean, inv_std);
    Sums s;
    if (sums)
      for (int64_t i = 0; i < d.N; ++i) add_grad_sums<A>(gy + off + i * stride, x + off + i * stride, d.HW, f, s);
    const GradCoef<T> k = finalize_backward(f, c, batch, s.first(), s.second(), d.count(), inv_std, gw, gb);
    if (kout) kout[c] = k;
    if (gx)
      for (int64_t i = 0; i < d.N; ++i) {
        const int64_t o = off + i * stride;
        apply_grad<A>(gy + o, x + o, d.HW, k, batch, gx + o);
      }
  });
}

// Planes: memory order. Pass 1 sums each (n, c) plane into its own partials (planes over the threads), the
// partials are added per channel in image order (so the bits do not depend on the threads), pass 2 applies
// plane by plane. Every pass streams: short rows read a channel at a time leave the prefetcher idle.
template <Act A, class T>
void forward_planes(const T* x, const T* w, const T* b, T* rm, T* rv, bool batch, double momentum, double eps,
                    const Dims& d, T* y, T* mean, T* inv_std) {
  const int64_t planes = d.N * d.C;
  std::vector<double> part(batch ? size_t(2 * planes) : 0);
  if (batch)
    parallel_for(planes, d, [&](int64_t p) {
      Sums s;
      add_shifted_sums(x + p * d.HW, d.HW, double(x[(p % d.C) * d.HW]), s);
      part[size_t(2 * p)] = s.first();
      part[size_t(2 * p + 1)] = s.second();
    });
  std::vector<Affine<T>> f(size_t(d.C));
  for (int64_t c = 0; c < d.C; ++c) {
    double s1 = 0, s2 = 0;
    if (batch)
      for (int64_t i = 0; i < d.N; ++i) s1 += part[size_t(2 * (i * d.C + c))], s2 += part[size_t(2 * (i * d.C + c) + 1)];
    f[size_t(c)] = finalize_forward(c, batch, batch ? double(x[c * d.HW]) : 0.0, s1, s2, d.count(), w, b, rm, rv,
                                    momentum, eps, mean, inv_std);
  }
  if (y)
    parallel_for(planes, d, [&](int64_t p) {
      apply_affine<A>(x + p * d.HW, d.HW, f[size_t(p % d.C)], y + p * d.HW);
    });
}

template <Act A, class T>
void backward_planes(const T* gy, const T* x, const T* w, const T* b, const T* mean, const T* inv_std, bool batch,
                     const Dims& d, T* gx, T* gw, T* gb, GradCoef<T>* kout = nullptr) {
  const int64_t planes = d.N * d.C;
  const bool sums = batch || gw || gb;
  std::vector<Affine<T>> f(size_t(d.C));
  for (int64_t c = 0; c < d.C; ++c) f[size_t(c)] = affine_of(c, w, b, mean, inv_std);
  std::vector<double> part(sums ? size_t(2 * planes) : 0);
  if (sums)
    parallel_for(planes, d, [&](int64_t p) {
      Sums s;
      add_grad_sums<A>(gy + p * d.HW, x + p * d.HW, d.HW, f[size_t(p % d.C)], s);
      part[size_t(2 * p)] = s.first();
      part[size_t(2 * p + 1)] = s.second();
    });
  std::vector<GradCoef<T>> k(size_t(d.C));
  for (int64_t c = 0; c < d.C; ++c) {
    double G = 0, GX = 0;
    if (sums)
      for (int64_t i = 0; i < d.N; ++i) G += part[size_t(2 * (i * d.C + c))], GX += part[size_t(2 * (i * d.C + c) + 1)];
    k[size_t(c)] = finalize_backward(f[size_t(c)], c, batch, G, GX, d.count(), inv_std, gw, gb);
    if (kout) kout[c] = k[size_t(c)];
  }
  if (gx)
    parallel_for(planes, d, [&](int64_t p) {
      apply_grad<A>(gy + p * d.HW, x + p * d.HW, d.HW, k[size_t(p % d.C)], batch, gx + p * d.HW);
    });
}

}  // namespace

void batch_norm2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                          Tensor& running_var, BatchNormStats stats, double momentum, double eps, Tensor& y,
                          Tensor& mean, Tensor& inv_std, BatchNormAlgo algo, BatchNormAct act) {
  const char* op = "batch_norm2d";
  const Dims d = check_x(op, x);
  const bool batch = stats == BatchNormStats::Batch;
  check_vector(op, x, weight, d.C, "weight");
  check_vector(op, x, bias, d.C, "bias");
  check_vector(op, x, running_mean, d.C, "running_mean");
  check_vector(op, x, running_var, d.C, "running_var");
  check_vector(op, x, mean, d.C, "mean");
  check_vector(op, x, inv_std, d.C, "inv_std");
  FN_CHECK(mean.defined() && inv_std.defined(), op, ": mean and inv_std (the saved statistics) must be given");
  FN_CHECK(batch || (running_mean.defined() && running_var.defined()),
           op, ": running statistics needed to normalise by them");
  FN_CHECK(!batch || d.count() > 0, op, ": batch statistics of an empty channel, x ", x.describe());
  FN_CHECK(eps > 0, op, ": eps must be positive, got ", eps);
  if (y.defined()) {
    check_same_device(op, x, y);
    check_same_shape(op, x, y);
    FN_CHECK(y.dtype() == x.dtype(), op, ": y ", y.describe(), " and x ", x.describe(), " differ in dtype");
  }
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    FN_CHECK(algo == BatchNormAlgo::Auto || cuda_algo(algo), op, ": ", batch_norm_algo_name(algo),
             " is a CPU version");
    FN_CHECK(y.defined(), op, ": the statistics alone (no y) are a CPU mode");
    cuda::batch_norm2d_forward_f32(algo, x.f32(), ptr<float>(weight), ptr<float>(bias), mut<float>(running_mean),
                                   mut<float>(running_var), batch, momentum, eps, d.N, d.C, d.HW, y.f32(), mean.f32(),
                                   inv_std.f32());
    if (act == BatchNormAct::Relu) cuda::relu_forward_f32(y.f32(), y.f32(), y.numel());
    if (act == BatchNormAct::Relu6) cuda::relu6_forward_f32(y.f32(), y.f32(), y.numel());
    return;
#endif
  }
  FN_CHECK(!cuda_algo(algo), op, ": ", batch_norm_algo_name(algo), " is a CUDA version");
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *px = x.data<T>(), *pw = ptr<T>(weight), *pb = ptr<T>(bias);
    T *prm = mut<T>(running_mean), *prv = mut<T>(running_var), *py = mut<T>(y), *pm = mean.data<T>(),
      *pi = inv_std.data<T>();
    with_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      if (algo == BatchNormAlgo::Reference)
        forward_reference<A>(px, pw, pb, prm, prv, batch, momentum, eps, d, py, pm, pi);
      else if (algo == BatchNormAlgo::Channels || (algo == BatchNormAlgo::Auto && auto_channels<T>(d)))
        forward_channels<A>(px, pw, pb, prm, prv, batch, momentum, eps, d, py, pm, pi);
      else  // Planes, Auto
        forward_planes<A>(px, pw, pb, prm, prv, batch, momentum, eps, d, py, pm, pi);
    });
  });
}

void batch_norm2d_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& mean, const Tensor& inv_std, BatchNormStats stats, Tensor& gx,
                           Tensor& gweight, Tensor& gbias, BatchNormAlgo algo, BatchNormAct act, const Tensor& y) {
  const char* op = "batch_norm2d backward";
  const Dims d = check_backward(op, gy, x, weight, bias, mean, inv_std, gweight, gbias);
  FN_CHECK(weight.defined() || !gweight.defined(), op, ": a weight gradient without a weight");
  if (gx.defined()) {
    check_same_device(op, x, gx);
    check_same_shape(op, x, gx);
    FN_CHECK(gx.dtype() == x.dtype(), op, ": gx ", gx.describe(), " and x ", x.describe(), " differ in dtype");
  }
  // Reference and CUDA mask gy by the output itself; the CPU fast paths rebuild it from x.
  const bool reads_y = x.is_cuda() || algo == BatchNormAlgo::Reference;
  if (act != BatchNormAct::None && (reads_y || y.defined())) {
    FN_CHECK(y.defined(), op, ": the forward's output is needed with the activation ", batch_norm_act_name(act),
             " (", batch_norm_algo_name(algo), x.is_cuda() ? " on CUDA)" : ")");
    check_same_device(op, x, y);
    check_same_shape(op, x, y);
    FN_CHECK(y.dtype() == x.dtype(), op, ": y ", y.describe(), " and x ", x.describe(), " differ in dtype");
  }
  const bool batch = stats == BatchNormStats::Batch;
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    FN_CHECK(algo == BatchNormAlgo::Auto || cuda_algo(algo), op, ": ", batch_norm_algo_name(algo),
             " is a CPU version");
    Tensor g = gy;  // the activation's mask first, into a temporary
    if (act != BatchNormAct::None) {
      g = Tensor::empty_like(gy);
      if (act == BatchNormAct::Relu) cuda::relu_backward_f32(y.f32(), gy.f32(), g.f32(), g.numel());
      else cuda::relu6_backward_f32(y.f32(), gy.f32(), g.f32(), g.numel());
    }
    return cuda::batch_norm2d_backward_f32(algo, g.f32(), x.f32(), ptr<float>(weight), mean.f32(), inv_std.f32(),
                                           batch, d.N, d.C, d.HW, mut<float>(gx), mut<float>(gweight),
                                           mut<float>(gbias));
#endif
  }
  FN_CHECK(!cuda_algo(algo), op, ": ", batch_norm_algo_name(algo), " is a CUDA version");
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *pg = gy.data<T>(), *px = x.data<T>(), *pw = ptr<T>(weight), *pb = ptr<T>(bias), *pm = mean.data<T>(),
            *pi = inv_std.data<T>();
    T *pgx = mut<T>(gx), *pgw = mut<T>(gweight), *pgb = mut<T>(gbias);
    with_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      if (algo == BatchNormAlgo::Reference)  // the definition: masks by the output itself
        backward_reference<A>(pg, A == Act::None ? nullptr : y.data<T>(), px, pw, pm, pi, batch, d, pgx, pgw, pgb);
      else if (algo == BatchNormAlgo::Channels || (algo == BatchNormAlgo::Auto && auto_channels<T>(d)))
        backward_channels<A>(pg, px, pw, pb, pm, pi, batch, d, pgx, pgw, pgb);
      else  // Planes, Auto
        backward_planes<A>(pg, px, pw, pb, pm, pi, batch, d, pgx, pgw, pgb);
    });
  });
}

void batch_norm2d_backward_coefficients(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                        const Tensor& mean, const Tensor& inv_std, BatchNormStats stats,
                                        Tensor& gweight, Tensor& gbias, BatchNormAct act, Tensor& coef) {
  const char* op = "batch_norm2d_backward_coefficients";
  FN_CHECK(!x.is_cuda(), op, ": a CPU function, got ", x.describe());
  const Dims d = check_backward(op, gy, x, weight, bias, mean, inv_std, gweight, gbias);
  FN_CHECK(coef.defined() && coef.shape() == Shape({d.C, 2}) && coef.dtype() == x.dtype() && !coef.is_cuda(), op,
           ": coef must be (", d.C, ", 2) in x's dtype on the CPU, got ", coef.describe());
  const bool batch = stats == BatchNormStats::Batch;
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *pg = gy.data<T>(), *px = x.data<T>(), *pw = ptr<T>(weight), *pb = ptr<T>(bias), *pm = mean.data<T>(),
            *pi = inv_std.data<T>();
    T *pgw = mut<T>(gweight), *pgb = mut<T>(gbias);
    std::vector<GradCoef<T>> k(size_t(d.C));
    with_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      T* no_gx = nullptr;
      if (auto_channels<T>(d)) backward_channels<A>(pg, px, pw, pb, pm, pi, batch, d, no_gx, pgw, pgb, k.data());
      else backward_planes<A>(pg, px, pw, pb, pm, pi, batch, d, no_gx, pgw, pgb, k.data());
    });
    T* pc = coef.data<T>();
    for (int64_t c = 0; c < d.C; ++c) pc[2 * c] = k[size_t(c)].B, pc[2 * c + 1] = k[size_t(c)].C0;
  });
}

void batch_norm2d_backward_apply(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const Tensor& mean, const Tensor& inv_std, BatchNormStats stats, BatchNormAct act,
                                 const Tensor& coef, Tensor& gx) {
  const char* op = "batch_norm2d_backward_apply";
  FN_CHECK(!x.is_cuda(), op, ": a CPU function, got ", x.describe());
  const Dims d = check_backward(op, gy, x, weight, bias, mean, inv_std, Tensor(), Tensor());
  FN_CHECK(coef.defined() && coef.shape() == Shape({d.C, 2}) && coef.dtype() == x.dtype() && !coef.is_cuda(), op,
           ": coef must be (", d.C, ", 2) in x's dtype on the CPU, got ", coef.describe());
  FN_CHECK(gx.defined() && gx.shape() == x.shape() && gx.dtype() == x.dtype() && !gx.is_cuda(), op, ": gx ",
           gx.describe(), " should be shaped as x ", x.describe());
  const bool batch = stats == BatchNormStats::Batch;
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *pg = gy.data<T>(), *px = x.data<T>(), *pc = coef.data<T>();
    const std::vector<Affine<T>> f = affines_of<T>(weight, bias, mean, inv_std);
    std::vector<GradCoef<T>> k;
    for (int64_t c = 0; c < d.C; ++c) k.push_back({f[size_t(c)], pc[2 * c], pc[2 * c + 1]});
    T* pgx = gx.data<T>();
    with_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      parallel_for(d.N * d.C, d, [&](int64_t p) {
        apply_grad<A>(pg + p * d.HW, px + p * d.HW, d.HW, k[size_t(p % d.C)], batch, pgx + p * d.HW);
      });
    });
  });
}

}  // namespace fn::kernels
