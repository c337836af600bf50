#include "fashionnet/train/trainer.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>

#include "core/atomic_file.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "data/loader.h"
#include "data/split.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/report/plot.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/step.h"
#include "nn/batchnorm2d.h"
#include "nn/optim.h"

namespace fs = std::filesystem;

namespace fn::fashionnet {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// While a run is on, Ctrl-C (SIGINT) sets g_interrupted; the handler installed before is restored on every
// way out of the run, exceptions included.
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted = false;
    prev_ = std::signal(SIGINT, on_sigint);
  }
  ~SigintGuard() { std::signal(SIGINT, prev_); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  void (*prev_)(int) = SIG_DFL;
};

double learning_rate(const TrainConfig& cfg, const StageConfig& st, int64_t t) {
  double lr = st.lr;
  if (cfg.warmup > 0 && t < cfg.warmup) return lr * double(t + 1) / double(cfg.warmup);
  if (cfg.schedule == LrSchedule::Cosine) return lr * 0.5 * (1 + std::cos(M_PI * double(t) / double(std::max<int64_t>(st.steps, 1))));
  if (cfg.schedule == LrSchedule::Step && cfg.step_every > 0) return lr * std::pow(cfg.step_gamma, double(t / cfg.step_every));
  return lr;
}

std::string terms_line(const std::vector<std::pair<std::string, double>>& terms) {
  std::string s;
  char b[64];
  for (auto& [n, v] : terms) {
    std::snprintf(b, sizeof b, "%s %.4f ", n.c_str(), v);
    s += b;
  }
  return s;
}

}  // namespace

void write_loss_curve(const std::string& run_dir) {
  std::ifstream f(run_dir + "/metrics.jsonl");
  std::map<std::string, std::map<int64_t, double>> by_term;  // last value per step wins (resumed runs)
  std::map<int64_t, std::string> stage_start;
  std::string line, prev_stage;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.contains("step") || !j.contains("terms")) continue;
    int64_t step = j["step"];
    for (auto& [k, v] : j["terms"].items()) by_term[k][step] = v.get<double>();
    if (j.contains("total")) by_term["total"][step] = j["total"].get<double>();
    std::string st = j.value("stage", "");
    if (st != prev_stage) stage_start[step] = st, prev_stage = st;
  }
  std::vector<Series> series;
  for (auto& [name, pts] : by_term) {
    Series s{name, {}};
    for (auto& [x, y] : pts) s.points.emplace_back(double(x), y);
    series.push_back(s);
  }
  ChartOptions o;
  o.title = "FashionNet training loss (unweighted terms and the weighted total)";
  o.x_label = "step";
  o.y_label = "loss";
  o.log_y = true;
  for (auto& [x, st] : stage_start) o.x_marks.emplace_back(double(x), st);
  write_text_file(run_dir + "/loss.svg", svg_line_chart(series, o));
}

namespace {

bool one_image_per_item(const data::Dataset& ds, const std::vector<int>& ids) {
  std::vector<int> seen(ds.item_ids.size(), 0);
  for (int i : ids) {
    const int item = ds.samples[size_t(i)].item;
    if (item >= 0 && ++seen[size_t(item)] > 1) return false;
  }
  return true;
}

// One call of train(), in named pieces: the constructor sets the run up; go() runs the stages, each entered
// by enter_stage(), given its frozen marks by apply_stage_marks() and stepped by run_stage() (one TrainStep per
// step), which logs (log_step) and saves (checkpoint) as it goes.
class Run {
 public:
  Run(TrainConfig cfg, const TrainOptions& opt);
  TrainSummary go();

 private:
  int64_t stage_begin(int s) const;  // steps done over all stages before stage s
  void enter_stage(int s);
  void check_freeze_names() const;
  void apply_stage_marks(int s);
  data::LoaderConfig loader_config(int s) const;
  bool run_stage(int s);  // true when the run stops early (Ctrl-C or stop_after)
  void log_step(const StageConfig& stage, int64_t done, double lr, const StepResult& r, bool& warned_dead);
  void checkpoint(const StageConfig& stage, int64_t done, bool stage_done);

  const TrainOptions& opt_;
  TrainConfig cfg_;
  const std::string run_;  // the run folder
  data::Dataset ds_;
  std::vector<int> train_ids_;
  TrainState st_;
  std::unique_ptr<FashionNet> model_;
  std::unique_ptr<nn::SGD> sgd_;
  std::unique_ptr<TrainStep> step_;
  std::ofstream metrics_;
  TrainSummary sum_;
  int64_t images_ = 0;  // over the run, for images_per_s
  std::chrono::steady_clock::time_point t0_;
};

// Setup: the data, the configuration (the checkpoint's when resuming), the model with its initial or resumed
// weights, the optimiser, the loss context, config.json and metrics.jsonl in the run folder.
Run::Run(TrainConfig cfg, const TrainOptions& opt) : opt_(opt), cfg_(std::move(cfg)), run_(opt.out_dir) {
  FN_CHECK(!opt.out_dir.empty(), "train: no output folder");
  FN_CHECK(!cfg_.stages.empty(), "train: the configuration has no stages");
  fs::create_directories(run_);

  ds_ = data::load_dataset(opt.data_root, opt.benchmark, opt.benchmark != "imagefolder");
  train_ids_ = data::train_indices(ds_, opt.holdout);
  FN_CHECK(!train_ids_.empty(), "train: no training images in ", opt.data_root, " (", opt.benchmark, ")");
  if (opt.benchmark == "imagefolder" && one_image_per_item(ds_, train_ids_)) {
    // An ImageFolder names classes; where each item has one photo (inshop_firstview), P items x K images would
    // pair each photo with its own flipped copy. The triplets then take the class as the identity.
    for (auto& s : ds_.samples) s.item = s.category;
    bool triplets = false;
    for (const auto& st : cfg_.stages) triplets |= st.weights.triplet > 0;
    if (triplets && !opt.quiet)
      std::printf("imagefolder: one photo per item, so triplet batches take P classes x K photos\n");
  }

  if (!opt.resume.empty()) {
    cfg_ = checkpoint_config(opt.resume);  // the run continues with the configuration it was started with
    st_ = checkpoint_state(opt.resume);
  } else {
    cfg_.net.categories = int(std::max<size_t>(1, ds_.category_names.size()));
    cfg_.net.attributes = int(ds_.attribute_names.size());
    st_.category_names = ds_.category_names;
  }
  if (opt.resume.empty()) check_config(cfg_, "train");  // checkpoint_config checked a resumed run's
  FN_CHECK(st_.stage <= int(cfg_.stages.size()), "checkpoint ", opt.resume, ": stage ", st_.stage,
           " but its configuration has ", cfg_.stages.size(), " stages");
  model_ = std::make_unique<FashionNet>(cfg_.net, cfg_.seed);
  model_->to(opt.device);
  model_->train();  // dropout on; evaluation (fashionnet/eval) switches to eval mode for its own scope
  check_freeze_names();
  if (!opt.init.empty() && opt.resume.empty()) {
    LoadOptions lo;
    lo.allow_missing = true;
    auto r = load_into(opt.init, model_->named_state(), lo);
    std::printf("init: %zu tensors from %s, %zu left at their random initialisation\n", r.loaded.size(),
                opt.init.c_str(), r.missing.size());
  }
  nn::SgdOptions so;
  so.lr = float(cfg_.stages[0].lr);
  so.momentum = float(cfg_.momentum);
  so.weight_decay = float(cfg_.weight_decay);
  sgd_ = std::make_unique<nn::SGD>(model_->parameters(), so);
  if (!opt.resume.empty()) load_checkpoint(opt.resume, *model_, sgd_.get());

  LossContext ctx = loss_context(cfg_);
  if (cfg_.net.attributes > 0)
    attribute_weights(ds_, train_ids_, cfg_.net.attributes, opt.device, ctx.attr_w_pos, ctx.attr_w_neg);
  StepOptions so_step;
  so_step.clip_grad_norm = cfg_.clip_grad_norm;
  so_step.run_dir = run_;
  step_ = std::make_unique<TrainStep>(*model_, sgd_.get(), std::move(ctx), so_step);

  {
    nlohmann::json j = cfg_;
    write_text_file(run_ + "/config.json", j.dump(2) + "\n");
  }
  metrics_.open(run_ + "/metrics.jsonl", std::ios::app);
  if (!opt.quiet)
    std::printf("FashionNet %s: %lld parameters, %zu training images, %zu categories, %d attributes, device %s\n",
                cfg_.preset.c_str(), (long long)model_->parameter_count(), train_ids_.size(),
                ds_.category_names.size(), cfg_.net.attributes, device_description(opt.device).c_str());
}

int64_t Run::stage_begin(int s) const {
  int64_t b = 0;
  for (int i = 0; i < s; ++i) b += cfg_.stages[size_t(i)].steps;
  return b;
}

// Stage entry: a new stage starts from the previous stage's best weights, with the momentum zeroed.
void Run::enter_stage(int s) {
  const StageConfig& stage = cfg_.stages[size_t(s)];
  std::string best_name = cfg_.stages[size_t(s - 1)].name + "_best.safetensors";
  std::string best = run_ + "/" + best_name;
  // A run resumed into another folder finds the best checkpoint next to the one it resumed from.
  if (!fs::exists(best) && !opt_.resume.empty()) best = (fs::path(opt_.resume).parent_path() / best_name).string();
  if (fs::exists(best)) {
    load_checkpoint(best, *model_, nullptr);
    for (auto& [n, t] : sgd_->state()) t.zero_();
    if (!opt_.quiet) std::printf("%s starts from %s\n", stage.name.c_str(), best.c_str());
  } else {
    std::printf("warning: no %s in %s: %s goes on from the current weights\n", best_name.c_str(), run_.c_str(),
                stage.name.c_str());
  }
  st_.stage = s;
  st_.ema_loss = st_.best_loss = -1;
}

// Every stage's freeze names against the model, before any step: a misspelt name is a user error naming
// the stage, not a run that trains what it should have frozen. Module::freeze is the one rule of what a
// name matches; the marks it leaves are cleared here and set per stage by apply_stage_marks().
void Run::check_freeze_names() const {
  for (size_t s = 0; s < cfg_.stages.size(); ++s)
    for (size_t i = 0; i < cfg_.stages[s].freeze.size(); ++i) {
      const std::string& name = cfg_.stages[s].freeze[i];
      try {
        model_->freeze(name);
      } catch (const Error&) {
        std::vector<std::string> tops;  // the model's top-level modules, for the message
        for (auto& [full, t] : model_->named_parameters()) {
          std::string top = full.substr(0, full.find('.'));
          if (std::find(tops.begin(), tops.end(), top) == tops.end()) tops.push_back(top);
        }
        std::string list;
        for (auto& t : tops) list += (list.empty() ? "" : ", ") + t;
        model_->unfreeze("");
        FN_USER_FAIL("stage '", cfg_.stages[s].name, "' (stages[", s, "].freeze[", i, "]): '", name,
                     "' names no parameter of this ", cfg_.net.backbone.name(),
                     " model (a module such as one of ", list, ", or a parameter's full name)");
      }
    }
  model_->unfreeze("");
}

// A stage's marks, set when it starts and when a run resumes inside it (they are configuration, not in the
// checkpoint): what the stage freezes, and nothing else; every BatchNorm2d's statistics held or moving.
// The stage's first step runs the gradient check against them.
void Run::apply_stage_marks(int s) {
  const StageConfig& stage = cfg_.stages[size_t(s)];
  model_->unfreeze("");
  int frozen = 0;
  for (const std::string& name : stage.freeze) frozen += model_->freeze(name);
  const bool hold = stage.bn_statistics == BnStatistics::Frozen;
  int bns = 0;
  model_->for_each_module([&](const std::string&, nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) bn->freeze_statistics(hold), ++bns;
  });
  step_->recheck_gradients();
  if (!opt_.quiet && (frozen > 0 || (hold && bns > 0))) {
    std::string line = cat(stage.name, ": ", frozen, " parameter tensors frozen");
    for (size_t i = 0; i < stage.freeze.size(); ++i) line += (i ? ", " : " (") + stage.freeze[i];
    if (!stage.freeze.empty()) line += ")";
    if (hold && bns > 0) line += cat(", the statistics of ", bns, " batch norms held");
    std::printf("%s\n", line.c_str());
  }
}

// Stage s's batches: P x K when the stage has a triplet term (and the batch is P*K), shuffled otherwise; a
// seed per stage, so that a resumed run replays the same batches.
data::LoaderConfig Run::loader_config(int s) const {
  const StageConfig& stage = cfg_.stages[size_t(s)];
  data::LoaderConfig lc;
  lc.batch = cfg_.batch;
  lc.input = cfg_.net.input;
  lc.bbox_margin = cfg_.bbox_margin;
  lc.seed = cfg_.seed * 1000003ull + uint64_t(s);
  lc.threads = opt_.loader_threads;
  lc.skip_bad = opt_.skip_bad;
  bool pk = stage.weights.triplet > 0 && cfg_.P * cfg_.K == cfg_.batch;
  lc.sampler = pk ? data::LoaderConfig::PK : data::LoaderConfig::Shuffle;
  lc.P = cfg_.P;
  lc.K = cfg_.K;
  return lc;
}

// The step loop of stage s, from st_.step to the stage's end.
bool Run::run_stage(int s) {
  const StageConfig& stage = cfg_.stages[size_t(s)];
  const int64_t begin = stage_begin(s), end = begin + stage.steps, total_steps = stage_begin(int(cfg_.stages.size()));
  data::Loader loader(ds_, train_ids_, loader_config(s));
  data::Batch batch;
  auto next_batch = [&]() {
    if (!loader.next(batch))
      FN_CHECK(loader.next(batch), "the loader gives no batch: too few training images for batch ", cfg_.batch);
  };
  for (int64_t k = begin; k < st_.step; ++k) next_batch();  // resume: replay the loader to where it was

  Progress prog(stage.name, stage.steps, "img", std::max<int64_t>(1, cfg_.log_every));
  int64_t stage_images = 0;
  bool warned_dead = false;
  for (; st_.step < end; ++st_.step) {
    next_batch();
    BatchTensors bt = to_tensors(batch, ds_, opt_.device);
    double lr = learning_rate(cfg_, stage, st_.step - begin);
    sgd_->set_lr(float(lr));
    StepResult r = step_->run(bt, stage.weights, st_.step, stage.name);
    images_ += r.images;
    stage_images += r.images;
    st_.ema_loss = st_.ema_loss < 0 ? r.total : 0.98 * st_.ema_loss + 0.02 * r.total;
    sum_.last_terms = r.terms;

    const int64_t done = st_.step + 1;
    if (done % cfg_.log_every == 0 || done == end) log_step(stage, done, lr, r, warned_dead);
    if (!opt_.quiet) prog.update(done - begin, double(stage_images), cat("loss ", r.total, "  ", terms_line(r.terms)));
    const bool stage_done = done == end;
    const bool stop = g_interrupted || (opt_.stop_after > 0 && done >= opt_.stop_after && done < total_steps);
    if ((cfg_.checkpoint_every > 0 && done % cfg_.checkpoint_every == 0) || stage_done || stop)
      checkpoint(stage, done, stage_done);
    if (stop) {
      ++st_.step;
      if (!opt_.quiet)
        std::printf("\nstopped: saved %s/last.safetensors at step %lld\n", run_.c_str(), (long long)st_.step);
      return true;
    }
  }
  if (!opt_.quiet) prog.finish(cat("loss ema ", st_.ema_loss));
  return false;
}

// One line of metrics.jsonl (docs/training.md).
void Run::log_step(const StageConfig& stage, int64_t done, double lr, const StepResult& r, bool& warned_dead) {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  nlohmann::json j = {{"step", done}, {"stage", stage.name}, {"lr", lr}, {"total", r.total},
                      {"ema", st_.ema_loss}, {"images_per_s", el > 0 ? images_ / el : 0}};
  for (auto& [n, v] : r.terms) j["terms"][n] = v;
  if (stage.weights.triplet > 0) j["triplet_active"] = r.triplet_active;
  if (r.grad_norm >= 0) j["grad_norm"] = r.grad_norm;  // before clipping
  // Dead ReLUs (zero for the whole batch): a global branch that dies leaves the embedding constant.
  const double dead_g = dead_fraction(r.outputs.fc6_global_act);
  j["dead"]["fc6_global"] = dead_g;
  if (r.outputs.fc6_local_act.defined()) j["dead"]["fc6_local"] = dead_fraction(r.outputs.fc6_local_act);
  if (dead_g >= 0.9 && !warned_dead && !opt_.quiet) {
    std::printf("\nwarning: %.0f%% of fc6_global's units output 0 for every image of the batch at step %lld "
                "(dead ReLUs); consider a lower --lr or a longer warm-up\n", 100 * dead_g, (long long)done);
    warned_dead = true;
  }
  metrics_ << j.dump() << "\n";
  metrics_.flush();
}

// last.safetensors after step `done`; <stage>_best when the smoothed loss is the stage's best so far;
// <stage>_final at the stage's end.
void Run::checkpoint(const StageConfig& stage, int64_t done, bool stage_done) {
  TrainState saved = st_;
  saved.step = done;
  bool best = st_.best_loss < 0 || st_.ema_loss < st_.best_loss;
  if (best) saved.best_loss = st_.best_loss = st_.ema_loss;
  save_checkpoint(run_ + "/last.safetensors", *model_, sgd_.get(), cfg_, saved);
  if (best)
    fs::copy_file(run_ + "/last.safetensors", run_ + "/" + stage.name + "_best.safetensors",
                  fs::copy_options::overwrite_existing);
  if (stage_done)
    fs::copy_file(run_ + "/last.safetensors", run_ + "/" + stage.name + "_final.safetensors",
                  fs::copy_options::overwrite_existing);
}

TrainSummary Run::go() {
  {
    SigintGuard sigint;  // Ctrl-C stops at the end of a step; the handler before is back however this exits
    t0_ = std::chrono::steady_clock::now();
    for (int s = st_.stage; s < int(cfg_.stages.size()); ++s) {
      if (st_.stage != s) enter_stage(s);
      apply_stage_marks(s);
      if (run_stage(s)) {
        sum_.interrupted = true;
        break;
      }
      write_loss_curve(run_);
    }
  }
  sum_.steps = st_.step;
  sum_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  sum_.images_per_s = sum_.seconds > 0 ? double(images_) / sum_.seconds : 0;
  if (!sum_.interrupted) {
    std::string final_ckpt = run_ + "/final.safetensors";
    fs::copy_file(run_ + "/last.safetensors", final_ckpt, fs::copy_options::overwrite_existing);
    sum_.final_checkpoint = final_ckpt;
  }
  write_loss_curve(run_);
  return sum_;
}

}  // namespace

TrainSummary train(TrainConfig cfg, const TrainOptions& opt) { return Run(std::move(cfg), opt).go(); }

}  // namespace fn::fashionnet
