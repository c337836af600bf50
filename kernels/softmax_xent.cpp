// CPU reference and device dispatch of the fused softmax cross-entropy and of the shared loss reduction
// (CUDA side in softmax_xent.cu).
#include "kernels/softmax_xent.h"

#include "kernels/launch.h"

namespace fn::kernels {

void loss_finalize(const Tensor& terms, const Tensor& denominators, double fixed_denominator, Tensor& loss,
                   Tensor& norm) {
  FN_CHECK(loss.numel() == 1 && norm.numel() == 1, "loss_finalize: loss and norm must hold one element");
  check_same_device("loss_finalize", terms, loss);
  check_same_device("loss_finalize", terms, norm);
  FN_CHECK(terms.dtype() == loss.dtype() && terms.dtype() == norm.dtype(), "loss_finalize: dtypes differ");
  if (denominators.defined()) {
    FN_CHECK(denominators.numel() == terms.numel() && denominators.dtype() == terms.dtype(),
             "loss_finalize: denominators ", denominators.describe(), " for terms ", terms.describe());
    check_same_device("loss_finalize", terms, denominators);
  }
  if (terms.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::loss_finalize_f32(terms.f32(), denominators.defined() ? denominators.f32() : nullptr, terms.numel(),
                                   float(fixed_denominator), loss.f32(), norm.f32());
#endif
  }
  FN_DISPATCH_FLOAT(terms.dtype(), T, {
    const T* t = terms.data<T>();
    double sum = 0, den = fixed_denominator;
    for (int64_t i = 0; i < terms.numel(); ++i) sum += double(t[i]);
    if (denominators.defined()) {
      const T* d = denominators.data<T>();
      den = 0;
      for (int64_t i = 0; i < terms.numel(); ++i) den += double(d[i]);
    }
    loss.data<T>()[0] = den != 0 ? T(sum / den) : T(0);
    norm.data<T>()[0] = T(den);
  });
}

namespace {
void check_xent(const Tensor& logits, const Tensor& labels, const Tensor& weights, double smoothing) {
  FN_CHECK(smoothing >= 0 && smoothing < 1, "softmax_cross_entropy: label smoothing ", smoothing,
           " is outside [0, 1)");
  FN_CHECK(logits.ndim() == 2 && logits.size(1) > 0, "softmax_cross_entropy: logits must be (N,K), got ",
           logits.describe());
  FN_CHECK(labels.numel() == logits.size(0), "softmax_cross_entropy: ", labels.numel(), " labels for ", logits.size(0),
           " rows");
  check_same_device("softmax_cross_entropy", logits, labels);
  FN_CHECK(labels.dtype() == logits.dtype(), "softmax_cross_entropy: labels must have the logits' dtype");
  if (weights.defined()) {
    FN_CHECK(weights.numel() == logits.size(0) && weights.dtype() == logits.dtype(), "softmax_cross_entropy: weights ",
             weights.describe(), " for ", logits.size(0), " rows");
    check_same_device("softmax_cross_entropy", logits, weights);
  }
  check_float32_on_cuda("softmax_cross_entropy", logits);
}
}  // namespace

void softmax_xent_forward(const Tensor& logits, const Tensor& labels, const Tensor& weights, int ignore_label,
                          double smoothing, Tensor& loss, Tensor& lse, Tensor& row_weight, Tensor& norm,
                          SoftmaxXentVersion version) {
  check_xent(logits, labels, weights, smoothing);
  const int N = int(logits.size(0)), K = int(logits.size(1));
  FN_CHECK(lse.numel() == N && row_weight.numel() == N, "softmax_cross_entropy: lse/row_weight must hold N=", N);
  Tensor terms = Tensor::empty({N}, logits.dtype(), logits.device());
  if (logits.is_cuda()) {
#ifdef FN_WITH_CUDA
    cuda::softmax_xent_forward_f32(version, logits.f32(), labels.f32(), weights.defined() ? weights.f32() : nullptr, N,
                                   K, ignore_label, float(smoothing), terms.f32(), lse.f32(), row_weight.f32());
#endif
  } else {
    FN_CHECK(version == SoftmaxXentVersion::Default || version == SoftmaxXentVersion::V1RowThread,
             "softmax_cross_entropy: V2RowWarp, V3RowWarpOnline and V4RowRegisters are CUDA variants");
    FN_DISPATCH_FLOAT(logits.dtype(), T, {
      const T *z = logits.data<T>(), *y = labels.data<T>(), *w = weights.defined() ? weights.data<T>() : nullptr;
      T *pt = terms.data<T>(), *pl = lse.data<T>(), *pw = row_weight.data<T>();
      for (int i = 0; i < N; ++i) {
        T label = y[i];
        FN_CHECK(label == T(ignore_label) || (label >= 0 && label < K && T(int(label)) == label),
                 "softmax_cross_entropy: label ", label, " of row ", i, " is not a class in [0, ", K,
                 ") nor the ignore label ", ignore_label);
      }
      cpu_for(N, [&](int64_t i) {
        pt[i] = softmax_xent_row(z + i * K, K, y[i], w ? w[i] : T(1), ignore_label, T(smoothing), pl[i], pw[i]);
      });
    });
  }
  loss_finalize(terms, row_weight, 0.0, loss, norm);
}

void softmax_xent_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& labels, double smoothing,
                           const Tensor& lse, const Tensor& row_weight, const Tensor& norm, Tensor& grad_logits,
                           SoftmaxXentBackwardVersion version) {
  check_xent(logits, labels, Tensor(), smoothing);
  check_same_shape("softmax_cross_entropy backward", logits, grad_logits);
  FN_CHECK(grad_loss.numel() == 1 && norm.numel() == 1, "softmax_cross_entropy backward: scalar grad and norm");
  for (const Tensor* t : std::initializer_list<const Tensor*>{&grad_loss, &lse, &row_weight, &norm, &grad_logits}) {
    check_same_device("softmax_cross_entropy backward", logits, *t);
    FN_CHECK(t->dtype() == logits.dtype(), "softmax_cross_entropy backward: dtypes differ");
  }
  const int N = int(logits.size(0)), K = int(logits.size(1));
  if (logits.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::softmax_xent_backward_f32(version, grad_loss.f32(), logits.f32(), labels.f32(), float(smoothing), lse.f32(),
                                           row_weight.f32(), norm.f32(), N, K, grad_logits.f32());
#endif
  }
  FN_CHECK(version != SoftmaxXentBackwardVersion::V2RowWarp, "softmax_cross_entropy backward: V2RowWarp is a CUDA variant");
  FN_DISPATCH_FLOAT(logits.dtype(), T, {
    const T *z = logits.data<T>(), *y = labels.data<T>(), *pl = lse.data<T>(), *pw = row_weight.data<T>();
    const T g = grad_loss.data<T>()[0], den = norm.data<T>()[0], e = T(smoothing), uniform = e / T(K);
    T* gz = grad_logits.data<T>();
    cpu_for(int64_t(N) * K, [&](int64_t i) {
      int64_t r = i / K;
      T scale_row = den != T(0) ? g * pw[r] / den : T(0);
      gz[i] = softmax_xent_grad(z[i], pl[r], int(i % K), y[r], e, uniform, scale_row);
    });
  });
}

}  // namespace fn::kernels
