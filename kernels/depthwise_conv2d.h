// Depthwise 2-D convolution (groups = channels, one filter per channel), NCHW:
//   y[n,c,p,q] = b[c] + sum_{r<R, s<S} W[c,0,r,s] * x[n, c, p*st - pad + r, q*st - pad + s]
// with P = (H + 2 pad - R) / st + 1 (Q likewise), x read as 0 outside the image, then ReLU when asked.
// Backward (derivation in docs/kernels/depthwise_conv2d.md):
//   dx[n,c,h,w] = sum over the (r, s, p, q) with p*st - pad + r = h, q*st - pad + s = w of W[c,r,s] gy[n,c,p,q]
//                 (for st = 1: the forward of gy with the flipped filter W[c, R-1-r, S-1-s], pad R-1-pad)
//   dW[c,r,s]   = sum_{n,p,q} gy[n,c,p,q] * x[n, c, p*st - pad + r, q*st - pad + s]   (a reduction over N, P, Q)
//   db[c]       = sum_{n,p,q} gy[n,c,p,q]                                             (bias_grad in bias.h)
// Layouts: x, y, gx, gy NCHW; W (C, 1, R, S), PyTorch's layout for groups = C; b (C) or undefined.
// The CPU runs float32 and float64; CUDA float32. MobileNet / EfficientNet use 3x3 and 5x5, stride 1 and 2,
// pad k/2; every kernel here takes any R, S >= 1, stride >= 1 and 0 <= pad < R, S.
//
// Versions (DepthwiseAlgo), each with its forward, data gradient and filter gradient:
//   CPU  Reference  plain loops over the definition (the tests' reference).
//        CpuPlanes  per channel and block of images, a zero-bordered copy of the input split into st x st
//                   phase planes, so that every tap is one contiguous, vectorised pass over the whole block;
//                   the filter gradient split by channel, each channel summed in a fixed order
//                   (deterministic, bitwise the same on any thread count).
//        CpuChannels (Auto on the CPU: depthwise_cpu_auto) 8 channels of one image in the lanes of a vector
//                   (4 in float64), gathered into an interleaved zero-bordered buffer: no lane wasted on a
//                   5x5 map, no phase split at stride 2. Filter gradient: one sequential sum per channel,
//                   channel blocks split over threads. depthwise_conv2d.cpp says how.
//   CUDA V1Naive    a thread per output (data gradient: a thread per input pixel, gathering).
//        V2Tiled    (Auto on CUDA) a block per output tile of one plane, the input window in shared memory;
//                   Auto takes V1Naive where the window outgrows 48 KB (wide strides) or C > 65535.
//        Cudnn      cuDNN's grouped convolution (cudnnSetConvolutionGroupCount = C): the baseline.
//   The CUDA filter gradient of V1/V2 is a deterministic two-stage reduction (depthwise_conv2d.cu).
#pragma once
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"
#include "kernels/batchnorm2d.h"

namespace fn::kernels {

enum class DepthwiseAlgo { Auto, Reference, CpuPlanes, CpuChannels, V1Naive, V2Tiled, Cudnn };
const char* depthwise_algo_name(DepthwiseAlgo a);

// The shape of one depthwise convolution: input (N,C,H,W), filters (C,1,R,S), output (N,C,P,Q).
struct DwGeom {
  int64_t N, C, H, W, R, S, stride, pad, P, Q;
  FN_HD int64_t hw() const { return H * W; }
  FN_HD int64_t pq() const { return P * Q; }
  FN_HD int64_t rs() const { return R * S; }
};
// Checks x (N,C,H,W) and w (C,1,R,S) and derives P, Q; a failed check names the op.
DwGeom depthwise_geom(const Shape& x, const Shape& w, int stride, int pad);

// What Auto runs on the CPU for this shape (CpuChannels, measured the faster at every Lite0 shape).
DepthwiseAlgo depthwise_cpu_auto(const DwGeom& g);

// A batch norm and its activation applied to the input as the convolution reads it: the convolution then takes
// xn = act(bn(x)) without that tensor ever being stored (MBConv's expand_bn before its depthwise convolution).
// weight, bias (either may be undefined), mean and inv_std (C, x's dtype): the batch norm's parameters and its
// forward's saved statistics (batch_norm2d_forward with y undefined computes them alone). xn's values are the
// batch norm's output to the bit (kernels/batchnorm2d_apply.h); the zero padding pads xn. CPU only:
// CpuChannels applies it in its gather; Reference and CpuPlanes convolve a normalised copy of x.
struct DwInputNorm {
  Tensor weight, bias, mean, inv_std;
  BatchNormAct act = BatchNormAct::None;
  bool defined() const { return mean.defined(); }
};

// The output's batch norm, for the backward: the convolution's output z went into a batch norm with its
// activation (MBConv's depthwise_bn), and the gradient given is that batch norm's output gradient g. The
// gradient of z, the batch norm's backward of g, is formed as g and z are read and never stored (the same bits:
// kernels/batchnorm2d_apply.h, grad_at). z (N,C,P,Q) and the batch norm's weight, bias (either may be
// undefined), mean, inv_std (C) and backward coefficients coef (C, 2: batch_norm2d_backward_coefficients);
// batch: its statistics were the batch's. CPU only: the channel path's one-pass backward applies it in its
// gather; every other path takes a computed copy of the gradient.
struct DwOutputNorm {
  Tensor z, weight, bias, mean, inv_std, coef;
  BatchNormAct act = BatchNormAct::None;
  bool batch = true;
  bool defined() const { return z.defined(); }
};

// y (N,C,P,Q) = dwconv(x, w) + b, then ReLU when `relu`; b may be undefined. With `norm`: dwconv(xn, w) + b.
void depthwise_conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y, int stride, int pad,
                              bool relu = false, DepthwiseAlgo algo = DepthwiseAlgo::Auto,
                              const DwInputNorm& norm = {});
// gx (N,C,H,W) = the data gradient of gy (N,C,P,Q); overwritten.
void depthwise_conv2d_backward_data(const Tensor& gy, const Tensor& w, Tensor& gx, int stride, int pad,
                                    DepthwiseAlgo algo = DepthwiseAlgo::Auto);
// gw (C,1,R,S) = the filter gradient, summed over the batch; overwritten. Deterministic on every version but
// Cudnn (whose algorithms may use atomics). With `norm`: the gradient of dwconv(xn, w).
void depthwise_conv2d_backward_filter(const Tensor& x, const Tensor& gy, Tensor& gw, int stride, int pad,
                                      DepthwiseAlgo algo = DepthwiseAlgo::Auto, const DwInputNorm& norm = {});
// Both gradients of gy (gx or gw null: that one is not computed), the same to the bit as the two calls above.
// On the CPU's channel path (stride 1 with a square filter, stride 2 with 3x3 and 5x5) each block of gy is
// gathered once for both (docs/kernels/depthwise_conv2d.md, "Both gradients in one pass"); elsewhere it makes
// the two calls. With `norm`, gx is the gradient of xn (the batch norm's backward takes it from there). With
// `out`, gy is the gradient of the output's batch norm's output (DwOutputNorm).
void depthwise_conv2d_backward(const Tensor& x, const Tensor& gy, const Tensor& w, Tensor* gx, Tensor* gw, int stride,
                               int pad, DepthwiseAlgo algo = DepthwiseAlgo::Auto, const DwInputNorm& norm = {},
                               const DwOutputNorm& out = {});

#ifdef FN_WITH_CUDA
namespace cuda {
void depthwise_forward_f32(const float* x, const float* w, const float* b, float* y, const DwGeom& g, bool relu,
                           DepthwiseAlgo algo);
void depthwise_backward_data_f32(const float* gy, const float* w, float* gx, const DwGeom& g, DepthwiseAlgo algo);
void depthwise_backward_filter_f32(const float* x, const float* gy, float* gw, const DwGeom& g, DepthwiseAlgo algo);
}  // namespace cuda
#endif

}  // namespace fn::kernels
