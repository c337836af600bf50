// The one VGG16 layer list and width rounding (fashionnet/model/vgg16.h): the network's shapes at each preset
// stay what checkpoints hold, and a VGG16 file imported at a width has exactly the shapes of the network at
// that width (the import and the network share the list and the rounding).
#include <string>

#include "core/safetensors.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/model/vgg16.h"
#include "fashionnet/train/vgg16_import.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;
using namespace fn::fashionnet;

namespace {

const Tensor& find(const NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  FN_FAIL("no tensor ", name);
}

// A torchvision-named VGG16 file of zeros with the shapes vgg16_torchvision_shapes gives at `width`.
void write_vgg16_file(const std::string& path, double width, bool with_classifier) {
  NamedTensors t;
  for (const auto& [name, shape] : vgg16_torchvision_shapes(width))
    if (with_classifier || name.rfind("features.", 0) == 0) t.push_back({name, Tensor::zeros(shape)});
  save_safetensors(path, t);
}

}  // namespace

TEST_CASE("vgg16 layers: the list, torchvision's indices and the rounding", "[vgg16]") {
  REQUIRE(kVgg16Layers.size() == 13);
  const int tv[13] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
  int in = 3;
  for (size_t i = 0; i < kVgg16Layers.size(); ++i) {
    const Vgg16Layer& l = kVgg16Layers[i];
    INFO(l.name);
    CHECK(vgg16_torchvision_index(l) == tv[i]);
    CHECK(l.in == in);  // each layer takes the previous one's output
    CHECK(std::string(l.name) == cat("conv", l.stage, "_", std::string(l.name).substr(6)));
    in = l.out;
  }
  CHECK(scaled_channels(64, 1.0) == 64);
  CHECK(scaled_channels(512, 0.25) == 128);
  CHECK(scaled_channels(64, 1.0 / 16) == 4);
  CHECK(scaled_channels(64, 0.05) == 4);  // 3.2: at least 4
  CHECK(scaled_channels(512, 0.05) == 26);
  CHECK(vgg16_channels(kVgg16Layers[0], 0.05).in == 3);
}

TEST_CASE("vgg16 layers: the presets' conv widths are unchanged", "[vgg16]") {
  // What checkpoints of the presets hold (trunk.conv<s>_1.weight's output channels, stage by stage).
  CHECK(vgg_channels(preset("paper").net) == std::vector<int>{64, 128, 256, 512, 512});
  CHECK(vgg_channels(preset("cpu-small").net) == std::vector<int>{16, 32, 64, 128, 128});
  CHECK(vgg_channels(preset("tiny").net) == std::vector<int>{4, 8, 16, 32, 32});
  NetConfig c = preset("tiny").net;
  FashionNet net(c, 1);
  const NamedTensors p = net.named_parameters();
  CHECK(find(p, "trunk.conv1_1.weight").shape() == Shape{4, 3, 3, 3});
  CHECK(find(p, "trunk.conv4_3.weight").shape() == Shape{32, 32, 3, 3});
  CHECK(find(p, "conv5_pose.conv5_1.weight").shape() == Shape{32, 32, 3, 3});
  CHECK(find(p, "fc6_local.weight").shape() == Shape{16, kSlots * 32});
  CHECK(find(p, "landmark_loc.weight").shape() == Shape{2 * kSlots, 16});
}

TEST_CASE("vgg16 layers: an imported file has the network's shapes at every preset's width and at 0.05", "[vgg16][model]") {
  fn::test::TempDir dir("vgg16_layers");
  struct Case {
    std::string name;
    double width;
  };
  for (const Case& k : {Case{"paper", 1.0}, Case{"cpu-small", 0.25}, Case{"tiny", 1.0 / 16}, Case{"width 0.05", 0.05}}) {
    INFO(k.name);
    NetConfig c = k.name == "width 0.05" ? preset("tiny").net : preset(k.name).net;
    c.width = k.width;
    // The input and the fully connected widths change no conv; small ones keep the model small.
    c.input = 32;
    c.fc6_global = c.fc6_pose = c.fc7_pose = c.fc6_local = c.fc7_fusion = 8;
    FashionNet net(c, 1);
    const std::string src = (dir.path / "vgg16.safetensors").string(), out = (dir.path / "init.safetensors").string();
    write_vgg16_file(src, k.width, /*with_classifier=*/false);
    import_vgg16(src, out, nullptr, {k.width, true});
    LoadResult r = load_into(out, net.named_parameters(), {/*allow_missing=*/true, false});  // names and shapes
    CHECK(r.loaded.size() == 32);  // 10 trunk convs + 2 x 3 conv5, weight and bias
    for (const auto& n : r.missing) CHECK(n.rfind("trunk.", 0) != 0);
  }
  // At a small width fc6 too: the network at 224 x 224 with fc6_global = scaled_channels(4096, width) takes
  // the file's classifier.0.
  NetConfig c = preset("tiny").net;
  c.width = 0.05;
  c.input = 224;
  c.fc6_global = scaled_channels(4096, c.width);
  FashionNet net(c, 1);
  const std::string src = (dir.path / "vgg16_fc.safetensors").string(), out = (dir.path / "init_fc.safetensors").string();
  write_vgg16_file(src, c.width, /*with_classifier=*/true);
  import_vgg16(src, out, nullptr, {c.width, true});
  LoadResult r = load_into(out, net.named_parameters(), {/*allow_missing=*/true, false});
  CHECK(r.loaded.size() == 34);
  CHECK(find(net.named_parameters(), "fc6_global.weight").shape() == Shape{205, 26 * 7 * 7});
}
