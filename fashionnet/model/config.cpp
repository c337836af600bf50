#include "fashionnet/model/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "fashionnet/model/vgg16.h"

namespace fn::fashionnet {

std::vector<int> vgg_channels(const NetConfig& c) {
  const auto ch = vgg16_stage_channels(c.width);
  return {ch.begin(), ch.end()};
}

std::vector<std::string> preset_names() { return {"paper", "cpu-small", "tiny", "lite0", "resnet50", "resnet-tiny"}; }

TrainConfig preset(const std::string& name) {
  TrainConfig t;
  t.preset = name;
  // Stage 1: the landmark branch weighs heavily so the shared layers learn where the landmarks are;
  // stage 2 starts from stage 1's best checkpoint with every weight equal (the schedule of the reference reproduction, docs/fashionnet.md 'Sources').
  LossWeights stage1{10, 10, 1, 1, 1}, stage2{1, 1, 1, 1, 1};
  // validate_every: at the checkpoint interval (lite0: 100, so that its 200-step first stage has a choice besides
  // its end); one pass over the validation images costs far less than the steps between two.
  if (name == "paper") {
    t.batch = 32;
    t.P = 8;
    t.K = 4;
    t.stages = {{"stage1", 20000, 0.01, stage1}, {"stage2", 40000, 0.001, stage2}};
    t.checkpoint_every = 2000;
    t.validate_every = 2000;
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
    t.validate_every = 300;
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
    t.log_every = 5;  // validate_every stays 0: tests that validate ask for it
  } else if (name == "lite0") {
    // EfficientNet-Lite0, to fine-tune from the ImageNet weights (width 1) on 2 CPU cores:
    // - input 192: 0.73x the pixels (and time) of 224, where the ImageNet features still hold; the trunk's map
    //   for landmark pooling is 12x12 (stride 16). 160 would be 0.51x, with a 10x10 map.
    // - batch 32 (P 8 x K 4): batch norm trains on the batch's statistics, and 16 images give noisy ones.
    // - fully connected layers as cpu-small's (1024 / 256): the branches' pooled features are 1280 wide, and
    //   the paper's 4096 would make fc6_global and fc7_fusion the largest layers of the net; dropout 0.2, the
    //   rate of Lite0's own classifier.
    // - fine-tuning rates: lr 0.01 then 0.001, weight decay 1e-4, 600 steps (sized when a step of 32 took 2.1 s;
    //   0.72-0.88 s since). The real-photo recipe, bench/realphotos/lite0_finetune.json, overrides the stages
    //   (a frozen-trunk stage, then every layer: docs/RESULTS.md).
    // - local_scale 0.1: the trunk's map (the 112-channel stage ends in a linear projection) has an rms of about
    //   8 on photos with the ImageNet weights; unscaled, fc6_local's units die in the first steps (docs/RESULTS.md,
    //   "The local branch on data without landmarks").
    // - the global branch's copy of the last stages (conv5_global) normalises by ImageNet's statistics, held;
    //   the trunk and the pose branch by the batch's. On the demo's photos that raised retrieval top-1 by 3-6
    //   points and doubled category top-3 while the landmarks learnt as before; holding every batch norm broke
    //   the landmark branch in 2 runs of 3 (docs/RESULTS.md rows 81-82).
    NetConfig& n = t.net;
    n.backbone = Backbone::EfficientNetLite0;
    n.local_scale = 0.1f;
    n.input = 192;
    n.fc6_global = 1024;
    n.fc6_pose = 256;
    n.fc7_pose = 256;
    n.fc6_local = 256;
    n.fc7_fusion = 1024;
    n.dropout = 0.2f;
    t.batch = 32;
    t.P = 8;
    t.K = 4;
    t.weight_decay = 1e-4;
    t.clip_grad_norm = 10;
    t.stages = {{"stage1", 200, 0.01, stage1}, {"stage2", 400, 0.001, stage2}};
    for (StageConfig& st : t.stages) st.hold_statistics = {"conv5_global"};
    t.checkpoint_every = 200;
    t.validate_every = 100;
  } else if (name == "resnet50") {
    // ResNet-50 at the paper's input and fully connected widths, for GPUs (torchvision's ImageNet weights
    // initialise it); weight decay 1e-4, torchvision's for ResNet. The gradient clipped at norm 10, as lite0's:
    // from scratch the first gradient's norm is about 2,000 and, unclipped, stage 1 (lr 0.01, landmarks x10)
    // reached a NaN loss at step 3 at batch 8 and at batch 32 (docs/RESULTS.md row 93).
    t.net.backbone = Backbone::ResNet50;
    t.batch = 32;
    t.P = 8;
    t.K = 4;
    t.weight_decay = 1e-4;
    t.clip_grad_norm = 10;
    t.stages = {{"stage1", 20000, 0.01, stage1}, {"stage2", 40000, 0.001, stage2}};
    t.checkpoint_every = 2000;
    t.validate_every = 2000;
  } else if (name == "resnet-tiny") {
    // The resnet50 graph, every name and block included, at width 1/16 (channels 4 .. 128) and 64x64 (the
    // trunk's map 4x4, layer4's 2x2): for tests on the CPU.
    t = preset("tiny");
    t.preset = name;
    t.net.backbone = Backbone::ResNet50;
    t.net.input = 64;
  } else {
    const std::vector<std::string> names = preset_names();
    std::string expected;
    for (size_t i = 0; i < names.size(); ++i) expected += (i == 0 ? "" : i + 1 < names.size() ? ", " : " or ") + names[i];
    FN_USER_FAIL("unknown preset '", name, "' (expected ", expected, ")");
  }
  return t;
}

namespace {
// Collects "<prefix><key> <value>: <rule>" for each value outside its rule (visit_fields' visitor).
struct ProblemFinder {
  std::vector<std::string>& list;
  std::string prefix;

  template <class T>
  void operator()(const char*, const T&) {}  // no rule
  template <class T>
  void operator()(const char* key, const T& v, const Range<T>& r) {
    bool ok = v >= r.lo && v <= r.hi;  // false for NaN too
    if constexpr (std::is_integral_v<T>) ok = ok && v % r.multiple == 0;
    if (!ok) list.push_back(cat(prefix, key, " ", v, ": ", r.text));
  }
  template <class E>
  void operator()(const char* key, const Choice<E>& c) {
    if (!c.known()) list.push_back(cat(prefix, key, " '", c.name(), "': ", choice_names_text<E>()));
  }
  void operator()(const char* key, const std::string& s, NotEmpty r) {
    if (s.empty()) list.push_back(cat(prefix, key, ": ", r.text));
  }
  void operator()(const char* key, const std::vector<std::string>& names, NoEmptyName r) {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i].empty()) list.push_back(cat(prefix, key, "[", i, "]: ", r.text));
  }
  void operator()(const char* key, const std::map<std::string, double>& mult, Multipliers r) {
    for (const auto& [name, k] : mult) {
      if (name.empty()) list.push_back(cat(prefix, key, ": an empty name (it would cover every parameter)"));
      if (!(k >= r.lo && k <= r.hi)) list.push_back(cat(prefix, key, "[\"", name, "\"] ", k, ": ", r.text));
    }
  }
  void operator()(const char* key, const NetConfig& c) { visit_fields(c, ProblemFinder{list, cat(prefix, key, ".")}); }
  void operator()(const char* key, const LossWeights& c) { visit_fields(c, ProblemFinder{list, cat(prefix, key, ".")}); }
  void operator()(const char* key, const std::vector<StageConfig>& stages, NotEmpty r) {
    if (stages.empty()) list.push_back(cat(prefix, key, ": ", r.text));
    for (size_t i = 0; i < stages.size(); ++i) visit_fields(stages[i], ProblemFinder{list, cat(prefix, key, "[", i, "].")});
  }
};

template <class C>
std::vector<std::string> problems_of(const C& c) {
  std::vector<std::string> list;
  visit_fields(c, ProblemFinder{list, ""});
  return list;
}

void throw_problems(const std::vector<std::string>& list, const std::string& where) {
  if (list.empty()) return;
  std::string msg = where + ": invalid configuration: ";
  for (size_t i = 0; i < list.size(); ++i) msg += (i ? "; " : "") + list[i];
  FN_USER_FAIL(msg);
}

// json's own conversion of a number to an integer field truncates 16.7 and wraps 4294967297 silently.
template <class T>
void get_field(const nlohmann::json& j, const char* name, T& out) {
  if (!j.contains(name)) return;
  const nlohmann::json& v = j.at(name);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    const bool whole = v.is_number_integer() || (v.is_number_float() && std::nearbyint(v.get<double>()) == v.get<double>());
    if (!v.is_number() || !whole) FN_USER_FAIL("'", name, "' is ", v.dump(), ": a whole number expected");
    const double d = v.get<double>();
    const bool fits = v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(std::numeric_limits<T>::max())
                                             : d >= double(std::numeric_limits<T>::lowest()) &&
                                                   d <= double(std::numeric_limits<T>::max());
    if (!fits) FN_USER_FAIL("'", name, "' is ", v.dump(), ": out of range for its type");
  }
  v.get_to(out);
}

struct JsonWriter {
  nlohmann::json& j;
  template <class T, class... Rule>
  void operator()(const char* key, const T& field, const Rule&...) {
    j[key] = field;
  }
};
struct JsonReader {
  const nlohmann::json& j;
  template <class T, class... Rule>
  void operator()(const char* key, T& field, const Rule&...) {
    get_field(j, key, field);
  }
};

template <class C>
void write_json(nlohmann::json& j, const C& c) {
  j = nlohmann::json::object();
  visit_fields(c, JsonWriter{j});
}
}  // namespace

std::vector<std::string> config_problems(const NetConfig& c) { return problems_of(c); }
std::vector<std::string> config_problems(const TrainConfig& c) { return problems_of(c); }

void check_config(const TrainConfig& c, const std::string& where) { throw_problems(config_problems(c), where); }
void check_config(const NetConfig& c, const std::string& where) { throw_problems(config_problems(c), where); }

void to_json(nlohmann::json& j, const NetConfig& c) { write_json(j, c); }
void from_json(const nlohmann::json& j, NetConfig& c) { visit_fields(c, JsonReader{j}); }
void to_json(nlohmann::json& j, const LossWeights& c) { write_json(j, c); }
void from_json(const nlohmann::json& j, LossWeights& c) { visit_fields(c, JsonReader{j}); }
void to_json(nlohmann::json& j, const StageConfig& c) { write_json(j, c); }
void from_json(const nlohmann::json& j, StageConfig& c) { visit_fields(c, JsonReader{j}); }
void to_json(nlohmann::json& j, const TrainConfig& c) { write_json(j, c); }
void from_json(const nlohmann::json& j, TrainConfig& c) { visit_fields(c, JsonReader{j}); }

}  // namespace fn::fashionnet
