// CPU reference and device dispatch of the weighted attribute BCE (CUDA side in attr_bce.cu).
#include "kernels/attr_bce.h"

#include <algorithm>

#include "kernels/launch.h"
#include "kernels/softmax_xent.h"  // loss_finalize

namespace fn::kernels {
namespace {
void check_bce(const Tensor& z, const Tensor& a, const Tensor& known, const Tensor& wp, const Tensor& wn) {
  FN_CHECK(z.ndim() == 2, "attribute_bce: logits must be (N,A), got ", z.describe());
  check_same_shape("attribute_bce", z, a);
  if (known.defined()) check_same_shape("attribute_bce", z, known);
  FN_CHECK(wp.numel() == z.size(1) && wn.numel() == z.size(1), "attribute_bce: w_pos ", wp.describe(), " and w_neg ",
           wn.describe(), " must hold A=", z.size(1));
  for (const Tensor* t : std::initializer_list<const Tensor*>{&a, &known, &wp, &wn}) {
    if (!t->defined()) continue;
    check_same_device("attribute_bce", z, *t);
    FN_CHECK(t->dtype() == z.dtype(), "attribute_bce: dtypes differ: ", z.describe(), " and ", t->describe());
  }
  check_float32_on_cuda("attribute_bce", z);
}
}  // namespace

void attr_bce_forward(const Tensor& z, const Tensor& a, const Tensor& known, const Tensor& wp, const Tensor& wn,
                      Tensor& loss, AttrBceVersion version) {
  check_bce(z, a, known, wp, wn);
  const int N = int(z.size(0)), A = int(z.size(1));
  Tensor norm = Tensor::empty({}, z.dtype(), z.device());
  if (z.is_cuda()) {
#ifdef FN_WITH_CUDA
    Tensor terms =
        Tensor::empty({version == AttrBceVersion::V1Element ? int64_t(N) * A : int64_t(N)}, z.dtype(), z.device());
    cuda::attr_bce_terms_f32(version, z.f32(), a.f32(), known.defined() ? known.f32() : nullptr, wp.f32(), wn.f32(), N,
                             A, terms.f32());
    return loss_finalize(terms, Tensor(), double(N), loss, norm);
#endif
  }
  FN_CHECK(version != AttrBceVersion::V2RowBlock, "attribute_bce: V2RowBlock is a CUDA variant");
  Tensor terms = Tensor::empty({N}, z.dtype(), z.device());
  FN_DISPATCH_FLOAT(z.dtype(), T, {
    const T *pz = z.data<T>(), *pa = a.data<T>(), *pk = known.defined() ? known.data<T>() : nullptr;
    const T *pp = wp.data<T>(), *pn = wn.data<T>();
    T* pt = terms.data<T>();
    cpu_for(N, [&](int64_t n) {
      T row = T(0);
      for (int j = 0; j < A; ++j) {
        int64_t i = n * A + j;
        row += attr_bce_term(pz[i], pa[i], pk ? pk[i] : T(1), pp[j], pn[j]);
      }
      pt[n] = row;
    });
  });
  loss_finalize(terms, Tensor(), double(N), loss, norm);
}

void attr_bce_backward(const Tensor& grad_loss, const Tensor& z, const Tensor& a, const Tensor& known, const Tensor& wp,
                       const Tensor& wn, Tensor& gz) {
  check_bce(z, a, known, wp, wn);
  check_same_shape("attribute_bce backward", z, gz);
  FN_CHECK(grad_loss.numel() == 1, "attribute_bce backward: scalar gradient expected, got ", grad_loss.describe());
  check_same_device("attribute_bce backward", z, grad_loss);
  check_same_device("attribute_bce backward", z, gz);
  const int N = int(z.size(0)), A = int(z.size(1));
  if (z.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::attr_bce_backward_f32(grad_loss.f32(), z.f32(), a.f32(), known.defined() ? known.f32() : nullptr,
                                       wp.f32(), wn.f32(), N, A, gz.f32());
#endif
  }
  FN_DISPATCH_FLOAT(z.dtype(), T, {
    const T *pz = z.data<T>(), *pa = a.data<T>(), *pk = known.defined() ? known.data<T>() : nullptr;
    const T *pp = wp.data<T>(), *pn = wn.data<T>();
    const T scale = N > 0 ? grad_loss.data<T>()[0] / T(N) : T(0);
    T* pg = gz.data<T>();
    cpu_for(int64_t(N) * A, [&](int64_t i) {
      int j = int(i % A);
      pg[i] = attr_bce_grad(pz[i], pa[i], pk ? pk[i] : T(1), pp[j], pn[j], scale);
    });
  });
}

AttributeWeights attribute_weights(const std::vector<int64_t>& pos, const std::vector<int64_t>& neg, float lo,
                                   float hi) {
  FN_CHECK(pos.size() == neg.size(), "attribute_weights: ", pos.size(), " positive counts, ", neg.size(), " negative");
  FN_CHECK(0 < lo && lo <= 1 && 1 <= hi, "attribute_weights: clamp [", lo, ", ", hi, "] must hold 1");
  AttributeWeights w;
  for (size_t j = 0; j < pos.size(); ++j) {
    FN_CHECK(pos[j] >= 0 && neg[j] >= 0, "attribute_weights: negative count for attribute ", j);
    double m = double(pos[j] + neg[j]);
    auto weight = [&](int64_t count) {
      if (m == 0) return 1.f;     // never labelled: neutral
      if (count == 0) return hi;  // the side never occurs: its weight never applies; keep it finite
      return std::clamp(float(m / (2.0 * double(count))), lo, hi);
    };
    w.w_pos.push_back(weight(pos[j]));
    w.w_neg.push_back(weight(neg[j]));
  }
  return w;
}

}  // namespace fn::kernels
