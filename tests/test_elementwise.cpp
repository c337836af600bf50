// add, mul, scale, relu, dropout: float64 gradient checks on the CPU, CUDA against the CPU reference.
#include "kernels/elementwise.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::test::gradcheck;
using fn::test::leaf64;

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
    gradcheck([](const std::vector<Tensor>& v) { return F::dropout(v[0], 0.3f, true, 11); }, {leaf64({n}, 7)});
  }
}

TEST_CASE("elementwise: add of a tensor to itself doubles the gradient") {
  Tensor x = leaf64({5}, 1);
  Tensor y = F::sum(F::add(x, x));
  backward(y);
  for (double g : x.grad().to_vector_f64()) REQUIRE(g == 2.0);
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
    run([](const Tensor& x, const Tensor&, Tensor& o) { kernels::dropout_forward(x, 0.5f, 42, o); });
  }
}
