// FashionNet's three backbones (fashionnet/model/backbone.h: vgg16, resnet50, efficientnet_lite0) on the CPU:
// output shapes and the trunk's stride at small inputs; the parameter and buffer names the weight import maps
// onto (Lite0: one tensor for each of the package's, both branches holding blocks 11..15 and the head; ResNet-50:
// torchvision's names); a training step on the small configurations (every trainable parameter gets a gradient,
// landmark_pool's sparse path, batch norm statistics moving in training mode and not in eval mode); batch
// independence in eval mode; float64 gradient checks of one MBConv block and one bottleneck; and on a GPU, the
// training forward, losses, running statistics and eval outputs against the CPU.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "core/autograd.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/efficientnet_lite0.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/model/resnet50.h"
#include "fashionnet/train/step.h"
#include "nn/optim.h"
#include "tests/support/check.h"

using namespace fn;
using namespace fn::fashionnet;
using fn::test::gradcheck;

namespace {

// Small fully connected layers on any backbone.
NetConfig small_net(Backbone b, double width, int input) {
  NetConfig c;
  c.backbone = b;
  c.width = width;
  c.input = input;
  c.fc6_global = 24;
  c.fc6_pose = 16;
  c.fc7_pose = 16;
  c.fc6_local = 12;
  c.fc7_fusion = 20;
  c.categories = 5;
  c.attributes = 7;
  c.dropout = 0.f;
  return c;
}
NetConfig resnet_tiny() {
  NetConfig c = preset("resnet-tiny").net;
  c.categories = 5;
  c.attributes = 7;
  return c;
}
// Lite0 at width 1/4 (channels 8 .. 320) and 64x64: the full block list, small.
NetConfig lite0_small() { return small_net(Backbone::EfficientNetLite0, 0.25, 64); }

Tensor random_images(int64_t n, int s, uint64_t seed) {
  Rng rng(seed, 11);
  return Tensor::uniform({n, 3, s, s}, rng, -1.0, 1.0);
}

// A batch with every label the loss knows (as tests/test_fashionnet.cpp's).
BatchTensors labelled_batch(const NetConfig& c, int64_t n, uint64_t seed) {
  BatchTensors b;
  b.n = n;
  b.images = random_images(n, c.input, seed);
  Rng rng(seed, 12);
  b.landmarks = Tensor::uniform({n, kSlots, 2}, rng, 0.0, double(c.input - 1));
  std::vector<float> vis(size_t(n * kSlots));
  for (size_t i = 0; i < vis.size(); ++i) vis[i] = (i % 3 == 2) ? 0.f : 1.f;
  b.visible = Tensor::from(vis, {n, kSlots});
  std::vector<float> lm = b.landmarks.to_vector();
  for (auto& v : lm) v /= float(c.input);
  b.landmarks01 = Tensor::from(lm, {n, 2 * kSlots});
  b.has_landmarks = true;
  for (int64_t i = 0; i < n * kSlots; ++i) b.vis_label.push_back(vis[size_t(i)] > 0.5f ? 0 : 1);
  for (int64_t i = 0; i < n; ++i) {
    b.category.push_back(int(i % c.categories));
    b.item.push_back(int(i / 2));
  }
  std::vector<float> a(size_t(n * c.attributes)), known(a.size(), 1.f);
  for (size_t i = 0; i < a.size(); ++i) a[i] = float((i * 7 + 3) % 5 == 0);
  b.attr = Tensor::from(a, {n, c.attributes});
  b.attr_known = Tensor::from(known, {n, c.attributes});
  return b;
}

LossContext loss_ctx(const NetConfig& c) {
  LossContext ctx;
  ctx.attr_w_pos = Tensor::full({c.attributes}, 2.0);
  ctx.attr_w_neg = Tensor::full({c.attributes}, 0.7);
  return ctx;
}

std::map<std::string, Shape> shapes(const nn::NamedTensors& list) {
  std::map<std::string, Shape> m;
  for (const auto& [name, t] : list) m[name] = t.shape();
  return m;
}
// The names under `prefix` ("trunk."), with the prefix removed.
std::set<std::string> names_under(const nn::NamedTensors& list, const std::string& prefix) {
  std::set<std::string> s;
  for (const auto& [name, t] : list)
    if (name.rfind(prefix, 0) == 0) s.insert(name.substr(prefix.size()));
  return s;
}

// Makes every parameter and buffer of a module float64 in place (the handles the layers hold stay valid).
void to_f64(nn::Module& m) {
  for (auto list : {m.named_parameters(), m.named_buffers()})
    for (auto& [name, t] : list) {
      Tensor d = t.to(DType::F64);
      t.impl()->storage = d.impl()->storage;
      t.impl()->offset = 0;
      t.impl()->dtype = DType::F64;
    }
}

}  // namespace

TEST_CASE("backbones: output shapes and the trunk's map at small inputs", "[backbones]") {
  struct Case {
    const char* what;
    NetConfig cfg;
    int stride, trunk_channels;
  };
  const std::vector<Case> cases = {
      {"vgg16 (tiny)", preset("tiny").net, 8, 32},
      {"resnet50 (resnet-tiny)", resnet_tiny(), 16, 64},  // layer3: 4 * round(256/16)
      {"efficientnet_lite0 (width 1/4)", lite0_small(), 16, 28},  // round(112/4)
  };
  for (const Case& k : cases) {
    DYNAMIC_SECTION(k.what) {
      NoGradGuard ng;
      const NetConfig& c = k.cfg;
      FashionNet net(c, 3);
      CHECK(net.trunk_stride() == k.stride);
      CHECK(net.trunk_channels() == k.trunk_channels);
      const int64_t n = 2;
      BatchTensors b = labelled_batch(c, n, 5);
      Outputs o = net.forward(b.images, PoolAt{b.landmarks, b.visible});  // training mode
      const int64_t m = c.input / k.stride;
      CHECK(o.conv4.shape() == Shape{n, k.trunk_channels, m, m});
      CHECK(o.landmark_loc.shape() == Shape{n, 2 * kSlots});
      CHECK(o.landmark_vis.shape() == Shape{n * kSlots, 2});
      CHECK(o.embedding.shape() == Shape{n, c.fc7_fusion});
      CHECK(o.category.shape() == Shape{n, c.categories});
      CHECK(o.attributes.shape() == Shape{n, c.attributes});
      // fc6_local reads kSlots * the trunk's channels.
      CHECK(shapes(net.named_parameters()).at("fc6_local.weight") == Shape{c.fc6_local, kSlots * k.trunk_channels});
      net.eval();
      Outputs e = net.forward(b.images, PoolAt{});
      CHECK(e.embedding.shape() == Shape{n, c.fc7_fusion});
    }
  }
  // The branches' features: global average pooling gives the last stage's channels.
  NoGradGuard ng;
  CHECK(shapes(FashionNet(resnet_tiny()).named_parameters()).at("fc6_global.weight") == Shape{32, 128});
  CHECK(shapes(FashionNet(lite0_small()).named_parameters()).at("fc6_pose.weight") == Shape{16, 320});
}

TEST_CASE("backbones: EfficientNet-Lite0 holds one tensor for each of the package's, in both branches",
          "[backbones]") {
  NetConfig c = small_net(Backbone::EfficientNetLite0, 1.0, 64);
  FashionNet net(c, 1);
  const nn::NamedTensors state = net.named_state();
  const auto shape = shapes(state);
  // A few names and shapes, as the package's (_conv_stem, _blocks.0._depthwise_conv, ...).
  CHECK(shape.at("trunk.stem.conv.weight") == Shape{32, 3, 3, 3});
  CHECK(shape.at("trunk.stem.bn.running_var") == Shape{32});
  CHECK(shape.at("trunk.blocks.0.depthwise_conv.weight") == Shape{32, 1, 3, 3});
  CHECK(shape.at("trunk.blocks.0.project_conv.weight") == Shape{16, 32, 1, 1});
  CHECK(shape.count("trunk.blocks.0.expand_conv.weight") == 0);  // block 0 has no expansion
  CHECK(shape.at("trunk.blocks.3.depthwise_conv.weight") == Shape{144, 1, 5, 5});
  CHECK(shape.at("trunk.blocks.10.project_bn.running_mean") == Shape{112});
  CHECK(shape.at("conv5_global.blocks.11.expand_conv.weight") == Shape{672, 112, 1, 1});
  CHECK(shape.at("conv5_global.blocks.11.depthwise_conv.weight") == Shape{672, 1, 5, 5});
  CHECK(shape.at("conv5_pose.blocks.15.project_conv.weight") == Shape{320, 1152, 1, 1});
  CHECK(shape.at("conv5_pose.head_conv.weight") == Shape{1280, 320, 1, 1});
  CHECK(shape.at("conv5_global.head_bn.bias") == Shape{1280});
  CHECK(shape.count("trunk.blocks.11.expand_conv.weight") == 0);
  CHECK(shape.count("conv5_global.blocks.10.expand_conv.weight") == 0);
  for (const auto& [name, t] : state) {
    INFO(name);
    CHECK(name.find("_conv.bias") == std::string::npos);  // no conv has a bias: a batch norm follows each
  }

  // The package's state dict without num_batches_tracked and _fc, mapped to our names: every one exists, and
  // the backbone holds nothing else. The package's names: _conv_stem, _bn0, _blocks.N._expand_conv (N > 0),
  // _bn0 (N > 0), _depthwise_conv, _bn1, _project_conv, _bn2, _conv_head, _bn1 (the head's).
  std::vector<std::string> ours;  // the package's tensors in our names, the branch part under "conv5_global."
  const char* bn[] = {"weight", "bias", "running_mean", "running_var"};
  auto conv_bn = [&](const std::string& conv, const std::string& norm) {
    ours.push_back(conv + ".weight");
    for (const char* s : bn) ours.push_back(norm + "." + s);
  };
  conv_bn("trunk.stem.conv", "trunk.stem.bn");
  for (int i = 0; i < kLite0Blocks; ++i) {
    const std::string part = i < kLite0TrunkBlocks ? "trunk" : "conv5_global";
    const std::string p = part + ".blocks." + std::to_string(i);
    if (i > 0) conv_bn(p + ".expand_conv", p + ".expand_bn");
    conv_bn(p + ".depthwise_conv", p + ".depthwise_bn");
    conv_bn(p + ".project_conv", p + ".project_bn");
  }
  conv_bn("conv5_global.head_conv", "conv5_global.head_bn");
  CHECK(ours.size() == 296 - 49 - 2);  // 296 tensors, 49 batch norms' num_batches_tracked, _fc's weight and bias
  std::set<std::string> backbone;
  for (const auto& [name, t] : state)
    if (name.rfind("trunk.", 0) == 0 || name.rfind("conv5_global.", 0) == 0) backbone.insert(name);
  CHECK(backbone == std::set<std::string>(ours.begin(), ours.end()));
  // Both branches hold the same tensors: blocks 11..15 and the head.
  const std::set<std::string> global = names_under(state, "conv5_global."), pose = names_under(state, "conv5_pose.");
  CHECK(global == pose);
  CHECK(global.size() == 5 * 15 + 5);  // five blocks of 3 convs + 3 BNs (5 tensors per conv + BN), the head
  // Buffers: two per batch norm, none trainable.
  int buffers = 0;
  for (const auto& [name, t] : net.named_buffers()) {
    ++buffers;
    CHECK_FALSE(t.requires_grad());
  }
  CHECK(buffers == 2 * (49 + 5 * 3 + 1));  // the package's 49 BNs and the pose branch's copy of 16
}

TEST_CASE("backbones: ResNet-50 has torchvision's names, layer4 in both branches", "[backbones]") {
  NetConfig c = small_net(Backbone::ResNet50, 1.0, 64);
  FashionNet net(c, 1);
  const nn::NamedTensors state = net.named_state();
  const auto shape = shapes(state);
  CHECK(shape.at("trunk.conv1.weight") == Shape{64, 3, 7, 7});
  CHECK(shape.at("trunk.bn1.running_mean") == Shape{64});
  CHECK(shape.at("trunk.layer1.0.conv1.weight") == Shape{64, 64, 1, 1});
  CHECK(shape.at("trunk.layer1.0.downsample.0.weight") == Shape{256, 64, 1, 1});
  CHECK(shape.at("trunk.layer1.0.downsample.1.running_var") == Shape{256});
  CHECK(shape.count("trunk.layer1.1.downsample.0.weight") == 0);
  CHECK(shape.at("trunk.layer2.0.conv2.weight") == Shape{128, 128, 3, 3});
  CHECK(shape.at("trunk.layer3.5.conv3.weight") == Shape{1024, 256, 1, 1});
  CHECK(shape.count("trunk.layer4.0.conv1.weight") == 0);
  CHECK(shape.at("conv5_global.layer4.0.conv2.weight") == Shape{512, 512, 3, 3});
  CHECK(shape.at("conv5_global.layer4.0.downsample.0.weight") == Shape{2048, 1024, 1, 1});
  CHECK(shape.at("conv5_pose.layer4.2.bn3.bias") == Shape{2048});
  CHECK(shape.at("fc6_global.weight") == Shape{24, 2048});
  CHECK(shape.at("fc6_local.weight") == Shape{12, kSlots * 1024});
  // torchvision's resnet50 state dict: 320 tensors = 53 convs, 53 BNs x 5 (num_batches_tracked included), fc's 2.
  const std::set<std::string> trunk = names_under(state, "trunk."), global = names_under(state, "conv5_global."),
                              pose = names_under(state, "conv5_pose.");
  CHECK(trunk.size() + global.size() == 320 - 53 - 2);
  CHECK(global.size() == 50);  // layer4: 10 convs, 10 BNs
  CHECK(global == pose);
  for (const auto& [name, t] : state) {
    INFO(name);
    CHECK(name.find("conv1.bias") == std::string::npos);  // no conv has a bias: a batch norm follows each
    CHECK(name.find("downsample.0.bias") == std::string::npos);
  }
}

TEST_CASE("backbones: a training step on the small configurations", "[backbones]") {
  for (const NetConfig& c : {resnet_tiny(), lite0_small()}) {
    DYNAMIC_SECTION(c.backbone.name()) {
      FashionNet net(c, 41);
      BatchTensors b = labelled_batch(c, 4, 42);
      nn::NamedTensors before;
      for (const auto& [name, t] : net.named_buffers()) before.emplace_back(name, t.clone());
      nn::SgdOptions so;
      so.lr = 1e-3f;
      nn::SGD sgd(net.parameters(), so);
      TrainStep step(net, &sgd, loss_ctx(c));
      // forward_backward's first-step check throws when a trainable parameter got no gradient.
      StepResult r = step.forward_backward(b, LossWeights{}, 0, "stage1");
      CHECK(step.gradients_checked());
      CHECK(std::isfinite(r.total));
      int with_grad = 0;
      for (const auto& [name, p] : net.named_trainable_parameters()) with_grad += p.grad().defined();
      CHECK(with_grad == int(net.named_trainable_parameters().size()));
      // landmark_pool's sparse path: the local branch is recorded before the branches' first op.
      const BackwardStats& st = last_backward_stats();
      CHECK(std::count_if(st.accumulated.begin(), st.accumulated.end(),
                          [](const char* o) { return std::string(o) == "landmark_pool"; }) == 1);
      CHECK(std::count_if(st.dense_fallbacks.begin(), st.dense_fallbacks.end(),
                          [](const char* o) { return std::string(o) == "landmark_pool"; }) == 0);
      step.apply();

      // Training mode moved every running statistic.
      const nn::NamedTensors after = net.named_buffers();
      REQUIRE(after.size() == before.size());
      for (size_t i = 0; i < after.size(); ++i) {
        INFO(after[i].first);
        CHECK(after[i].second.to_vector() != before[i].second.to_vector());
      }
      // Eval mode leaves them alone.
      net.eval();
      {
        NoGradGuard ng;
        net.forward(b.images, PoolAt{});
      }
      const nn::NamedTensors evaluated = net.named_buffers();
      for (size_t i = 0; i < after.size(); ++i) {
        INFO(after[i].first);
        CHECK(evaluated[i].second.to_vector() == after[i].second.to_vector());
      }
    }
  }
}

TEST_CASE("backbones: in eval mode a batch of N equals N batches of 1", "[backbones]") {
  for (const NetConfig& c : {resnet_tiny(), lite0_small()}) {
    DYNAMIC_SECTION(c.backbone.name()) {
      NoGradGuard ng;
      FashionNet net(c, 21);
      const int64_t n = 3;
      Tensor x = random_images(n, c.input, 22);
      net.forward(x, PoolAt{});  // training mode: move the running statistics away from 0 and 1
      net.eval();
      Outputs all = net.forward(x, PoolAt{});
      std::vector<float> emb = all.embedding.to_vector(), loc = all.landmark_loc.to_vector();
      for (int64_t i = 0; i < n; ++i) {
        Outputs one = net.forward(x.slice0(i, i + 1).clone(), PoolAt{});
        auto row = [&](const std::vector<float>& v, int64_t width) {
          return std::vector<double>(v.begin() + i * width, v.begin() + (i + 1) * width);
        };
        INFO("image " << i);
        FN_REQUIRE_CLOSE(one.embedding.to_vector_f64(), row(emb, c.fc7_fusion), 1e-5, 1e-4);
        FN_REQUIRE_CLOSE(one.landmark_loc.to_vector_f64(), row(loc, 2 * kSlots), 1e-5, 1e-4);
      }
    }
  }
}

TEST_CASE("backbones: float64 gradient check of an MBConv block and a bottleneck (training mode)", "[backbones]") {
  Rng rng(7, 3);
  SECTION("MBConv, expand 6, 3x3, stride 1, residual") {
    MBConv block(MBConvSpec{4, 4, 6, 3, 1}, rng);
    REQUIRE(block.spec.residual());
    to_f64(block);
    auto p = shapes(block.named_parameters());
    CHECK(p.at("expand_conv.weight") == Shape{24, 4, 1, 1});
    const auto params = block.named_parameters();
    auto get = [&](const std::string& n) {
      for (const auto& [name, t] : params)
        if (name == n) return t;
      FN_FAIL("no parameter ", n);
    };
    gradcheck([&](const std::vector<Tensor>& v) { return block(v[0]); },
              {fn::test::leaf64({2, 4, 5, 5}, 1), get("expand_conv.weight"), get("depthwise_conv.weight"),
               get("project_bn.weight"), get("depthwise_bn.bias")});
  }
  SECTION("MBConv, expand 6, 5x5, stride 2") {
    MBConv block(MBConvSpec{3, 5, 6, 5, 2}, rng);
    REQUIRE_FALSE(block.spec.residual());
    to_f64(block);
    const auto params = block.named_parameters();
    gradcheck([&](const std::vector<Tensor>& v) { return block(v[0]); },
              {fn::test::leaf64({2, 3, 6, 6}, 2), params[0].second, params[3].second});
  }
  SECTION("Bottleneck with a downsampling shortcut, stride 2") {
    Bottleneck block(BottleneckSpec{6, 3, 2}, rng);
    REQUIRE(block.spec.downsample());
    to_f64(block);
    auto p = block.named_parameters();
    std::map<std::string, Tensor> by_name(p.begin(), p.end());
    gradcheck([&](const std::vector<Tensor>& v) { return block(v[0]); },
              {fn::test::leaf64({2, 6, 6, 6}, 3), by_name.at("conv2.weight"), by_name.at("bn3.weight"),
               by_name.at("downsample.0.weight"), by_name.at("downsample.1.bias")});
  }
  SECTION("Bottleneck with the identity shortcut") {
    Bottleneck block(BottleneckSpec{8, 2, 1}, rng);
    REQUIRE_FALSE(block.spec.downsample());
    to_f64(block);
    auto p = block.named_parameters();
    std::map<std::string, Tensor> by_name(p.begin(), p.end());
    gradcheck([&](const std::vector<Tensor>& v) { return block(v[0]); },
              {fn::test::leaf64({2, 8, 4, 4}, 4), by_name.at("conv1.weight"), by_name.at("bn2.bias")});
  }
}

TEST_CASE("backbones: CUDA matches the CPU: the training forward, its losses and running statistics, then eval (CUDA)",
          "[backbones]") {
  FN_REQUIRE_CUDA();
  // The whole network on the GPU (batch norm, depthwise and strided convolutions, pooling, landmark_pool, the
  // losses, the buffers moved with the model) against the CPU. The gradients are left to the PyTorch parity
  // check (bench/pytorch/parity.py --device cuda): through train-mode batch norm they are ill-conditioned in
  // float32, so their tolerance needs a float64 reference.
  for (const NetConfig& c : {resnet_tiny(), lite0_small()}) {
    DYNAMIC_SECTION(c.backbone.name()) {
      std::map<std::string, std::vector<double>> got[2];
      for (int k = 0; k < 2; ++k) {
        const Device d = k == 0 ? Device::CPU : Device::CUDA;
        FashionNet net(c, 41);
        net.to(d);
        const BatchTensors b = to_device(labelled_batch(c, 4, 42), d);
        LossContext ctx = loss_ctx(c);
        ctx.attr_w_pos = ctx.attr_w_pos.to(d);
        ctx.attr_w_neg = ctx.attr_w_neg.to(d);
        TrainStep step(net, nullptr, ctx);
        const StepResult r = step.forward_backward(b, LossWeights{}, 0, "stage1");
        auto& m = got[k];
        m["train.embedding"] = r.outputs.embedding.to_vector_f64();
        m["train.category"] = r.outputs.category.to_vector_f64();
        m["train.landmark_loc"] = r.outputs.landmark_loc.to_vector_f64();
        for (const auto& [name, v] : r.terms) m["loss." + name] = {v};
        m["loss.total"] = {r.total};
        for (const auto& [name, t] : net.named_buffers()) m["buffer." + name] = t.to_vector_f64();
        net.eval();
        NoGradGuard ng;
        const Outputs e = net.forward(b.images, PoolAt{});
        m["eval.embedding"] = e.embedding.to_vector_f64();
        m["eval.landmark_loc"] = e.landmark_loc.to_vector_f64();
        m["eval.landmark_vis"] = e.landmark_vis.to_vector_f64();
      }
      REQUIRE(got[1].size() == got[0].size());
      for (const auto& [name, want] : got[0]) {
        INFO(name);
        double scale = 0;
        for (double v : want) scale = std::max(scale, std::fabs(v));
        FN_REQUIRE_CLOSE(got[1].at(name), want, 1e-4 * scale + 1e-6, 1e-3);
      }
    }
  }
}
