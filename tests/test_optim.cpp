// Optimizers: three steps against torch.optim (1.13, float64) on a fixed problem, state naming, skipped
// parameters (without a gradient, or frozen), save/restore of the state, CUDA against the CPU.
#include <cmath>
#include <memory>

#include "kernels/optim.h"
#include "nn/optim.h"
#include "tests/support/check.h"

using namespace fn;

namespace {
// p = [1, -2, 0.5]; step k = 0, 1, 2 sees the gradient (k+1) * [0.5, 0.25, -1]. Returns p after 3 steps.
template <class Opt, class Options>
std::vector<double> three_steps(Options o) {
  Tensor p = Tensor::from(std::vector<double>{1.0, -2.0, 0.5}, {3});
  p.set_requires_grad(true).set_name("w");
  Opt opt({p}, o);
  for (int k = 0; k < 3; ++k) {
    p.set_grad(Tensor::from(std::vector<double>{0.5 * (k + 1), 0.25 * (k + 1), -1.0 * (k + 1)}, {3}));
    opt.step();
  }
  return p.to_vector_f64();
}
}  // namespace

TEST_CASE("SGD: three steps equal torch.optim.SGD (plain, momentum + weight decay, Nesterov)") {
  // Reference values printed by torch 1.13: torch.optim.SGD([p], ...) on the same problem in float64.
  FN_REQUIRE_CLOSE(three_steps<nn::SGD>(nn::SgdOptions{0.1f, 0.f, 0.f, false}), (std::vector<double>{0.7, -2.15, 1.1}),
                   1e-7, 1e-7);
  FN_REQUIRE_CLOSE(three_steps<nn::SGD>(nn::SgdOptions{0.1f, 0.9f, 0.01f, false}),
                   (std::vector<double>{0.5191847489999999, -2.2263946230000005, 1.4476174995000002}), 1e-7, 1e-7);
  FN_REQUIRE_CLOSE(three_steps<nn::SGD>(nn::SgdOptions{0.1f, 0.9f, 0.01f, true}),
                   (std::vector<double>{0.26489045819099993, -2.347467023757, 1.9501313364705002}), 1e-7, 1e-7);
}

TEST_CASE("Adam: three steps equal torch.optim.Adam (bias correction, L2 weight decay)") {
  // torch.optim.Adam([p], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), float64.
  // Tolerance 1e-7: the hyper-parameters are float32 here (0.9f != 0.9), a ~1e-8 relative difference.
  FN_REQUIRE_CLOSE(three_steps<nn::Adam>(nn::AdamOptions{0.01f, 0.9f, 0.999f, 1e-8f, 0.01f}),
                   (std::vector<double>{0.9707471837488328, -2.0291417735624586, 0.5292266332888202}), 1e-7, 1e-7);
}

TEST_CASE("optimizers: named state, parameters without a gradient are left alone") {
  Tensor a = Tensor::full({2}, 1.0).set_name("fc6.weight"), b = Tensor::full({3}, 2.0);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  nn::SGD sgd({a, b}, {0.1f, 0.9f});
  auto st = sgd.state();
  REQUIRE(st.size() == 2);
  REQUIRE(st[0].first == "fc6.weight.momentum");
  REQUIRE(st[1].first == "param1.momentum");
  a.set_grad(Tensor::full({2}, 1.0));
  sgd.step();
  REQUIRE(a.to_vector() == std::vector<float>{0.9f, 0.9f});
  REQUIRE(b.to_vector() == std::vector<float>{2.f, 2.f, 2.f});  // no gradient: untouched
  REQUIRE(st[1].second.to_vector() == std::vector<float>{0.f, 0.f, 0.f});
  nn::Adam adam({a}, {});
  auto as = adam.state();
  REQUIRE(as.size() == 3);
  REQUIRE(as[0].first == "fc6.weight.exp_avg");
  REQUIRE(as[1].first == "fc6.weight.exp_avg_sq");
  REQUIRE(as[2].first == "fc6.weight.step");
  adam.step();
  REQUIRE(as[2].second.item() == 1.0);
  nn::SGD plain({a}, {0.1f});
  REQUIRE(plain.state().empty());
}

TEST_CASE("optimizers: a learning-rate multiplier steps a parameter as lr x k would, and no other") {
  // Two parameters with one optimiser, the second at 3x; each against an optimiser of its own at lr, 3 lr.
  const auto two_steps = [](auto make, std::vector<float> mult) {
    Tensor a = Tensor::from(std::vector<double>{1.0, -2.0, 0.5}, {3}), b = a.clone();
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    auto opt = make(std::vector<Tensor>{a, b});
    opt.set_lr_mult(mult);
    for (int k = 0; k < 2; ++k) {
      for (Tensor* t : {&a, &b}) t->set_grad(Tensor::from(std::vector<double>{0.5 * (k + 1), 0.25, -1.0}, {3}));
      opt.step();
    }
    return std::make_pair(a.to_vector_f64(), b.to_vector_f64());
  };
  const nn::SgdOptions so{0.1f, 0.9f, 0.01f, false};
  nn::SgdOptions so3 = so;
  so3.lr = so.lr * 3.f;
  const auto sgd = [](nn::SgdOptions o) { return [o](std::vector<Tensor> p) { return nn::SGD(p, o); }; };
  const auto [a, b] = two_steps(sgd(so), {1.f, 3.f});
  CHECK(a == two_steps(sgd(so), {}).first);   // bitwise: lr x 1 is lr
  CHECK(b == two_steps(sgd(so3), {}).first);  // bitwise: the same float product
  CHECK(b != a);
  const nn::AdamOptions ao{0.01f, 0.9f, 0.999f, 1e-8f, 0.01f};
  nn::AdamOptions ao3 = ao;
  ao3.lr = ao.lr * 3.f;
  const auto adam = [](nn::AdamOptions o) { return [o](std::vector<Tensor> p) { return nn::Adam(p, o); }; };
  const auto [c, d] = two_steps(adam(ao), {1.f, 3.f});
  CHECK(c == two_steps(adam(ao), {}).first);
  CHECK(d == two_steps(adam(ao3), {}).first);
  CHECK(d != c);

  Tensor x = Tensor::full({2}, 1.0);
  x.set_requires_grad(true);
  nn::SGD one({x}, so);
  CHECK_THROWS_WITH(one.set_lr_mult({1.f, 2.f}), Catch::Contains("2 learning-rate multipliers for 1 parameters"));
  CHECK_THROWS_WITH(one.set_lr_mult({-1.f}), Catch::Contains("negative"));
  one.set_lr_mult({2.f});
  CHECK(one.lr_mult(0) == 2.f);
  one.set_lr_mult({});
  CHECK(one.lr_mult(0) == 1.f);
}

TEST_CASE("optimizers: frozen parameters are skipped, gradient or not, weight decay included") {
  Tensor a = Tensor::full({2}, 1.0).set_name("a"), f = Tensor::full({2}, 3.0).set_name("frozen");
  a.set_requires_grad(true);
  f.set_requires_grad(false);  // what nn::Module::freeze does
  for (int opt = 0; opt < 2; ++opt) {
    INFO((opt == 0 ? "SGD" : "Adam"));
    std::unique_ptr<nn::Optimizer> o;
    if (opt == 0) o = std::make_unique<nn::SGD>(std::vector<Tensor>{a, f}, nn::SgdOptions{0.1f, 0.9f, 0.5f});
    else o = std::make_unique<nn::Adam>(std::vector<Tensor>{a, f}, nn::AdamOptions{0.1f, 0.9f, 0.999f, 1e-8f, 0.5f});
    REQUIRE(o->state().size() == (opt == 0 ? 2u : 6u));  // a frozen parameter keeps its state slots
    const auto a0 = a.to_vector();
    a.set_grad(Tensor::full({2}, 1.0));
    f.set_grad(Tensor::full({2}, 1.0));  // a stale gradient must not move it either
    o->step();
    CHECK(a.to_vector() != a0);
    CHECK(f.to_vector() == std::vector<float>{3.f, 3.f});
    for (auto& [name, t] : o->state())
      if (name.rfind("frozen.", 0) == 0) CHECK(t.to_vector_f64() == std::vector<double>(size_t(t.numel()), 0.0));
  }
}

TEST_CASE("optimizers: restoring the state continues bitwise") {
  auto make_grad = [](int k) { return Tensor::from(std::vector<float>{0.3f * k, -0.7f, 1.1f / (k + 1)}, {3}); };
  Tensor p = Tensor::from(std::vector<float>{1.f, 2.f, 3.f}, {3}).set_name("p");
  p.set_requires_grad(true);
  nn::Adam a({p}, {0.05f});
  for (int k = 0; k < 2; ++k) p.set_grad(make_grad(k)), a.step();
  // Snapshot parameter and state, run one more step; then restore into a fresh optimizer and redo it.
  Tensor saved_p = p.clone();
  std::vector<Tensor> saved;
  for (auto& [name, t] : a.state()) saved.push_back(t.clone());
  p.set_grad(make_grad(2));
  a.step();
  auto after = p.to_vector();
  Tensor q = saved_p.clone().set_name("p");
  q.set_requires_grad(true);
  nn::Adam b({q}, {0.05f});
  auto st = b.state();
  for (size_t i = 0; i < st.size(); ++i) st[i].second.copy_from(saved[i]);
  q.set_grad(make_grad(2));
  b.step();
  REQUIRE(q.to_vector() == after);
}

TEST_CASE("optimizers: CUDA matches the CPU") {
  FN_REQUIRE_CUDA();
  for (int64_t n : {1, 33, 45, 100003}) {
    Rng rng(n);
    Tensor p = Tensor::randn({n}, rng), g = Tensor::randn({n}, rng), v = Tensor::randn({n}, rng),
           m = Tensor::randn({n}, rng), s = Tensor::uniform({n}, rng, 0.0, 1.0);
    for (bool nesterov : {false, true}) {
      kernels::SgdHyper h{0.05f, 0.9f, 1e-4f, nesterov};
      Tensor pc = p.clone(), vc = v.clone(), pg = p.to(Device::CUDA), vg = v.to(Device::CUDA);
      kernels::sgd_step(pc, g, vc, h);
      kernels::sgd_step(pg, g.to(Device::CUDA), vg, h);
      FN_REQUIRE_CLOSE(pg, pc, 1e-6, 1e-6);
      FN_REQUIRE_CLOSE(vg, vc, 1e-6, 1e-6);
    }
    kernels::AdamHyper h{1e-3f, 0.9f, 0.999f, 1e-8f, 1e-4f};
    Tensor pc = p.clone(), mc = m.clone(), sc = s.clone();
    Tensor pg = p.to(Device::CUDA), mg = m.to(Device::CUDA), sg = s.to(Device::CUDA);
    for (int64_t t = 1; t <= 3; ++t) {
      kernels::adam_step(pc, g, mc, sc, t, h);
      kernels::adam_step(pg, g.to(Device::CUDA), mg, sg, t, h);
    }
    FN_REQUIRE_CLOSE(pg, pc, 1e-6, 1e-5);
    FN_REQUIRE_CLOSE(mg, mc, 1e-6, 1e-6);
    FN_REQUIRE_CLOSE(sg, sc, 1e-6, 1e-6);
  }
  // A learning-rate multiplier on the device: two parameters, the second at 3x, against the CPU.
  Rng rng(7);
  const Tensor a0 = Tensor::randn({45}, rng), g0 = Tensor::randn({45}, rng);
  std::vector<Tensor> after;
  for (Device d : {Device::CPU, Device::CUDA}) {
    Tensor a = a0.clone().to(d), b = a0.clone().to(d);  // to() of a CPU tensor to the CPU is the tensor itself
    a.set_requires_grad(true);
    b.set_requires_grad(true);
    nn::SGD sgd({a, b}, {0.05f, 0.9f, 1e-4f});
    sgd.set_lr_mult({1.f, 3.f});
    for (int k = 0; k < 2; ++k) {
      a.set_grad(g0.to(d));
      b.set_grad(g0.to(d));
      sgd.step();
    }
    after.push_back(a.to(Device::CPU));
    after.push_back(b.to(Device::CPU));
  }
  FN_REQUIRE_CLOSE(after[2], after[0], 1e-6, 1e-6);
  FN_REQUIRE_CLOSE(after[3], after[1], 1e-6, 1e-6);
}
