// The few CUDA kernels the Tensor itself needs (fill, axpy for gradient accumulation). fp32 only.
#pragma once
#include <cstdint>

namespace fn::cuda {
void fill_f32(float* p, int64_t n, float v);
void axpy_f32(float* y, const float* x, int64_t n, float alpha);  // y += alpha * x
void memcpy_d2d(void* dst, const void* src, size_t bytes);
void memcpy_h2d(void* dst, const void* src, size_t bytes);
void memcpy_d2h(void* dst, const void* src, size_t bytes);  // synchronous
}  // namespace fn::cuda
