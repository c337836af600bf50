// The differentiable ops: each runs a kernel launcher from kernels/ and, when gradients are recorded,
// pushes its backward onto the autograd tape (core/autograd.h). Layers (nn/layers.h) and the FashionNet
// graph are written with these.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace fn::F {

// ---- elementwise (nn/functional_elementwise.cpp)
Tensor add(const Tensor& a, const Tensor& b);    // same shape
Tensor mul(const Tensor& a, const Tensor& b);    // same shape
Tensor scale(const Tensor& a, double alpha);
Tensor relu(const Tensor& x);
// Inverted dropout with probability p when `training`; identity otherwise. `seed` picks the mask.
Tensor dropout(const Tensor& x, float p, bool training, uint64_t seed);

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
struct Conv2dArgs { int stride = 1, pad = 1; };
// x (N,C,H,W), w (K,C,R,S), b (K) or undefined -> (N,K,P,Q). CPU: im2col + GEMM; CUDA: cuDNN.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a = {});
// Conv2d + ReLU in one op (one output tensor saved; the backward masks by the output).
Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, Conv2dArgs a = {});
struct Pool2dArgs { int kernel = 2, stride = 2, pad = 0; };
Tensor max_pool2d(const Tensor& x, Pool2dArgs a = {});

}  // namespace fn::F
