// torchvision VGG16 -> FashionNet import, on a VGG16-shaped file at 1/8 width with torchvision's names (full
// width is 138 M values, 550 MB: too big for a test). Every tensor is copied bit for bit to the right names,
// conv5 to both branches; wrong shapes, other networks and width mismatches are refused with the file named.
// Where Debian's PyTorch is installed, bench/pytorch/torch_to_safetensors.py converts a .pth the test makes.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "core/safetensors.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/train/vgg16_import.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;

namespace {

namespace fs = std::filesystem;

std::string temp_dir() { return fn::test::process_temp_dir("vgg16"); }

// torchvision.models.vgg16().state_dict() names and shapes, written out independently of the code under test,
// with every channel count divided by `div` (the 3 input channels and the 1000 classes stay).
NamedTensors torchvision_vgg16(int64_t div, uint64_t seed = 1) {
  const int idx[13] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
  const int64_t out[13] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
  NamedTensors t;
  Rng rng(seed, 0);
  int64_t in = 3;
  for (int i = 0; i < 13; ++i) {
    int64_t o = out[i] / div;
    t.push_back({cat("features.", idx[i], ".weight"), Tensor::randn({o, in, 3, 3}, rng, 0.1)});
    t.push_back({cat("features.", idx[i], ".bias"), Tensor::randn({o}, rng, 0.1)});
    in = o;
  }
  const int64_t fc = 4096 / div;
  t.push_back({"classifier.0.weight", Tensor::randn({fc, 512 / div * 7 * 7}, rng, 0.01)});
  t.push_back({"classifier.0.bias", Tensor::randn({fc}, rng, 0.01)});
  t.push_back({"classifier.3.weight", Tensor::randn({fc, fc}, rng, 0.01)});
  t.push_back({"classifier.3.bias", Tensor::randn({fc}, rng, 0.01)});
  t.push_back({"classifier.6.weight", Tensor::randn({1000, fc}, rng, 0.01)});
  t.push_back({"classifier.6.bias", Tensor::randn({1000}, rng, 0.01)});
  return t;
}

const Tensor& find(const NamedTensors& ts, const std::string& name) {
  for (const auto& [n, t] : ts)
    if (n == name) return t;
  FN_FAIL("no tensor ", name);
}

bool bits_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
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

const char* kConvs[13] = {"conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                          "conv4_1", "conv4_2", "conv4_3", "conv5_1", "conv5_2", "conv5_3"};
const int kIdx[13] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};

}  // namespace

TEST_CASE("vgg16 import: every torchvision tensor lands on our names, conv5 in both branches", "[vgg16]") {
  NamedTensors tv = torchvision_vgg16(8);
  const std::string src = temp_dir() + "/vgg16_w8.safetensors", out = temp_dir() + "/init.safetensors";
  save_safetensors(src, tv);
  // The library's description of the shapes agrees with the one written out above.
  auto shapes = vgg16_torchvision_shapes(0.125);
  REQUIRE(shapes.size() == tv.size());
  for (size_t i = 0; i < tv.size(); ++i) {
    CHECK(shapes[i].first == tv[i].first);
    CHECK(shapes[i].second == tv[i].second.shape());
  }

  std::vector<std::string> report;
  NamedTensors mapped = import_vgg16(src, out, &report, {0.125, true});
  REQUIRE(mapped.size() == 20 + 6 + 6 + 2);
  SafetensorsFile f = load_safetensors(out);
  CHECK(f.metadata.at("format") == "fashionnet-init");
  CHECK(f.metadata.at("source") == src);
  CHECK(f.metadata.at("width") == "0.125");
  std::set<std::string> names(f.names.begin(), f.names.end());
  CHECK(names.size() == 34);
  for (int i = 0; i < 13; ++i) {
    for (const char* kind : {"weight", "bias"}) {
      const Tensor& want = find(tv, cat("features.", kIdx[i], ".", kind));
      std::vector<std::string> ours;
      if (i < 10) ours = {cat("trunk.", kConvs[i], ".", kind)};
      else ours = {cat("conv5_global.", kConvs[i], ".", kind), cat("conv5_pose.", kConvs[i], ".", kind)};
      for (const auto& n : ours) {
        INFO(n);
        REQUIRE(f.has(n));
        CHECK(bits_equal(f.get(n), want));
      }
    }
  }
  CHECK(bits_equal(f.get("fc6_global.weight"), find(tv, "classifier.0.weight")));
  CHECK(bits_equal(f.get("fc6_global.bias"), find(tv, "classifier.0.bias")));
  CHECK(!f.has("fc7_global.weight"));
  // The report says what was mapped and what was not used.
  auto mentions = [&](const std::string& s) {
    for (const auto& l : report)
      if (l.find(s) != std::string::npos) return true;
    return false;
  };
  CHECK(mentions("features.24.weight [64,64,3,3] -> conv5_pose.conv5_1.weight"));
  CHECK(mentions("classifier.6.weight [1000,512] not used"));

  // The trainer loads it with missing tensors allowed: the covered layers take the weights, the rest keep theirs.
  NamedTensors model;
  for (const auto& [n, t] : mapped) model.push_back({n, Tensor::zeros(t.shape())});
  model.push_back({"fc6_pose.weight", Tensor::full({128, 64 * 9}, 0.25)});
  model.push_back({"category.bias", Tensor::full({50}, 0.5)});
  LoadResult r = load_into(out, model, {/*allow_missing=*/true, false});
  CHECK(r.loaded.size() == 34);
  CHECK(r.missing == std::vector<std::string>{"fc6_pose.weight", "category.bias"});
  CHECK(bits_equal(find(model, "trunk.conv3_2.weight"), find(tv, "features.12.weight")));
  CHECK(find(model, "fc6_pose.weight").to_vector()[7] == 0.25f);

  // Without fc6 (any preset whose fc6_global is not 4096 x 25088).
  mapped = import_vgg16(src, out, &report, {0.125, false});
  CHECK(mapped.size() == 32);
  CHECK(!load_safetensors(out).has("fc6_global.weight"));
}

TEST_CASE("vgg16 import: the init file loads into the real model (cpu-small widths, 1/4)", "[vgg16][model]") {
  fashionnet::TrainConfig cfg = fashionnet::preset("cpu-small");
  REQUIRE(cfg.net.width == 0.25);
  cfg.net.input = 64;  // the input size changes no tensor this test loads; small keeps the model small
  fashionnet::FashionNet model(cfg.net, 1);
  const NamedTensors params = model.named_parameters();
  NamedTensors tv = torchvision_vgg16(4, 6);
  const std::string src = temp_dir() + "/vgg16_w4.safetensors", out = temp_dir() + "/init_w4.safetensors";
  save_safetensors(src, tv);
  // fc6_global at this preset is not VGG16's fc6 (a smaller input, a smaller pool5): --no-fc6.
  import_vgg16(src, out, nullptr, {0.25, false});
  LoadResult r = load_into(out, params, {/*allow_missing=*/true, false});  // every name and shape must match
  CHECK(r.loaded.size() == 32);
  for (const auto& n : r.missing) CHECK(n.rfind("trunk.", 0) != 0);  // the whole trunk is covered
  CHECK(bits_equal(find(params, "trunk.conv1_1.weight"), find(tv, "features.0.weight")));
  CHECK(bits_equal(find(params, "conv5_pose.conv5_3.bias"), find(tv, "features.28.bias")));
  CHECK(bits_equal(find(params, "conv5_global.conv5_3.bias"), find(tv, "features.28.bias")));
  // With fc6 mapped, the shape check names the mismatch the docs describe.
  import_vgg16(src, out, nullptr, {0.25, true});
  require_refused_with([&] { load_into(out, params, {true, false}); },
                       {"checkpoint " + out, "tensor 'fc6_global.weight' has shape [1024,6272], the model expects"});
}

TEST_CASE("vgg16 import: a features-only file, a DataParallel prefix and F64 tensors are accepted", "[vgg16]") {
  NamedTensors tv = torchvision_vgg16(8, 2), prefixed;
  for (auto& [n, t] : tv)
    if (n.rfind("features.", 0) == 0) prefixed.push_back({"module." + n, t.to(DType::F64)});
  const std::string src = temp_dir() + "/module.safetensors";
  save_safetensors(src, prefixed);
  std::vector<std::string> report;
  NamedTensors mapped = map_vgg16(load_safetensors(src), &report, {0.125, true});
  CHECK(mapped.size() == 32);  // no classifier.0 in the file: fc6_global keeps its random initialisation
  const Tensor& w = find(mapped, "trunk.conv1_1.weight");
  CHECK(w.dtype() == DType::F32);
  CHECK(bits_equal(w, find(tv, "features.0.weight")));  // F32 -> F64 -> F32 is exact
  bool noted = false;
  for (const auto& l : report) noted |= l.find("fc6_global keeps its random") != std::string::npos;
  CHECK(noted);
}

TEST_CASE("vgg16 import: wrong shapes and other networks are refused, naming the file", "[vgg16][errors]") {
  const std::string d = temp_dir();
  // One conv with the wrong shape, and one missing.
  NamedTensors tv = torchvision_vgg16(8, 3);
  for (auto& [n, t] : tv)
    if (n == "features.10.weight") t = Tensor::zeros({32, 16, 5, 5});
  tv.erase(tv.begin() + 1);  // features.0.bias
  save_safetensors(d + "/bad.safetensors", tv);
  require_refused_with([&] { map_vgg16(load_safetensors(d + "/bad.safetensors"), nullptr, {0.125, true}); },
                       {"checkpoint " + d + "/bad.safetensors", "not a torchvision VGG16 file", "2 problems",
                        "tensor 'features.10.weight' has shape [32,16,5,5], VGG16 at width 0.125 has [32,16,3,3]",
                        "missing tensor 'features.0.bias'"});
  // A wrong fc6 shape is refused when fc6 is mapped, and ignored with --no-fc6.
  tv = torchvision_vgg16(8, 4);
  for (auto& [n, t] : tv)
    if (n == "classifier.0.weight") t = Tensor::zeros({512, 100});
  save_safetensors(d + "/bad_fc6.safetensors", tv);
  require_refused_with([&] { map_vgg16(load_safetensors(d + "/bad_fc6.safetensors"), nullptr, {0.125, true}); },
                       {"tensor 'classifier.0.weight' has shape [512,100]"});
  CHECK(map_vgg16(load_safetensors(d + "/bad_fc6.safetensors"), nullptr, {0.125, false}).size() == 32);
  // The right network at another width: full-width expectations against the 1/8 file.
  save_safetensors(d + "/w8.safetensors", torchvision_vgg16(8, 5));
  require_refused_with([&] { map_vgg16(load_safetensors(d + "/w8.safetensors")); },
                       {"VGG16 at width 1 has [64,3,3,3]", "(and "});
  // Another network altogether.
  save_safetensors(d + "/resnet.safetensors", {{"conv1.weight", Tensor::zeros({8, 3, 7, 7})}, {"fc.bias", Tensor::zeros({10})}});
  require_refused_with([&] { import_vgg16(d + "/resnet.safetensors", d + "/never.safetensors"); },
                       {"checkpoint " + d + "/resnet.safetensors", "not a torchvision VGG16 file",
                        "no tensor 'features.0.weight'", "'conv1.weight'"});
  CHECK(!fs::exists(d + "/never.safetensors"));
  // vgg16_bn: batch-norm layers between the convs.
  save_safetensors(d + "/bn.safetensors", {{"features.0.weight", Tensor::zeros({8, 3, 3, 3})},
                                           {"features.1.weight", Tensor::zeros({8})},
                                           {"features.1.running_mean", Tensor::zeros({8})}});
  require_refused_with([&] { map_vgg16(load_safetensors(d + "/bn.safetensors"), nullptr, {0.125, true}); },
                       {"looks like vgg16_bn"});
}

TEST_CASE("vgg16 import: the PyTorch conversion script's output imports", "[vgg16][torch]") {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    std::printf("SKIPPED: /usr/bin/python3 with torch not found (apt-get install python3-torch)\n");
    return;
  }
  const std::string d = temp_dir(), script = std::string(FN_SOURCE_DIR) + "/bench/pytorch/torch_to_safetensors.py";
  // A torchvision-shaped state_dict at 1/8 width saved with torch.save, as the download would be at full width.
  const std::string make =
      "import torch\n"
      "g = torch.Generator().manual_seed(0)\n"
      "sd, cin = {}, 3\n"
      "for i, c in zip([0,2,5,7,10,12,14,17,19,21,24,26,28], [64,64,128,128,256,256,256,512,512,512,512,512,512]):\n"
      "    c //= 8\n"
      "    sd[f'features.{i}.weight'] = torch.randn(c, cin, 3, 3, generator=g); sd[f'features.{i}.bias'] = torch.randn(c, generator=g); cin = c\n"
      "sd['classifier.0.weight'] = torch.randn(512, 64 * 49, generator=g); sd['classifier.0.bias'] = torch.randn(512, generator=g)\n"
      "sd['classifier.3.weight'] = torch.randn(512, 512, generator=g); sd['classifier.3.bias'] = torch.randn(512, generator=g)\n"
      "sd['classifier.6.weight'] = torch.randn(1000, 512, generator=g); sd['classifier.6.bias'] = torch.randn(1000, generator=g)\n"
      "torch.save(sd, '" + d + "/vgg16_w8.pth')\n";
  {
    std::FILE* f = std::fopen((d + "/make.py").c_str(), "w");
    std::fputs(make.c_str(), f);
    std::fclose(f);
  }
  REQUIRE(std::system(("/usr/bin/python3 " + d + "/make.py").c_str()) == 0);
  REQUIRE(std::system(("/usr/bin/python3 " + script + " " + d + "/vgg16_w8.pth " + d + "/from_torch.safetensors").c_str()) == 0);
  SafetensorsFile f = load_safetensors(d + "/from_torch.safetensors");
  CHECK(f.names.size() == 32);
  CHECK(f.metadata.at("format") == "torchvision-vgg16");
  NamedTensors mapped = import_vgg16(d + "/from_torch.safetensors", d + "/init.safetensors", nullptr, {0.125, true});
  CHECK(mapped.size() == 34);
  // torch reads our init file with the reader of docs/checkpoint.md, and finds torchvision's values under our names.
  const std::string check =
      "import json, struct, numpy as np, torch\n"
      "def load(path):\n"
      "    with open(path, 'rb') as f:\n"
      "        n = struct.unpack('<Q', f.read(8))[0]; header = json.loads(f.read(n)); data = f.read()\n"
      "    meta = header.pop('__metadata__', {})\n"
      "    dt = {'F32': np.float32, 'F64': np.float64}\n"
      "    return meta, {k: torch.from_numpy(np.frombuffer(data, dt[v['dtype']], (v['data_offsets'][1] - v['data_offsets'][0]) // np.dtype(dt[v['dtype']]).itemsize, v['data_offsets'][0]).reshape(v['shape']).copy()) for k, v in header.items()}\n"
      "meta, ours = load('" + d + "/init.safetensors')\n"
      "assert meta['format'] == 'fashionnet-init', meta\n"
      "sd = torch.load('" + d + "/vgg16_w8.pth')\n"
      "names = ['1_1','1_2','2_1','2_2','3_1','3_2','3_3','4_1','4_2','4_3','5_1','5_2','5_3']\n"
      "for i, n in zip([0,2,5,7,10,12,14,17,19,21,24,26,28], names):\n"
      "    for kind in ['weight', 'bias']:\n"
      "        targets = ['trunk.conv' + n] if i < 24 else ['conv5_global.conv' + n, 'conv5_pose.conv' + n]\n"
      "        for t in targets: assert torch.equal(ours[t + '.' + kind], sd[f'features.{i}.{kind}']), t\n"
      "assert torch.equal(ours['fc6_global.weight'], sd['classifier.0.weight'])\n"
      "assert len(ours) == 34\n"
      "print('torch reads the init file: OK')\n";
  {
    std::FILE* cf = std::fopen((d + "/check.py").c_str(), "w");
    std::fputs(check.c_str(), cf);
    std::fclose(cf);
  }
  CHECK(std::system(("/usr/bin/python3 " + d + "/check.py").c_str()) == 0);
}
