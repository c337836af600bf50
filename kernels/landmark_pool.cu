// Landmark pooling on the GPU.
// Math: out[n, s*C + c] = max over the clipped (2r+1)^2 window around landmark s of features[n, c, :, :]
//       (rules for rounding, clipping and invisible slots in landmark_pool_body.h); the backward routes
//       each output gradient to its argmax cell.
// Layouts: features and grad_features NCHW; landmarks (N, L, 2); visibility (N, L); out, grad_out and
//       argmax (N, L*C) slot-major.
// Thread mapping:
//   forward v1 (naive)      one thread per output, output order (n, s, c): every thread decodes its index,
//                           reads its landmark and computes its window (the CPU's body, unchanged).
//   forward v2 (slot block) one block per slot (n, s): the window is computed once per block from a
//                           broadcast load, threads stride over the channels; out/argmax stores are
//                           coalesced. NCHW windows are 3x3 cells of one plane, so loads are one or two
//                           32-byte sectors per window row whatever the mapping.
//   backward gather         one thread per input cell, sums its plane's L output gradients in slot order.
//   backward gather-plane   one block per plane (n, c): the plane's L (argmax, grad) pairs are staged in
//                           shared memory once, threads stride over the plane's cells writing coalesced
//                           floats. Same order of additions as the gather: bitwise equal.
//   backward gather-vec4    one thread per 4 consecutive cells of a plane (H*W divisible by 4): it reads the
//                           plane's L (argmax, grad) pairs straight from global memory (the ~200 threads of
//                           a plane share them through L1) and writes one float4. The gradient is mostly
//                           zeros, so this is a memset that also drops the few gathered values in: one
//                           16-byte store per thread, no shared memory, no barrier. Same slot order: bitwise
//                           equal to the gather. Measured slower than gather-plane on the H100: 16 loads
//                           per thread for one store (docs/kernels/landmark_pool.md).
//   backward zero-scatter   the gradient is nearly all zeros: one block per 8 planes writes them with
//                           16-byte stores (4-byte where H*W is not a multiple of 4), a barrier, then one
//                           thread per plane (n, c) adds its L gradients into their argmax cells in slot
//                           order. A plane has one writer, so no atomics and the same order of additions as
//                           the gather: bitwise equal. One launch (a cudaMemsetAsync plus a scatter kernel
//                           measured 0.030 ms). The CUDA default.
//   backward atomic         zero-fill, then one thread per output does atomicAdd into its argmax cell.
//                           Kept for the benchmark; with 3+ slots on one cell the sum order varies.
//   accumulate              the training step's backward: conv4_3's gradient already holds pool4's, so
//                           one thread per plane (n, c) adds its L gradients into it in slot order (131k
//                           read-modify-writes at batch 32) instead of writing a dense 51 MB tensor that
//                           the autograd then adds (another 154 MB of traffic). Deterministic; it differs
//                           from the dense path in the last bit only where two slots share a cell
//                           ((g + a) + b against g + (a + b)).
#include <cstdint>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/landmark_pool.h"
#include "kernels/launch.h"

namespace fn::kernels::cuda {
namespace {

__global__ void forward_v1(const float* __restrict__ feat, const float* __restrict__ lm, const float* __restrict__ vis,
                           int C, int H, int W, int L, int stride, int radius, LandmarkPoolMode mode, float* out,
                           int32_t* argmax, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x)
    landmark_pool_element(i, feat, lm, vis, C, H, W, L, stride, radius, mode, out, argmax);
}

__global__ void forward_v2(const float* __restrict__ feat, const float* __restrict__ lm, const float* __restrict__ vis,
                           int C, int H, int W, int L, int stride, int radius, LandmarkPoolMode mode, float* out,
                           int32_t* argmax) {
  const int64_t ns = blockIdx.x;  // n*L + s
  const int64_t n = ns / L;
  PoolWindow win{};  // read only where pooled
  // Every thread computes the same window from the same (broadcast) loads: no divergence, no sync.
  const bool pooled = slot_window(lm[2 * ns], lm[2 * ns + 1], vis[ns], stride, radius, H, W, mode, win);
  const int64_t plane = int64_t(H) * W;
  float* o = out + ns * C;
  int32_t* a = argmax + ns * C;
  for (int c = threadIdx.x; c < C; c += blockDim.x) {
    if (pooled) {
      window_max(feat + (n * C + c) * plane, W, win, o[c], a[c]);
    } else {
      o[c] = 0.f;
      a[c] = -1;
    }
  }
}

__global__ void backward_gather(const float* __restrict__ gout, const int32_t* __restrict__ argmax, int C, int L,
                                int64_t plane, float* gf, int64_t total) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t nc = i / plane, first = (nc / C) * L * C + nc % C;
    gf[i] = landmark_pool_gather(int32_t(i % plane), L, argmax + first, gout + first, C);
  }
}

__global__ void backward_gather_plane(const float* __restrict__ gout, const int32_t* __restrict__ argmax, int C, int L,
                                      int plane, float* gf) {
  extern __shared__ unsigned char smem[];
  int32_t* s_arg = reinterpret_cast<int32_t*>(smem);
  float* s_g = reinterpret_cast<float*>(s_arg + L);
  const int64_t nc = blockIdx.x;
  const int64_t first = (nc / C) * L * C + nc % C;
  for (int s = threadIdx.x; s < L; s += blockDim.x) {
    s_arg[s] = argmax[first + int64_t(s) * C];
    s_g[s] = gout[first + int64_t(s) * C];
  }
  __syncthreads();
  float* x = gf + nc * plane;
  for (int cell = threadIdx.x; cell < plane; cell += blockDim.x) x[cell] = landmark_pool_gather(cell, L, s_arg, s_g, 1);
}

__global__ void backward_gather_vec4(const float* __restrict__ gout, const int32_t* __restrict__ argmax, int C, int L,
                                     int64_t plane4, float4* __restrict__ gf, int64_t total4) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total4; i += int64_t(blockDim.x) * gridDim.x) {
    const int64_t nc = i / plane4, first = (nc / C) * L * C + nc % C;
    const int32_t cell = int32_t(i % plane4) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int s = 0; s < L; ++s) {
      const uint32_t d = uint32_t(__ldg(argmax + first + int64_t(s) * C) - cell);  // invisible (-1): huge
      if (d < 4u) {
        const float g = __ldg(gout + first + int64_t(s) * C);
        if (d == 0) v.x += g;
        else if (d == 1) v.y += g;
        else if (d == 2) v.z += g;
        else v.w += g;
      }
    }
    gf[i] = v;
  }
}

constexpr int kPlanesPerBlock = 8;

template <bool kVec4>
__global__ void backward_zero_scatter(const float* __restrict__ gout, const int32_t* __restrict__ argmax, int C, int L,
                                      int64_t plane, int64_t planes, float* __restrict__ gf) {
  const int64_t p0 = int64_t(blockIdx.x) * kPlanesPerBlock;
  const int np = int(planes - p0 < kPlanesPerBlock ? planes - p0 : kPlanesPerBlock);
  float* base = gf + p0 * plane;
  const int64_t n = np * plane;
  if (kVec4) {
    float4* b4 = reinterpret_cast<float4*>(base);
    for (int64_t i = threadIdx.x; i < n / 4; i += blockDim.x) b4[i] = make_float4(0.f, 0.f, 0.f, 0.f);
  } else {
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) base[i] = 0.f;
  }
  __syncthreads();  // the block's zeros are visible to its own threads before the adds
  if (int(threadIdx.x) < np) landmark_pool_scatter_plane(p0 + threadIdx.x, C, L, plane, argmax, gout, gf);
}

__global__ void accumulate_planes(const float* __restrict__ gout, const int32_t* __restrict__ argmax, int C, int L,
                                  int64_t plane, int64_t planes, float* __restrict__ gf) {
  for (int64_t nc = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; nc < planes; nc += int64_t(blockDim.x) * gridDim.x)
    landmark_pool_scatter_plane(nc, C, L, plane, argmax, gout, gf);
}

__global__ void backward_atomic(const float* __restrict__ gout, const int32_t* __restrict__ argmax, int C, int L,
                                int64_t plane, float* gf, int64_t total) {
  for (int64_t o = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; o < total; o += int64_t(blockDim.x) * gridDim.x) {
    int32_t a = argmax[o];
    if (a < 0) continue;
    int64_t c = o % C, n = o / (int64_t(L) * C);
    atomicAdd(gf + (n * C + c) * plane + a, gout[o]);
  }
}

}  // namespace

void landmark_pool_forward_f32(LandmarkPoolForward v, const float* feat, const float* lm, const float* vis, int N,
                               int C, int H, int W, int L, const LandmarkPoolArgs& a, float* out, int32_t* argmax) {
  const int64_t total = int64_t(N) * L * C;
  if (total == 0) return;
  // Default: v1. On the H100 at batch 32 it takes 7 us against v2's 10 us: 131k threads with one output each
  // hide the load latency better than 256 blocks that walk 512 channels 128 at a time.
  if (v == LandmarkPoolForward::V1Naive || v == LandmarkPoolForward::Default) {
    forward_v1<<<grid_for(total), 256, 0, ::fn::cuda::stream()>>>(feat, lm, vis, C, H, W, L, a.stride, a.radius, a.mode,
                                                                  out, argmax, total);
  } else {
    // 128 threads: C is 512 at full width and 128 at quarter width, so no block idles for long.
    forward_v2<<<unsigned(int64_t(N) * L), 128, 0, ::fn::cuda::stream()>>>(feat, lm, vis, C, H, W, L, a.stride,
                                                                           a.radius, a.mode, out, argmax);
  }
  CUDA_CHECK_LAUNCH();
}

void landmark_pool_backward_f32(LandmarkPoolBackward v, const float* gout, const int32_t* argmax, int N, int C, int H,
                                int W, int L, float* gf) {
  const int64_t plane = int64_t(H) * W, cells = int64_t(N) * C * plane, outs = int64_t(N) * L * C;
  if (cells == 0) return;
  cudaStream_t st = ::fn::cuda::stream();
  switch (v) {
    case LandmarkPoolBackward::Gather:
      backward_gather<<<grid_for(cells), 256, 0, st>>>(gout, argmax, C, L, plane, gf, cells);
      break;
    case LandmarkPoolBackward::AtomicScatter:
      CUDA_CHECK(cudaMemsetAsync(gf, 0, size_t(cells) * sizeof(float), st));
      if (outs > 0) backward_atomic<<<grid_for(outs), 256, 0, st>>>(gout, argmax, C, L, plane, gf, outs);
      break;
    case LandmarkPoolBackward::Default:
    case LandmarkPoolBackward::ZeroScatter: {
      const int64_t planes = int64_t(N) * C;
      const unsigned blocks = unsigned((planes + kPlanesPerBlock - 1) / kPlanesPerBlock);
      if (plane % 4 == 0 && reinterpret_cast<uintptr_t>(gf) % 16 == 0)
        backward_zero_scatter<true><<<blocks, 256, 0, st>>>(gout, argmax, C, L, plane, planes, gf);
      else
        backward_zero_scatter<false><<<blocks, 256, 0, st>>>(gout, argmax, C, L, plane, planes, gf);
      break;
    }
    case LandmarkPoolBackward::GatherVec4:
      if (plane % 4 == 0 && reinterpret_cast<uintptr_t>(gf) % 16 == 0) {
        const int64_t total4 = cells / 4;
        backward_gather_vec4<<<grid_for(total4), 256, 0, st>>>(gout, argmax, C, L, plane / 4,
                                                               reinterpret_cast<float4*>(gf), total4);
        break;
      }
      [[fallthrough]];  // a plane that does not split into float4s
    default:  // GatherPlane
      backward_gather_plane<<<unsigned(int64_t(N) * C), 256, size_t(L) * 8, st>>>(gout, argmax, C, L, int(plane), gf);
      break;
  }
  CUDA_CHECK_LAUNCH();
}

void landmark_pool_accumulate_f32(const float* gout, const int32_t* argmax, int N, int C, int H, int W, int L,
                                  float* gf) {
  const int64_t planes = int64_t(N) * C;
  if (planes == 0 || int64_t(H) * W == 0) return;
  accumulate_planes<<<grid_for(planes), 256, 0, ::fn::cuda::stream()>>>(gout, argmax, C, L, int64_t(H) * W, planes, gf);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
