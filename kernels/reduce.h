// Reductions: the sum of all elements and the sum of their squares (float64 accumulation on the CPU, a
// deterministic two-pass tree on CUDA, so a run reproduces bitwise), and the sum's backward, the broadcast
// of a one-element tensor. sum_squares is the gradient clip's norm: one read of x, no squared copy.
#pragma once
#include <vector>

#include "core/tensor.h"

namespace fn::kernels {

void sum_all(const Tensor& x, Tensor& out);                          // out (1 element) = sum(x)
void sum_squares(const Tensor& x, Tensor& out);                      // out (1 element) = sum(x * x)
// out (xs.size() elements)[i] = sum(xs[i] * xs[i]), each bitwise equal to sum_squares(xs[i]); on CUDA in
// one pair of launches for up to 64 tensors.
void sum_squares_each(const std::vector<Tensor>& xs, Tensor& out);
void broadcast_scalar(const Tensor& s, double alpha, Tensor& out);   // out[i] = alpha * s[0]

#ifdef FN_WITH_CUDA
namespace cuda {
void sum_all_f32(const float* x, int64_t n, float* out);
void sum_squares_f32(const float* x, int64_t n, float* out);
constexpr int kMaxListTensors = 64;
void sum_squares_each_f32(const float* const* xs, const int64_t* ns, int count, float* out);
void broadcast_scalar_f32(const float* s, float alpha, float* out, int64_t n);
}  // namespace cuda
#endif

}  // namespace fn::kernels
