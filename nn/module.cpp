#include "nn/module.h"

namespace fn::nn {

Tensor& Module::add_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

void Module::collect(const std::string& prefix, NamedTensors& out) const {
  for (auto& [n, t] : params_) out.emplace_back(prefix + n, t);
  for (auto& [n, m] : children_) m->collect(prefix + n + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", out);
  for (auto& [n, t] : out) t.set_name(n);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> v;
  for (auto& [n, t] : named_parameters()) v.push_back(t);
  return v;
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

void Module::to(Device d) {
  for (auto& [n, t] : named_parameters()) {
    if (t.device() == d) continue;
    Tensor moved = t.to(d);
    // Swap the storage inside the shared impl so every holder of this parameter sees the move.
    t.impl()->storage = moved.impl()->storage;
    t.impl()->offset = 0;
    t.zero_grad();
  }
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& t : parameters()) n += t.numel();
  return n;
}

}  // namespace fn::nn
