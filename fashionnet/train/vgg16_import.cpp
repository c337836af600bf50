// torchvision VGG16 -> FashionNet initial weights. See vgg16_import.h for the mapping.
#include "fashionnet/train/vgg16_import.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>

namespace fn {
using fashionnet::kVgg16Layers;
using fashionnet::scaled_channels;
using fashionnet::vgg16_channels;
using fashionnet::Vgg16Channels;
using fashionnet::Vgg16Layer;

namespace {

// A torchvision layer's state_dict entries, which are ours too (nn/module.h): its parameters, which the file
// must have, then its buffers (batch norm's running statistics; num_batches_tracked is not kept), mapped
// where the file has them. VGG16's convolutions have no buffers; a network with batch norm maps its running
// statistics with this same loop, and checkpoints and --init files carry them (Module::named_state()).
struct StateEntry {
  const char* kind;
  bool buffer;
};
constexpr StateEntry kLayerState[] = {{"weight", false}, {"bias", false}, {"running_mean", true}, {"running_var", true}};

std::string fmt_width(double w) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", w);
  return buf;
}

}  // namespace

int vgg16_torchvision_index(const Vgg16Layer& layer) {
  int index = 0, stage = 1;
  for (const Vgg16Layer& l : kVgg16Layers) {
    if (l.stage != stage) index += 1, stage = l.stage;  // the previous stage's max pool
    if (std::strcmp(l.name, layer.name) == 0) return index;
    index += 2;  // the conv and its ReLU
  }
  FN_FAIL("not a VGG16 layer: ", layer.name);
}

std::vector<std::pair<std::string, Shape>> vgg16_torchvision_shapes(double width) {
  FN_EXPECT(width > 0 && width <= 1, "VGG16 width multiplier ", width, ": must be in (0, 1]");
  std::vector<std::pair<std::string, Shape>> s;
  for (const Vgg16Layer& l : kVgg16Layers) {
    const Vgg16Channels c = vgg16_channels(l, width);
    const int tv = vgg16_torchvision_index(l);
    s.push_back({cat("features.", tv, ".weight"), {c.out, c.in, 3, 3}});
    s.push_back({cat("features.", tv, ".bias"), {c.out}});
  }
  const int64_t fc = scaled_channels(4096, width), flat = int64_t(scaled_channels(512, width)) * 7 * 7;
  s.push_back({"classifier.0.weight", {fc, flat}});
  s.push_back({"classifier.0.bias", {fc}});
  s.push_back({"classifier.3.weight", {fc, fc}});
  s.push_back({"classifier.3.bias", {fc}});
  s.push_back({"classifier.6.weight", {1000, fc}});
  s.push_back({"classifier.6.bias", {1000}});
  return s;
}

NamedTensors map_vgg16(const SafetensorsFile& tv, std::vector<std::string>* report, const Vgg16ImportOptions& opt) {
  const auto shapes = vgg16_torchvision_shapes(opt.width);
  auto expected_shape = [&](const std::string& n) -> const Shape& {
    for (const auto& [k, s] : shapes)
      if (k == n) return s;
    FN_FAIL("no VGG16 tensor '", n, "'");
  };
  auto note = [&](const std::string& line) {
    if (report) report->push_back(line);
  };

  // A DataParallel checkpoint prefixes every name with "module.".
  std::string prefix;
  if (!tv.has("features.0.weight") && tv.has("module.features.0.weight")) prefix = "module.";

  std::vector<std::string> problems;
  if (!tv.has(prefix + "features.0.weight")) {
    std::string some;
    for (size_t i = 0; i < tv.names.size() && i < 4; ++i) some += cat(i ? ", " : "", "'", tv.names[i], "'");
    FN_USER_FAIL("checkpoint ", tv.path, ": not a torchvision VGG16 file: no tensor 'features.0.weight'",
            tv.names.empty() ? std::string(" (the file holds no tensors)") : cat(" (it holds ", some,
            tv.names.size() > 4 ? ", ..." : "", ")"));
  }
  if (tv.has(prefix + "features.1.running_mean") || tv.has(prefix + "features.1.weight"))
    problems.push_back("it has batch-norm layers (features.1.*): this looks like vgg16_bn; export torchvision.models.vgg16 "
                       "(without batch norm)");

  // Check every tensor we use before reading any data.
  auto check = [&](const std::string& tv_name) -> bool {
    const std::string key = prefix + tv_name;
    const Shape& want = expected_shape(tv_name);
    if (!tv.has(key)) {
      problems.push_back(cat("missing tensor '", key, "' (VGG16 at width ", fmt_width(opt.width), " has ",
                             shape_str(want), ")"));
      return false;
    }
    if (tv.shape(key) != want) {
      problems.push_back(cat("tensor '", key, "' has shape ", shape_str(tv.shape(key)), ", VGG16 at width ",
                             fmt_width(opt.width), " has ", shape_str(want)));
      return false;
    }
    return true;
  };
  for (const Vgg16Layer& l : kVgg16Layers) {
    check(cat("features.", vgg16_torchvision_index(l), ".weight"));
    check(cat("features.", vgg16_torchvision_index(l), ".bias"));
  }
  bool fc6 = false;
  if (opt.map_fc6) {
    bool has_w = tv.has(prefix + "classifier.0.weight"), has_b = tv.has(prefix + "classifier.0.bias");
    if (has_w || has_b) fc6 = check("classifier.0.weight") & check("classifier.0.bias");
  }
  if (!problems.empty()) {
    const Shape& first = tv.shape(prefix + "features.0.weight");
    const int conv1_1 = vgg16_channels(kVgg16Layers[0], opt.width).out;
    if (!first.empty() && first[0] != conv1_1)
      problems.insert(problems.begin(), cat("its conv1_1 has ", first[0], " output channels, VGG16 at width ",
                                            fmt_width(opt.width), " has ", conv1_1,
                                            " (a VGG16 file at width ",
                                            fmt_width(double(first[0]) / kVgg16Layers[0].out), "?)"));
    std::string msg = cat("checkpoint ", tv.path, ": not a torchvision VGG16 file at width ", fmt_width(opt.width), ": ");
    if (problems.size() > 1) msg += cat(problems.size(), " problems: ");
    for (size_t i = 0; i < problems.size() && i < 8; ++i) msg += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) msg += cat(" (and ", problems.size() - 8, " more)");
    FN_USER_FAIL(msg);
  }

  NamedTensors out;
  std::set<std::string> used;
  auto take = [&](const std::string& tv_name) {
    used.insert(prefix + tv_name);
    Tensor t = tv.get(prefix + tv_name);
    if (t.dtype() != DType::F32) t = t.to(DType::F32);
    return t;
  };
  auto emit = [&](const std::string& tv_name, const Tensor& t, const std::string& ours, bool buffer = false) {
    out.push_back({ours, t});
    note(cat(prefix, tv_name, " ", shape_str(t.shape()), " -> ", ours, buffer ? " (buffer)" : ""));
  };
  for (const Vgg16Layer& l : kVgg16Layers) {
    for (const StateEntry& e : kLayerState) {
      const std::string tv_name = cat("features.", vgg16_torchvision_index(l), ".", e.kind);
      if (e.buffer && !tv.has(prefix + tv_name)) continue;
      Tensor t = take(tv_name);
      const char* kind = e.kind;
      if (l.stage < 5) {  // FashionNet's shared trunk, then conv5 once per branch
        emit(tv_name, t, cat("trunk.", l.name, ".", kind), e.buffer);
      } else {
        emit(tv_name, t, cat("conv5_global.", l.name, ".", kind), e.buffer);
        emit(tv_name, t, cat("conv5_pose.", l.name, ".", kind), e.buffer);
      }
    }
  }
  if (fc6) {
    emit("classifier.0.weight", take("classifier.0.weight"), "fc6_global.weight");
    emit("classifier.0.bias", take("classifier.0.bias"), "fc6_global.bias");
  } else {
    note(opt.map_fc6 ? "classifier.0 (fc6) not in the file: fc6_global keeps its random initialisation"
                     : "classifier.0 (fc6) not mapped (--no-fc6): fc6_global keeps its random initialisation");
  }
  for (const auto& n : tv.names)
    if (!used.count(n)) note(cat(n, " ", shape_str(tv.shape(n)), " not used"));
  return out;
}

NamedTensors import_vgg16(const std::string& from, const std::string& out, std::vector<std::string>* report,
                          const Vgg16ImportOptions& opt) {
  SafetensorsFile tv = load_safetensors(from);
  NamedTensors mapped = map_vgg16(tv, report, opt);
  save_safetensors(out, mapped,
                   {{"format", "fashionnet-init"},
                    {"source", from},
                    {"source_format", "torchvision-vgg16"},
                    {"width", fmt_width(opt.width)},
                    {"fc6_global", opt.map_fc6 && !mapped.empty() && mapped.back().first == "fc6_global.bias"
                                       ? "from classifier.0"
                                       : "not included"}});
  return mapped;
}

}  // namespace fn
