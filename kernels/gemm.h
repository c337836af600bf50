// Matrix products, row-major: C = alpha * op(A) * op(B) + beta * C with op(A) (M,K), op(B) (K,N), C (M,N).
// CPU: OpenBLAS (sgemm / dgemm). CUDA: cuBLAS sgemm (row-major handled by computing C^T = B^T A^T).
#pragma once
#include <cstdint>
#include <string>

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

// OpenBLAS reads two settings from the environment once, when the library loads, so a program calls this
// first thing in main(): where a setting is wanted and unset, it sets it and re-executes the program, which
// then finds everything set and goes on (as it does where the user set them, or the re-execution failed).
// - OPENBLAS_THREAD_TIMEOUT: idle worker threads spin on sched_yield for 2^28 cycles after each product before
//   they sleep; on a 2-core machine they take turns with our own image and loader threads, 10-15% of a
//   cpu-small step's CPU time (docs/performance.md). Set to 2^12 cycles.
// - OPENBLAS_CORETYPE: OpenBLAS picks its kernels by the CPU's model number, and a CPU newer than the library
//   gets the generic SSE3 ones ("Prescott"): Debian 12's 0.3.21 on a 5th-generation Xeon, where the Lite0 step
//   took twice as long. Where the kernels chosen use neither AVX2 nor AVX-512 but the CPU has them, it names
//   the best the CPU runs (blas_kernels_for_cpu).
void configure_blas(char** argv);

// The vector instruction sets that decide OpenBLAS's kernels: AVX2 with FMA, AVX-512 F, BW, DQ and VL.
struct CpuVectorIsa {
  bool avx2_fma = false, avx512 = false;
};
CpuVectorIsa cpu_vector_isa();  // this CPU's

// The OpenBLAS kernels for a CPU with these instruction sets: "SkylakeX" with AVX-512, "Haswell" with AVX2,
// else "" (leave OpenBLAS's choice). Only where `chosen`, the kernels OpenBLAS picked, predate AVX2; a choice
// of AVX2 kernels or newer is kept.
std::string blas_kernels_for_cpu(const std::string& chosen, CpuVectorIsa isa);

// The kernels OpenBLAS runs with ("SkylakeX", "Haswell", "Prescott", ...), for benchmark headers.
std::string blas_kernels();

}  // namespace fn::kernels
