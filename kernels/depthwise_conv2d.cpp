// Depthwise convolution: launchers, the CPU reference and the fast CPU path (CUDA side in
// depthwise_conv2d.cu; math in depthwise_conv2d.h, derivations in docs/kernels/depthwise_conv2d.md).
//
// Two fast CPU paths. CpuChannels (Auto; after the plane path below): 8 channels in the lanes of a vector.
// CpuPlanes: 8 neighbouring outputs of one plane in a vector. Its work item: one channel c and a block of B
// images (B from the shape alone: about 4096 scratch elements, so B = 1 at 112x112 and B = 32 at 7x7); the
// block's planes share c's filter.
//   1. Phase split: each input plane is copied, with a zero border of `pad`, into st x st phase planes
//      phase(a, b)[i][j] = xpad[st i + a][st j + b] (Phases). Tap (r, s) of output (p, q) is then
//      phase(r mod st, s mod st)[p + r div st][q + s div st]: for stride 1 and 2 alike, at flat index
//      p * seg + q plus a constant per tap. The block's planes are stacked, so one flat pass over the block
//      computes every output (the rows and columns past P, Q are computed and dropped). The copy is the only
//      strided access: O(H W) against the O(H W R S / st^2) arithmetic.
//   2. Forward: the flat pass with the taps unrolled (conv_rows<R, S, st> for 3x3 and 5x5: a pointer per
//      filter row and phase, the taps at constant displacements, the weights pre-broadcast, a vector of
//      outputs in one register; taps_pass for other sizes). 8 floats per AVX2 instruction.
//   3. Data gradient: the gather form of the scatter. Pixel (h, w) in padded coordinates st i + a, st j + b
//      takes the taps r = a (mod st), s = b (mod st), reading gy[i - (r-a)/st][j - (s-b)/st]; on a copy of gy
//      with a zero border above and left, each of the st^2 output phases is one flat pass like the forward's
//      (for stride 1: the forward with the flipped filter), then written into its pixels of gx.
//   4. Filter gradient: dW[c,r,s] = sum_{n,p,q} gy[n,c,p,q] xpad[st p + r, st q + s]. Per block, each tap keeps
//      one vector register of partial sums (8 floats or 4 doubles): lane i adds the terms at flat index
//      k = i (mod lanes), in increasing k; the lanes are added in order at the end of the block, and the
//      blocks' sums into the channel's total in increasing n. Threads split the channels, never a channel's
//      sum: every sum runs in an order fixed by the shape alone, so the gradient is bitwise the same on 1 or
//      16 threads and from run to run, with no atomics.
//   Threads: forward and data gradient split the (channel, block) items into contiguous ranges
//   (cpu_parallel_ranges); each output belongs to one item and is computed the same way whatever the
//   blocking, so those results depend neither on the thread count nor on the batch size.
// depthwise_conv2d_backward takes both gradients in one pass over gy on the channel path
// (backward_both_channels), with the same results as the two calls. The channel path's compiled kernels leave
// out the taps that read only the zero border (whole filter rows; the columns too for 5x5 at stride 1), which
// changes no bit ("Border rows and columns" below).
// A DwInputNorm (a batch norm with its activation, kernels/batchnorm2d_apply.h) is applied on the channel path
// by the gathers of x (forward and filter gradient), value by value as each 8x8 tile is loaded, before its
// transpose; the other versions convolve a normalised copy (normalised).
#include "kernels/depthwise_conv2d.h"

#include <algorithm>
#include <cstring>
#ifdef __AVX2__
#include <immintrin.h>
#endif
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/batchnorm2d_apply.h"
#include "kernels/gemm.h"
#include "kernels/launch.h"

namespace fn::kernels {

const char* depthwise_algo_name(DepthwiseAlgo a) {
  switch (a) {
    case DepthwiseAlgo::Auto: return "auto";
    case DepthwiseAlgo::Reference: return "reference";
    case DepthwiseAlgo::CpuPlanes: return "cpu_planes";
    case DepthwiseAlgo::CpuChannels: return "cpu_channels";
    case DepthwiseAlgo::V1Naive: return "v1_naive";
    case DepthwiseAlgo::V2Tiled: return "v2_tiled";
    case DepthwiseAlgo::Cudnn: return "cudnn";
  }
  return "?";
}

// The channel-blocked path: measured faster than or equal to the plane path at every Lite0 / MobileNet shape,
// 112x112 included, and 1.5-3x on the small maps and at stride 2 (docs/kernels/depthwise_conv2d.md). The
// plane path stays selectable (and benchmarked); the rule takes the shape so that it can change by shape.
DepthwiseAlgo depthwise_cpu_auto(const DwGeom& g) {
  (void)g;
  return DepthwiseAlgo::CpuChannels;
}

DwGeom depthwise_geom(const Shape& x, const Shape& w, int stride, int pad) {
  FN_CHECK(x.size() == 4 && w.size() == 4, "depthwise_conv2d: x (N,C,H,W) and w (C,1,R,S) expected, got ",
           shape_str(x), " and ", shape_str(w));
  FN_CHECK(w[0] == x[1] && w[1] == 1, "depthwise_conv2d: input has ", x[1], " channels, so the filters must be (",
           x[1], ",1,R,S), got ", shape_str(w));
  FN_CHECK(stride >= 1 && pad >= 0 && pad < w[2] && pad < w[3], "depthwise_conv2d: stride ", stride, " pad ", pad,
           " with a ", w[2], "x", w[3], " filter (0 <= pad < the filter size)");
  DwGeom g{x[0], x[1], x[2], x[3], w[2], w[3], stride, pad, 0, 0};
  FN_CHECK(g.H + 2 * pad >= g.R && g.W + 2 * pad >= g.S, "depthwise_conv2d: filter ", g.R, "x", g.S,
           " larger than padded input ", g.H + 2 * pad, "x", g.W + 2 * pad);
  g.P = (g.H + 2 * pad - g.R) / stride + 1;
  g.Q = (g.W + 2 * pad - g.S) / stride + 1;
  return g;
}

namespace {

// Below this many multiply-adds a call runs on the calling thread: starting threads would cost more.
constexpr double kThreadedMacs = 2e5;

int threads_for(double macs, int64_t items) {
  if (macs < kThreadedMacs) return 1;
  return int(std::max<int64_t>(1, std::min<int64_t>(blas_threads(), items)));
}

// ---------------------------------------------------------------- reference (plain loops)
template <class T>
void forward_ref(const T* x, const T* w, const T* b, T* y, const DwGeom& g, bool relu) {
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          T s = T(0);
          for (int64_t r = 0; r < g.R; ++r)
            for (int64_t t = 0; t < g.S; ++t) {
              const int64_t h = p * g.stride - g.pad + r, ww = q * g.stride - g.pad + t;
              if (h >= 0 && h < g.H && ww >= 0 && ww < g.W)
                s += w[(c * g.R + r) * g.S + t] * x[((n * g.C + c) * g.H + h) * g.W + ww];
            }
          if (b) s += b[c];
          y[((n * g.C + c) * g.P + p) * g.Q + q] = relu && s < T(0) ? T(0) : s;
        }
}

// The scatter form of the data gradient: every output gradient added into the pixels its taps read.
template <class T>
void backward_data_ref(const T* gy, const T* w, T* gx, const DwGeom& g) {
  std::fill(gx, gx + g.N * g.C * g.hw(), T(0));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q)
          for (int64_t r = 0; r < g.R; ++r)
            for (int64_t t = 0; t < g.S; ++t) {
              const int64_t h = p * g.stride - g.pad + r, ww = q * g.stride - g.pad + t;
              if (h >= 0 && h < g.H && ww >= 0 && ww < g.W)
                gx[((n * g.C + c) * g.H + h) * g.W + ww] +=
                    w[(c * g.R + r) * g.S + t] * gy[((n * g.C + c) * g.P + p) * g.Q + q];
            }
}

template <class T>
void backward_filter_ref(const T* x, const T* gy, T* gw, const DwGeom& g) {
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t r = 0; r < g.R; ++r)
      for (int64_t t = 0; t < g.S; ++t) {
        T s = T(0);
        for (int64_t n = 0; n < g.N; ++n)
          for (int64_t p = 0; p < g.P; ++p)
            for (int64_t q = 0; q < g.Q; ++q) {
              const int64_t h = p * g.stride - g.pad + r, ww = q * g.stride - g.pad + t;
              if (h >= 0 && h < g.H && ww >= 0 && ww < g.W)
                s += gy[((n * g.C + c) * g.P + p) * g.Q + q] * x[((n * g.C + c) * g.H + h) * g.W + ww];
            }
        gw[(c * g.R + r) * g.S + t] = s;
      }
}

// ---------------------------------------------------------------- fast path
// Work items: (channel c, a block of B images). The B planes (n, c) share channel c's filter, so they are
// stacked in one scratch buffer and every tap is one flat pass over all of them: a 7x7 map alone would
// give passes of 63 elements, each paying the per-call set-up; B is chosen (by the shape alone) so that a
// block holds about kBlockElems elements. Large maps have B = 1 and passes of whole rows.
constexpr int64_t kBlockElems = 4096;

// The zero-padded input planes of a block, each split into st x st phase planes (step 1 above):
//   phase (a, b), plane m, [i][j] = xpad_m[st i + a][st j + b],
//   i < rows = P + (R-1) div st,  j < seg = Q + (S-1) div st,
// laid out [phase][m][i][j]. Tap (r, s) of output (m, p, q) is then at flat index (m rows + p) seg + q plus
// the tap's offset, the same for every output: one flat pass over the block computes all its outputs (rows
// p >= P and columns q >= Q of each plane are computed and dropped).
struct Phases {
  int64_t st, rows, seg, B;
  int64_t plane() const { return rows * seg; }
  int64_t block() const { return B * plane(); }  // one phase's planes
  // + seg + 8: the dropped columns' reads past the end, and the filter gradient's last whole vector
  int64_t size() const { return st * st * block() + seg + 8; }
  int64_t offset(int64_t r, int64_t s) const { return ((r % st) * st + s % st) * block() + (r / st) * seg + s / st; }
};
Phases input_phases(const DwGeom& g) {
  Phases d{g.stride, g.P + (g.R - 1) / g.stride, g.Q + (g.S - 1) / g.stride, 1};
  d.B = std::max<int64_t>(1, std::min<int64_t>(g.N, kBlockElems / d.plane()));
  return d;
}

// A row copy as a loop: the rows of small maps are 5 to 14 elements, where a call to memcpy costs more than
// the copy (GCC would turn the loop back into that call; the attribute stops it).
template <class T>
__attribute__((optimize("no-tree-loop-distribute-patterns"))) inline void copy_row(T* __restrict dst,
                                                                                   const T* __restrict src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

// Plane m of the block from input plane xp. The caller zeroes the buffer first (the borders).
template <class T>
void fill_phases(const T* xp, const DwGeom& g, const Phases& d, int64_t m, T* buf) {
  const int64_t st = d.st;
  for (int64_t a = 0; a < st; ++a)
    for (int64_t i = 0; i < d.rows; ++i) {
      const int64_t h = st * i + a - g.pad;
      if (h < 0 || h >= g.H) continue;
      const T* src = xp + h * g.W;
      for (int64_t b = 0; b < st; ++b) {
        // Columns j whose pixel w = st j + b - pad lies in the image: [j_lo, j_hi).
        const int64_t j_lo = g.pad - b <= 0 ? 0 : (g.pad - b + st - 1) / st;
        const int64_t j_hi = std::min(d.seg, g.W - 1 + g.pad - b < 0 ? 0 : (g.W - 1 + g.pad - b) / st + 1);
        T* row = buf + (a * st + b) * d.block() + m * d.plane() + i * d.seg;
        if (st == 1) {
          if (j_hi > j_lo) copy_row(row + j_lo, src + j_lo - g.pad, j_hi - j_lo);
        } else {
          const T* s0 = src + b - g.pad;
          for (int64_t j = j_lo; j < j_hi; ++j) row[j] = s0[st * j];
        }
      }
    }
}

// One AVX2 register of T (GCC/Clang vector extension: 8 floats or 4 doubles), for sums kept in registers.
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(32)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(32)));
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr int kVecLanes = int(32 / sizeof(T));
// Whether cb_gather / cb_scatter transpose whole blocks in registers (float on AVX2).
template <class T>
#ifdef __AVX2__
constexpr bool kSimdTranspose = std::is_same_v<T, float>;
#else
constexpr bool kSimdTranspose = false;
#endif
template <class T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The register-blocked pass for the filter sizes that matter (3x3, 5x5 and the data gradient's stride-2
// phases): out[k] = sum_{r < KR, s < KS} wv[r KS + s] * rowp[r ST + s mod ST][k + s div ST], whole vectors
// (out and the rows have room past n). One pointer per filter row and phase, the taps at constant
// displacements from it, and the weights pre-broadcast in memory: a tap costs one load and one FMA with a
// memory operand, where the generic pass (taps_pass) also reloads a spilled pointer per tap.
template <class T, int KR, int KS, int ST>
void conv_rows(T* __restrict out, const T* const* rowp, const Vec<T>* wv, int64_t n) {
  constexpr int L = kVecLanes<T>;
  const T* p[KR * ST];
  for (int i = 0; i < KR * ST; ++i) p[i] = rowp[i];
  for (int64_t k = 0; k < n; k += L) {
    Vec<T> acc = Vec<T>{};
#pragma GCC unroll 5
    for (int r = 0; r < KR; ++r)
#pragma GCC unroll 5
      for (int t = 0; t < KS; ++t) acc += wv[r * KS + t] * load(p[r * ST + t % ST] + k + t / ST);
    std::memcpy(out + k, &acc, sizeof acc);
  }
}
using RowsFn = void (*)(void*, const void* const*, const void*, int64_t);
template <class T, int KR, int KS, int ST>
void conv_rows_erased(void* out, const void* const* rowp, const void* wv, int64_t n) {
  conv_rows<T, KR, KS, ST>(static_cast<T*>(out), reinterpret_cast<const T* const*>(rowp),
                           static_cast<const Vec<T>*>(wv), n);
}
// The register-blocked pass for (KR, KS, ST), or null where only the generic one exists.
template <class T>
RowsFn rows_kernel(int64_t kr, int64_t ks, int64_t st) {
#define FN_DW_ROWS(a, b, c) \
  if (kr == a && ks == b && st == c) return &conv_rows_erased<T, a, b, c>;
  FN_DW_ROWS(3, 3, 1) FN_DW_ROWS(5, 5, 1) FN_DW_ROWS(3, 3, 2) FN_DW_ROWS(5, 5, 2)  // forward, 3x3 and 5x5
  FN_DW_ROWS(1, 1, 1) FN_DW_ROWS(1, 2, 1) FN_DW_ROWS(2, 1, 1) FN_DW_ROWS(2, 2, 1)  // stride-2 phases of the
  FN_DW_ROWS(2, 3, 1) FN_DW_ROWS(3, 2, 1)                                          // data gradient
#undef FN_DW_ROWS
  return nullptr;
}

// out[k] = sum_{t < NS} wt[t] * src[t][k] for k < n: the taps unrolled so that the loop over k vectorises
// with the sum in a register (GCC -O3 -mavx2 -mfma: 8 floats or 4 doubles per instruction, checked with
// -fopt-info-vec).
template <class T, int NS>
void taps_pass(T* __restrict out, const T* const* src, const T* wt, int64_t n) {
  const T* s[NS];
  T w[NS];
  for (int t = 0; t < NS; ++t) s[t] = src[t], w[t] = wt[t];
  for (int64_t k = 0; k < n; ++k) {
    T acc = T(0);
#pragma GCC unroll 32
    for (int t = 0; t < NS; ++t) acc += w[t] * s[t][k];
    out[k] = acc;
  }
}
// Any tap count up to 25 (3x3 and 5x5 filters and their stride-2 phases: 1, 2, 3, 4, 6, 9, 25) unrolled;
// beyond, 25 at a time, added in order.
constexpr int kMaxTaps = 25;
template <class T, size_t... I>
void taps_dispatch(std::index_sequence<I...>, int ns, T* out, const T* const* src, const T* wt, int64_t n) {
  using Fn = void (*)(T*, const T* const*, const T*, int64_t);
  static constexpr Fn fns[] = {&taps_pass<T, int(I) + 1>...};
  fns[ns - 1](out, src, wt, n);
}
template <class T>
void taps(T* out, const T* const* src, const T* wt, int64_t ns, int64_t n, T* tmp) {
  if (ns == 0) return std::fill(out, out + n, T(0));
  taps_dispatch(std::make_index_sequence<kMaxTaps>(), int(std::min<int64_t>(ns, kMaxTaps)), out, src, wt, n);
  for (int64_t t0 = kMaxTaps; t0 < ns; t0 += kMaxTaps) {
    taps_dispatch(std::make_index_sequence<kMaxTaps>(), int(std::min<int64_t>(ns - t0, kMaxTaps)), tmp, src + t0,
                  wt + t0, n);
    for (int64_t k = 0; k < n; ++k) out[k] += tmp[k];
  }
}

// Rows per flat pass: about 2048 elements (8 KB of floats), so the pass's output stays in L1.
int64_t rows_per_chunk(int64_t pitch) { return std::max<int64_t>(1, 2048 / pitch); }

// One thread's scratch, reused across its items.
template <class T>
struct Scratch {
  std::vector<T> in, grad, wide, tmp, wt;
  std::vector<const T*> src;
  std::vector<Vec<T>> wv;  // the filter taps, each broadcast to a vector (conv_rows)
};

double macs(const DwGeom& g) { return double(g.N) * double(g.C) * double(g.pq()) * double(g.rs()); }
template <class T>
Scratch<T> scratch_for(const DwGeom& g);

// Runs item(c, n0, nb) for every (channel, block of images) on `threads` threads, each with its own
// scratch. Items are cut into contiguous ranges, one per thread; every output belongs to one item.
template <class T, class F>
void for_blocks(const DwGeom& g, int64_t B, F&& item) {
  const int64_t per_c = (g.N + B - 1) / B, items = g.C * per_c;
  cpu_parallel_ranges(items, threads_for(macs(g), items), [&](int64_t i0, int64_t i1) {
    Scratch<T> s = scratch_for<T>(g);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t c = i / per_c, n0 = (i % per_c) * B;
      item(c, n0, std::min(B, g.N - n0), s);
    }
  });
}

// The forward of channel c on images n0 .. n0 + nb - 1.
template <class T>
void forward_block(const T* x, const T* wc, T bias, T* y, int64_t c, int64_t n0, int64_t nb, const DwGeom& g,
                   bool relu, const Phases& d, Scratch<T>& s) {
  T* buf = s.in.data();
  std::fill(buf, buf + d.size(), T(0));
  for (int64_t m = 0; m < nb; ++m) fill_phases(x + ((n0 + m) * g.C + c) * g.hw(), g, d, m, buf);
  // Stacked rows m * rows + p; the last plane's rows past P are not needed.
  const int64_t last = (nb - 1) * d.rows + g.P, chunk = rows_per_chunk(d.seg);
  const RowsFn fast = rows_kernel<T>(g.R, g.S, g.stride);
  for (int64_t t = 0; fast && t < g.rs(); ++t) s.wv[size_t(t)] = Vec<T>{} + wc[t];
  for (int64_t r0 = 0; r0 < last; r0 += chunk) {
    const int64_t r1 = std::min(last, r0 + chunk);
    if (fast) {  // a pointer per filter row and column phase
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t ph = 0; ph < g.stride; ++ph) s.src[size_t(r * g.stride + ph)] = buf + d.offset(r, ph) + r0 * d.seg;
      fast(s.wide.data(), reinterpret_cast<const void* const*>(s.src.data()), s.wv.data(), (r1 - r0) * d.seg);
    } else {
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t t = 0; t < g.S; ++t) s.src[size_t(r * g.S + t)] = buf + d.offset(r, t) + r0 * d.seg;
      taps(s.wide.data(), s.src.data(), wc, g.rs(), (r1 - r0) * d.seg, s.tmp.data());
    }
    for (int64_t row = r0; row < r1; ++row) {
      const int64_t m = row / d.rows, p = row % d.rows;
      if (p >= g.P) continue;
      const T* wr = s.wide.data() + (row - r0) * d.seg;
      T* yr = y + ((n0 + m) * g.C + c) * g.pq() + p * g.Q;
      if (relu)
        for (int64_t q = 0; q < g.Q; ++q) yr[q] = wr[q] + bias > T(0) ? wr[q] + bias : T(0);
      else
        for (int64_t q = 0; q < g.Q; ++q) yr[q] = wr[q] + bias;
    }
  }
}

// The data gradient in phases (step 3 above). In padded coordinates, gx_pad[st i + a][st j + b] takes the taps
// r = a (mod st), s = b (mod st), reading gy[i - (r-a)/st][j - (s-b)/st]. On a copy of each gy plane with a
// zero border of bt = (R-1) div st rows above and bl = (S-1) div st columns left (and zeros after), row pitch
// `pitch`, `rows` rows per plane, the block's planes stacked, each phase is one flat pass like the forward's,
// then written into its pixels of gx.
struct GradPhases {
  int64_t bt, bl, pitch, rows, B;
  int64_t size() const { return B * rows * pitch + pitch; }
};
GradPhases grad_phases(const DwGeom& g) {
  GradPhases d;
  d.bt = (g.R - 1) / g.stride;
  d.bl = (g.S - 1) / g.stride;
  const int64_t I = (g.H + g.pad + g.stride - 1) / g.stride, J = (g.W + g.pad + g.stride - 1) / g.stride;
  d.pitch = d.bl + std::max(J, g.Q);
  d.rows = d.bt + std::max(I, g.P) + 1;  // + 1: the dropped columns' reads past a plane's last row
  d.B = std::max<int64_t>(1, std::min<int64_t>(g.N, kBlockElems / (d.rows * d.pitch)));
  return d;
}

template <class T>
void backward_data_block(const T* gy, const T* wc, T* gx, int64_t c, int64_t n0, int64_t nb, const DwGeom& g,
                         const GradPhases& d, Scratch<T>& s) {
  T* buf = s.grad.data();
  std::fill(buf, buf + d.size(), T(0));
  for (int64_t m = 0; m < nb; ++m) {
    const T* gyp = gy + ((n0 + m) * g.C + c) * g.pq();
    for (int64_t p = 0; p < g.P; ++p)
      copy_row(buf + (m * d.rows + p + d.bt) * d.pitch + d.bl, gyp + p * g.Q, g.Q);
  }
  const int64_t st = g.stride, chunk = rows_per_chunk(d.pitch);
  for (int64_t a = 0; a < st; ++a)
    for (int64_t b = 0; b < st; ++b) {
      // Phase rows i and columns j whose pixel h = st i + a - pad, w = st j + b - pad lies in the image.
      if (g.H - 1 + g.pad - a < 0 || g.W - 1 + g.pad - b < 0) continue;  // no pixel in this phase
      const int64_t i_lo = g.pad - a <= 0 ? 0 : (g.pad - a + st - 1) / st, i_hi = (g.H - 1 + g.pad - a) / st + 1;
      const int64_t j_lo = g.pad - b <= 0 ? 0 : (g.pad - b + st - 1) / st, j_hi = (g.W - 1 + g.pad - b) / st + 1;
      int64_t ns = 0;
      for (int64_t r = a; r < g.R; r += st)
        for (int64_t t = b; t < g.S; t += st, ++ns) s.wt[size_t(ns)] = wc[r * g.S + t];
      // The phase's taps: rows r = a + st u (u < nr), columns t = b + st v (v < nc).
      const int64_t nr = (g.R - a + st - 1) / st, nc = (g.S - b + st - 1) / st;
      const RowsFn fast = rows_kernel<T>(nr, nc, 1);
      // conv_rows reads column offsets v' = nc-1-v >= 0 from a pointer nc-1 columns left of the first tap.
      for (int64_t u = 0; fast && u < nr; ++u)
        for (int64_t v = 0; v < nc; ++v)
          s.wv[size_t(u * nc + nc - 1 - v)] = Vec<T>{} + wc[(a + st * u) * g.S + b + st * v];
      // Stacked phase rows m * rows + i, for i in [i_lo, i_hi) of each plane.
      const int64_t first = i_lo, last = (nb - 1) * d.rows + i_hi;
      for (int64_t r0 = first; r0 < last; r0 += chunk) {
        const int64_t r1 = std::min(last, r0 + chunk);
        if (fast) {
          for (int64_t u = 0; u < nr; ++u) s.src[size_t(u)] = buf + (d.bt - u + r0) * d.pitch + d.bl - (nc - 1);
          fast(s.wide.data(), reinterpret_cast<const void* const*>(s.src.data()), s.wv.data(), (r1 - r0) * d.pitch);
        } else {
          int64_t k = 0;
          for (int64_t r = a; r < g.R; r += st)
            for (int64_t t = b; t < g.S; t += st, ++k)
              s.src[size_t(k)] = buf + (d.bt - (r - a) / st + r0) * d.pitch + d.bl - (t - b) / st;
          taps(s.wide.data(), s.src.data(), s.wt.data(), ns, (r1 - r0) * d.pitch, s.tmp.data());
        }
        for (int64_t row = r0; row < r1; ++row) {
          const int64_t m = row / d.rows, i = row % d.rows;
          if (i < i_lo || i >= i_hi) continue;
          T* gxr = gx + ((n0 + m) * g.C + c) * g.hw() + (st * i + a - g.pad) * g.W + b - g.pad;
          const T* wr = s.wide.data() + (row - r0) * d.pitch;
          if (st == 1) copy_row(gxr + j_lo, wr + j_lo, j_hi - j_lo);
          else
            for (int64_t j = j_lo; j < j_hi; ++j) gxr[st * j] = wr[j];
        }
      }
    }
}

// part[t] (lane i) += sum over k = i (mod lanes) of gy[k] * src[t][k], for NS taps; n is a multiple of the
// lane count (the caller pads with zeros).
template <class T, int NS>
void dot_pass(const T* __restrict gy, const T* const* src, Vec<T>* part, int64_t n) {
  constexpr int L = kVecLanes<T>;
  Vec<T> acc[NS];
  const T* s[NS];
#pragma GCC unroll 8
  for (int t = 0; t < NS; ++t) s[t] = src[t], acc[t] = part[t];
  for (int64_t k = 0; k < n; k += L) {
    const Vec<T> gv = load(gy + k);
#pragma GCC unroll 8
    for (int t = 0; t < NS; ++t) acc[t] += gv * load(s[t] + k);
  }
#pragma GCC unroll 8
  for (int t = 0; t < NS; ++t) part[t] = acc[t];
}
template <class T>
void dots(const T* gy, const T* const* src, Vec<T>* part, int64_t ns, int64_t n) {
  switch (ns) {
    case 1: return dot_pass<T, 1>(gy, src, part, n);
    case 3: return dot_pass<T, 3>(gy, src, part, n);
    case 5: return dot_pass<T, 5>(gy, src, part, n);
    case 7: return dot_pass<T, 7>(gy, src, part, n);
    default:
      for (int64_t t = 0; t < ns; ++t) dot_pass<T, 1>(gy, src + t, part + t, n);
  }
}

// Channel c's filter gradient over the whole batch, in the fixed order of step 4. Per block the output
// gradient is laid out like the forward's stacked output rows (zeros in the dropped rows and columns), so one
// flat pass per filter row covers the block.
template <class T>
void backward_filter_channel(const T* x, const T* gy, T* gwc, int64_t c, const DwGeom& g, const Phases& d,
                             Scratch<T>& s) {
  constexpr int L = kVecLanes<T>;
  const int64_t rs = g.rs();
  std::vector<T> total(size_t(rs), T(0));
  std::vector<Vec<T>> part(static_cast<size_t>(rs), Vec<T>{});
  T* buf = s.in.data();
  T* gyw = s.grad.data();
  for (int64_t n0 = 0; n0 < g.N; n0 += d.B) {
    // Flat outputs up to the last plane's row P (its rows past P would read past the buffer), in whole
    // vectors; gyw is 0 past them, so the extra lanes add 0.
    const int64_t nb = std::min(d.B, g.N - n0), n = (((nb - 1) * d.rows + g.P) * d.seg + L - 1) / L * L;
    std::fill(buf, buf + d.size(), T(0));
    std::fill(gyw, gyw + n, T(0));
    for (int64_t m = 0; m < nb; ++m) {
      const int64_t plane = (n0 + m) * g.C + c;
      fill_phases(x + plane * g.hw(), g, d, m, buf);
      for (int64_t p = 0; p < g.P; ++p)
        copy_row(gyw + (m * d.rows + p) * d.seg, gy + plane * g.pq() + p * g.Q, g.Q);
    }
    std::fill(part.begin(), part.end(), Vec<T>{});
    for (int64_t r = 0; r < g.R; ++r) {
      for (int64_t t = 0; t < g.S; ++t) s.src[size_t(t)] = buf + d.offset(r, t);
      dots(gyw, s.src.data(), part.data() + r * g.S, g.S, n);
    }
    for (int64_t t = 0; t < rs; ++t) {
      T sum = T(0);
      for (int i = 0; i < L; ++i) sum += part[size_t(t)][i];
      total[size_t(t)] += sum;
    }
  }
  std::copy(total.begin(), total.end(), gwc);
}

template <class T>
Scratch<T> scratch_for(const DwGeom& g) {
  const Phases d = input_phases(g);
  const GradPhases e = grad_phases(g);
  Scratch<T> s;
  s.in.resize(size_t(d.size()));
  s.grad.resize(size_t(std::max(e.size(), d.block() + 8)));
  const int64_t wide = std::max(rows_per_chunk(d.seg) * d.seg, rows_per_chunk(e.pitch) * e.pitch);
  s.wide.resize(size_t(wide));
  s.tmp.resize(size_t(wide));
  s.wide.resize(s.wide.size() + 8);  // conv_rows writes whole vectors
  s.wt.resize(size_t(g.rs()));
  s.src.resize(size_t(std::max(g.rs(), g.R * g.stride)));
  s.wv.resize(size_t(g.rs()));
  return s;
}

template <class T>
void forward_fast(const T* x, const T* w, const T* b, T* y, const DwGeom& g, bool relu) {
  const Phases d = input_phases(g);
  for_blocks<T>(g, d.B, [&](int64_t c, int64_t n0, int64_t nb, Scratch<T>& s) {
    forward_block(x, w + c * g.rs(), b ? b[c] : T(0), y, c, n0, nb, g, relu, d, s);
  });
}

template <class T>
void backward_data_fast(const T* gy, const T* w, T* gx, const DwGeom& g) {
  const GradPhases e = grad_phases(g);
  for_blocks<T>(g, e.B, [&](int64_t c, int64_t n0, int64_t nb, Scratch<T>& s) {
    backward_data_block(gy, w + c * g.rs(), gx, c, n0, nb, g, e, s);
  });
}

template <class T>
void backward_filter_fast(const T* x, const T* gy, T* gw, const DwGeom& g) {
  const Phases d = input_phases(g);
  cpu_parallel_ranges(g.C, threads_for(macs(g), g.C), [&](int64_t c0, int64_t c1) {
    Scratch<T> s = scratch_for<T>(g);
    for (int64_t c = c0; c < c1; ++c) backward_filter_channel(x, gy, gw + c * g.rs(), c, g, d, s);
  });
}

// ---------------------------------------------------------------- channel-blocked path (Auto)
// On small maps the plane path's flat passes compute 30-60% dropped outputs (the border rows and columns of
// each stacked plane) and spend more on set-up than on arithmetic, and at stride 2 it pays a phase split.
// CpuChannels instead puts L = 8 channels (4 in float64) of one image in the lanes of a vector: the L planes
// are gathered once into an interleaved, zero-bordered buffer xb[hp][wp][lane] (an O(H W L) transpose), and
// every vector operation is then L real
// outputs of L channels, at any stride, with no dropped work. The results go back to the L planes by the
// reverse transpose. Channels past C in the last block are zeros and are never written.
int64_t channel_blocks(const DwGeom& g, int lanes) { return (g.C + lanes - 1) / lanes; }

// The transposes between L planes and one interleaved buffer walk the planes' flat index k = h W + w, L
// positions at a time: for float with a whole block of 8 channels, 8 rows of 8 floats (one per plane) are
// loaded, transposed in registers (transpose8) and stored as 8 vectors, where an element-by-element copy would
// cost 64 scalar loads and stores (measured: as much time as the arithmetic of a 5x5 forward). The ragged
// end, the last block's missing channels and float64 (the gradient checks) take the element loop.
#ifdef __AVX2__
// r[i][j] -> r[j][i] for an 8x8 block of floats.
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(s0, s4, 0x20), r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  r[2] = _mm256_permute2f128_ps(s2, s6, 0x20), r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  r[4] = _mm256_permute2f128_ps(s0, s4, 0x31), r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  r[6] = _mm256_permute2f128_ps(s2, s6, 0x31), r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}
// Loads 8 rows of 8 floats from in[0..7] and stores column j to out[j]: the one step of both directions.
inline void transpose8_move(const float* const in[8], float* const out[8]) {
  __m256 r[8];
  for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(in[i]);
  transpose8(r);
  for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out[j], r[j]);
}
#endif

// A DwInputNorm in x's dtype: channel c's affine (kernels/batchnorm2d_apply.h) and the activation. at(c0): the
// affines of the block from channel c0 on; null without a norm.
template <class T>
struct InputNorm {
  std::vector<Affine<T>> f;
  BatchNormAct act = BatchNormAct::None;
  const Affine<T>* at(int64_t c0) const { return f.empty() ? nullptr : f.data() + c0; }
};
template <class T>
InputNorm<T> input_norm(const DwInputNorm& nm) {
  InputNorm<T> in;
  if (!nm.defined()) return in;
  in.f = affines_of<T>(nm.weight, nm.bias, nm.mean, nm.inv_std);
  in.act = nm.act;
  return in;
}
template <class T>
inline T norm_value(T v, const Affine<T>& f, BatchNormAct act) {
  T r{};
  with_act(act, [&](auto a) { r = output_at<decltype(a)::value>(v, f); });
  return r;
}

// A DwOutputNorm in the gradient's dtype: channel c's batch-norm backward coefficients (kernels/batchnorm2d_apply.h)
// and z, the convolution's output that the batch norm read.
template <class T>
struct OutputNorm {
  std::vector<GradCoef<T>> k;
  const T* z = nullptr;
  BatchNormAct act = BatchNormAct::None;
  bool batch = true;
  const GradCoef<T>* at(int64_t c0) const { return k.empty() ? nullptr : k.data() + c0; }
};
template <class T>
OutputNorm<T> output_norm(const DwOutputNorm& o) {
  OutputNorm<T> out;
  if (!o.defined()) return out;
  const std::vector<Affine<T>> f = affines_of<T>(o.weight, o.bias, o.mean, o.inv_std);
  const T* coef = o.coef.data<T>();
  for (size_t c = 0; c < f.size(); ++c) out.k.push_back({f[c], coef[2 * c], coef[2 * c + 1]});
  out.z = o.z.data<T>();
  out.act = o.act;
  out.batch = o.batch;
  return out;
}

// Visits the flat positions k = h W + w of an H x W plane in order, L at a time while L remain:
// whole(k, off) gets the buffer offsets off[j] = (h + pad) Wp + w + pad of positions k .. k + L - 1, then
// rest(k, off) takes the remaining positions one by one.
template <int L, class Whole, class One>
void cb_walk(int64_t H, int64_t W, int64_t pad, int64_t Wp, bool vector_ok, Whole&& whole, One&& one) {
  int64_t h = 0, w = 0, k = 0;
  const auto next = [&] {
    const int64_t off = (h + pad) * Wp + w + pad;
    if (++w == W) w = 0, ++h;
    return off;
  };
  if (vector_ok)
    for (; k + L <= H * W; k += L) {
      int64_t off[L];
      for (int j = 0; j < L; ++j) off[j] = next();
      whole(k, off);
    }
  for (; k < H * W; ++k) one(k, next());
}

// dst[(h + pad) * Wp + w + pad][lane] = value l = lane, k = h W + w of the block's planes, 0 elsewhere and beyond C:
// row(j, k) gives lanes' values as 8 floats of plane j at k .. k + 7 (whole blocks of float only), one(l, k) a
// single value. dst's border must be zero already: a buffer fresh from std::vector (zeroed) and only ever filled by
// a gather with the same sizes keeps it so, as every caller's scratch is. Zeroing it per item cost 5-8% of f+b
// on a 5x5 map (56 of its 81 pixels are border).
template <class T, class Row, class One>
void cb_gather_by(int64_t C, int64_t c0, int64_t H, int64_t W, int64_t pad, int64_t Hp, int64_t Wp, T* dst, Row&& row,
                  One&& one) {
  constexpr int L = kVecLanes<T>;
  const int64_t nl = std::min<int64_t>(L, C - c0);
  // The lanes past C: zeroed, though never written out, so that no stale value a full block left there (a
  // denormal product costs some 100 cycles) runs through their arithmetic.
  if (nl < L) std::fill(dst, dst + Hp * Wp * L, T(0));
  cb_walk<L>(
      H, W, pad, Wp, kSimdTranspose<T> && nl == L,
      [&](int64_t k, const int64_t* off) {
#ifdef __AVX2__
        if constexpr (kSimdTranspose<T>) {
          __m256 r[8];
          for (int j = 0; j < 8; ++j) r[j] = row(j, k);
          transpose8(r);
          for (int j = 0; j < 8; ++j) _mm256_storeu_ps(dst + off[j] * L, r[j]);
        }
#endif
      },
      [&](int64_t k, int64_t off) {
        for (int64_t l = 0; l < nl; ++l) dst[off * L + l] = one(l, k);
      });
}
// Plane (n, c0 + lane) of t (H x W), gathered. f (DwInputNorm; null: none): plane c0 + l is normalised by f[l]
// as it is read, act(fma(v - m, a, b)), the batch norm's own instructions and so its output's bits; the border
// stays zero (it pads the normalised map).
template <class T>
void cb_gather(const T* t, int64_t C, int64_t n, int64_t c0, int64_t H, int64_t W, int64_t pad, int64_t Hp,
               int64_t Wp, T* dst, const Affine<T>* f = nullptr, BatchNormAct act = BatchNormAct::None) {
  const int64_t hw = H * W;
  const T* src = t + (n * C + c0) * hw;
#ifdef __AVX2__
  const auto plain = [&](auto j, int64_t k) { return _mm256_loadu_ps(src + j * hw + k); };
#else
  const auto plain = [&](auto j, int64_t k) { return load(src + j * hw + k); };
#endif
  if (!f)
    return cb_gather_by(C, c0, H, W, pad, Hp, Wp, dst, plain, [&](int64_t l, int64_t k) { return src[l * hw + k]; });
#ifdef __AVX2__
  AffineV fv[8];
  if constexpr (kSimdTranspose<T>)
    for (int64_t l = 0; l < std::min<int64_t>(8, C - c0); ++l) fv[l] = AffineV(f[l]);
#endif
  with_act(act, [&](auto a) {
    constexpr BatchNormAct A = decltype(a)::value;
    cb_gather_by(
        C, c0, H, W, pad, Hp, Wp, dst,
        [&](auto j, int64_t k) {
#ifdef __AVX2__
          return output_at<A>(plain(j, k), fv[j]);
#else
          return plain(j, k);
#endif
        },
        [&](int64_t l, int64_t k) { return output_at<A>(src[l * hw + k], f[l]); });
  });
}
// The gradient of a batch norm's input z from its output's gradient g (DwOutputNorm), formed for plane c0 + l
// by k[l] as g and z are read (grad_at: the batch norm's backward's own instructions and so its gx's bits).
template <class T>
void cb_gather_grad(const T* g, const OutputNorm<T>& on, int64_t C, int64_t n, int64_t c0, int64_t H, int64_t W,
                    int64_t pad, int64_t Hp, int64_t Wp, T* dst) {
  const int64_t hw = H * W, o = (n * C + c0) * hw;
  const T *gs = g + o, *zs = on.z + o;
  const GradCoef<T>* k = on.at(c0);
#ifdef __AVX2__
  GradCoefV kv[8];
  if constexpr (kSimdTranspose<T>)
    for (int64_t l = 0; l < std::min<int64_t>(8, C - c0); ++l) kv[l] = GradCoefV(k[l]);
#endif
  with_act(on.act, [&](auto a) {
    constexpr BatchNormAct A = decltype(a)::value;
    const auto by = [&](auto batch) {
      constexpr bool B = decltype(batch)::value;
      cb_gather_by(
          C, c0, H, W, pad, Hp, Wp, dst,
          [&](auto j, int64_t p) {
#ifdef __AVX2__
            return grad_at<A, B>(_mm256_loadu_ps(gs + j * hw + p), _mm256_loadu_ps(zs + j * hw + p), kv[j]);
#else
            return load(gs + j * hw + p);
#endif
          },
          [&](int64_t l, int64_t p) { return grad_at<A, B>(gs[l * hw + p], zs[l * hw + p], k[l]); });
    };
    on.batch ? by(std::true_type{}) : by(std::false_type{});
  });
}
// Plane (n, c0 + lane) of t (H x W) = src[(h + pad) * Wp + w + pad][lane], lanes below C only.
template <class T>
void cb_scatter(const T* src, int64_t C, int64_t n, int64_t c0, int64_t H, int64_t W, int64_t pad, int64_t Wp, T* t) {
  constexpr int L = kVecLanes<T>;
  const int64_t nl = std::min<int64_t>(L, C - c0), hw = H * W;
  T* dst = t + (n * C + c0) * hw;
  cb_walk<L>(
      H, W, pad, Wp, kSimdTranspose<T> && nl == L,
      [&](int64_t k, const int64_t* off) {
#ifdef __AVX2__
        if constexpr (kSimdTranspose<T>) {
          const float* lanes[8];
          float* planes[8];
          for (int j = 0; j < 8; ++j) lanes[j] = src + off[j] * L, planes[j] = dst + j * hw + k;
          transpose8_move(lanes, planes);
        }
#endif
      },
      [&](int64_t k, int64_t off) {
        for (int64_t l = 0; l < nl; ++l) dst[l * hw + k] = src[off * L + l];
      });
}
inline void store_vec(float* p, Vec<float> v) { std::memcpy(p, &v, sizeof v); }
inline void store_vec(double* p, Vec<double> v) { std::memcpy(p, &v, sizeof v); }

// Every channel block's filter vectors, gathered once per call: block b's tap t is wv[b rs + t], lane l
// channel b L + l's tap (zeros beyond C). Per (image, block) item, the gather of a 5x5 filter's 200 scalars
// cost as much as a third of its arithmetic on a 5x5 map.
template <class T>
std::vector<Vec<T>> cb_weight_table(const T* w, const DwGeom& g) {
  constexpr int L = kVecLanes<T>;
  const int64_t rs = g.rs();
  std::vector<Vec<T>> wv(size_t(channel_blocks(g, L) * rs), Vec<T>{});
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t t = 0; t < rs; ++t) wv[size_t(c / L * rs + t)][c % L] = w[c * rs + t];
  return wv;
}

struct CbDims {
  int64_t Hp, Wp;  // the zero-bordered input (or data-gradient) buffer
};
CbDims cb_dims(const DwGeom& g) { return {g.H + 2 * g.pad, g.W + 2 * g.pad}; }

// Runs item(n, c0, xb, yb, wv) for every (image, channel block) on the threads; every output belongs to one
// item. wv: the block's filter vectors of w (cb_weight_table). The scratch: xb of xb_pixels vectors and yb of
// yb_pixels (0: the padded input's and the larger map's).
template <class T, class F>
void for_channel_blocks(const DwGeom& g, const T* w, F&& item, int64_t xb_pixels = 0, int64_t yb_pixels = 0) {
  constexpr int L = kVecLanes<T>;
  const CbDims d = cb_dims(g);
  const int64_t cbs = channel_blocks(g, L), items = g.N * cbs;
  if (xb_pixels == 0) xb_pixels = d.Hp * d.Wp;
  if (yb_pixels == 0) yb_pixels = std::max(g.pq(), g.hw());
  const std::vector<Vec<T>> wv = cb_weight_table(w, g);
  cpu_parallel_ranges(items, threads_for(macs(g), items), [&](int64_t i0, int64_t i1) {
    std::vector<T> xb(size_t(xb_pixels * L)), yb(size_t(yb_pixels * L));
    for (int64_t i = i0; i < i1; ++i) item(i / cbs, (i % cbs) * L, xb.data(), yb.data(), wv.data() + i % cbs * g.rs());
  });
}

// Calls f(K, ST) with K, ST as std::integral_constant for the shapes with compiled kernels (square 3x3 and
// 5x5 filters at stride 1 and 2: every Lite0 / MobileNet layer) and returns true; false for the others, which
// take the loops with run-time sizes.
template <int V>
using Int = std::integral_constant<int, V>;
template <class F>
bool with_fixed_size(int64_t R, int64_t S, int64_t stride, F&& f) {
  if (R != S || (R != 3 && R != 5) || (stride != 1 && stride != 2)) return false;
  if (R == 3) stride == 1 ? f(Int<3>{}, Int<1>{}) : f(Int<3>{}, Int<2>{});
  else stride == 1 ? f(Int<5>{}, Int<1>{}) : f(Int<5>{}, Int<2>{});
  return true;
}

// Border rows and columns. A tap that reads the zero border adds an exact zero: fma(w, 0, a) = a for finite w,
// and a sum that starts at +0 never becomes -0, so leaving such a tap out changes no bit of the result. The
// compiled passes leave out the filter rows that fall wholly in the border (forward: per output row; filter
// gradient: per output row and pass; stride-2 data gradient: per row of g): 24% of a 5x5 filter's taps on a
// 5x5 map, 12% on a 10x10 one. Columns, only where it pays: 5x5 filters at stride 1 with pad 2 (the forward
// and, through it, the stride-1 data gradient: the first and last row blocks compiled without their two
// border columns; the filter gradient: the first and last two outputs of a row without their border taps).
// A run-time test per input column instead cost what it saved (measured).
//
// The outputs of one channel block: yb[p][q] = bias + sum_{r,s} wv[r S + s] * xb[st p + r][st q + s], each
// output's taps added in the order (r, s).
// K x K at stride ST, compiled: NQ outputs of a row at a time (NQ independent FMA chains hide the FMA latency).
// For each filter row the row's K weights go to registers and the NX input vectors the NQ outputs read are
// loaded once each and added into every output that uses them (x_i feeds output j through tap s = i - ST j), so
// a tap costs one FMA and no load of its own. Left to itself GCC kept a spilled pointer per tap, reloaded
// before each FMA (measured: 2x slower at 5x5). Filter rows r0 .. r1 - 1 only, and the input vectors from LEAD
// to NX - TRAIL (the border left out).
template <class T, int K, int ST, int NQ, int LEAD = 0, int TRAIL = 0>
inline void cb_forward_outputs(const T* xb, int64_t Wp, const Vec<T>* wv, Vec<T> bias, int64_t p, int64_t q,
                               int64_t Q, T* yb, int r0, int r1) {
  constexpr int L = kVecLanes<T>, NX = (NQ - 1) * ST + K;
  Vec<T> a[NQ] = {};
#pragma GCC unroll 5
  for (int r = r0; r < r1; ++r) {
    const T* row = xb + ((ST * p + r) * Wp + ST * q) * L;
    Vec<T> wr[K];
    for (int s = 0; s < K; ++s) wr[s] = wv[r * K + s];
#pragma GCC unroll 19
    for (int i = LEAD; i < NX - TRAIL; ++i) {
      const Vec<T> x = load(row + i * L);
#pragma GCC unroll 8
      for (int j = 0; j < NQ; ++j)
        if (i - ST * j >= 0 && i - ST * j < K) a[j] += wr[i - ST * j] * x;
    }
  }
  for (int j = 0; j < NQ; ++j) store_vec(yb + (p * Q + q + j) * L, a[j] + bias);
}
// Any filter size and stride, sizes at run time: one output at a time, the taps in the order (r, s).
template <class T>
void cb_forward_any(const T* xb, int64_t Wp, const Vec<T>* wv, Vec<T> bias, const DwGeom& g, T* yb) {
  constexpr int L = kVecLanes<T>;
  const int64_t R = g.R, S = g.S, st = g.stride;
  for (int64_t p = 0; p < g.P; ++p)
    for (int64_t q = 0; q < g.Q; ++q) {
      Vec<T> a = Vec<T>{};
      for (int64_t r = 0; r < R; ++r)
        for (int64_t s = 0; s < S; ++s) a += wv[r * S + s] * load(xb + ((st * p + r) * Wp + st * q + s) * L);
      store_vec(yb + (p * g.Q + q) * L, a + bias);
    }
}

// The block width NQ (4 to 8) is the one that computes the fewest outputs for a row of Q (the larger on a tie):
// 7 for 14 and 28, 5 for 10 and 20, 8 for 56 and 112, Q itself below 8. With 8 chains and a 5x5 row's weights,
// 14 of the 16 AVX2 registers are busy. A ragged end is one more block, moved back to end at Q: its first outputs
// are computed again, the same way, to the same bits (one output at a time would be a single 25-FMA chain,
// latency-bound).
int block_width(int64_t Q) {
  int best = 8;
  for (int nq = 8; nq >= 4; --nq)
    if ((Q + nq - 1) / nq * nq < (Q + best - 1) / best * best) best = nq;
  return best;
}
template <class T, int K, int ST>
void cb_forward_fixed(const T* xb, int64_t Wp, const Vec<T>* wv, Vec<T> bias, const DwGeom& g, T* yb) {
  const auto rows = [&](auto nq) {
    constexpr int NQ = decltype(nq)::value;
    for (int64_t p = 0; p < g.P; ++p) {
      const int r0 = int(std::max<int64_t>(0, g.pad - ST * p)), r1 = int(std::min<int64_t>(K, g.pad + g.H - ST * p));
      for (int64_t q0 = 0; q0 < g.Q; q0 += NQ) {
        const int64_t q = std::min(q0, g.Q - NQ);
        if constexpr (ST == 1 && K == 5) {  // the border columns (see "Border rows and columns")
          if (g.pad == K / 2) {
            constexpr int B = K / 2;
            const bool left = q == 0, right = q == g.Q - NQ;
            if (left && right) cb_forward_outputs<T, K, ST, NQ, B, B>(xb, Wp, wv, bias, p, q, g.Q, yb, r0, r1);
            else if (left) cb_forward_outputs<T, K, ST, NQ, B, 0>(xb, Wp, wv, bias, p, q, g.Q, yb, r0, r1);
            else if (right) cb_forward_outputs<T, K, ST, NQ, 0, B>(xb, Wp, wv, bias, p, q, g.Q, yb, r0, r1);
            else cb_forward_outputs<T, K, ST, NQ>(xb, Wp, wv, bias, p, q, g.Q, yb, r0, r1);
            continue;
          }
        }
        cb_forward_outputs<T, K, ST, NQ>(xb, Wp, wv, bias, p, q, g.Q, yb, r0, r1);
      }
    }
  };
  if (g.Q >= 4) switch (block_width(g.Q)) {
      case 8: return rows(Int<8>{});
      case 7: return rows(Int<7>{});
      case 6: return rows(Int<6>{});
      case 5: return rows(Int<5>{});
      default: return rows(Int<4>{});
    }
  cb_forward_any(xb, Wp, wv, bias, g, yb);  // rows of 1 to 3 outputs
}

template <class T>
void forward_channels(const T* x, const T* w, const T* b, T* y, const DwGeom& g, bool relu,
                      const InputNorm<T>& nm = {}) {
  constexpr int L = kVecLanes<T>;
  const CbDims d = cb_dims(g);
  for_channel_blocks<T>(g, w, [&](int64_t n, int64_t c0, T* xb, T* yb, const Vec<T>* wv) {
    cb_gather(x, g.C, n, c0, g.H, g.W, g.pad, d.Hp, d.Wp, xb, nm.at(c0), nm.act);
    Vec<T> bias = Vec<T>{};
    for (int64_t l = 0; b && l < std::min<int64_t>(L, g.C - c0); ++l) bias[l] = b[c0 + l];
    if (!with_fixed_size(g.R, g.S, g.stride, [&](auto k, auto st) {
          cb_forward_fixed<T, decltype(k)::value, decltype(st)::value>(xb, d.Wp, wv, bias, g, yb);
        }))
      cb_forward_any(xb, d.Wp, wv, bias, g, yb);
    if (relu)
      for (int64_t i = 0; i < g.pq() * L; ++i) yb[i] = yb[i] > T(0) ? yb[i] : T(0);
    cb_scatter(yb, g.C, n, c0, g.P, g.Q, 0, g.Q, y);
  });
}

// The stride-2 data gradient of one row h of a channel block, gathered: pixel w of the zero-padded input at
// h' = h + pad = 2 i + A, w' = w + pad = 2 j + B takes the taps r = A + 2u, s = B + 2v only, reading
// g[i - u][j - v], so
//   gx[h][w] = sum_{u < NU, v < NV} W[A + 2u][B + 2v] * g[i - u][j - v]     (NU = (K - A + 1) / 2, NV likewise)
// in the order (u, v): a small correlation of g with the phase's sub-filter (3x3: 2x2, 2x1, 1x2, 1x1; 5x5: 3x3 to
// 2x2). gyb holds g with a zero border of `bd` on every side (Wq columns), so no tap tests a bound. Pixels
// j .. j + 3 of the phase are computed together as in cb_forward_fixed (a ragged end: the block moved back).
template <class T, int K, int A, int B>
void cb_data_s2_row(const T* gyb, int64_t Wq, int64_t bd, const Vec<T>* wv, int64_t i, int64_t pad, int64_t W,
                    int64_t P, T* gx_row) {
  constexpr int L = kVecLanes<T>, NU = (K - A + 1) / 2, NV = (K - B + 1) / 2, NM = 4, NX = NM - 1 + NV;
  // Rows u0 .. u1 - 1 read g's rows 0 .. P - 1; the others its zero border: skipped.
  const int u0 = int(std::max<int64_t>(0, i - P + 1)), u1 = int(std::min<int64_t>(NU, i + 1));
  const int64_t last = W - 1 + pad - B;  // w < W: j <= last / 2
  const int64_t j0 = (pad - B + 1) / 2, j1 = last < 0 ? 0 : last / 2 + 1;
  const auto col = [&](int64_t j) { return (2 * j + B - pad) * L; };
  int64_t j = j0;
  for (; j < j1 && j1 - j0 >= NM; j += NM) {
    j = std::min(j, j1 - NM);
    Vec<T> a[NM] = {};
#pragma GCC unroll 3
    for (int u = u0; u < u1; ++u) {
      const T* row = gyb + ((i - u + bd) * Wq + j + bd - (NV - 1)) * L;  // column j - (NV - 1) of g
#pragma GCC unroll 6
      for (int k = NX - 1; k >= 0; --k) {  // g[i - u][j + k - (NV - 1)]: output m takes it as tap v = m + NV - 1 - k
        const Vec<T> x = load(row + k * L);
#pragma GCC unroll 4
        for (int m = 0; m < NM; ++m)
          if (m + NV - 1 - k >= 0 && m + NV - 1 - k < NV) a[m] += wv[(A + 2 * u) * K + B + 2 * (m + NV - 1 - k)] * x;
      }
    }
    for (int m = 0; m < NM; ++m) store_vec(gx_row + col(j + m), a[m]);
  }
  for (; j < j1; ++j) {
    Vec<T> a = Vec<T>{};
    for (int u = u0; u < u1; ++u)
      for (int v = 0; v < NV; ++v) a += wv[(A + 2 * u) * K + B + 2 * v] * load(gyb + ((i - u + bd) * Wq + j - v + bd) * L);
    store_vec(gx_row + col(j), a);
  }
}

// The stride-2 data gradient of a channel block, gxb (H x W) from gyb (g with a zero border of K on every
// side, Wq columns): every row's two column phases (cb_data_s2_row).
template <class T, int K>
void cb_data_s2_block(const T* gyb, int64_t Wq, const Vec<T>* wv, const DwGeom& g, T* gxb) {
  constexpr int L = kVecLanes<T>;
  for (int64_t h = 0; h < g.H; ++h) {
    const int64_t i = (h + g.pad) / 2;
    T* row = gxb + h * g.W * L;
    if ((h + g.pad) % 2 == 0) {
      cb_data_s2_row<T, K, 0, 0>(gyb, Wq, K, wv, i, g.pad, g.W, g.P, row);
      cb_data_s2_row<T, K, 0, 1>(gyb, Wq, K, wv, i, g.pad, g.W, g.P, row);
    } else {
      cb_data_s2_row<T, K, 1, 0>(gyb, Wq, K, wv, i, g.pad, g.W, g.P, row);
      cb_data_s2_row<T, K, 1, 1>(gyb, Wq, K, wv, i, g.pad, g.W, g.P, row);
    }
  }
}

// The stride-2 data gradient of a K x K filter: per channel block, g with its border, then cb_data_s2_block.
template <class T, int K>
void backward_data_s2_channels(const T* gy, const T* w, T* gx, const DwGeom& g) {
  const int64_t bd = K, Wq = g.Q + 2 * bd;  // a border no tap reaches past (i <= P - 1 + (K - 1) / 2)
  for_channel_blocks<T>(
      g, w,
      [&](int64_t n, int64_t c0, T* gxb, T* gyb, const Vec<T>* wv) {
        cb_gather(gy, g.C, n, c0, g.P, g.Q, bd, g.P + 2 * bd, Wq, gyb);
        cb_data_s2_block<T, K>(gyb, Wq, wv, g, gxb);
        cb_scatter(gxb, g.C, n, c0, g.H, g.W, 0, g.W, gx);
      },
      g.hw(), (g.P + 2 * bd) * Wq);
}

// Each channel's filter turned by 180 degrees: W'[r][s] = W[R-1-r][S-1-s].
template <class T>
std::vector<T> flipped_filters(const T* w, const DwGeom& g) {
  std::vector<T> f(size_t(g.C * g.rs()));
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t t = 0; t < g.rs(); ++t) f[size_t(c * g.rs() + g.rs() - 1 - t)] = w[c * g.rs() + t];
  return f;
}

// The data gradient. Stride 1 (square filter): the forward of gy with the flipped filter and pad R-1-pad,
// which gives back H x W. Stride 2 with a 3x3 or 5x5 filter: the phase gather of cb_data_s2_row. Other filters
// and strides: the scatter, vector-wide: each output gradient vector adds W * g into the R x S pixels its taps
// read, in the order (p, q, r, s): a fixed order, so the result repeats bitwise (its read-modify-writes cost
// 2-3x the gather, measured).
template <class T>
void backward_data_channels(const T* gy, const T* w, T* gx, const DwGeom& g) {
  constexpr int L = kVecLanes<T>;
  if (g.stride == 1 && g.R == g.S) {
    const DwGeom gt{g.N, g.C, g.P, g.Q, g.R, g.S, 1, g.R - 1 - g.pad, g.H, g.W};
    return forward_channels<T>(gy, flipped_filters(w, g).data(), nullptr, gx, gt, false);
  }
  if (g.stride == 2 && with_fixed_size(g.R, g.S, g.stride, [&](auto k, auto) {
        backward_data_s2_channels<T, decltype(k)::value>(gy, w, gx, g);
      }))
    return;
  const CbDims d = cb_dims(g);
  for_channel_blocks<T>(g, w, [&](int64_t n, int64_t c0, T* gxb, T* gyb, const Vec<T>* wv) {
    cb_gather(gy, g.C, n, c0, g.P, g.Q, 0, g.P, g.Q, gyb);
    std::fill(gxb, gxb + d.Hp * d.Wp * L, T(0));
    for (int64_t p = 0; p < g.P; ++p)
      for (int64_t q = 0; q < g.Q; ++q) {
        const Vec<T> gv = load(gyb + (p * g.Q + q) * L);
        for (int64_t r = 0; r < g.R; ++r) {
          T* row = gxb + ((g.stride * p + r) * d.Wp + g.stride * q) * L;
          for (int64_t s = 0; s < g.S; ++s) store_vec(row + s * L, load(row + s * L) + wv[r * g.S + s] * gv);
        }
      }
    cb_scatter(gxb, g.C, n, c0, g.H, g.W, g.pad, d.Wp, gx);
  });
}

// acc[r S + s] += sum_{p,q} gyb[p][q] * xb[st p + r][st q + s], each sum in increasing (p, q); gyb's rows are
// gp vectors apart (Q, or more when gyb is the inside of a zero-bordered buffer: backward_both_channels).
// K x K at stride ST, compiled: the filter rows in passes of NR rows whose NR K sums stay in registers for the
// whole image (at most 12 of the 16 AVX2 registers: all 9 of a 3x3 in one pass, a 5x5's rows in passes of
// 2, 2, 1; its 25 sums at once spilled to the stack, a load and a store around each FMA). Each sum still adds
// its terms in the order (p, q), so the passes change no result.
template <class T, int K, int ST, int R0, int NR>
void cb_filter_rows(const T* xb, int64_t Wp, const T* gyb, int64_t gp, const DwGeom& g, Vec<T>* acc) {
  constexpr int L = kVecLanes<T>;
  Vec<T> a[NR * K];
  // Both copies unrolled: as loops GCC made each a rep movsq through a stack copy of the sums, per image and
  // pass (perf at 1152 x 5x5, 5x5 filter: this function's share of f+b 31% -> 17%).
#pragma GCC unroll 15
  for (int t = 0; t < NR * K; ++t) a[t] = acc[R0 * K + t];
  for (int64_t p = 0; p < g.P; ++p) {
    // The pass's rows r0 .. r1 - 1 read the input's rows, the others its zero border: skipped.
    const int64_t h = ST * p + R0 - g.pad;
    const int r0 = int(std::clamp<int64_t>(-h, 0, NR)), r1 = int(std::clamp<int64_t>(g.H - h, 0, NR));
    if (r0 >= r1) continue;
    // Output q's terms, taps s in [S0, K - S1) (the others read the border).
    const auto output = [&](int64_t q, auto s0, auto s1) {
      constexpr int S0 = decltype(s0)::value, S1 = decltype(s1)::value;
      const Vec<T> gv = load(gyb + (p * gp + q) * L);
#pragma GCC unroll 5
      for (int r = 0; r < NR; ++r) {
        if (r < r0 || r >= r1) continue;
        const T* row = xb + ((ST * p + R0 + r) * Wp + ST * q) * L;
#pragma GCC unroll 5
        for (int s = S0; s < K - S1; ++s) a[r * K + s] += gv * load(row + s * L);
      }
    };
    if constexpr (ST == 1 && K == 5) {  // the border columns (see "Border rows and columns")
      if (g.pad == 2 && g.Q == g.W && g.Q >= 4) {
        output(0, Int<2>{}, Int<0>{});
        output(1, Int<1>{}, Int<0>{});
        for (int64_t q = 2; q < g.Q - 2; ++q) output(q, Int<0>{}, Int<0>{});
        output(g.Q - 2, Int<0>{}, Int<1>{});
        output(g.Q - 1, Int<0>{}, Int<2>{});
        continue;
      }
    }
    for (int64_t q = 0; q < g.Q; ++q) output(q, Int<0>{}, Int<0>{});
  }
#pragma GCC unroll 15
  for (int t = 0; t < NR * K; ++t) acc[R0 * K + t] = a[t];
}
template <class T, int K, int ST, int R0 = 0>
void cb_filter_fixed(const T* xb, int64_t Wp, const T* gyb, int64_t gp, const DwGeom& g, Vec<T>* acc) {
  constexpr int kRows = 12 / K, NR = K - R0 < kRows ? K - R0 : kRows;
  cb_filter_rows<T, K, ST, R0, NR>(xb, Wp, gyb, gp, g, acc);
  if constexpr (R0 + NR < K) cb_filter_fixed<T, K, ST, R0 + NR>(xb, Wp, gyb, gp, g, acc);
}
// Any filter size and stride, sizes at run time: the same sums in the same order.
template <class T>
void cb_filter_any(const T* xb, int64_t Wp, const T* gyb, int64_t gp, const DwGeom& g, Vec<T>* acc) {
  constexpr int L = kVecLanes<T>;
  for (int64_t p = 0; p < g.P; ++p)
    for (int64_t q = 0; q < g.Q; ++q) {
      const Vec<T> gv = load(gyb + (p * gp + q) * L);
      for (int64_t r = 0; r < g.R; ++r) {
        const T* row = xb + ((g.stride * p + r) * Wp + g.stride * q) * L;
        for (int64_t s = 0; s < g.S; ++s) acc[r * g.S + s] += gv * load(row + s * L);
      }
    }
}

// One image's terms of a channel block's filter gradient, added into acc: compiled for 3x3 and 5x5.
template <class T>
void cb_filter(const T* xb, int64_t Wp, const T* gyb, int64_t gp, const DwGeom& g, Vec<T>* acc) {
  if (!with_fixed_size(g.R, g.S, g.stride, [&](auto k, auto st) {
        cb_filter_fixed<T, decltype(k)::value, decltype(st)::value>(xb, Wp, gyb, gp, g, acc);
      }))
    cb_filter_any(xb, Wp, gyb, gp, g, acc);
}
// gw of channel blocks b0 .. b1 - 1 from their sums (acc: rs vectors a block), lanes below C only.
template <class T>
void cb_filter_store(const Vec<T>* acc, int64_t b0, int64_t b1, const DwGeom& g, T* gw) {
  constexpr int L = kVecLanes<T>;
  const int64_t rs = g.rs();
  for (int64_t cb = b0; cb < b1; ++cb)
    for (int64_t l = 0; l < std::min<int64_t>(L, g.C - cb * L); ++l)
      for (int64_t t = 0; t < rs; ++t) gw[(cb * L + l) * rs + t] = acc[(cb - b0) * rs + t][l];
}

// The filter gradient of a channel block: lane l of tap t's vector is channel c0 + l's sum, added in the order
// (n, p, q): one sequential sum per channel, in an order fixed by the shape. Threads split the channel blocks
// into contiguous ranges; a thread walks its range image by image (n outer), holding every block's sums, so
// that it reads x and gy in long contiguous runs (block by block with n inside, each image's 8 planes are a
// 6 KB run: the gathers took 20% longer, measured). Each channel's sum keeps the order (n, p, q) either way.
template <class T>
void backward_filter_channels(const T* x, const T* gy, T* gw, const DwGeom& g, const InputNorm<T>& nm) {
  constexpr int L = kVecLanes<T>;
  const CbDims d = cb_dims(g);
  const int64_t cbs = channel_blocks(g, L), rs = g.rs();
  cpu_parallel_ranges(cbs, threads_for(macs(g), cbs), [&](int64_t b0, int64_t b1) {
    std::vector<T> xb(size_t(d.Hp * d.Wp * L)), gyb(size_t(g.pq() * L));
    std::vector<Vec<T>> acc(size_t((b1 - b0) * rs), Vec<T>{});
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t cb = b0; cb < b1; ++cb) {
        Vec<T>* a = acc.data() + (cb - b0) * rs;
        cb_gather(x, g.C, n, cb * L, g.H, g.W, g.pad, d.Hp, d.Wp, xb.data(), nm.at(cb * L), nm.act);
        cb_gather(gy, g.C, n, cb * L, g.P, g.Q, 0, g.P, g.Q, gyb.data());
        cb_filter(xb.data(), d.Wp, gyb.data(), g.Q, g, a);
      }
    cb_filter_store(acc.data(), b0, b1, g, gw);
  });
}

// Whether backward_both_channels takes this shape: the data gradients that gather gy into a bordered buffer,
// stride 1 with a square filter (a forward with the flipped filter) and stride 2 with 3x3 or 5x5 (the phase
// gather); the scatter of the other shapes reads gy once anyway.
bool one_pass_backward(const DwGeom& g) {
  return g.R == g.S && (g.stride == 1 || with_fixed_size(g.R, g.S, g.stride, [](auto, auto) {}));
}

// The data and the filter gradient together, bitwise the same as the two functions above, with one gather of
// gy instead of two: the data gradient (backward_data_channels) and the filter gradient read the same channel
// block of gy, so it is gathered once, with the data gradient's zero border (stride 1: R-1-pad; stride 2: K),
// and the filter gradient reads its inside. The work is split as the filter gradient's is (a thread's range
// of channel blocks, image by image): each sum keeps its order and each pixel of gx is computed as the data
// gradient computes it. On the small maps, where both passes stream memory at about the copy's rate, one
// read of gy fewer is a sixth of the traffic of forward + backward.
template <class T>
void backward_both_channels(const T* x, const T* gy, const T* w, T* gx, T* gw, const DwGeom& g,
                            const InputNorm<T>& nm, const OutputNorm<T>& on) {
  constexpr int L = kVecLanes<T>;
  const CbDims d = cb_dims(g);
  const bool s1 = g.stride == 1;
  const int64_t cbs = channel_blocks(g, L), rs = g.rs(), bd = s1 ? g.R - 1 - g.pad : g.R;
  const DwGeom gt{g.N, g.C, g.P, g.Q, g.R, g.S, 1, bd, g.H, g.W};  // stride 1: the data gradient as a forward
  const int64_t Hg = g.P + 2 * bd, Wg = g.Q + 2 * bd;
  const std::vector<Vec<T>> wvs = cb_weight_table(s1 ? flipped_filters(w, g).data() : w, g);
  cpu_parallel_ranges(cbs, threads_for(2 * macs(g), cbs), [&](int64_t b0, int64_t b1) {
    std::vector<T> xb(size_t(d.Hp * d.Wp * L)), gyb(size_t(Hg * Wg * L)), gxb(size_t(g.hw() * L));
    std::vector<Vec<T>> acc(size_t((b1 - b0) * rs), Vec<T>{});
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t cb = b0; cb < b1; ++cb) {
        const Vec<T>* wv = wvs.data() + cb * rs;
        if (on.z) cb_gather_grad(gy, on, g.C, n, cb * L, g.P, g.Q, bd, Hg, Wg, gyb.data());
        else cb_gather(gy, g.C, n, cb * L, g.P, g.Q, bd, Hg, Wg, gyb.data());
        if (!s1)
          with_fixed_size(g.R, g.S, 2, [&](auto k, auto) {
            cb_data_s2_block<T, decltype(k)::value>(gyb.data(), Wg, wv, g, gxb.data());
          });
        else if (!with_fixed_size(gt.R, gt.S, 1, [&](auto k, auto st) {
                   cb_forward_fixed<T, decltype(k)::value, decltype(st)::value>(gyb.data(), Wg, wv, Vec<T>{}, gt,
                                                                                gxb.data());
                 }))
          cb_forward_any(gyb.data(), Wg, wv, Vec<T>{}, gt, gxb.data());
        cb_scatter(gxb.data(), g.C, n, cb * L, g.H, g.W, 0, g.W, gx);
        cb_gather(x, g.C, n, cb * L, g.H, g.W, g.pad, d.Hp, d.Wp, xb.data(), nm.at(cb * L), nm.act);
        cb_filter(xb.data(), d.Wp, gyb.data() + (bd * Wg + bd) * L, Wg, g, acc.data() + (cb - b0) * rs);
      }
    cb_filter_store(acc.data(), b0, b1, g, gw);
  });
}


void check_like(const char* op, const Tensor& ref, const Tensor& t) {
  check_same_device(op, ref, t);
  FN_CHECK(t.dtype() == ref.dtype(), op, ": dtypes differ: ", ref.describe(), ", ", t.describe());
}

// The CPU runs Reference, CpuPlanes and CpuChannels (Auto: depthwise_cpu_auto); CUDA runs V1Naive,
// V2Tiled and Cudnn (Auto = V2Tiled). Returns the CPU variant to run.
DepthwiseAlgo cpu_algo(const char* op, const Tensor& t, DepthwiseAlgo a, const DwGeom& g) {
  const bool on_cpu = a == DepthwiseAlgo::Reference || a == DepthwiseAlgo::CpuPlanes || a == DepthwiseAlgo::CpuChannels;
  FN_CHECK(a == DepthwiseAlgo::Auto || on_cpu != t.is_cuda(), op, ": DepthwiseAlgo::", depthwise_algo_name(a),
           " does not run on ", t.describe());
  check_float32_on_cuda(op, t);
  return a == DepthwiseAlgo::Auto ? depthwise_cpu_auto(g) : a;
}

void check_norm(const char* op, const Tensor& x, const DwInputNorm& nm) {
  if (!nm.defined()) return;
  FN_CHECK(!x.is_cuda(), op, ": a batch norm applied as the input is read (DwInputNorm) is a CPU option; got ",
           x.describe());
  FN_CHECK(nm.inv_std.defined(), op, ": DwInputNorm needs the batch norm's mean and inv_std");
  for (const Tensor* t : {&nm.weight, &nm.bias, &nm.mean, &nm.inv_std})
    FN_CHECK(!t->defined() || (t->shape() == Shape({x.size(1)}) && t->dtype() == x.dtype() && !t->is_cuda()), op,
             ": DwInputNorm's ", t->describe(), " does not fit x ", x.describe(), " (one value a channel)");
}

void check_output_norm(const char* op, const Tensor& gy, const DwOutputNorm& on) {
  if (!on.defined()) return;
  FN_CHECK(!gy.is_cuda(), op, ": a batch norm's backward applied as the gradient is read (DwOutputNorm) is a CPU ",
           "option; got ", gy.describe());
  FN_CHECK(on.z.shape() == gy.shape() && on.z.dtype() == gy.dtype() && !on.z.is_cuda(), op, ": DwOutputNorm's z ",
           on.z.describe(), " does not fit the gradient ", gy.describe());
  FN_CHECK(on.mean.defined() && on.inv_std.defined() && on.coef.defined(), op,
           ": DwOutputNorm needs the batch norm's mean, inv_std and backward coefficients");
  for (const Tensor* t : {&on.weight, &on.bias, &on.mean, &on.inv_std})
    FN_CHECK(!t->defined() || (t->shape() == Shape({gy.size(1)}) && t->dtype() == gy.dtype() && !t->is_cuda()), op,
             ": DwOutputNorm's ", t->describe(), " does not fit the gradient ", gy.describe(),
             " (one value a channel)");
  FN_CHECK(on.coef.shape() == Shape({gy.size(1), 2}) && on.coef.dtype() == gy.dtype() && !on.coef.is_cuda(), op,
           ": DwOutputNorm's coef ", on.coef.describe(), " should be (", gy.size(1), ", 2)");
}

// The gradient of z formed from g by the batch norm's backward (DwOutputNorm) into a new tensor, for the paths
// that do not form it as they read: the batch norm's own apply.
Tensor output_grad(const Tensor& g, const DwOutputNorm& on) {
  Tensor gz = Tensor::empty_like(g);
  batch_norm2d_backward_apply(g, on.z, on.weight, on.bias, on.mean, on.inv_std,
                              on.batch ? BatchNormStats::Batch : BatchNormStats::Running, on.act, on.coef, gz);
  return gz;
}

// x normalised by nm into a new tensor, for the versions that do not apply the norm as they read.
Tensor normalised(const Tensor& x, const DwInputNorm& nm) {
  Tensor y = Tensor::empty_like(x);
  const int64_t C = x.size(1), hw = x.size(2) * x.size(3);
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const InputNorm<T> in = input_norm<T>(nm);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (int64_t p = 0; p < x.size(0) * C; ++p)
      for (int64_t j = 0; j < hw; ++j) py[p * hw + j] = norm_value(px[p * hw + j], in.f[size_t(p % C)], in.act);
  });
  return y;
}

}  // namespace

void depthwise_conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, int stride, int pad,
                              bool relu, DepthwiseAlgo algo, const DwInputNorm& norm) {
  const char* op = "depthwise_conv2d_forward";
  check_norm(op, x, norm);
  DwGeom g = depthwise_geom(x.shape(), w.shape(), stride, pad);
  FN_CHECK(y.shape() == Shape({g.N, g.C, g.P, g.Q}), op, ": output ", y.describe(), " should be ",
           shape_str({g.N, g.C, g.P, g.Q}));
  FN_CHECK(!b.defined() || (b.ndim() == 1 && b.size(0) == g.C), op, ": bias ", b.describe(), " for ", g.C,
           " channels");
  check_like(op, x, w);
  check_like(op, x, y);
  if (b.defined()) check_like(op, x, b);
  const DepthwiseAlgo cpu = cpu_algo(op, x, algo, g);
  if (norm.defined() && cpu != DepthwiseAlgo::CpuChannels)
    return depthwise_conv2d_forward(normalised(x, norm), w, b, y, stride, pad, relu, algo);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::depthwise_forward_f32(x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, y.f32(), g, relu, algo);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* pb = b.defined() ? b.data<T>() : nullptr;
    if (cpu == DepthwiseAlgo::Reference) forward_ref<T>(x.data<T>(), w.data<T>(), pb, y.data<T>(), g, relu);
    else if (cpu == DepthwiseAlgo::CpuChannels)
      forward_channels<T>(x.data<T>(), w.data<T>(), pb, y.data<T>(), g, relu, input_norm<T>(norm));
    else forward_fast<T>(x.data<T>(), w.data<T>(), pb, y.data<T>(), g, relu);
  });
}

void depthwise_conv2d_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, int stride, int pad,
                                    DepthwiseAlgo algo) {
  const char* op = "depthwise_conv2d_backward_data";
  DwGeom g = depthwise_geom(gx.shape(), w.shape(), stride, pad);
  FN_CHECK(gy.shape() == Shape({g.N, g.C, g.P, g.Q}), op, ": gradient ", gy.describe(), " should be ",
           shape_str({g.N, g.C, g.P, g.Q}));
  check_like(op, gy, w);
  check_like(op, gy, gx);
  const DepthwiseAlgo cpu = cpu_algo(op, gy, algo, g);
  if (gy.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::depthwise_backward_data_f32(gy.f32(), w.f32(), gx.f32(), g, algo);
#endif
  }
  FN_DISPATCH_FLOAT(gy.dtype(), T, {
    if (cpu == DepthwiseAlgo::Reference) backward_data_ref<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g);
    else if (cpu == DepthwiseAlgo::CpuChannels) backward_data_channels<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g);
    else backward_data_fast<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g);
  });
}

void depthwise_conv2d_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, int stride, int pad,
                                      DepthwiseAlgo algo, const DwInputNorm& norm) {
  const char* op = "depthwise_conv2d_backward_filter";
  check_norm(op, x, norm);
  DwGeom g = depthwise_geom(x.shape(), gw.shape(), stride, pad);
  FN_CHECK(gy.shape() == Shape({g.N, g.C, g.P, g.Q}), op, ": gradient ", gy.describe(), " should be ",
           shape_str({g.N, g.C, g.P, g.Q}));
  check_like(op, x, gy);
  check_like(op, x, gw);
  const DepthwiseAlgo cpu = cpu_algo(op, x, algo, g);
  if (norm.defined() && cpu != DepthwiseAlgo::CpuChannels)
    return depthwise_conv2d_backward_filter(normalised(x, norm), gy, gw, stride, pad, algo);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::depthwise_backward_filter_f32(x.f32(), gy.f32(), gw.f32(), g, algo);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    if (cpu == DepthwiseAlgo::Reference) backward_filter_ref<T>(x.data<T>(), gy.data<T>(), gw.data<T>(), g);
    else if (cpu == DepthwiseAlgo::CpuChannels)
      backward_filter_channels<T>(x.data<T>(), gy.data<T>(), gw.data<T>(), g, input_norm<T>(norm));
    else backward_filter_fast<T>(x.data<T>(), gy.data<T>(), gw.data<T>(), g);
  });
}

void depthwise_conv2d_backward(const Tensor& x, const Tensor& gy, const Tensor& w, Tensor* gx, Tensor* gw, int stride,
                               int pad, DepthwiseAlgo algo, const DwInputNorm& norm, const DwOutputNorm& out) {
  const DwGeom g = depthwise_geom(x.shape(), w.shape(), stride, pad);
  check_norm("depthwise_conv2d_backward", x, norm);
  check_output_norm("depthwise_conv2d_backward", gy, out);
  // The one pass splits the channel blocks over the threads, where the data gradient alone splits (image,
  // block) items: with few blocks a thread (measured: 4 blocks on 2 threads at 112x112) would wait.
  constexpr int64_t kBlocksPerThread = 4;
  const int lanes = x.dtype() == DType::F64 ? kVecLanes<double> : kVecLanes<float>;
  const bool fused = gx && gw && !x.is_cuda() &&
                     cpu_algo("depthwise_conv2d_backward", x, algo, g) == DepthwiseAlgo::CpuChannels &&
                     one_pass_backward(g) && channel_blocks(g, lanes) >= kBlocksPerThread * blas_threads();
  if (!fused) {
    const Tensor gz = out.defined() ? output_grad(gy, out) : gy;
    if (gx) depthwise_conv2d_backward_data(gz, w, *gx, stride, pad, algo);
    if (gw) depthwise_conv2d_backward_filter(x, gz, *gw, stride, pad, algo, norm);
    return;
  }
  const char* op = "depthwise_conv2d_backward";
  FN_CHECK(gy.shape() == Shape({g.N, g.C, g.P, g.Q}), op, ": gradient ", gy.describe(), " should be ",
           shape_str({g.N, g.C, g.P, g.Q}));
  FN_CHECK(gx->shape() == x.shape() && gw->shape() == w.shape(), op, ": gradients ", gx->describe(), " and ",
           gw->describe(), " should be shaped as x ", x.describe(), " and w ", w.describe());
  for (const Tensor* t : {&gy, &w, static_cast<const Tensor*>(gx), static_cast<const Tensor*>(gw)})
    check_like(op, x, *t);
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    backward_both_channels<T>(x.data<T>(), gy.data<T>(), w.data<T>(), gx->data<T>(), gw->data<T>(), g,
                              input_norm<T>(norm), output_norm<T>(out));
  });
}

}  // namespace fn::kernels
