// The FashionNet graph on the CPU: output shapes for several configurations, where landmark_pool looks in
// training (ground truth) and in evaluation (the model's own prediction), batch independence in evaluation,
// one SGD step lowering the loss, a training step taking landmark_pool's sparse accumulate path, a training
// step skipping the pose branch where no term reads it, and a tiny net overfitting one fixed batch of 16
// synthetic photos.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "core/autograd.h"
#include "data/loader.h"
#include "data/synth.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/model/losses.h"
#include "fashionnet/train/step.h"
#include "nn/optim.h"
#include "tests/support/check.h"

using namespace fn;
using namespace fn::fashionnet;
namespace fs = std::filesystem;

namespace {

NetConfig tiny_net() { return preset("tiny").net; }

// A small configuration: 64x64 input, every width 1/8, small fully connected layers.
NetConfig small_net(bool local, const std::string& pool_mode) {
  NetConfig c;
  c.width = 1.0 / 8;
  c.input = 64;
  c.fc6_global = 24;
  c.fc6_pose = 16;
  c.fc7_pose = 16;
  c.fc6_local = 12;
  c.fc7_fusion = 20;
  c.categories = 5;
  c.attributes = 7;
  c.local_branch = local;
  c.pool_mode = pool_mode;
  return c;
}

Tensor random_images(int64_t n, int s, uint64_t seed) {
  Rng rng(seed, 11);
  return Tensor::uniform({n, 3, s, s}, rng, -1.0, 1.0);
}

// Landmarks spread over the input, with some slots invisible so both pool modes matter.
PoolAt random_pool_at(int64_t n, int s, uint64_t seed) {
  Rng rng(seed, 12);
  PoolAt at;
  at.landmarks = Tensor::uniform({n, kSlots, 2}, rng, 0.0, double(s - 1));
  std::vector<float> vis(size_t(n * kSlots));
  for (size_t i = 0; i < vis.size(); ++i) vis[i] = (i % 3 == 2) ? 0.f : 1.f;
  at.visibility = Tensor::from(vis, {n, kSlots});
  return at;
}

bool same_values(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && a.to_vector() == b.to_vector(); }

void check_shapes(const NetConfig& c, int64_t n) {
  NoGradGuard ng;
  FashionNet net(c, 3);
  Outputs o = net.forward(random_images(n, c.input, 1), random_pool_at(n, c.input, 2), 0);  // training mode
  const int64_t m = c.input / net.trunk_stride();
  CHECK(o.conv4.shape() == Shape{n, net.trunk_channels(), m, m});  // the trunk's map, landmark pooling's input
  if (c.backbone == Backbone::Vgg16) {
    auto ch = vgg_channels(c);
    CHECK(o.conv4.shape() == Shape{n, ch[3], c.input / 8, c.input / 8});  // conv4_3
  } else {
    CHECK(net.trunk_stride() == 16);
  }
  CHECK(o.landmark_loc.shape() == Shape{n, 2 * kSlots});
  CHECK(o.landmark_vis.shape() == Shape{n * kSlots, 2});
  CHECK(o.embedding.shape() == Shape{n, c.fc7_fusion});
  CHECK(o.category.shape() == Shape{n, c.categories});
  if (c.attributes > 0) {
    REQUIRE(o.attributes.defined());
    CHECK(o.attributes.shape() == Shape{n, c.attributes});
  } else {
    CHECK_FALSE(o.attributes.defined());
  }
  // The same in evaluation, pooling at the predicted landmarks.
  net.eval();
  Outputs e = net.forward(random_images(n, c.input, 1), PoolAt{});
  CHECK(e.embedding.shape() == Shape{n, c.fc7_fusion});
  // The local branch exists exactly when configured.
  bool has_local = false;
  for (auto& [name, t] : net.named_parameters()) has_local |= name.rfind("fc6_local.", 0) == 0;
  CHECK(has_local == c.local_branch);
}

}  // namespace

TEST_CASE("FashionNet output shapes: tiny preset, a 64x64 width-1/8 net, and the other backbones", "[fashionnet]") {
  SECTION("tiny") { check_shapes(tiny_net(), 3); }
  SECTION("tiny without attributes") {
    NetConfig c = tiny_net();
    c.attributes = 0;
    check_shapes(c, 2);
  }
  for (bool local : {true, false})
    for (std::string mode : {"corner", "zero"}) {
      DYNAMIC_SECTION("input 64, width 1/8, local " << local << ", pool " << mode) {
        check_shapes(small_net(local, mode), 2);
      }
    }
  // The same graph on the other backbones (tests/test_backbones.cpp tests them further).
  SECTION("resnet-tiny") { check_shapes(preset("resnet-tiny").net, 2); }
  for (bool local : {true, false})
    DYNAMIC_SECTION("efficientnet_lite0 at width 1/4, input 64, local " << local) {
      NetConfig c = small_net(local, "corner");
      c.backbone = Backbone::EfficientNetLite0;
      c.width = 0.25;
      check_shapes(c, 2);
    }
}

TEST_CASE("dead_fraction counts the units that are zero for every image, and forward exposes fc6 activations",
          "[fashionnet]") {
  // Columns 1 and 3 are zero in every row; column 0 is zero in one row only (alive).
  Tensor act = Tensor::from(std::vector<float>{0, 0, 2, 0, 1, 0, 0, 0, 3, 0, 5, 0}, {3, 4});
  CHECK(dead_fraction(act) == 0.5);
  CHECK(dead_fraction(Tensor::zeros({2, 5})) == 1.0);
  CHECK_THROWS_AS(dead_fraction(Tensor::zeros({5})), Error);
  for (bool local : {true, false}) {
    NetConfig c = small_net(local, "corner");
    FashionNet net(c, 3);
    Rng rng(4);
    net.eval();
    Outputs o = net.forward(Tensor::randn({2, 3, c.input, c.input}, rng), PoolAt{});
    REQUIRE(o.fc6_global_act.shape() == Shape({2, c.fc6_global}));
    for (float v : o.fc6_global_act.to_vector()) CHECK(v >= 0.f);  // after the ReLU
    CHECK(o.fc6_local_act.defined() == local);
    if (local) CHECK(o.fc6_local_act.shape() == Shape({2, c.fc6_local}));
  }
}

TEST_CASE("FashionNet refuses a bad configuration or input", "[fashionnet]") {
  NetConfig c = tiny_net();
  c.input = 36;
  CHECK_THROWS_WITH(FashionNet(c), Catch::Contains("multiple of 8"));
  c = tiny_net();
  c.pool_mode = "middle";
  CHECK_THROWS_WITH(FashionNet(c), Catch::Contains("pool_mode"));
  c = tiny_net();
  c.fc7_fusion = 0;
  c.dropout = 1.f;  // every problem is named, not only the first
  CHECK_THROWS_WITH(FashionNet(c), Catch::Contains("fc7_fusion 0: from 1 to 65536") && Catch::Contains("dropout 1"));
  FashionNet net(tiny_net());
  NoGradGuard ng;
  net.eval();
  CHECK_THROWS_WITH(net.forward(random_images(1, 40, 1), PoolAt{}), Catch::Contains("expects images"));
}

TEST_CASE("Training pools at the given landmarks, evaluation at the predicted ones", "[fashionnet]") {
  NoGradGuard ng;
  NetConfig c = small_net(true, "corner");
  c.dropout = 0.f;  // training mode without dropout: only the pooling positions differ
  FashionNet net(c, 5);
  Tensor x = random_images(2, c.input, 7);
  PoolAt a = random_pool_at(2, c.input, 8), b = random_pool_at(2, c.input, 9);

  // Training: the ground-truth landmarks decide what fc6_local sees.
  Tensor ea = net.forward(x, a).embedding, eb = net.forward(x, b).embedding;  // training mode
  CHECK_FALSE(same_values(ea, eb));

  // Evaluation with no landmarks given pools exactly where the model predicts them.
  net.eval();
  Outputs e = net.forward(x, PoolAt{});
  PoolAt predicted = net.predicted_pool_at(e);
  CHECK(predicted.landmarks.shape() == Shape{2, kSlots, 2});
  CHECK(predicted.visibility.shape() == Shape{2, kSlots});
  CHECK(same_values(e.embedding, net.forward(x, predicted).embedding));
  CHECK_FALSE(same_values(e.embedding, net.forward(x, a).embedding));
  // ... and repeated evaluation is deterministic.
  CHECK(same_values(e.embedding, net.forward(x, PoolAt{}).embedding));

  // Without the local branch the landmarks play no part in the embedding.
  NetConfig g = c;
  g.local_branch = false;
  FashionNet global(g, 5);
  CHECK(same_values(global.forward(x, a).embedding, global.forward(x, b).embedding));  // training mode
}

TEST_CASE("net.local_at = layout: the local branch pools at the fixed garment layout in training and evaluation",
          "[fashionnet]") {
  // The layout is symmetric: a slot's mirror slot sits at 1 - x, the same y (so --mirror pools the same points).
  for (int k = 0; k < kSlots; ++k) {
    CHECK(kGarmentLayout[data::mirror_slot(k)][0] == Approx(1.0 - kGarmentLayout[k][0]).epsilon(1e-6));
    CHECK(kGarmentLayout[data::mirror_slot(k)][1] == kGarmentLayout[k][1]);
  }
  NoGradGuard ng;
  NetConfig c = small_net(true, "zero");
  c.dropout = 0.f;
  c.local_at = LocalAt::Layout;
  FashionNet net(c, 5);
  Tensor x = random_images(2, c.input, 7);
  PoolAt a = random_pool_at(2, c.input, 8);
  PoolAt none = a;  // what an ImageFolder batch gives: no slot visible
  none.visibility = Tensor::zeros({2, kSlots});

  // Training ignores the given positions, even where none is visible; fc6_local sees the trunk's map.
  Outputs t = net.forward(x, none);
  CHECK(same_values(t.embedding, net.forward(x, a).embedding));
  CHECK(dead_fraction(t.fc6_local_act) < 1.0);
  // It is landmark_pool at layout_pool_at: the paper's rule given those positions gives the same embedding.
  NetConfig p = c;
  p.local_at = LocalAt::Landmarks;
  FashionNet paper(p, 5);
  PoolAt layout = net.layout_pool_at(2, Device::CPU);
  CHECK(layout.landmarks.to_vector()[0] == Approx(kGarmentLayout[0][0] * (c.input - 1)));
  CHECK(same_values(t.embedding, paper.forward(x, layout).embedding));
  // With the paper's rule the same batch pools nothing: every fc6_local unit is its bias after the ReLU.
  CHECK_FALSE(same_values(t.embedding, paper.forward(x, none).embedding));

  // Evaluation pools at the same layout, not at the untrained predictions.
  net.eval();
  paper.eval();
  Outputs e = net.forward(x, PoolAt{});
  CHECK(same_values(e.embedding, t.embedding));  // no dropout: the modes differ only in where they pool
  CHECK(same_values(e.embedding, paper.forward(x, layout).embedding));
  CHECK_FALSE(same_values(e.embedding, paper.forward(x, PoolAt{}).embedding));

  // net.local_scale s multiplies the pooled features: the same as fc6_local's weight times s.
  NetConfig sc = c;
  sc.local_scale = 0.25f;
  FashionNet scaled(sc, 5);  // the same seed: the same weights
  scaled.eval();
  CHECK_FALSE(same_values(scaled.forward(x, PoolAt{}).embedding, e.embedding));
  for (auto& [name, t] : net.named_parameters())
    if (name == "fc6_local.weight") {
      std::vector<float> w = t.to_vector();
      for (float& v : w) v *= 0.25f;  // a power of 2: exact
      t.copy_from(Tensor::from(w, t.shape()));
    }
  const std::vector<double> by_scale = scaled.forward(x, PoolAt{}).embedding.to_vector_f64();
  FN_REQUIRE_CLOSE(by_scale, net.forward(x, PoolAt{}).embedding.to_vector_f64(), 1e-6, 1e-5);
}

TEST_CASE("net.local_at = absent: training and evaluation pool at no slot, as training without landmarks does",
          "[fashionnet]") {
  NoGradGuard ng;
  for (std::string mode : {"corner", "zero"}) {
    NetConfig c = small_net(true, mode);
    c.dropout = 0.f;
    c.local_at = LocalAt::Absent;
    NetConfig p = c;
    p.local_at = LocalAt::Landmarks;
    FashionNet net(c, 5), paper(p, 5);  // the same seed: the same weights
    Tensor x = random_images(2, c.input, 7);
    PoolAt a = random_pool_at(2, c.input, 8);
    PoolAt none = net.fixed_pool_at(2, Device::CPU);
    CHECK(none.visibility.to_vector() == std::vector<float>(2 * kSlots, 0.f));
    // Training ignores the given positions: it is the paper's rule on images without landmarks.
    Outputs t = net.forward(x, a);
    CHECK(same_values(t.embedding, paper.forward(x, none).embedding));
    CHECK_FALSE(same_values(t.embedding, paper.forward(x, a).embedding));
    // Evaluation pools at no slot too, not at the (untrained) prediction as the paper's rule would.
    net.eval();
    paper.eval();
    CHECK(same_values(net.forward(x, PoolAt{}).embedding, t.embedding));
    CHECK_FALSE(same_values(paper.forward(x, PoolAt{}).embedding, t.embedding));
  }
  NetConfig layout = small_net(true, "zero");
  layout.local_at = LocalAt::Layout;
  CHECK(same_values(FashionNet(layout, 5).fixed_pool_at(2, Device::CPU).landmarks,
                    FashionNet(layout, 5).layout_pool_at(2, Device::CPU).landmarks));
  CHECK_FALSE(FashionNet(small_net(true, "zero"), 5).fixed_pool_at(2, Device::CPU).landmarks.defined());
}

TEST_CASE("In evaluation a batch of N equals N batches of 1", "[fashionnet]") {
  NoGradGuard ng;
  for (bool local : {true, false}) {
    NetConfig c = small_net(local, "zero");
    c.dropout = 0.5f;  // must be off in evaluation
    FashionNet net(c, 21);
    const int64_t n = 4;
    Tensor x = random_images(n, c.input, 22);
    net.eval();
    Outputs all = net.forward(x, PoolAt{});
    std::vector<float> emb = all.embedding.to_vector(), cat = all.category.to_vector(), loc = all.landmark_loc.to_vector();
    for (int64_t i = 0; i < n; ++i) {
      Outputs one = net.forward(x.slice0(i, i + 1).clone(), PoolAt{});
      auto row = [&](const std::vector<float>& v, int64_t width) {
        return std::vector<double>(v.begin() + i * width, v.begin() + (i + 1) * width);
      };
      INFO("local " << local << ", image " << i);
      FN_REQUIRE_CLOSE(one.embedding.to_vector_f64(), row(emb, c.fc7_fusion), 1e-5, 1e-4);
      FN_REQUIRE_CLOSE(one.category.to_vector_f64(), row(cat, c.categories), 1e-5, 1e-4);
      FN_REQUIRE_CLOSE(one.landmark_loc.to_vector_f64(), row(loc, 2 * kSlots), 1e-5, 1e-4);
    }
  }
}

namespace {

// A hand-built batch with every label the loss knows: categories, items (two per item), landmarks,
// visibilities and attributes.
BatchTensors labelled_batch(const NetConfig& c, int64_t n, uint64_t seed) {
  BatchTensors b;
  b.n = n;
  b.images = random_images(n, c.input, seed);
  PoolAt at = random_pool_at(n, c.input, seed + 1);
  b.landmarks = at.landmarks;
  b.visible = at.visibility;
  std::vector<float> lm = at.landmarks.to_vector(), vis = at.visibility.to_vector();
  for (auto& v : lm) v /= float(c.input);
  b.landmarks01 = Tensor::from(lm, {n, 2 * kSlots});
  b.has_landmarks = true;
  for (int64_t i = 0; i < n * kSlots; ++i) b.vis_label.push_back(vis[size_t(i)] > 0.5f ? 0 : 1);
  for (int64_t i = 0; i < n; ++i) {
    b.category.push_back(int(i % c.categories));
    b.item.push_back(int(i / 2));
  }
  if (c.attributes > 0) {
    std::vector<float> a(size_t(n * c.attributes)), known(a.size(), 1.f);
    for (size_t i = 0; i < a.size(); ++i) a[i] = float((i * 7 + 3) % 5 == 0);
    b.attr = Tensor::from(a, {n, c.attributes});
    b.attr_known = Tensor::from(known, {n, c.attributes});
  }
  return b;
}

double total_loss(const FashionNet& net, const BatchTensors& b, const LossContext& ctx) {
  NoGradGuard ng;
  Outputs o = net.forward(b.images, PoolAt{b.landmarks, b.visible}, 0);  // the model's mode: training here
  return fashionnet_loss(o, b, LossWeights{}, ctx).total.item();
}

}  // namespace

TEST_CASE("One SGD step lowers the total loss on a fixed batch", "[fashionnet]") {
  NetConfig c = small_net(true, "corner");
  c.dropout = 0.f;
  FashionNet net(c, 31);
  BatchTensors b = labelled_batch(c, 6, 32);
  LossContext ctx;
  ctx.attr_w_pos = Tensor::full({c.attributes}, 2.0);
  ctx.attr_w_neg = Tensor::full({c.attributes}, 0.7);
  double before = total_loss(net, b, ctx);

  Outputs o = net.forward(b.images, PoolAt{b.landmarks, b.visible}, 0);
  LossTerms t = fashionnet_loss(o, b, LossWeights{}, ctx);
  // Every term is present, so the step moves all heads.
  std::vector<std::string> names;
  for (auto& [n, v] : t.values) names.push_back(n);
  CHECK(names == std::vector<std::string>{"lm", "vis", "cat", "attr", "tri"});
  nn::SgdOptions so;
  so.lr = 1e-3f;
  nn::SGD sgd(net.parameters(), so);
  backward(t.total);
  sgd.step();
  sgd.zero_grad();
  double after = total_loss(net, b, ctx);
  INFO("loss before " << before << ", after " << after);
  CHECK(std::isfinite(before));
  CHECK(after < before);
}

TEST_CASE("TrainStep parts: 2 parts give the mean of each part's own gradients, bitwise; dropout at the global place",
          "[fashionnet][parts]") {
  NetConfig c = small_net(true, "corner");
  c.dropout = 0.3f;  // the masks must follow a sample's place in the whole batch
  FashionNet net(c, 31);
  BatchTensors b = labelled_batch(c, 8, 32);  // items 0..3, two images each: each part holds whole items
  LossContext ctx;
  ctx.attr_w_pos = Tensor::full({c.attributes}, 2.0);
  ctx.attr_w_neg = Tensor::full({c.attributes}, 0.7);
  // The gradients of one forward_backward over rows [begin, end) taken as `parts` parts, this process's
  // first row at `first` in the whole batch; the gradients are cleared after.
  auto grads = [&](int parts, int64_t begin, int64_t end, int64_t first) {
    StepOptions so;
    so.parts = parts;
    so.first_sample = first;
    TrainStep step(net, nullptr, ctx, so);
    step.forward_backward(parts == 1 ? slice_rows(b, begin, end) : b, LossWeights{}, 3, "stage1");
    std::vector<std::vector<float>> g;
    for (const Tensor& p : net.parameters()) {
      g.push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<float>{});
      Tensor(p).zero_grad();
    }
    return g;
  };
  const auto whole = grads(2, 0, 8, 0), first = grads(1, 0, 4, 0), second = grads(1, 4, 8, 4);
  size_t compared = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    REQUIRE(whole[i].size() == first[i].size());
    for (size_t k = 0; k < whole[i].size(); ++k, ++compared)
      REQUIRE(whole[i][k] == (first[i][k] + second[i][k]) * 0.5f);  // what 2 ranks' sum and division give
  }
  CHECK(compared == size_t(net.parameter_count()));
  CHECK(grads(1, 4, 8, 0) != second);  // the second part drawn at rows 0..3's masks: other gradients
  CHECK(slice_rows(b, 4, 8).item == std::vector<int>{2, 2, 3, 3});
  CHECK_THROWS_WITH(slice_rows(b, 4, 9), Catch::Contains("rows [4, 9) of 8"));
}

TEST_CASE("FashionNet (VGG16 trunk) on CUDA: three training steps match the CPU's (dropout, momentum, clipping)",
          "[fashionnet]") {
  FN_REQUIRE_CUDA();
  // The paper's network end to end on the GPU: forward with dropout (the same masks on both devices), the five
  // losses, backward through landmark pooling, the clip's global norm and SGD with momentum, three times, so
  // that the steps feed each other. The backbones' CUDA test covers ResNet and Lite0's forward.
  NetConfig c = small_net(true, "corner");
  c.dropout = 0.3f;
  struct Run {
    std::vector<double> losses, norms;
    std::vector<std::vector<double>> params;
  } runs[2];
  for (int k = 0; k < 2; ++k) {
    const Device d = k == 0 ? Device::CPU : Device::CUDA;
    FashionNet net(c, 31);
    net.to(d);
    const BatchTensors b = to_device(labelled_batch(c, 8, 32), d);
    LossContext ctx;
    ctx.attr_w_pos = Tensor::full({c.attributes}, 2.0).to(d);
    ctx.attr_w_neg = Tensor::full({c.attributes}, 0.7).to(d);
    nn::SgdOptions so;
    so.lr = 0.01f;
    so.momentum = 0.9f;
    nn::SGD sgd(net.parameters(), so);
    StepOptions opts;
    opts.clip_grad_norm = 5;
    TrainStep step(net, &sgd, ctx, opts);
    for (int64_t i = 0; i < 3; ++i) {
      const StepResult r = step.run(b, LossWeights{}, i, "stage1");
      runs[k].losses.push_back(r.total);
      for (const auto& term : r.terms) runs[k].losses.push_back(term.second);
      runs[k].norms.push_back(r.grad_norm);
    }
    for (const Tensor& p : net.parameters()) runs[k].params.push_back(p.to_vector_f64());
  }
  FN_REQUIRE_CLOSE(runs[1].losses, runs[0].losses, 1e-5, 1e-4);
  FN_REQUIRE_CLOSE(runs[1].norms, runs[0].norms, 1e-5, 1e-4);
  REQUIRE(runs[1].params.size() == runs[0].params.size());
  for (size_t i = 0; i < runs[0].params.size(); ++i) {
    INFO("parameter " << i);
    double scale = 0;
    for (double v : runs[0].params[i]) scale = std::max(scale, std::fabs(v));
    FN_REQUIRE_CLOSE(runs[1].params[i], runs[0].params[i], 1e-5 * scale + 1e-7, 1e-4);
  }
}

TEST_CASE("A training step adds landmark_pool's gradient into conv4's in place (the sparse path)", "[fashionnet]") {
  // FashionNet's speed depends on it (docs/architecture.md "Autograd"): the forward records the local branch
  // before pool4, so that pool4's gradient reaches conv4 first and landmark_pool's AccumulateFn adds its few
  // values into it, instead of its dense backward writing a whole conv4-sized gradient.
  NetConfig c = small_net(true, "corner");
  FashionNet net(c, 41);
  BatchTensors b = labelled_batch(c, 4, 42);
  LossContext ctx;
  ctx.attr_w_pos = Tensor::full({c.attributes}, 2.0);
  ctx.attr_w_neg = Tensor::full({c.attributes}, 0.7);
  TrainStep step(net, nullptr, ctx);
  step.forward_backward(b, LossWeights{}, 0, "stage1");
  const BackwardStats& st = last_backward_stats();
  auto count = [](const std::vector<const char*>& ops, const std::string& op) {
    return std::count_if(ops.begin(), ops.end(), [&](const char* o) { return op == o; });
  };
  CHECK(count(st.accumulated, "landmark_pool") == 1);
  CHECK(count(st.dense_fallbacks, "landmark_pool") == 0);
  CHECK(st.accumulate_calls == int64_t(st.accumulated.size()));
  CHECK(st.backward_calls > 20);
  net.zero_grad();

  // The ablation without the local branch pools nothing; the statistic is per backward.
  NetConfig g = small_net(false, "corner");
  FashionNet global_only(g, 41);
  TrainStep step_g(global_only, nullptr, ctx);
  step_g.forward_backward(b, LossWeights{}, 0, "stage1");
  CHECK(last_backward_stats().accumulate_calls == 0);
  CHECK(last_backward_stats().dense_fallbacks.empty());
}

TEST_CASE("A training step skips the pose branch where no landmark term reads it: the same gradients",
          "[fashionnet]") {
  // Images without landmarks (an ImageFolder): the landmark and visibility terms are absent, so the pose
  // branch's forward would feed nothing. Skipping it must change no gradient, and leaves conv5_pose's batch
  // norm statistics where they were (nothing of the batch reaches them).
  NetConfig c = small_net(true, "corner");
  c.backbone = Backbone::EfficientNetLite0;  // batch norms in conv5_pose: statistics a forward would move
  c.width = 0.25;
  c.dropout = 0.3f;
  BatchTensors b = labelled_batch(c, 4, 52);
  BatchTensors plain = b;  // as to_tensors makes images without landmarks: no slot visible, no label
  plain.landmarks = Tensor::zeros({4, kSlots, 2});
  plain.visible = Tensor::zeros({4, kSlots});
  plain.landmarks01 = Tensor::zeros({4, 2 * kSlots});
  plain.has_landmarks = false;
  plain.vis_label.assign(plain.vis_label.size(), -1);
  LossContext ctx;
  ctx.attr_w_pos = Tensor::full({c.attributes}, 2.0);
  ctx.attr_w_neg = Tensor::full({c.attributes}, 0.7);
  CHECK(pose_terms_apply(b, LossWeights{}));
  CHECK_FALSE(pose_terms_apply(plain, LossWeights{}));
  LossWeights no_pose;
  no_pose.landmarks = no_pose.visibility = 0;
  CHECK_FALSE(pose_terms_apply(b, no_pose));

  auto grads = [&](const FashionNet& net) {
    std::vector<std::vector<float>> v;
    for (const Tensor& p : net.parameters()) v.push_back(p.grad().defined() ? p.grad().to_vector() : std::vector<float>{});
    return v;
  };
  auto pose_statistics = [](const FashionNet& net) {
    std::vector<float> v;
    for (auto& [name, t] : net.named_buffers())
      if (name.rfind("conv5_pose.", 0) == 0) {
        auto x = t.to_vector();
        v.insert(v.end(), x.begin(), x.end());
      }
    return v;
  };
  FashionNet skipped(c, 53), full(c, 53);
  const std::vector<float> before = pose_statistics(skipped);
  REQUIRE_FALSE(before.empty());
  TrainStep step(skipped, nullptr, ctx);
  StepResult r = step.forward_backward(plain, LossWeights{}, 2, "stage1");
  CHECK_FALSE(r.outputs.landmark_loc.defined());
  CHECK_FALSE(r.outputs.landmark_vis.defined());
  CHECK(pose_statistics(skipped) == before);
  // The pose branch run as before the skip: the same loss, bitwise the same gradient for every parameter.
  Outputs o = full.forward(plain.images, PoolAt{plain.landmarks, plain.visible}, 2, 0, true);
  LossTerms t = fashionnet_loss(o, plain, LossWeights{}, ctx);
  backward(t.total);
  CHECK(t.total.item() == r.total);
  CHECK(pose_statistics(full) != before);  // a forward in training mode moves them
  const auto gs = grads(skipped), gf = grads(full);
  REQUIRE(gs.size() == gf.size());
  for (size_t i = 0; i < gs.size(); ++i) CHECK(gs[i] == gf[i]);

  // With landmarks, the pose branch runs and trains.
  skipped.zero_grad();
  StepResult with = step.forward_backward(b, LossWeights{}, 3, "stage1");
  CHECK(with.outputs.landmark_loc.defined());
  CHECK(pose_statistics(skipped) != before);
  // Skipping it while the local branch pools at the prediction is refused.
  skipped.eval();
  CHECK_THROWS_WITH(skipped.forward(b.images, PoolAt{}, 0, 0, false), Catch::Contains("pose branch skipped"));
}

TEST_CASE("A tiny net overfits one fixed batch of 16 synthetic photos", "[fashionnet][slow]") {
  fs::path root = fs::temp_directory_path() / ("fn_overfit_" + std::to_string(::getpid()));
  data::SynthConfig sc;
  sc.out = root.string();
  sc.items = 32;  // In-shop puts half the items in train: 16 training photos
  sc.views = 1;
  sc.size = 64;
  sc.seed = 4;
  data::synthesize(sc);
  data::Dataset ds = data::load_dataset(sc.out, "inshop");

  TrainConfig cfg = preset("tiny");
  cfg.net.categories = int(ds.category_names.size());
  cfg.net.attributes = int(ds.attribute_names.size());
  data::LoaderConfig lc;
  lc.batch = 16;
  lc.input = cfg.net.input;
  lc.flip = false;
  lc.threads = 0;
  lc.sampler = data::LoaderConfig::Sequential;
  data::Loader loader(ds, ds.indices(data::Split::Train), lc);
  data::Batch batch;
  REQUIRE(loader.next(batch));
  REQUIRE(batch.n == 16);
  BatchTensors b = to_tensors(batch, ds, Device::CPU);
  int distinct = int(std::set<int>(b.category.begin(), b.category.end()).size());
  INFO(distinct << " categories in the batch");
  REQUIRE(distinct >= 2);

  // Adam: SGD with momentum oscillates on this 4-channel-wide net for hundreds of steps, and what is
  // tested here is that the graph and its gradients can fit the batch, not the optimiser.
  FashionNet net(cfg.net, 1);
  nn::AdamOptions ao;
  ao.lr = 1e-3f;
  nn::Adam adam(net.parameters(), ao);
  LossWeights w{1, 1, 1, 0, 0};  // landmarks, visibility and category: the terms this batch labels
  LossContext ctx;
  double cat_loss = 0;
  for (int step = 0; step < 300; ++step) {
    Outputs o = net.forward(b.images, PoolAt{b.landmarks, b.visible}, uint64_t(step));
    LossTerms t = fashionnet_loss(o, b, w, ctx);
    for (auto& [n, v] : t.values)
      if (n == "cat") cat_loss = v;
    backward(t.total);
    adam.step();
    adam.zero_grad();
  }
  // Accuracy on the batch in evaluation mode: pooling at the ground-truth landmarks the net was trained
  // with, it must fit every photo; pooling at its own predicted landmarks, nearly every one (which photo
  // a 4-channel landmark branch misplaces depends on the seed and the order of float additions: 14-16
  // of 16 over seeds 1-6).
  NoGradGuard ng;
  net.eval();
  auto batch_correct = [&](const PoolAt& at) {
    std::vector<float> logits = net.forward(b.images, at).category.to_vector();
    int correct = 0, k = cfg.net.categories;
    for (int i = 0; i < 16; ++i) {
      int best = int(std::max_element(logits.begin() + i * k, logits.begin() + (i + 1) * k) - (logits.begin() + i * k));
      correct += best == b.category[size_t(i)];
    }
    return correct;
  };
  const int at_truth = batch_correct(PoolAt{b.landmarks, b.visible}), at_predicted = batch_correct(PoolAt{});
  fs::remove_all(root);
  INFO("category loss after 300 steps " << cat_loss << ", batch accuracy " << at_truth << "/16 at the true landmarks, "
                                        << at_predicted << "/16 at the predicted ones");
  CHECK(cat_loss < 0.05);
  CHECK(at_truth == 16);
  CHECK(at_predicted >= 14);
}
