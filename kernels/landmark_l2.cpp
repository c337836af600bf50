// CPU reference and device dispatch of the masked landmark L2 loss (CUDA side in landmark_l2.cu).
#include "kernels/landmark_l2.h"

#include "kernels/launch.h"
#include "kernels/softmax_xent.h"  // loss_finalize

namespace fn::kernels {
namespace {
void check_l2(const Tensor& p, const Tensor& t, const Tensor& v) {
  FN_CHECK(p.ndim() == 3 && p.size(2) == 2, "landmark_l2: pred must be (N,L,2), got ", p.describe());
  check_same_shape("landmark_l2", p, t);
  FN_CHECK(v.ndim() == 2 && v.size(0) == p.size(0) && v.size(1) == p.size(1), "landmark_l2: visibility must be (N,L)",
           ", got ", v.describe(), " for pred ", p.describe());
  for (const Tensor* x : std::initializer_list<const Tensor*>{&t, &v}) {
    check_same_device("landmark_l2", p, *x);
    FN_CHECK(x->dtype() == p.dtype(), "landmark_l2: dtypes differ");
  }
  check_float32_on_cuda("landmark_l2", p);
}
}  // namespace

void landmark_l2_forward(const Tensor& p, const Tensor& t, const Tensor& v, Tensor& loss) {
  check_l2(p, t, v);
  const int N = int(p.size(0)), L = int(p.size(1));
  Tensor terms = Tensor::empty({N}, p.dtype(), p.device());
  Tensor norm = Tensor::empty({}, p.dtype(), p.device());
  if (p.is_cuda()) {
#ifdef FN_WITH_CUDA
    cuda::landmark_l2_terms_f32(p.f32(), t.f32(), v.f32(), N, L, terms.f32());
#endif
  } else {
    FN_DISPATCH_FLOAT(p.dtype(), T, {
      const T *pp = p.data<T>(), *pt = t.data<T>(), *pv = v.data<T>();
      T* out = terms.data<T>();
      cpu_for(N, [&](int64_t n) { out[n] = landmark_l2_row(pp + 2 * n * L, pt + 2 * n * L, pv + n * L, L); });
    });
  }
  loss_finalize(terms, Tensor(), double(N), loss, norm);
}

void landmark_l2_backward(const Tensor& grad_loss, const Tensor& p, const Tensor& t, const Tensor& v, Tensor& gp,
                          Tensor& gt) {
  check_l2(p, t, v);
  check_same_shape("landmark_l2 backward", p, gp);
  if (gt.defined()) check_same_shape("landmark_l2 backward", p, gt);
  FN_CHECK(grad_loss.numel() == 1, "landmark_l2 backward: scalar gradient expected");
  const int N = int(p.size(0));
  [[maybe_unused]] const int L = int(p.size(1));  // the CUDA launch's
  if (p.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::landmark_l2_backward_f32(grad_loss.f32(), p.f32(), t.f32(), v.f32(), N, L, gp.f32(),
                                          gt.defined() ? gt.f32() : nullptr);
#endif
  }
  FN_DISPATCH_FLOAT(p.dtype(), T, {
    const T *pp = p.data<T>(), *pt = t.data<T>(), *pv = v.data<T>();
    const T scale = N > 0 ? grad_loss.data<T>()[0] / T(N) : T(0);
    T* g = gp.data<T>();
    T* h = gt.defined() ? gt.data<T>() : nullptr;
    cpu_for(p.numel(), [&](int64_t i) {
      g[i] = landmark_l2_grad(pp[i], pt[i], pv[i / 2], scale);
      if (h) h[i] = -g[i];
    });
  });
}

}  // namespace fn::kernels
