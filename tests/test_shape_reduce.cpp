// reshape, flatten, concat, sum, mean, softmax: float64 gradient checks, CUDA against the CPU reference.
#include "kernels/concat.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::test::gradcheck;
using fn::test::leaf64;

TEST_CASE("reshape/flatten/concat: gradients") {
  gradcheck([](const std::vector<Tensor>& x) { return F::reshape(x[0], {3, -1}); }, {leaf64({2, 3, 5}, 1)});
  gradcheck([](const std::vector<Tensor>& x) { return F::flatten(x[0]); }, {leaf64({2, 3, 2, 2}, 2)});
  for (int dim : {0, 1, 2})
    gradcheck([dim](const std::vector<Tensor>& x) { return F::concat({x[0], x[1], x[2]}, dim); },
              {leaf64({2, 3, 4}, 3), leaf64({2, 3, 4}, 4), leaf64({2, 3, 4}, 5)});
  gradcheck([](const std::vector<Tensor>& x) { return F::concat({x[0], x[1]}, 1); },
            {leaf64({3, 33}, 6), leaf64({3, 45}, 7)});
}

TEST_CASE("concat: places each input in its columns") {
  Tensor a = Tensor::from(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from(std::vector<float>{5, 6}, {2, 1});
  auto v = F::concat({a, b}, 1).to_vector();
  REQUIRE(v == std::vector<float>{1, 2, 5, 3, 4, 6});
}

TEST_CASE("sum/mean/softmax: gradients") {
  for (int64_t n : {1, 33, 45}) {
    gradcheck([](const std::vector<Tensor>& x) { return F::sum(x[0]); }, {leaf64({n}, 1)});
    gradcheck([](const std::vector<Tensor>& x) { return F::mean(x[0]); }, {leaf64({n, 2}, 2)});
    gradcheck([](const std::vector<Tensor>& x) { return F::softmax(x[0]); }, {leaf64({3, n}, 3, -3, 3)});
  }
}

TEST_CASE("softmax: stable with outlier logits, rows sum to one") {
  Tensor x = Tensor::from(std::vector<float>{1e4f, 0.f, -1e4f, 3.f, 3.f, 3.f}, {2, 3});
  auto y = F::softmax(x).to_vector();
  REQUIRE(y[0] == Approx(1.0));
  REQUIRE(y[1] == 0.f);
  for (int i = 3; i < 6; ++i) REQUIRE(y[i] == Approx(1.0 / 3));
}

TEST_CASE("sum_all and sum_squares: against a plain double loop, in both float types") {
  Rng rng(4);
  for (int64_t n : {0, 1, 7, 8, 9, 1001}) {
    for (DType t : {DType::F32, DType::F64}) {
      Tensor x = Tensor::randn({n}, rng, 2.0, t);
      double s = 0, s2 = 0;
      for (double v : x.to_vector_f64()) {
        s += v;
        s2 += v * v;
      }
      Tensor a = Tensor::empty({1}, t), b = Tensor::empty({1}, t);
      kernels::sum_all(x, a);
      kernels::sum_squares(x, b);
      const double tol = t == DType::F32 ? 1e-6 : 1e-13;
      REQUIRE(a.item() == Approx(s).epsilon(tol).margin(tol));
      REQUIRE(b.item() == Approx(s2).epsilon(tol).margin(tol));
    }
  }
  Tensor wrong = Tensor::empty({2});
  REQUIRE_THROWS_AS(kernels::sum_squares(Tensor::randn({3}, rng), wrong), Error);
}

TEST_CASE("sum_squares_each: each tensor's sum_squares, bitwise; bad outputs refused") {
  Rng rng(5);
  std::vector<Tensor> xs;
  for (int64_t n : {5, 0, 1, 1001, 64}) xs.push_back(Tensor::randn({n}, rng));
  xs.push_back(Tensor::randn({3, 7}, rng));
  Tensor out = Tensor::empty({int64_t(xs.size())});
  kernels::sum_squares_each(xs, out);
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor one = Tensor::empty({1});
    kernels::sum_squares(xs[i], one);
    REQUIRE(out.to_vector()[i] == one.item());
  }
  Tensor too_short = Tensor::empty({int64_t(xs.size()) - 1}), not_flat = Tensor::empty({2, 3});
  REQUIRE_THROWS_AS(kernels::sum_squares_each(xs, too_short), Error);
  REQUIRE_THROWS_AS(kernels::sum_squares_each(xs, not_flat), Error);
  xs.push_back(Tensor::randn({2}, rng, 1.0, DType::F64));
  Tensor seven = Tensor::empty({7});
  REQUIRE_THROWS_AS(kernels::sum_squares_each(xs, seven), Error);  // a float64 tensor among float32
}

TEST_CASE("reductions and softmax: CUDA matches the CPU reference") {
  FN_REQUIRE_CUDA();
  Rng rng(9);
  for (int64_t n : {1, 33, 45, 70001}) {
    Tensor x = Tensor::randn({n}, rng);
    Tensor sc = Tensor::empty({1}), sg = Tensor::empty({1}, DType::F32, Device::CUDA);
    fn::test::poison(sg);
    kernels::sum_all(x, sc);
    kernels::sum_all(x.to(Device::CUDA), sg);
    FN_REQUIRE_CLOSE(sg, sc, 1e-4, 1e-5);
    Tensor bc = Tensor::empty({n}), bg = Tensor::empty({n}, DType::F32, Device::CUDA);
    fn::test::poison(bg);
    kernels::broadcast_scalar(sc, 0.5, bc);
    kernels::broadcast_scalar(sc.to(Device::CUDA), 0.5, bg);
    FN_REQUIRE_CLOSE(bg, bc, 1e-6, 1e-6);
  }
  // Both sums over sizes that reach each path of the CUDA kernel (float4 loads four at a time, float4 one at
  // a time, the scalar tail), from a 16-byte aligned start and from one float past it (the scalar path).
  for (int64_t n : {0, 1, 3, 4, 5, 70001, 3000001}) {
    Tensor x = Tensor::randn({n + 1}, rng);
    Tensor xg = x.to(Device::CUDA);
    for (int64_t from : {0, 1}) {
      INFO("n " << n << ", from element " << from);
      Tensor xc = x.slice0(from, from + n), xs = xg.slice0(from, from + n);
      for (bool squares : {false, true}) {
        Tensor sc = Tensor::empty({1}), sg = Tensor::empty({1}, DType::F32, Device::CUDA);
        fn::test::poison(sg);
        (squares ? kernels::sum_squares : kernels::sum_all)(xc, sc);
        (squares ? kernels::sum_squares : kernels::sum_all)(xs, sg);
        FN_REQUIRE_CLOSE(sg, sc, 1e-5, 1e-6);
      }
    }
  }
  // sum_squares_each over 70 tensors (two launches of up to 64): each bitwise its own sum_squares on the GPU,
  // and close to the CPU's.
  {
    std::vector<Tensor> xc, xs;
    Tensor big = Tensor::randn({3000001}, rng);
    for (int i = 0; i < 70; ++i) {
      const int64_t n = i == 3 ? 0 : i == 5 ? 3000000 : 1 + (int64_t(i) * 7919) % 20000;
      Tensor x = i == 5 ? big : Tensor::randn({n + 1}, rng);
      const int64_t from = i % 2;  // every other tensor starts one float past 16-byte alignment
      xc.push_back(x.slice0(from, from + n));
      xs.push_back(x.to(Device::CUDA).slice0(from, from + n));
    }
    Tensor oc = Tensor::empty({70}), og = Tensor::empty({70}, DType::F32, Device::CUDA);
    fn::test::poison(og);
    kernels::sum_squares_each(xc, oc);
    kernels::sum_squares_each(xs, og);
    FN_REQUIRE_CLOSE(og, oc, 1e-5, 1e-6);
    std::vector<float> each = og.to_vector();
    for (int i = 0; i < 70; ++i) {
      Tensor one = Tensor::empty({1}, DType::F32, Device::CUDA);
      kernels::sum_squares(xs[size_t(i)], one);
      INFO("tensor " << i);
      REQUIRE(each[size_t(i)] == one.item());
    }
  }
  for (int64_t cols : {1, 2, 33, 45, 1000}) {
    Tensor x = Tensor::randn({7, cols}, rng, 3.0), gy = Tensor::randn({7, cols}, rng);
    Tensor yc = Tensor::empty_like(x), gxc = Tensor::empty_like(x);
    kernels::softmax_forward(x, yc);
    kernels::softmax_backward(yc, gy, gxc);
    Tensor yg = Tensor::empty({7, cols}, DType::F32, Device::CUDA), gxg = Tensor::empty({7, cols}, DType::F32, Device::CUDA);
    fn::test::poison(yg);
    fn::test::poison(gxg);
    kernels::softmax_forward(x.to(Device::CUDA), yg);
    kernels::softmax_backward(yg, gy.to(Device::CUDA), gxg);
    FN_REQUIRE_CLOSE(yg, yc, 1e-6, 1e-5);
    FN_REQUIRE_CLOSE(gxg, gxc, 1e-6, 1e-5);
  }
  // concat on the GPU
  Tensor a = Tensor::randn({3, 5}, rng), b = Tensor::randn({3, 2}, rng);
  Tensor yc = F::concat({a, b}, 1);
  Tensor yg = F::concat({a.to(Device::CUDA), b.to(Device::CUDA)}, 1);
  FN_REQUIRE_CLOSE(yg, yc, 0.0, 0.0);
}
