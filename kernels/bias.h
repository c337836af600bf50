// Per-channel bias, used by linear (y (N, out), channel = column) and conv2d (y (N, K, P, Q), channel = K):
//   bias_add:  y[n, k, i] = act(y[n, k, i] + b[k])      act = identity, or ReLU when `relu` (conv2d_relu)
//   bias_grad: gb[k] = sum over n, i of gy[n, k, i]     (the column sums of linear's output gradient)
// The channel is dimension 1 of y; everything after it is the inner extent i (1 for a 2-D y).
// Tensors: one device, float32 or (CPU) float64. Sums run in a fixed order, so results are deterministic.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fn::kernels {

void bias_add(Tensor& y, const Tensor& b, bool relu = false);  // in place
void bias_grad(const Tensor& gy, Tensor& gb);                 // gb overwritten

#ifdef FN_WITH_CUDA
namespace cuda {
void bias_add_f32(float* y, const float* b /* may be null: ReLU only */, int64_t outer, int64_t channels, int64_t inner, bool relu);
void bias_grad_f32(const float* gy, float* gb, int64_t outer, int64_t channels, int64_t inner);
}  // namespace cuda
#endif

}  // namespace fn::kernels
