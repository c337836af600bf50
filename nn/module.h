// Module: a named tree of parameters. A parameter's full name ("trunk.conv1_1.weight") is the path of
// module names down to it; those names are the checkpoint's tensor names.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace fn::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;  // depth first, in registration order
  std::vector<Tensor> parameters() const;
  void zero_grad();
  void to(Device d);  // moves every parameter (in place: the Tensor handles stay valid)
  int64_t parameter_count() const;

 protected:
  Tensor& add_parameter(const std::string& name, Tensor t);
  template <class M>
  M& add_module(const std::string& name, std::unique_ptr<M> m) {
    M& ref = *m;
    children_.emplace_back(name, std::move(m));
    return ref;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out) const;
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

}  // namespace fn::nn
