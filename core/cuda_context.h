// The process's CUDA state: one stream, one cuBLAS and one cuDNN handle bound to it, and a growing
// scratch workspace. Created on first use; everything runs on fn::cuda::stream().
#pragma once
#ifdef FN_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include <cstddef>

namespace fn::cuda {
cudaStream_t stream();
cublasHandle_t cublas();
cudnnHandle_t cudnn();
void* workspace(size_t bytes);  // valid until the next call that needs more
void synchronize();
int sm_count();
}  // namespace fn::cuda
#endif
