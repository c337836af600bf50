#include "fashionnet/model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <type_traits>

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
  // stage 2 starts from stage 1's best checkpoint with every weight equal (the schedule of the reference reproduction, docs/fashionnet.md 'Sources').
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

namespace {
// Collects "<name> <value>: <rule>" for each value outside its rule.
struct Problems {
  std::vector<std::string> list;
  std::string prefix;
  template <class T>
  void range(const char* name, T v, T lo, T hi, const char* rule) {
    // The negated test also catches NaN.
    if (!(v >= lo && v <= hi)) list.push_back(cat(prefix, name, " ", v, ": ", rule));
  }
  void one_of(const char* name, const std::string& v, std::initializer_list<const char*> allowed) {
    for (const char* a : allowed)
      if (v == a) return;
    std::string rule;
    for (const char* a : allowed) rule += (rule.empty() ? "" : " or ") + std::string(a);
    list.push_back(cat(prefix, name, " '", v, "': ", rule));
  }
};

void throw_problems(const std::vector<std::string>& list, const std::string& where) {
  if (list.empty()) return;
  std::string msg = where + ": invalid configuration: ";
  for (size_t i = 0; i < list.size(); ++i) msg += (i ? "; " : "") + list[i];
  throw Error(msg);
}
}  // namespace

std::vector<std::string> config_problems(const NetConfig& c) {
  Problems p;
  p.one_of("backbone", c.backbone, {"vgg16"});
  p.range("width", c.width, 1e-3, 8.0, "from 0.001 to 8");
  if (c.input % 8 != 0 || c.input < 32 || c.input > 2048)
    p.list.push_back(cat("input ", c.input, ": a multiple of 8 from 32 to 2048"));
  const int kMaxUnits = 1 << 16;
  p.range("fc6_global", c.fc6_global, 1, kMaxUnits, "from 1 to 65536");
  p.range("fc6_pose", c.fc6_pose, 1, kMaxUnits, "from 1 to 65536");
  p.range("fc7_pose", c.fc7_pose, 1, kMaxUnits, "from 1 to 65536");
  p.range("fc6_local", c.fc6_local, 1, kMaxUnits, "from 1 to 65536");
  p.range("fc7_fusion", c.fc7_fusion, 1, kMaxUnits, "from 1 to 65536");
  p.range("categories", c.categories, 1, 1 << 20, "from 1 to 2^20");
  p.range("attributes", c.attributes, 0, 1 << 20, "from 0 to 2^20");
  p.range("pool_radius", c.pool_radius, 0, 16, "from 0 to 16");
  p.one_of("pool_mode", c.pool_mode, {"corner", "zero"});
  p.range("dropout", c.dropout, 0.f, 0.99f, "from 0 to 0.99");
  return p.list;
}

std::vector<std::string> config_problems(const TrainConfig& c) {
  Problems p;
  for (const std::string& n : config_problems(c.net)) p.list.push_back("net." + n);
  p.range("batch", c.batch, 1, 1 << 16, "from 1 to 65536");
  p.range("P", c.P, 1, 1 << 16, "from 1 to 65536");
  p.range("K", c.K, 1, 1 << 16, "from 1 to 65536");
  p.range("momentum", c.momentum, 0.0, 0.999, "from 0 to 0.999");
  p.range("weight_decay", c.weight_decay, 0.0, 1.0, "from 0 to 1");
  p.range("clip_grad_norm", c.clip_grad_norm, 0.0, 1e30, "0 (off) or positive");
  p.one_of("schedule", c.schedule, {"cosine", "step"});
  p.range("step_gamma", c.step_gamma, 1e-9, 1.0, "above 0, at most 1");
  p.range<int64_t>("step_every", c.step_every, 0, INT64_MAX, "0 or positive");
  p.range<int64_t>("warmup", c.warmup, 0, INT64_MAX, "0 or positive");
  p.range("triplet_margin", c.triplet_margin, 0.f, 1e6f, "0 or positive");
  p.one_of("triplet_mining", c.triplet_mining, {"batch_hard", "all"});
  p.range<int64_t>("checkpoint_every", c.checkpoint_every, 0, INT64_MAX, "0 or positive");
  p.range<int64_t>("log_every", c.log_every, 1, INT64_MAX, "positive");
  p.range("bbox_margin", c.bbox_margin, 0.f, 1.f, "from 0 to 1");
  if (c.stages.empty()) p.list.push_back("stages: none (at least one)");
  for (size_t i = 0; i < c.stages.size(); ++i) {
    const StageConfig& s = c.stages[i];
    p.prefix = cat("stages[", i, "].");
    if (s.name.empty()) p.list.push_back(p.prefix + "name: empty");
    p.range<int64_t>("steps", s.steps, 0, INT64_MAX / 4, "0 or positive");
    p.range("lr", s.lr, 0.0, 1e3, "from 0 to 1000");
    for (auto [name, w] : {std::pair<const char*, double>{"weights.landmarks", s.weights.landmarks},
                           {"weights.visibility", s.weights.visibility}, {"weights.category", s.weights.category},
                           {"weights.attributes", s.weights.attributes}, {"weights.triplet", s.weights.triplet}})
      p.range(name, w, 0.0, 1e6, "from 0 to 1e6");
  }
  return p.list;
}

void check_config(const TrainConfig& c, const std::string& where) { throw_problems(config_problems(c), where); }
void check_config(const NetConfig& c, const std::string& where) { throw_problems(config_problems(c), where); }

namespace {
// json's own conversion of a number to an integer field truncates 16.7 and wraps 4294967297 silently.
template <class T>
void get_field(const nlohmann::json& j, const char* name, T& out) {
  if (!j.contains(name)) return;
  const nlohmann::json& v = j.at(name);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    const bool whole = v.is_number_integer() || (v.is_number_float() && std::nearbyint(v.get<double>()) == v.get<double>());
    if (!v.is_number() || !whole) FN_FAIL("'", name, "' is ", v.dump(), ": a whole number expected");
    const double d = v.get<double>();
    const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                             : d >= double(std::numeric_limits<T>::lowest()) &&
                                                   d <= double(std::numeric_limits<T>::max());
    if (!fits) FN_FAIL("'", name, "' is ", v.dump(), ": out of range for its type");
  }
  v.get_to(out);
}
}  // namespace

#define FN_JSON_GET(field) get_field(j, #field, c.field)

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
