// Optimizer updates as kernels, one element per step of the body (PyTorch's semantics, single-tensor path).
//   SGD   g' = g + wd p;  v = mu v + g';  step = nesterov ? g' + mu v : v;  p -= lr step
//         (with v = 0 initially this equals PyTorch's first-step v = g'; no dampening)
//   Adam  g' = g + wd p (L2 penalty, not AdamW);  m = b1 m + (1-b1) g';  v = b2 v + (1-b2) g'^2;
//         p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),  t = 1, 2, ... the step count
// All tensors of one update share device, dtype and element count; the state tensors are updated in place.
#pragma once
#include <cmath>
#include <cstdint>

#include "core/hd.h"
#include "core/tensor.h"

namespace fn::kernels {

struct SgdHyper {
  float lr = 0.01f, momentum = 0.f, weight_decay = 0.f;
  bool nesterov = false;
};
struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
};

// momentum_buf may be undefined when hyper.momentum == 0.
void sgd_step(Tensor& param, const Tensor& grad, Tensor& momentum_buf, const SgdHyper& hyper);
// step = t >= 1, the number of this update (bias correction).
void adam_step(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, int64_t step,
               const AdamHyper& hyper);

// The bias corrections depend only on t: computed once on the host in double, passed to every element.
struct AdamScalars {
  float step_size;   // lr / (1 - b1^t)
  float bias2_sqrt;  // sqrt(1 - b2^t)
};
AdamScalars adam_scalars(const AdamHyper& h, int64_t step);

template <class T>
FN_HD void sgd_element(T& p, T g, T* v, T lr, T mu, T wd, bool nesterov) {
  g += wd * p;
  if (v) {
    *v = mu * *v + g;
    g = nesterov ? g + mu * *v : *v;
  }
  p -= lr * g;
}

template <class T>
FN_HD void adam_element(T& p, T g, T& m, T& v, T b1, T b2, T eps, T wd, T step_size, T bias2_sqrt) {
  g += wd * p;
  m = b1 * m + (T(1) - b1) * g;
  v = b2 * v + (T(1) - b2) * g * g;
  p -= step_size * m / (std::sqrt(v) / bias2_sqrt + eps);
}

#ifdef FN_WITH_CUDA
namespace cuda {
void sgd_step_f32(float* p, const float* g, float* v, int64_t n, const SgdHyper& h);
void adam_step_f32(float* p, const float* g, float* m, float* v, int64_t n, const AdamHyper& h, AdamScalars s);
}  // namespace cuda
#endif

}  // namespace fn::kernels
