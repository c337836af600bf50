// Depthwise convolution on the GPU, float32, NCHW. Math and layouts: depthwise_conv2d.h.
//
// Forward
//   v1 V1Naive: a thread per output y[n,c,p,q] (grid-stride over N*C*P*Q, q fastest, so a warp reads 32
//      neighbouring outputs' windows: coalesced for stride 1, every other float for stride 2); the R*S taps
//      tested against the image's bounds one by one; filter taps through the read-only cache.
//   v2 V2Tiled: a block of 256 threads per tile of TP x TQ outputs of one (n, c) plane (TQ = 32, or the
//      next power of two >= Q for narrow maps, so a 7x7 map does not leave 3/4 of the block idle; TP =
//      256 / TQ). The block first copies the input window the tile reads, ((TP-1) st + R) x ((TQ-1) st + S)
//      floats with zeros outside the image, and the plane's R*S taps into shared memory (coalesced: each row
//      of the window is read by consecutive threads); after one barrier every thread computes its output
//      from shared memory with no bounds tests. Each input float is read from DRAM once per tile instead of
//      R*S / st^2 times through L1/L2.
// Data gradient
//   v1: a thread per input pixel gx[n,c,h,w], gathering the (p, q) whose window holds it (the gather form of
//      the scatter, so each pixel is written once, with no atomics).
//   v2: for stride 1 the data gradient is the forward of gy with the flipped filter and pad R-1-pad, run by
//      the tiled forward kernel (flip = true); for stride 2 the v1 gather (a tile of a strided transpose
//      gains little: each gx pixel reads at most ceil(R/2) * ceil(S/2) gradients).
// Filter gradient (V1 and V2 alike), deterministic in two stages, no atomics:
//   stage 1: grid (C, splits); block (c, k) takes a fixed contiguous slice of channel c's N*P*Q outputs,
//      each thread a strided share of it, with one register per tap; then block_reduce (block_reduce.cuh)
//      per tap, and thread 0 writes partial[c, k, tap].
//   stage 2: a thread per (c, tap) adds the `splits` partials in order k = 0, 1, ...
//   splits depends on the shape alone (not on the device), so every run and every GPU adds in the same order.
// Cudnn: cuDNN's grouped convolution (cudnnSetConvolutionGroupCount(C), filters (C,1,R,S)), FMA math (no TF32),
//   the algorithm chosen once per shape and direction by cudnnFind*Ex and cached: the baseline.
#include <algorithm>
#include <array>
#include <map>
#include <mutex>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/bias.h"
#include "kernels/block_reduce.cuh"
#include "kernels/cudnn_desc.h"
#include "kernels/depthwise_conv2d.h"
#include "kernels/launch.cuh"
#include "kernels/launch.h"

namespace fn::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// ---------------------------------------------------------------- forward
__global__ void forward_v1(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                           float* __restrict__ y, DwGeom g, bool relu) {
  FN_GRID_STRIDE(i, g.N * g.C * g.pq()) {
    const int64_t q = i % g.Q, p = (i / g.Q) % g.P, nc = i / g.pq(), c = nc % g.C;
    const float* xp = x + nc * g.hw();
    const float* wc = w + c * g.rs();
    float s = 0.f;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t h = p * g.stride - g.pad + r;
      if (h < 0 || h >= g.H) continue;
      for (int64_t t = 0; t < g.S; ++t) {
        const int64_t ww = q * g.stride - g.pad + t;
        if (ww >= 0 && ww < g.W) s += __ldg(wc + r * g.S + t) * xp[h * g.W + ww];
      }
    }
    if (b) s += __ldg(b + c);
    y[i] = relu && s < 0.f ? 0.f : s;
  }
}

// The tile of one block: TQ columns (a power of two, 8..32) by TP = kThreads / TQ rows of outputs.
struct Tile {
  int tq, tp, in_h, in_w, tiles_q, tiles_p;
};
Tile tile_of(const DwGeom& g) {
  Tile t;
  t.tq = 8;
  while (t.tq < 32 && t.tq < g.Q) t.tq *= 2;
  t.tp = kThreads / t.tq;
  t.in_h = int((t.tp - 1) * g.stride + g.R);
  t.in_w = int((t.tq - 1) * g.stride + g.S);
  t.tiles_q = int((g.Q + t.tq - 1) / t.tq);
  t.tiles_p = int((g.P + t.tp - 1) / t.tp);
  return t;
}

// v2 (and the stride-1 data gradient with flip): blockIdx.y = plane n*C + c, blockIdx.x = tile. With flip the
// filter is read as w[c, R-1-r, S-1-s].
__global__ void forward_v2(const float* __restrict__ x, const float* __restrict__ w, const float* __restrict__ b,
                           float* __restrict__ y, DwGeom g, Tile t, bool relu, bool flip) {
  extern __shared__ float sm[];
  float* win = sm;                        // t.in_h x t.in_w
  float* taps = sm + t.in_h * t.in_w;     // R*S
  const int64_t nc = blockIdx.y, c = nc % g.C;
  const int p0 = int(blockIdx.x / t.tiles_q) * t.tp, q0 = int(blockIdx.x % t.tiles_q) * t.tq;
  const int h0 = p0 * int(g.stride) - int(g.pad), w0 = q0 * int(g.stride) - int(g.pad);
  const float* xp = x + nc * g.hw();
  for (int i = threadIdx.x; i < t.in_h * t.in_w; i += kThreads) {
    const int h = h0 + i / t.in_w, ww = w0 + i % t.in_w;
    win[i] = (h >= 0 && h < g.H && ww >= 0 && ww < g.W) ? xp[int64_t(h) * g.W + ww] : 0.f;
  }
  const int rs = int(g.rs());
  for (int i = threadIdx.x; i < rs; i += kThreads) taps[i] = w[c * rs + (flip ? rs - 1 - i : i)];
  __syncthreads();
  const int lq = threadIdx.x % t.tq, lp = threadIdx.x / t.tq;
  const int p = p0 + lp, q = q0 + lq;
  if (p >= g.P || q >= g.Q) return;
  const float* base = win + lp * int(g.stride) * t.in_w + lq * int(g.stride);
  float s = 0.f;
  for (int r = 0; r < g.R; ++r)
    for (int k = 0; k < g.S; ++k) s += taps[r * g.S + k] * base[r * t.in_w + k];
  if (b) s += b[c];
  y[nc * g.pq() + int64_t(p) * g.Q + q] = relu && s < 0.f ? 0.f : s;
}

constexpr size_t kMaxSharedBytes = 48 * 1024;  // without opting in to more per block
size_t v2_shared_bytes(const DwGeom& g) {
  const Tile t = tile_of(g);
  return sizeof(float) * size_t(t.in_h * t.in_w + g.rs());
}
// Whether v2 can run this shape; Auto takes v1 where it cannot (wide strides on large filters, > 65535 channels).
bool v2_fits(const DwGeom& g) { return v2_shared_bytes(g) <= kMaxSharedBytes && g.C <= kMaxGridY; }

void launch_v2(const float* x, const float* w, const float* b, float* y, const DwGeom& g, bool relu, bool flip) {
  const Tile t = tile_of(g);
  const size_t smem = v2_shared_bytes(g);
  FN_CHECK(smem <= kMaxSharedBytes, "depthwise_conv2d v2: a ", g.R, "x", g.S, " stride ", g.stride, " tile needs ", smem,
           " bytes of shared memory");
  FN_CHECK(g.C <= kMaxGridY, "depthwise_conv2d v2: ", g.C, " channels (at most ", kMaxGridY, ")");
  // gridDim.y (the plane) is at most kMaxGridY: batches of whole images, so that plane % C stays the channel.
  const int64_t per = std::max<int64_t>(1, kMaxGridY / g.C);
  for (int64_t n0 = 0; n0 < g.N; n0 += per) {
    DwGeom gb = g;
    gb.N = std::min(per, g.N - n0);
    dim3 grid(unsigned(t.tiles_q * t.tiles_p), unsigned(gb.N * g.C));
    forward_v2<<<grid, kThreads, smem, ::fn::cuda::stream()>>>(x + n0 * g.C * g.hw(), w, b, y + n0 * g.C * g.pq(), gb,
                                                               t, relu, flip);
  }
  CUDA_CHECK(cudaGetLastError());
}

// ---------------------------------------------------------------- data gradient
__global__ void backward_data_v1(const float* __restrict__ gy, const float* __restrict__ w, float* __restrict__ gx,
                                 DwGeom g) {
  FN_GRID_STRIDE(i, g.N * g.C * g.hw()) {
    const int64_t ww = i % g.W, h = (i / g.W) % g.H, nc = i / g.hw(), c = nc % g.C;
    const float* gyp = gy + nc * g.pq();
    const float* wc = w + c * g.rs();
    float s = 0.f;
    for (int64_t r = 0; r < g.R; ++r) {
      const int64_t ph = h + g.pad - r;  // = p * stride when row h is tap r of output row p
      if (ph < 0 || ph % g.stride != 0 || ph / g.stride >= g.P) continue;
      for (int64_t t = 0; t < g.S; ++t) {
        const int64_t qw = ww + g.pad - t;
        if (qw < 0 || qw % g.stride != 0 || qw / g.stride >= g.Q) continue;
        s += __ldg(wc + r * g.S + t) * gyp[(ph / g.stride) * g.Q + qw / g.stride];
      }
    }
    gx[i] = s;
  }
}

// ---------------------------------------------------------------- filter gradient
// Slices per channel: about 16 K outputs each, at most 64; the shape alone decides.
int filter_splits(const DwGeom& g) {
  return int(std::clamp<int64_t>(g.N * g.pq() / 16384, 1, 64));
}

template <int KR, int KS>
__global__ void filter_stage1(const float* __restrict__ x, const float* __restrict__ gy, float* __restrict__ partial,
                              DwGeom g, int splits) {
  const int64_t c = blockIdx.x, k = blockIdx.y, total = g.N * g.pq();
  const int64_t e0 = total * k / splits, e1 = total * (k + 1) / splits;
  float acc[KR * KS];
#pragma unroll
  for (int t = 0; t < KR * KS; ++t) acc[t] = 0.f;
  for (int64_t e = e0 + threadIdx.x; e < e1; e += kThreads) {
    const int64_t n = e / g.pq(), pq = e % g.pq(), p = pq / g.Q, q = pq % g.Q;
    const float gv = gy[(n * g.C + c) * g.pq() + pq];
    const float* xp = x + (n * g.C + c) * g.hw();
#pragma unroll
    for (int r = 0; r < KR; ++r) {
      const int64_t h = p * g.stride - g.pad + r;
#pragma unroll
      for (int t = 0; t < KS; ++t) {
        const int64_t ww = q * g.stride - g.pad + t;
        if (h >= 0 && h < g.H && ww >= 0 && ww < g.W) acc[r * KS + t] += gv * xp[h * g.W + ww];
      }
    }
  }
#pragma unroll
  for (int t = 0; t < KR * KS; ++t) {
    const float s = block_reduce<kThreads, ReduceSum>(acc[t]);
    if (threadIdx.x == 0) partial[(c * splits + k) * (KR * KS) + t] = s;
  }
}

// Any other filter size: one tap per block (blockIdx.z), the same order within each tap.
__global__ void filter_stage1_any(const float* __restrict__ x, const float* __restrict__ gy,
                                  float* __restrict__ partial, DwGeom g, int splits) {
  const int64_t c = blockIdx.x, k = blockIdx.y, tap = blockIdx.z, total = g.N * g.pq();
  const int64_t r = tap / g.S, t = tap % g.S, e0 = total * k / splits, e1 = total * (k + 1) / splits;
  float acc = 0.f;
  for (int64_t e = e0 + threadIdx.x; e < e1; e += kThreads) {
    const int64_t n = e / g.pq(), pq = e % g.pq(), p = pq / g.Q, q = pq % g.Q;
    const int64_t h = p * g.stride - g.pad + r, ww = q * g.stride - g.pad + t;
    if (h >= 0 && h < g.H && ww >= 0 && ww < g.W)
      acc += gy[(n * g.C + c) * g.pq() + pq] * x[(n * g.C + c) * g.hw() + h * g.W + ww];
  }
  const float s = block_reduce<kThreads, ReduceSum>(acc);
  if (threadIdx.x == 0) partial[(c * splits + k) * g.rs() + tap] = s;
}

__global__ void filter_stage2(const float* __restrict__ partial, float* __restrict__ gw, DwGeom g, int splits) {
  FN_GRID_STRIDE(i, g.C * g.rs()) {
    const int64_t c = i / g.rs(), tap = i % g.rs();
    float s = 0.f;
    for (int k = 0; k < splits; ++k) s += partial[(c * splits + k) * g.rs() + tap];
    gw[i] = s;
  }
}

void backward_filter_two_stage(const float* x, const float* gy, float* gw, const DwGeom& g) {
  const int splits = filter_splits(g);
  float* partial = static_cast<float*>(::fn::cuda::workspace(sizeof(float) * size_t(g.C * splits * g.rs())));
  cudaStream_t st = ::fn::cuda::stream();
  dim3 grid(unsigned(g.C), unsigned(splits));
  if (g.R == 3 && g.S == 3) filter_stage1<3, 3><<<grid, kThreads, 0, st>>>(x, gy, partial, g, splits);
  else if (g.R == 5 && g.S == 5) filter_stage1<5, 5><<<grid, kThreads, 0, st>>>(x, gy, partial, g, splits);
  else if (g.R == 1 && g.S == 1) filter_stage1<1, 1><<<grid, kThreads, 0, st>>>(x, gy, partial, g, splits);
  else
    filter_stage1_any<<<dim3(unsigned(g.C), unsigned(splits), unsigned(g.rs())), kThreads, 0, st>>>(x, gy, partial, g,
                                                                                                     splits);
  CUDA_CHECK(cudaGetLastError());
  filter_stage2<<<grid_for(g.C * g.rs()), kThreads, 0, st>>>(partial, gw, g, splits);
  CUDA_CHECK(cudaGetLastError());
}

// ---------------------------------------------------------------- cuDNN grouped convolution (baseline)
struct GroupedConv {
  TensorDesc x, y;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  explicit GroupedConv(const DwGeom& g) : x(g.N, g.C, g.H, g.W), y(g.N, g.C, g.P, g.Q) {
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&w));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(g.C), 1, int(g.R), int(g.S)));
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&conv));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv, int(g.pad), int(g.pad), int(g.stride), int(g.stride), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv, int(g.C)));
    CUDNN_CHECK(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
  }
  ~GroupedConv() {
    cudnnDestroyConvolutionDescriptor(conv);
    cudnnDestroyFilterDescriptor(w);
  }
  GroupedConv(const GroupedConv&) = delete;
  GroupedConv& operator=(const GroupedConv&) = delete;
};

struct Choice {
  int algo;
  size_t workspace;
};
using Key = std::array<int64_t, 9>;
std::mutex g_mu;
std::map<Key, Choice> g_cache;
constexpr size_t kFindWorkspace = size_t(256) << 20;

template <class Perf>
Choice best_of(const Perf* perf, int count, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].mathType != CUDNN_TENSOR_OP_MATH &&
        perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
      return {int(perf[i].algo), perf[i].memory};
  FN_FAIL("cuDNN found no FP32 algorithm for the grouped ", what);
}

template <class FindFn>
Choice choose(int dir, const DwGeom& g, FindFn find) {
  const Key k{dir, g.N, g.C, g.H, g.W, g.R, g.S, g.stride, g.pad};
  {
    std::lock_guard<std::mutex> lk(g_mu);
    auto it = g_cache.find(k);
    if (it != g_cache.end()) return it->second;
  }
  const Choice c = find(::fn::cuda::workspace(kFindWorkspace), kFindWorkspace);
  std::lock_guard<std::mutex> lk(g_mu);
  return g_cache[k] = c;
}

void forward_cudnn(const float* x, const float* w, float* y, const DwGeom& g) {
  GroupedConv d(g);
  cudnnHandle_t h = ::fn::cuda::cudnn();
  const Choice c = choose(0, g, [&](void* ws, size_t bytes) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x.d, x, d.w, w, d.conv, d.y.d, y,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws, bytes));
    return best_of(perf, n, "forward");
  });
  const float one = 1.f, zero = 0.f;
  void* ws = c.workspace ? ::fn::cuda::workspace(c.workspace) : nullptr;
  CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x.d, x, d.w, w, d.conv, cudnnConvolutionFwdAlgo_t(c.algo), ws,
                                      c.workspace, &zero, d.y.d, y));
}

void backward_data_cudnn(const float* gy, const float* w, float* gx, const DwGeom& g) {
  GroupedConv d(g);
  cudnnHandle_t h = ::fn::cuda::cudnn();
  const Choice c = choose(1, g, [&](void* ws, size_t bytes) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w, d.y.d, gy, d.conv, d.x.d, gx,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws,
                                                            bytes));
    return best_of(perf, n, "data gradient");
  });
  const float one = 1.f, zero = 0.f;
  void* ws = c.workspace ? ::fn::cuda::workspace(c.workspace) : nullptr;
  CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w, w, d.y.d, gy, d.conv, cudnnConvolutionBwdDataAlgo_t(c.algo),
                                           ws, c.workspace, &zero, d.x.d, gx));
}

void backward_filter_cudnn(const float* x, const float* gy, float* gw, const DwGeom& g) {
  GroupedConv d(g);
  cudnnHandle_t h = ::fn::cuda::cudnn();
  const Choice c = choose(2, g, [&](void* ws, size_t bytes) {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x.d, x, d.y.d, gy, d.conv, d.w, gw,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf, ws,
                                                              bytes));
    return best_of(perf, n, "filter gradient");
  });
  const float one = 1.f, zero = 0.f;
  void* ws = c.workspace ? ::fn::cuda::workspace(c.workspace) : nullptr;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x.d, x, d.y.d, gy, d.conv,
                                             cudnnConvolutionBwdFilterAlgo_t(c.algo), ws, c.workspace, &zero, d.w, gw));
}

}  // namespace

void depthwise_forward_f32(const float* x, const float* w, const float* b, float* y, const DwGeom& g, bool relu,
                           DepthwiseAlgo algo) {
  if (g.N * g.C * g.pq() == 0) return;
  if (algo == DepthwiseAlgo::Cudnn) {
    forward_cudnn(x, w, y, g);
    if (b || relu) bias_add_f32(y, b, g.N, g.C, g.pq(), relu);
  } else if (algo == DepthwiseAlgo::V1Naive || (algo == DepthwiseAlgo::Auto && !v2_fits(g))) {
    forward_v1<<<grid_for(g.N * g.C * g.pq()), kThreads, 0, ::fn::cuda::stream()>>>(x, w, b, y, g, relu);
    CUDA_CHECK(cudaGetLastError());
  } else {
    launch_v2(x, w, b, y, g, relu, false);
  }
}

void depthwise_backward_data_f32(const float* gy, const float* w, float* gx, const DwGeom& g, DepthwiseAlgo algo) {
  if (g.N * g.C * g.hw() == 0) return;
  if (algo == DepthwiseAlgo::Cudnn) return backward_data_cudnn(gy, w, gx, g);
  // v2, stride 1: the forward of gy (N, C, P, Q) with the flipped filter and pad R-1-pad gives back H x W
  // (square filters only: one pad for both axes).
  if (algo != DepthwiseAlgo::V1Naive && g.stride == 1 && g.R == g.S) {
    DwGeom gt{g.N, g.C, g.P, g.Q, g.R, g.S, 1, g.R - 1 - g.pad, g.H, g.W};
    if (algo != DepthwiseAlgo::Auto || v2_fits(gt)) return launch_v2(gy, w, nullptr, gx, gt, false, true);
  }
  backward_data_v1<<<grid_for(g.N * g.C * g.hw()), kThreads, 0, ::fn::cuda::stream()>>>(gy, w, gx, g);
  CUDA_CHECK(cudaGetLastError());
}

void depthwise_backward_filter_f32(const float* x, const float* gy, float* gw, const DwGeom& g, DepthwiseAlgo algo) {
  if (g.C * g.rs() == 0) return;
  if (g.N * g.pq() == 0) {
    CUDA_CHECK(cudaMemsetAsync(gw, 0, sizeof(float) * size_t(g.C * g.rs()), ::fn::cuda::stream()));
    return;
  }
  if (algo == DepthwiseAlgo::Cudnn) return backward_filter_cudnn(x, gy, gw, g);
  backward_filter_two_stage(x, gy, gw, g);
}

}  // namespace fn::kernels::cuda
