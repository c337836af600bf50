// ImageNet weights -> FashionNet initial weights, one name table per architecture. See weight_import.h.
#include "fashionnet/train/weight_import.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "fashionnet/model/efficientnet_lite0.h"
#include "fashionnet/model/vgg16.h"
#include "fashionnet/train/vgg16_import.h"

namespace fn {

namespace {

constexpr struct {
  WeightArch arch;
  const char* name;
  const char* signature;    // a tensor every file of the architecture has (its first)
  const char* source_kind;  // whose names the file uses
} kArchs[] = {
    {WeightArch::Vgg16, "vgg16", "features.0.weight", "torchvision-vgg16"},
    {WeightArch::ResNet50, "resnet50", "conv1.weight", "torchvision-resnet50"},
    {WeightArch::EfficientNetLite0, "efficientnet_lite0", "_conv_stem.weight", "efficientnet-lite0"},
};

const auto& arch_row(WeightArch a) {
  for (const auto& r : kArchs)
    if (r.arch == a) return r;
  FN_FAIL("unknown WeightArch ", int(a));
}

// Batch norm's state as PyTorch saves it: parameters, then the running statistics (buffers for us), then a step
// counter we do not keep.
constexpr const char* kBnState[] = {"weight", "bias", "running_mean", "running_var"};
bool is_bn_statistic(const std::string& n) {
  return n.size() > 13 && (n.compare(n.size() - 13, 13, ".running_mean") == 0 || n.compare(n.size() - 12, 12, ".running_var") == 0);
}
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
bool starts_with(const std::string& s, const std::string& head) { return s.rfind(head, 0) == 0; }
// "a torchvision VGG16", "an efficientnet-lite0": the article English wants before a name.
std::string article(const std::string& name) {
  return (!name.empty() && std::string("aeiouAEIOU").find(name[0]) != std::string::npos ? "an " : "a ") + name;
}

void add_bn(NamedShapes& s, const std::string& prefix, int64_t c) {
  for (const char* k : kBnState) s.push_back({cat(prefix, ".", k), {c}});
}

// ---- EfficientNet-Lite0: the stage table and the trunk / branch split of fashionnet/model/efficientnet_lite0.h.
using fashionnet::kLite0Stages;
using fashionnet::kLite0TrunkBlocks;
using fashionnet::Lite0Stage;
constexpr int64_t kLite0Stem = fashionnet::kLite0StemChannels, kLite0Head = fashionnet::kLite0HeadChannels;
constexpr int64_t kImageNetClasses = 1000;

// The package's block parts -> ours.
constexpr struct {
  const char* file;
  const char* ours;
} kLite0Parts[] = {{"_expand_conv", "expand_conv"},       {"_bn0", "expand_bn"},
                   {"_depthwise_conv", "depthwise_conv"}, {"_bn1", "depthwise_bn"},
                   {"_project_conv", "project_conv"},     {"_bn2", "project_bn"}};

NamedShapes lite0_shapes() {
  NamedShapes s;
  s.push_back({"_conv_stem.weight", {kLite0Stem, 3, 3, 3}});
  add_bn(s, "_bn0", kLite0Stem);
  int64_t cin = kLite0Stem;
  int n = 0;
  for (const Lite0Stage& st : kLite0Stages) {
    for (int i = 0; i < st.repeats; ++i, ++n) {
      const int64_t mid = cin * st.expand;
      const std::string b = cat("_blocks.", n, ".");
      if (st.expand != 1) {
        s.push_back({b + "_expand_conv.weight", {mid, cin, 1, 1}});
        add_bn(s, b + "_bn0", mid);
      }
      s.push_back({b + "_depthwise_conv.weight", {mid, 1, st.kernel, st.kernel}});
      add_bn(s, b + "_bn1", mid);
      s.push_back({b + "_project_conv.weight", {st.out, mid, 1, 1}});
      add_bn(s, b + "_bn2", st.out);
      cin = st.out;
    }
  }
  s.push_back({"_conv_head.weight", {kLite0Head, cin, 1, 1}});
  add_bn(s, "_bn1", kLite0Head);
  s.push_back({"_fc.weight", {kImageNetClasses, kLite0Head}});
  s.push_back({"_fc.bias", {kImageNetClasses}});
  return s;
}

// ---- ResNet-50 (torchvision v1.5): (bottleneck width, blocks) per layer; the first block of layers 2..4 has stride 2.
constexpr struct {
  int width, blocks;
} kResNet50Layers[] = {{64, 3}, {128, 4}, {256, 6}, {512, 3}};
constexpr int kResNetExpansion = 4;

int64_t resnet_channels(int c, double width) { return std::max<int64_t>(4, std::llround(c * width)); }

NamedShapes resnet50_shapes(double width) {
  NamedShapes s;
  const int64_t stem = resnet_channels(64, width);
  s.push_back({"conv1.weight", {stem, 3, 7, 7}});
  add_bn(s, "bn1", stem);
  int64_t cin = stem;
  for (int l = 0; l < 4; ++l) {
    const int64_t w = resnet_channels(kResNet50Layers[l].width, width), out = w * kResNetExpansion;
    for (int b = 0; b < kResNet50Layers[l].blocks; ++b) {
      const std::string p = cat("layer", l + 1, ".", b, ".");
      s.push_back({p + "conv1.weight", {w, cin, 1, 1}});
      add_bn(s, p + "bn1", w);
      s.push_back({p + "conv2.weight", {w, w, 3, 3}});
      add_bn(s, p + "bn2", w);
      s.push_back({p + "conv3.weight", {out, w, 1, 1}});
      add_bn(s, p + "bn3", out);
      if (b == 0) {  // the shape changes in every layer's first block (layer1: 64 -> 256 channels)
        s.push_back({p + "downsample.0.weight", {out, cin, 1, 1}});
        add_bn(s, p + "downsample.1", out);
      }
      cin = out;
    }
  }
  s.push_back({"fc.weight", {kImageNetClasses, cin}});
  s.push_back({"fc.bias", {kImageNetClasses}});
  return s;
}

// Not imported: the ImageNet classifier and batch norm's step counter.
bool is_unused(WeightArch a, const std::string& n) {
  if (ends_with(n, ".num_batches_tracked")) return true;
  switch (a) {
    case WeightArch::ResNet50: return n == "fc.weight" || n == "fc.bias";
    case WeightArch::EfficientNetLite0: return n == "_fc.weight" || n == "_fc.bias";
    case WeightArch::Vgg16: return starts_with(n, "classifier.");
  }
  return false;
}

const char* kBranches[] = {"conv5_global.", "conv5_pose."};

// One of the architecture's own tensor names (no prefix) -> our name(s): one in the trunk, two in the branches.
std::vector<std::string> our_names(WeightArch a, const std::string& n) {
  auto trunk_or_branches = [](bool trunk, const std::string& rest) -> std::vector<std::string> {
    if (trunk) return {"trunk." + rest};
    return {kBranches[0] + rest, kBranches[1] + rest};
  };
  if (a == WeightArch::ResNet50) return trunk_or_branches(!starts_with(n, "layer4."), n);
  FN_CHECK(a == WeightArch::EfficientNetLite0, "our_names: ", weight_arch_name(a), " maps in vgg16_import");
  if (n == "_conv_stem.weight") return {"trunk.stem.conv.weight"};
  if (starts_with(n, "_bn0.")) return {"trunk.stem.bn." + n.substr(5)};
  if (n == "_conv_head.weight") return trunk_or_branches(false, "head_conv.weight");
  if (starts_with(n, "_bn1.")) return trunk_or_branches(false, "head_bn." + n.substr(5));
  // _blocks.N.<part>.<kind>
  const size_t dot1 = n.find('.', 8), dot2 = n.find('.', dot1 + 1);
  FN_CHECK(starts_with(n, "_blocks.") && dot1 != std::string::npos && dot2 != std::string::npos, "not a Lite0 name ", n);
  const int block = std::stoi(n.substr(8, dot1 - 8));
  const std::string part = n.substr(dot1 + 1, dot2 - dot1 - 1), kind = n.substr(dot2 + 1);
  for (const auto& p : kLite0Parts)
    if (part == p.file) return trunk_or_branches(block < kLite0TrunkBlocks, cat("blocks.", block, ".", p.ours, ".", kind));
  FN_FAIL("not a Lite0 block part: ", n);
}

std::string some_names(const std::vector<std::string>& names) {
  if (names.empty()) return "the file holds no tensors";
  std::string s = "it holds ";
  for (size_t i = 0; i < names.size() && i < 4; ++i) s += cat(i ? ", " : "", "'", names[i], "'");
  return s + (names.size() > 4 ? ", ..." : "");
}

[[noreturn]] void refuse(const std::string& head, const std::vector<std::string>& problems) {
  std::string msg = head;
  if (problems.size() > 1) msg += cat(problems.size(), " problems: ");
  for (size_t i = 0; i < problems.size() && i < 8; ++i) msg += (i ? "; " : "") + problems[i];
  if (problems.size() > 8) msg += cat(" (and ", problems.size() - 8, " more)");
  FN_USER_FAIL(msg);
}

}  // namespace

const char* weight_arch_name(WeightArch a) { return arch_row(a).name; }

WeightArch parse_weight_arch(const std::string& name) {
  std::string all;
  for (const auto& r : kArchs) {
    if (name == r.name) return r.arch;
    all += cat(all.empty() ? "" : ", ", r.name);
  }
  FN_USER_FAIL("unknown architecture '", name, "' (expected one of: ", all, ")");
}

std::string guess_weight_arch(const std::vector<std::string>& names) {
  std::set<std::string> s;
  for (const auto& n : names) s.insert(starts_with(n, "module.") ? n.substr(7) : n);
  if (s.count("_conv_stem.weight") && s.count("_blocks.0._depthwise_conv.weight")) return "efficientnet_lite0";
  if (s.count("conv1.weight") && s.count("layer1.0.conv1.weight")) return "resnet50";
  if (s.count("features.0.weight")) return "vgg16";
  return "";
}

NamedShapes source_reference_shapes(WeightArch arch, double width) {
  FN_EXPECT(width > 0 && width <= 1, "width multiplier ", width, ": must be in (0, 1]");
  switch (arch) {
    case WeightArch::Vgg16: return vgg16_torchvision_shapes(width);
    case WeightArch::ResNet50: return resnet50_shapes(width);
    case WeightArch::EfficientNetLite0:
      FN_EXPECT(width == 1, "efficientnet_lite0 comes at width 1 only (asked: ", width, ")");
      return lite0_shapes();
  }
  FN_FAIL("unknown WeightArch");
}

NamedShapes imported_reference_shapes(WeightArch arch, double width) {
  NamedShapes out;
  if (arch == WeightArch::Vgg16) {  // the layer list of fashionnet/model/vgg16.h; fc6_global from classifier.0
    for (const auto& l : fashionnet::kVgg16Layers) {
      const fashionnet::Vgg16Channels c = fashionnet::vgg16_channels(l, width);
      for (const std::string& m : l.stage < 5 ? std::vector<std::string>{"trunk."}
                                               : std::vector<std::string>{kBranches[0], kBranches[1]}) {
        out.push_back({cat(m, l.name, ".weight"), {c.out, c.in, 3, 3}});
        out.push_back({cat(m, l.name, ".bias"), {c.out}});
      }
    }
    for (const auto& [n, s] : vgg16_torchvision_shapes(width))
      if (starts_with(n, "classifier.0.")) out.push_back({"fc6_global." + n.substr(13), s});
    return out;
  }
  const NamedShapes src = source_reference_shapes(arch, width);
  std::vector<std::string> names;
  for (const auto& [n, s] : src) names.push_back(n);
  const WeightMapping m = map_weight_names(arch, "(reference)", names);
  std::map<std::string, Shape> by_name(src.begin(), src.end());
  for (const auto& r : m.rows) out.push_back({r.to, by_name.at(r.from)});
  return out;
}

WeightMapping map_weight_names(WeightArch arch, const std::string& file, const std::vector<std::string>& names) {
  FN_CHECK(arch != WeightArch::Vgg16, "map_weight_names: vgg16 maps in vgg16_import (map_vgg16)");
  const auto& row = arch_row(arch);
  std::set<std::string> present(names.begin(), names.end());
  WeightMapping m;
  if (!present.count(row.signature) && present.count(std::string("module.") + row.signature)) m.prefix = "module.";
  if (!present.count(m.prefix + row.signature)) {
    const std::string guess = guess_weight_arch(names);
    FN_USER_FAIL("checkpoint ", file, ": not ", article(row.source_kind), " file: no tensor '", row.signature, "' (",
                 guess.empty() ? some_names(names) : cat("its names are those of --arch ", guess), ")");
  }

  // Every tensor of the architecture must be there (width does not change names), and nothing else.
  std::set<std::string> own;
  std::vector<std::string> problems;
  for (const auto& [n, s] : source_reference_shapes(arch)) {
    own.insert(n);
    if (present.count(m.prefix + n)) continue;
    problems.push_back(is_bn_statistic(n)
                           ? cat("missing tensor '", m.prefix, n, "' (a batch norm running statistic: save the "
                                 "model's state_dict(), which holds the buffers, not only its parameters)")
                           : cat("missing tensor '", m.prefix, n, "'"));
  }
  for (const auto& full : names) {
    const std::string n = starts_with(full, m.prefix) ? full.substr(m.prefix.size()) : full;
    if (is_unused(arch, n)) {
      m.unused.push_back(full);
    } else if (!own.count(n) || !starts_with(full, m.prefix)) {
      problems.push_back(cat("unexpected tensor '", full, "': ", row.name, " has no such tensor"));
    } else {
      const bool buffer = is_bn_statistic(n);
      for (const auto& ours : our_names(arch, n)) m.rows.push_back({full, ours, buffer});
    }
  }
  if (!problems.empty()) refuse(cat("checkpoint ", file, ": not a complete ", row.source_kind, " file: "), problems);
  return m;
}

NamedTensors import_weights(WeightArch arch, const std::string& from, const std::string& out, const NamedShapes& target,
                            std::vector<std::string>* report) {
  auto note = [&](const std::string& line) {
    if (report) report->push_back(line);
  };
  const std::map<std::string, Shape> want(target.begin(), target.end());
  SafetensorsFile f = load_safetensors(from);
  NamedTensors tensors;
  std::vector<std::pair<std::string, std::string>> origin;  // ours -> the file's name, for messages
  std::map<std::string, std::string> meta = {{"format", "fashionnet-init"},
                                             {"source", from},
                                             {"source_format", arch_row(arch).source_kind},
                                             {"arch", weight_arch_name(arch)}};
  if (arch == WeightArch::Vgg16) {
    // The target's conv1_1 gives the width; fc6_global is mapped where the target's has classifier.0's shape.
    Vgg16ImportOptions opt;
    auto it = want.find("trunk.conv1_1.weight");
    if (it != want.end() && !it->second.empty()) opt.width = double(it->second[0]) / fashionnet::kVgg16Layers[0].out;
    auto fc6 = want.find("fc6_global.weight");
    const std::string c0 = (f.has("classifier.0.weight") ? "" : "module.") + std::string("classifier.0.weight");
    opt.map_fc6 = fc6 != want.end() && f.has(c0) && f.shape(c0) == fc6->second;
    tensors = map_vgg16(f, report, opt);
    for (const auto& [n, t] : tensors) origin.push_back({n, ""});  // map_vgg16's report names the sources
    char w[32];
    std::snprintf(w, sizeof w, "%g", opt.width);
    meta["width"] = w;
    meta["fc6_global"] = opt.map_fc6 ? "from classifier.0" : "not included";
  } else {
    const WeightMapping m = map_weight_names(arch, from, f.names);
    std::string last;
    Tensor t;
    for (const auto& r : m.rows) {
      if (r.from != last) {  // a branch tensor's two rows read it once
        t = f.get(r.from);
        if (t.dtype() != DType::F32) t = t.to(DType::F32);
        last = r.from;
      }
      tensors.push_back({r.to, t});
      origin.push_back({r.to, r.from});
      note(cat(r.from, " ", shape_str(t.shape()), " -> ", r.to, r.buffer ? " (buffer)" : ""));
    }
    for (const auto& n : m.unused) note(cat(n, " ", shape_str(f.shape(n)), " not used"));
  }

  // Against the target: every tensor we write must be one of its tensors, with its shape.
  std::vector<std::string> problems;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [ours, t] = tensors[i];
    const std::string what = origin[i].second.empty() ? cat("tensor '", ours, "'")
                                                      : cat("tensor '", origin[i].second, "' (for '", ours, "')");
    auto it = want.find(ours);
    if (it == want.end())
      problems.push_back(cat(what, ": the target model has no tensor '", ours, "'"));
    else if (it->second != t.shape())
      problems.push_back(cat(what, " has shape ", shape_str(t.shape()), ", the target model's is ", shape_str(it->second)));
  }
  if (!problems.empty())
    refuse(cat("checkpoint ", from, ": does not fit the target model (", weight_arch_name(arch), "): "), problems);
  save_safetensors(out, tensors, meta);
  return tensors;
}

}  // namespace fn
