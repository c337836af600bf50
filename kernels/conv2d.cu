// Convolution on the GPU, float32, NCHW. Math: see conv2d.h. Two variants, chosen by ConvAlgo:
//
// v1 Im2colGemm (teaching): for a chunk of images, the im2col kernel (im2col.cu) writes each image's
//   col_n (C*R*S, P*Q) into the shared workspace, then one strided-batched cuBLAS SGEMM computes every
//   y_n = W col_n (W shared, stride 0). Backward data: dcol_n = W^T gy_n (batched), then the col2im
//   gather kernel. Backward filter: dW += gy_n col_n^T, one SGEMM per image accumulating with beta = 1.
//   Chunks are sized so the col buffer stays under kColBytes.
// v2 Cudnn (default): cudnnConvolutionForward / BackwardData / BackwardFilter. The algorithm is chosen
//   once per shape and direction by cudnnFind*AlgorithmEx (timed on the real buffers), restricted to FMA
//   math (no TF32, so results match the CPU to FP32 rounding), and cached in a map keyed by the shape.
//   Descriptors are created per call by RAII wrappers (a few microseconds) so nothing can leak.
//   The filter gradient also searches over batch chunks: for N = 32 at conv1_2 (64 -> 64, 224x224) the best
//   whole-batch algorithm ran at 17 TFLOP/s on the H100, the best batch-8 one at 24. So the search also
//   times the best algorithm at N/2 and N/4, and where chunks x its time beats the whole batch by 5%, the
//   gradient is computed chunk by chunk, each accumulating into dW (beta = 1 after the first).
// Bias and ReLU run after either variant as one fused pass (bias.cu).
#include <algorithm>
#include <array>
#include <map>
#include <mutex>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/cudnn_desc.h"
#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/gemm.h"

namespace fn::kernels::cuda {
namespace {

constexpr size_t kColBytes = size_t(512) << 20;      // im2col chunk limit
constexpr size_t kFindWorkspace = size_t(1) << 30;   // the most workspace an algorithm may take

// ---------------------------------------------------------------- v1: im2col + cuBLAS
int64_t images_per_chunk(const ConvGeom& g) {
  size_t per_image = sizeof(float) * size_t(g.crs() * g.pq());
  int64_t n = per_image == 0 ? g.N : int64_t(kColBytes / per_image);
  return std::max<int64_t>(1, std::min<int64_t>(n, g.N));
}

void forward_im2col(const float* x, const float* w, float* y, const ConvGeom& g) {
  const int64_t chunk = images_per_chunk(g), ystride = g.K * g.pq(), cstride = g.crs() * g.pq();
  float* col = g.is_pointwise() ? nullptr : static_cast<float*>(::fn::cuda::workspace(sizeof(float) * chunk * cstride));
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    int64_t nb = std::min(chunk, g.N - n0);
    const float* c = x + n0 * g.chw();
    if (col) {
      im2col_f32(c, g, nb, col);
      c = col;
    }
    // y_n (K, PQ) = W (K, CRS) * col_n (CRS, PQ). cuBLAS is column-major, where row-major y_n is y_n^T
    // (PQ, K) = col_n^T (PQ, CRS) * W^T (CRS, K), and row-major col_n and W are already those transposes.
    const float one = 1.f, zero = 0.f;
    CUBLAS_CHECK(cublasSgemmStridedBatched(::fn::cuda::cublas(), CUBLAS_OP_N, CUBLAS_OP_N, int(g.pq()), int(g.K),
                                           int(g.crs()), &one, c, int(g.pq()), cstride, w, int(g.crs()), 0, &zero,
                                           y + n0 * ystride, int(g.pq()), ystride, int(nb)));
  }
}

void backward_data_im2col(const float* gy, const float* w, float* gx, const ConvGeom& g) {
  const int64_t chunk = images_per_chunk(g), ystride = g.K * g.pq(), cstride = g.crs() * g.pq();
  float* dcol = g.is_pointwise() ? nullptr : static_cast<float*>(::fn::cuda::workspace(sizeof(float) * chunk * cstride));
  for (int64_t n0 = 0; n0 < g.N; n0 += chunk) {
    int64_t nb = std::min(chunk, g.N - n0);
    float* out = dcol ? dcol : gx + n0 * g.chw();  // pointwise: dx_n is W^T gy_n itself
    // dcol_n (CRS, PQ) = W^T (CRS, K) * gy_n (K, PQ); column-major: dcol_n^T (PQ, CRS) = gy_n^T (PQ, K) W.
    const float one = 1.f, zero = 0.f;
    CUBLAS_CHECK(cublasSgemmStridedBatched(::fn::cuda::cublas(), CUBLAS_OP_N, CUBLAS_OP_T, int(g.pq()), int(g.crs()),
                                           int(g.K), &one, gy + n0 * ystride, int(g.pq()), ystride, w, int(g.crs()), 0,
                                           &zero, out, int(g.pq()), cstride, int(nb)));
    if (dcol) col2im_f32(dcol, g, nb, gx + n0 * g.chw());
  }
}

void backward_filter_im2col(const float* x, const float* gy, float* gw, const ConvGeom& g) {
  if (g.N == 0) {
    CUDA_CHECK(cudaMemsetAsync(gw, 0, sizeof(float) * size_t(g.K * g.crs()), ::fn::cuda::stream()));
    return;
  }
  float* col = g.is_pointwise() ? nullptr : static_cast<float*>(::fn::cuda::workspace(sizeof(float) * g.crs() * g.pq()));
  for (int64_t n = 0; n < g.N; ++n) {
    const float* c = x + n * g.chw();
    if (col) {
      im2col_f32(c, g, 1, col);
      c = col;
    }
    // dW (K, CRS) (+)= gy_n (K, PQ) * col_n^T (PQ, CRS), in increasing n.
    gemm_cuda(false, true, g.K, g.crs(), g.pq(), 1.f, gy + n * g.K * g.pq(), g.pq(), c, g.pq(), n == 0 ? 0.f : 1.f,
              gw, g.crs());
  }
}

// ---------------------------------------------------------------- v2: cuDNN
struct FilterDesc {
  cudnnFilterDescriptor_t d = nullptr;
  explicit FilterDesc(const ConvGeom& g) {
    CUDNN_CHECK(cudnnCreateFilterDescriptor(&d));
    CUDNN_CHECK(cudnnSetFilter4dDescriptor(d, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(g.K), int(g.C), int(g.R),
                                           int(g.S)));
  }
  ~FilterDesc() { cudnnDestroyFilterDescriptor(d); }
  FilterDesc(const FilterDesc&) = delete;
  FilterDesc& operator=(const FilterDesc&) = delete;
};
struct ConvDesc {
  cudnnConvolutionDescriptor_t d = nullptr;
  explicit ConvDesc(const ConvGeom& g) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&d));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(d, int(g.pad), int(g.pad), int(g.stride), int(g.stride), 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(d, CUDNN_FMA_MATH));  // FP32 FMA only: no TF32 tensor cores
  }
  ~ConvDesc() { cudnnDestroyConvolutionDescriptor(d); }
  ConvDesc(const ConvDesc&) = delete;
  ConvDesc& operator=(const ConvDesc&) = delete;
};

// All the descriptors of one convolution.
struct CudnnConv {
  TensorDesc x, y;
  FilterDesc w;
  ConvDesc conv;
  explicit CudnnConv(const ConvGeom& g) : x(g.N, g.C, g.H, g.W), y(g.N, g.K, g.P, g.Q), w(g), conv(g) {}
};

// The cached choice for one (direction, shape): the algorithm (as int) and the workspace it needs.
enum class Dir { Fwd = 0, BwdData = 1, BwdFilter = 2 };
struct Choice {
  int algo;
  size_t workspace;
  float ms;  // cuDNN's own timing of the algorithm on this shape
};
using Key = std::array<int64_t, 10>;
Key key_of(Dir d, const ConvGeom& g) { return {int64_t(d), g.N, g.C, g.H, g.W, g.K, g.R, g.S, g.stride, g.pad}; }
std::mutex g_cache_mu;
std::map<Key, Choice> g_cache;

// Picks the fastest successful FP32 result of a cudnnFind* call.
template <class Perf>
Choice best_of(const Perf* perf, int count, const char* what) {
  for (int i = 0; i < count; ++i)
    if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].mathType != CUDNN_TENSOR_OP_MATH &&
        perf[i].mathType != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION)
      return {int(perf[i].algo), perf[i].memory, perf[i].time};
  FN_FAIL("cuDNN found no FP32 algorithm for ", what);
}

// Returns the cached choice, or runs `find` (which times the algorithms on the call's own buffers; the
// output buffer is about to be overwritten anyway) and caches what it returns.
template <class FindFn>
Choice choose(Dir dir, const ConvGeom& g, FindFn find) {
  Key k = key_of(dir, g);
  {
    std::lock_guard<std::mutex> lk(g_cache_mu);
    auto it = g_cache.find(k);
    if (it != g_cache.end()) return it->second;
  }
  Choice c = find(::fn::cuda::workspace(kFindWorkspace), kFindWorkspace);
  std::lock_guard<std::mutex> lk(g_cache_mu);
  g_cache[k] = c;
  return c;
}

void forward_cudnn(const float* x, const float* w, float* y, const ConvGeom& g) {
  CudnnConv d(g);
  cudnnHandle_t h = ::fn::cuda::cudnn();
  Choice c = choose(Dir::Fwd, g, [&](void* ws, size_t bytes) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x.d, x, d.w.d, w, d.conv.d, d.y.d, y,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf, ws, bytes));
    return best_of(perf, n, "the forward convolution");
  });
  const float one = 1.f, zero = 0.f;
  void* ws = c.workspace ? ::fn::cuda::workspace(c.workspace) : nullptr;
  CUDNN_CHECK(cudnnConvolutionForward(h, &one, d.x.d, x, d.w.d, w, d.conv.d, cudnnConvolutionFwdAlgo_t(c.algo), ws,
                                      c.workspace, &zero, d.y.d, y));
}

void backward_data_cudnn(const float* gy, const float* w, float* gx, const ConvGeom& g) {
  CudnnConv d(g);
  cudnnHandle_t h = ::fn::cuda::cudnn();
  Choice c = choose(Dir::BwdData, g, [&](void* ws, size_t bytes) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w.d, w, d.y.d, gy, d.conv.d, d.x.d, gx,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf, ws, bytes));
    return best_of(perf, n, "the data gradient");
  });
  const float one = 1.f, zero = 0.f;
  void* ws = c.workspace ? ::fn::cuda::workspace(c.workspace) : nullptr;
  CUDNN_CHECK(cudnnConvolutionBackwardData(h, &one, d.w.d, w, d.y.d, gy, d.conv.d,
                                           cudnnConvolutionBwdDataAlgo_t(c.algo), ws, c.workspace, &zero, d.x.d, gx));
}

Choice find_filter(const float* x, const float* gy, float* gw, const ConvGeom& g) {
  return choose(Dir::BwdFilter, g, [&](void* ws, size_t bytes) {
    CudnnConv d(g);
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    int n = 0;
    CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(::fn::cuda::cudnn(), d.x.d, x, d.y.d, gy, d.conv.d, d.w.d,
                                                              gw, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf,
                                                              ws, bytes));
    return best_of(perf, n, "the filter gradient");
  });
}

// How many batch chunks the filter gradient of this shape runs in: 1, 2 or 4, chosen once by timing.
std::map<Key, int> g_filter_chunks;

int filter_chunks(const float* x, const float* gy, float* gw, const ConvGeom& g) {
  const Key k = key_of(Dir::BwdFilter, g);
  {
    std::lock_guard<std::mutex> lk(g_cache_mu);
    auto it = g_filter_chunks.find(k);
    if (it != g_filter_chunks.end()) return it->second;
  }
  double best = find_filter(x, gy, gw, g).ms;
  int chunks = 1;
  for (int c : {2, 4}) {
    if (g.N % c != 0) continue;
    ConvGeom gc = g;
    gc.N = g.N / c;
    const double t = double(c) * find_filter(x, gy, gw, gc).ms;
    if (t < 0.95 * best) best = t, chunks = c;
  }
  std::lock_guard<std::mutex> lk(g_cache_mu);
  g_filter_chunks[k] = chunks;
  return chunks;
}

// forced_chunks: 0 = chosen by timing; else the batch is split into that many chunks (it must divide N).
void backward_filter_cudnn(const float* x, const float* gy, float* gw, const ConvGeom& g, int forced_chunks) {
  const int chunks = forced_chunks > 0 ? forced_chunks : filter_chunks(x, gy, gw, g);
  FN_CHECK(g.N % chunks == 0, "conv2d_backward_filter: ", chunks, " chunks do not divide the batch of ", g.N);
  ConvGeom gc = g;
  gc.N = g.N / chunks;
  const Choice c = find_filter(x, gy, gw, gc);
  CudnnConv d(gc);
  cudnnHandle_t h = ::fn::cuda::cudnn();
  void* ws = c.workspace ? ::fn::cuda::workspace(c.workspace) : nullptr;
  const float one = 1.f;
  for (int i = 0; i < chunks; ++i) {
    const float beta = i == 0 ? 0.f : 1.f;  // the first chunk writes dW, the others add to it
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, &one, d.x.d, x + i * gc.N * g.chw(), d.y.d,
                                               gy + i * gc.N * g.K * g.pq(), d.conv.d,
                                               cudnnConvolutionBwdFilterAlgo_t(c.algo), ws, c.workspace, &beta, d.w.d,
                                               gw));
  }
}

bool use_cudnn(ConvAlgo a) { return a == ConvAlgo::Auto || a == ConvAlgo::Cudnn; }

}  // namespace

void conv2d_forward_f32(const float* x, const float* w, const float* b, float* y, const ConvGeom& g, bool relu,
                        ConvAlgo algo) {
  if (g.N * g.K * g.pq() == 0) return;
  if (use_cudnn(algo)) forward_cudnn(x, w, y, g);
  else forward_im2col(x, w, y, g);
  if (b || relu) bias_add_f32(y, b, g.N, g.K, g.pq(), relu);
}

void conv2d_backward_data_f32(const float* gy, const float* w, float* gx, const ConvGeom& g, ConvAlgo algo) {
  if (g.N * g.chw() == 0) return;
  if (use_cudnn(algo)) backward_data_cudnn(gy, w, gx, g);
  else backward_data_im2col(gy, w, gx, g);
}

void conv2d_backward_filter_f32(const float* x, const float* gy, float* gw, const ConvGeom& g, ConvAlgo algo,
                                int filter_chunks) {
  if (g.K * g.crs() == 0) return;
  if (use_cudnn(algo) && g.N > 0) backward_filter_cudnn(x, gy, gw, g, filter_chunks);
  else backward_filter_im2col(x, gy, gw, g);
}

}  // namespace fn::kernels::cuda
