#include "fashionnet/train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "core/build_commit.h"
#include "core/safetensors.h"

namespace fn::fashionnet {
namespace {
std::string fmt(double v) {
  char b[40];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}

fn::NamedTensors optimiser_state(const nn::Optimizer* opt) {
  fn::NamedTensors r;
  if (opt)
    for (auto& [n, t] : opt->state()) r.emplace_back("optim." + n, t);
  return r;
}

const std::string& meta(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  FN_CHECK(it != f.metadata.end(), "checkpoint ", f.path, ": no '", key,
           "' in its metadata (is it a FashionNet training checkpoint?)");
  return it->second;
}
}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const nn::Optimizer* opt,
                     const TrainConfig& cfg, const TrainState& st) {
  fn::NamedTensors all = model.named_state();  // parameters and buffers
  for (auto& p : optimiser_state(opt)) all.push_back(p);
  nlohmann::json c = cfg;
  std::map<std::string, std::string> md = {
      {"format", "fashionnet-checkpoint"}, {"config", c.dump()},       {"stage", std::to_string(st.stage)},
      {"step", std::to_string(st.step)},   {"ema_loss", fmt(st.ema_loss)}, {"best_loss", fmt(st.best_loss)},
      {"categories", nlohmann::json(st.category_names).dump()},        {"commit", fn::build_commit()},
      {"best_validation", fmt(st.best_validation)}, {"run_best_validation", fmt(st.run_best_validation)},
      {"best_validation_tie_break", fmt(st.best_validation_tie_break)},
      {"run_best_validation_tie_break", fmt(st.run_best_validation_tie_break)}};
  save_safetensors(path, all, md);
}

TrainConfig checkpoint_config(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  TrainConfig cfg;
  const std::string& text = meta(f, "config");
  try {
    nlohmann::json::parse(text).get_to(cfg);
  } catch (const std::exception& e) {  // json's errors, and the integer checks of from_json
    FN_USER_FAIL("checkpoint ", path, ": its config metadata is not valid: ", e.what());
  }
  check_config(cfg, "checkpoint " + path);
  return cfg;
}

std::string weights_backbone(const std::string& path) { return weights_backbone(load_safetensors(path)); }

std::string weights_backbone(const SafetensorsFile& f) {
  const auto said = [&](const std::string& key) {
    auto it = f.metadata.find(key);
    return it == f.metadata.end() ? std::string() : it->second;
  };
  if (!said("arch").empty()) return said("arch");                        // fashionnet import
  if (said("source_format") == "torchvision-vgg16") return "vgg16";      // fashionnet import-vgg16
  const std::string config = said("config");                             // a training checkpoint
  const nlohmann::json j = nlohmann::json::parse(config, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("net") && j["net"].is_object() && j["net"].contains("backbone") &&
      j["net"]["backbone"].is_string())
    return j["net"]["backbone"].get<std::string>();
  return config.empty() ? "" : "vgg16";  // a checkpoint from before the backbone was configuration
}

LoadResult load_init(const std::string& path, const nn::Module& model, const NetConfig& net) {
  const SafetensorsFile f = load_safetensors(path);
  // Another backbone's file would fail on hundreds of tensors; say the one thing that is wrong.
  const std::string theirs = weights_backbone(f), ours = net.backbone.name();
  if (!theirs.empty() && theirs != ours) {
    std::string presets;
    for (const std::string& p : preset_names())
      if (preset(p).net.backbone.name() == theirs) presets += (presets.empty() ? "" : ", ") + p;
    FN_USER_FAIL("--init ", path, ": its weights are for the ", theirs, " backbone, but this run builds ", ours,
                 presets.empty() ? std::string() : cat(": use a preset of that backbone (", presets, ")"),
                 ", or an init file made for ", ours);
  }
  const NamedTensors state = model.named_state();
  std::set<std::string> ours_names;
  for (const auto& [n, t] : state) ours_names.insert(n);
  LoadOptions lo;
  lo.allow_missing = true;
  // A training checkpoint also holds its optimiser's state ("optim.<param>.<what>"): not weights. Anything
  // else the model lacks is still refused, by load_into, with every name.
  lo.allow_unexpected = f.metadata.count("config") &&
                        std::all_of(f.names.begin(), f.names.end(), [&](const std::string& n) {
                          return ours_names.count(n) || n.rfind("optim.", 0) == 0;
                        });
  return load_into(path, state, lo);
}

TrainState checkpoint_state(const std::string& path) {
  SafetensorsFile f = load_safetensors(path);
  TrainState st;
  try {
    st.stage = std::stoi(meta(f, "stage"));
    st.step = std::stoll(meta(f, "step"));
    st.ema_loss = std::stod(meta(f, "ema_loss"));
    st.best_loss = std::stod(meta(f, "best_loss"));
    st.category_names = nlohmann::json::parse(meta(f, "categories")).get<std::vector<std::string>>();
    // Absent before validation (and before its tie-breaks) existed.
    for (auto [key, field] : {std::pair{"best_validation", &st.best_validation},
                              std::pair{"run_best_validation", &st.run_best_validation},
                              std::pair{"best_validation_tie_break", &st.best_validation_tie_break},
                              std::pair{"run_best_validation_tie_break", &st.run_best_validation_tie_break}})
      if (f.metadata.count(key)) *field = std::stod(f.metadata.at(key));
  } catch (const fn::Error&) {
    throw;
  } catch (const std::exception& e) {
    FN_USER_FAIL("checkpoint ", path, ": malformed training state in its metadata: ", e.what());
  }
  FN_EXPECT(st.stage >= 0 && st.step >= 0, "checkpoint ", path, ": malformed training state in its metadata: stage ",
            st.stage, ", step ", st.step);
  return st;
}

void load_checkpoint(const std::string& path, const nn::Module& model, const nn::Optimizer* opt) {
  fn::NamedTensors all = model.named_state();  // parameters and buffers
  for (auto& p : optimiser_state(opt)) all.push_back(p);
  LoadOptions o;
  o.allow_unexpected = opt == nullptr;  // evaluation ignores the optimiser's state
  load_into(path, all, o);
}

std::unique_ptr<FashionNet> model_from_checkpoint(const std::string& path, Device device, TrainConfig* cfg_out,
                                                  int input) {
  TrainConfig cfg = checkpoint_config(path);
  if (input != 0 && input != cfg.net.input) {
    FN_EXPECT(cfg.net.backbone != Backbone::Vgg16, "checkpoint ", path, ": a vgg16 network runs only at the input "
              "size it was trained at (", cfg.net.input, "): its fc6 reads the conv5 map flattened; the other "
              "backbones pool their map and run at any input size");
    cfg.net.input = input;  // the constructor checks the range
  }
  auto model = std::make_unique<FashionNet>(cfg.net, cfg.seed);
  model->to(device);
  load_checkpoint(path, *model, nullptr);
  if (cfg_out) *cfg_out = cfg;
  return model;
}

}  // namespace fn::fashionnet
