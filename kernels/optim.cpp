// CPU loops and device dispatch of the optimizer updates (CUDA side in optim.cu).
#include "kernels/optim.h"

#include "kernels/launch.h"

namespace fn::kernels {
namespace {
void check_state(const char* op, const Tensor& p, const Tensor& t) {
  FN_CHECK(t.defined() && t.numel() == p.numel() && t.dtype() == p.dtype(), op, ": state/gradient ",
           t.defined() ? t.describe() : "undefined", " for parameter ", p.describe());
  check_same_device(op, p, t);
}
}  // namespace

AdamScalars adam_scalars(const AdamHyper& h, int64_t step) {
  FN_CHECK(step >= 1, "adam: step count starts at 1, got ", step);
  double bc1 = 1.0 - std::pow(double(h.beta1), double(step)), bc2 = 1.0 - std::pow(double(h.beta2), double(step));
  return AdamScalars{float(double(h.lr) / bc1), float(std::sqrt(bc2))};
}

void sgd_step(Tensor& p, const Tensor& g, Tensor& v, const SgdHyper& h) {
  check_state("sgd_step", p, g);
  const bool use_v = h.momentum != 0.f;
  if (use_v) check_state("sgd_step", p, v);
  check_float32_on_cuda("sgd_step", p);
  if (p.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::sgd_step_f32(p.f32(), g.f32(), use_v ? v.f32() : nullptr, p.numel(), h);
#endif
  }
  FN_DISPATCH_FLOAT(p.dtype(), T, {
    T* pp = p.data<T>();
    const T* pg = g.data<T>();
    T* pv = use_v ? v.data<T>() : nullptr;
    cpu_for(p.numel(), [&](int64_t i) {
      sgd_element(pp[i], pg[i], pv ? pv + i : nullptr, T(h.lr), T(h.momentum), T(h.weight_decay), h.nesterov);
    });
  });
}

void adam_step(Tensor& p, const Tensor& g, Tensor& m, Tensor& v, int64_t step, const AdamHyper& h) {
  check_state("adam_step", p, g);
  check_state("adam_step", p, m);
  check_state("adam_step", p, v);
  check_float32_on_cuda("adam_step", p);
  AdamScalars s = adam_scalars(h, step);
  if (p.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::adam_step_f32(p.f32(), g.f32(), m.f32(), v.f32(), p.numel(), h, s);
#endif
  }
  FN_DISPATCH_FLOAT(p.dtype(), T, {
    T *pp = p.data<T>(), *pm = m.data<T>(), *pv = v.data<T>();
    const T* pg = g.data<T>();
    cpu_for(p.numel(), [&](int64_t i) {
      adam_element(pp[i], pg[i], pm[i], pv[i], T(h.beta1), T(h.beta2), T(h.eps), T(h.weight_decay), T(s.step_size),
                   T(s.bias2_sqrt));
    });
  });
}

}  // namespace fn::kernels
