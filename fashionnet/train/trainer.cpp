#include "fashionnet/train/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/atomic_file.h"
#include "core/autograd.h"
#include "core/safetensors.h"
#include "data/loader.h"
#include "data/split.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/report/plot.h"
#include "core/progress.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "nn/optim.h"

namespace fs = std::filesystem;

namespace fn::fashionnet {
namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

double learning_rate(const TrainConfig& cfg, const StageConfig& st, int64_t t) {
  double lr = st.lr;
  if (cfg.warmup > 0 && t < cfg.warmup) return lr * double(t + 1) / double(cfg.warmup);
  if (cfg.schedule == "cosine") return lr * 0.5 * (1 + std::cos(M_PI * double(t) / double(std::max<int64_t>(st.steps, 1))));
  if (cfg.schedule == "step" && cfg.step_every > 0) return lr * std::pow(cfg.step_gamma, double(t / cfg.step_every));
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

double clip_gradients(const std::vector<Tensor>& params, double max_norm) {
  // Each parameter's sum of squares goes into its own slot of one tensor, read back once: on a GPU two
  // launches and one synchronisation a step. Summed in double in parameter order.
  std::vector<Tensor> grads;
  for (auto& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  double sq = 0;
  if (!grads.empty()) {
    Tensor sums = Tensor::empty({int64_t(grads.size())}, grads[0].dtype(), grads[0].device());
    kernels::sum_squares_each(grads, sums);
    for (double v : sums.to_vector_f64()) sq += v;
  }
  double norm = std::sqrt(sq);
  if (max_norm > 0 && norm > max_norm) {
    for (auto& p : params) {
      Tensor g = p.grad();
      if (g.defined()) kernels::scale(g, max_norm / norm, g);
    }
  }
  return norm;
}

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

TrainSummary train(TrainConfig cfg, const TrainOptions& opt) {
  FN_CHECK(!opt.out_dir.empty(), "train: no output folder");
  FN_CHECK(!cfg.stages.empty(), "train: the configuration has no stages");
  fs::create_directories(opt.out_dir);
  const std::string run = opt.out_dir;

  data::Dataset ds = data::load_dataset(opt.data_root, opt.benchmark, opt.benchmark != "imagefolder");
  std::vector<int> train_ids = data::train_indices(ds, opt.holdout);
  FN_CHECK(!train_ids.empty(), "train: no training images in ", opt.data_root, " (", opt.benchmark, ")");

  TrainState st;
  if (!opt.resume.empty()) {
    cfg = checkpoint_config(opt.resume);  // the run continues with the configuration it was started with
    st = checkpoint_state(opt.resume);
  } else {
    cfg.net.categories = int(std::max<size_t>(1, ds.category_names.size()));
    cfg.net.attributes = int(ds.attribute_names.size());
    st.category_names = ds.category_names;
  }
  if (opt.resume.empty()) check_config(cfg, "train");  // checkpoint_config checked a resumed run's
  FN_CHECK(st.stage <= int(cfg.stages.size()), "checkpoint ", opt.resume, ": stage ", st.stage, " but its configuration has ",
           cfg.stages.size(), " stages");
  FashionNet model(cfg.net, cfg.seed);
  model.to(opt.device);
  if (!opt.init.empty() && opt.resume.empty()) {
    LoadOptions lo;
    lo.allow_missing = true;
    auto r = load_into(opt.init, model.named_parameters(), lo);
    std::printf("init: %zu tensors from %s, %zu left at their random initialisation\n", r.loaded.size(),
                opt.init.c_str(), r.missing.size());
  }
  std::vector<Tensor> params = model.parameters();
  nn::SgdOptions so;
  so.lr = float(cfg.stages[0].lr);
  so.momentum = float(cfg.momentum);
  so.weight_decay = float(cfg.weight_decay);
  nn::SGD sgd(params, so);
  if (!opt.resume.empty()) load_checkpoint(opt.resume, model, &sgd);

  LossContext ctx;
  ctx.triplet_margin = cfg.triplet_margin;
  ctx.triplet_mining = cfg.triplet_mining;
  if (cfg.net.attributes > 0) attribute_weights(ds, train_ids, cfg.net.attributes, opt.device, ctx.attr_w_pos, ctx.attr_w_neg);

  {
    nlohmann::json j = cfg;
    write_text_file(run + "/config.json", j.dump(2) + "\n");
  }
  std::ofstream metrics(run + "/metrics.jsonl", std::ios::app);
  if (!opt.quiet)
    std::printf("FashionNet %s: %lld parameters, %zu training images, %zu categories, %d attributes, device %s\n",
                cfg.preset.c_str(), (long long)model.parameter_count(), train_ids.size(), ds.category_names.size(),
                cfg.net.attributes, device_description(opt.device).c_str());

  g_interrupted = false;
  auto prev_handler = std::signal(SIGINT, on_sigint);
  TrainSummary sum;
  int64_t images = 0;
  auto stage_begin = [&](int s) {
    int64_t b = 0;
    for (int i = 0; i < s; ++i) b += cfg.stages[size_t(i)].steps;
    return b;
  };
  int64_t total_steps = stage_begin(int(cfg.stages.size()));
  auto t0 = std::chrono::steady_clock::now();

  for (int s = st.stage; s < int(cfg.stages.size()); ++s) {
    const StageConfig& stage = cfg.stages[size_t(s)];
    int64_t begin = stage_begin(s), end = begin + stage.steps;
    if (st.stage != s) {  // entering a new stage: start from the previous stage's best weights
      std::string best_name = cfg.stages[size_t(s - 1)].name + "_best.safetensors";
      std::string best = run + "/" + best_name;
      // A run resumed into another folder finds the best checkpoint next to the one it resumed from.
      if (!fs::exists(best) && !opt.resume.empty()) best = (fs::path(opt.resume).parent_path() / best_name).string();
      if (fs::exists(best)) {
        load_checkpoint(best, model, nullptr);
        for (auto& [n, t] : sgd.state()) t.zero_();
        if (!opt.quiet) std::printf("%s starts from %s\n", stage.name.c_str(), best.c_str());
      } else {
        std::printf("warning: no %s in %s: %s goes on from the current weights\n", best_name.c_str(), run.c_str(),
                    stage.name.c_str());
      }
      st.stage = s;
      st.ema_loss = st.best_loss = -1;
    }
    data::LoaderConfig lc;
    lc.batch = cfg.batch;
    lc.input = cfg.net.input;
    lc.bbox_margin = cfg.bbox_margin;
    lc.seed = cfg.seed * 1000003ull + uint64_t(s);
    lc.threads = opt.loader_threads;
    lc.skip_bad = opt.skip_bad;
    bool pk = stage.weights.triplet > 0 && cfg.P * cfg.K == cfg.batch;
    lc.sampler = pk ? data::LoaderConfig::PK : data::LoaderConfig::Shuffle;
    lc.P = cfg.P;
    lc.K = cfg.K;
    data::Loader loader(ds, train_ids, lc);
    data::Batch batch;
    auto next_batch = [&]() {
      if (!loader.next(batch)) FN_CHECK(loader.next(batch), "the loader gives no batch: too few training images for batch ", cfg.batch);
    };
    for (int64_t k = begin; k < st.step; ++k) next_batch();  // resume: replay the loader to where it was

    Progress prog(stage.name, stage.steps, "img", std::max<int64_t>(1, cfg.log_every));
    int64_t stage_images = 0;
    bool warned_dead = false;
    for (; st.step < end; ++st.step) {
      next_batch();
      BatchTensors bt = to_tensors(batch, ds, opt.device);
      double lr = learning_rate(cfg, stage, st.step - begin);
      sgd.set_lr(float(lr));
      Outputs out = model.forward(bt.images, PoolAt{bt.landmarks, bt.visible}, true, uint64_t(st.step));
      LossTerms terms = fashionnet_loss(out, bt, stage.weights, ctx);
      double total = terms.total.item();
      for (auto& [name, v] : terms.values)
        if (!std::isfinite(v)) {
          clear_tape();
          std::signal(SIGINT, prev_handler);
          FN_FAIL("loss term '", name, "' is ", v, " at step ", st.step, " (", stage.name,
                  "): training stopped; the last good checkpoint in ", run, " is kept");
        }
      backward(terms.total);
      const double grad_norm = cfg.clip_grad_norm > 0 ? clip_gradients(params, cfg.clip_grad_norm) : -1;
      sgd.step();
      sgd.zero_grad();
      images += bt.n;
      stage_images += bt.n;
      st.ema_loss = st.ema_loss < 0 ? total : 0.98 * st.ema_loss + 0.02 * total;
      sum.last_terms = terms.values;

      int64_t done = st.step + 1;
      if (done % cfg.log_every == 0 || done == end) {
        double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        nlohmann::json j = {{"step", done}, {"stage", stage.name}, {"lr", lr}, {"total", total},
                            {"ema", st.ema_loss}, {"images_per_s", el > 0 ? images / el : 0}};
        for (auto& [n, v] : terms.values) j["terms"][n] = v;
        if (stage.weights.triplet > 0) j["triplet_active"] = terms.triplet_active;
        if (grad_norm >= 0) j["grad_norm"] = grad_norm;  // before clipping
        // Dead ReLUs (zero for the whole batch): a global branch that dies leaves the embedding constant.
        const double dead_g = dead_fraction(out.fc6_global_act);
        j["dead"]["fc6_global"] = dead_g;
        if (out.fc6_local_act.defined()) j["dead"]["fc6_local"] = dead_fraction(out.fc6_local_act);
        if (dead_g >= 0.9 && !warned_dead && !opt.quiet) {
          std::printf("\nwarning: %.0f%% of fc6_global's units output 0 for every image of the batch at step %lld "
                      "(dead ReLUs); consider a lower --lr or a longer warm-up\n", 100 * dead_g, (long long)done);
          warned_dead = true;
        }
        metrics << j.dump() << "\n";
        metrics.flush();
      }
      if (!opt.quiet) prog.update(done - begin, double(stage_images), cat("loss ", total, "  ", terms_line(terms.values)));
      bool stage_done = done == end;
      bool stop = g_interrupted || (opt.stop_after > 0 && done >= opt.stop_after && done < total_steps);
      if (done % cfg.checkpoint_every == 0 || stage_done || stop) {
        TrainState saved = st;
        saved.step = done;
        bool best = st.best_loss < 0 || st.ema_loss < st.best_loss;
        if (best) saved.best_loss = st.best_loss = st.ema_loss;
        save_checkpoint(run + "/last.safetensors", model, &sgd, cfg, saved);
        if (best) fs::copy_file(run + "/last.safetensors", run + "/" + stage.name + "_best.safetensors",
                                fs::copy_options::overwrite_existing);
        if (stage_done)
          fs::copy_file(run + "/last.safetensors", run + "/" + stage.name + "_final.safetensors",
                        fs::copy_options::overwrite_existing);
      }
      if (stop) {
        ++st.step;
        if (!opt.quiet) std::printf("\nstopped: saved %s/last.safetensors at step %lld\n", run.c_str(), (long long)st.step);
        sum.interrupted = true;
        break;
      }
    }
    if (sum.interrupted) break;
    if (!opt.quiet) prog.finish(cat("loss ema ", st.ema_loss));
    write_loss_curve(run);
  }
  std::signal(SIGINT, prev_handler);
  sum.steps = st.step;
  sum.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sum.images_per_s = sum.seconds > 0 ? double(images) / sum.seconds : 0;
  if (!sum.interrupted) {
    std::string final_ckpt = run + "/final.safetensors";
    fs::copy_file(run + "/last.safetensors", final_ckpt, fs::copy_options::overwrite_existing);
    sum.final_checkpoint = final_ckpt;
  }
  write_loss_curve(run);
  return sum;
}

}  // namespace fn::fashionnet
