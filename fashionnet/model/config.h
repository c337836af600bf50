// FashionNet's configuration: the backbone, the network's widths and input size, the loss weights of each
// training stage, the optimiser and the schedule. Presets (preset() says why each is sized as it is):
//   VGG16:            `paper` (224x224, the widths of the paper), `cpu-small` (every width 1/4, 112x112,
//                     batch 16), `tiny` (for tests)
//   EfficientNet-Lite0: `lite0` (ImageNet-initialisable, sized to fine-tune on 2 CPU cores)
//   ResNet-50:        `resnet50` (224x224, for GPUs), `resnet-tiny` (the same graph at width 1/16, 64x64: tests)
// Serialised as JSON into every checkpoint and run folder, so a run says exactly what it was.
//
// Each struct's fields are listed once more, in visit_fields below, with their JSON keys and their rules; JSON
// (to_json, from_json) and the range checks (config_problems) are made from that list. The string choices
// (backbone, pool_mode, local_at, schedule, triplet_mining, a stage's bn_statistics) are enums, with one table
// of names each (ChoiceNames): the names are what config.json, checkpoints and the command line hold.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "kernels/landmark_pool_body.h"  // kernels::LandmarkPoolMode
#include "kernels/triplet.h"             // kernels::TripletMode

namespace fn::fashionnet {

// ---- The choices: one enum each, one table of names each.
enum class Backbone { Vgg16, ResNet50, EfficientNetLite0 };  // fashionnet/model/backbone.h
enum class LrSchedule { Cosine, Step };
// A stage's batch norm statistics (nn/batchnorm2d.h): Train normalises by the batch's statistics and moves the
// running ones; Frozen normalises by the running statistics and leaves them as they are (every BatchNorm2d of
// the model; gradients still reach its weight and bias unless they are frozen too).
enum class BnStatistics { Train, Frozen };
using PoolMode = kernels::LandmarkPoolMode;  // invisible slots: Corner (the reference reproduction's rule) or Zero
// Where landmark_pool reads for the local branch: Landmarks, the paper's rule (the annotated landmarks in training,
// the predicted ones at test time); Layout, the fixed garment layout of kGarmentLayout (fashionnet.h) in training
// and at test time alike, for data without landmarks (an ImageFolder), where Landmarks has no slot to pool at;
// Absent, no slot in training and at test time alike (pool_mode's rule for an absent slot): what Landmarks does
// in training on data without landmarks, kept at test time, where Landmarks would pool at an untrained pose
// branch's predictions. `train` chooses it when no training image has landmarks and the rule is Landmarks.
enum class LocalAt { Landmarks, Layout, Absent };
using TripletMining = kernels::TripletMode;  // BatchHard or BatchAll

template <class E>
struct ChoiceName {
  E value;
  const char* name;
};
template <class E>
struct ChoiceNames;  // ::list, every value of E with its name
template <>
struct ChoiceNames<Backbone> {
  static constexpr ChoiceName<Backbone> list[] = {
      {Backbone::Vgg16, "vgg16"},
      {Backbone::ResNet50, "resnet50"},
      {Backbone::EfficientNetLite0, "efficientnet_lite0"}};
};
template <>
struct ChoiceNames<LrSchedule> {
  static constexpr ChoiceName<LrSchedule> list[] = {{LrSchedule::Cosine, "cosine"}, {LrSchedule::Step, "step"}};
};
template <>
struct ChoiceNames<BnStatistics> {
  static constexpr ChoiceName<BnStatistics> list[] = {{BnStatistics::Train, "train"}, {BnStatistics::Frozen, "frozen"}};
};
template <>
struct ChoiceNames<PoolMode> {
  static constexpr ChoiceName<PoolMode> list[] = {{PoolMode::Corner, "corner"}, {PoolMode::Zero, "zero"}};
};
template <>
struct ChoiceNames<LocalAt> {
  static constexpr ChoiceName<LocalAt> list[] = {
      {LocalAt::Landmarks, "landmarks"}, {LocalAt::Layout, "layout"}, {LocalAt::Absent, "absent"}};
};
template <>
struct ChoiceNames<TripletMining> {
  static constexpr ChoiceName<TripletMining> list[] = {{TripletMining::BatchHard, "batch_hard"},
                                                       {TripletMining::BatchAll, "all"}};
};

template <class E>
const char* choice_name(E v) {
  for (const auto& c : ChoiceNames<E>::list)
    if (c.value == v) return c.name;
  FN_FAIL("no name for value ", int(v));
}
template <class E>
std::optional<E> parse_choice(const std::string& name) {
  for (const auto& c : ChoiceNames<E>::list)
    if (name == c.name) return c.value;
  return std::nullopt;
}
// {"corner", "zero"}: for the command line's CLI::IsMember.
template <class E>
std::vector<std::string> choice_names() {
  std::vector<std::string> v;
  for (const auto& c : ChoiceNames<E>::list) v.push_back(c.name);
  return v;
}
// "corner or zero" (sep " or "), "corner | zero" (sep " | "): for messages and help texts.
template <class E>
std::string choice_names_text(const char* sep = " or ") {
  std::string s;
  for (const auto& c : ChoiceNames<E>::list) s += (s.empty() ? "" : sep) + std::string(c.name);
  return s;
}

// A configuration field holding a value of E, set from a value or from its name. A name the table lacks is
// kept as written: check_config then reports it with every other problem ("net.pool_mode 'middle': corner or
// zero"), and to_json writes it back unchanged. Reading the value of such a field is an internal error (the
// configuration was not checked).
template <class E>
class Choice {
 public:
  Choice(E v) : value_(v) {}
  Choice(const std::string& name) : value_(parse_choice<E>(name)) {
    if (!value_) unknown_ = name;
  }
  Choice(const char* name) : Choice(std::string(name)) {}

  bool known() const { return value_.has_value(); }
  E value() const {
    FN_CHECK(known(), "configuration choice '", unknown_, "' used unchecked (expected ", choice_names_text<E>(), ")");
    return *value_;
  }
  operator E() const { return value(); }
  std::string name() const { return known() ? choice_name(*value_) : unknown_; }

  friend bool operator==(const Choice& a, const Choice& b) { return a.value_ == b.value_ && a.unknown_ == b.unknown_; }
  friend bool operator!=(const Choice& a, const Choice& b) { return !(a == b); }
  friend bool operator==(const Choice& a, E b) { return a.value_ == b; }
  friend bool operator!=(const Choice& a, E b) { return !(a == b); }
  friend bool operator==(E a, const Choice& b) { return b == a; }
  friend bool operator!=(E a, const Choice& b) { return !(b == a); }

 private:
  std::optional<E> value_;
  std::string unknown_;  // the name as given, when it is not in the table
};

template <class E>
void to_json(nlohmann::json& j, const Choice<E>& c) {
  j = c.name();
}
template <class E>
void from_json(const nlohmann::json& j, Choice<E>& c) {
  c = Choice<E>(j.get<std::string>());
}

// ---- The configuration.
struct NetConfig {
  Choice<Backbone> backbone = Backbone::Vgg16;
  // Multiplies every conv channel count of the backbone (VGG16: 64, 128, 256, 512, 512; scaled_channels in
  // fashionnet/model/vgg16.h is the rule for all three); ImageNet weights need 1.
  double width = 1.0;
  int input = 224;     // square network input
  int fc6_global = 4096, fc6_pose = 1024, fc7_pose = 1024, fc6_local = 1024, fc7_fusion = 4096;
  int categories = 23;   // In-shop: GENDER/Category folders
  int attributes = 463;  // In-shop attribute list
  int pool_radius = 1;   // landmark_pool window (2r+1)^2 on the trunk's map (VGG16: conv4_3)
  Choice<PoolMode> pool_mode = PoolMode::Corner;  // invisible slots (see PoolMode)
  bool local_branch = true;  // false: the ablation with the global branch only
  Choice<LocalAt> local_at = LocalAt::Landmarks;  // where the local branch pools (see LocalAt)
  // Multiplies the pooled features before fc6_local, for a trunk map far from unit scale: SGD's step on
  // fc6_local grows with its input's square, and at 10x the scale the branch's units die in the first steps.
  float local_scale = 1.f;
  float dropout = 0.5f;
};

// Training data without landmarks under the paper's rule: training pools at no slot and the pose branch learns
// nothing, so the run keeps to no slot at test time too (LocalAt::Absent) rather than pool at an untrained
// prediction. Returns whether `net` changed (`train` says so in its first line).
inline bool keep_no_slot_without_landmarks(NetConfig& net) {
  if (!net.local_branch || net.local_at != LocalAt::Landmarks) return false;
  net.local_at = LocalAt::Absent;
  return true;
}

struct LossWeights {
  double landmarks = 1, visibility = 1, category = 1, attributes = 1, triplet = 1;
};

// One training stage. `freeze`, `bn_statistics`, `hold_statistics` and `lr_mult` hold for this stage only: the
// trainer sets them when the stage starts (and when a run resumes inside it), unfreezing what the stage before
// froze. Frozen parameters get no gradient and no update (momentum and weight decay included: nn/optim.h), and
// the first-step gradient check demands none of them.
struct StageConfig {
  std::string name;
  int64_t steps = 0;
  double lr = 0.01;
  LossWeights weights;
  // Parameter names frozen in this stage, as nn::Module::freeze takes them: a module prefix ("trunk" is
  // trunk.*) or one tensor's full name. Each must name at least one parameter of the model (the trainer checks
  // when it has built the model: a misspelt name is a user error naming the stage). Empty: everything trains.
  std::vector<std::string> freeze;
  Choice<BnStatistics> bn_statistics = BnStatistics::Train;
  // Modules whose batch norms hold their statistics in this stage whatever bn_statistics says for the rest:
  // module prefixes as `freeze` takes them ("conv5_global", the global branch's copy of the last stages).
  // Each must cover a BatchNorm2d of the model (the trainer checks, as for `freeze`).
  std::vector<std::string> hold_statistics;
  // Learning-rate multipliers, Caffe's lr_mult: {"landmark_vis": 3} steps the parameters the name covers (a
  // module prefix or a tensor's full name, as for `freeze`) at 3 times the stage's scheduled rate, their
  // weight decay alike (a PyTorch parameter group's lr). Each name must cover a parameter, and no parameter
  // may be covered by two names (the trainer checks). Empty: every parameter at the stage's rate.
  std::map<std::string, double> lr_mult;
};

struct TrainConfig {
  std::string preset;
  NetConfig net;
  int batch = 32;           // per process: P items x K images when triplet mining is on
  int P = 8, K = 4;
  // Data parallel (docs/distributed.md): `ranks` processes (set by the trainer) each take `batch` images of a
  // global batch of ranks x batch, split into `parts` equal parts (a multiple of ranks; 1 becomes ranks) whose
  // losses are taken each on its own (triplets mined within a part). One process with parts N computes the
  // step that N ranks do.
  int parts = 1;
  int ranks = 1;
  double momentum = 0.9, weight_decay = 5e-4;
  double clip_grad_norm = 0;  // 0: off
  Choice<LrSchedule> schedule = LrSchedule::Cosine;
  double step_gamma = 0.1;
  int64_t step_every = 0;     // for LrSchedule::Step: steps between decays
  int64_t warmup = 0;         // linear warm-up steps at the start of each stage
  float triplet_margin = 0.2f;
  Choice<TripletMining> triplet_mining = TripletMining::BatchHard;
  // The category loss's target puts 1 - label_smoothing on the label and the rest evenly on every class
  // (PyTorch's label_smoothing): logits are not pushed to certainty on a few thousand photos. 0: off.
  float label_smoothing = 0.f;
  int64_t checkpoint_every = 500;
  // Model selection (docs/training.md, "Validation"): every `validate_every` steps and at each stage's end the
  // trainer measures the validation split and keeps <stage>_best and best.safetensors by that measure. 0: off;
  // the best is then the lowest smoothed training loss, and In-shop trains on every training item.
  int64_t validate_every = 0;
  int64_t log_every = 10;
  uint64_t seed = 1;
  float bbox_margin = 0.f;
  // Training images only: a random crop of [crop_scale, 1] of the crop rectangle's area, aspect 3/4 to 4/3
  // (data/transform.h, Augment). 1: off, every image whole.
  float crop_scale = 1.f;
  std::vector<StageConfig> stages;

  bool trains_triplets() const {  // some stage weighs the triplet term
    for (const StageConfig& st : stages)
      if (st.weights.triplet > 0) return true;
    return false;
  }
};

TrainConfig preset(const std::string& name);  // a name of preset_names(); another name is a user error
std::vector<std::string> preset_names();

// ---- The field lists: each field once, with its JSON key and its rule.
// A rule of a number: "<key> <value>: <text>" when outside [lo, hi] (NaN included) or not a multiple of `multiple`.
template <class T>
struct Range {
  T lo, hi;
  const char* text;
  T multiple = 1;  // integers only
};
// A rule of a string or a list: "<key>: <text>" when empty.
struct NotEmpty {
  const char* text;
};
// A rule of a list of names: "<key>[i]: <text>" for each empty name.
struct NoEmptyName {
  const char* text;
};
// lr_mult's rule: each name non-empty, each multiplier within [lo, hi].
struct Multipliers {
  double lo, hi;
  const char* text;
};
// A field without a rule (a bool, the seed, a name) is visited as v(key, field); a Choice's rule is its table; a
// nested struct (net, weights) and the stages are visited as v(key, field) and checked by their own lists.
template <class C, class T>
using IfConfig = std::enable_if_t<std::is_same_v<std::remove_const_t<C>, T>>;

template <class C, class V>
IfConfig<C, NetConfig> visit_fields(C& c, V&& v) {
  const Range<int> units{1, 1 << 16, "from 1 to 65536"};
  v("backbone", c.backbone);
  v("width", c.width, Range<double>{1e-3, 8.0, "from 0.001 to 8"});
  v("input", c.input, Range<int>{32, 2048, "a multiple of 8 from 32 to 2048", 8});
  v("fc6_global", c.fc6_global, units);
  v("fc6_pose", c.fc6_pose, units);
  v("fc7_pose", c.fc7_pose, units);
  v("fc6_local", c.fc6_local, units);
  v("fc7_fusion", c.fc7_fusion, units);
  v("categories", c.categories, Range<int>{1, 1 << 20, "from 1 to 2^20"});
  v("attributes", c.attributes, Range<int>{0, 1 << 20, "from 0 to 2^20"});
  v("pool_radius", c.pool_radius, Range<int>{0, 16, "from 0 to 16"});
  v("pool_mode", c.pool_mode);
  v("local_branch", c.local_branch);
  v("local_at", c.local_at);
  v("local_scale", c.local_scale, Range<float>{1e-6f, 1e6f, "from 1e-6 to 1e6"});
  v("dropout", c.dropout, Range<float>{0.f, 0.99f, "from 0 to 0.99"});
}

template <class C, class V>
IfConfig<C, LossWeights> visit_fields(C& c, V&& v) {
  const Range<double> weight{0.0, 1e6, "from 0 to 1e6"};
  v("landmarks", c.landmarks, weight);
  v("visibility", c.visibility, weight);
  v("category", c.category, weight);
  v("attributes", c.attributes, weight);
  v("triplet", c.triplet, weight);
}

template <class C, class V>
IfConfig<C, StageConfig> visit_fields(C& c, V&& v) {
  v("name", c.name, NotEmpty{"empty"});
  v("steps", c.steps, Range<int64_t>{0, INT64_MAX / 4, "0 or positive"});
  v("lr", c.lr, Range<double>{0.0, 1e3, "from 0 to 1000"});
  v("weights", c.weights);
  v("freeze", c.freeze, NoEmptyName{"an empty name (it would freeze every parameter)"});
  v("bn_statistics", c.bn_statistics);
  v("hold_statistics", c.hold_statistics, NoEmptyName{"an empty name (bn_statistics 'frozen' holds every batch norm)"});
  v("lr_mult", c.lr_mult, Multipliers{1e-6, 1e3, "from 1e-6 to 1000 (freeze a module to stop it)"});
}

template <class C, class V>
IfConfig<C, TrainConfig> visit_fields(C& c, V&& v) {
  const Range<int> count{1, 1 << 16, "from 1 to 65536"};
  const Range<int64_t> non_negative{0, INT64_MAX, "0 or positive"};
  v("preset", c.preset);
  v("net", c.net);
  v("batch", c.batch, count);
  v("P", c.P, count);
  v("K", c.K, count);
  v("parts", c.parts, count);
  v("ranks", c.ranks, count);
  v("momentum", c.momentum, Range<double>{0.0, 0.999, "from 0 to 0.999"});
  v("weight_decay", c.weight_decay, Range<double>{0.0, 1.0, "from 0 to 1"});
  v("clip_grad_norm", c.clip_grad_norm, Range<double>{0.0, 1e30, "0 (off) or positive"});
  v("schedule", c.schedule);
  v("step_gamma", c.step_gamma, Range<double>{1e-9, 1.0, "above 0, at most 1"});
  v("step_every", c.step_every, non_negative);
  v("warmup", c.warmup, non_negative);
  v("triplet_margin", c.triplet_margin, Range<float>{0.f, 1e6f, "0 or positive"});
  v("triplet_mining", c.triplet_mining);
  v("label_smoothing", c.label_smoothing, Range<float>{0.f, 0.99f, "from 0 to 0.99"});
  v("checkpoint_every", c.checkpoint_every, non_negative);
  v("validate_every", c.validate_every, Range<int64_t>{0, INT64_MAX, "0 (off) or positive"});
  v("log_every", c.log_every, Range<int64_t>{1, INT64_MAX, "positive"});
  v("seed", c.seed);
  v("bbox_margin", c.bbox_margin, Range<float>{0.f, 1.f, "from 0 to 1"});
  v("crop_scale", c.crop_scale, Range<float>{0.05f, 1.f, "from 0.05 to 1 (1: off)"});
  v("stages", c.stages, NotEmpty{"none (at least one)"});
}

// JSON: every field under its key. Reading keeps the current value of a missing key (a stage read from a list
// starts from StageConfig's defaults), refuses a fraction or an out-of-range number for an integer field
// ("'batch' is 16.7: a whole number expected"), and keeps a choice's unknown name for check_config.

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
// Throws a user error "<where>: invalid configuration: <problem>; <problem>..." when there is any.
void check_config(const TrainConfig& c, const std::string& where);
void check_config(const NetConfig& c, const std::string& where);

// Each VGG16 stage's channel count after the width multiplier (scaled_channels in fashionnet/model/vgg16.h).
std::vector<int> vgg_channels(const NetConfig& c);  // 5 stages

}  // namespace fn::fashionnet
