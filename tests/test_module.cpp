// Module buffers and the train/eval mode (nn/module.h): buffers are named like parameters, never require a
// gradient, are in neither parameters() nor trainable_parameters() and so are untouched by SGD and Adam
// (weight decay included) and by clip_gradients; to() moves them; checkpoints save and load them, and a
// checkpoint without one is an error naming it. train() / eval() reach every submodule, ModeGuard restores
// each module's own mode, and FashionNet's dropout follows the mode.
#include <memory>

#include "core/autograd.h"
#include "core/safetensors.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/step.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "tests/support/check.h"
#include "tests/support/temp_dir.h"

using namespace fn;

namespace {

// A batch-norm-like leaf: an affine weight and bias, and two running statistics as buffers.
struct Norm : nn::Module {
  Tensor weight, bias, running_mean, running_var;
  Norm(int c, bool with_buffers = true)
      : weight(add_parameter("weight", Tensor::full({c}, 1.5))), bias(add_parameter("bias", Tensor::full({c}, 0.5))) {
    if (with_buffers) {
      running_mean = add_buffer("running_mean", Tensor::full({c}, 0.25));
      running_var = add_buffer("running_var", Tensor::full({c}, 2.0));
    }
  }
  Tensor term() const { return F::sum(F::mul(weight, bias)); }  // gives both parameters a gradient
};

// trunk { conv (Linear), bn1 (Norm) }, head (Linear): "trunk.bn1.running_mean" and so on.
struct Trunk : nn::Module {
  nn::Linear& fc;
  Norm& bn1;
  Trunk(Rng& rng, bool with_buffers)
      : fc(add_module("fc", std::make_unique<nn::Linear>(3, 4, rng, 0.5))),
        bn1(add_module("bn1", std::make_unique<Norm>(4, with_buffers))) {}
};

struct Net : nn::Module {
 private:
  Rng rng_;  // first: the members below are built with it

 public:
  Trunk& trunk;
  nn::Linear& head;
  Tensor step_count;  // a buffer of the root module itself
  explicit Net(bool with_buffers = true, uint64_t seed = 3)
      : rng_(seed, 1),
        trunk(add_module("trunk", std::make_unique<Trunk>(rng_, with_buffers))),
        head(add_module("head", std::make_unique<nn::Linear>(4, 2, rng_, 0.5))) {
    if (with_buffers) step_count = add_buffer("step_count", Tensor::zeros({1}));
  }
  Tensor loss(const Tensor& x) const { return F::add(F::sum(head(F::relu(trunk.fc(x)))), trunk.bn1.term()); }
};

std::vector<std::string> names(const NamedTensors& v) {
  std::vector<std::string> r;
  for (auto& [n, t] : v) r.push_back(n);
  return r;
}

std::vector<std::vector<float>> values(const std::vector<Tensor>& v) {
  std::vector<std::vector<float>> r;
  for (auto& t : v) r.push_back(t.to_vector());
  return r;
}

Tensor batch() {
  Rng rng(11, 1);
  return Tensor::randn({5, 3}, rng);
}

}  // namespace

TEST_CASE("Buffers are named depth first like parameters, and are not parameters", "[module]") {
  Net net;
  CHECK(names(net.named_buffers()) ==
        std::vector<std::string>{"step_count", "trunk.bn1.running_mean", "trunk.bn1.running_var"});
  CHECK(names(net.named_parameters()) ==
        std::vector<std::string>{"trunk.fc.weight", "trunk.fc.bias", "trunk.bn1.weight", "trunk.bn1.bias",
                                 "head.weight", "head.bias"});
  CHECK(net.buffers().size() == 3);
  // The checkpoint's list: parameters, then buffers.
  std::vector<std::string> state = names(net.named_parameters());
  for (auto& n : names(net.named_buffers())) state.push_back(n);
  CHECK(names(net.named_state()) == state);
  for (auto& [n, b] : net.named_buffers()) {
    INFO(n);
    CHECK_FALSE(b.requires_grad());
    for (auto& p : net.parameters()) CHECK_FALSE(p.same_storage(b));
    for (auto& p : net.trainable_parameters()) CHECK_FALSE(p.same_storage(b));
  }
  // The handles the module keeps are the registered tensors.
  CHECK(net.buffers()[1].same_storage(net.trunk.bn1.running_mean));
  // Freezing everything leaves buffers alone (and cannot make them trainable).
  net.freeze("");
  net.unfreeze("");
  for (auto& b : net.buffers()) CHECK_FALSE(b.requires_grad());
  CHECK(net.parameter_count() == 4 * 3 + 4 + 4 + 4 + 2 * 4 + 2);  // buffers are not parameters
}

TEST_CASE("Optimizer steps (weight decay too) and gradient clipping never touch buffers", "[module]") {
  Net net;
  const auto before = values(net.buffers());
  const auto params_before = values(net.parameters());
  auto train_steps = [&](nn::Optimizer& opt) {
    for (int step = 0; step < 3; ++step) {
      backward(net.loss(batch()));
      for (auto& [n, b] : net.named_buffers()) {
        INFO(n);
        CHECK_FALSE(b.grad().defined());
      }
      fashionnet::clip_gradients(net.parameters(), 1e-3);  // scales every gradient it sees
      opt.step();
      opt.zero_grad();
    }
  };
  SECTION("SGD with momentum and weight decay") {
    nn::SGD sgd(net.parameters(), nn::SgdOptions{0.1f, 0.9f, 0.5f});
    train_steps(sgd);
  }
  SECTION("Adam with weight decay") {
    nn::AdamOptions ao;
    ao.lr = 0.1f;
    ao.weight_decay = 0.5f;
    nn::Adam adam(net.parameters(), ao);
    train_steps(adam);
  }
  CHECK(values(net.buffers()) == before);
  CHECK(values(net.parameters()) != params_before);  // the parameters did move
}

TEST_CASE("to() the device a module is on keeps every buffer where it is", "[module]") {
  Net net;
  Tensor rm = net.trunk.bn1.running_mean;  // a handle held outside the module
  net.to(Device::CPU);
  CHECK(rm.same_storage(net.buffers()[1]));
}

TEST_CASE("to() moves buffers with the parameters, in place (CUDA)", "[module][cuda]") {
  FN_REQUIRE_CUDA();
  Net net;
  Tensor rm = net.trunk.bn1.running_mean;  // a handle held outside the module
  const auto before = values(net.buffers());
  net.to(Device::CUDA);
  for (auto& [n, b] : net.named_buffers()) {
    INFO(n);
    CHECK(b.device() == Device::CUDA);
    CHECK_FALSE(b.requires_grad());
  }
  CHECK(rm.device() == Device::CUDA);  // the outside handle sees the move
  net.to(Device::CPU);
  CHECK(values(net.buffers()) == before);
}

TEST_CASE("Checkpoints save and load buffers; a checkpoint without one is an error naming it", "[module]") {
  test::TempDir dir("module_buffers");
  const std::string path = (dir.path / "net.safetensors").string();
  const fashionnet::TrainConfig cfg = fashionnet::preset("tiny");
  Net a(true, 3);
  a.trunk.bn1.running_mean.fill_(0.5);
  a.trunk.bn1.running_var.fill_(3.0);
  a.step_count.fill_(42);
  fashionnet::save_checkpoint(path, a, nullptr, cfg, fashionnet::TrainState{});
  const SafetensorsFile f = load_safetensors(path);
  CHECK(f.has("trunk.bn1.running_mean"));
  CHECK(f.has("trunk.bn1.running_var"));
  CHECK(f.has("step_count"));

  Net b(true, 4);  // other initial weights, default buffers
  REQUIRE(values(b.buffers()) != values(a.buffers()));
  fashionnet::load_checkpoint(path, b, nullptr);
  CHECK(values(b.buffers()) == values(a.buffers()));
  CHECK(values(b.parameters()) == values(a.parameters()));

  // A checkpoint of the same network without buffers (as every FashionNet/VGG checkpoint so far) loads
  // into a network without them, and is refused by one that has them, naming each missing buffer.
  Net plain(false, 3);
  const std::string old = (dir.path / "plain.safetensors").string();
  fashionnet::save_checkpoint(old, plain, nullptr, cfg, fashionnet::TrainState{});
  Net plain2(false, 5);
  fashionnet::load_checkpoint(old, plain2, nullptr);
  CHECK(values(plain2.parameters()) == values(plain.parameters()));
  Net c(true, 3);
  CHECK_THROWS_WITH(fashionnet::load_checkpoint(old, c, nullptr),
                    Catch::Contains("trunk.bn1.running_mean") && Catch::Contains("trunk.bn1.running_var") &&
                        Catch::Contains("step_count") && Catch::Contains("missing"));
}

TEST_CASE("train() and eval() reach every submodule; ModeGuard restores each module's own mode", "[module]") {
  Net net;
  std::vector<std::string> visited;
  net.for_each_module([&](const std::string& name, nn::Module& m) {
    visited.push_back(name);
    CHECK(m.is_training());  // PyTorch's default: training
  });
  CHECK(visited == std::vector<std::string>{"", "trunk", "trunk.fc", "trunk.bn1", "head"});
  auto modes = [&] {
    std::vector<bool> r;
    net.for_each_module([&](const std::string&, nn::Module& m) { r.push_back(m.is_training()); });
    return r;
  };
  net.eval();
  CHECK(modes() == std::vector<bool>(5, false));
  net.train();
  CHECK(modes() == std::vector<bool>(5, true));
  net.trunk.eval();  // a subtree alone (a frozen batch norm while the rest trains)
  CHECK(modes() == std::vector<bool>{true, false, false, false, true});
  {
    nn::ModeGuard g(net, /*training=*/false);
    CHECK(modes() == std::vector<bool>(5, false));
  }
  CHECK(modes() == std::vector<bool>{true, false, false, false, true});
  {
    nn::ModeGuard g(net, /*training=*/true);
    CHECK(modes() == std::vector<bool>(5, true));
  }
  CHECK(modes() == std::vector<bool>{true, false, false, false, true});
}

TEST_CASE("FashionNet's dropout follows the model's mode", "[module][fashionnet]") {
  NoGradGuard ng;
  fashionnet::NetConfig c = fashionnet::preset("tiny").net;
  c.dropout = 0.5f;
  fashionnet::FashionNet net(c, 3);
  Rng rng(9, 1);
  Tensor x = Tensor::randn({2, 3, c.input, c.input}, rng);
  auto category = [&](uint64_t step) { return net.forward(x, fashionnet::PoolAt{}, step).category.to_vector(); };
  REQUIRE(net.is_training());
  // Training: each step draws its own masks, so two steps differ; the same step reproduces.
  CHECK(category(0) != category(1));
  CHECK(category(0) == category(0));
  // Evaluation: no dropout, so the step does not matter, and the result is the dropout-free network's.
  net.eval();
  const auto e = category(0);
  CHECK(category(1) == e);
  fashionnet::NetConfig c0 = c;
  c0.dropout = 0.f;
  fashionnet::FashionNet no_dropout(c0, 3);
  CHECK(no_dropout.forward(x, fashionnet::PoolAt{}, 5).category.to_vector() == e);  // training mode, p = 0
  net.train();
  CHECK(category(0) != e);
}
