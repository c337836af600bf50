// Module: a named tree of parameters. A parameter's full name ("trunk.conv1_1.weight") is the path of
// module names down to it; those names are the checkpoint's tensor names.
//
// Frozen parameters. freeze("trunk") marks every parameter under a name as not trained: its requires_grad
// goes off, so no op records a gradient for it, the optimizers (nn/optim.h) and clip_gradients skip it
// (weight decay included), and the training step's first-step check (fashionnet/train/step.h) demands no
// gradient of it. Every other parameter is trainable, and a trainable parameter that gets no gradient is an
// error there. The flag is configuration, not state: checkpoints do not save it, and parameters() and
// named_parameters() still list frozen parameters (a checkpoint holds them all).
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

  NamedTensors named_parameters() const;  // depth first, in registration order; frozen ones too
  std::vector<Tensor> parameters() const;
  // Freezes (unfreezes) the parameter named `name` and every parameter under it ("trunk" is trunk.*,
  // "fc6_global.weight" one tensor, "" all of them); returns how many. A name that matches nothing is an
  // error, so that a misspelt name does not leave everything trainable.
  int freeze(const std::string& name);
  int unfreeze(const std::string& name);
  NamedTensors named_trainable_parameters() const;  // the parameters that are not frozen, in the same order
  std::vector<Tensor> trainable_parameters() const;
  static bool trainable(const Tensor& parameter) { return parameter.requires_grad(); }
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
  int set_trainable(const std::string& name, bool trainable, const char* what);
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
};

}  // namespace fn::nn
