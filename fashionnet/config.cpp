#include "fashionnet/config.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace fn::fashionnet {

std::vector<int> vgg_channels(const NetConfig& c) {
  std::vector<int> ch;
  for (int base : {64, 128, 256, 512, 512}) ch.push_back(std::max(4, int(std::lround(base * c.width))));
  return ch;
}

std::vector<std::string> preset_names() { return {"paper", "cpu-small", "tiny"}; }

TrainConfig preset(const std::string& name) {
  TrainConfig t;
  t.preset = name;
  // Stage 1: the landmark branch weighs heavily so the shared layers learn where the landmarks are;
  // stage 2 starts from stage 1's best checkpoint with every weight equal (the seed's schedule).
  LossWeights stage1{10, 10, 1, 1, 1}, stage2{1, 1, 1, 1, 1};
  if (name == "paper") {
    t.batch = 32;
    t.P = 8;
    t.K = 4;
    t.stages = {{"stage1", 20000, 0.01, stage1}, {"stage2", 40000, 0.001, stage2}};
    t.checkpoint_every = 2000;
  } else if (name == "cpu-small") {
    NetConfig& n = t.net;
    n.width = 0.25;
    n.input = 112;
    n.fc6_global = 1024;
    n.fc6_pose = 256;
    n.fc7_pose = 256;
    n.fc6_local = 256;
    n.fc7_fusion = 1024;
    t.batch = 16;
    t.clip_grad_norm = 10;
    t.P = 4;
    t.K = 4;
    // lr 0.002: at 0.01 (batch 16, from scratch, no batch norm) fc6_global's ReLUs die one after another
    // (47% -> 84% of units dead over the demo's stage 2) until the global-only network's embedding is
    // constant; at 0.002 about 20% stay dead and category, attributes and retrieval learn (docs/RESULTS.md).
    t.stages = {{"stage1", 600, 0.002, stage1}, {"stage2", 1200, 0.002, stage2}};
    t.checkpoint_every = 300;
  } else if (name == "tiny") {
    NetConfig& n = t.net;
    n.width = 1.0 / 16;
    n.input = 32;
    n.fc6_global = 32;
    n.fc6_pose = 16;
    n.fc7_pose = 16;
    n.fc6_local = 16;
    n.fc7_fusion = 32;
    n.dropout = 0.f;
    t.batch = 8;
    t.clip_grad_norm = 10;
    t.P = 2;
    t.K = 4;
    t.weight_decay = 0;
    t.stages = {{"stage1", 20, 0.01, stage1}, {"stage2", 20, 0.01, stage2}};
    t.checkpoint_every = 10;
    t.log_every = 5;
  } else {
    FN_FAIL("unknown preset '", name, "' (expected paper, cpu-small or tiny)");
  }
  return t;
}

#define FN_JSON_GET(field) \
  if (j.contains(#field)) j.at(#field).get_to(c.field)

void to_json(nlohmann::json& j, const NetConfig& c) {
  j = {{"backbone", c.backbone},     {"width", c.width},         {"input", c.input},
       {"fc6_global", c.fc6_global}, {"fc6_pose", c.fc6_pose},   {"fc7_pose", c.fc7_pose},
       {"fc6_local", c.fc6_local},   {"fc7_fusion", c.fc7_fusion}, {"categories", c.categories},
       {"attributes", c.attributes}, {"pool_radius", c.pool_radius}, {"pool_mode", c.pool_mode},
       {"local_branch", c.local_branch}, {"dropout", c.dropout}};
}
void from_json(const nlohmann::json& j, NetConfig& c) {
  FN_JSON_GET(backbone); FN_JSON_GET(width); FN_JSON_GET(input); FN_JSON_GET(fc6_global);
  FN_JSON_GET(fc6_pose); FN_JSON_GET(fc7_pose); FN_JSON_GET(fc6_local); FN_JSON_GET(fc7_fusion);
  FN_JSON_GET(categories); FN_JSON_GET(attributes); FN_JSON_GET(pool_radius); FN_JSON_GET(pool_mode);
  FN_JSON_GET(local_branch); FN_JSON_GET(dropout);
}
void to_json(nlohmann::json& j, const LossWeights& c) {
  j = {{"landmarks", c.landmarks}, {"visibility", c.visibility}, {"category", c.category},
       {"attributes", c.attributes}, {"triplet", c.triplet}};
}
void from_json(const nlohmann::json& j, LossWeights& c) {
  FN_JSON_GET(landmarks); FN_JSON_GET(visibility); FN_JSON_GET(category); FN_JSON_GET(attributes);
  FN_JSON_GET(triplet);
}
void to_json(nlohmann::json& j, const StageConfig& c) {
  j = {{"name", c.name}, {"steps", c.steps}, {"lr", c.lr}, {"weights", c.weights}};
}
void from_json(const nlohmann::json& j, StageConfig& c) {
  FN_JSON_GET(name); FN_JSON_GET(steps); FN_JSON_GET(lr); FN_JSON_GET(weights);
}
void to_json(nlohmann::json& j, const TrainConfig& c) {
  j = {{"preset", c.preset}, {"net", c.net}, {"batch", c.batch}, {"P", c.P}, {"K", c.K},
       {"momentum", c.momentum}, {"weight_decay", c.weight_decay}, {"clip_grad_norm", c.clip_grad_norm},
       {"schedule", c.schedule}, {"step_gamma", c.step_gamma}, {"step_every", c.step_every},
       {"warmup", c.warmup}, {"triplet_margin", c.triplet_margin}, {"triplet_mining", c.triplet_mining},
       {"checkpoint_every", c.checkpoint_every}, {"log_every", c.log_every}, {"seed", c.seed},
       {"bbox_margin", c.bbox_margin}, {"stages", c.stages}};
}
void from_json(const nlohmann::json& j, TrainConfig& c) {
  FN_JSON_GET(preset); FN_JSON_GET(net); FN_JSON_GET(batch); FN_JSON_GET(P); FN_JSON_GET(K);
  FN_JSON_GET(momentum); FN_JSON_GET(weight_decay); FN_JSON_GET(clip_grad_norm); FN_JSON_GET(schedule);
  FN_JSON_GET(step_gamma); FN_JSON_GET(step_every); FN_JSON_GET(warmup); FN_JSON_GET(triplet_margin);
  FN_JSON_GET(triplet_mining); FN_JSON_GET(checkpoint_every); FN_JSON_GET(log_every); FN_JSON_GET(seed);
  FN_JSON_GET(bbox_margin); FN_JSON_GET(stages);
}
#undef FN_JSON_GET

}  // namespace fn::fashionnet
