// Batch normalisation over (N, H, W) per channel of an NCHW tensor (Ioffe and Szegedy 2015; PyTorch's
// BatchNorm2d). With n = N*H*W values per channel c:
//   mean[c] = (1/n) sum x            var[c] = (1/n) sum (x - mean)^2   (biased)
//   inv_std[c] = 1 / sqrt(var + eps)   xhat = (x - mean) * inv_std      y = w[c] * xhat + b[c]
// Statistics: Batch (training) takes mean and var from x and updates the running ones as PyTorch does,
//   running_mean = (1 - momentum) running_mean + momentum * mean
//   running_var  = (1 - momentum) running_var  + momentum * var * n / (n - 1)   (unbiased)
// (n = 1 has no unbiased estimate: the running variance is then left as it is; PyTorch refuses the call).
// Running (evaluation, frozen statistics) takes mean = running_mean, var = running_var and updates nothing.
// Backward, with G = sum g and GX = sum g * xhat over the channel's n values:
//   Batch:   dx = w * inv_std * (g - G / n - xhat * GX / n)     Running: dx = w * inv_std * g
//   dw = GX, db = G
// (derivation in docs/kernels/batchnorm2d.md). weight and bias may be undefined: no affine (w = 1, b = 0).
// The forward saves mean and inv_std per channel (C values each, x's dtype) for the backward.
// Layouts: x, y, gy, gx (N, C, H, W) contiguous; weight, bias, running_*, mean, inv_std, gweight, gbias (C).
// CPU: float32 and float64; every sum runs in double in an order fixed by the shape alone (one thread owns a
// channel), so a run reproduces bitwise whatever the thread count. CUDA: float32, sums in double.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace fn::kernels {

enum class BatchNormStats { Batch, Running };

// An activation applied in the same pass, y = act(bn(x)), for the backbones' conv-BN-ReLU6 (Lite0) and
// conv-BN-ReLU (ResNet): the forward writes act(bn(x)); the backward takes the gradient of that output and the
// output itself, and first masks the gradient where the activation passes nothing (relu_bwd / relu6_bwd of
// kernels/elementwise_body.h). The same bits as batch norm then the elementwise op, with a pass over the
// tensor saved each way and one activation fewer kept for the backward. CUDA runs the two kernels in turn.
enum class BatchNormAct { None, Relu, Relu6 };

// Versions, selectable by tests and benchmarks. Auto is the fastest correct one on the tensor's device.
enum class BatchNormAlgo {
  Auto,       // CPU: Channels for tensors of 48 MB and up with planes of 8 KB and up, else Planes; CUDA: Split (which runs one block per channel where the channels alone fill
              // the GPU)
  Reference,  // CPU: plain loops in double, one channel at a time: what every other version is tested against
  Channels,   // CPU: whole channels on blas_threads() threads; one pass for both sums, then the apply while the
              // channel is in cache; AVX2 inner loops (float32)
  Planes,     // CPU: memory order: every (n, c) plane's sums on the threads, combined per channel in image
              // order, then the apply plane by plane (x read twice)
  TwoPass,    // CUDA v1: a block per channel for the mean, another pass for the variance, then an apply kernel
  OnePass,    // CUDA v2: a block per channel, shifted sums in one pass, the apply in the same kernel
  Split,      // CUDA v3: each channel split over several blocks, partial sums combined in a fixed order
  Cudnn,      // CUDA: cuDNN's batch norm (the vendor baseline); needs weight and bias
};
const char* batch_norm_algo_name(BatchNormAlgo a);
const char* batch_norm_act_name(BatchNormAct a);

// y, mean and inv_std are written in full. running_mean / running_var are read (Running) or updated in
// place (Batch; they may then be undefined: no update). act: y = act(bn(x)). y undefined (CPU): the statistics
// alone, for a consumer that applies them as it reads x (the depthwise convolution's DwInputNorm,
// kernels/batchnorm2d_apply.h).
void batch_norm2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                          Tensor& running_var, BatchNormStats stats, double momentum, double eps, Tensor& y,
                          Tensor& mean, Tensor& inv_std, BatchNormAlgo algo = BatchNormAlgo::Auto,
                          BatchNormAct act = BatchNormAct::None);

// gx, gweight and gbias are overwritten; each may be undefined (not wanted). weight, bias, mean and inv_std are
// the forward's (bias is read only with an activation); stats and act must be the forward's. With an
// activation, gy is the gradient of act(bn(x)) and y is the forward's output: Reference and CUDA mask gy by y;
// Channels, Planes and Auto rebuild y's bits from x, mean, inv_std, weight and bias (one tensor fewer to read),
// so their backward pairs with a forward by Channels, Planes or Auto, and y may be undefined there.
void batch_norm2d_backward(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                           const Tensor& mean, const Tensor& inv_std, BatchNormStats stats, Tensor& gx,
                           Tensor& gweight, Tensor& gbias, BatchNormAlgo algo = BatchNormAlgo::Auto,
                           BatchNormAct act = BatchNormAct::None, const Tensor& y = Tensor());

// The backward's sums alone (CPU, as batch_norm2d_backward by Auto computes them): gweight and gbias (either
// may be undefined) and coef (C, 2), each channel's (B, C0), from which a reader of gy and x forms
// gx = fma(mask(gy) + C0, A, (x - mean) B) (Batch) or mask(gy) A (Running), A = weight inv_std, as it reads
// them (kernels/batchnorm2d_apply.h, grad_at; the depthwise convolution's DwOutputNorm): the bits of
// batch_norm2d_backward's gx.
void batch_norm2d_backward_coefficients(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                        const Tensor& mean, const Tensor& inv_std, BatchNormStats stats,
                                        Tensor& gweight, Tensor& gbias, BatchNormAct act, Tensor& coef);

// gx from those coefficients (CPU): the apply of batch_norm2d_backward alone, the same bits, on the threads.
void batch_norm2d_backward_apply(const Tensor& gy, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                 const Tensor& mean, const Tensor& inv_std, BatchNormStats stats, BatchNormAct act,
                                 const Tensor& coef, Tensor& gx);

#ifdef FN_WITH_CUDA
namespace cuda {
// Pointers may be null where the tensor is undefined (weight, bias, running_*, gx, gw, gb).
void batch_norm2d_forward_f32(BatchNormAlgo a, const float* x, const float* w, const float* b, float* running_mean,
                              float* running_var, bool batch_stats, double momentum, double eps, int64_t N,
                              int64_t C, int64_t HW, float* y, float* mean, float* inv_std);
void batch_norm2d_backward_f32(BatchNormAlgo a, const float* gy, const float* x, const float* w, const float* mean,
                               const float* inv_std, bool batch_stats, int64_t N, int64_t C, int64_t HW, float* gx,
                               float* gw, float* gb);
}  // namespace cuda
#endif

}  // namespace fn::kernels
