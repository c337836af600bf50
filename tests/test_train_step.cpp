// The training step unit (fashionnet/train/step.h) and frozen parameters (nn/module.h), on the CPU: a
// parameter cut off the graph (through a view, or not used) is an error naming it after the first backward,
// and trains once frozen; frozen parameters are skipped by SGD, weight decay and clipping; the heads of
// absent loss terms are not demanded; the gradients-ready hook sees the complete gradients before clipping
// and the optimizer; a NaN loss term names the term, the step and the stage.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "core/autograd.h"
#include "fashionnet/model/batch.h"
#include "fashionnet/train/step.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "tests/support/check.h"

using namespace fn;
using namespace fn::fashionnet;

namespace {

// y = x W^T + b, then a head. `mode` decides how W reaches the graph: Intact as it is, View through
// W.view(...), a leaf without gradient, which cuts W off. The forward never reads `spare`.
struct SmallNet : nn::Module {
  enum Mode { Intact, View } mode;
  Tensor w, b, spare;  // handles sharing the registered parameters
  nn::Linear& head;
  explicit SmallNet(Mode m, Rng& rng)
      : mode(m),
        w(add_parameter("w", Tensor::randn({4, 3}, rng, 0.5))),
        b(add_parameter("b", Tensor::zeros({4}))),
        spare(add_parameter("spare", Tensor::randn({2}, rng))),
        head(add_module("head", std::make_unique<nn::Linear>(4, 1, rng, 0.5))) {}
  Tensor loss(const Tensor& x) const {
    Tensor weight = mode == View ? w.view({4, 3}) : w;
    return F::sum(head(F::relu(F::linear(x, weight, b))));
  }
};

Tensor input() {
  Rng rng(5, 1);
  return Tensor::randn({6, 3}, rng);
}

// The tiny preset's network, a labelled batch of P x K = 2 x 4 random images, every term's labels present.
struct TinySetup {
  TrainConfig cfg = preset("tiny");
  BatchTensors batch;
  LossContext ctx;
  TinySetup() {
    cfg.net.categories = 3;
    cfg.net.attributes = 5;
    const int n = cfg.P * cfg.K, s = cfg.net.input, a = cfg.net.attributes;
    Rng rng(17, 2);
    data::Batch b;
    data::resize_batch(b, n, s, size_t(a));
    for (float& v : b.image) v = float(rng.normal());
    for (float& v : b.lm_xy) v = float(rng.uniform() * (s - 1));
    for (float& v : b.lm_visible) v = rng.uniform() < 0.75 ? 1.f : 0.f;
    for (int i = 0; i < n; ++i) b.item[size_t(i)] = i / cfg.K, b.category[size_t(i)] = i % 3;
    for (size_t i = 0; i < b.attr.size(); ++i) b.attr[i] = float(i % 3 == 0), b.attr_known[i] = 1.f;
    batch = to_tensors(b, std::vector<uint8_t>(size_t(n), 1), Device::CPU);
    ctx = loss_context(cfg);
    ctx.attr_w_pos = Tensor::full({a}, 2.0);
    ctx.attr_w_neg = Tensor::full({a}, 0.7);
  }
  LossWeights all() const { return LossWeights{1, 1, 1, 1, 1}; }
};

// FashionNet with one more parameter that its forward never reads: a parameter lost to the graph.
struct FashionNetWithSpare : FashionNet {
  explicit FashionNetWithSpare(const NetConfig& c) : FashionNet(c, 3) { add_parameter("spare", Tensor::zeros({3})); }
};

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("freeze: by full name or module prefix, listed apart, a misspelt name refused", "[step]") {
  Rng rng(1);
  SmallNet net(SmallNet::Intact, rng);
  REQUIRE(net.trainable_parameters().size() == 5);
  CHECK(net.freeze("head") == 2);  // head.weight, head.bias
  CHECK(net.freeze("w") == 1);
  std::vector<std::string> names;
  for (auto& [n, t] : net.named_trainable_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"b", "spare"});
  CHECK(net.named_parameters().size() == 5);  // frozen parameters are still parameters (checkpoints hold them)
  CHECK_FALSE(nn::Module::trainable(net.w));
  CHECK_THROWS_WITH(net.freeze("hea"), Catch::Contains("'hea'"));  // a prefix must end at a name's dot
  CHECK_THROWS_WITH(net.unfreeze("nothing"), Catch::Contains("unfreeze") && Catch::Contains("'nothing'"));
  CHECK(net.unfreeze("") == 5);
  CHECK(net.trainable_parameters().size() == 5);
  // The rule freeze() and a stage's hold_statistics share.
  CHECK(nn::Module::covers("trunk", "trunk.bn1.weight"));
  CHECK(nn::Module::covers("trunk.bn1", "trunk.bn1"));
  CHECK(nn::Module::covers("", "head.bias"));
  CHECK_FALSE(nn::Module::covers("trunk", "trunk2.weight"));
  CHECK_FALSE(nn::Module::covers("trunk.bn1", "trunk"));
}

TEST_CASE("A parameter cut off the graph by a view is an error naming it; frozen, the model trains", "[step]") {
  Rng rng(2);
  SmallNet net(SmallNet::View, rng);
  net.freeze("spare");  // this test is about w
  backward(net.loss(input()));
  CHECK_FALSE(net.w.grad().defined());  // the view was a leaf: w got nothing, silently
  CHECK(net.b.grad().defined());
  CHECK_THROWS_WITH(check_gradients(net, "step 0 (test)"),
                    Catch::Contains("step 0 (test)") && Catch::Contains("1 trainable parameter got no gradient") &&
                        Catch::Contains(": w.") && Catch::Contains("freeze"));
  net.zero_grad();

  // Frozen on purpose: the check passes and SGD (with weight decay) leaves it alone.
  net.freeze("w");
  const Tensor w0 = net.w.clone(), b0 = net.b.clone();
  nn::SGD sgd(net.parameters(), nn::SgdOptions{0.1f, 0.9f, 0.01f});
  for (int k = 0; k < 2; ++k) {
    backward(net.loss(input()));
    CHECK_NOTHROW(check_gradients(net, "test"));
    sgd.step();
    sgd.zero_grad();
  }
  CHECK(bitwise_equal(net.w, w0));
  CHECK_FALSE(bitwise_equal(net.b, b0));
}

TEST_CASE("An unused parameter is an error naming it; an intact model passes", "[step]") {
  Rng rng(3);
  SmallNet net(SmallNet::Intact, rng);
  backward(net.loss(input()));
  CHECK_THROWS_WITH(check_gradients(net, "here"), Catch::Contains("got no gradient") && Catch::Contains("spare"));
  CHECK_THROWS_WITH(check_gradients(net, "here"), !Catch::Contains("head.weight"));
  CHECK_NOTHROW(check_gradients(net, "here", [](const std::string& n) { return n == "spare"; }));
  net.freeze("spare");
  CHECK_NOTHROW(check_gradients(net, "here"));
}

TEST_CASE("TrainStep: FashionNet with a lost parameter stops on the first step, naming it; frozen it trains",
          "[step]") {
  TinySetup t;
  {
    FashionNetWithSpare net(t.cfg.net);
    nn::SGD sgd(net.parameters(), nn::SgdOptions{0.01f, 0.9f});
    TrainStep step(net, &sgd, t.ctx);
    CHECK_FALSE(step.gradients_checked());
    CHECK_THROWS_WITH(step.run(t.batch, t.all(), 7, "stage1"),
                      Catch::Contains("step 7 (stage1)") && Catch::Contains("spare") &&
                          !Catch::Contains("trunk"));
  }
  {
    FashionNetWithSpare net(t.cfg.net);
    net.freeze("spare");
    nn::SGD sgd(net.parameters(), nn::SgdOptions{0.01f, 0.9f});
    TrainStep step(net, &sgd, t.ctx);
    StepResult r = step.run(t.batch, t.all(), 0, "stage1");
    CHECK(step.gradients_checked());
    CHECK(r.terms.size() == 5);
    CHECK(r.images == 8);
    CHECK(std::isfinite(r.total));
    CHECK(r.grad_norm == -1);  // no clipping asked: not measured
  }
}

TEST_CASE("TrainStep: a frozen trunk keeps its weights and momentum; the rest trains", "[step]") {
  TinySetup t;
  FashionNet net(t.cfg.net, 4);
  CHECK(net.freeze("trunk") == 20);  // conv1_1 .. conv4_3, weight and bias
  std::vector<std::pair<std::string, Tensor>> before;
  for (auto& [n, p] : net.named_parameters()) before.emplace_back(n, p.clone());
  nn::SGD sgd(net.parameters(), nn::SgdOptions{0.01f, 0.9f, 5e-4f});
  StepOptions so;
  so.clip_grad_norm = 1e-3;  // clipping must not see the frozen ones either
  TrainStep step(net, &sgd, t.ctx, so);
  for (int k = 0; k < 2; ++k) CHECK(step.run(t.batch, t.all(), k, "stage1").grad_norm > 0);
  auto params = net.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    INFO(params[i].first);
    const bool trunk = params[i].first.rfind("trunk.", 0) == 0;
    if (trunk) CHECK(bitwise_equal(params[i].second, before[i].second));
    if (params[i].first == "fc6_global.weight") CHECK_FALSE(bitwise_equal(params[i].second, before[i].second));
  }
  for (auto& [n, m] : sgd.state())
    if (n.rfind("trunk.", 0) == 0) CHECK(m.to_vector() == std::vector<float>(size_t(m.numel()), 0.f));
}

TEST_CASE("TrainStep: the heads of absent loss terms are not demanded; the rest still is", "[step]") {
  TinySetup t;
  SECTION("attribute weight 0: the attributes head gets no gradient, and that is fine") {
    FashionNet net(t.cfg.net, 5);
    nn::SGD sgd(net.parameters(), nn::SgdOptions{0.01f});
    TrainStep step(net, &sgd, t.ctx);
    StepResult r = step.forward_backward(t.batch, LossWeights{1, 1, 1, 0, 1}, 0, "stage1");
    CHECK(r.terms.size() == 4);
    for (auto& [n, p] : net.named_parameters()) {
      INFO(n);
      CHECK(p.grad().defined() == (n.rfind("attributes.", 0) != 0));
    }
  }
  SECTION("no landmark annotation in the batch: the pose branch is not demanded") {
    FashionNet net(t.cfg.net, 5);
    t.batch.has_landmarks = false;
    std::fill(t.batch.vis_label.begin(), t.batch.vis_label.end(), -1);
    nn::SGD sgd(net.parameters(), nn::SgdOptions{0.01f});
    TrainStep step(net, &sgd, t.ctx);
    StepResult r = step.run(t.batch, t.all(), 0, "stage1");
    CHECK(r.terms.size() == 3);  // cat, attr, tri
  }
  SECTION("only the landmark terms: the fusion, global and local branches are not demanded, the trunk is") {
    CHECK(reached_only_by_absent_terms("fc7_fusion.weight", {"lm", "vis"}));
    CHECK(reached_only_by_absent_terms("conv5_global.conv5_1.weight", {"lm"}));
    CHECK_FALSE(reached_only_by_absent_terms("fc6_local.bias", {"tri"}));
    CHECK_FALSE(reached_only_by_absent_terms("trunk.conv1_1.weight", {"vis"}));
    CHECK_FALSE(reached_only_by_absent_terms("spare", {"lm"}));
    CHECK(reached_only_by_absent_terms("landmark_loc.weight", {"vis", "cat", "attr", "tri"}));
    CHECK_FALSE(reached_only_by_absent_terms("fc6_pose.weight", {"vis"}));
  }
}

TEST_CASE("TrainStep: on_gradients_ready sees the complete gradients, before clipping and the optimizer", "[step]") {
  TinySetup t;
  FashionNet a(t.cfg.net, 6), b(t.cfg.net, 6);
  nn::SGD sa(a.parameters(), nn::SgdOptions{0.01f, 0.9f}), sb(b.parameters(), nn::SgdOptions{0.01f, 0.9f});
  StepOptions so;
  so.clip_grad_norm = 1e9;  // measure only
  TrainStep plain(a, &sa, t.ctx, so), hooked(b, &sb, t.ctx, so);
  int calls = 0;
  hooked.on_gradients_ready = [&](const std::vector<Tensor>& params) {
    ++calls;
    CHECK(params.size() == b.parameters().size());
    for (const Tensor& p : params) {
      REQUIRE(p.grad().defined());
      p.grad().add_(p.grad(), -0.5);  // halve it, as an average over two processes would
    }
  };
  StepResult ra = plain.run(t.batch, t.all(), 0, "stage1");
  StepResult rb = hooked.run(t.batch, t.all(), 0, "stage1");
  CHECK(calls == 1);
  CHECK(ra.total == rb.total);
  CHECK(rb.grad_norm == Approx(ra.grad_norm / 2).epsilon(1e-6));  // the norm is of what the hook left
  for (auto& p : b.parameters()) CHECK_FALSE(p.grad().defined());  // apply() ends with zero_grad
  // forward_backward alone leaves the gradients in place and does not call the hook.
  hooked.forward_backward(t.batch, t.all(), 1, "stage1");
  CHECK(calls == 1);
  CHECK(b.parameters()[0].grad().defined());
  TrainStep no_optimizer(b, nullptr, t.ctx);
  CHECK_THROWS_WITH(no_optimizer.apply(), Catch::Contains("no optimizer"));
  clear_tape();
}

TEST_CASE("TrainStep: a NaN loss term stops the step, naming the term, the step, the stage and the run folder",
          "[step]") {
  TinySetup t;
  FashionNet net(t.cfg.net, 7);
  for (auto& [n, p] : net.named_parameters())
    if (n == "category.bias") p.fill_(NAN);
  nn::SGD sgd(net.parameters(), nn::SgdOptions{0.01f});
  StepOptions so;
  so.run_dir = "/runs/x";
  TrainStep step(net, &sgd, t.ctx, so);
  CHECK_THROWS_WITH(step.run(t.batch, t.all(), 12, "stage2"),
                    Catch::Contains("loss term 'cat' is nan at step 12 (stage2)") &&
                        Catch::Contains("last good checkpoint in /runs/x is kept"));
  CHECK(tape_size() == 0);
  for (auto& p : net.parameters()) CHECK_FALSE(p.grad().defined());  // no backward ran
}
