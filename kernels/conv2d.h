// 2-D convolution (cross-correlation, as in every framework), NCHW:
//   y[n,k,p,q] = b[k] + sum_{c,r,s} W[k,c,r,s] * x[n, c, p*stride - pad + r, q*stride - pad + s]
// with P = (H + 2 pad - R) / stride + 1 (Q likewise) and x read as 0 outside the image.
// Backward, per image n, with col_n = im2col(x_n) (C*R*S, P*Q) (see im2col.h):
//   dW  = sum_n gy_n (K, P*Q) * col_n^T          (filter gradient)
//   dx_n = col2im(W^T (C*R*S, K) * gy_n)          (data gradient)
//   db  = sum over n, p, q of gy                  (bias_grad in bias.h)
// CPU: im2col + OpenBLAS, float32 and float64, threaded where the work is large (see ConvCpuPlan); for
// thin 3x3 layers in float32, a direct kernel instead (conv2d_direct.h), and for the wider 3x3 stride-1
// layers Winograd F(2x2, 3x3) (conv2d_winograd.h).
// CUDA (float32): cuDNN with a per-shape cached algorithm choice, or the handwritten im2col kernel +
// cuBLAS (the teaching variant). FP32 arithmetic on both (no TF32), so tests compare with the CPU.
#pragma once
#include <cstdint>

#include "core/tensor.h"
#include "kernels/im2col.h"

namespace fn::kernels {

enum class ConvAlgo {
  Auto,        // the fastest correct variant on the tensor's device: on the CPU direct 3x3, Winograd or
               // im2col + BLAS by shape (below); on CUDA cuDNN
  Cudnn,       // CUDA only: cuDNN (cudnnConvolutionForward / BackwardData / BackwardFilter)
  Im2colGemm,  // im2col + GEMM: OpenBLAS on the CPU, the im2col CUDA kernel + cuBLAS on the GPU
  Direct3x3,   // CPU float32 only: the direct 3x3 kernel of conv2d_direct.h (forward, and the data gradient
               // run as a forward); Auto picks it on the CPU for thin layers (conv3x3_direct_preferred)
  Winograd3x3, // CPU only: Winograd F(2x2, 3x3) of conv2d_winograd.h (forward, the data gradient run as a
               // forward, and the filter gradient); Auto picks it on the CPU in float32 for the wider 3x3
               // stride-1 layers, and for the thin layers' filter gradients
};
// How the CPU spreads a large convolution over blas_threads() cores.
enum class ConvCpuPlan {
  Auto,    // Images for the largest multiple of the thread count, Blas for the remaining images
  Images,  // images on threads, each with its own im2col buffer and a single-threaded BLAS call
  Blas,    // one image at a time: im2col split over threads by channel, then a multi-threaded BLAS call
};
struct ConvOptions {
  ConvAlgo algo = ConvAlgo::Auto;
  ConvCpuPlan cpu_plan = ConvCpuPlan::Auto;
  // CUDA (cuDNN) filter gradient: 0 = the batch is split into 1, 2 or 4 chunks as timing decides; N > 0
  // forces N chunks (tests use it; N must divide the batch).
  int filter_chunks = 0;
};
const char* conv_algo_name(ConvAlgo a);
const char* conv_cpu_plan_name(ConvCpuPlan p);

// y (N,K,P,Q) = conv(x, w) + b, then ReLU when `relu`; b may be undefined. On the CPU the bias and the
// ReLU are applied in one pass over each image's GEMM output while it is still in cache.
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, int stride, int pad,
                    bool relu = false, ConvOptions opt = {});
// gx (N,C,H,W) = data gradient of gy (N,K,P,Q); overwritten.
void conv2d_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, int stride, int pad, ConvOptions opt = {});
// gw (K,C,R,S) = filter gradient, summed over the batch; overwritten.
void conv2d_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, int stride, int pad,
                            ConvOptions opt = {});

#ifdef FN_WITH_CUDA
namespace cuda {
void conv2d_forward_f32(const float* x, const float* w, const float* b, float* y, const ConvGeom& g, bool relu,
                        ConvAlgo algo);
void conv2d_backward_data_f32(const float* gy, const float* w, float* gx, const ConvGeom& g, ConvAlgo algo);
void conv2d_backward_filter_f32(const float* x, const float* gy, float* gw, const ConvGeom& g, ConvAlgo algo,
                                int filter_chunks = 0);
}  // namespace cuda
#endif

}  // namespace fn::kernels
