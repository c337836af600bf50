// The trainer and its checkpoints on the CPU, with the tiny preset on a small synthetic In-shop set:
// bitwise resume (mid-stage and across the stage boundary), refusal of corrupted/truncated/mismatched
// checkpoints with errors naming the file, a globally pooling network run at another input size (vgg16
// refused), a NaN loss stopping the run without touching the last good checkpoint, the two-stage schedule
// (stage 2 starts from stage 1's best file), the run folder's files, and the caller's SIGINT handler restored
// however train() ends; which images an ImageFolder evaluation scores (all of them, or exactly the images
// training held out); and model selection on validation (the validation lines, best.safetensors, In-shop's
// held-out items, resuming with the best measure, validate_every 0).
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <regex>
#include <set>

#include "core/build_commit.h"
#include "core/safetensors.h"
#include "data/image_io.h"
#include "data/split.h"
#include "data/synth.h"
#include "fashionnet/eval/evaluate.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/trainer.h"
#include "fashionnet/train/validation.h"
#include "tests/support/check.h"
#include "tests/support/synth_dataset.h"
#include "tests/support/temp_dir.h"

using namespace fn;
using namespace fn::fashionnet;
namespace fs = std::filesystem;

namespace {

fs::path scratch() { return fn::test::process_temp_dir("trainer"); }  // removed when the executable exits

// 16 items x 4 views of 64x64: 8 training items, 32 training photos (enough for P=2, K=4 batches).
const std::string& dataset() {
  static std::string root = test::synth_dataset(scratch() / "data", "inshop", 16, 4, 64, 9);
  return root;
}

// tiny with 6 + 6 steps, a checkpoint every 3, and dropout on so that its per-step masks are exercised.
TrainConfig small_run() {
  TrainConfig cfg = preset("tiny");
  cfg.net.dropout = 0.5f;
  cfg.weight_decay = 5e-4;
  cfg.stages[0].steps = 6;
  cfg.stages[1].steps = 6;
  cfg.checkpoint_every = 3;
  cfg.log_every = 1;
  return cfg;
}

TrainOptions options(const std::string& out) {
  TrainOptions o;
  o.data_root = dataset();
  o.out_dir = (scratch() / out).string();
  fs::remove_all(o.out_dir);
  o.quiet = true;
  return o;
}

std::string bytes_of(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Every tensor of two checkpoints (parameters and optimiser state), compared bit for bit.
void require_bitwise_equal(const std::string& a, const std::string& b) {
  SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  REQUIRE(fa.names == fb.names);
  for (auto& name : fa.names) {
    Tensor ta = fa.get(name), tb = fb.get(name);
    INFO("tensor " << name << " of " << a << " vs " << b);
    REQUIRE(ta.shape() == tb.shape());
    REQUIRE(std::memcmp(ta.raw(), tb.raw(), ta.nbytes()) == 0);
  }
  for (auto key : {"step", "stage", "ema_loss", "best_loss"}) CHECK(fa.metadata.at(key) == fb.metadata.at(key));
}

// Only the model's parameters (not "optim.*") of a checkpoint, bit for bit.
bool same_parameters(const std::string& a, const std::string& b) {
  SafetensorsFile fa = load_safetensors(a), fb = load_safetensors(b);
  for (auto& name : fa.names) {
    if (name.rfind("optim.", 0) == 0) continue;
    if (!fb.has(name)) return false;
    Tensor ta = fa.get(name), tb = fb.get(name);
    if (ta.shape() != tb.shape() || std::memcmp(ta.raw(), tb.raw(), ta.nbytes()) != 0) return false;
  }
  return true;
}

// The straight 12-step run, trained once and shared by the tests that compare against it.
const std::string& straight_run() {
  static std::string dir = [] {
    TrainOptions o = options("straight");
    TrainSummary s = train(small_run(), o);
    REQUIRE(s.steps == 12);
    REQUIRE_FALSE(s.interrupted);
    return o.out_dir;
  }();
  return dir;
}

// The SIGINT handler now installed (read without changing it).
using SignalHandler = void (*)(int);
SignalHandler current_sigint() {
  struct sigaction sa {};
  sigaction(SIGINT, nullptr, &sa);
  return sa.sa_handler;
}
extern "C" void caller_sigint(int) {}

// Copies a checkpoint's tensors and metadata to `out`, letting `edit` change the list first.
void rewrite(const std::string& in, const std::string& out, const std::function<void(NamedTensors&)>& edit) {
  SafetensorsFile f = load_safetensors(in);
  NamedTensors all;
  for (auto& n : f.names) all.emplace_back(n, f.get(n));
  edit(all);
  save_safetensors(out, all, f.metadata);
}

}  // namespace

TEST_CASE("Resuming from last.safetensors continues bitwise identically", "[trainer]") {
  const std::string straight = straight_run() + "/final.safetensors";
  // Stop mid stage 1, exactly at the stage boundary, and mid stage 2: each lands on a checkpoint.
  for (int64_t stop : {3, 6, 9}) {
    DYNAMIC_SECTION("stop after step " << stop << " of 12, then resume") {
      TrainOptions o = options("resume_" + std::to_string(stop));
      o.stop_after = stop;
      TrainSummary first = train(small_run(), o);
      CHECK(first.interrupted);
      CHECK(first.steps == stop);
      CHECK_FALSE(fs::exists(o.out_dir + "/final.safetensors"));
      CHECK(checkpoint_state(o.out_dir + "/last.safetensors").step == stop);

      TrainOptions r = o;
      r.stop_after = 0;
      r.resume = o.out_dir + "/last.safetensors";
      TrainConfig ignored = preset("tiny");  // resume takes the checkpoint's configuration, not this one
      TrainSummary rest = train(ignored, r);
      CHECK_FALSE(rest.interrupted);
      CHECK(rest.steps == 12);
      require_bitwise_equal(o.out_dir + "/final.safetensors", straight);
      require_bitwise_equal(o.out_dir + "/stage1_best.safetensors", straight_run() + "/stage1_best.safetensors");
    }
  }
}

TEST_CASE("Resuming into another folder at the stage boundary still starts stage 2 from the best", "[trainer]") {
  TrainOptions o = options("boundary_first");
  o.stop_after = 6;
  train(small_run(), o);
  TrainOptions r = options("boundary_elsewhere");
  r.resume = o.out_dir + "/last.safetensors";
  train(small_run(), r);
  require_bitwise_equal(r.out_dir + "/final.safetensors", straight_run() + "/final.safetensors");
}

TEST_CASE("The two-stage schedule: stage 2 starts from stage 1's best checkpoint", "[trainer]") {
  // Stage 2 with learning rate 0 leaves the weights where it started, so its final checkpoint shows them.
  TrainConfig cfg = small_run();
  cfg.stages[1].steps = 2;
  cfg.stages[1].lr = 0;
  TrainOptions o = options("two_stage");
  o.stop_after = 6;  // the end of stage 1
  train(cfg, o);
  REQUIRE(fs::exists(o.out_dir + "/stage1_best.safetensors"));
  REQUIRE(fs::exists(o.out_dir + "/stage1_final.safetensors"));

  // Plant a different "best" (another initialisation) so that starting from it is told apart from
  // carrying on with stage 1's last weights.
  const std::string best = o.out_dir + "/stage1_best.safetensors";
  TrainConfig planted_cfg = checkpoint_config(best);
  FashionNet other(planted_cfg.net, 12345);
  save_checkpoint(best, other, nullptr, planted_cfg, checkpoint_state(best));
  const std::string planted = (scratch() / "planted.safetensors").string();
  fs::copy_file(best, planted, fs::copy_options::overwrite_existing);
  REQUIRE_FALSE(same_parameters(planted, o.out_dir + "/stage1_final.safetensors"));

  TrainOptions r = o;
  r.stop_after = 0;
  r.resume = o.out_dir + "/last.safetensors";
  train(cfg, r);
  CHECK(same_parameters(o.out_dir + "/stage2_final.safetensors", planted));
  CHECK(same_parameters(o.out_dir + "/final.safetensors", planted));
}

TEST_CASE("In one go, stage 2 starts from stage1_best.safetensors", "[trainer]") {
  TrainConfig cfg = small_run();
  cfg.stages[1].steps = 2;
  cfg.stages[1].lr = 0;  // stage 2's weights stay where it started
  TrainOptions o = options("two_stage_straight");
  train(cfg, o);
  CHECK(same_parameters(o.out_dir + "/stage2_final.safetensors", o.out_dir + "/stage1_best.safetensors"));
}

TEST_CASE("A run folder holds config.json, metrics.jsonl, loss.svg and the checkpoints", "[trainer]") {
  const std::string dir = straight_run();
  for (auto f : {"config.json", "metrics.jsonl", "loss.svg", "last.safetensors", "final.safetensors",
                 "stage1_best.safetensors", "stage1_final.safetensors", "stage2_best.safetensors",
                 "stage2_final.safetensors"})
    CHECK(fs::exists(dir + "/" + f));

  nlohmann::json cfg = nlohmann::json::parse(bytes_of(dir + "/config.json"));
  TrainConfig back = cfg.get<TrainConfig>();
  CHECK(back.preset == "tiny");
  REQUIRE(back.stages.size() == 2);
  CHECK(back.stages[0].steps == 6);
  CHECK(back.net.categories > 1);

  std::ifstream m(dir + "/metrics.jsonl");
  std::string line;
  int64_t expect = 1;
  while (std::getline(m, line)) {
    auto j = nlohmann::json::parse(line);
    CHECK(j.at("step").get<int64_t>() == expect);
    CHECK(j.at("stage").get<std::string>() == (expect <= 6 ? "stage1" : "stage2"));
    CHECK(std::isfinite(j.at("total").get<double>()));
    CHECK(j.at("terms").contains("cat"));
    // tiny clips at norm 10, so the norm before clipping is logged; the dead-unit fractions are in [0, 1]
    CHECK(j.at("grad_norm").get<double>() > 0);
    const double dead = j.at("dead").at("fc6_global").get<double>();
    CHECK((dead >= 0 && dead <= 1));
    CHECK(j.at("dead").contains("fc6_local"));
    ++expect;
  }
  CHECK(expect == 13);  // log_every 1: one line per step
  CHECK(bytes_of(dir + "/loss.svg").find("<svg") != std::string::npos);
  CHECK(checkpoint_state(dir + "/final.safetensors").step == 12);
  CHECK(checkpoint_state(dir + "/final.safetensors").category_names.size() == size_t(back.net.categories));
}

TEST_CASE("Corrupted, truncated and mismatched checkpoints are refused, naming the file", "[trainer][checkpoint]") {
  const std::string good = straight_run() + "/final.safetensors";
  TrainConfig cfg = checkpoint_config(good);
  FashionNet model(cfg.net, 1);
  const std::string bad = (scratch() / "bad.safetensors").string();
  auto refused = [&](const std::string& what) {
    INFO(what);
    CHECK_THROWS_WITH(load_checkpoint(bad, model, nullptr), Catch::Contains(bad));
    CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU), Catch::Contains(bad));
  };

  SECTION("garbage bytes") {
    std::ofstream(bad, std::ios::binary) << std::string(4000, '\x7f') << "not a safetensors file";
    refused("garbage");
  }
  SECTION("truncated") {
    fs::copy_file(good, bad, fs::copy_options::overwrite_existing);
    fs::resize_file(bad, fs::file_size(bad) / 2);
    refused("truncated to half");
    fs::resize_file(bad, 5);
    refused("truncated inside the length field");
  }
  SECTION("a missing tensor") {
    rewrite(good, bad, [](NamedTensors& all) {
      all.erase(std::remove_if(all.begin(), all.end(), [](auto& p) { return p.first == "category.weight"; }), all.end());
    });
    CHECK_THROWS_WITH(load_checkpoint(bad, model, nullptr),
                      Catch::Contains(bad) && Catch::Contains("category.weight"));
    CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU), Catch::Contains(bad));
  }
  SECTION("a tensor of the wrong shape") {
    rewrite(good, bad, [](NamedTensors& all) {
      for (auto& [n, t] : all)
        if (n == "fc7_fusion.bias") t = Tensor::zeros({t.numel() + 1});
    });
    CHECK_THROWS_WITH(load_checkpoint(bad, model, nullptr), Catch::Contains(bad) && Catch::Contains("fc7_fusion.bias"));
    CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU), Catch::Contains(bad));
  }
  SECTION("a checkpoint of another configuration") {
    NetConfig other = cfg.net;
    other.width = 1.0 / 8;
    other.fc7_fusion = 40;
    FashionNet wrong(other, 1);
    CHECK_THROWS_WITH(load_checkpoint(good, wrong, nullptr), Catch::Contains(good) && Catch::Contains("shape"));
    NetConfig no_local = cfg.net;
    no_local.local_branch = false;
    FashionNet global_only(no_local, 1);
    CHECK_THROWS_WITH(load_checkpoint(good, global_only, nullptr), Catch::Contains(good));
  }
  SECTION("plain weights without the training metadata") {
    save_safetensors(bad, model.named_parameters());
    CHECK_NOTHROW(load_checkpoint(bad, model, nullptr));  // the weights themselves are fine
    CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU), Catch::Contains(bad) && Catch::Contains("config"));
    CHECK_THROWS_WITH(checkpoint_state(bad), Catch::Contains(bad));
  }
  SECTION("malformed configuration metadata") {
    SafetensorsFile f = load_safetensors(good);
    auto md = f.metadata;
    md["config"] = "{\"net\": {\"width\": \"wide\"}}";
    save_safetensors(bad, model.named_parameters(), md);
    CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU), Catch::Contains(bad) && !Catch::Contains(".cpp:"));
  }
  SECTION("configuration values out of range are named before any network is built") {
    SafetensorsFile f = load_safetensors(good);
    auto md = f.metadata;
    nlohmann::json j = nlohmann::json::parse(md["config"]);
    j["net"]["fc6_global"] = -1;  // would be a negative dimension deep inside a layer
    j["stages"][0]["lr"] = -0.5;
    md["config"] = j.dump();
    save_safetensors(bad, model.named_parameters(), md);
    CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU),
                      Catch::Contains("checkpoint " + bad + ": invalid configuration: net.fc6_global -1: from 1 to 65536") &&
                          Catch::Contains("stages[0].lr -0.5"));
  }
  SECTION("integer fields that json would truncate or wrap") {
    SafetensorsFile f = load_safetensors(good);
    auto md = f.metadata;
    for (const char* v : {"16.5", "4294967297"}) {
      nlohmann::json j = nlohmann::json::parse(md["config"]);
      j["batch"] = nlohmann::json::parse(v);
      md["config"] = j.dump();
      save_safetensors(bad, model.named_parameters(), md);
      CHECK_THROWS_WITH(model_from_checkpoint(bad, Device::CPU),
                        Catch::Contains("checkpoint " + bad) && Catch::Contains(std::string("'batch' is ") + v));
    }
  }
  SECTION("a training state with a negative stage") {
    SafetensorsFile f = load_safetensors(good);
    auto md = f.metadata;
    md["stage"] = "-1";
    save_safetensors(bad, model.named_parameters(), md);
    // Messages to the user: the file and the field, no source line.
    CHECK_THROWS_WITH(checkpoint_state(bad),
                      Catch::Contains(bad) && Catch::Contains("stage -1") && !Catch::Contains(".cpp:"));
    md["stage"] = "0";
    md["step"] = "many";
    save_safetensors(bad, model.named_parameters(), md);
    CHECK_THROWS_WITH(checkpoint_state(bad), Catch::Contains(bad) && Catch::Contains("malformed training state") &&
                                                 !Catch::Contains(".cpp:"));
  }
  SECTION("a missing file, and resuming from a bad file") {
    const std::string none = (scratch() / "no_such.safetensors").string();
    CHECK_THROWS_WITH(model_from_checkpoint(none, Device::CPU), Catch::Contains(none));
    std::ofstream(bad, std::ios::binary) << "garbage";
    TrainOptions o = options("resume_bad");
    o.resume = bad;
    CHECK_THROWS_WITH(train(small_run(), o), Catch::Contains(bad));
  }
}

TEST_CASE("train with init: a file made for another backbone is refused, naming both, and one made for this one starts the run",
          "[trainer][checkpoint]") {
  const std::string vgg = straight_run() + "/final.safetensors";
  CHECK(weights_backbone(vgg) == "vgg16");
  TrainConfig cfg = preset("resnet-tiny");
  cfg.stages[0].steps = cfg.stages[1].steps = 1;
  TrainOptions o = options("init_other_backbone");
  o.init = vgg;
  CHECK_THROWS_WITH(train(cfg, o), Catch::Contains(vgg) &&
                                       Catch::Contains("weights are for the vgg16 backbone, but this run builds resnet50") &&
                                       Catch::Contains("tiny") && Catch::Contains("an init file made for resnet50"));
  CHECK_FALSE(fs::exists(o.out_dir + "/last.safetensors"));

  // The same backbone: the run starts from the file's weights (a training checkpoint: its optimiser state is
  // left behind), so one step later fc7_fusion is near them; a run without --init draws its own.
  TrainConfig same = small_run();
  same.stages[0].steps = same.stages[1].steps = 1;
  same.seed += 100;  // not the straight run's draw
  TrainOptions with = options("init_same_backbone"), without = options("init_none");
  with.init = vgg;
  train(same, with);
  train(same, without);
  const std::vector<float> file = load_safetensors(vgg).get("fc7_fusion.weight").to_vector();
  auto distance = [&](const std::string& run) {
    const std::vector<float> w = load_safetensors(run + "/final.safetensors").get("fc7_fusion.weight").to_vector();
    double d = 0, norm = 0;
    for (size_t i = 0; i < w.size(); ++i) d += std::fabs(double(w[i]) - file[i]), norm += std::fabs(double(file[i]));
    return d / norm;
  };
  CHECK(distance(with.out_dir) < 0.1);
  CHECK(distance(without.out_dir) > 0.5);
}

TEST_CASE("A checkpoint names the commit its build came from: a short hash, -dirty with uncommitted changes",
          "[trainer][checkpoint]") {
  const std::string commit = build_commit();
  INFO("build_commit() = " << commit);
  const std::regex form("[0-9a-f]{7,40}(-dirty)?|unknown");
  CHECK(std::regex_match(commit, form));
  const TrainConfig cfg = preset("tiny");
  const std::string path = (scratch() / "commit.safetensors").string();
  save_checkpoint(path, FashionNet(cfg.net, cfg.seed), nullptr, cfg, TrainState{});
  CHECK(load_safetensors(path).metadata.at("commit") == commit);
}

TEST_CASE("A checkpoint of a globally pooling backbone runs at another input size; vgg16 refuses, naming the file",
          "[trainer][checkpoint]") {
  const TrainConfig rcfg = preset("resnet-tiny");  // 64x64, the resnet50 graph: layer4's map is pooled
  const std::string path = (scratch() / "resnet_tiny.safetensors").string();
  save_checkpoint(path, FashionNet(rcfg.net, rcfg.seed), nullptr, rcfg, TrainState{});
  TrainConfig got;
  auto trained = model_from_checkpoint(path, Device::CPU, &got);
  CHECK(got.net.input == 64);
  auto bigger = model_from_checkpoint(path, Device::CPU, &got, 96);
  CHECK(got.net.input == 96);
  // The same weights and statistics, name by name.
  const NamedTensors a = trained->named_state(), b = bigger->named_state();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].first == b[i].first);
    CHECK(a[i].second.to_vector() == b[i].second.to_vector());
  }
  // It takes 96x96 images, and no longer 64x64 ones.
  bigger->eval();
  Rng rng(5);
  const Outputs o = bigger->forward(Tensor::uniform({2, 3, 96, 96}, rng, -1, 1), PoolAt{});
  CHECK(o.category.size(0) == 2);
  CHECK(std::isfinite(o.category.to_vector()[0]));
  CHECK_THROWS_WITH(bigger->forward(Tensor::uniform({2, 3, 64, 64}, rng, -1, 1), PoolAt{}), Catch::Contains("96"));
  // A size out of range is the config's own error; the trained size is no change at all.
  CHECK_THROWS_WITH(model_from_checkpoint(path, Device::CPU, nullptr, 30), Catch::Contains("30"));
  CHECK_THROWS_WITH(model_from_checkpoint(path, Device::CPU, nullptr, -64), Catch::Contains("-64"));
  CHECK(model_from_checkpoint(path, Device::CPU, &got, 64) != nullptr);
  CHECK(got.net.input == 64);

  // VGG16's fc6 reads the conv5 map flattened: only its trained size fits.
  const TrainConfig vcfg = preset("tiny");
  const std::string vpath = (scratch() / "vgg_tiny.safetensors").string();
  save_checkpoint(vpath, FashionNet(vcfg.net, vcfg.seed), nullptr, vcfg, TrainState{});
  CHECK_THROWS_WITH(model_from_checkpoint(vpath, Device::CPU, nullptr, vcfg.net.input + 32),
                    Catch::Contains(vpath) && Catch::Contains("vgg16") && Catch::Contains("input size"));
  CHECK(model_from_checkpoint(vpath, Device::CPU, nullptr, vcfg.net.input) != nullptr);
}

TEST_CASE("A NaN loss stops training, naming step and term, and keeps the last good checkpoint", "[trainer]") {
  TrainOptions o = options("nan");
  o.stop_after = 3;
  train(small_run(), o);
  const std::string last = o.out_dir + "/last.safetensors";
  const std::string good_bytes = bytes_of(last);

  // The same state with a poisoned category bias: the category term is NaN at the very next step.
  const std::string poisoned = (scratch() / "poisoned.safetensors").string();
  rewrite(last, poisoned, [](NamedTensors& all) {
    for (auto& [n, t] : all)
      if (n == "category.bias") t = Tensor::full(t.shape(), NAN);
  });
  TrainOptions r = o;
  r.stop_after = 0;
  r.resume = poisoned;
  CHECK_THROWS_WITH(train(small_run(), r), Catch::Contains("'cat'") && Catch::Contains("at step 3") &&
                                               Catch::Contains("stage1") && Catch::Contains(o.out_dir) &&
                                               !Catch::Contains(".cpp:"));  // a message to the user, no source line
  CHECK(bytes_of(last) == good_bytes);
  CHECK_FALSE(fs::exists(o.out_dir + "/final.safetensors"));

  // The run goes on from the kept checkpoint.
  r.resume = last;
  CHECK(train(small_run(), r).steps == 12);
}

TEST_CASE("clip_gradients: the global L2 norm over every parameter with a gradient, scaled only above the limit",
          "[trainer]") {
  auto param = [](std::vector<float> g) {
    Tensor p = Tensor::zeros({int64_t(g.size())});
    p.set_requires_grad(true);
    p.set_grad(Tensor::from(g, {int64_t(g.size())}));
    return p;
  };
  Tensor no_grad = Tensor::zeros({3});
  no_grad.set_requires_grad(true);
  std::vector<Tensor> ps = {param({3, 0}), no_grad, param({0, 4, 0}), param({12})};  // norm sqrt(9+16+144) = 13
  REQUIRE(clip_gradients(ps, 0) == Approx(13.0).epsilon(1e-12));  // 0: measure only
  REQUIRE(ps[3].grad().to_vector() == std::vector<float>{12});
  REQUIRE(clip_gradients(ps, 20) == Approx(13.0).epsilon(1e-12));  // below the limit: unchanged
  REQUIRE(ps[0].grad().to_vector() == std::vector<float>{3, 0});
  REQUIRE(clip_gradients(ps, 6.5) == Approx(13.0).epsilon(1e-12));  // above: every gradient halved
  REQUIRE(ps[0].grad().to_vector() == std::vector<float>{1.5f, 0});
  REQUIRE(ps[2].grad().to_vector() == std::vector<float>{0, 2, 0});
  REQUIRE(ps[3].grad().to_vector() == std::vector<float>{6});
  REQUIRE(clip_gradients(ps, 0) == Approx(6.5).epsilon(1e-12));
  REQUIRE(clip_gradients({no_grad}, 1) == 0.0);  // nothing to clip
}

TEST_CASE("The caller's SIGINT handler is back after train() returns or throws", "[trainer]") {
  const SignalHandler before = std::signal(SIGINT, caller_sigint);
  SECTION("a run that ends, and one stopped early") {
    TrainOptions o = options("sigint_stop");
    o.stop_after = 2;
    CHECK(train(small_run(), o).interrupted);
    CHECK(current_sigint() == caller_sigint);
  }
  SECTION("a NaN loss stops the run with an exception") {
    TrainOptions o = options("sigint_nan");
    o.stop_after = 3;
    train(small_run(), o);
    const std::string poisoned = (scratch() / "sigint_poisoned.safetensors").string();
    rewrite(o.out_dir + "/last.safetensors", poisoned, [](NamedTensors& all) {
      for (auto& [n, t] : all)
        if (n == "category.bias") t = Tensor::full(t.shape(), NAN);
    });
    TrainOptions r = o;
    r.stop_after = 0;
    r.resume = poisoned;
    CHECK_THROWS_WITH(train(small_run(), r), Catch::Contains("'cat'"));
    CHECK(current_sigint() == caller_sigint);
  }
  SECTION("unreadable photos: the loader throws once the run has started") {
    const fs::path bad = scratch() / "data_unreadable";
    fs::remove_all(bad);
    fs::copy(dataset(), bad, fs::copy_options::recursive);
    int spoilt = 0;
    for (auto& e : fs::recursive_directory_iterator(bad))
      if (e.is_regular_file() && e.path().extension() == ".jpg") {
        std::ofstream(e.path(), std::ios::binary | std::ios::trunc) << "not a photo";
        ++spoilt;
      }
    REQUIRE(spoilt > 0);
    TrainOptions o = options("sigint_bad_data");
    o.data_root = bad.string();
    CHECK_THROWS_WITH(train(small_run(), o), Catch::Contains(bad.string()));
    CHECK(current_sigint() == caller_sigint);
  }
  std::signal(SIGINT, before);
}

// ---- A stage's frozen marks (StageConfig::freeze, bn_statistics, hold_statistics).
namespace {

bool bitwise_same(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// The weights a run starts from: the model its checkpoint's configuration builds with the run's seed.
std::unique_ptr<FashionNet> initial_model(const std::string& checkpoint) {
  TrainConfig cfg = checkpoint_config(checkpoint);
  return std::make_unique<FashionNet>(cfg.net, cfg.seed);
}

// small_run() whose stage 1 freezes the trunk and stage 2 trains everything.
TrainConfig frozen_trunk_config() {
  TrainConfig cfg = small_run();
  cfg.stages[0].freeze = {"trunk"};
  cfg.stages[1].steps = 3;
  return cfg;
}

const std::string& frozen_trunk_run() {
  static std::string dir = [] {
    TrainOptions o = options("frozen_trunk");
    REQUIRE(train(frozen_trunk_config(), o).steps == 9);
    return o.out_dir;
  }();
  return dir;
}

// Stage 1's trunk: bit for bit the initial one, its momentum zero; every other weight matrix has moved.
void require_stage1_froze_the_trunk(const std::string& run) {
  const std::string ckpt = run + "/stage1_final.safetensors";
  auto init = initial_model(ckpt);
  SafetensorsFile f = load_safetensors(ckpt);
  int trunk = 0, moved = 0;
  for (auto& [name, t0] : init->named_parameters()) {
    INFO(name);
    const Tensor t = f.get(name);
    if (starts_with(name, "trunk.")) {
      ++trunk;
      CHECK(bitwise_same(t, t0));
      const std::vector<float> m = f.get("optim." + name + ".momentum").to_vector();
      CHECK(std::all_of(m.begin(), m.end(), [](float v) { return v == 0.f; }));
    } else if (t0.shape().size() >= 2) {
      ++moved;
      CHECK_FALSE(bitwise_same(t, t0));
    }
  }
  CHECK(trunk == 20);  // tiny's VGG trunk: conv1_1 .. conv4_3, weight and bias
  CHECK(moved > 5);
}

// resnet-tiny (batch norm in every block), 2 + 2 steps, its first stage marked by `mark`: the run's folder.
std::string resnet_tiny_run(const char* name, const std::function<void(StageConfig&)>& mark) {
  TrainConfig cfg = preset("resnet-tiny");
  cfg.stages[0].steps = 2;
  cfg.stages[1].steps = 2;
  cfg.checkpoint_every = 0;
  mark(cfg.stages[0]);
  TrainOptions o = options(name);
  REQUIRE(train(cfg, o).steps == 4);
  return o.out_dir;
}

}  // namespace

TEST_CASE("A stage that freezes the trunk leaves it bitwise unchanged; the next stage trains it", "[trainer][freeze]") {
  const std::string run = frozen_trunk_run();
  require_stage1_froze_the_trunk(run);
  // Stage 2 unfreezes (its first-step check demanded the trunk's gradients): the trunk moves there.
  SafetensorsFile s1 = load_safetensors(run + "/stage1_final.safetensors"), s2 = load_safetensors(run + "/final.safetensors");
  CHECK_FALSE(bitwise_same(s1.get("trunk.conv1_1.weight"), s2.get("trunk.conv1_1.weight")));
  CHECK_FALSE(bitwise_same(s1.get("trunk.conv4_3.weight"), s2.get("trunk.conv4_3.weight")));
  nlohmann::json cfg = nlohmann::json::parse(bytes_of(run + "/config.json"));
  CHECK(cfg.at("stages").at(0).at("freeze") == nlohmann::json::array({"trunk"}));
}

TEST_CASE("Resuming inside a freezing stage freezes again (the marks come from the stage)", "[trainer][freeze]") {
  TrainOptions o = options("frozen_trunk_resume");
  o.stop_after = 3;
  CHECK(train(frozen_trunk_config(), o).interrupted);
  TrainOptions r = o;
  r.stop_after = 0;
  r.resume = o.out_dir + "/last.safetensors";
  CHECK(train(preset("tiny"), r).steps == 9);  // the checkpoint's configuration, freeze included
  require_stage1_froze_the_trunk(o.out_dir);
  require_bitwise_equal(o.out_dir + "/final.safetensors", frozen_trunk_run() + "/final.safetensors");
}

TEST_CASE("A freeze name that matches no parameter is a user error naming the stage", "[trainer][freeze]") {
  TrainConfig cfg = small_run();
  cfg.stages[1].freeze = {"trunk", "trnk"};
  TrainOptions o = options("freeze_misspelt");
  CHECK_THROWS_WITH(train(cfg, o), Catch::Contains("stage 'stage2'") && Catch::Contains("stages[1].freeze[1]") &&
                                       Catch::Contains("'trnk'") && Catch::Contains("trunk, ") &&
                                       !Catch::Contains("check '"));  // a user error, not an internal one
  CHECK_FALSE(fs::exists(o.out_dir + "/last.safetensors"));  // refused before any step
}

TEST_CASE("bn_statistics: frozen holds every running statistic while the weights move; train moves them",
          "[trainer][freeze]") {
  // Stage 1 holds the statistics, stage 2 trains them.
  const std::string run = resnet_tiny_run("bn_frozen", [](StageConfig& st) { st.bn_statistics = BnStatistics::Frozen; });
  const std::string stage1 = run + "/stage1_final.safetensors", stage2 = run + "/final.safetensors";
  auto init = initial_model(stage1);
  SafetensorsFile f1 = load_safetensors(stage1), f2 = load_safetensors(stage2);
  int stats = 0;
  for (auto& [name, t0] : init->named_buffers()) {
    INFO(name);
    ++stats;
    CHECK(bitwise_same(f1.get(name), t0));        // held in stage 1
    CHECK_FALSE(bitwise_same(f2.get(name), t0));  // moved in stage 2
  }
  CHECK(stats > 50);  // running_mean and running_var of every batch norm
  for (auto& [name, t0] : init->named_parameters())
    if (name == "trunk.conv1.weight" || name == "trunk.bn1.weight") CHECK_FALSE(bitwise_same(f1.get(name), t0));
  CHECK_FALSE(bitwise_same(f1.get("trunk.bn1.weight"), f2.get("trunk.bn1.weight")));
}

TEST_CASE("hold_statistics holds the batch norms under its names only; the others move", "[trainer][freeze]") {
  // Stage 1 holds conv5_global's statistics, stage 2 nothing.
  const std::string run = resnet_tiny_run("bn_hold_global", [](StageConfig& st) { st.hold_statistics = {"conv5_global"}; });
  const std::string stage1 = run + "/stage1_final.safetensors", stage2 = run + "/final.safetensors";
  auto init = initial_model(stage1);
  SafetensorsFile f1 = load_safetensors(stage1), f2 = load_safetensors(stage2);
  int held = 0, moved = 0;
  for (auto& [name, t0] : init->named_buffers()) {
    INFO(name);
    if (starts_with(name, "conv5_global.")) {
      ++held;
      CHECK(bitwise_same(f1.get(name), t0));
      CHECK_FALSE(bitwise_same(f2.get(name), t0));
    } else {
      ++moved;
      CHECK_FALSE(bitwise_same(f1.get(name), t0));
    }
  }
  CHECK(held > 4);
  CHECK(moved > held);  // the trunk's and conv5_pose's
  int bn_weights = 0;  // a held batch norm still learns its weight and bias
  for (auto& [name, t0] : init->named_parameters())
    if (starts_with(name, "conv5_global.") && name.find("bn1.weight") != std::string::npos) {
      ++bn_weights;
      CHECK_FALSE(bitwise_same(f1.get(name), t0));
    }
  CHECK(bn_weights > 0);
  nlohmann::json saved = nlohmann::json::parse(bytes_of(run + "/config.json"));
  CHECK(saved.at("stages").at(0).at("hold_statistics") == nlohmann::json::array({"conv5_global"}));
}

TEST_CASE("A hold_statistics name that covers no batch norm is a user error naming the stage", "[trainer][freeze]") {
  TrainConfig cfg = preset("resnet-tiny");
  cfg.stages[1].hold_statistics = {"conv5_global", "fc6_global"};  // fc6_global: parameters, no batch norm
  TrainOptions o = options("hold_no_bn");
  CHECK_THROWS_WITH(train(cfg, o), Catch::Contains("stage 'stage2'") && Catch::Contains("stages[1].hold_statistics[1]") &&
                                       Catch::Contains("'fc6_global' names no batch norm of this resnet50 model") &&
                                       !Catch::Contains("check '"));
  CHECK_FALSE(fs::exists(o.out_dir + "/last.safetensors"));
  // VGG has no batch norm at all: any name is refused.
  TrainConfig vgg = small_run();
  vgg.stages[0].hold_statistics = {"trunk"};
  CHECK_THROWS_WITH(train(vgg, options("hold_vgg")), Catch::Contains("'trunk' names no batch norm of this vgg16 model"));
}

TEST_CASE("lr_mult steps the parameters under its names at k times the rate, the others as before", "[trainer][freeze]") {
  // One step from the same weights on the same batch: the gradients are the same with and without the
  // multiplier, so fc7_fusion moves twice as far and every other parameter exactly as far.
  const auto one_step = [](const char* name, std::map<std::string, double> mult) {
    TrainConfig cfg = small_run();
    cfg.stages[0].steps = 1;
    cfg.stages[1].steps = 0;
    cfg.stages[0].lr_mult = std::move(mult);
    TrainOptions o = options(name);
    REQUIRE(train(cfg, o).steps == 1);
    return o.out_dir + "/stage1_final.safetensors";
  };
  const std::string plain = one_step("lr_mult_plain", {}), doubled = one_step("lr_mult_fusion", {{"fc7_fusion", 2.0}});
  auto init = initial_model(plain);
  SafetensorsFile p = load_safetensors(plain), d = load_safetensors(doubled);
  int multiplied = 0, same = 0;
  for (auto& [name, t0] : init->named_parameters()) {
    INFO(name);
    if (starts_with(name, "fc7_fusion.")) {
      ++multiplied;
      const std::vector<float> a = t0.to_vector(), b = p.get(name).to_vector(), c = d.get(name).to_vector();
      double moved = 0;
      for (size_t i = 0; i < a.size(); ++i) {
        CHECK(double(c[i]) - a[i] == Approx(2.0 * (double(b[i]) - a[i])).margin(1e-6));
        moved += std::abs(double(b[i]) - a[i]);
      }
      CHECK(moved > 0);
    } else {
      same += bitwise_same(p.get(name), d.get(name));
      CHECK(bitwise_same(p.get(name), d.get(name)));
    }
  }
  CHECK(multiplied == 2);  // weight and bias
  CHECK(same > 20);
  nlohmann::json saved = nlohmann::json::parse(bytes_of(fs::path(doubled).parent_path().string() + "/config.json"));
  CHECK(saved.at("stages").at(0).at("lr_mult") == nlohmann::json::parse(R"({"fc7_fusion": 2.0})"));
}

TEST_CASE("An lr_mult name that covers no parameter, or a parameter that two names cover, is a user error",
          "[trainer][freeze]") {
  TrainConfig cfg = small_run();
  cfg.stages[1].lr_mult = {{"fc6_global", 2.0}, {"fc9", 2.0}};
  CHECK_THROWS_WITH(train(cfg, options("lr_mult_none")),
                    Catch::Contains("stage 'stage2' (stages[1].lr_mult[1]): 'fc9' names no parameter of this vgg16 model") &&
                        !Catch::Contains("check '"));
  cfg.stages[1].lr_mult = {{"trunk", 2.0}, {"trunk.conv1_1", 3.0}};
  TrainOptions o = options("lr_mult_twice");
  CHECK_THROWS_WITH(train(cfg, o), Catch::Contains("stage 'stage2' (stages[1].lr_mult): 'trunk.conv1_1.") &&
                                       Catch::Contains("is covered by both 'trunk' and 'trunk.conv1_1'"));
  CHECK_FALSE(fs::exists(o.out_dir + "/last.safetensors"));
}

TEST_CASE("eval warns when the checkpoint's category list is not the dataset's, saying how", "[trainer][eval]") {
  const std::vector<std::string> a = {"Denim", "Jackets", "Tees"};
  CHECK(category_list_warning(a, a, "c.safetensors", "data").empty());
  CHECK(category_list_warning({}, a, "c.safetensors", "data").empty());  // an old checkpoint: no list to compare
  const std::string renamed = category_list_warning(a, {"Denim", "Shorts", "Tees"}, "c.safetensors", "data");
  CHECK_THAT(renamed, Catch::Contains("c.safetensors was trained on 3 categories, data has 3") &&
                          Catch::Contains("category 1 is 'Jackets' there and 'Shorts' here") &&
                          !Catch::Contains("scores only"));
  const std::string more = category_list_warning({"Denim"}, a, "c.safetensors", "data");
  CHECK_THAT(more, Catch::Contains("trained on 1 categories, data has 3 (the first 1 agree)") &&
                       Catch::Contains("scores only the images of the network's 1"));
}

TEST_CASE("imagefolder eval scores every image by default, and with holdout exactly those training left out",
          "[trainer][eval]") {
  // 3 classes x 20 small photos, each a different flat colour.
  const fs::path root = scratch() / "imagefolder";
  fs::remove_all(root);
  int n = 0;
  for (const char* cls : {"coat", "dress", "skirt"}) {
    fs::create_directories(root / cls);
    for (int i = 0; i < 20; ++i, ++n) {
      data::Image img;
      img.w = img.h = 16;
      img.rgb.assign(16 * 16 * 3, uint8_t(n * 4));
      data::write_image((root / cls / ("photo_" + std::to_string(i) + ".png")).string(), img);
    }
  }
  const data::Dataset ds = data::load_dataset(root.string(), "imagefolder", false);
  REQUIRE(ds.samples.size() == 60);
  FashionNet model(preset("tiny").net);
  EvalOptions eo;
  eo.inference.progress = false;
  eo.inference.threads = 0;
  auto scored = [](const EvalResult& r) {
    std::vector<int> v = r.query.sample_index;
    std::sort(v.begin(), v.end());
    return v;
  };

  // Default: a folder meant for testing is scored whole.
  const EvalResult all = evaluate(model, ds, Device::CPU, eo);
  std::vector<int> every(60);
  for (int i = 0; i < 60; ++i) every[size_t(i)] = i;
  CHECK(scored(all) == every);
  CHECK(all.scored.mode == "all");
  CHECK(all.scored.images == 60);
  CHECK(all.scored.description == "scored all 60 images of " + root.string());
  CHECK(format_eval(all).find("scored all 60 images of") == 0);
  const nlohmann::json ja = to_json(all);
  CHECK(ja["scored"]["mode"] == "all");
  CHECK(ja["scored"]["images"] == 60);
  CHECK_FALSE(ja["scored"].contains("holdout"));

  // holdout F: exactly the hash hold-out, the complement of what the trainer trains on (data::train_indices).
  eo.holdout = 0.25;
  const EvalResult held = evaluate(model, ds, Device::CPU, eo);
  const std::vector<int> expect = data::holdout_indices(ds, 0.25);
  REQUIRE(!expect.empty());
  REQUIRE(expect.size() < 60);
  CHECK(scored(held) == expect);
  std::vector<int> trained = data::train_indices(ds, 0.25), both = expect;
  both.insert(both.end(), trained.begin(), trained.end());
  std::sort(both.begin(), both.end());
  CHECK(both == every);  // disjoint and together everything
  CHECK(held.scored.mode == "holdout");
  CHECK(held.scored.images == int64_t(expect.size()));
  CHECK_THAT(held.scored.description,
             Catch::Contains("the images `train --holdout 0.25` leaves out): " + std::to_string(expect.size()) +
                             " of 60 images"));
  const nlohmann::json jh = to_json(held);
  CHECK(jh["scored"]["mode"] == "holdout");
  CHECK(jh["scored"]["images"] == int64_t(expect.size()));
  CHECK(jh["scored"]["holdout"] == 0.25);

  // A fraction so small that no image falls in the hold-out is refused, naming the folder.
  eo.holdout = 1e-9;
  try {
    evaluate(model, ds, Device::CPU, eo);
    FAIL("an empty hold-out must be refused");
  } catch (const Error& e) {
    CHECK_THAT(e.what(), Catch::Contains(root.string()) && Catch::Contains("holds none of its 60 images"));
  }
}

// ---- Model selection on validation (TrainConfig::validate_every, fashionnet/train/validation.h).
namespace {

// Every line of a run's metrics.jsonl that holds a validation.
std::vector<nlohmann::json> validation_lines(const std::string& run) {
  std::vector<nlohmann::json> v;
  std::ifstream m(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(m, line)) {
    auto j = nlohmann::json::parse(line);
    if (j.contains("validation")) v.push_back(j);
  }
  return v;
}

// The first line (in step order) with the best value among `lines` whose stage is `stage` ("": any); equal
// values are told apart by the higher tie-break.
const nlohmann::json& best_line(const std::vector<nlohmann::json>& lines, const std::string& stage) {
  const nlohmann::json* best = nullptr;
  const auto tie = [](const nlohmann::json& v) {
    return v.contains("tie_break") ? v["tie_break"]["value"].get<double>() : -1.0;
  };
  for (const auto& j : lines) {
    if (!stage.empty() && j["stage"] != stage) continue;
    const auto& v = j["validation"];
    const double x = v["value"].get<double>();
    if (!best) {
      best = &j;
      continue;
    }
    const auto& b = (*best)["validation"];
    const double y = b["value"].get<double>();
    if (x != y ? (v["higher_is_better"].get<bool>() ? x > y : x < y) : tie(v) > tie(b)) best = &j;
  }
  REQUIRE(best);
  return *best;
}

// 3 classes x 20 flat-colour photos (each its own item), dark to light by class: learnable in a few steps.
const std::string& imagefolder_dataset() {
  static std::string root = [] {
    const fs::path r = scratch() / "imagefolder_val";
    fs::remove_all(r);
    int n = 0;
    for (const char* cls : {"coat", "dress", "skirt"}) {
      fs::create_directories(r / cls);
      for (int i = 0; i < 20; ++i, ++n) {
        data::Image img;
        img.w = img.h = 16;
        img.rgb.assign(16 * 16 * 3, uint8_t(n * 4));
        data::write_image((r / cls / (std::string(cls) + "_" + std::to_string(i) + ".png")).string(), img);
      }
    }
    return r.string();
  }();
  return root;
}

// The In-shop hold-out fraction of these tests: the smallest of a few that holds out at least one of
// dataset()'s 8 training items and leaves at least 4 to train on (the hash decides which; the test of the
// split checks the rest).
double inshop_holdout() {
  static const double f = [] {
    const data::Dataset ds = data::load_dataset(dataset(), "inshop");
    for (double f : {0.2, 0.3, 0.4, 0.5, 0.6, 0.7}) {
      std::set<int> train_items;
      for (int i : data::train_indices_without_validation(ds, f)) train_items.insert(ds.samples[size_t(i)].item);
      if (!data::validation_indices(ds, f).empty() && train_items.size() >= 4) return f;
    }
    FAIL("no hold-out fraction fits dataset()");
    return 0.0;
  }();
  return f;
}

TrainConfig validated_run(int64_t every) {
  TrainConfig cfg = small_run();
  cfg.validate_every = every;
  return cfg;
}

const std::string& validated_inshop_run() {
  static std::string dir = [] {
    TrainOptions o = options("validated_inshop");
    o.holdout = inshop_holdout();
    REQUIRE(train(validated_run(3), o).steps == 12);
    return o.out_dir;
  }();
  return dir;
}

}  // namespace

TEST_CASE("In-shop validation holds out whole training items, disjoint from training, query and gallery",
          "[trainer][validation]") {
  const data::Dataset ds = data::load_dataset(dataset(), "inshop");
  const std::vector<int> val = data::validation_indices(ds, inshop_holdout());
  const std::vector<int> train_ids = data::train_indices_without_validation(ds, inshop_holdout());
  std::set<int> val_items, train_items;
  for (int i : val) {
    CHECK(ds.samples[size_t(i)].split == data::Split::Train);  // never a query or a gallery image
    val_items.insert(ds.samples[size_t(i)].item);
  }
  for (int i : train_ids) train_items.insert(ds.samples[size_t(i)].item);
  REQUIRE(!val_items.empty());
  REQUIRE(train_items.size() >= 2);  // P = 2 items per triplet batch
  for (int item : val_items) CHECK(train_items.count(item) == 0);
  // Whole items: every training image of a held-out item is held out, and together they are the training split.
  std::vector<int> both = val;
  both.insert(both.end(), train_ids.begin(), train_ids.end());
  std::sort(both.begin(), both.end());
  CHECK(both == ds.indices(data::Split::Train));
  // Without validation the trainer's split is today's: every training image.
  CHECK(data::train_indices(ds, inshop_holdout()) == ds.indices(data::Split::Train));

  // Queries: the first image of each held-out item; its other images are the gallery.
  const ValidationSet set = validation_set(ds, inshop_holdout());
  CHECK(set.measure == "retrieval_top20");
  CHECK(set.higher_is_better);
  REQUIRE(set.usable());
  CHECK(set.query.size() == val_items.size());  // 4 views each: every held-out item has a query
  std::vector<int> scored = set.query;
  scored.insert(scored.end(), set.gallery.begin(), set.gallery.end());
  std::sort(scored.begin(), scored.end());
  CHECK(scored == val);  // disjoint, and exactly the held-out images
  for (int q : set.query) {
    const int item = ds.samples[size_t(q)].item;
    CHECK(std::find_if(val.begin(), val.end(), [&](int i) { return ds.samples[size_t(i)].item == item; }) ==
          std::find(val.begin(), val.end(), q));  // the item's first image in file order
  }
}

TEST_CASE("Validation lines at every validate_every steps and each stage's end; best.safetensors holds the best",
          "[trainer][validation]") {
  TrainOptions o = options("validated_imagefolder");
  o.data_root = imagefolder_dataset();
  o.benchmark = "imagefolder";
  o.holdout = 0.25;
  // lr 0.1: the hold-out's top-1 rises and falls within each stage, so the best is neither a stage's first
  // validation nor its last.
  TrainConfig cfg = validated_run(2);
  cfg.stages[0].steps = 11;
  cfg.stages[1].steps = 12;
  cfg.stages[0].lr = cfg.stages[1].lr = 0.1;
  const TrainSummary s = train(cfg, o);
  REQUIRE(s.steps == 23);
  CHECK(s.best_checkpoint == o.out_dir + "/best.safetensors");
  // No training image has landmarks: the local branch pools at no slot at test time too, as it did in training.
  CHECK(nlohmann::json::parse(bytes_of(o.out_dir + "/config.json"))["net"]["local_at"] == "absent");
  CHECK(checkpoint_config(s.best_checkpoint).net.local_at == LocalAt::Absent);
  CHECK(preset("tiny").net.local_at == LocalAt::Landmarks);  // the preset's rule; the run chose no slot

  const data::Dataset ds = data::load_dataset(o.data_root, "imagefolder", false);
  const ValidationSet set = validation_set(ds, 0.25);
  REQUIRE(set.usable());
  {  // validation never peeks at the hold-out that `eval --holdout` scores, and never trains on itself
    const std::vector<int> held = data::holdout_indices(ds, 0.25), val = data::validation_indices(ds, 0.25),
                           trained = data::train_indices_without_validation(ds, 0.25);
    REQUIRE(!val.empty());
    for (int i : val) {
      CHECK(std::find(held.begin(), held.end(), i) == held.end());
      CHECK(std::find(trained.begin(), trained.end(), i) == trained.end());
    }
    CHECK(held.size() + val.size() + trained.size() == ds.samples.size());
  }
  const std::vector<nlohmann::json> lines = validation_lines(o.out_dir);
  std::vector<int64_t> steps;
  for (const auto& j : lines) {
    steps.push_back(j["step"].get<int64_t>());
    CHECK(j["stage"] == (steps.back() <= 11 ? "stage1" : "stage2"));
    CHECK(j["validation"]["measure"] == "category_top1");
    CHECK_FALSE(j["validation"].contains("tie_break"));  // top-1 is already the finest
    CHECK(j["validation"]["images"] == set.images());
    const double v = j["validation"]["value"].get<double>();
    CHECK((v >= 0 && v <= 1));
  }
  CHECK(steps == std::vector<int64_t>{2, 4, 6, 8, 10, 11, 12, 14, 16, 18, 20, 22, 23});  // and each stage's end

  // best.safetensors: the run's first best line; <stage>_best: each stage's. Their metadata say so.
  const nlohmann::json& run_best = best_line(lines, "");
  const TrainState best = checkpoint_state(o.out_dir + "/best.safetensors");
  CHECK(best.step == run_best["step"].get<int64_t>());
  CHECK(best.run_best_validation == run_best["validation"]["value"].get<double>());
  CHECK(run_best["validation"]["run_best"] == true);
  for (const char* stage : {"stage1", "stage2"}) {
    INFO(stage);
    const nlohmann::json& b = best_line(lines, stage);
    const TrainState st = checkpoint_state(o.out_dir + "/" + stage + "_best.safetensors");
    CHECK(st.step == b["step"].get<int64_t>());
    CHECK(st.best_validation == b["validation"]["value"].get<double>());
    CHECK(b["validation"]["stage_best"] == true);
  }
  // The weights in best.safetensors score the logged value again; the final weights are another model.
  auto model = model_from_checkpoint(o.out_dir + "/best.safetensors", Device::CPU);
  CHECK(validate(*model, ds, set, Device::CPU, 0, false).value == Approx(best.run_best_validation).margin(1e-12));

  // Stage 2 starts from stage 1's best by validation: with its lr at 0 it stays on those weights.
  TrainOptions o0 = options("validated_imagefolder_lr0");
  o0.data_root = o.data_root;
  o0.benchmark = o.benchmark;
  o0.holdout = o.holdout;
  cfg.stages[1].lr = 0;
  cfg.stages[1].steps = 2;
  train(cfg, o0);
  const std::string best1 = o0.out_dir + "/stage1_best.safetensors";
  CHECK(checkpoint_state(best1).step == checkpoint_state(o.out_dir + "/stage1_best.safetensors").step);
  CHECK(same_parameters(o0.out_dir + "/stage2_final.safetensors", best1));
  if (checkpoint_state(best1).step != 11) CHECK_FALSE(same_parameters(best1, o0.out_dir + "/stage1_final.safetensors"));

  // loss.svg has a panel for the validation measure below the loss.
  const std::string svg = bytes_of(o.out_dir + "/loss.svg");
  CHECK(svg.find("Validation: category top-1") != std::string::npos);
  CHECK(svg.find("training loss") != std::string::npos);
}

TEST_CASE("A validated In-shop run resumes bitwise, the best measure so far included", "[trainer][validation]") {
  const std::string straight = validated_inshop_run();
  const std::vector<nlohmann::json> lines = validation_lines(straight);
  REQUIRE(lines.size() == 4);  // steps 3, 6, 9, 12
  CHECK(lines[0]["validation"]["measure"] == "retrieval_top20");
  for (const auto& j : lines) {  // mAP@20 breaks ties: never above top-20
    REQUIRE(j["validation"].contains("tie_break"));
    CHECK(j["validation"]["tie_break"]["measure"] == "retrieval_map20");
    CHECK(j["validation"]["tie_break"]["value"].get<double>() <= j["validation"]["value"].get<double>());
  }
  CHECK(checkpoint_state(straight + "/best.safetensors").step == best_line(lines, "")["step"].get<int64_t>());
  // Stop between two validations in each stage: last.safetensors must carry the bests so far, or the resumed
  // run would take a later, equal or worse measure for a new best.
  for (int64_t stop : {4, 10}) {
    DYNAMIC_SECTION("stop after step " << stop) {
      TrainOptions o = options("validated_resume_" + std::to_string(stop));
      o.holdout = inshop_holdout();
      o.stop_after = stop;
      train(validated_run(3), o);
      const TrainState at_stop = checkpoint_state(o.out_dir + "/last.safetensors");
      CHECK(at_stop.run_best_validation >= 0);
      CHECK(at_stop.best_validation >= 0);
      TrainOptions r = o;
      r.stop_after = 0;
      r.resume = o.out_dir + "/last.safetensors";
      CHECK(train(preset("tiny"), r).steps == 12);
      require_bitwise_equal(o.out_dir + "/final.safetensors", straight + "/final.safetensors");
      for (auto f : {"/best.safetensors", "/stage1_best.safetensors", "/stage2_best.safetensors"}) {
        INFO(f);
        require_bitwise_equal(o.out_dir + f, straight + f);
        const SafetensorsFile a = load_safetensors(o.out_dir + f), b = load_safetensors(straight + f);
        CHECK(a.metadata.at("best_validation") == b.metadata.at("best_validation"));
        CHECK(a.metadata.at("run_best_validation") == b.metadata.at("run_best_validation"));
        CHECK(a.metadata.at("run_best_validation_tie_break") == b.metadata.at("run_best_validation_tie_break"));
      }
    }
  }
}

TEST_CASE("A saturated measure: equal retrieval top-20s are told apart by mAP@20", "[trainer][validation]") {
  // Held-out In-shop items with 20 gallery images or fewer: top-20 is 100% at every validation, so only the
  // tie-break can pick a best.
  const std::string root = test::synth_dataset(scratch() / "inshop_saturated", "inshop", 40, 3, 64, 5);
  TrainOptions o = options("validated_saturated");
  o.data_root = root;
  o.holdout = 0.25;
  const ValidationSet set = validation_set(data::load_dataset(root, "inshop"), o.holdout);
  REQUIRE(set.query.size() >= 4);
  REQUIRE(set.gallery.size() <= 20);
  CHECK(set.tie_break == "retrieval_map20");
  train(validated_run(1), o);
  const std::vector<nlohmann::json> lines = validation_lines(o.out_dir);
  REQUIRE(lines.size() == 12);
  std::set<double> tops, maps;
  for (const auto& j : lines) {
    tops.insert(j["validation"]["value"].get<double>());
    maps.insert(j["validation"]["tie_break"]["value"].get<double>());
  }
  REQUIRE(tops == std::set<double>{1.0});
  REQUIRE(maps.size() > 1);  // else the case shows nothing: the first validation would stay the best
  // The bests are the highest mAP@20s (the first of equals), not the first validations.
  const nlohmann::json& run_best = best_line(lines, "");
  CHECK(run_best["validation"]["tie_break"]["value"].get<double>() == *maps.rbegin());
  CHECK(run_best["step"].get<int64_t>() > 1);
  CHECK(checkpoint_state(o.out_dir + "/best.safetensors").step == run_best["step"].get<int64_t>());
  for (const char* stage : {"stage1", "stage2"}) {
    INFO(stage);
    const nlohmann::json& b = best_line(lines, stage);
    const TrainState st = checkpoint_state(o.out_dir + "/" + stage + "_best.safetensors");
    CHECK(st.step == b["step"].get<int64_t>());
    CHECK(st.best_validation_tie_break == b["validation"]["tie_break"]["value"].get<double>());
  }
  // The loss curve draws the tie-break beside the measure.
  CHECK(bytes_of(o.out_dir + "/loss.svg").find("retrieval mAP@20 (validation, the tie-break)") != std::string::npos);
}

TEST_CASE("Validation crops the images as the run trains on them: its bbox_margin", "[trainer][validation]") {
  const std::string root = test::synth_dataset(scratch() / "inshop_margin", "inshop", 40, 3, 64, 5);
  TrainOptions o = options("validated_margin");
  o.data_root = root;
  o.holdout = 0.25;
  TrainConfig cfg = validated_run(2);
  cfg.bbox_margin = 0.3f;
  cfg.stages[0].steps = cfg.stages[1].steps = 2;
  train(cfg, o);
  const std::vector<nlohmann::json> lines = validation_lines(o.out_dir);
  const nlohmann::json& run_best = best_line(lines, "");
  const double logged = run_best["validation"]["tie_break"]["value"].get<double>();
  const data::Dataset ds = data::load_dataset(root, "inshop");
  ValidationSet set = validation_set(ds, o.holdout);
  auto model = model_from_checkpoint(o.out_dir + "/best.safetensors", Device::CPU);
  set.bbox_margin = 0.3f;
  CHECK(validate(*model, ds, set, Device::CPU, 0, false).tie_break == Approx(logged).margin(1e-12));
  set.bbox_margin = 0.f;  // the tight boxes are other pixels: another measure
  CHECK(validate(*model, ds, set, Device::CPU, 0, false).tie_break != Approx(logged).margin(1e-9));
}

TEST_CASE("validate_every 0 keeps the smoothed-loss best, no validation and no best.safetensors",
          "[trainer][validation]") {
  const std::string dir = straight_run();  // tiny: validate_every 0
  CHECK(validation_lines(dir).empty());
  CHECK_FALSE(fs::exists(dir + "/best.safetensors"));
  // stage1_best is the checkpoint (steps 3 and 6) with the lowest smoothed loss, as before validation existed.
  std::map<int64_t, double> ema;
  std::ifstream m(dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(m, line)) {
    auto j = nlohmann::json::parse(line);
    ema[j["step"].get<int64_t>()] = j["ema"].get<double>();
  }
  const TrainState b = checkpoint_state(dir + "/stage1_best.safetensors");
  const int64_t expect = ema.at(6) < ema.at(3) ? 6 : 3;
  CHECK(b.step == expect);
  CHECK(b.best_loss == Approx(ema.at(expect)).epsilon(1e-9));
  CHECK(b.best_validation == -1);

  // A validation set with nothing in it (an ImageFolder hold-out of no image) leaves validation off.
  TrainOptions o = options("validated_empty");
  o.data_root = imagefolder_dataset();
  o.benchmark = "imagefolder";
  o.holdout = 1e-9;
  TrainConfig cfg = validated_run(1);
  cfg.stages[0].steps = cfg.stages[1].steps = 2;
  CHECK(train(cfg, o).best_checkpoint.empty());
  CHECK(validation_lines(o.out_dir).empty());
  CHECK_FALSE(fs::exists(o.out_dir + "/best.safetensors"));
  CHECK(fs::exists(o.out_dir + "/stage1_best.safetensors"));
}

TEST_CASE("validate: eval mode for the measure, the caller's modes after; the direction of each measure",
          "[trainer][validation]") {
  const data::Dataset ds = data::load_dataset(imagefolder_dataset(), "imagefolder", false);
  const ValidationSet set = validation_set(ds, 0.25);
  REQUIRE(set.usable());
  TrainConfig cfg = preset("tiny");
  cfg.net.categories = 3;
  cfg.net.attributes = 0;
  cfg.net.dropout = 0.5f;
  FashionNet model(cfg.net, 3);
  model.train();
  const double a = validate(model, ds, set, Device::CPU, 0, false).value;
  CHECK(model.is_training());
  // Dropout off during the measure: the same weights measure the same, however often.
  CHECK(validate(model, ds, set, Device::CPU, 0, false).value == a);
  model.eval();
  CHECK(validate(model, ds, set, Device::CPU, 0, false).value == a);
  CHECK_FALSE(model.is_training());

  ValidationSet higher, lower;
  lower.higher_is_better = false;
  const auto r = [](double value, double tie = NAN) { return ValidationResult{value, tie, 0}; };
  CHECK(improves(higher, r(0.0), {}));  // the first measure is the best so far
  CHECK(improves(higher, r(0.6), {0.5, -1}));
  CHECK_FALSE(improves(higher, r(0.5), {0.5, -1}));  // a tie keeps the earlier checkpoint
  CHECK_FALSE(improves(higher, r(0.4), {0.5, -1}));
  CHECK(improves(lower, r(0.04), {0.05, -1}));
  CHECK_FALSE(improves(lower, r(0.06), {0.05, -1}));
  CHECK_FALSE(improves(higher, r(NAN), {}));
  // Equal measures (a saturated top-20): the tie-break decides, and never against a better measure.
  CHECK(improves(higher, r(1.0, 0.8), {1.0, 0.7}));
  CHECK_FALSE(improves(higher, r(1.0, 0.7), {1.0, 0.7}));
  CHECK_FALSE(improves(higher, r(1.0, 0.6), {1.0, 0.7}));
  CHECK(improves(higher, r(1.0, 0.0), {1.0, -1}));  // a tie-break beats none (a checkpoint from before them)
  CHECK_FALSE(improves(higher, r(1.0), {1.0, 0.7}));
  CHECK_FALSE(improves(higher, r(0.9, 1.0), {1.0, 0.1}));
  CHECK(improves(lower, r(0.05, 0.9), {0.05, 0.8}));  // the tie-break is an accuracy whatever the measure's direction
  CHECK(format_measure("retrieval_map20", 0.5) == "50.0%");
  CHECK(measure_label("retrieval_map20") == "retrieval mAP@20");
  CHECK(format_measure("category_top3", 0.8333) == "83.3%");
  CHECK(format_measure("landmark_error", 0.07123) == "0.0712");
}
