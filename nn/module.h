// Module: a named tree of parameters. A parameter's full name ("trunk.conv1_1.weight") is the path of
// module names down to it; those names are the checkpoint's tensor names.
//
// Frozen parameters. freeze("trunk") marks every parameter under a name as not trained: its requires_grad
// goes off, so no op records a gradient for it, the optimizers (nn/optim.h) and clip_gradients skip it
// (weight decay included), and the training step's first-step check (fashionnet/train/step.h) demands no
// gradient of it. Every other parameter is trainable, and a trainable parameter that gets no gradient is an
// error there. The flag is configuration, not state: checkpoints do not save it, and parameters() and
// named_parameters() still list frozen parameters (a checkpoint holds them all).
//
// Buffers. add_buffer() registers state that is saved but never optimised (batch norm's running_mean and
// running_var): a buffer never requires a gradient and is not in parameters() or trainable_parameters(),
// so optimizers, weight decay and clip_gradients never see it. to() moves buffers with the parameters,
// and checkpoints save and load them under their full names, as parameters ("trunk.bn1.running_mean").
//
// Mode. Every module starts in training mode (as PyTorch's). train(false) / eval() set the mode of a
// module and of every submodule; layers whose forward differs between the two (dropout, batch norm) read
// is_training(), never a flag passed through forward().
#pragma once
#include <functional>
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
  // The one rule of what a name covers: `full` is `name` itself or lies under it ("trunk" covers
  // "trunk.bn1.weight", not "trunk2.weight"); "" covers everything.
  static bool covers(const std::string& name, const std::string& full);
  NamedTensors named_trainable_parameters() const;  // the parameters that are not frozen, in the same order
  std::vector<Tensor> trainable_parameters() const;
  static bool trainable(const Tensor& parameter) { return parameter.requires_grad(); }
  void zero_grad();
  void to(Device d);  // moves every parameter and buffer (in place: the Tensor handles stay valid)
  int64_t parameter_count() const;

  NamedTensors named_buffers() const;   // depth first, like parameters: "trunk.bn1.running_mean"
  std::vector<Tensor> buffers() const;
  NamedTensors named_state() const;     // parameters then buffers: every tensor a checkpoint holds
  void train(bool on = true);           // sets the mode of this module and every submodule
  void eval() { train(false); }
  bool is_training() const;
  void for_each_module(const std::function<void(const std::string& name, Module&)>& f);  // self first ("")

 protected:
  Tensor& add_parameter(const std::string& name, Tensor t);
  Tensor& add_buffer(const std::string& name, Tensor t);  // state that is saved but never optimised
  template <class M>
  M& add_module(const std::string& name, std::unique_ptr<M> m) {
    M& ref = *m;
    children_.emplace_back(name, std::move(m));
    return ref;
  }

 private:
  using Registry = std::vector<std::pair<std::string, Tensor>> Module::*;
  void collect(Registry which, const std::string& prefix, NamedTensors& out) const;
  void visit(const std::string& prefix, const std::function<void(const std::string&, Module&)>& f);
  int set_trainable(const std::string& name, bool trainable, const char* what);
  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  bool training_ = true;
  std::vector<std::pair<std::string, std::unique_ptr<Module>>> children_;
  friend class ModeGuard;
};

// Sets the mode of a module tree for a scope, and restores every module's own mode when it ends (a
// submodule left in eval mode while the rest trains stays so): evaluation code runs in eval mode whatever
// mode its caller left the model in, and hands the model back as it was.
class ModeGuard {
 public:
  ModeGuard(Module& m, bool training);
  ~ModeGuard();
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  std::vector<std::pair<Module*, bool>> saved_;
};

}  // namespace fn::nn
