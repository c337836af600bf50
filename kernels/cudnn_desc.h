// RAII owner of a cuDNN 4-D float32 NCHW tensor descriptor, shared by the cuDNN-backed kernels
// (conv2d.cu, maxpool2d.cu). Included from .cu files only.
#pragma once
#ifdef FN_WITH_CUDA
#include <cstdint>

#include "core/cuda_check.h"

namespace fn::kernels::cuda {

struct TensorDesc {
  cudnnTensorDescriptor_t d = nullptr;
  TensorDesc(int64_t n, int64_t c, int64_t h, int64_t w) {
    CUDNN_CHECK(cudnnCreateTensorDescriptor(&d));
    CUDNN_CHECK(cudnnSetTensor4dDescriptor(d, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(n), int(c), int(h), int(w)));
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(d); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
};

}  // namespace fn::kernels::cuda
#endif
