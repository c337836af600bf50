// The differentiable ops: each runs a kernel launcher from kernels/ and, when gradients are recorded,
// pushes its backward onto the autograd tape (core/autograd.h). Layers (nn/layers.h) and the FashionNet
// graph are written with these.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/batchnorm2d.h"

namespace fn::F {

// ---- elementwise (nn/functional_elementwise.cpp)
Tensor add(const Tensor& a, const Tensor& b);    // same shape
Tensor mul(const Tensor& a, const Tensor& b);    // same shape
Tensor scale(const Tensor& a, double alpha);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);  // min(max(x, 0), 6); the gradient passes where 0 < x < 6
// Inverted dropout with probability p when `training`; identity otherwise. `seed` picks the mask; element i
// draws it at counter offset + i (a part of a larger batch: offset = its first element's place in the whole).
Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed, int64_t offset = 0);

// ---- shape (nn/functional_shape.cpp)
Tensor reshape(const Tensor& x, const Shape& s);  // one -1 allowed
Tensor flatten(const Tensor& x);                   // (N, ...) -> (N, prod(...))
Tensor concat(const std::vector<Tensor>& xs, int dim);  // along dim; all other dims equal

// ---- reductions and softmax (nn/functional_reduce.cpp)
Tensor sum(const Tensor& x);   // scalar
Tensor mean(const Tensor& x);  // scalar
Tensor softmax(const Tensor& x);  // over the last dimension

// ---- dense (nn/functional_dense.cpp)
Tensor matmul(const Tensor& a, const Tensor& b);  // (M,K) x (K,N)
// y = x W^T + b with x (N, in), W (out, in), b (out) or undefined: PyTorch's Linear layout.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

// ---- convolution and pooling (nn/functional_conv.cpp)
// groups: 1 (a dense convolution) or C (depthwise: K == C, w (C,1,R,S), kernels/depthwise_conv2d.h); other
// group counts are refused.
struct Conv2dArgs { int stride = 1, pad = 1, groups = 1; };
// x (N,C,H,W), w (K,C/groups,R,S), b (K) or undefined -> (N,K,P,Q). groups = 1: kernels/conv2d.h (CPU: direct,
// Winograd or im2col + GEMM, a 1x1 a plain GEMM; CUDA: cuDNN); groups = C: the depthwise kernels.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a = {});
// Conv2d + ReLU in one op (one output tensor saved; the backward masks by the output).
Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a = {});
struct Pool2dArgs { int kernel = 2, stride = 2, pad = 0; };
Tensor max_pool2d(const Tensor& x, Pool2dArgs a = {});
// (nn/functional_pool.cpp) x (N,C,H,W) -> (N,C): the mean of each plane (kernels/global_avg_pool2d.h).
Tensor global_avg_pool2d(const Tensor& x);

// ---- normalisation (nn/functional_norm.cpp)
enum class BatchNormMode { Train, Eval, Frozen };
// The statistics a mode normalises by: the batch's in Train, the running ones in Eval and Frozen.
inline kernels::BatchNormStats batch_norm_stats(BatchNormMode m) {
  return m == BatchNormMode::Train ? kernels::BatchNormStats::Batch : kernels::BatchNormStats::Running;
}
// Train: normalise by the batch's statistics (per channel over N, H, W; biased variance) and update the
// running ones as PyTorch does: r = (1 - momentum) r + momentum * batch, the variance unbiased (n / (n - 1)).
// Eval and Frozen: normalise by the running statistics and leave them alone (Frozen is for fine-tuning with
// small batches: gradients still flow to x, weight and bias).
// act: an activation in the same op, y = act(bn(x)) (kernels/batchnorm2d.h: the bits of the two ops in turn, a
// pass over the tensor saved each way and one activation fewer kept for the backward).
using BatchNormAct = kernels::BatchNormAct;
struct BatchNormArgs {
  double momentum = 0.1, eps = 1e-5;
  BatchNormAct act = BatchNormAct::None;
};
// x (N,C,H,W); weight, bias, running_mean, running_var (C); weight/bias undefined = no affine. running_mean
// and running_var are updated in place in Train mode. Kernels and math: kernels/batchnorm2d.h.
Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                    const Tensor& running_var, BatchNormMode mode, BatchNormArgs a = {});

// ---- batch norms around a depthwise convolution (nn/functional_bn_depthwise.cpp)
// A batch norm's tensors, mode and args (act included), for the ops that run it inside another
// (nn::BatchNorm2d::ref).
struct BatchNormRef {
  Tensor weight, bias, running_mean, running_var;
  BatchNormMode mode = BatchNormMode::Train;
  BatchNormArgs args;
};
// conv2d(batch_norm2d(x, before), w, b, c) with c.groups = C, then batch_norm2d(., *after) when `after` is
// given, as one op: the same bits, and on the CPU without act(bn(x)) stored (the convolution normalises its input
// as it reads it) and, with `after`, without the gradient of the convolution's output stored (formed as the
// convolution's backward reads it): MBConv's expand_bn, depthwise convolution and depthwise_bn. x by value:
// without gradients the op lets go of it before the batch norm after runs (pass a temporary or std::move it, and
// x, z and the output are never all alive).
Tensor batch_norm2d_depthwise(Tensor x, const BatchNormRef& before, const Tensor& w, const Tensor& b, Conv2dArgs c,
                              const BatchNormRef* after = nullptr);

}  // namespace fn::F
