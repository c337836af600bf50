#include "core/tensor.h"

#include <cmath>
#include <cstring>

#include "core/allocator.h"
#include "core/philox.h"
#ifdef FN_WITH_CUDA
#include "core/tensor_cuda.h"
#endif

namespace fn {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

Storage::Storage(Device d, size_t b) : bytes(b), device(d) { ptr = device_alloc(d, b); }
Storage::~Storage() { device_free(device, ptr, bytes); }

Tensor Tensor::empty(const Shape& s, DType t, Device d) {
  for (auto v : s) FN_CHECK(v >= 0, "negative dimension in shape ", shape_str(s));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(d, size_t(shape_numel(s)) * dtype_size(t));
  impl->shape = s;
  impl->dtype = t;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& s, DType t, Device d) { return full(s, 0.0, t, d); }

Tensor Tensor::full(const Shape& s, double v, DType t, Device d) {
  Tensor r = empty(s, t, d);
  r.fill_(v);
  return r;
}

Tensor Tensor::from(const std::vector<float>& v, const Shape& s, Device d) {
  FN_CHECK(int64_t(v.size()) == shape_numel(s), "Tensor::from: ", v.size(), " values for shape ", shape_str(s));
  Tensor h = empty(s, DType::F32, Device::CPU);
  if (!v.empty()) std::memcpy(h.raw(), v.data(), v.size() * 4);
  return d == Device::CPU ? h : h.to(d);
}

Tensor Tensor::from(const std::vector<double>& v, const Shape& s, Device d) {
  FN_CHECK(int64_t(v.size()) == shape_numel(s), "Tensor::from: ", v.size(), " values for shape ", shape_str(s));
  FN_CHECK(d == Device::CPU, "float64 tensors live on the CPU only");
  Tensor h = empty(s, DType::F64, Device::CPU);
  if (!v.empty()) std::memcpy(h.raw(), v.data(), v.size() * 8);
  return h;
}

Tensor Tensor::randn(const Shape& s, Rng& rng, double stddev, DType t, Device d) {
  Tensor h = empty(s, t, Device::CPU);
  FN_DISPATCH_FLOAT(t, T, {
    T* p = h.data<T>();
    for (int64_t i = 0; i < h.numel(); ++i) p[i] = T(rng.normal() * stddev);
  });
  return d == Device::CPU ? h : h.to(d);
}

Tensor Tensor::uniform(const Shape& s, Rng& rng, double lo, double hi, DType t, Device d) {
  Tensor h = empty(s, t, Device::CPU);
  FN_DISPATCH_FLOAT(t, T, {
    T* p = h.data<T>();
    for (int64_t i = 0; i < h.numel(); ++i) p[i] = T(lo + (hi - lo) * rng.uniform());
  });
  return d == Device::CPU ? h : h.to(d);
}

int64_t Tensor::size(int d) const {
  int n = ndim();
  if (d < 0) d += n;
  FN_CHECK(d >= 0 && d < n, "dimension ", d, " out of range for shape ", shape_str(shape()));
  return impl_->shape[d];
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return cat(dtype_name(dtype()), shape_str(shape()), " ", device_name(device()), name().empty() ? "" : " '",
             name(), name().empty() ? "" : "'");
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  FN_CHECK(dtype() == DType::F32 || d == Device::CPU, "float64 tensors cannot move to CUDA");
  Tensor r = empty(shape(), dtype(), d);
  r.copy_from(*this);
  return r;
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  FN_CHECK(device() == Device::CPU, "dtype conversion is done on the CPU");
  Tensor r = empty(shape(), t, Device::CPU);
  int64_t n = numel();
  if (t == DType::F64) {
    const float* s = f32();
    double* o = r.f64();
    for (int64_t i = 0; i < n; ++i) o[i] = s[i];
  } else {
    const double* s = f64();
    float* o = r.f32();
    for (int64_t i = 0; i < n; ++i) o[i] = float(s[i]);
  }
  return r;
}

Tensor Tensor::clone() const {
  Tensor r = empty(shape(), dtype(), device());
  r.copy_from(*this);
  return r;
}

void Tensor::copy_from(const Tensor& src) {
  FN_CHECK(src.numel() == numel() && src.dtype() == dtype(), "copy_from: ", src.describe(), " into ", describe());
  size_t b = nbytes();
  if (b == 0) return;
  if (device() == Device::CPU && src.device() == Device::CPU) {
    std::memmove(raw(), src.raw(), b);
    return;
  }
#ifdef FN_WITH_CUDA
  if (device() == Device::CUDA && src.device() == Device::CUDA) cuda::memcpy_d2d(raw(), src.raw(), b);
  else if (device() == Device::CUDA) cuda::memcpy_h2d(raw(), src.raw(), b);
  else cuda::memcpy_d2h(raw(), src.raw(), b);
#else
  FN_FAIL("CUDA copy in a build without CUDA");
#endif
}

Tensor& Tensor::fill_(double v) {
  int64_t n = numel();
  if (device() == Device::CPU) {
    FN_DISPATCH_FLOAT(dtype(), T, {
      T* p = data<T>();
      for (int64_t i = 0; i < n; ++i) p[i] = T(v);
    });
  } else {
#ifdef FN_WITH_CUDA
    cuda::fill_f32(f32(), n, float(v));
#endif
  }
  return *this;
}

Tensor& Tensor::add_(const Tensor& src, double alpha) {
  FN_CHECK(src.numel() == numel() && src.dtype() == dtype(), "add_: ", src.describe(), " into ", describe());
  check_same_device("add_", *this, src);
  int64_t n = numel();
  if (device() == Device::CPU) {
    FN_DISPATCH_FLOAT(dtype(), T, {
      T* y = data<T>();
      const T* x = src.data<T>();
      T a = T(alpha);
      for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
    });
  } else {
#ifdef FN_WITH_CUDA
    cuda::axpy_f32(f32(), src.f32(), n, float(alpha));
#endif
  }
  return *this;
}

Tensor Tensor::view(const Shape& s) const {
  Shape ns = s;
  int64_t known = 1;
  int neg = -1;
  for (size_t i = 0; i < ns.size(); ++i) {
    if (ns[i] == -1) {
      FN_CHECK(neg < 0, "view: more than one -1 in ", shape_str(s));
      neg = int(i);
    } else {
      known *= ns[i];
    }
  }
  if (neg >= 0) {
    FN_CHECK(known > 0 && numel() % known == 0, "view: cannot infer ", shape_str(s), " from ", shape_str(shape()));
    ns[neg] = numel() / known;
  }
  FN_CHECK(shape_numel(ns) == numel(), "view: ", shape_str(shape()), " has ", numel(), " elements, not ",
           shape_numel(ns), " as in ", shape_str(ns));
  auto impl = std::make_shared<TensorImpl>(*impl_);
  impl->shape = ns;
  impl->autograd.reset();  // a view starts as a leaf of its own
  return Tensor(std::move(impl));
}

const std::shared_ptr<AutogradMeta>& Tensor::autograd_meta() const {
  if (!impl_->autograd) impl_->autograd = std::make_shared<AutogradMeta>();
  return impl_->autograd;
}

Tensor Tensor::slice0(int64_t begin, int64_t end) const {
  FN_CHECK(ndim() >= 1 && 0 <= begin && begin <= end && end <= size(0), "slice0: [", begin, ",", end,
           ") of ", shape_str(shape()));
  auto impl = std::make_shared<TensorImpl>(*impl_);
  int64_t row = size(0) ? numel() / size(0) : 0;
  impl->offset += size_t(begin * row);
  impl->shape[0] = end - begin;
  impl->autograd.reset();  // a view starts as a leaf of its own
  return Tensor(std::move(impl));
}

std::vector<float> Tensor::to_vector() const {
  Tensor h = cpu().to(DType::F32);
  std::vector<float> v(size_t(h.numel()));
  if (!v.empty()) std::memcpy(v.data(), h.raw(), v.size() * 4);
  return v;
}

std::vector<double> Tensor::to_vector_f64() const {
  Tensor h = cpu().to(DType::F64);
  std::vector<double> v(size_t(h.numel()));
  if (!v.empty()) std::memcpy(v.data(), h.raw(), v.size() * 8);
  return v;
}

double Tensor::item() const {
  FN_CHECK(numel() == 1, "item() of ", describe());
  return to_vector_f64()[0];
}

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  FN_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.describe(), " and ", b.describe());
}
void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  FN_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.describe(), " and ", b.describe());
}
void check_float32_on_cuda(const char* op, const Tensor& t) {
  FN_CHECK(!t.is_cuda() || t.dtype() == DType::F32, op, ": CUDA kernels take float32, got ", t.describe());
}

double Rng::normal() {
  double u1 = uniform(), u2 = uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace fn
