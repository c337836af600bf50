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

int Module::set_trainable(const std::string& name, bool trainable, const char* what) {
  int n = 0;
  for (auto& [full, t] : named_parameters()) {
    const bool below = full.size() > name.size() && full.compare(0, name.size(), name) == 0 && full[name.size()] == '.';
    const bool under = name.empty() || full == name || below;
    if (!under) continue;
    t.set_requires_grad(trainable);
    if (!trainable) t.zero_grad();
    ++n;
  }
  FN_CHECK(n > 0, what, ": no parameter is named '", name, "' or lies under it");
  return n;
}

int Module::freeze(const std::string& name) { return set_trainable(name, false, "freeze"); }
int Module::unfreeze(const std::string& name) { return set_trainable(name, true, "unfreeze"); }

NamedTensors Module::named_trainable_parameters() const {
  NamedTensors out;
  for (auto& [n, t] : named_parameters())
    if (trainable(t)) out.emplace_back(n, t);
  return out;
}

std::vector<Tensor> Module::trainable_parameters() const {
  std::vector<Tensor> v;
  for (auto& [n, t] : named_trainable_parameters()) v.push_back(t);
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
