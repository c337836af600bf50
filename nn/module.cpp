#include "nn/module.h"

namespace fn::nn {

Tensor& Module::add_parameter(const std::string& name, Tensor t) {
  t.set_requires_grad(true);
  params_.emplace_back(name, std::move(t));
  return params_.back().second;
}

Tensor& Module::add_buffer(const std::string& name, Tensor t) {
  FN_CHECK(t.defined(), "add_buffer: buffer '", name, "' is undefined");
  t.set_requires_grad(false);  // saved state, never a leaf of the tape
  buffers_.emplace_back(name, std::move(t));
  return buffers_.back().second;
}

void Module::collect(Registry which, const std::string& prefix, NamedTensors& out) const {
  for (auto& [n, t] : this->*which) out.emplace_back(prefix + n, t);
  for (auto& [n, m] : children_) m->collect(which, prefix + n + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect(&Module::params_, "", out);
  for (auto& [n, t] : out) t.set_name(n);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect(&Module::buffers_, "", out);
  for (auto& [n, t] : out) t.set_name(n);
  return out;
}

std::vector<Tensor> Module::buffers() const {
  std::vector<Tensor> v;
  for (auto& [n, t] : named_buffers()) v.push_back(t);
  return v;
}

NamedTensors Module::named_state() const {
  NamedTensors out = named_parameters();
  for (auto& nt : named_buffers()) out.push_back(nt);
  return out;
}

void Module::visit(const std::string& prefix, const std::function<void(const std::string&, Module&)>& f) {
  f(prefix, *this);
  for (auto& [n, m] : children_) m->visit(prefix.empty() ? n : prefix + "." + n, f);
}

void Module::for_each_module(const std::function<void(const std::string& name, Module&)>& f) { visit("", f); }

void Module::train(bool on) {
  for_each_module([on](const std::string&, Module& m) { m.training_ = on; });
}

bool Module::is_training() const { return training_; }

ModeGuard::ModeGuard(Module& m, bool training) {
  m.for_each_module([this](const std::string&, Module& s) { saved_.emplace_back(&s, s.is_training()); });
  m.train(training);
}

ModeGuard::~ModeGuard() {
  // Module::train() reaches down the tree, so set each module alone: exactly what it was.
  for (auto& [m, on] : saved_) m->training_ = on;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> v;
  for (auto& [n, t] : named_parameters()) v.push_back(t);
  return v;
}

bool Module::covers(const std::string& name, const std::string& full) {
  const bool below = full.size() > name.size() && full.compare(0, name.size(), name) == 0 && full[name.size()] == '.';
  return name.empty() || full == name || below;
}

int Module::set_trainable(const std::string& name, bool trainable, const char* what) {
  int n = 0;
  for (auto& [full, t] : named_parameters()) {
    if (!covers(name, full)) continue;
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
  auto move = [d](Tensor& t) {
    Tensor moved = t.to(d);
    // Swap the storage inside the shared impl so every holder of this tensor sees the move.
    t.impl()->storage = moved.impl()->storage;
    t.impl()->offset = 0;
  };
  for (auto& [n, t] : named_parameters()) {
    if (t.device() == d) continue;
    move(t);
    t.zero_grad();
  }
  for (auto& [n, t] : named_buffers())
    if (t.device() != d) move(t);
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& t : parameters()) n += t.numel();
  return n;
}

}  // namespace fn::nn
