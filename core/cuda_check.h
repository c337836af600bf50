// Checked library calls: each failure names the file, the line, the call and the library's error name.
#pragma once
#ifdef FN_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "core/error.h"

#define CUDA_CHECK(call)                                                                       \
  do {                                                                                         \
    cudaError_t e_ = (call);                                                                   \
    if (e_ != cudaSuccess)                                                                     \
      ::fn::throw_error(__FILE__, __LINE__,                                                    \
                        ::fn::cat("CUDA error ", cudaGetErrorName(e_), " (", cudaGetErrorString(e_), \
                                  ") in ", #call));                                            \
  } while (0)

#define CUBLAS_CHECK(call)                                                                     \
  do {                                                                                         \
    cublasStatus_t s_ = (call);                                                                \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                           \
      ::fn::throw_error(__FILE__, __LINE__,                                                    \
                        ::fn::cat("cuBLAS error ", cublasGetStatusName(s_), " in ", #call));   \
  } while (0)

#define CUDNN_CHECK(call)                                                                      \
  do {                                                                                         \
    cudnnStatus_t s_ = (call);                                                                 \
    if (s_ != CUDNN_STATUS_SUCCESS)                                                            \
      ::fn::throw_error(__FILE__, __LINE__,                                                    \
                        ::fn::cat("cuDNN error ", cudnnGetErrorString(s_), " in ", #call));    \
  } while (0)

// After a kernel launch: catches bad launch configurations at the launch site.
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
#endif
