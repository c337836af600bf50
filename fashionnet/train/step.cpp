// One FashionNet training step (step.h): forward, losses, the finite check, backward, the first-step gradient
// check; then the gradients-ready hook, clipping, the optimizer's step.
#include "fashionnet/train/step.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace fn::fashionnet {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Which loss terms reach the parameters under each module of FashionNet's graph (docs/fashionnet.md sec. 2).
// A module not listed (the trunk) is reached by every term.
struct Reach {
  const char* prefix;
  std::vector<const char*> terms;
};
const std::vector<Reach>& reach_table() {
  static const std::vector<Reach> table = {
      {"landmark_loc.", {"lm"}},
      {"landmark_vis.", {"vis"}},
      {"fc7_pose.", {"lm", "vis"}},
      {"fc6_pose.", {"lm", "vis"}},
      {"conv5_pose.", {"lm", "vis"}},
      {"category.", {"cat"}},
      {"attributes.", {"attr"}},
      {"fc7_fusion.", {"cat", "attr", "tri"}},
      {"fc6_global.", {"cat", "attr", "tri"}},
      {"fc6_local.", {"cat", "attr", "tri"}},
      {"conv5_global.", {"cat", "attr", "tri"}},
  };
  return table;
}

}  // namespace

LossContext loss_context(const TrainConfig& cfg) {
  LossContext ctx;
  ctx.triplet_margin = cfg.triplet_margin;
  ctx.triplet_mining = cfg.triplet_mining;
  return ctx;
}

bool reached_only_by_absent_terms(const std::string& name, const std::vector<std::string>& terms) {
  for (const Reach& r : reach_table()) {
    if (!starts_with(name, r.prefix)) continue;
    for (const char* t : r.terms)
      if (std::find(terms.begin(), terms.end(), t) != terms.end()) return false;
    return true;
  }
  return false;  // the trunk: every term reaches it
}

void check_gradients(const nn::Module& model, const std::string& where,
                     const std::function<bool(const std::string& name)>& exempt) {
  std::vector<std::string> missing, frozen_with_grad;
  for (auto& [name, p] : model.named_parameters()) {
    if (!nn::Module::trainable(p)) {
      if (p.grad().defined()) frozen_with_grad.push_back(name);
    } else if (!p.grad().defined() && !(exempt && exempt(name))) {
      missing.push_back(name);
    }
  }
  if (!frozen_with_grad.empty()) {
    std::string names;
    for (auto& n : frozen_with_grad) names += (names.empty() ? "" : ", ") + n;
    FN_FAIL(where, ": ", frozen_with_grad.size(), " frozen parameter(s) got a gradient from the first backward: ",
            names, ". Frozen parameters (nn::Module::freeze) must get none");
  }
  if (missing.empty()) return;
  std::string names;
  for (auto& n : missing) names += (names.empty() ? "" : ", ") + n;
  FN_FAIL(where, ": ", missing.size(), missing.size() == 1 ? " trainable parameter" : " trainable parameters",
          " got no gradient from the first backward: ", names,
          ". It is cut off the graph (used through Tensor::view or slice0, which return leaves without gradient, "
          "or not used at all) and would not train; freeze it (nn::Module::freeze) if that is meant");
}

double clip_gradients(const std::vector<Tensor>& params, double max_norm) {
  // Each parameter's sum of squares goes into its own slot of one tensor, read back once: on a GPU two
  // launches and one synchronisation a step. Summed in double in parameter order.
  std::vector<Tensor> grads;
  for (auto& p : params)
    if (p.grad().defined() && nn::Module::trainable(p)) grads.push_back(p.grad());
  double sq = 0;
  if (!grads.empty()) {
    Tensor sums = Tensor::empty({int64_t(grads.size())}, grads[0].dtype(), grads[0].device());
    kernels::sum_squares_each(grads, sums);
    for (double v : sums.to_vector_f64()) sq += v;
  }
  double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm)
    for (Tensor& g : grads) kernels::scale(g, max_norm / norm, g);
  return norm;
}

TrainStep::TrainStep(const FashionNet& model, nn::Optimizer* optimizer, LossContext ctx, StepOptions options)
    : model_(model), opt_(optimizer), ctx_(std::move(ctx)), options_(std::move(options)) {}

StepResult TrainStep::forward_backward(const BatchTensors& batch, const LossWeights& weights, int64_t step,
                                       const std::string& stage) {
  StepResult r;
  r.images = batch.n;
  r.outputs = model_.forward(batch.images, PoolAt{batch.landmarks, batch.visible}, uint64_t(step));
  LossTerms terms = fashionnet_loss(r.outputs, batch, weights, ctx_);
  r.total = terms.total.item();
  r.terms = terms.values;
  r.triplet_active = terms.triplet_active;
  std::vector<std::pair<std::string, double>> checked = terms.values;
  checked.emplace_back("total", r.total);  // finite terms can still add up to Inf
  for (auto& [name, v] : checked)
    if (!std::isfinite(v)) {
      clear_tape();
      FN_FAIL("loss term '", name, "' is ", v, " at step ", step, " (", stage, "): training stopped",
              options_.run_dir.empty() ? std::string() : "; the last good checkpoint in " + options_.run_dir + " is kept");
    }
  backward(terms.total);
  if (!checked_) {
    std::vector<std::string> active;
    for (auto& [name, v] : terms.values) active.push_back(name);
    check_gradients(model_, cat("step ", step, " (", stage, ")"),
                    [&](const std::string& name) { return reached_only_by_absent_terms(name, active); });
    checked_ = true;
  }
  return r;
}

double TrainStep::apply() {
  FN_CHECK(opt_, "TrainStep::apply: this step has no optimizer (it was made for forward_backward only)");
  std::vector<Tensor> params;
  for (const Tensor& p : opt_->params())
    if (nn::Module::trainable(p)) params.push_back(p);
  if (on_gradients_ready) on_gradients_ready(params);
  const double norm = options_.clip_grad_norm > 0 ? clip_gradients(params, options_.clip_grad_norm) : -1;
  opt_->step();
  opt_->zero_grad();
  return norm;
}

StepResult TrainStep::run(const BatchTensors& batch, const LossWeights& weights, int64_t step, const std::string& stage) {
  StepResult r = forward_backward(batch, weights, step, stage);
  r.grad_norm = apply();
  return r;
}

}  // namespace fn::fashionnet
