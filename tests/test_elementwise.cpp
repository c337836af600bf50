// add, mul, scale, relu, relu6, dropout: float64 gradient checks on the CPU, CUDA against the CPU reference.
// The residual add: a tensor read by two ops (x -> f(x), and x + f(x)) gets its gradient with no dense copy.
#include <cmath>

#include "core/allocator.h"
#include "kernels/elementwise.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {
// 4 x: randn values spread over ReLU6's three pieces (below 0, between, above 6).
Tensor widened(const Tensor& t) {
  Tensor o = Tensor::empty(t.shape(), t.dtype(), t.device());
  kernels::scale(t, 4.0, o);
  return o;
}
}  // namespace

TEST_CASE("elementwise: gradients (float64, central differences)") {
  for (int64_t n : {1, 33, 45}) {
    gradcheck([](const std::vector<Tensor>& x) { return F::add(x[0], x[1]); }, {leaf64({n}, 1), leaf64({n}, 2)});
    gradcheck([](const std::vector<Tensor>& x) { return F::mul(x[0], x[1]); }, {leaf64({n}, 3), leaf64({n}, 4)});
    gradcheck([](const std::vector<Tensor>& x) { return F::scale(x[0], -2.5); }, {leaf64({n}, 5)});
    // Keep inputs away from the kink at 0.
    Tensor x = leaf64({n}, 6, 0.1, 1.0);
    double* p = x.f64();
    for (int64_t i = 0; i < n; i += 2) p[i] = -p[i];
    gradcheck([](const std::vector<Tensor>& v) { return F::relu(v[0]); }, {x});
    // ReLU6 on [-2, 8]: below 0, between, above 6 (no point within 1e-6 of a kink for these seeds).
    gradcheck([](const std::vector<Tensor>& v) { return F::relu6(v[0]); }, {leaf64({n}, 8, -2.0, 8.0)});
    gradcheck([](const std::vector<Tensor>& v) { return F::dropout(v[0], 0.3f, true, 11); }, {leaf64({n}, 7)});
  }
}

TEST_CASE("elementwise: add of a tensor to itself doubles the gradient") {
  Tensor x = leaf64({5}, 1);
  Tensor y = F::sum(F::add(x, x));
  backward(y);
  for (double g : x.grad().to_vector_f64()) REQUIRE(g == 2.0);
}

TEST_CASE("relu6: values and gradient mask at and around the kinks, as PyTorch's") {
  // torch.nn.functional.relu6 (hardtanh(0, 6)): y = min(max(x, 0), 6); the gradient passes where 0 < x < 6
  // only (zero at exactly 0 and 6); a NaN stays NaN.
  const std::vector<double> x = {-3, -0.0, 0, 1e-7, 2.5, 6 - 1e-6, 6, 6.5, 1e9, NAN};
  const std::vector<double> y = {0, 0, 0, 1e-7, 2.5, 6 - 1e-6, 6, 6, 6, NAN};
  const std::vector<double> mask = {0, 0, 0, 1, 1, 1, 0, 0, 0, 0};
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor xt = Tensor::from(x, {int64_t(x.size())}).to(dt);
    xt.set_requires_grad(true);
    Tensor yt = F::relu6(xt);
    std::vector<double> got = yt.to_vector_f64();
    for (size_t i = 0; i < x.size(); ++i) {
      INFO(dtype_name(dt) << " x = " << x[i]);
      if (std::isnan(y[i])) {
        CHECK(std::isnan(got[i]));
      } else {
        CHECK(got[i] == (dt == DType::F32 ? double(float(y[i])) : y[i]));
      }
    }
    Tensor seed = Tensor::full(yt.shape(), 3.0, dt);
    backward(yt, seed);
    std::vector<double> g = xt.grad().to_vector_f64();
    for (size_t i = 0; i < x.size(); ++i) {
      INFO(dtype_name(dt) << " x = " << x[i]);
      CHECK(g[i] == 3.0 * mask[i]);
    }
  }
}

TEST_CASE("residual add: a tensor read by f and by x + f(x) gets its gradient without a dense copy") {
  // x = relu(leaf); y = x + relu6(x), weighted by `seed` and summed (a loss, as in training); the tape runs
  // add's backward ({g, g}, the same tensor for both inputs), then relu6's, then adds relu6's gradient into
  // x's. x takes add's gradient as it is and the second contribution is added into it in place: no gradient
  // is copied.
  const int64_t n = 1 << 16;
  Rng rng(3, 1);
  Tensor leaf = Tensor::uniform({n}, rng, -1.0, 8.0);
  leaf.set_requires_grad(true);
  Tensor seed = Tensor::uniform({n}, rng, -1.0, 1.0);
  allocator_reset_peak(Device::CPU);
  const size_t base = allocator_stats(Device::CPU).in_use;
  {
    Tensor x = F::relu(leaf);
    Tensor y = F::add(x, F::relu6(x));
    backward(F::sum(F::mul(y, seed)));
  }
  CHECK(last_backward_stats().grad_copies == 0);
  CHECK(last_backward_stats().backward_calls == 5);
  // Peak memory above the leaf and the seed: the forward's x, relu6(x), y and y * seed, the gradient mul
  // hands to y (which add hands on to x and relu6(x)) and relu6's gradient: six tensors (mul's other
  // gradient, for the seed, is not computed: the seed needs none), and the loss and its gradient (a value
  // each, in blocks of 256 bytes). Copying add's gradient for each input, as the tape once did, made it seven.
  const size_t bytes = size_t(n) * sizeof(float);
  CHECK(allocator_stats(Device::CPU).peak - base <= 6 * bytes + 2 * 256);
  // The gradient itself: d/dleaf = g * (1 + [0 < x < 6]) where leaf > 0, else 0.
  std::vector<float> l = leaf.to_vector(), s = seed.to_vector(), g = leaf.grad().to_vector();
  for (int64_t i = 0; i < n; ++i) {
    const float mask = l[size_t(i)] > 0 ? 1.f : 0.f, inner = l[size_t(i)] > 0 && l[size_t(i)] < 6 ? 1.f : 0.f;
    REQUIRE(g[size_t(i)] == mask * (s[size_t(i)] + inner * s[size_t(i)]));
  }
}

TEST_CASE("the tape keeps what a backward saved, not every activation: relu(a + b) frees the sum in the forward") {
  // ResNet's block ends with relu(bn3(h) + shortcut): the addition saves nothing and the ReLU saves its output,
  // so the sum need not outlive the forward. The tape's nodes hold where gradients go (AutogradMeta), not the
  // tensors; when they held the tensors, every block kept its sum (and bn3's output) until the backward.
  Rng rng(5, 1);
  Tensor a = Tensor::uniform({1024}, rng, -1.0, 1.0), b = Tensor::uniform({1024}, rng, -1.0, 1.0);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  std::weak_ptr<Storage> sum_data, out_data;
  Tensor loss;
  {
    Tensor sum = F::add(a, b);
    Tensor out = F::relu(sum);
    sum_data = sum.impl()->storage;
    out_data = out.impl()->storage;
    loss = F::sum(out);
  }
  CHECK(sum_data.expired());        // no backward saved it
  CHECK_FALSE(out_data.expired());  // the ReLU's backward did
  backward(loss);
  CHECK(out_data.expired());  // freed once the ReLU's node has run
  const std::vector<float> av = a.to_vector(), bv = b.to_vector(), ga = a.grad().to_vector(), gb = b.grad().to_vector();
  for (size_t i = 0; i < av.size(); ++i) {
    REQUIRE(ga[i] == (av[i] + bv[i] > 0 ? 1.f : 0.f));
    REQUIRE(gb[i] == ga[i]);
  }
}

TEST_CASE("shared gradients: accumulation never writes through a gradient another tensor holds") {
  // a + b with both leaves: add hands the same gradient to both, and each leaf must own its own (the
  // optimizers and clip_gradients scale leaf gradients in place).
  Tensor a = leaf64({4}, 1), b = leaf64({4}, 2);
  backward(F::sum(F::add(a, b)));
  CHECK_FALSE(a.grad().same_storage(b.grad()));
  a.grad().fill_(7.0);
  for (double g : b.grad().to_vector_f64()) CHECK(g == 1.0);
  // A non-leaf read twice by one add: its two gradients are the same tensor, added out of place.
  Tensor c = leaf64({4}, 3);
  Tensor h = F::scale(c, 1.0);
  backward(F::sum(F::scale(F::add(h, h), 1.5)));
  for (double g : c.grad().to_vector_f64()) CHECK(g == 3.0);
  // A leaf's gradient accumulates over backward calls: in place when it is the leaf's alone, out of place
  // when someone holds it (as PyTorch's AccumulateGrad): the holder keeps the value it took.
  Tensor d = leaf64({4}, 4);
  backward(F::sum(F::scale(d, 2.0)));
  backward(F::sum(F::scale(d, 3.0)));
  CHECK(last_backward_stats().grad_copies == 0);
  Tensor held = d.grad();
  backward(F::sum(F::scale(d, 4.0)));
  CHECK(last_backward_stats().grad_copies == 1);
  for (double g : held.to_vector_f64()) CHECK(g == 5.0);
  for (double g : d.grad().to_vector_f64()) CHECK(g == 9.0);
}

TEST_CASE("backward from an explicit seed neither copies nor writes it") {
  // y = x + relu(x): add hands the root's gradient, the seed itself, on to x, and relu's contribution must then
  // be added out of place; the caller's seed keeps its values.
  Tensor leaf = leaf64({4}, 5);
  Tensor seed = Tensor::from(std::vector<double>{1, 2, 3, 4}, {4});
  Tensor x = F::scale(leaf, 1.0);
  backward(F::add(x, F::relu(x)), seed);
  CHECK(last_backward_stats().grad_copies == 1);
  CHECK(seed.to_vector_f64() == std::vector<double>{1, 2, 3, 4});
  const auto l = leaf.to_vector_f64(), g = leaf.grad().to_vector_f64();
  for (size_t i = 0; i < 4; ++i) CHECK(g[i] == (l[i] > 0 ? 2.0 : 1.0) * double(i + 1));
  // A leaf root owns its gradient, as every leaf does: the optimisers change it in place.
  Tensor r = leaf64({4}, 6);
  backward(r, seed);
  CHECK_FALSE(r.grad().same_storage(seed));
  r.grad().fill_(0.0);
  CHECK(seed.to_vector_f64() == std::vector<double>{1, 2, 3, 4});
}

TEST_CASE("dropout: keeps about 1-p, scales by 1/(1-p), identity in evaluation") {
  Tensor x = Tensor::full({10000}, 1.0);
  Tensor y = F::dropout(x, 0.25f, true, 3);
  auto v = y.to_vector();
  int kept = 0;
  for (float e : v) {
    REQUIRE((e == 0.f || std::fabs(e - 1.f / 0.75f) < 1e-6f));
    kept += e != 0.f;
  }
  REQUIRE(std::abs(kept - 7500) < 200);
  Tensor z = F::dropout(x, 0.25f, false, 3);
  REQUIRE(z.same_storage(x));
}

TEST_CASE("dropout: rows taken with their offset draw the whole tensor's mask (data-parallel parts)") {
  Rng rng(4);
  Tensor x = Tensor::randn({6, 5}, rng);
  const std::vector<float> whole = F::dropout(x, 0.4f, true, 7).to_vector();
  const std::vector<float> part = F::dropout(x.slice0(2, 5).clone(), 0.4f, true, 7, /*offset=*/2 * 5).to_vector();
  REQUIRE(part == std::vector<float>(whole.begin() + 10, whole.begin() + 25));
  CHECK(F::dropout(x.slice0(2, 5).clone(), 0.4f, true, 7).to_vector() != part);  // without it: another mask
  gradcheck([](const std::vector<Tensor>& v) { return F::dropout(v[0], 0.3f, true, 11, 17); }, {leaf64({9}, 7)});
}

TEST_CASE("elementwise: CUDA matches the CPU reference") {
  FN_REQUIRE_CUDA();
  Rng rng(5);
  for (int64_t n : {1, 33, 45, 100003}) {
    Tensor a = Tensor::randn({n}, rng), b = Tensor::randn({n}, rng);
    Tensor ga = a.to(Device::CUDA), gb = b.to(Device::CUDA);
    auto run = [&](auto&& op) {
      Tensor yc = Tensor::empty({n}), yg = Tensor::empty({n}, DType::F32, Device::CUDA);
      fn::test::poison(yg);
      op(a, b, yc);
      op(ga, gb, yg);
      FN_REQUIRE_CLOSE(yg, yc, 1e-6, 1e-6);
    };
    run([](const Tensor& x, const Tensor& y, Tensor& o) { kernels::add(x, y, o); });
    run([](const Tensor& x, const Tensor& y, Tensor& o) { kernels::mul(x, y, o); });
    run([](const Tensor& x, const Tensor&, Tensor& o) { kernels::scale(x, 0.37, o); });
    run([](const Tensor& x, const Tensor&, Tensor& o) { kernels::relu_forward(x, o); });
    run([](const Tensor& x, const Tensor& y, Tensor& o) { kernels::relu_backward(x, y, o); });
    run([](const Tensor& x, const Tensor&, Tensor& o) { kernels::relu6_forward(widened(x), o); });
    run([](const Tensor& x, const Tensor& y, Tensor& o) { kernels::relu6_backward(widened(x), y, o); });
    run([](const Tensor& x, const Tensor&, Tensor& o) { kernels::dropout_forward(x, 0.5f, 42, o); });
    run([](const Tensor& x, const Tensor&, Tensor& o) { kernels::dropout_forward(x, 0.5f, 42, o, 1000003); });
  }
}

TEST_CASE("dropout: CUDA draws the CPU's mask bit for bit, offsets past 2^32 included, and parts match the whole") {
  FN_REQUIRE_CUDA();
  Rng rng(6);
  Tensor x = Tensor::randn({7, 33}, rng), xd = x.to(Device::CUDA);
  for (int64_t offset : {int64_t(0), int64_t(5), int64_t(1) << 32, (int64_t(1) << 34) + 3}) {
    INFO("offset " << offset);
    Tensor yc = Tensor::empty(x.shape()), yg = Tensor::empty(x.shape(), DType::F32, Device::CUDA);
    fn::test::poison(yg);
    kernels::dropout_forward(x, 0.3f, 99, yc, offset);
    kernels::dropout_forward(xd, 0.3f, 99, yg, offset);
    REQUIRE(yg.to_vector() == yc.to_vector());
  }
  // Rows 2..4 with offset 2 * 33 draw the whole tensor's mask (FashionNet passes first_sample * features).
  const std::vector<float> whole = F::dropout(xd, 0.4f, true, 7).to_vector();
  const std::vector<float> part = F::dropout(xd.slice0(2, 5).clone(), 0.4f, true, 7, 2 * 33).to_vector();
  REQUIRE(part == std::vector<float>(whole.begin() + 2 * 33, whole.begin() + 5 * 33));
  REQUIRE(whole == F::dropout(x, 0.4f, true, 7).to_vector());
}
