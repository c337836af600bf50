// Max pooling on the GPU through cuDNN (cudnnPoolingForward / cudnnPoolingBackward), float32 NCHW.
// Math: see maxpool2d.h. CUDNN_POOLING_MAX_DETERMINISTIC makes the backward reproducible; padded cells
// never win the max, as in the CPU reference. Descriptors are RAII-owned and created per call.
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#include "kernels/cudnn_desc.h"
#include "kernels/maxpool2d.h"

namespace fn::kernels::cuda {
namespace {


struct PoolDesc {
  cudnnPoolingDescriptor_t d = nullptr;
  explicit PoolDesc(const PoolGeom& g) {
    CUDNN_CHECK(cudnnCreatePoolingDescriptor(&d));
    CUDNN_CHECK(cudnnSetPooling2dDescriptor(d, CUDNN_POOLING_MAX_DETERMINISTIC, CUDNN_NOT_PROPAGATE_NAN,
                                            int(g.kernel), int(g.kernel), int(g.pad), int(g.pad), int(g.stride),
                                            int(g.stride)));
  }
  ~PoolDesc() { cudnnDestroyPoolingDescriptor(d); }
  PoolDesc(const PoolDesc&) = delete;
  PoolDesc& operator=(const PoolDesc&) = delete;
};

// Checks that cuDNN's output size agrees with ours (both floor the division).
void check_out_dims(const PoolDesc& pd, const TensorDesc& xd, const PoolGeom& g) {
  int n, c, h, w;
  CUDNN_CHECK(cudnnGetPooling2dForwardOutputDim(pd.d, xd.d, &n, &c, &h, &w));
  FN_CHECK(h == g.P && w == g.Q, "max_pool2d: cuDNN output ", h, "x", w, " differs from ", g.P, "x", g.Q);
}

}  // namespace

void max_pool2d_forward_f32(const float* x, float* y, const PoolGeom& g) {
  if (g.N * g.C == 0) return;
  TensorDesc xd(g.N, g.C, g.H, g.W), yd(g.N, g.C, g.P, g.Q);
  PoolDesc pd(g);
  check_out_dims(pd, xd, g);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnPoolingForward(::fn::cuda::cudnn(), pd.d, &one, xd.d, x, &zero, yd.d, y));
}

void max_pool2d_backward_f32(const float* x, const float* y, const float* gy, float* gx, const PoolGeom& g) {
  if (g.N * g.C == 0) return;
  TensorDesc xd(g.N, g.C, g.H, g.W), yd(g.N, g.C, g.P, g.Q);
  PoolDesc pd(g);
  check_out_dims(pd, xd, g);
  const float one = 1.f, zero = 0.f;
  CUDNN_CHECK(cudnnPoolingBackward(::fn::cuda::cudnn(), pd.d, &one, yd.d, y, yd.d, gy, xd.d, x, &zero, xd.d, gx));
}

}  // namespace fn::kernels::cuda
