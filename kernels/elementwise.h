// Elementwise ops: y = a + b, y = a * b, y = alpha * a, ReLU and ReLU6 and their backwards, dropout with a
// Philox mask.
// Every launcher takes tensors on one device, float32 or (CPU) float64, with equal element counts.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fn::kernels {

void add(const Tensor& a, const Tensor& b, Tensor& y);                 // y = a + b
void mul(const Tensor& a, const Tensor& b, Tensor& y);                 // y = a * b
void scale(const Tensor& a, double alpha, Tensor& y);                  // y = alpha * a
void relu_forward(const Tensor& x, Tensor& y);                         // y = max(x, 0)
void relu_backward(const Tensor& y, const Tensor& gy, Tensor& gx);     // gx = gy * (y > 0)
void relu6_forward(const Tensor& x, Tensor& y);                        // y = min(max(x, 0), 6)
void relu6_backward(const Tensor& y, const Tensor& gy, Tensor& gx);    // gx = gy * (0 < y < 6)
// Inverted dropout: keep with probability 1-p, scale kept values by 1/(1-p). The mask is a pure
// function of (seed, offset + i), so CPU and CUDA drop the same elements, and a batch split into parts
// (data-parallel ranks) draws each element's mask at its place in the whole batch (offset: the part's first).
void dropout_forward(const Tensor& x, float p, uint64_t seed, Tensor& y, int64_t offset = 0);
void dropout_backward(const Tensor& gy, float p, uint64_t seed, Tensor& gx, int64_t offset = 0);

#ifdef FN_WITH_CUDA
namespace cuda {
enum class Binary { Add, Mul };
void binary_f32(Binary op, const float* a, const float* b, float* y, int64_t n);
void scale_f32(const float* a, float alpha, float* y, int64_t n);
void relu_forward_f32(const float* x, float* y, int64_t n);
void relu_backward_f32(const float* y, const float* gy, float* gx, int64_t n);
void relu6_forward_f32(const float* x, float* y, int64_t n);
void relu6_backward_f32(const float* y, const float* gy, float* gx, int64_t n);
void dropout_f32(const float* x, float p, uint64_t seed, float* y, int64_t n, int64_t offset);
}  // namespace cuda
#endif

}  // namespace fn::kernels
