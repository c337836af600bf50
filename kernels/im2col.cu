// im2col / col2im on the GPU, the lowering of the teaching convolution (conv2d.cu, ConvAlgo::Im2colGemm).
// Math and layouts: see im2col.h. The per-element bodies (im2col_value, col2im_value) are the ones the
// CPU tests run, so the indexing checked there is the indexing run here.
// im2col: one thread per col element (image n, row (c,r,s), column j = p*Q + q), grid-stride. Consecutive
//   threads write consecutive j, so stores are coalesced; loads of one row p are contiguous at stride 1.
// col2im: one thread per input pixel (n, c, h, w) gathers its (at most R*S) col entries: each pixel is
//   written once, with no atomics, so the result is deterministic.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/im2col.h"
#include "kernels/launch.h"

namespace fn::kernels::cuda {
namespace {

__global__ void im2col_kernel(const float* x, ConvGeom g, int64_t images, float* col) {
  const int64_t per_image = g.crs() * g.pq(), n_all = images * per_image;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_all; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t n = i / per_image, e = i - n * per_image;
    col[i] = im2col_value(x + n * g.chw(), g, e / g.pq(), e % g.pq());
  }
}

__global__ void col2im_kernel(const float* col, ConvGeom g, int64_t images, float* gx) {
  const int64_t hw = g.H * g.W, n_all = images * g.chw();
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n_all; i += int64_t(blockDim.x) * gridDim.x) {
    int64_t n = i / g.chw(), e = i - n * g.chw();
    int64_t c = e / hw, h = (e % hw) / g.W, w = e % g.W;
    gx[i] = col2im_value(col + n * g.crs() * g.pq(), g, c, h, w);
  }
}

}  // namespace

void im2col_f32(const float* x, const ConvGeom& g, int64_t images, float* col) {
  int64_t n = images * g.crs() * g.pq();
  if (n == 0) return;
  im2col_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(x, g, images, col);
  CUDA_CHECK_LAUNCH();
}

void col2im_f32(const float* col, const ConvGeom& g, int64_t images, float* gx) {
  int64_t n = images * g.chw();
  if (n == 0) return;
  col2im_kernel<<<grid_for(n), 256, 0, ::fn::cuda::stream()>>>(col, g, images, gx);
  CUDA_CHECK_LAUNCH();
}

}  // namespace fn::kernels::cuda
