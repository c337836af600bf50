// FashionNet's configuration: the network's widths and input size, the loss weights of each training
// stage, the optimiser and the schedule. Presets: `paper` (VGG16 at 224x224, the widths of the paper),
// `cpu-small` (every width 1/4, 112x112, batch 16) and `tiny` (for tests). Serialised as JSON into
// every checkpoint and run folder, so a run says exactly what it was.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace fn::fashionnet {

struct NetConfig {
  std::string backbone = "vgg16";
  double width = 1.0;  // multiplies every conv channel count (64, 128, 256, 512, 512)
  int input = 224;     // square network input
  int fc6_global = 4096, fc6_pose = 1024, fc7_pose = 1024, fc6_local = 1024, fc7_fusion = 4096;
  int categories = 23;   // In-shop: GENDER/Category folders
  int attributes = 463;  // In-shop attribute list
  int pool_radius = 1;   // landmark_pool window (2r+1)^2 on conv4_3
  std::string pool_mode = "corner";  // invisible slots: "corner" (the reference reproduction's rule) or "zero"
  bool local_branch = true;          // false: the ablation with the global branch only
  float dropout = 0.5f;
};

struct LossWeights {
  double landmarks = 1, visibility = 1, category = 1, attributes = 1, triplet = 1;
};

struct StageConfig {
  std::string name;
  int64_t steps = 0;
  double lr = 0.01;
  LossWeights weights;
};

struct TrainConfig {
  std::string preset;
  NetConfig net;
  int batch = 32;           // P items x K images when triplet mining is on
  int P = 8, K = 4;
  double momentum = 0.9, weight_decay = 5e-4;
  double clip_grad_norm = 0;  // 0: off
  std::string schedule = "cosine";  // "cosine" | "step"
  double step_gamma = 0.1;
  int64_t step_every = 0;     // for "step": steps between decays
  int64_t warmup = 0;         // linear warm-up steps at the start of each stage
  float triplet_margin = 0.2f;
  std::string triplet_mining = "batch_hard";  // or "all"
  int64_t checkpoint_every = 500;
  int64_t log_every = 10;
  uint64_t seed = 1;
  float bbox_margin = 0.f;
  std::vector<StageConfig> stages;
};

TrainConfig preset(const std::string& name);  // "paper", "cpu-small", "tiny"
std::vector<std::string> preset_names();

void to_json(nlohmann::json& j, const NetConfig& c);
void from_json(const nlohmann::json& j, NetConfig& c);
void to_json(nlohmann::json& j, const LossWeights& c);
void from_json(const nlohmann::json& j, LossWeights& c);
void to_json(nlohmann::json& j, const StageConfig& c);
void from_json(const nlohmann::json& j, StageConfig& c);
void to_json(nlohmann::json& j, const TrainConfig& c);
void from_json(const nlohmann::json& j, TrainConfig& c);

// Every field out of its range, one line each ("net.input 30: a multiple of 8 from 32 to 2048"); empty when
// the configuration is usable. A configuration from a file (--config, a checkpoint) is checked before a
// network is built from it, so a bad value is named instead of failing deep inside a layer.
std::vector<std::string> config_problems(const NetConfig& c);
std::vector<std::string> config_problems(const TrainConfig& c);  // the network's problems too, as net.*
// Throws fn::Error "<where>: <problem>; <problem>..." when there is any.
void check_config(const TrainConfig& c, const std::string& where);
void check_config(const NetConfig& c, const std::string& where);

// VGG16 channel counts after the width multiplier (at least 4 each).
std::vector<int> vgg_channels(const NetConfig& c);  // 5 stages

}  // namespace fn::fashionnet
