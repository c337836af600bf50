// CPU reference and device dispatch of L2 normalisation, pairwise distances and the triplet loss
// (CUDA side in triplet.cu).
#include "kernels/triplet.h"

#include "kernels/gemm.h"
#include "kernels/launch.h"
#include "kernels/softmax_xent.h"  // loss_finalize

namespace fn::kernels {
namespace {
void check_2d(const char* op, const Tensor& x) {
  FN_CHECK(x.ndim() == 2, op, ": 2-D (rows, features) expected, got ", x.describe());
  check_float32_on_cuda(op, x);
}
void check_like(const char* op, const Tensor& ref, const Tensor& t) {
  check_same_device(op, ref, t);
  FN_CHECK(ref.dtype() == t.dtype(), op, ": dtypes differ: ", ref.describe(), " and ", t.describe());
}
}  // namespace

// ---------------------------------------------------------------- L2 normalisation
void l2_normalize_forward(const Tensor& x, double eps, Tensor& y, Tensor& norms, L2NormalizeVersion version) {
  check_2d("l2_normalize", x);
  check_same_shape("l2_normalize", x, y);
  FN_CHECK(norms.numel() == x.size(0), "l2_normalize: norms must hold N=", x.size(0));
  check_like("l2_normalize", x, y);
  check_like("l2_normalize", x, norms);
  const int N = int(x.size(0)), D = int(x.size(1));
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::l2_normalize_forward_f32(version, x.f32(), N, D, float(eps), y.f32(), norms.f32());
#endif
  }
  FN_CHECK(version != L2NormalizeVersion::V2RowBlock, "l2_normalize: V2RowBlock is a CUDA variant");
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* px = x.data<T>();
    T *py = y.data<T>(), *pn = norms.data<T>();
    cpu_for(N, [&](int64_t i) {
      T r = std::sqrt(row_sq_norm(px + i * D, D));
      T inv = l2_inverse_scale(r, T(eps));
      pn[i] = r;
      for (int k = 0; k < D; ++k) py[i * D + k] = px[i * D + k] * inv;
    });
  });
}

void l2_normalize_backward(const Tensor& gy, const Tensor& y, const Tensor& norms, double eps, Tensor& gx) {
  check_2d("l2_normalize backward", y);
  check_same_shape("l2_normalize backward", y, gy);
  check_same_shape("l2_normalize backward", y, gx);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gy, &norms, &gx})
    check_like("l2_normalize backward", y, *t);
  const int N = int(y.size(0)), D = int(y.size(1));
  if (y.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::l2_normalize_backward_f32(gy.f32(), y.f32(), norms.f32(), N, D, float(eps), gx.f32());
#endif
  }
  FN_DISPATCH_FLOAT(y.dtype(), T, {
    const T *pg = gy.data<T>(), *py = y.data<T>(), *pn = norms.data<T>();
    T* px = gx.data<T>();
    cpu_for(N, [&](int64_t i) { l2_normalize_grad_row(pg + i * D, py + i * D, pn[i], T(eps), D, px + i * D); });
  });
}

// ---------------------------------------------------------------- distances
namespace {
// out = clamp(|a_i|^2 + |b_j|^2 - 2 a_i.b_j); the inner products come from one GEMM (OpenBLAS / cuBLAS).
void sq_distances(const Tensor& a, const Tensor& b, bool self, Tensor& out) {
  const int M = int(a.size(0)), N = int(b.size(0)), D = int(a.size(1));
  gemm(false, true, 1.0, a, b, 0.0, out);
  if (a.is_cuda()) {
#ifdef FN_WITH_CUDA
    Tensor na = Tensor::empty({M}, a.dtype(), a.device()), nb = self ? na : Tensor::empty({N}, a.dtype(), a.device());
    cuda::row_sq_norms_f32(a.f32(), M, D, na.f32());
    if (!self) cuda::row_sq_norms_f32(b.f32(), N, D, nb.f32());
    return cuda::finish_sq_distances_f32(na.f32(), nb.f32(), M, N, self, out.f32());
#endif
  }
  FN_DISPATCH_FLOAT(a.dtype(), T, {
    const T *pa = a.data<T>(), *pb = b.data<T>();
    std::vector<T> na(static_cast<size_t>(M)), nb(static_cast<size_t>(N));
    for (int i = 0; i < M; ++i) na[i] = row_sq_norm(pa + int64_t(i) * D, D);
    for (int j = 0; j < N; ++j) nb[j] = row_sq_norm(pb + int64_t(j) * D, D);
    T* po = out.data<T>();
    cpu_for(int64_t(M) * N, [&](int64_t k) {
      int64_t i = k / N, j = k % N;
      po[k] = clamped_sq_distance(na[i], nb[j], po[k], self && i == j);
    });
  });
}
}  // namespace

void pairwise_sq_distances(const Tensor& a, const Tensor& b, Tensor& out) {
  check_2d("pairwise_sq_distances", a);
  check_2d("pairwise_sq_distances", b);
  FN_CHECK(a.size(1) == b.size(1), "pairwise_sq_distances: feature sizes differ: ", a.describe(), ", ", b.describe());
  FN_CHECK(out.ndim() == 2 && out.size(0) == a.size(0) && out.size(1) == b.size(0),
           "pairwise_sq_distances: out must be (", a.size(0), ",", b.size(0), "), got ", out.describe());
  check_like("pairwise_sq_distances", a, b);
  check_like("pairwise_sq_distances", a, out);
  sq_distances(a, b, false, out);
}

void pairwise_distance_forward(const Tensor& x, double eps, Tensor& d, Tensor& d2) {
  check_2d("pairwise_distance", x);
  const int64_t N = x.size(0);
  FN_CHECK(d.shape() == Shape({N, N}) && d2.shape() == Shape({N, N}), "pairwise_distance: d and d2 must be (", N, ",",
           N, ")");
  check_like("pairwise_distance", x, d);
  check_like("pairwise_distance", x, d2);
  sq_distances(x, x, true, d2);
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::sqrt_guard_f32(d2.f32(), d2.numel(), float(eps), d.f32());
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T* p2 = d2.data<T>();
    T* pd = d.data<T>();
    cpu_for(d.numel(), [&](int64_t k) { pd[k] = std::sqrt(p2[k] + T(eps)); });
  });
}

void pairwise_distance_backward(const Tensor& gd, const Tensor& x, const Tensor& d, const Tensor& d2, Tensor& gx) {
  check_2d("pairwise_distance backward", x);
  check_same_shape("pairwise_distance backward", x, gx);
  check_same_shape("pairwise_distance backward", d, gd);
  check_same_shape("pairwise_distance backward", d, d2);
  for (const Tensor* t : std::initializer_list<const Tensor*>{&gd, &d, &d2, &gx})
    check_like("pairwise_distance backward", x, *t);
  const int N = int(x.size(0)), D = int(x.size(1));
  // t = S + S^T; gx = -2 t x (GEMM), then gx_i += 2 rowsum(t)_i x_i.
  Tensor t = Tensor::empty({N, N}, x.dtype(), x.device()), r = Tensor::empty({N}, x.dtype(), x.device());
  if (x.is_cuda()) {
#ifdef FN_WITH_CUDA
    cuda::distance_grad_sym_f32(gd.f32(), d.f32(), d2.f32(), N, t.f32(), r.f32());
    gemm(false, false, -2.0, t, x, 0.0, gx);
    return cuda::add_row_scaled_f32(x.f32(), r.f32(), N, D, 2.f, gx.f32());
#endif
  }
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *pg = gd.data<T>(), *pd = d.data<T>(), *p2 = d2.data<T>();
    T *pt = t.data<T>(), *pr = r.data<T>();
    auto s = [&](int64_t k) { return p2[k] > T(0) ? pg[k] / (T(2) * pd[k]) : T(0); };
    for (int i = 0; i < N; ++i) {
      T sum = T(0);
      for (int j = 0; j < N; ++j) {
        T v = s(int64_t(i) * N + j) + s(int64_t(j) * N + i);
        pt[int64_t(i) * N + j] = v;
        sum += v;
      }
      pr[i] = sum;
    }
  });
  gemm(false, false, -2.0, t, x, 0.0, gx);
  FN_DISPATCH_FLOAT(x.dtype(), T, {
    const T *px = x.data<T>(), *pr = r.data<T>();
    T* pg = gx.data<T>();
    cpu_for(int64_t(N) * D, [&](int64_t k) { pg[k] += T(2) * pr[k / D] * px[k]; });
  });
}

// ---------------------------------------------------------------- triplet loss
namespace {
void check_triplet(const Tensor& d, const Tensor& labels) {
  FN_CHECK(d.ndim() == 2 && d.size(0) == d.size(1), "triplet: distance matrix must be (N,N), got ", d.describe());
  FN_CHECK(labels.numel() == d.size(0), "triplet: ", labels.numel(), " labels for ", d.size(0), " rows");
  check_like("triplet", d, labels);
  check_float32_on_cuda("triplet", d);
}
}  // namespace

void triplet_forward(const Tensor& d, const Tensor& labels, float margin, TripletMode mode, Tensor& loss,
                     Tensor& active_fraction, Tensor& norm) {
  check_triplet(d, labels);
  const int N = int(d.size(0));
  Tensor terms = Tensor::empty({N}, d.dtype(), d.device()), valid = Tensor::empty_like(terms),
         active = Tensor::empty_like(terms);
  if (d.is_cuda()) {
#ifdef FN_WITH_CUDA
    cuda::triplet_anchors_f32(d.f32(), labels.f32(), N, margin, mode, terms.f32(), valid.f32(), active.f32());
#endif
  } else {
    FN_DISPATCH_FLOAT(d.dtype(), T, {
      const T *pd = d.data<T>(), *pl = labels.data<T>();
      T *pt = terms.data<T>(), *pv = valid.data<T>(), *pa = active.data<T>();
      cpu_for(N, [&](int64_t a) {
        AnchorTerms<T> r = triplet_anchor(pd + a * N, pl, int(a), N, T(margin), mode);
        pt[a] = r.loss;
        pv[a] = r.valid;
        pa[a] = r.active;
      });
    });
  }
  loss_finalize(terms, mode == TripletMode::BatchHard ? valid : active, 0.0, loss, norm);
  Tensor valid_count = Tensor::empty({}, d.dtype(), d.device());
  loss_finalize(active, valid, 0.0, active_fraction, valid_count);
}

void triplet_backward(const Tensor& grad_loss, const Tensor& d, const Tensor& labels, float margin, TripletMode mode,
                      const Tensor& norm, Tensor& gd) {
  check_triplet(d, labels);
  check_same_shape("triplet backward", d, gd);
  FN_CHECK(grad_loss.numel() == 1 && norm.numel() == 1, "triplet backward: scalar gradient and norm expected");
  for (const Tensor* t : std::initializer_list<const Tensor*>{&grad_loss, &norm, &gd})
    check_like("triplet backward", d, *t);
  const int N = int(d.size(0));
  if (d.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::triplet_backward_f32(grad_loss.f32(), d.f32(), labels.f32(), norm.f32(), N, margin, mode, gd.f32());
#endif
  }
  FN_DISPATCH_FLOAT(d.dtype(), T, {
    const T *pd = d.data<T>(), *pl = labels.data<T>();
    const T den = norm.data<T>()[0];
    const T s = den != T(0) ? grad_loss.data<T>()[0] / den : T(0);
    T* pg = gd.data<T>();
    cpu_for(N, [&](int64_t a) { triplet_anchor_grad(pd + a * N, pl, int(a), N, T(margin), mode, s, pg + a * N); });
  });
}

}  // namespace fn::kernels
