// Optimizers: per-parameter state, and one kernel launch per parameter and step.
#include "nn/optim.h"

#include "core/autograd.h"

namespace fn::nn {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (size_t i = 0; i < params_.size(); ++i)
    FN_CHECK(params_[i].defined() && params_[i].is_leaf(), "optimizer: parameter ", i, " must be a defined leaf");
}

void Optimizer::set_lr_mult(std::vector<float> mult) {
  FN_CHECK(mult.empty() || mult.size() == params_.size(), "optimizer: ", mult.size(), " learning-rate multipliers for ",
           params_.size(), " parameters");
  for (float k : mult) FN_CHECK(k >= 0, "optimizer: a negative learning-rate multiplier");
  lr_mult_ = std::move(mult);
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

std::string Optimizer::param_name(size_t i) const {
  return params_[i].name().empty() ? cat("param", i) : params_[i].name();
}

Tensor Optimizer::add_state(size_t i, const std::string& suffix, const Tensor& t) {
  Tensor s = t;
  s.set_name(param_name(i) + "." + suffix);
  state_.emplace_back(s.name(), s);
  return s;
}

SGD::SGD(std::vector<Tensor> params, SgdOptions o)
    : Optimizer(std::move(params)), h_{o.lr, o.momentum, o.weight_decay, o.nesterov} {
  FN_CHECK(o.lr >= 0 && o.momentum >= 0 && o.weight_decay >= 0, "SGD: negative hyper-parameter");
  FN_CHECK(!o.nesterov || o.momentum > 0, "SGD: Nesterov momentum needs momentum > 0");
  for (size_t i = 0; i < params_.size(); ++i)
    momentum_.push_back(o.momentum != 0.f ? add_state(i, "momentum", Tensor::zeros_like(params_[i])) : Tensor());
}

void SGD::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined() || !params_[i].requires_grad()) continue;  // no gradient, or frozen
    kernels::SgdHyper h = h_;
    h.lr *= lr_mult(i);
    kernels::sgd_step(params_[i], g, momentum_[i], h);
  }
}

Adam::Adam(std::vector<Tensor> params, AdamOptions o)
    : Optimizer(std::move(params)), h_{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay} {
  FN_CHECK(o.lr >= 0 && 0 <= o.beta1 && o.beta1 < 1 && 0 <= o.beta2 && o.beta2 < 1 && o.eps >= 0,
           "Adam: hyper-parameters out of range");
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_.push_back(add_state(i, "exp_avg", Tensor::zeros_like(params_[i])));
    exp_avg_sq_.push_back(add_state(i, "exp_avg_sq", Tensor::zeros_like(params_[i])));
    steps_.push_back(add_state(i, "step", Tensor::zeros({1}, DType::F64)));
  }
}

void Adam::step() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined() || !params_[i].requires_grad()) continue;  // no gradient, or frozen
    double& t = steps_[i].f64()[0];
    t += 1;
    kernels::AdamHyper h = h_;
    h.lr *= lr_mult(i);
    kernels::adam_step(params_[i], g, exp_avg_[i], exp_avg_sq_[i], int64_t(t), h);
  }
}

}  // namespace fn::nn
