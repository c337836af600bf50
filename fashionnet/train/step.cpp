// One FashionNet training step (step.h): forward, losses, the finite check, backward, the first-step gradient
// check; then the gradients-ready hook, clipping, the optimizer's step.
#include "fashionnet/train/step.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "core/autograd.h"
#include "core/shard.h"
#include "dist/bucketer.h"
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
  ctx.category_smoothing = cfg.label_smoothing;
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
  const int parts = options_.parts;
  FN_CHECK(parts >= 1 && batch.n >= parts, "a batch of ", batch.n, " images cannot be split into ", parts, " parts");
  StepResult r;
  r.images = batch.n;
  const std::vector<Tensor> params = parts > 1 ? model_.parameters() : std::vector<Tensor>{};
  std::vector<Tensor> sums(params.size());  // parts > 1: per parameter, the parts' gradients summed in order
  std::vector<std::string> active;  // the loss terms of any part, for the gradient check
  std::map<std::string, std::pair<double, int>> term_sums;  // per term: the sum over the parts that have it
  int triplet_parts = 0;
  for (int k = 0; k < parts; ++k) {
    const auto [begin, end] = shard_of(batch.n, k, parts);
    const BatchTensors part = parts == 1 ? batch : slice_rows(batch, begin, end);
    // The pose branch only where a landmark term reads it: on images without landmarks (an ImageFolder) its
    // forward (Lite0: the second copy of the last stages and the head) would run for nothing.
    Outputs out = model_.forward(part.images, PoolAt{part.landmarks, part.visible}, uint64_t(step),
                                 options_.first_sample + begin, pose_terms_apply(part, weights));
    LossTerms terms = fashionnet_loss(out, part, weights, ctx_);
    const double total = terms.total.item();
    std::vector<std::pair<std::string, double>> checked = terms.values;
    checked.emplace_back("total", total);  // finite terms can still add up to Inf
    for (auto& [name, v] : checked)
      if (!std::isfinite(v)) {
        clear_tape();
        FN_USER_FAIL(options_.who.empty() ? std::string() : options_.who + ": ", "loss term '", name, "' is ", v,
                     " at step ", step, " (", stage, "): training stopped",
                     options_.run_dir.empty() ? std::string()
                                              : "; the last good checkpoint in " + options_.run_dir + " is kept");
      }
    r.total += total / parts;
    for (auto& [name, v] : terms.values) {
      auto& [sum, count] = term_sums[name];
      if (count++ == 0 && std::find(active.begin(), active.end(), name) == active.end()) active.push_back(name);
      sum += v;
    }
    if (weights.triplet > 0) r.triplet_active += terms.triplet_active, ++triplet_parts;
    if (k == 0) r.outputs = out;  // the diagnostics (dead units) look at the first part
    if (parts == 1) {
      // The bucketer takes each gradient as the backward completes it, overlapping the rest of the backward.
      std::optional<dist::GradReadyHook> hook;
      if (options_.bucketer) hook.emplace(*options_.bucketer);
      backward(terms.total);
      continue;
    }
    // Each part's gradient on its own, then added to the others in part order: what MPI's sum of two ranks'
    // does (one addition, commutative), so that 1 process x 2 parts and 2 ranks x 1 part agree bitwise.
    // (Accumulating in the backward would fuse the addition into the GEMMs and round differently.)
    for (const Tensor& p : params) Tensor(p).zero_grad();
    backward(terms.total);
    for (size_t i = 0; i < params.size(); ++i) {
      Tensor g = params[i].grad();
      if (!g.defined()) continue;
      if (!sums[i].defined()) sums[i] = g;
      else kernels::add(sums[i], g, sums[i]);
    }
  }
  // The mean over the parts (x 1/2 is exact, so equal to the ranks' division of the sum by 2). The bucketer
  // then takes every gradient in finish().
  for (size_t i = 0; i < params.size(); ++i) {
    if (sums[i].defined()) kernels::scale(sums[i], 1.0 / parts, sums[i]);
    Tensor(params[i]).set_grad(sums[i]);
  }
  for (auto& [name, sc] : term_sums) r.terms.emplace_back(name, sc.first / sc.second);
  // In the order the loss lists them ("lm", "vis", ...), as one part gives them.
  std::sort(r.terms.begin(), r.terms.end(), [&](const auto& a, const auto& b) {
    return std::find(active.begin(), active.end(), a.first) < std::find(active.begin(), active.end(), b.first);
  });
  if (triplet_parts > 0) r.triplet_active /= triplet_parts;
  if (!checked_) {
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
  if (options_.bucketer) options_.bucketer->finish();  // every rank's gradients averaged
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
