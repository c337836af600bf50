// CPU reference and device dispatch of landmark pooling (CUDA side in landmark_pool.cu).
#include "kernels/landmark_pool.h"

#include <cstring>

#include "core/allocator.h"
#include "kernels/launch.h"
#ifdef FN_WITH_CUDA
#include "core/tensor_cuda.h"
#endif

namespace fn::kernels {

Int32Buffer::Int32Buffer(Device d, int64_t n) : device_(d), n_(n) {
  FN_CHECK(n >= 0, "Int32Buffer: negative size ", n);
  if (n > 0) ptr_ = static_cast<int32_t*>(device_alloc(d, size_t(n) * sizeof(int32_t)));
}

Int32Buffer::~Int32Buffer() {
  if (ptr_) device_free(device_, ptr_, size_t(n_) * sizeof(int32_t));
}

std::vector<int32_t> Int32Buffer::to_host() const {
  std::vector<int32_t> h(static_cast<size_t>(n_));
  if (n_ == 0) return h;
  if (device_ == Device::CPU) {
    std::memcpy(h.data(), ptr_, h.size() * sizeof(int32_t));
  } else {
#ifdef FN_WITH_CUDA
    ::fn::cuda::memcpy_d2h(h.data(), ptr_, h.size() * sizeof(int32_t));
#else
    FN_FAIL("Int32Buffer on CUDA in a build without CUDA");
#endif
  }
  return h;
}

namespace {
struct Dims {
  int N, C, H, W, L;
};

Dims check_forward(const Tensor& f, const Tensor& lm, const Tensor& vis, const LandmarkPoolArgs& a, const Tensor& out,
                   const Int32Buffer& argmax) {
  FN_CHECK(f.ndim() == 4, "landmark_pool: features must be (N,C,H,W), got ", f.describe());
  Dims d{int(f.size(0)), int(f.size(1)), int(f.size(2)), int(f.size(3)), 0};
  FN_CHECK(lm.ndim() == 3 && lm.size(0) == d.N && lm.size(2) == 2,
           "landmark_pool: landmarks must be (N,L,2) with N=", d.N, ", got ", lm.describe());
  d.L = int(lm.size(1));
  FN_CHECK(vis.ndim() == 2 && vis.size(0) == d.N && vis.size(1) == d.L, "landmark_pool: visibility must be (N,L)=(",
           d.N, ",", d.L, "), got ", vis.describe());
  FN_CHECK(out.ndim() == 2 && out.size(0) == d.N && out.size(1) == int64_t(d.L) * d.C,
           "landmark_pool: out must be (N, L*C)=(", d.N, ",", int64_t(d.L) * d.C, "), got ", out.describe());
  FN_CHECK(argmax.size() == out.numel() && argmax.device() == f.device(), "landmark_pool: argmax buffer of ",
           argmax.size(), " entries on ", device_name(argmax.device()), " for ", out.numel(), " outputs on ",
           device_name(f.device()));
  FN_CHECK(d.H > 0 && d.W > 0, "landmark_pool: empty feature map ", f.describe());
  FN_CHECK(a.stride > 0 && a.radius >= 0, "landmark_pool: stride ", a.stride, " radius ", a.radius);
  for (const Tensor* t : {&lm, &vis, &out}) {
    check_same_device("landmark_pool", f, *t);
    FN_CHECK(t->dtype() == f.dtype(), "landmark_pool: dtypes differ: ", f.describe(), " and ", t->describe());
  }
  check_float32_on_cuda("landmark_pool", f);
  return d;
}

Dims check_backward(const Tensor& gout, const Int32Buffer& argmax, const Tensor& gf) {
  FN_CHECK(gf.ndim() == 4, "landmark_pool backward: grad_features must be (N,C,H,W), got ", gf.describe());
  Dims d{int(gf.size(0)), int(gf.size(1)), int(gf.size(2)), int(gf.size(3)), 0};
  FN_CHECK(gout.ndim() == 2 && gout.size(0) == d.N && d.C > 0 && gout.size(1) % d.C == 0,
           "landmark_pool backward: grad_out must be (N, L*C) with C=", d.C, ", got ", gout.describe());
  d.L = int(gout.size(1) / d.C);
  FN_CHECK(argmax.size() == gout.numel() && argmax.device() == gf.device(), "landmark_pool backward: argmax of ",
           argmax.size(), " entries for ", gout.numel(), " outputs");
  check_same_device("landmark_pool backward", gout, gf);
  FN_CHECK(gout.dtype() == gf.dtype(), "landmark_pool backward: dtypes differ");
  check_float32_on_cuda("landmark_pool backward", gf);
  return d;
}

// CPU: every (n, c) plane's L gradients added into gf, in slot order.
void scatter_planes(const Tensor& gout, const Int32Buffer& argmax, const Dims& d, Tensor& gf) {
  FN_DISPATCH_FLOAT(gf.dtype(), T, {
    const T* pg = gout.data<T>();
    T* px = gf.data<T>();
    const int64_t planes = int64_t(d.N) * d.C, plane = int64_t(d.H) * d.W;
    for (int64_t nc = 0; nc < planes; ++nc) landmark_pool_scatter_plane(nc, d.C, d.L, plane, argmax.data(), pg, px);
  });
}
}  // namespace

void landmark_pool_forward(const Tensor& f, const Tensor& lm, const Tensor& vis, const LandmarkPoolArgs& a, Tensor& out,
                           Int32Buffer& argmax, LandmarkPoolForward version) {
  Dims d = check_forward(f, lm, vis, a, out, argmax);
  if (f.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::landmark_pool_forward_f32(version, f.f32(), lm.f32(), vis.f32(), d.N, d.C, d.H, d.W, d.L, a, out.f32(),
                                           argmax.data());
#endif
  }
  FN_CHECK(version != LandmarkPoolForward::V2SlotBlock, "landmark_pool: V2SlotBlock is a CUDA variant");
  FN_DISPATCH_FLOAT(f.dtype(), T, {
    const T *pf = f.data<T>(), *pl = lm.data<T>(), *pv = vis.data<T>();
    T* po = out.data<T>();
    int32_t* pa = argmax.data();
    if (version == LandmarkPoolForward::V1Naive) {  // output order, the GPU's v1 body as is
      cpu_for(out.numel(), [&](int64_t i) {
        landmark_pool_element(i, pf, pl, pv, d.C, d.H, d.W, d.L, a.stride, a.radius, a.mode, po, pa);
      });
      return;
    }
    // Default: plane order. The L slots of image n all read plane (n, c); visiting them together keeps the
    // 3 KB plane in L1 instead of fetching 3 cache lines from DRAM per output (output order strides by a
    // plane between consecutive outputs). Windows are computed once per slot.
    std::vector<PoolWindow> win(static_cast<size_t>(d.N) * d.L);
    std::vector<char> pooled(win.size());
    for (size_t ns = 0; ns < win.size(); ++ns)
      pooled[ns] = slot_window(pl[2 * ns], pl[2 * ns + 1], pv[ns], a.stride, a.radius, d.H, d.W, a.mode, win[ns]);
    const int64_t plane = int64_t(d.H) * d.W;
    for (int64_t n = 0; n < d.N; ++n)
      for (int64_t c = 0; c < d.C; ++c)
        for (int64_t s = 0; s < d.L; ++s) {
          int64_t ns = n * d.L + s, o = ns * d.C + c;
          if (pooled[size_t(ns)]) {
            window_max(pf + (n * d.C + c) * plane, d.W, win[size_t(ns)], po[o], pa[o]);
          } else {
            po[o] = T(0);
            pa[o] = -1;
          }
        }
  });
}

void landmark_pool_backward(const Tensor& gout, const Int32Buffer& argmax, Tensor& gf, LandmarkPoolBackward version) {
  Dims d = check_backward(gout, argmax, gf);
  if (gf.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::landmark_pool_backward_f32(version, gout.f32(), argmax.data(), d.N, d.C, d.H, d.W, d.L, gf.f32());
#endif
  }
  FN_CHECK(version == LandmarkPoolBackward::Default || version == LandmarkPoolBackward::Gather,
           "landmark_pool backward: GatherPlane, GatherVec4, ZeroScatter and AtomicScatter are CUDA variants");
  if (version == LandmarkPoolBackward::Gather) {
    FN_DISPATCH_FLOAT(gf.dtype(), T, {
      const T* pg = gout.data<T>();
      const int32_t* pa = argmax.data();
      T* px = gf.data<T>();
      const int64_t plane = int64_t(d.H) * d.W;
      cpu_for(gf.numel(), [&](int64_t i) {
        int64_t nc = i / plane, first = (nc / d.C) * d.L * d.C + nc % d.C;  // output (n, slot 0, c)
        px[i] = landmark_pool_gather(int32_t(i % plane), d.L, pa + first, pg + first, d.C);
      });
    });
    return;
  }
  // Zero the planes, then visit each plane's L outputs in slot order: every cell receives its gradients in
  // the same order as the gather adds them, so the two agree bitwise; O(N*C*(H*W + L)) instead of O(..*L).
  gf.zero_();
  scatter_planes(gout, argmax, d, gf);
}

void landmark_pool_backward_accumulate(const Tensor& gout, const Int32Buffer& argmax, Tensor& gf) {
  Dims d = check_backward(gout, argmax, gf);
  if (gf.is_cuda()) {
#ifdef FN_WITH_CUDA
    return cuda::landmark_pool_accumulate_f32(gout.f32(), argmax.data(), d.N, d.C, d.H, d.W, d.L, gf.f32());
#endif
  }
  scatter_planes(gout, argmax, d, gf);
}

}  // namespace fn::kernels
