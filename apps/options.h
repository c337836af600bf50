// Options shared by the commands that build a training configuration (train, demo).
#pragma once
#include <CLI/CLI.hpp>
#include <fstream>
#include <sstream>
#include <string>

#include "apps/validators.h"
#include "core/error.h"
#include "fashionnet/model/config.h"

namespace fn::apps {

struct TrainFlags {
  std::string preset = "cpu-small";
  std::string config_file;  // JSON overriding preset fields
  std::string steps;        // "S1,S2": steps per stage
  double lr = 0;            // 0: the preset's
  int batch = 0;            // 0: the preset's
  int parts = 0;            // 0: the preset's
  uint64_t seed = 0;        // 0: the preset's
  bool no_local = false;    // ablation: global branch only
  std::string pool_mode;    // a name of fashionnet::PoolMode; empty: the preset's
};

inline void add_train_flags(CLI::App& app, TrainFlags& f) {
  std::string presets;
  for (const std::string& p : fashionnet::preset_names()) presets += (presets.empty() ? "" : " | ") + p;
  app.add_option("--preset", f.preset, presets)->capture_default_str()->check(CLI::IsMember(fashionnet::preset_names()));
  app.add_option("--config", f.config_file, "JSON file overriding fields of the preset");
  app.add_option("--steps", f.steps, "steps per stage, e.g. 300,600");
  app.add_option("--lr", f.lr, "base learning rate of every stage")->check(positive());
  app.add_option("--batch", f.batch, "batch size (P*K with triplets)")->check(positive());
  app.add_option("--parts", f.parts,
                 "split each batch into this many parts whose losses (and triplet mining) are taken each on its "
                 "own, as that many MPI ranks would (docs/distributed.md)")
      ->check(positive());
  app.add_option("--seed", f.seed, "random seed");
  app.add_flag("--no-local", f.no_local, "ablation: global branch only (no landmark pooling)");
  using fashionnet::PoolMode;
  app.add_option("--pool-mode", f.pool_mode, "invisible landmarks: " + fashionnet::choice_names_text<PoolMode>(" | "))
      ->check(CLI::IsMember(fashionnet::choice_names<PoolMode>()));
}

inline fashionnet::TrainConfig make_config(const TrainFlags& f) {
  fashionnet::TrainConfig cfg = fashionnet::preset(f.preset);
  if (!f.config_file.empty()) {
    std::ifstream in(f.config_file);
    FN_EXPECT(in.good(), "--config ", f.config_file, ": cannot open for reading");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {  // "parse error at line 3, column 5: ..."
      FN_USER_FAIL("--config ", f.config_file, ": not valid JSON: ", without_library_tag(e.what()));
    }
    FN_EXPECT(j.is_object(), "--config ", f.config_file, ": expected a JSON object of configuration fields, got ",
              j.type_name());
    nlohmann::json base = cfg;
    base.merge_patch(j);
    try {
      base.get_to(cfg);
    } catch (const std::exception& e) {  // json's type errors, and the integer checks of from_json
      FN_USER_FAIL("--config ", f.config_file, ": ", without_library_tag(e.what()));
    }
  }
  if (!f.steps.empty()) {
    std::stringstream ss(f.steps);
    std::string part;
    size_t i = 0;
    while (std::getline(ss, part, ',')) {
      FN_EXPECT(i < cfg.stages.size(), "--steps ", f.steps, ": the preset has ", cfg.stages.size(), " stages");
      size_t used = 0;
      try {
        cfg.stages[i].steps = std::stoll(part, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      FN_EXPECT(!part.empty() && used == part.size(), "--steps ", f.steps, ": '", part, "' is not a whole number");
      ++i;
    }
  }
  if (f.lr > 0)
    for (auto& s : cfg.stages) s.lr = f.lr;
  if (f.batch > 0) {
    cfg.batch = f.batch;
    if (cfg.P * cfg.K != f.batch) cfg.P = std::max(1, f.batch / cfg.K);
  }
  if (f.parts > 0) cfg.parts = f.parts;
  if (f.seed) cfg.seed = f.seed;
  if (f.no_local) cfg.net.local_branch = false;
  if (!f.pool_mode.empty()) cfg.net.pool_mode = f.pool_mode;
  check_config(cfg, f.config_file.empty() ? std::string("the training options") : "--config " + f.config_file);
  return cfg;
}

}  // namespace fn::apps
