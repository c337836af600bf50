// One FashionNet training step, written once: the trainer (fashionnet/train/trainer.cpp), bench_train_step and
// the PyTorch parity case (bench/parity/parity_case.cpp) all run this code.
//
//   forward_backward(batch)   forward in training mode (dropout seeded by the step), fashionnet_loss with the
//                             stage's weights, every loss term checked finite (a NaN or Inf stops the run,
//                             naming the term, the step and the stage), backward; on the first step of this
//                             TrainStep, and the first after each recheck_gradients(), the gradient check (below)
//   ===== the gradients of the step are complete here =====
//   apply()                   on_gradients_ready(trainable parameters), then clipping (which measures the
//                             global norm), the optimizer's step and zero_grad
//
// run() is the two in a row; the trainer and the benchmark call it. The parity case calls forward_backward()
// only and reads the gradients.
//
// Where the gradients are complete. Between forward_backward() and apply() every trainable parameter's .grad
// holds this process's gradient of this step, and nothing has read it yet. apply() first calls
// `on_gradients_ready` with the trainable parameters: the place where a gradient all-reduce across processes
// goes (average the .grad of each, in place), so that clipping, the logged grad_norm and the optimizer all
// see the global gradient. Nothing else may touch the gradients between the two calls.
//
// The first-step gradient check. Tensor::view and slice0 return leaves without gradient, and the optimizer
// skips a parameter without .grad, so a change that cuts a parameter off the graph would train on, quietly
// wrong. After the first backward, every trainable parameter must hold a gradient; one that does not is an
// error naming it. Not demanded: frozen parameters (nn::Module::freeze), and the heads that only a loss term
// absent from that step reaches (a weight of 0, or labels the batch lacks: without landmark annotation the
// pose branch, conv5_pose .. landmark_vis, gets no gradient). A frozen parameter that holds a gradient is an
// error too (an op recorded one for a tensor that does not require it). check_gradients() is the check itself.
// The marks and the weights change from stage to stage, so the trainer calls recheck_gradients() when a stage
// starts (or a run resumes inside one): the stage's first step is checked against that stage's marks.
//
// Parts (data parallel, docs/distributed.md). The global batch of a step is split into equal parts, each
// a rank's share or a part of one: a part's losses are taken on it alone (batch-hard triplets are mined
// within the part; means are over the part), and the step's loss is the mean of the parts' losses. A
// process holding several parts (StepOptions::parts) runs forward and backward once per part, each part's
// gradients on their own, adds them in part order and scales the sum by 1/parts; the bucketer
// (StepOptions::bucketer) then averages the gradients across the ranks (with one part a rank, it takes each
// gradient as the backward completes it). So one process with 2 parts and 2 ranks with 1 part each compute
// the same step, bitwise (docs/distributed.md, "Equal to one process"). A sample's dropout mask is drawn at
// its place in the global batch (first_sample). With several parts, gradients held before the call are
// dropped; with one they are added to, as backward() does.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/model/losses.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace fn::dist {
class GradBucketer;
}

namespace fn::fashionnet {

// What one step gives back: what the trainer logs, and the outputs for the diagnostics.
struct StepResult {
  double total = 0;                                   // the weighted loss
  std::vector<std::pair<std::string, double>> terms;  // each term before its stage weight: "lm", "vis", ...
  double triplet_active = 0;                          // fraction of anchors with a positive triplet term
  double grad_norm = -1;  // global gradient norm before clipping (apply(); -1: clipping is off, not measured)
  int64_t images = 0;     // the batch's size
  Outputs outputs;        // the forward's outputs (fc6_*_act give the dead-unit fractions)
};

struct StepOptions {
  double clip_grad_norm = 0;  // 0: no clipping, and the gradient norm is not measured
  // Named in the NaN/Inf message as the folder whose last good checkpoint is kept (the trainer's run folder).
  std::string run_dir;
  int parts = 1;             // parts of this process's batch (see "Parts" above)
  int64_t first_sample = 0;  // this process's first row in the global batch
  dist::GradBucketer* bucketer = nullptr;  // averages the gradients across ranks (null: one process)
  std::string who;           // "rank 1 of 2": named in errors when several processes train
};

// The loss context of a configuration: the triplet margin and mining. Attribute weights are the caller's
// (the training set's counts: attribute_weights()).
LossContext loss_context(const TrainConfig& cfg);

class TrainStep {
 public:
  // References the model and the optimizer (which must outlive this); `optimizer` may be null for a caller
  // that only runs forward_backward() (the parity case). The optimizer's parameters are the model's, frozen
  // ones included (a checkpoint holds their state too); the frozen ones are skipped.
  TrainStep(const FashionNet& model, nn::Optimizer* optimizer, LossContext ctx, StepOptions options = {});

  // Called by apply() with the trainable parameters, their gradients complete: see the file comment.
  std::function<void(const std::vector<Tensor>& params)> on_gradients_ready;

  // Forward, losses, the finite check, backward (and the gradient check on the first call). `step` counts
  // steps over the whole run: it seeds dropout and is named in errors, with `stage`.
  StepResult forward_backward(const BatchTensors& batch, const LossWeights& weights, int64_t step,
                              const std::string& stage);
  // on_gradients_ready, clipping, the optimizer's step, zero_grad; returns the norm before clipping (-1 when
  // clipping is off).
  double apply();
  // forward_backward() then apply(), the grad norm in the result.
  StepResult run(const BatchTensors& batch, const LossWeights& weights, int64_t step, const std::string& stage);

  const LossContext& loss_context() const { return ctx_; }
  bool gradients_checked() const { return checked_; }
  // The next forward_backward() runs the gradient check again (a new stage: other frozen marks, other weights).
  void recheck_gradients() { checked_ = false; }
  // The gradient averaging across ranks (a new one per stage: its trainable parameters); null: none.
  void set_bucketer(dist::GradBucketer* bucketer) { options_.bucketer = bucketer; }

 private:
  const FashionNet& model_;
  nn::Optimizer* opt_;
  LossContext ctx_;
  StepOptions options_;
  bool checked_ = false;
};

// The first-step check on any module: throws fn::Error naming every trainable parameter without a gradient
// for which `exempt(name)` (when given) is false, or every frozen parameter with one. `where` starts the message.
void check_gradients(const nn::Module& model, const std::string& where,
                     const std::function<bool(const std::string& name)>& exempt = nullptr);

// FashionNet's exemptions for a step whose active loss terms are `terms` ("lm", "vis", "cat", "attr", "tri"):
// true for a parameter that only absent terms reach (docs/fashionnet.md sec. 2): landmark_loc.* needs "lm",
// landmark_vis.* "vis", the pose branch (conv5_pose, fc6_pose, fc7_pose) one of the two, category.* "cat",
// attributes.* "attr", and the global and local branches with fc7_fusion one of "cat", "attr", "tri". The
// trunk needs any term.
bool reached_only_by_absent_terms(const std::string& name, const std::vector<std::string>& terms);

// Scales all gradients so that their global L2 norm is at most max_norm (0: measure only); returns the
// norm before scaling. Parameters without a gradient, and frozen ones, are left out.
double clip_gradients(const std::vector<Tensor>& params, double max_norm);

}  // namespace fn::fashionnet
