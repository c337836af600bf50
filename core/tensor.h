// Tensor: a float32 (or float64, CPU) contiguous array in NCHW order on one device, with the autograd
// fields the tape needs. Copies of a Tensor share their data (like a shared_ptr); views made by view()
// and slice0() share the storage of their source.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"

namespace fn {

class Rng;
using Shape = std::vector<int64_t>;
int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);

struct Storage {
  Storage(Device d, size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* ptr = nullptr;
  size_t bytes = 0;
  Device device;
};

struct TensorImpl;

// A tensor's autograd state, apart from its data: the tape's nodes hold this, not the tensor, so an
// activation that no backward closure saved is freed as soon as the forward lets go of it.
struct AutogradMeta {
  bool requires_grad = false;
  bool is_leaf = true;
  std::shared_ptr<TensorImpl> grad;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // in elements
  Shape shape;
  DType dtype = DType::F32;
  std::shared_ptr<AutogradMeta> autograd;  // made on first use: most tensors never need one
  std::string name;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation
  static Tensor empty(const Shape& s, DType t = DType::F32, Device d = Device::CPU);
  static Tensor zeros(const Shape& s, DType t = DType::F32, Device d = Device::CPU);
  static Tensor full(const Shape& s, double v, DType t = DType::F32, Device d = Device::CPU);
  static Tensor from(const std::vector<float>& v, const Shape& s, Device d = Device::CPU);
  static Tensor from(const std::vector<double>& v, const Shape& s, Device d = Device::CPU);
  static Tensor randn(const Shape& s, Rng& rng, double stddev = 1.0, DType t = DType::F32, Device d = Device::CPU);
  static Tensor uniform(const Shape& s, Rng& rng, double lo, double hi, DType t = DType::F32, Device d = Device::CPU);
  static Tensor empty_like(const Tensor& o) { return empty(o.shape(), o.dtype(), o.device()); }
  static Tensor zeros_like(const Tensor& o) { return zeros(o.shape(), o.dtype(), o.device()); }

  // ---- properties
  bool defined() const { return bool(impl_); }
  const Shape& shape() const { return impl_->shape; }
  int ndim() const { return int(impl_->shape.size()); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device; }
  bool is_cuda() const { return device() == Device::CUDA; }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string describe() const;  // "float32[2,3] cpu"

  void* raw() const { return static_cast<char*>(impl_->storage->ptr) + impl_->offset * dtype_size(dtype()); }
  template <class T> T* data() const {
    FN_CHECK(dtype_of<T>::value == dtype(), "tensor '", name(), "' is ", dtype_name(dtype()), ", not ",
             dtype_name(dtype_of<T>::value));
    return static_cast<T*>(raw());
  }
  float* f32() const { return data<float>(); }
  double* f64() const { return data<double>(); }

  // ---- copies and conversions (not recorded by autograd)
  Tensor to(Device d) const;
  Tensor to(DType t) const;  // CPU only
  Tensor cpu() const { return to(Device::CPU); }
  Tensor clone() const;
  void copy_from(const Tensor& src);  // same numel and dtype, any devices
  Tensor& zero_() { return fill_(0.0); }
  Tensor& fill_(double v);
  Tensor& add_(const Tensor& src, double alpha = 1.0);  // this += alpha * src, same numel and device
  Tensor view(const Shape& s) const;                    // same storage, new shape (one -1 allowed)
  Tensor slice0(int64_t begin, int64_t end) const;      // rows [begin, end) of dim 0, same storage
  std::vector<float> to_vector() const;                 // host copy as float
  std::vector<double> to_vector_f64() const;
  double item() const;                                  // a one-element tensor's value

  // ---- autograd
  bool requires_grad() const { return impl_->autograd && impl_->autograd->requires_grad; }
  Tensor& set_requires_grad(bool r) { autograd_meta()->requires_grad = r; return *this; }
  bool is_leaf() const { return !impl_->autograd || impl_->autograd->is_leaf; }
  Tensor grad() const { return impl_->autograd && impl_->autograd->grad ? Tensor(impl_->autograd->grad) : Tensor(); }
  void set_grad(const Tensor& g) { autograd_meta()->grad = g.impl_; }
  void zero_grad() { if (impl_->autograd) impl_->autograd->grad.reset(); }
  const std::shared_ptr<AutogradMeta>& autograd_meta() const;  // made here if the tensor has none yet
  const std::string& name() const { return impl_->name; }
  Tensor& set_name(std::string n) { impl_->name = std::move(n); return *this; }

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same_storage(const Tensor& o) const {
    return defined() && o.defined() && impl_->storage == o.impl_->storage;
  }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Checks used by every op: names the op and what was expected.
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_same_shape(const char* op, const Tensor& a, const Tensor& b);
void check_float32_on_cuda(const char* op, const Tensor& t);

}  // namespace fn
