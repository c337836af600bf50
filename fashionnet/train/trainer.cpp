#include "fashionnet/train/trainer.h"

#include <signal.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include <unistd.h>

#include "core/atomic_file.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "data/loader.h"
#include "data/split.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/report/plot.h"
#include "fashionnet/train/benchmark_weights.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/step.h"
#include "fashionnet/train/validation.h"
#include "nn/batchnorm2d.h"
#include "nn/optim.h"

namespace fs = std::filesystem;

namespace fn::fashionnet {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// While a run is on, Ctrl-C (SIGINT), SIGTERM (how schedulers, and mpirun on Ctrl-C, ask a job to end) and
// SIGUSR1 (which Open MPI's mpirun forwards to every rank) set g_interrupted: the run stops after its step and
// saves. Without SA_RESTART, so that a rank blocked writing its progress to a launcher that stopped reading
// it gets out of the write and saves. The handlers installed before are restored on every way out of the
// run, exceptions included.
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted = false;
    struct sigaction sa = {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &sa, &prev_[i]);
  }
  ~SigintGuard() {
    for (size_t i = 0; i < kSignals.size(); ++i) sigaction(kSignals[i], &prev_[i], nullptr);
  }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  static constexpr std::array<int, 3> kSignals = {SIGINT, SIGTERM, SIGUSR1};
  std::array<struct sigaction, 3> prev_{};
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

// Whether the stage holds the statistics of the batch norm named `bn` (a module's full name).
bool holds_statistics(const StageConfig& stage, const std::string& bn) {
  return stage.bn_statistics == BnStatistics::Frozen ||
         std::any_of(stage.hold_statistics.begin(), stage.hold_statistics.end(),
                     [&](const std::string& h) { return nn::Module::covers(h, bn); });
}

}  // namespace

void write_loss_curve(const std::string& run_dir) {
  std::ifstream f(run_dir + "/metrics.jsonl");
  std::map<std::string, std::map<int64_t, double>> by_term;  // last value per step wins (resumed runs)
  std::map<int64_t, std::string> stage_start;
  // The validation lines (a panel of its own: another scale), the measure and its tie-break.
  std::map<int64_t, double> validation, tie_break;
  std::string line, prev_stage, measure, tie_measure;
  const auto number = [](const nlohmann::json& v) {
    return v.contains("value") && v["value"].is_number() ? v["value"].get<double>() : NAN;
  };
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.contains("step") && j.contains("validation")) {
      const auto& v = j["validation"];
      measure = v.value("measure", "");
      validation[j["step"].get<int64_t>()] = number(v);
      if (v.contains("tie_break")) {
        tie_measure = v["tie_break"].value("measure", "");
        tie_break[j["step"].get<int64_t>()] = number(v["tie_break"]);
      }
    }
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
  std::string svg = svg_line_chart(series, o);
  if (!validation.empty()) {
    std::vector<Series> panel{{measure_label(measure) + " (validation)", {}}};
    for (auto& [x, y] : validation) panel[0].points.emplace_back(double(x), y);
    if (!tie_break.empty()) {  // an accuracy as the measure is: the same scale
      panel.push_back({measure_label(tie_measure) + " (validation, the tie-break)", {}});
      for (auto& [x, y] : tie_break) panel[1].points.emplace_back(double(x), y);
    }
    ChartOptions vo = o;
    vo.title = cat("Validation: ", measure_label(measure), measure == "landmark_error" ? " (lower is better)" : "",
                   tie_break.empty() ? "" : cat(", ties broken by ", measure_label(tie_measure)));
    vo.y_label = tie_break.empty() ? measure_label(measure) : "accuracy";
    vo.log_y = false;
    vo.height = 260;
    svg = svg_stack({svg, svg_line_chart(panel, vo)});
  }
  write_text_file(run_dir + "/loss.svg", svg);
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
  void check_stage_names();
  void apply_stage_marks(int s);
  data::LoaderConfig loader_config(int s) const;
  bool run_stage(int s);  // true when the run stops early (Ctrl-C or stop_after)
  void log_step(const StageConfig& stage, int64_t done, double lr, const StepResult& r, bool& warned_dead);
  void setup_validation();
  struct Improved {
    bool stage = false, run = false;  // a new best of the stage, of the run
  };
  Improved validate_at(const StageConfig& stage, int64_t done);
  void checkpoint(const StageConfig& stage, int64_t done, bool stage_done, bool save_last, Improved improved);
  void layout_ranks();  // the global batch over the ranks, and the parts
  bool all_ranks_step(StepResult& r, bool stop);  // the step's figures averaged, and whether any rank stops
  bool primary() const { return rank_ == 0; }  // writes the run folder and prints
  void weights_from_rank0();  // rank 0's parameters and buffers into every rank's model (collective)

  const TrainOptions& opt_;
  dist::Communicator* comm_;  // null: one process
  const int rank_, ranks_;
  const bool loud_;  // prints: rank 0, unless quiet
  int local_parts_ = 1;
  std::unique_ptr<dist::GradBucketer> bucketer_;  // per stage (its trainable parameters), with several ranks
  TrainConfig cfg_;
  const std::string run_;  // the run folder
  data::Dataset ds_;
  std::vector<int> train_ids_;
  TrainState st_;
  std::unique_ptr<FashionNet> model_;
  std::unique_ptr<nn::SGD> sgd_;
  std::unique_ptr<TrainStep> step_;
  std::optional<ValidationSet> val_;  // absent: validation off, "best" by the smoothed training loss
  std::string val_tail_;              // the last validation figure, for the progress line
  std::ofstream metrics_;
  TrainSummary sum_;
  int64_t images_ = 0;  // over the run, for images_per_s
  std::chrono::steady_clock::time_point t0_;
};

// Setup: the data, the configuration (the checkpoint's when resuming), the model with its initial or resumed
// weights, the optimiser, the loss context, config.json and metrics.jsonl in the run folder.
Run::Run(TrainConfig cfg, const TrainOptions& opt)
    : opt_(opt),
      comm_(opt.comm && (opt.comm->size() > 1 || opt.dist_alone) ? opt.comm : nullptr),
      rank_(comm_ ? comm_->rank() : 0),
      ranks_(comm_ ? comm_->size() : 1),
      loud_(!opt.quiet && rank_ == 0),
      cfg_(std::move(cfg)),
      run_(opt.out_dir) {
  FN_CHECK(!opt.out_dir.empty(), "train: no output folder");
  FN_CHECK(!cfg_.stages.empty(), "train: the configuration has no stages");
  if (primary()) {
    fs::create_directories(run_);
    // A run killed while it wrote a checkpoint left its temporary file; the last good checkpoint is intact.
    for (const std::string& name : remove_dead_temporaries(run_))
      std::printf("removed %s/%s: the unfinished file of a run that was killed while writing it\n", run_.c_str(),
                  name.c_str());
  }

  ds_ = data::load_dataset(opt.data_root, opt.benchmark, opt.benchmark != "imagefolder");
  train_ids_ = data::train_indices(ds_, opt.holdout);
  FN_CHECK(!train_ids_.empty(), "train: no training images in ", opt.data_root, " (", opt.benchmark, ")");
  if (opt.benchmark == "imagefolder" && one_image_per_item(ds_, train_ids_)) {
    // An ImageFolder names classes; where each item has one photo (inshop_firstview), P items x K images would
    // pair each photo with its own flipped copy. The triplets then take the class as the identity.
    for (auto& s : ds_.samples) s.item = s.category;
    if (cfg_.trains_triplets() && loud_)
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
  // Landmark data label landmarks only: the other terms are weighed 0 (benchmark_weights.h); the run's
  // first line says so.
  const std::string benchmark_line = apply_benchmark_weights(cfg_, opt.benchmark);
  if (!benchmark_line.empty() && loud_) std::printf("%s\n", benchmark_line.c_str());
  if (opt.resume.empty()) check_config(cfg_, "train");  // checkpoint_config checked a resumed run's
  // The paper's rule pools at the annotated landmarks in training and at the predicted ones at test time. With
  // none annotated, training pools at no slot and the pose branch learns nothing, so test time would pool at an
  // untrained prediction: the run keeps to no slot instead (net.local_at "absent", in its config.json).
  if (opt.resume.empty() &&
      std::none_of(train_ids_.begin(), train_ids_.end(), [&](int i) { return ds_.samples[size_t(i)].has_landmarks; }) &&
      keep_no_slot_without_landmarks(cfg_.net)) {
    if (loud_)
      std::printf("no training image has landmarks: the local branch pools at no slot, in training and at test "
                  "time alike (net.local_at \"absent\"); \"layout\" pools at a fixed garment layout instead\n");
  }
  layout_ranks();
  FN_CHECK(st_.stage <= int(cfg_.stages.size()), "checkpoint ", opt.resume, ": stage ", st_.stage,
           " but its configuration has ", cfg_.stages.size(), " stages");
  if (cfg_.validate_every > 0) setup_validation();
  model_ = std::make_unique<FashionNet>(cfg_.net, cfg_.seed);
  model_->to(opt.device);
  model_->train();  // dropout on; evaluation (fashionnet/eval) switches to eval mode for its own scope
  check_stage_names();
  if (!opt.init.empty() && opt.resume.empty()) {
    const LoadResult r = load_init(opt.init, *model_, cfg_.net);
    if (loud_)
      std::printf("init: %zu tensors from %s, %zu left at their random initialisation%s\n", r.loaded.size(),
                  opt.init.c_str(), r.missing.size(),
                  r.unexpected.empty() ? "" : " (its optimiser state left behind: this run starts its own)");
  }
  if (loud_ && opt.init.empty() && opt.resume.empty()) {  // held from the first step: nothing learnt to hold
    int held = 0;
    model_->for_each_module([&](const std::string& name, nn::Module& m) {
      held += dynamic_cast<nn::BatchNorm2d*>(&m) && holds_statistics(cfg_.stages[0], name);
    });
    if (held > 0)
      std::printf("warning: stage '%s' holds the statistics of %d batch norms, but the run starts from random "
                  "weights (no --init): they stay at mean 0, variance 1 and normalise nothing\n",
                  cfg_.stages[0].name.c_str(), held);
  }
  nn::SgdOptions so;
  so.lr = float(cfg_.stages[0].lr);
  so.momentum = float(cfg_.momentum);
  so.weight_decay = float(cfg_.weight_decay);
  sgd_ = std::make_unique<nn::SGD>(model_->parameters(), so);
  if (!opt.resume.empty()) load_checkpoint(opt.resume, *model_, sgd_.get());
  if (comm_) weights_from_rank0();  // the same seed gives every rank the same weights anyway; this makes sure

  LossContext ctx = loss_context(cfg_);
  if (cfg_.net.attributes > 0)
    attribute_weights(ds_, train_ids_, cfg_.net.attributes, opt.device, ctx.attr_w_pos, ctx.attr_w_neg);
  StepOptions so_step;
  so_step.clip_grad_norm = cfg_.clip_grad_norm;
  so_step.run_dir = run_;
  so_step.parts = local_parts_;
  so_step.first_sample = int64_t(rank_) * cfg_.batch;
  if (comm_) so_step.who = cat("rank ", rank_, " of ", ranks_, " (", comm_->host(), ")");
  step_ = std::make_unique<TrainStep>(*model_, sgd_.get(), std::move(ctx), so_step);

  if (primary()) {
    nlohmann::json j = cfg_;
    j["global_batch"] = cfg_.batch * ranks_;  // read by people; a checkpoint's ranks and batch give it back
    write_text_file(run_ + "/config.json", j.dump(2) + "\n");
    metrics_.open(run_ + "/metrics.jsonl", std::ios::app);
  }
  if (loud_)
    std::printf("FashionNet %s: %lld parameters, %zu training images, %zu categories, %d attributes, device %s, "
                "%d rank%s x batch %d = global batch %d%s%s\n",
                cfg_.preset.c_str(), (long long)model_->parameter_count(), train_ids_.size(),
                ds_.category_names.size(), cfg_.net.attributes, device_description(opt.device).c_str(), ranks_,
                ranks_ == 1 ? "" : "s", cfg_.batch, cfg_.batch * ranks_,
                cfg_.parts > 1 ? cat(" in ", cfg_.parts, " loss parts").c_str() : "",
                comm_ ? cat(", gradients averaged over ", comm_->uses_nccl() ? "NCCL" : comm_->uses_mpi() ? "MPI" : "no peers",
                            " in buckets of ", opt_.bucket_bytes >> 20, " MiB").c_str()
                      : "");
}

// The global batch (ranks x batch) is the run's: a resume on another number of ranks keeps it, each rank
// taking global / ranks images (P likewise). The parts: a multiple of the ranks, each rank holding parts /
// ranks of them (1 becomes the number of ranks: each rank's share is a part).
void Run::layout_ranks() {
  const int saved = std::max(1, cfg_.ranks);
  if (!opt_.resume.empty() && saved != ranks_) {
    const int64_t global = int64_t(cfg_.batch) * saved, global_p = int64_t(cfg_.P) * saved;
    FN_EXPECT(global % ranks_ == 0 && global_p % ranks_ == 0, "--resume ", opt_.resume, ": the run's global batch of ",
              global, " images (", global_p, " items x ", cfg_.K, ") cannot be shared by ", ranks_,
              " ranks; resume on a number of ranks that divides both");
    cfg_.batch = int(global / ranks_);
    cfg_.P = int(global_p / ranks_);
    if (loud_)
      std::printf("resuming a run of %d rank%s on %d: each rank takes %d of the global batch of %lld\n", saved,
                  saved == 1 ? "" : "s", ranks_, cfg_.batch, (long long)global);
  }
  cfg_.ranks = ranks_;
  if (cfg_.parts % ranks_ != 0) {
    if (cfg_.parts != 1 && loud_)
      std::printf("note: %d loss parts cannot be shared by %d ranks: each rank's share is a part (%d parts)\n",
                  cfg_.parts, ranks_, ranks_);
    cfg_.parts = ranks_;
  }
  local_parts_ = cfg_.parts / ranks_;
  const int global = cfg_.batch * ranks_;
  FN_EXPECT(global % cfg_.parts == 0, "a global batch of ", global, " images cannot be split into ", cfg_.parts,
            " equal loss parts");
  FN_EXPECT(!cfg_.trains_triplets() || cfg_.P * cfg_.K != cfg_.batch || (global / cfg_.parts) % cfg_.K == 0, "triplet batches of ",
            cfg_.K, " images per item cannot be split into ", cfg_.parts, " parts of ", global / cfg_.parts,
            " images: each part must hold whole items (a multiple of K)");
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
  // Rank 0 reads it (the run folder is its) and gives the weights to the others.
  uint8_t found = primary() && fs::exists(best);
  if (found) load_checkpoint(best, *model_, nullptr);
  if (comm_) {
    comm_->broadcast_bytes(&found, sizeof found, 0);
    if (found) weights_from_rank0();
  }
  if (found) {
    for (auto& [n, t] : sgd_->state()) t.zero_();
    if (loud_) std::printf("%s starts from %s\n", stage.name.c_str(), best.c_str());
  } else {
    std::printf("warning: no %s in %s: %s goes on from the current weights\n", best_name.c_str(), run_.c_str(),
                stage.name.c_str());
  }
  st_.stage = s;
  st_.ema_loss = st_.best_loss = st_.best_validation = st_.best_validation_tie_break = -1;
}

// Every stage's names against the model, before any step: a misspelt name is a user error naming the stage,
// not a run that trains what it should have frozen. Module::covers is the one rule of what a name matches:
// each `freeze` name must cover a parameter, each `hold_statistics` name a BatchNorm2d, each `lr_mult` name a
// parameter that no other `lr_mult` name of the stage covers.
void Run::check_stage_names() {
  const nn::NamedTensors params = model_->named_parameters();
  std::vector<std::string> tops, bns;  // the model's top-level modules (for the messages), its batch norms
  for (auto& [full, t] : params) {
    std::string top = full.substr(0, full.find('.'));
    if (std::find(tops.begin(), tops.end(), top) == tops.end()) tops.push_back(top);
  }
  model_->for_each_module([&](const std::string& name, nn::Module& m) {
    if (dynamic_cast<nn::BatchNorm2d*>(&m)) bns.push_back(name);
  });
  std::string list;
  for (auto& t : tops) list += (list.empty() ? "" : ", ") + t;
  const auto fail = [&](size_t s, const char* key, size_t i, const std::string& name, const char* what,
                        const char* or_else) {
    FN_USER_FAIL("stage '", cfg_.stages[s].name, "' (stages[", s, "].", key, "[", i, "]): '", name, "' names no ",
                 what, " of this ", cfg_.net.backbone.name(), " model (a module such as one of ", list, or_else, ")");
  };
  for (size_t s = 0; s < cfg_.stages.size(); ++s) {
    const StageConfig& stage = cfg_.stages[s];
    for (size_t i = 0; i < stage.freeze.size(); ++i)
      if (std::none_of(params.begin(), params.end(), [&](const auto& p) { return nn::Module::covers(stage.freeze[i], p.first); }))
        fail(s, "freeze", i, stage.freeze[i], "parameter", ", or a parameter's full name");
    for (size_t i = 0; i < stage.hold_statistics.size(); ++i)
      if (std::none_of(bns.begin(), bns.end(), [&](const std::string& b) { return nn::Module::covers(stage.hold_statistics[i], b); }))
        fail(s, "hold_statistics", i, stage.hold_statistics[i], "batch norm", "");
    size_t i = 0;
    for (auto it = stage.lr_mult.begin(); it != stage.lr_mult.end(); ++it, ++i) {
      const std::string& name = it->first;
      if (std::none_of(params.begin(), params.end(), [&](const auto& p) { return nn::Module::covers(name, p.first); }))
        fail(s, "lr_mult", i, name, "parameter", ", or a parameter's full name");
      for (auto other = stage.lr_mult.begin(); other != it; ++other)  // each pair once
        for (const auto& p : params)
          FN_EXPECT(!(nn::Module::covers(name, p.first) && nn::Module::covers(other->first, p.first)), "stage '",
                    stage.name, "' (stages[", s, "].lr_mult): '", p.first, "' is covered by both '", other->first,
                    "' and '", name, "': give each parameter one multiplier");
    }
  }
}

// A stage's marks, set when it starts and when a run resumes inside it (they are configuration, not in the
// checkpoint): what the stage freezes, and nothing else; each BatchNorm2d's statistics held (bn_statistics
// "frozen", or under a hold_statistics name) or moving. The stage's first step runs the gradient check
// against them.
void Run::apply_stage_marks(int s) {
  const StageConfig& stage = cfg_.stages[size_t(s)];
  model_->unfreeze("");
  int frozen = 0;
  for (const std::string& name : stage.freeze) frozen += model_->freeze(name);
  std::vector<float> mult;  // per parameter, in the optimiser's order
  int multiplied = 0;
  for (const Tensor& p : sgd_->params()) {
    mult.push_back(1.f);
    for (const auto& [name, k] : stage.lr_mult)
      if (nn::Module::covers(name, p.name())) mult.back() = float(k), ++multiplied;
  }
  sgd_->set_lr_mult(stage.lr_mult.empty() ? std::vector<float>{} : mult);
  const bool hold_all = stage.bn_statistics == BnStatistics::Frozen;
  int held = 0, bns = 0;
  model_->for_each_module([&](const std::string& name, nn::Module& m) {
    if (auto* bn = dynamic_cast<nn::BatchNorm2d*>(&m)) {
      const bool hold = holds_statistics(stage, name);
      bn->freeze_statistics(hold);
      held += hold, ++bns;
    }
  });
  step_->recheck_gradients();
  if (comm_) {  // the stage's trainable parameters, averaged across the ranks
    step_->set_bucketer(nullptr);
    bucketer_ = std::make_unique<dist::GradBucketer>(*comm_, model_->trainable_parameters(), opt_.bucket_bytes);
    step_->set_bucketer(bucketer_.get());
  }
  if (loud_ && multiplied > 0) {
    std::string list;
    for (const auto& [name, k] : stage.lr_mult) list += cat(list.empty() ? "" : ", ", "x", k, " for ", name);
    std::printf("%s: learning rate %s (%d parameter tensors)\n", stage.name.c_str(), list.c_str(), multiplied);
  }
  if (loud_ && (frozen > 0 || held > 0)) {
    const auto names = [](const std::vector<std::string>& v) {
      std::string s;
      for (const std::string& n : v) s += (s.empty() ? " (" : ", ") + n;
      return s.empty() ? s : s + ")";
    };
    std::string line = stage.name + ":";
    if (frozen > 0) line += cat(" ", frozen, " parameter tensors frozen", names(stage.freeze));
    if (held > 0)
      line += cat(frozen > 0 ? "," : "", " the statistics of ", held, " of ", bns, " batch norms held",
                  hold_all ? "" : names(stage.hold_statistics));
    std::printf("%s\n", line.c_str());
  }
}

// Stage s's batches: P x K when the stage has a triplet term (and the batch is P*K), shuffled otherwise; a
// seed per stage, so that a resumed run replays the same batches.
data::LoaderConfig Run::loader_config(int s) const {
  const StageConfig& stage = cfg_.stages[size_t(s)];
  data::LoaderConfig lc;
  // The global batch, drawn alike on every rank; this rank decodes its share (LoaderConfig::shard).
  lc.batch = cfg_.batch * ranks_;
  lc.shard = rank_;
  lc.shards = ranks_;
  lc.input = cfg_.net.input;
  lc.bbox_margin = cfg_.bbox_margin;
  lc.crop_scale = cfg_.crop_scale;
  lc.seed = cfg_.seed * 1000003ull + uint64_t(s);
  lc.threads = opt_.loader_threads;
  lc.skip_bad = opt_.skip_bad;
  bool pk = stage.weights.triplet > 0 && cfg_.P * cfg_.K == cfg_.batch;
  lc.sampler = pk ? data::LoaderConfig::PK : data::LoaderConfig::Shuffle;
  lc.P = cfg_.P * ranks_;
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
  // --skip-bad: each image the stage skipped, once however many epochs met it, on its rank.
  auto report_skipped = [&] {
    const std::string who = ranks_ > 1 ? cat(" (rank ", rank_, ")") : std::string();
    for (const std::string& w : loader.skipped_reasons())
      std::fprintf(stderr, "warning: stage '%s'%s skipped (--skip-bad): %s\n", stage.name.c_str(), who.c_str(),
                   w.c_str());
  };
  for (; st_.step < end; ++st_.step) {
    next_batch();
    BatchTensors bt = to_tensors(batch, ds_, opt_.device);
    double lr = learning_rate(cfg_, stage, st_.step - begin);
    sgd_->set_lr(float(lr));
    StepResult r = step_->run(bt, stage.weights, st_.step, stage.name);
    const int64_t done = st_.step + 1;
    const bool stop_here = g_interrupted || (opt_.stop_after > 0 && done >= opt_.stop_after && done < total_steps);
    const bool stop = comm_ ? all_ranks_step(r, stop_here) : stop_here;
    if (comm_ && opt_.check_identical_every > 0 && done % opt_.check_identical_every == 0)
      dist::require_identical(*comm_, model_->parameters(), cat("the parameters after step ", done));
    images_ += r.images;
    stage_images += r.images;
    st_.ema_loss = st_.ema_loss < 0 ? r.total : 0.98 * st_.ema_loss + 0.02 * r.total;
    sum_.last_terms = r.terms;

    if (primary() && (done % cfg_.log_every == 0 || done == end)) log_step(stage, done, lr, r, warned_dead);
    const bool stage_done = done == end;
    // Validation before the checkpoint, so that last.safetensors carries the best measure so far.
    const Improved improved = val_ && (done % cfg_.validate_every == 0 || stage_done) ? validate_at(stage, done) : Improved{};
    if (loud_ && !stop)  // stopping: the save first (a launcher may no longer read the output)
      prog.update(done - begin, double(stage_images), cat("loss ", r.total, "  ", terms_line(r.terms), val_tail_));
    const bool save_last = (cfg_.checkpoint_every > 0 && done % cfg_.checkpoint_every == 0) || stage_done || stop;
    if (save_last || improved.stage || improved.run) checkpoint(stage, done, stage_done, save_last, improved);
    if (stop) {
      ++st_.step;
      if (loud_)
        std::printf("\nstopped: saved %s/last.safetensors at step %lld\n", run_.c_str(), (long long)st_.step);
      report_skipped();
      return true;
    }
  }
  if (loud_) prog.finish(cat("loss ema ", st_.ema_loss));
  report_skipped();
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
  if (dead_g >= 0.9 && !warned_dead && loud_) {
    std::printf("\nwarning: %.0f%% of fc6_global's units output 0 for every image of the batch at step %lld "
                "(dead ReLUs); consider a lower --lr or a longer warm-up\n", 100 * dead_g, (long long)done);
    warned_dead = true;
  }
  metrics_ << j.dump() << "\n";
  metrics_.flush();
}

// The validation of this run (TrainConfig::validate_every): the set, and In-shop's training items less the
// held-out ones. A set with nothing to measure leaves validation off, saying why.
void Run::setup_validation() {
  ValidationSet set = validation_set(ds_, opt_.holdout);
  set.bbox_margin = cfg_.bbox_margin;
  if (!set.usable()) {
    if (primary())
      std::printf("warning: validate_every %lld, but %s has nothing to validate on (%s): validation is off and "
                "<stage>_best is the lowest smoothed training loss\n",
                (long long)cfg_.validate_every, opt_.data_root.c_str(), set.description.c_str());
    return;
  }
  train_ids_ = data::train_indices_without_validation(ds_, opt_.holdout);
  FN_EXPECT(!train_ids_.empty(), "train: every training image of ", opt_.data_root,
            " is held out for validation; lower --holdout or set validate_every 0");
  if (loud_)
    std::printf("validation every %lld steps and at each stage's end on %s; best by %s%s\n",
                (long long)cfg_.validate_every, set.description.c_str(), measure_label(set.measure).c_str(),
                set.tie_break.empty() ? "" : cat(", ties by ", measure_label(set.tie_break)).c_str());
  val_ = std::move(set);
}

// One validation after step `done`: the measure against the stage's and the run's best, a line of
// metrics.jsonl, and a line of progress output.
Run::Improved Run::validate_at(const StageConfig& stage, int64_t done) {
  // Every rank validates its share of the images; the gather gives each the same figure.
  const ValidationResult v = validate(*model_, ds_, *val_, opt_.device, opt_.loader_threads, opt_.skip_bad, comm_);
  Improved im;
  im.stage = improves(*val_, v, {st_.best_validation, st_.best_validation_tie_break});
  im.run = improves(*val_, v, {st_.run_best_validation, st_.run_best_validation_tie_break});
  // -1 stands for "none" in the state, as it does before any validation.
  const double tie = std::isnan(v.tie_break) ? -1 : v.tie_break;
  if (im.stage) st_.best_validation = v.value, st_.best_validation_tie_break = tie;
  if (im.run) st_.run_best_validation = v.value, st_.run_best_validation_tie_break = tie;
  const auto number_or_null = [](double x) { return std::isnan(x) ? nlohmann::json(nullptr) : nlohmann::json(x); };
  nlohmann::json j = {{"step", done}, {"stage", stage.name}};
  j["validation"] = {{"measure", val_->measure},
                     {"value", number_or_null(v.value)},
                     {"higher_is_better", val_->higher_is_better},
                     {"images", val_->images()},
                     {"seconds", v.seconds},
                     {"stage_best", im.stage},
                     {"run_best", im.run}};
  if (!val_->tie_break.empty())
    j["validation"]["tie_break"] = {{"measure", val_->tie_break}, {"value", number_or_null(v.tie_break)}};
  if (primary()) {
    metrics_ << j.dump() << "\n";
    metrics_.flush();
  }
  const std::string figure = format_measure(val_->measure, v.value);
  const std::string tie_figure =
      val_->tie_break.empty() ? "" : cat(" (", measure_label(val_->tie_break), " ", format_measure(val_->tie_break, v.tie_break), ")");
  val_tail_ = cat("  val ", figure);
  if (loud_)
    std::printf("\n%s step %lld: validation %s %s%s (%lld images, %.1f s)%s\n", stage.name.c_str(), (long long)done,
                measure_label(val_->measure).c_str(), figure.c_str(), tie_figure.c_str(), (long long)val_->images(), v.seconds,
                im.run ? ", the best so far: best.safetensors" : im.stage ? ", the stage's best so far" : "");
  return im;
}

// After step `done`: last.safetensors when `save_last`; <stage>_best when the stage's best improved (by the
// validation measure, or without validation by the smoothed loss at a checkpoint); best.safetensors when the
// run's best validation improved; <stage>_final at the stage's end. The first file is written atomically and
// the others are atomic copies of it.
void Run::checkpoint(const StageConfig& stage, int64_t done, bool stage_done, bool save_last, Improved improved) {
  TrainState saved = st_;
  saved.step = done;
  bool best = improved.stage;
  if (!val_) {
    best = st_.best_loss < 0 || st_.ema_loss < st_.best_loss;
    if (best) saved.best_loss = st_.best_loss = st_.ema_loss;
  }
  if (!primary()) return;  // the state above is every rank's; the files are rank 0's
  std::string first;
  auto put = [&](const std::string& name) {
    const std::string path = run_ + "/" + name;
    if (first.empty()) {
      save_checkpoint(path, *model_, sgd_.get(), cfg_, saved);
      first = path;
      return;
    }
    const std::string tmp = cat(path, ".tmp.", ::getpid());  // a dead run's is removed at the next start
    fs::copy_file(first, tmp, fs::copy_options::overwrite_existing);
    fs::rename(tmp, path);
  };
  if (save_last) put("last.safetensors");
  if (best) put(stage.name + "_best.safetensors");
  if (improved.run) put("best.safetensors");
  if (stage_done) put(stage.name + "_final.safetensors");
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
  if (!primary()) return sum_;  // the run folder is rank 0's
  if (!sum_.interrupted) {
    std::string final_ckpt = run_ + "/final.safetensors";
    fs::copy_file(run_ + "/last.safetensors", final_ckpt, fs::copy_options::overwrite_existing);
    sum_.final_checkpoint = final_ckpt;
  }
  if (val_ && fs::exists(run_ + "/best.safetensors")) sum_.best_checkpoint = run_ + "/best.safetensors";
  write_loss_curve(run_);
  return sum_;
}

void Run::weights_from_rank0() {
  std::vector<Tensor> state = model_->parameters();
  for (const Tensor& b : model_->buffers()) state.push_back(b);
  comm_->broadcast(state, 0);
}

// After a step on several ranks: the loss figures averaged over the ranks (the log, the smoothed loss that
// picks the best checkpoint without validation, and so a resumed run's state), the images summed, batch
// norm's running statistics taken from rank 0 (each rank's come from its own share, as in PyTorch DDP), and
// whether any rank stops (Ctrl-C reaches the ranks of mpirun's job, not necessarily at the same step).
bool Run::all_ranks_step(StepResult& r, bool stop) {
  constexpr size_t kT = kLossTermCount;
  std::vector<double> v(2 * kT + 4, 0.0);  // per term: sum, ranks that have it; total, active, images, stop
  for (auto& [name, value] : r.terms) {
    const size_t k = size_t(std::find(kLossTermNames.begin(), kLossTermNames.end(), name) - kLossTermNames.begin());
    FN_CHECK(k < kT, "loss term '", name, "' is not one the ranks average");
    v[2 * k] += value;
    v[2 * k + 1] += 1;
  }
  v[2 * kT] = r.total;
  v[2 * kT + 1] = r.triplet_active;
  v[2 * kT + 2] = double(r.images);
  v[2 * kT + 3] = stop ? 1 : 0;
  comm_->allreduce_sum(v.data(), int64_t(v.size()));
  r.terms.clear();
  for (size_t k = 0; k < kT; ++k)
    if (v[2 * k + 1] > 0) r.terms.emplace_back(kLossTermNames[k], v[2 * k] / v[2 * k + 1]);
  r.total = v[2 * kT] / ranks_;
  r.triplet_active = v[2 * kT + 1] / ranks_;
  r.images = int64_t(v[2 * kT + 2]);
  const std::vector<Tensor> buffers = model_->buffers();
  if (!buffers.empty()) comm_->broadcast(buffers, 0);
  return v[2 * kT + 3] > 0;
}

}  // namespace

TrainSummary train(TrainConfig cfg, const TrainOptions& opt) { return Run(std::move(cfg), opt).go(); }

}  // namespace fn::fashionnet
