// GEMM dispatch: OpenBLAS on the CPU, cuBLAS on CUDA.
#include "kernels/gemm.h"

#include <cblas.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>

#ifdef FN_WITH_CUDA
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_corename(void);
}

namespace fn::kernels {

void set_blas_threads(int n) { openblas_set_num_threads(n); }
int blas_threads() { return openblas_get_num_threads(); }

std::string blas_kernels() { return openblas_get_corename(); }

CpuVectorIsa cpu_vector_isa() {
  CpuVectorIsa isa;
#if defined(__x86_64__) && defined(__GNUC__)
  isa.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  isa.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#endif
  return isa;
}

std::string blas_kernels_for_cpu(const std::string& chosen, CpuVectorIsa isa) {
  // OpenBLAS's x86-64 kernel sets that use AVX2 or AVX-512 (its corename strings).
  static const std::set<std::string> kModern = {"Haswell", "Zen", "Excavator", "SkylakeX", "Cooperlake",
                                                "SapphireRapids"};
  if (kModern.count(chosen)) return "";
  if (isa.avx512) return "SkylakeX";
  if (isa.avx2_fma) return "Haswell";
  return "";
}

void configure_blas(char** argv) {
  bool changed = false;
  if (!std::getenv("OPENBLAS_THREAD_TIMEOUT")) {
    setenv("OPENBLAS_THREAD_TIMEOUT", "12", 1);  // 2^12 cycles; 4 (the least) measured alike
    changed = true;
  }
  if (!std::getenv("OPENBLAS_CORETYPE")) {
    const std::string kernels = blas_kernels_for_cpu(blas_kernels(), cpu_vector_isa());
    if (!kernels.empty()) {
      setenv("OPENBLAS_CORETYPE", kernels.c_str(), 1);
      changed = true;
    }
  }
  if (changed) execv("/proc/self/exe", argv);
}

void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
              const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

void gemm_cpu(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
              const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
              alpha, A, int(lda), B, int(ldb), beta, C, int(ldc));
}

#ifdef FN_WITH_CUDA
void gemm_cuda(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
               const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return;
  // cuBLAS is column-major: a row-major C (M,N) is a column-major C^T (N,M) = op(B)^T op(A)^T.
  CUBLAS_CHECK(cublasSgemm(cuda::cublas(), tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
                           int(M), int(K), &alpha, B, int(ldb), A, int(lda), &beta, C, int(ldc)));
}
#endif

void gemm(bool ta, bool tb, double alpha, const Tensor& A, const Tensor& B, double beta, Tensor& C) {
  FN_CHECK(A.ndim() == 2 && B.ndim() == 2 && C.ndim() == 2, "gemm: 2-D operands expected, got ", A.describe(), ", ",
           B.describe(), ", ", C.describe());
  int64_t M = ta ? A.size(1) : A.size(0), K = ta ? A.size(0) : A.size(1);
  int64_t Kb = tb ? B.size(1) : B.size(0), N = tb ? B.size(0) : B.size(1);
  FN_CHECK(K == Kb && C.size(0) == M && C.size(1) == N, "gemm: shapes do not agree: op(A) ", M, "x", K, ", op(B) ",
           Kb, "x", N, ", C ", shape_str(C.shape()));
  check_same_device("gemm", A, B);
  check_same_device("gemm", A, C);
  FN_CHECK(A.dtype() == B.dtype() && A.dtype() == C.dtype(), "gemm: dtypes differ");
  if (A.is_cuda()) {
#ifdef FN_WITH_CUDA
    check_float32_on_cuda("gemm", A);
    return gemm_cuda(ta, tb, M, N, K, float(alpha), A.f32(), A.size(1), B.f32(), B.size(1), float(beta), C.f32(), N);
#endif
  }
  if (A.dtype() == DType::F32)
    gemm_cpu(ta, tb, M, N, K, float(alpha), A.f32(), A.size(1), B.f32(), B.size(1), float(beta), C.f32(), N);
  else
    gemm_cpu(ta, tb, M, N, K, alpha, A.f64(), A.size(1), B.f64(), B.size(1), beta, C.f64(), N);
}

}  // namespace fn::kernels
