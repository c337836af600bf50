// Convolution launchers and the CPU path: im2col + OpenBLAS GEMM, one image at a time (CUDA side in
// conv2d.cu). Per image n the forward is one product y_n (K, P*Q) = W (K, C*R*S) * col_n (C*R*S, P*Q),
// written straight into y's NCHW storage, followed by one bias(+ReLU) pass over y_n while it is in cache
// (a pointwise convolution on a map of 7x7 or less: one product per thread's chunk of images instead).
// Thin 3x3 layers in float32 take the direct kernel of conv2d_direct.h instead, and the wider 3x3 stride-1
// layers (and the thin ones' filter gradients) Winograd F(2x2, 3x3) of conv2d_winograd.h (ConvAlgo::Auto
// decides).
//
// Threads (ConvCpuPlan): a large convolution either runs images on threads, each with its own reused
// im2col buffer and OpenBLAS held to one thread, or one image at a time with the im2col split by channel
// and OpenBLAS threading the product. Both are measured by bench_conv; see docs/kernels/conv2d.md.
// Sums run in an order fixed by the thread count, so a run reproduces bitwise.
#include "kernels/conv2d.h"

#include <algorithm>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/conv2d_direct.h"
#include "kernels/conv2d_winograd.h"
#include "kernels/gemm.h"

namespace fn::kernels {

const char* conv_algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Cudnn: return "cudnn";
    case ConvAlgo::Im2colGemm: return "im2col_gemm";
    case ConvAlgo::Direct3x3: return "direct3x3";
    case ConvAlgo::Winograd3x3: return "winograd3x3";
  }
  return "?";
}
const char* conv_cpu_plan_name(ConvCpuPlan p) {
  switch (p) {
    case ConvCpuPlan::Auto: return "auto";
    case ConvCpuPlan::Images: return "images_on_threads";
    case ConvCpuPlan::Blas: return "blas_threads";
  }
  return "?";
}

namespace {

// Below this many flops a convolution runs on the calling thread: starting threads would cost more.
constexpr double kThreadedFlops = 2e7;

// Reusable, never-zeroed scratch buffers owned by the calling thread: the im2col buffers are tens of MB,
// and allocating them afresh each call costs a page fault per 4 KB.
void* scratch(int slot, size_t bytes) {
  struct Buf {
    std::unique_ptr<char[]> p;
    size_t n = 0;
  };
  thread_local std::vector<Buf> pool;
  if (int(pool.size()) <= slot) pool.resize(size_t(slot) + 1);
  Buf& b = pool[size_t(slot)];
  if (b.n < bytes) {
    b.p.reset(new char[bytes]);  // default-initialised: no zero fill
    b.n = bytes;
  }
  return b.p.get();
}
enum Slot { kCol = 0, kAcc = 1, kSlots = 2 };  // the direct kernel's bordered copy uses kCol  // scratch slot of worker t: t * kSlots + purpose
// The flipped filters of backward_data_as_forward and the direct kernel's packed filters: one buffer
// each, past every worker's slots.
constexpr int kFlipped = 64 * kSlots, kPacked = kFlipped + 1;

// Runs f(t) for t in [0, n), t = 0 on the caller, the others on the kept workers, and waits for all.
template <class F>
void run_threads(int n, F&& f) {
  parallel_run(n, [&f](int t) { f(t); });
}

// Holds OpenBLAS to one thread while our own threads each make BLAS calls, and restores it after.
struct SingleThreadedBlas {
  int prev = blas_threads();
  SingleThreadedBlas() { set_blas_threads(1); }
  ~SingleThreadedBlas() { set_blas_threads(prev); }
};

// How many threads a convolution of `flops` runs on: blas_threads(), or 1 when it is too small to share.
int conv_threads(double flops) {
  const int t = blas_threads();
  return t <= 1 || flops < kThreadedFlops ? 1 : t;
}

// Runs per_item(i, worker, inner_threads) for every item i < count (an image, or a chunk of images),
// spread over blas_threads() cores by the plan: items on threads get worker = their thread index,
// inner_threads = 1 and OpenBLAS held to one thread; items run one at a time get worker 0 and
// inner_threads = all (im2col/col2im split by channel, OpenBLAS threading the product). Auto runs the
// largest multiple of the thread count as items on threads and the remainder one at a time, so no core
// idles at the end of an odd batch. `flops` is the whole convolution's: small ones stay on this thread.
template <class F>
void for_items(int64_t count, double flops, ConvCpuPlan want, F&& per_item) {
  const int t = conv_threads(flops);
  if (t == 1) {
    for (int64_t i = 0; i < count; ++i) per_item(i, 0, 1);
    return;
  }
  const int64_t split = want == ConvCpuPlan::Images ? count : want == ConvCpuPlan::Blas ? 0 : count / t * t;
  if (split > 0) {
    const int workers = int(std::min<int64_t>(t, split));
    SingleThreadedBlas one;
    run_threads(workers, [&](int w) {
      for (int64_t i = w; i < split; i += workers) per_item(i, w, 1);
    });
  }
  for (int64_t i = split; i < count; ++i) per_item(i, 0, t);
}
template <class F>
void for_images(const ConvGeom& g, ConvCpuPlan want, F&& per_image) {
  for_items(g.N, g.flops(), want, per_image);
}

// One scratch buffer of `count` elements per possible worker, taken from the calling thread's pool.
template <class T>
std::vector<T*> worker_buffers(Slot purpose, int64_t count) {
  std::vector<T*> b(size_t(std::max(1, blas_threads())));
  for (size_t w = 0; w < b.size(); ++w) b[w] = static_cast<T*>(scratch(int(w) * kSlots + purpose, sizeof(T) * size_t(count)));
  return b;
}

// Fills col with image x_n's im2col, split by channel over `threads` threads; returns the col matrix
// (x_n itself for a pointwise convolution).
template <class T>
const T* lower(const T* xn, const ConvGeom& g, T* col, int threads) {
  if (g.is_pointwise()) return xn;
  if (threads <= 1) {
    im2col_cpu(xn, g, col, 0, g.C);
  } else {
    run_threads(threads, [&](int t) { im2col_cpu(xn, g, col, g.C * t / threads, g.C * (t + 1) / threads); });
  }
  return col;
}

// Whether this float32 / float64 convolution runs the direct 3x3 kernel: on request, or by Auto for thin
// layers.
template <class T>
bool use_direct(const ConvGeom& g, ConvAlgo algo) {
  if (algo == ConvAlgo::Direct3x3) {
    FN_CHECK((std::is_same_v<T, float>), "conv2d: ConvAlgo::Direct3x3 is float32 only");
    FN_CHECK(conv3x3_direct_supported(g), "conv2d: ConvAlgo::Direct3x3 needs a 3x3, stride 1, pad 1 convolution with ",
             "a multiple of 4 output channels (and an AVX2/FMA build); got ", g.K, " x ", g.C, " x ", g.R, "x", g.S,
             " stride ", g.stride, " pad ", g.pad);
    return true;
  }
  return std::is_same_v<T, float> && algo == ConvAlgo::Auto && conv3x3_direct_preferred(g);
}

// Whether this convolution (its filter gradient, where `filter_grad`) runs Winograd F(2x2, 3x3): on
// request (float32 or float64), or by Auto for float32 3x3 stride-1 layers where it pays.
template <class T>
bool use_winograd(const ConvGeom& g, ConvAlgo algo, bool filter_grad = false) {
  if (algo == ConvAlgo::Winograd3x3) {
    FN_CHECK(conv3x3_winograd_supported(g), "conv2d: ConvAlgo::Winograd3x3 needs a 3x3, stride 1 convolution with ",
             "pad 0, 1 or 2; got ", g.K, " x ", g.C, " x ", g.R, "x", g.S, " stride ", g.stride, " pad ", g.pad);
    return true;
  }
  return std::is_same_v<T, float> && algo == ConvAlgo::Auto &&
         (filter_grad ? conv3x3_winograd_filter_grad_preferred(g) : conv3x3_winograd_preferred(g));
}

// Runs per_chunk(n0, n, worker, scratch) for Winograd's chunks of whole images (images n0 .. n0 + n - 1),
// spread over the threads like images, each worker with its own V/M scratch.
template <class T, class F>
void for_winograd_chunks(const ConvGeom& g, ConvCpuPlan plan, F&& per_chunk) {
  const int64_t per = conv3x3_winograd_chunk_images(g, blas_threads()), chunks = (g.N + per - 1) / per;
  std::vector<T*> bufs = worker_buffers<T>(kCol, conv3x3_winograd_scratch(g, per));
  for_items(chunks, g.flops(), plan, [&](int64_t i, int worker, int) {
    per_chunk(i * per, std::min(per, g.N - i * per), worker, bufs[size_t(worker)]);
  });
}

// Winograd: the filters transformed once, then the chunks.
template <class T>
void forward_winograd(const T* x, const T* w, const T* b, T* y, const ConvGeom& g, bool relu, ConvCpuPlan plan) {
  T* U = static_cast<T*>(scratch(kPacked, sizeof(T) * size_t(16 * g.K * g.C)));
  conv3x3_winograd_filters(w, g, U);
  for_winograd_chunks<T>(g, plan, [&](int64_t n0, int64_t n, int, T* buf) {
    conv3x3_winograd_images(x + n0 * g.chw(), n, U, b, y + n0 * g.K * g.pq(), g, relu, buf);
  });
}

// Bias, then ReLU, over `rows` rows of `cols` outputs (row k is filter k's): the fused output pass.
template <class T>
void bias_relu_rows(T* y, int64_t rows, int64_t cols, const T* b, bool relu) {
  if (!b && !relu) return;
  for (int64_t k = 0; k < rows; ++k) {
    T* row = y + k * cols;
    const T bk = b ? b[k] : T(0);
    if (relu)
      for (int64_t i = 0; i < cols; ++i) row[i] = row[i] + bk > T(0) ? row[i] + bk : T(0);
    else
      for (int64_t i = 0; i < cols; ++i) row[i] += bk;
  }
}

// A pointwise convolution on a small map (7x7 and less: ResNet's layer4, Lite0's last stages) is one product
// per chunk of images instead of one per image: a product of P*Q <= 49 columns spends as long packing W as
// multiplying (OpenBLAS repacks it every call), so a worker's chunk of images is gathered channel-major into
// (C, n*P*Q), multiplied once, and scattered back. Every output is the same dot product over C, summed in the
// same order, as the per-image product's (tested bitwise); the filter gradient stays per image (no gain there).
constexpr int64_t kChunkedPointwiseMaxPq = 49;
bool pointwise_in_chunks(const ConvGeom& g) { return g.is_pointwise() && g.pq() <= kChunkedPointwiseMaxPq; }

// Images [n0, n0 + n) of a (N, rows, pq) tensor to a (rows, n * pq) matrix, and back.
template <class T>
void gather_channel_major(const T* t, int64_t n0, int64_t n, int64_t rows, int64_t pq, T* m) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) std::copy_n(t + ((n0 + i) * rows + r) * pq, pq, m + (r * n + i) * pq);
}
template <class T>
void scatter_channel_major(const T* m, int64_t n0, int64_t n, int64_t rows, int64_t pq, T* t) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) std::copy_n(m + (r * n + i) * pq, pq, t + ((n0 + i) * rows + r) * pq);
}

// Runs per_chunk(n0, n, in, out) for one chunk of images per thread (images n0 .. n0 + n - 1), spread like
// images; `in` holds in_rows and `out` out_rows of n * P * Q, from the worker's scratch.
template <class T, class F>
void for_pointwise_chunks(const ConvGeom& g, int64_t in_rows, int64_t out_rows, ConvCpuPlan plan, F&& per_chunk) {
  const int64_t chunks = std::min<int64_t>(g.N, conv_threads(g.flops())), most = (g.N + chunks - 1) / chunks;
  std::vector<T*> bufs = worker_buffers<T>(kCol, (in_rows + out_rows) * most * g.pq());
  for_items(chunks, g.flops(), plan, [&](int64_t i, int worker, int) {
    const int64_t n0 = g.N * i / chunks, n = g.N * (i + 1) / chunks - n0;
    T* in = bufs[size_t(worker)];
    per_chunk(n0, n, in, in + in_rows * n * g.pq());
  });
}

// y = W x a chunk at a time (pointwise_in_chunks), the output pass on the product before it is scattered.
template <class T>
void forward_pointwise_chunks(const T* x, const T* w, const T* b, T* y, const ConvGeom& g, bool relu,
                              ConvCpuPlan plan) {
  for_pointwise_chunks<T>(g, g.C, g.K, plan, [&](int64_t n0, int64_t n, T* xm, T* ym) {
    const int64_t cols = n * g.pq();
    gather_channel_major(x, n0, n, g.C, g.pq(), xm);
    gemm_cpu(false, false, g.K, cols, g.C, T(1), w, g.C, xm, cols, T(0), ym, cols);
    bias_relu_rows(ym, g.K, cols, b, relu);
    scatter_channel_major(ym, n0, n, g.K, g.pq(), y);
  });
}

template <class T>
void forward_cpu(const T* x, const T* w, const T* b, T* y, const ConvGeom& g, bool relu, ConvOptions opt) {
  if (use_direct<T>(g, opt.algo)) {  // only ever true for float32 (it refuses Direct3x3 for float64)
    if constexpr (std::is_same_v<T, float>) {
      float* wt = static_cast<float*>(scratch(kPacked, sizeof(float) * size_t(g.K * g.crs())));
      conv3x3_direct_pack_filters(w, g, wt);
      std::vector<float*> pads = worker_buffers<float>(kCol, conv3x3_direct_scratch_floats(g));
      return for_images(g, opt.cpu_plan, [&](int64_t n, int worker, int) {
        conv3x3_direct_image(x + n * g.chw(), wt, b, y + n * g.K * g.pq(), g, relu, pads[size_t(worker)]);
      });
    }
  }
  if (use_winograd<T>(g, opt.algo)) return forward_winograd(x, w, b, y, g, relu, opt.cpu_plan);
  if (pointwise_in_chunks(g)) return forward_pointwise_chunks(x, w, b, y, g, relu, opt.cpu_plan);
  std::vector<T*> cols = worker_buffers<T>(kCol, g.is_pointwise() ? 0 : g.crs() * g.pq());
  for_images(g, opt.cpu_plan, [&](int64_t n, int worker, int inner) {
    const T* col = lower(x + n * g.chw(), g, cols[size_t(worker)], inner);
    T* yn = y + n * g.K * g.pq();
    gemm_cpu(false, false, g.K, g.pq(), g.crs(), T(1), w, g.crs(), col, g.pq(), T(0), yn, g.pq());
    bias_relu_rows(yn, g.K, g.pq(), b, relu);
  });
}

// A stride-1 convolution's data gradient is itself a stride-1 convolution: of gy with the filters
// transposed (K <-> C) and flipped (r -> R-1-r, s -> S-1-s), padded by R-1-pad, which gives back H x W:
//   dx[n,c,h,w] = sum_{k,r,s} W[k,c,R-1-r,S-1-s] gy[n, k, h - (R-1-pad) + r, w - (S-1-pad) + s].
// Run as the forward (im2col + GEMM with inner dimension K*R*S), this replaces the GEMM with inner
// dimension K and the scattering col2im pass of the textbook form: faster for VGG's thin early layers.
bool data_grad_as_forward(const ConvGeom& g) {
  return g.stride == 1 && g.R == g.S && g.pad <= g.R - 1 && !g.is_pointwise();
}

template <class T>
void backward_data_as_forward(const T* gy, const T* w, T* gx, const ConvGeom& g, ConvOptions opt) {
  T* wt = static_cast<T*>(scratch(kFlipped, sizeof(T) * size_t(g.K * g.crs())));
  const int64_t rs = g.R * g.S;
  for (int64_t k = 0; k < g.K; ++k)
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t i = 0; i < rs; ++i) wt[(c * g.K + k) * rs + (rs - 1 - i)] = w[(k * g.C + c) * rs + i];
  const int pad_t = int(g.R - 1 - g.pad);
  ConvGeom gt{g.N, g.K, g.P, g.Q, g.C, g.R, g.S, 1, pad_t, g.H, g.W};
  forward_cpu<T>(gy, wt, nullptr, gx, gt, false, opt);
}

// dx_n = col2im(W^T gy_n): the product lands in a scratch dcol (or straight in dx_n when pointwise; on a small
// map a chunk of images at a time, as the forward).
template <class T>
void backward_data_cpu(const T* gy, const T* w, T* gx, const ConvGeom& g, ConvOptions opt) {
  if (data_grad_as_forward(g)) return backward_data_as_forward(gy, w, gx, g, opt);
  FN_CHECK(opt.algo != ConvAlgo::Direct3x3 && opt.algo != ConvAlgo::Winograd3x3, "conv2d_backward_data: ConvAlgo::",
           conv_algo_name(opt.algo), " needs a stride-1 3x3 convolution (its data gradient runs as a forward)");
  if (pointwise_in_chunks(g))
    return for_pointwise_chunks<T>(g, g.K, g.C, opt.cpu_plan, [&](int64_t n0, int64_t n, T* gym, T* gxm) {
      const int64_t cols = n * g.pq();
      gather_channel_major(gy, n0, n, g.K, g.pq(), gym);
      gemm_cpu(true, false, g.C, cols, g.K, T(1), w, g.C, gym, cols, T(0), gxm, cols);
      scatter_channel_major(gxm, n0, n, g.C, g.pq(), gx);
    });
  const ConvCpuPlan want = opt.cpu_plan;
  std::vector<T*> dcols = worker_buffers<T>(kCol, g.is_pointwise() ? 0 : g.crs() * g.pq());
  for_images(g, want, [&](int64_t n, int worker, int inner) {
    const T* gyn = gy + n * g.K * g.pq();
    T* gxn = gx + n * g.chw();
    T* dcol = g.is_pointwise() ? gxn : dcols[size_t(worker)];
    gemm_cpu(true, false, g.crs(), g.pq(), g.K, T(1), w, g.crs(), gyn, g.pq(), T(0), dcol, g.pq());
    if (g.is_pointwise()) return;
    if (inner <= 1) {
      col2im_cpu(dcol, g, gxn, 0, g.C);
    } else {
      run_threads(inner, [&](int t) { col2im_cpu(dcol, g, gxn, g.C * t / inner, g.C * (t + 1) / inner); });
    }
  });
}

// Winograd's filter gradient: worker w adds its chunks, in increasing order, into its own (16, K, C)
// accumulator; the accumulators are added in worker order, then transformed back into gw.
template <class T>
void backward_filter_winograd(const T* x, const T* gy, T* gw, const ConvGeom& g, ConvCpuPlan plan) {
  const int64_t un = 16 * g.K * g.C;
  std::vector<T*> accs = worker_buffers<T>(kAcc, un);
  std::vector<char> used(accs.size(), 0);
  for (T* a : accs) std::fill(a, a + un, T(0));
  for_winograd_chunks<T>(g, plan, [&](int64_t n0, int64_t n, int worker, T* buf) {
    conv3x3_winograd_filter_grad_images(x + n0 * g.chw(), gy + n0 * g.K * g.pq(), n, g, accs[size_t(worker)], buf);
    used[size_t(worker)] = 1;
  });
  for (size_t w = 1; w < accs.size(); ++w)
    if (used[w])
      for (int64_t i = 0; i < un; ++i) accs[0][i] += accs[w][i];
  conv3x3_winograd_filter_grad_finish(accs[0], g, gw);
}

// dW = sum_n gy_n col_n^T. Worker w adds its images, in increasing n, into its own accumulator (worker 0
// into gw itself); the accumulators are then added in worker order: a fixed order, so runs repeat bitwise.
template <class T>
void backward_filter_cpu(const T* x, const T* gy, T* gw, const ConvGeom& g, ConvOptions opt) {
  if (use_winograd<T>(g, opt.algo, true)) return backward_filter_winograd(x, gy, gw, g, opt.cpu_plan);
  const ConvCpuPlan want = opt.cpu_plan;
  const int64_t wn = g.K * g.crs();
  std::vector<T*> cols = worker_buffers<T>(kCol, g.is_pointwise() ? 0 : g.crs() * g.pq());
  std::vector<T*> accs = worker_buffers<T>(kAcc, wn);
  accs[0] = gw;
  std::vector<char> used(accs.size(), 0);
  for (T* a : accs) std::fill(a, a + wn, T(0));
  for_images(g, want, [&](int64_t n, int worker, int inner) {
    const T* col = lower(x + n * g.chw(), g, cols[size_t(worker)], inner);
    gemm_cpu(false, true, g.K, g.crs(), g.pq(), T(1), gy + n * g.K * g.pq(), g.pq(), col, g.pq(), T(1),
             accs[size_t(worker)], g.crs());
    used[size_t(worker)] = 1;
  });
  for (size_t w = 1; w < accs.size(); ++w)
    if (used[w])
      for (int64_t i = 0; i < wn; ++i) gw[i] += accs[w][i];
}

void check_like(const char* op, const Tensor& ref, const Tensor& t) {
  check_same_device(op, ref, t);
  FN_CHECK(t.dtype() == ref.dtype(), op, ": dtypes differ: ", ref.describe(), ", ", t.describe());
}

void check_cuda_algo(const char* op, const Tensor& t, ConvAlgo algo) {
  FN_CHECK(t.is_cuda() || algo != ConvAlgo::Cudnn, op, ": ConvAlgo::Cudnn needs CUDA tensors, got ", t.describe());
  FN_CHECK(!t.is_cuda() || (algo != ConvAlgo::Direct3x3 && algo != ConvAlgo::Winograd3x3), op, ": ConvAlgo::",
           conv_algo_name(algo), " is a CPU kernel, got ", t.describe());
  check_float32_on_cuda(op, t);
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, int stride, int pad, bool relu,
                    ConvOptions opt) {
  ConvGeom g = conv_geom(x.shape(), w.shape(), stride, pad);
  FN_CHECK(y.shape() == Shape({g.N, g.K, g.P, g.Q}), "conv2d_forward: output ", y.describe(), " should be ",
           shape_str({g.N, g.K, g.P, g.Q}));
  FN_CHECK(!b.defined() || (b.ndim() == 1 && b.size(0) == g.K), "conv2d_forward: bias ", b.describe(), " for ", g.K,
           " filters");
  check_like("conv2d_forward", x, w);
  check_like("conv2d_forward", x, y);
  if (b.defined()) check_like("conv2d_forward", x, b);
  check_cuda_algo("conv2d_forward", x, opt.algo);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::conv2d_forward_f32(x.f32(), w.f32(), b.defined() ? b.f32() : nullptr, y.f32(), g, relu, opt.algo);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    forward_cpu<T>(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr, y.data<T>(), g, relu, opt);
  });
}

void conv2d_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, int stride, int pad, ConvOptions opt) {
  ConvGeom g = conv_geom(gx.shape(), w.shape(), stride, pad);
  FN_CHECK(gy.shape() == Shape({g.N, g.K, g.P, g.Q}), "conv2d_backward_data: gradient ", gy.describe(),
           " should be ", shape_str({g.N, g.K, g.P, g.Q}));
  check_like("conv2d_backward_data", gy, w);
  check_like("conv2d_backward_data", gy, gx);
  check_cuda_algo("conv2d_backward_data", gy, opt.algo);
  if (gy.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::conv2d_backward_data_f32(gy.f32(), w.f32(), gx.f32(), g, opt.algo);
#endif
  }
  FN_DISPATCH_FLOAT(gy.dtype(), T, { backward_data_cpu<T>(gy.data<T>(), w.data<T>(), gx.data<T>(), g, opt); });
}

void conv2d_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, int stride, int pad, ConvOptions opt) {
  ConvGeom g = conv_geom(x.shape(), gw.shape(), stride, pad);
  FN_CHECK(gy.shape() == Shape({g.N, g.K, g.P, g.Q}), "conv2d_backward_filter: gradient ", gy.describe(),
           " should be ", shape_str({g.N, g.K, g.P, g.Q}));
  check_like("conv2d_backward_filter", x, gy);
  check_like("conv2d_backward_filter", x, gw);
  check_cuda_algo("conv2d_backward_filter", x, opt.algo);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::conv2d_backward_filter_f32(x.f32(), gy.f32(), gw.f32(), g, opt.algo, opt.filter_chunks);
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(),
                    T, { backward_filter_cpu<T>(x.data<T>(), gy.data<T>(), gw.data<T>(), g, opt); });
}

}  // namespace fn::kernels
