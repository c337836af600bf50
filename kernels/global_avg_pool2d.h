// Global average pooling (the last pool of ResNet and EfficientNet, before the classifier), NCHW:
//   forward   y[n, c] = (1 / HW) * sum over (h, w) of x[n, c, h, w]        x (N, C, H, W) -> y (N, C)
//   backward  gx[n, c, h, w] = gy[n, c] / HW                               a broadcast over each plane
// The output is (N, C), not PyTorch's (N, C, 1, 1): every consumer (a Linear head) wants a matrix, and
// F::reshape gives the 4-D view without a copy where one is needed.
// Sums: the CPU accumulates in double (the plane's float values exactly rounded once at the end); the GPU
// in float, a fixed tree per plane (kernels/block_reduce.cuh). The backward computes gy / HW once per plane
// in T, so its bits are the same on every path and device. All paths are deterministic: each output is
// written by one thread (CPU) or one warp / block (GPU), in a fixed order.
// Tensors share one device and dtype: float32, or float64 on the CPU. docs/kernels/global_avg_pool2d.md.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fn::kernels {

// Kernel versions, selectable by tests and benchmarks. Default = the fastest correct one.
//   forward   CPU: V1Reference (plain loops, one plane after another), Default = 4 double lanes per plane
//             (AVX2 where the float data allows), planes split over the cores when the input is large.
//             CUDA: V1Thread (one thread per plane, a serial sum: the naive version), V2Warp (one warp
//             per plane, shuffles), V3Block (one 256-thread block per plane, block_reduce), Default = V2Warp
//             for planes up to 1024 cells (7x7 .. 28x28), V3Block above.
//   backward  CPU: V1Reference, Default = planes split over the cores. CUDA: one thread per gx element
//             (Default; the only version: a pure broadcast is a store stream).
enum class GlobalAvgPoolForward { Default, V1Reference, V1Thread, V2Warp, V3Block };
enum class GlobalAvgPoolBackward { Default, V1Reference };

// y (N, C) is written in full.
void global_avg_pool2d_forward(const Tensor& x, Tensor& y, GlobalAvgPoolForward version = GlobalAvgPoolForward::Default);
// gx (N, C, H, W) is written in full.
void global_avg_pool2d_backward(const Tensor& gy, Tensor& gx,
                                GlobalAvgPoolBackward version = GlobalAvgPoolBackward::Default);

#ifdef FN_WITH_CUDA
namespace cuda {
void global_avg_pool2d_forward_f32(GlobalAvgPoolForward version, const float* x, float* y, int64_t planes, int64_t hw);
void global_avg_pool2d_backward_f32(const float* gy, float* gx, int64_t planes, int64_t hw);
}  // namespace cuda
#endif

}  // namespace fn::kernels
