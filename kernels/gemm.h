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

// OpenBLAS's idle worker threads spin on sched_yield for 2^28 cycles after each product before they sleep.
// On a 2-core machine they then take turns with our own image threads and with the loader threads: 10-15%
// of a cpu-small step's CPU time (docs/performance.md). The spin is read from OPENBLAS_THREAD_TIMEOUT once,
// when the library loads, so a program that wants a short one calls this first thing in main(): where the
// variable is unset it sets 2^12 cycles and re-executes the program; where it is set (by the user, or by
// the re-execution) it returns at once. If the re-execution fails, the program goes on with the default.
void blas_short_idle_spin(char** argv);

}  // namespace fn::kernels
