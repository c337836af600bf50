// Global average pooling on the GPU, float32.
// Math: y[n, c] = sum over the plane x[n, c, :, :] / HW; gx[n, c, h, w] = gy[n, c] / HW (global_avg_pool2d.h).
// Layout: x and gx NCHW, so plane p = n*C + c is HW consecutive floats at x + p*HW; y and gy (N, C) = one
// float per plane.
// Thread mapping:
//   forward v1 (thread)  one thread per plane, a serial sum. The naive version: neighbouring threads read
//                        addresses HW floats apart, so a warp's load touches 32 sectors for 32 useful floats
//                        and each thread walks its plane alone.
//   forward v2 (warp)    one warp per plane, 8 planes per 256-thread block: lane l sums cells l, l+32, ...
//                        (one coalesced 128-byte row per step), then warp_reduce's butterfly adds the 32
//                        partials. For the backbones' last maps (5x5 .. 7x7: 25 .. 49 cells) that is one or
//                        two loads per lane and no shared memory or barrier. The default up to 1024 cells.
//   forward v3 (block)   one 256-thread block per plane, thread t sums cells t, t+256, ..., block_reduce's
//                        fixed tree adds the 256 partials: for large maps (a 56x56 plane is 3136 cells), where
//                        one warp would serialise ~100 loads. The default above 1024 cells.
//   backward             one thread per gx element (grid-stride): gx[i] = gy[i / HW] / HW. A store stream;
//                        the gy reads hit L1 (a plane's threads read one value).
// Every version sums a plane in a fixed order (no atomics): results are bitwise reproducible. They differ
// from each other and from the CPU's double sum in the last bits of float only.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/block_reduce.cuh"
#include "kernels/global_avg_pool2d.h"
#include "kernels/launch.h"
#include "kernels/launch.cuh"

namespace fn::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;
constexpr int64_t kWarpMaxCells = 1024;  // v2 up to here, v3 above (the default's switch)
constexpr int64_t kMaxBlocks = int64_t(1) << 20;  // loops stride over the planes beyond this

__global__ void forward_v1(const float* __restrict__ x, float* __restrict__ y, int64_t planes, int64_t hw) {
  FN_GRID_STRIDE(p, planes) {
    const float* xp = x + p * hw;
    float s = 0.f;
    for (int64_t i = 0; i < hw; ++i) s += xp[i];
    y[p] = s / float(hw);
  }
}

__global__ void forward_v2(const float* __restrict__ x, float* __restrict__ y, int64_t planes, int64_t hw) {
  const int lane = threadIdx.x & 31;
  // The loop bound is the same for the 32 lanes of a warp, so every lane reaches warp_reduce's shuffles.
  for (int64_t p = int64_t(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; p < planes;
       p += int64_t(gridDim.x) * kWarpsPerBlock) {
    const float* xp = x + p * hw;
    float s = 0.f;
    for (int64_t i = lane; i < hw; i += 32) s += xp[i];
    s = warp_reduce<ReduceSum>(s);
    if (lane == 0) y[p] = s / float(hw);
  }
}

__global__ void forward_v3(const float* __restrict__ x, float* __restrict__ y, int64_t planes, int64_t hw) {
  // The loop bound is the same for the whole block, so every thread reaches block_reduce's barriers.
  for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
    const float* xp = x + p * hw;
    float s = 0.f;
    for (int64_t i = threadIdx.x; i < hw; i += kThreads) s += xp[i];
    s = block_reduce<kThreads, ReduceSum>(s);
    if (threadIdx.x == 0) y[p] = s / float(hw);
  }
}

__global__ void backward_kernel(const float* __restrict__ gy, float* __restrict__ gx, int64_t planes, int64_t hw) {
  FN_GRID_STRIDE(i, planes * hw) gx[i] = gy[i / hw] / float(hw);
}

int blocks(int64_t units) { return int(units < 1 ? 1 : (units > kMaxBlocks ? kMaxBlocks : units)); }

}  // namespace

void global_avg_pool2d_forward_f32(GlobalAvgPoolForward version, const float* x, float* y, int64_t planes,
                                   int64_t hw) {
  if (planes == 0) return;
  FN_CHECK(version != GlobalAvgPoolForward::V1Reference, "global_avg_pool2d: V1Reference is the CPU reference");
  if (version == GlobalAvgPoolForward::Default)
    version = hw <= kWarpMaxCells ? GlobalAvgPoolForward::V2Warp : GlobalAvgPoolForward::V3Block;
  cudaStream_t s = ::fn::cuda::stream();
  switch (version) {
    case GlobalAvgPoolForward::V1Thread:
      forward_v1<<<grid_for(planes), kThreads, 0, s>>>(x, y, planes, hw);
      break;
    case GlobalAvgPoolForward::V2Warp:
      forward_v2<<<blocks((planes + kWarpsPerBlock - 1) / kWarpsPerBlock), kThreads, 0, s>>>(x, y, planes, hw);
      break;
    default:
      forward_v3<<<blocks(planes), kThreads, 0, s>>>(x, y, planes, hw);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

void global_avg_pool2d_backward_f32(const float* gy, float* gx, int64_t planes, int64_t hw) {
  if (planes == 0) return;
  backward_kernel<<<grid_for(planes * hw), kThreads, 0, ::fn::cuda::stream()>>>(gy, gx, planes, hw);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
