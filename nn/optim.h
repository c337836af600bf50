// Optimizers over a list of parameter tensors, with PyTorch's semantics (kernels/optim.h has the math).
// A parameter whose .grad is undefined at step() is left untouched, as in PyTorch, and so is a frozen one
// (requires_grad off: nn::Module::freeze) whatever its .grad holds: no update, no weight decay. The state
// tensors are created at construction (zeros, on the parameter's device; frozen parameters have theirs too)
// and exposed by name through state() so that a checkpoint can save and restore them: "<param>.momentum"
// (SGD), "<param>.exp_avg", "<param>.exp_avg_sq" and "<param>.step" (Adam, a 1-element CPU float64 tensor:
// the per-parameter step count t). A parameter without a name is called "param<i>" after its position.
// set_lr_mult gives parameters a multiple of the learning rate (Caffe's lr_mult; a PyTorch parameter group with
// lr x k): parameter i steps as if lr were lr() x mult[i], everything else alike.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "kernels/optim.h"

namespace fn::nn {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();  // drops every parameter's .grad
  virtual float lr() const = 0;
  virtual void set_lr(float lr) = 0;  // for learning-rate schedules
  // One multiplier per parameter, in params() order (empty: 1 for every parameter).
  void set_lr_mult(std::vector<float> mult);
  float lr_mult(size_t i) const { return lr_mult_.empty() ? 1.f : lr_mult_[i]; }
  // The named state tensors (shared with the optimizer: copy into them to restore a checkpoint).
  std::vector<std::pair<std::string, Tensor>> state() const { return state_; }
  const std::vector<Tensor>& params() const { return params_; }

 protected:
  std::string param_name(size_t i) const;
  Tensor add_state(size_t i, const std::string& suffix, const Tensor& t);

  std::vector<Tensor> params_;
  std::vector<std::pair<std::string, Tensor>> state_;
  std::vector<float> lr_mult_;
};

// SGD{lr, momentum, weight_decay, nesterov}: g += wd p; v = mu v + g; p -= lr (nesterov ? g + mu v : v).
struct SgdOptions {
  float lr = 0.01f, momentum = 0.f, weight_decay = 0.f;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SgdOptions options);
  void step() override;
  float lr() const override { return h_.lr; }
  void set_lr(float lr) override { h_.lr = lr; }

 private:
  kernels::SgdHyper h_;
  std::vector<Tensor> momentum_;  // undefined when momentum == 0
};

// Adam{lr, beta1, beta2, eps, weight_decay} (L2 weight decay added to the gradient, as torch.optim.Adam).
struct AdamOptions {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
};
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options);
  void step() override;
  float lr() const override { return h_.lr; }
  void set_lr(float lr) override { h_.lr = lr; }

 private:
  kernels::AdamHyper h_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_, steps_;
};

}  // namespace fn::nn
