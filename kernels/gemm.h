// Matrix products, row-major: C = alpha * op(A) * op(B) + beta * C with op(A) (M,K), op(B) (K,N), C (M,N).
// CPU: OpenBLAS (sgemm / dgemm). CUDA: cuBLAS sgemm (row-major handled by computing C^T = B^T A^T).
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fn::kernels {

// Tensor form: A, B, C contiguous 2-D views; shapes are checked against trans flags.
void gemm(bool trans_a, bool trans_b, double alpha, const Tensor& A, const Tensor& B, double beta, Tensor& C);

// Pointer forms with leading dimensions (row strides).
void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
              const double* B, int64_t ldb, double beta, double* C, int64_t ldc);
#ifdef FN_WITH_CUDA
void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
#endif

// OpenBLAS thread count for the CPU products (default: all cores).
void set_blas_threads(int n);
int blas_threads();

}  // namespace fn::kernels
