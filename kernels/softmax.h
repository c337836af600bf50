// Softmax over the last dimension of a (rows, cols) view:
//   y[r,c] = exp(x[r,c] - m_r) / sum_c' exp(x[r,c'] - m_r),  m_r = max_c x[r,c]  (stable)
// Backward: gx[r,c] = y[r,c] * (gy[r,c] - sum_c' gy[r,c'] y[r,c']).
#pragma once
#include "core/tensor.h"

namespace fn::kernels {

void softmax_forward(const Tensor& x, Tensor& y);
void softmax_backward(const Tensor& y, const Tensor& gy, Tensor& gx);

#ifdef FN_WITH_CUDA
namespace cuda {
void softmax_forward_f32(const float* x, float* y, int64_t rows, int64_t cols);
void softmax_backward_f32(const float* y, const float* gy, float* gx, int64_t rows, int64_t cols);
}  // namespace cuda
#endif

}  // namespace fn::kernels
