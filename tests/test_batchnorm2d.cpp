// Batch norm 2d: the fast CPU paths (Channels, Planes) against the plain-loop reference, float64 gradient checks in every
// mode, the running statistics against PyTorch's formulas written out by hand, the degenerate cases
// (a batch of one 1x1 map, a constant channel), batch invariance in evaluation, bitwise reproducibility, the
// op's autograd contract, the module's buffers and modes, and CUDA against the CPU for every version.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/autograd.h"
#include "kernels/batchnorm2d.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "nn/batchnorm2d.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::F::BatchNormMode;
using fn::kernels::BatchNormAlgo;
using fn::kernels::BatchNormStats;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {

// One batch-norm problem: input, affine parameters, running statistics and an output gradient.
struct Problem {
  Tensor x, w, b, rm, rv, gy;
};
Problem make_problem(const Shape& s, uint64_t seed, DType t = DType::F32, Device d = Device::CPU) {
  Rng rng(seed, 11);
  const Shape c{s[1]};
  Problem p;
  // A mean far from 0 next to a small spread: where a naive sum of squares would cancel.
  p.x = Tensor::uniform(s, rng, 2.0, 3.0, DType::F64).to(t).to(d);
  p.w = Tensor::uniform(c, rng, 0.5, 1.5, DType::F64).to(t).to(d);
  p.b = Tensor::uniform(c, rng, -0.5, 0.5, DType::F64).to(t).to(d);
  p.rm = Tensor::uniform(c, rng, -0.2, 0.2, DType::F64).to(t).to(d);
  p.rv = Tensor::uniform(c, rng, 0.5, 2.0, DType::F64).to(t).to(d);
  p.gy = Tensor::uniform(s, rng, -1.0, 1.0, DType::F64).to(t).to(d);
  return p;
}

// Everything one forward + backward of the kernels produces, on the host.
struct Result {
  Tensor y, mean, inv_std, gx, gw, gb, rm, rv;
};
Result run(const Problem& p, BatchNormStats stats, BatchNormAlgo algo, bool affine = true, double momentum = 0.1,
           double eps = 1e-5) {
  Result r;
  r.rm = p.rm.clone();
  r.rv = p.rv.clone();
  Tensor w = affine ? p.w : Tensor(), b = affine ? p.b : Tensor();
  r.y = Tensor::empty_like(p.x);
  r.mean = Tensor::empty({p.x.size(1)}, p.x.dtype(), p.x.device());
  r.inv_std = Tensor::empty_like(r.mean);
  r.gx = Tensor::empty_like(p.x);
  r.gb = Tensor::empty_like(r.mean);
  if (affine) r.gw = Tensor::empty_like(r.mean);
  for (Tensor* t : {&r.y, &r.mean, &r.inv_std, &r.gx, &r.gb, &r.gw})
    if (t->defined()) fn::test::poison(*t);
  kernels::batch_norm2d_forward(p.x, w, b, r.rm, r.rv, stats, momentum, eps, r.y, r.mean, r.inv_std, algo);
  kernels::batch_norm2d_backward(p.gy, p.x, w, b, r.mean, r.inv_std, stats, r.gx, r.gw, r.gb, algo);
  for (Tensor* t : {&r.y, &r.mean, &r.inv_std, &r.gx, &r.gw, &r.gb, &r.rm, &r.rv})
    if (t->defined()) *t = t->cpu();
  return r;
}

void require_close(const Result& got, const Result& ref, double atol, double rtol) {
  FN_REQUIRE_CLOSE(got.y, ref.y, atol, rtol);
  FN_REQUIRE_CLOSE(got.mean, ref.mean, atol, rtol);
  FN_REQUIRE_CLOSE(got.inv_std, ref.inv_std, atol, rtol);
  FN_REQUIRE_CLOSE(got.rm, ref.rm, atol, rtol);
  FN_REQUIRE_CLOSE(got.rv, ref.rv, atol, rtol);
  FN_REQUIRE_CLOSE(got.gx, ref.gx, atol, rtol);
  FN_REQUIRE_CLOSE(got.gb, ref.gb, atol, rtol);
  if (ref.gw.defined()) FN_REQUIRE_CLOSE(got.gw, ref.gw, atol, rtol);
}

bool bitwise_equal(const Tensor& a, const Tensor& b) { return a.to_vector_f64() == b.to_vector_f64(); }

// Shapes with H*W a multiple of 16, of 8 only, of neither (the vector loops' tails), and one big enough to
// run on threads.
const std::vector<Shape> kShapes = {{2, 3, 4, 4}, {3, 5, 7, 7}, {4, 2, 2, 4}, {1, 4, 3, 5}, {8, 24, 14, 14}};

}  // namespace

TEST_CASE("batch_norm2d: the fast CPU paths match the reference (float32 and float64)") {
  for (auto algo : {BatchNormAlgo::Channels, BatchNormAlgo::Planes, BatchNormAlgo::Auto})
  for (const Shape& s : kShapes)
    for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running})
      for (bool affine : {true, false}) {
        INFO(kernels::batch_norm_algo_name(algo) << " shape " << shape_str(s) << (stats == BatchNormStats::Batch ? " batch" : " running")
                      << (affine ? " affine" : " plain"));
        Problem p32 = make_problem(s, 3);
        require_close(run(p32, stats, algo, affine), run(p32, stats, BatchNormAlgo::Reference, affine),
                      2e-5, 1e-4);
        Problem p64 = make_problem(s, 3, DType::F64);
        require_close(run(p64, stats, algo, affine), run(p64, stats, BatchNormAlgo::Reference, affine),
                      1e-12, 1e-10);
      }
}

TEST_CASE("batch_norm2d: the reference matches the definition on a hand-sized example") {
  // One channel holding 1, 2, 3, 4 over a batch of 2 with 1x2 maps: mean 2.5, biased variance 1.25.
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3, 4}, {2, 1, 1, 2});
  Tensor w = Tensor::from(std::vector<double>{2.0}, {1}), b = Tensor::from(std::vector<double>{0.5}, {1});
  Tensor rm = Tensor::zeros({1}, DType::F64), rv = Tensor::full({1}, 1.0, DType::F64);
  Tensor y = F::batch_norm2d(x, w, b, rm, rv, BatchNormMode::Train, {0.1, 0.0 + 1e-5});
  const double is = 1.0 / std::sqrt(1.25 + 1e-5);
  std::vector<double> want;
  for (double v : {1.0, 2.0, 3.0, 4.0}) want.push_back((v - 2.5) * is * 2.0 + 0.5);
  FN_REQUIRE_CLOSE(y.to_vector_f64(), want, 1e-14, 1e-14);
}

TEST_CASE("batch_norm2d: gradients in Train mode (float64, central differences)") {
  for (const Shape& s : {Shape{2, 3, 3, 3}, Shape{3, 2, 1, 5}, Shape{1, 2, 4, 4}}) {
    INFO("shape " << shape_str(s));
    Rng rng(5, 2);
    Tensor rm = Tensor::zeros({s[1]}, DType::F64), rv = Tensor::full({s[1]}, 1.0, DType::F64);
    gradcheck([&](const std::vector<Tensor>& in) { return F::batch_norm2d(in[0], in[1], in[2], rm, rv, BatchNormMode::Train); },
              {leaf64(s, 1, -1.0, 2.0), leaf64({s[1]}, 2, 0.5, 1.5), leaf64({s[1]}, 3)});
    // Without the affine parameters.
    gradcheck([&](const std::vector<Tensor>& in) {
      return F::batch_norm2d(in[0], Tensor(), Tensor(), rm, rv, BatchNormMode::Train);
    }, {leaf64(s, 4, -1.0, 2.0)});
  }
}

TEST_CASE("batch_norm2d: gradients in Eval and Frozen modes (float64, central differences)") {
  const Shape s{3, 4, 2, 3};
  Rng rng(9, 2);
  Tensor rm = Tensor::uniform({4}, rng, -0.5, 0.5, DType::F64), rv = Tensor::uniform({4}, rng, 0.5, 2.0, DType::F64);
  for (auto mode : {BatchNormMode::Eval, BatchNormMode::Frozen}) {
    gradcheck([&](const std::vector<Tensor>& in) { return F::batch_norm2d(in[0], in[1], in[2], rm, rv, mode); },
              {leaf64(s, 1, -1.0, 2.0), leaf64({4}, 2, 0.5, 1.5), leaf64({4}, 3)});
  }
}

TEST_CASE("batch_norm2d: running statistics follow PyTorch's update (unbiased variance)") {
  const Shape s{3, 2, 2, 3};
  Problem p = make_problem(s, 17, DType::F64);
  for (double momentum : {0.1, 0.3}) {
    Tensor rm = p.rm.clone(), rv = p.rv.clone();
    std::vector<double> want_m = rm.to_vector_f64(), want_v = rv.to_vector_f64();
    // Two steps with two different batches, each written out from the formulas.
    for (int step = 0; step < 2; ++step) {
      Tensor x = step == 0 ? p.x : p.gy;
      F::batch_norm2d(x, p.w, p.b, rm, rv, BatchNormMode::Train, {momentum, 1e-5});
      const std::vector<double> xv = x.to_vector_f64();
      const int64_t n = s[0] * s[2] * s[3], hw = s[2] * s[3];
      for (int64_t c = 0; c < s[1]; ++c) {
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < s[0]; ++i)
          for (int64_t j = 0; j < hw; ++j) sum += xv[size_t((i * s[1] + c) * hw + j)];
        const double mean = sum / double(n);
        for (int64_t i = 0; i < s[0]; ++i)
          for (int64_t j = 0; j < hw; ++j) sq += std::pow(xv[size_t((i * s[1] + c) * hw + j)] - mean, 2);
        want_m[size_t(c)] = (1 - momentum) * want_m[size_t(c)] + momentum * mean;
        want_v[size_t(c)] = (1 - momentum) * want_v[size_t(c)] + momentum * sq / double(n - 1);
      }
      FN_REQUIRE_CLOSE(rm.to_vector_f64(), want_m, 1e-14, 1e-12);
      FN_REQUIRE_CLOSE(rv.to_vector_f64(), want_v, 1e-14, 1e-12);
    }
  }
}

TEST_CASE("batch_norm2d: a batch of one 1x1 map (variance 0): output = bias, finite gradients") {
  for (auto algo : {BatchNormAlgo::Reference, BatchNormAlgo::Channels, BatchNormAlgo::Planes})
    for (DType t : {DType::F32, DType::F64}) {
      Problem p = make_problem({1, 5, 1, 1}, 23, t);
      Result r = run(p, BatchNormStats::Batch, algo);
      REQUIRE(bitwise_equal(r.y, p.b));   // x - mean is exactly 0
      REQUIRE(bitwise_equal(r.mean, p.x.view({5})));
      FN_REQUIRE_CLOSE(r.gx, Tensor::zeros_like(p.x), 0.0, 0.0);  // dx = w inv_std (g - g - 0)
      FN_REQUIRE_CLOSE(r.gw, Tensor::zeros_like(p.w), 0.0, 0.0);
      REQUIRE(bitwise_equal(r.gb, p.gy.view({5})));
      // n = 1 has no unbiased variance: the running variance stays, the running mean moves.
      REQUIRE(bitwise_equal(r.rv, p.rv));
      std::vector<double> want;
      for (int c = 0; c < 5; ++c)
        want.push_back(0.9 * p.rm.to_vector_f64()[size_t(c)] + 0.1 * p.x.to_vector_f64()[size_t(c)]);
      FN_REQUIRE_CLOSE(r.rm.to_vector_f64(), want, 1e-6, 1e-6);
    }
}

TEST_CASE("batch_norm2d: a constant channel: output = bias there, finite gradients, others unaffected") {
  const Shape s{4, 3, 3, 5};
  for (auto algo : {BatchNormAlgo::Reference, BatchNormAlgo::Channels, BatchNormAlgo::Planes})
    for (DType t : {DType::F32, DType::F64}) {
      Problem p = make_problem(s, 29, t);
      std::vector<double> xv = p.x.to_vector_f64();
      for (int64_t i = 0; i < s[0]; ++i)
        for (int64_t j = 0; j < 15; ++j) xv[size_t((i * 3 + 1) * 15 + j)] = 2.75;
      p.x = Tensor::from(xv, s).to(t);
      Result r = run(p, BatchNormStats::Batch, algo);
      const std::vector<double> y = r.y.to_vector_f64(), gx = r.gx.to_vector_f64(), b = p.b.to_vector_f64();
      for (int64_t i = 0; i < s[0]; ++i)
        for (int64_t j = 0; j < 15; ++j) REQUIRE(y[size_t((i * 3 + 1) * 15 + j)] == b[1]);
      for (double g : gx) REQUIRE(std::isfinite(g));
      REQUIRE(r.mean.to_vector_f64()[1] == 2.75);
      REQUIRE(r.rv.to_vector_f64()[1] == Approx(0.9 * p.rv.to_vector_f64()[1]).epsilon(1e-6));
    }
  // And the gradients there still match central differences.
  std::vector<double> xv = leaf64(s, 31).to_vector_f64();
  for (int64_t i = 0; i < s[0]; ++i)
    for (int64_t j = 0; j < 15; ++j) xv[size_t((i * 3 + 1) * 15 + j)] = 0.5;
  Tensor x = Tensor::from(xv, s);
  x.set_requires_grad(true);
  Tensor rm = Tensor::zeros({3}, DType::F64), rv = Tensor::full({3}, 1.0, DType::F64);
  gradcheck([&](const std::vector<Tensor>& in) { return F::batch_norm2d(in[0], in[1], in[2], rm, rv, BatchNormMode::Train); },
            {x, leaf64({3}, 2, 0.5, 1.5), leaf64({3}, 3)}, 1e-6, 1e-5, 1e-4);
}

TEST_CASE("batch_norm2d: evaluation of a batch of N equals N batches of 1, bitwise (N = 1, 33, 45)") {
  for (int64_t N : {1, 33, 45}) {
    INFO("N = " << N);
    Problem p = make_problem({N, 16, 7, 7}, 41);
    Result all = run(p, BatchNormStats::Running, BatchNormAlgo::Auto);
    for (int64_t i = 0; i < N; ++i) {
      Problem one = p;
      one.x = p.x.slice0(i, i + 1).clone();
      one.gy = p.gy.slice0(i, i + 1).clone();
      Result r = run(one, BatchNormStats::Running, BatchNormAlgo::Auto);
      REQUIRE(bitwise_equal(r.y, all.y.slice0(i, i + 1)));
      REQUIRE(bitwise_equal(r.gx, all.gx.slice0(i, i + 1)));
    }
  }
}

TEST_CASE("batch_norm2d: CPU runs reproduce bitwise, whatever the thread count") {
  Problem p = make_problem({8, 24, 14, 14}, 43);  // large enough to run on threads
  const int keep = kernels::blas_threads();
  for (auto algo : {BatchNormAlgo::Channels, BatchNormAlgo::Planes})
  for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running}) {
    Result a = run(p, stats, algo), b = run(p, stats, algo);
    kernels::set_blas_threads(1);
    Result c = run(p, stats, algo);
    kernels::set_blas_threads(keep);
    for (const Result* o : {&b, &c}) {
      REQUIRE(bitwise_equal(a.y, o->y));
      REQUIRE(bitwise_equal(a.gx, o->gx));
      REQUIRE(bitwise_equal(a.gw, o->gw));
      REQUIRE(bitwise_equal(a.gb, o->gb));
      REQUIRE(bitwise_equal(a.rm, o->rm));
      REQUIRE(bitwise_equal(a.rv, o->rv));
    }
  }
}

TEST_CASE("batch_norm2d: Frozen leaves the running statistics alone while gradients flow") {
  Problem p = make_problem({4, 3, 5, 5}, 47, DType::F64);
  Tensor x = p.x.clone(), w = p.w.clone(), b = p.b.clone();
  for (Tensor* t : {&x, &w, &b}) t->set_requires_grad(true);
  Tensor rm = p.rm.clone(), rv = p.rv.clone();
  Tensor y = F::batch_norm2d(x, w, b, rm, rv, BatchNormMode::Frozen);
  backward(y, p.gy);
  REQUIRE(bitwise_equal(rm, p.rm));
  REQUIRE(bitwise_equal(rv, p.rv));
  for (Tensor* t : {&x, &w, &b}) {
    REQUIRE(t->grad().defined());
    double norm = 0;
    for (double v : t->grad().to_vector_f64()) norm += v * v;
    REQUIRE(norm > 0);
  }
  // Frozen is Eval with gradients: the same output; Train moves the statistics.
  Tensor ye = F::batch_norm2d(p.x, p.w, p.b, rm, rv, BatchNormMode::Eval);
  REQUIRE(bitwise_equal(ye, y));
  F::batch_norm2d(p.x, p.w, p.b, rm, rv, BatchNormMode::Train);
  REQUIRE_FALSE(bitwise_equal(rm, p.rm));
  REQUIRE_FALSE(bitwise_equal(rv, p.rv));
}

TEST_CASE("batch_norm2d: Eval records nothing when no input needs a gradient") {
  clear_tape();
  Problem p = make_problem({2, 3, 4, 4}, 53);
  Tensor y = F::batch_norm2d(p.x, p.w, p.b, p.rm, p.rv, BatchNormMode::Eval);
  REQUIRE(tape_size() == 0);
  REQUIRE_FALSE(y.requires_grad());
  Tensor w = p.w.clone();
  w.set_requires_grad(true);
  F::batch_norm2d(p.x, w, p.b, p.rm, p.rv, BatchNormMode::Eval);
  REQUIRE(tape_size() == 1);
  clear_tape();
}

TEST_CASE("batch_norm2d: misuse is refused") {
  Problem p = make_problem({2, 3, 4, 4}, 59);
  Tensor y = Tensor::empty_like(p.x), m = Tensor::empty({3}), is = Tensor::empty({3}), none;
  Tensor w4 = Tensor::full({4}, 1.0);
  REQUIRE_THROWS_WITH(kernels::batch_norm2d_forward(p.x, w4, p.b, p.rm, p.rv, BatchNormStats::Batch, 0.1, 1e-5, y, m, is),
                      Catch::Contains("weight must be (3)"));
  REQUIRE_THROWS_WITH(kernels::batch_norm2d_forward(p.x, p.w, p.b, none, none, BatchNormStats::Running, 0.1, 1e-5, y, m, is),
                      Catch::Contains("running statistics"));
  REQUIRE_THROWS_WITH(kernels::batch_norm2d_forward(p.x, p.w, p.b, p.rm, p.rv, BatchNormStats::Batch, 0.1, 1e-5, y, m, is,
                                                    BatchNormAlgo::OnePass),
                      Catch::Contains("CUDA version"));
  REQUIRE_THROWS_WITH(F::batch_norm2d(p.x.view({2, 3, 16}), p.w, p.b, p.rm, p.rv, BatchNormMode::Train),
                      Catch::Contains("(N,C,H,W)"));
}

namespace {
// A parent with a batch norm inside: the mode set on it must reach the child.
struct Net : nn::Module {
  nn::BatchNorm2d* bn;
  Net() { bn = &add_module("bn1", std::make_unique<nn::BatchNorm2d>(3, F::BatchNormArgs{0.2, 1e-3})); }
};
}  // namespace

TEST_CASE("BatchNorm2d: PyTorch's names, buffers apart from parameters, the mode decides the statistics") {
  Net net;
  nn::BatchNorm2d& bn = *net.bn;
  std::vector<std::string> params, bufs;
  for (auto& [n, t] : net.named_parameters()) params.push_back(n);
  for (auto& [n, t] : net.named_buffers()) bufs.push_back(n);
  REQUIRE(params == std::vector<std::string>{"bn1.weight", "bn1.bias"});
  REQUIRE(bufs == std::vector<std::string>{"bn1.running_mean", "bn1.running_var"});
  REQUIRE(bn.weight.to_vector() == std::vector<float>{1, 1, 1});
  REQUIRE(bn.bias.to_vector() == std::vector<float>{0, 0, 0});
  REQUIRE(bn.running_mean.to_vector() == std::vector<float>{0, 0, 0});
  REQUIRE(bn.running_var.to_vector() == std::vector<float>{1, 1, 1});
  REQUIRE_FALSE(bn.running_mean.requires_grad());
  REQUIRE(net.trainable_parameters().size() == 2);

  Problem p = make_problem({4, 3, 5, 5}, 67);
  // Training mode: the batch's statistics, the running ones move (momentum 0.2 from the constructor).
  REQUIRE(bn.mode() == BatchNormMode::Train);
  Tensor y = bn(p.x);
  Tensor rm0 = Tensor::zeros({3}), rv0 = Tensor::full({3}, 1.0);
  FN_REQUIRE_CLOSE(y, F::batch_norm2d(p.x, bn.weight, bn.bias, rm0, rv0, BatchNormMode::Train, {0.2, 1e-3}), 0, 0);
  REQUIRE(bitwise_equal(bn.running_mean, rm0));
  REQUIRE(bitwise_equal(bn.running_var, rv0));
  REQUIRE_FALSE(bitwise_equal(bn.running_mean, Tensor::zeros({3})));
  clear_tape();

  // Eval, set on the parent: the running statistics, unchanged.
  net.eval();
  REQUIRE_FALSE(bn.is_training());
  REQUIRE(bn.mode() == BatchNormMode::Eval);
  Tensor rm1 = bn.running_mean.clone(), rv1 = bn.running_var.clone();
  Tensor ye = bn(p.x);
  FN_REQUIRE_CLOSE(ye, F::batch_norm2d(p.x, bn.weight, bn.bias, rm1, rv1, BatchNormMode::Eval, {0.2, 1e-3}), 0, 0);
  REQUIRE(bitwise_equal(bn.running_mean, rm1));
  REQUIRE(bitwise_equal(bn.running_var, rv1));
  clear_tape();

  // Training with frozen statistics: the running statistics, unchanged, and gradients reach the parameters.
  net.train();
  bn.freeze_statistics(true);
  REQUIRE(bn.mode() == BatchNormMode::Frozen);
  net.zero_grad();
  backward(bn(p.x), p.gy);
  REQUIRE(bitwise_equal(bn.running_mean, rm1));
  REQUIRE(bn.weight.grad().defined());
  REQUIRE(bn.bias.grad().defined());
  bn.freeze_statistics(false);
  REQUIRE(bn.mode() == BatchNormMode::Train);

  // Without the affine parameters: buffers only.
  nn::BatchNorm2d plain(3, {}, false);
  REQUIRE(plain.named_parameters().empty());
  REQUIRE(plain.named_buffers().size() == 2);
  REQUIRE_THROWS_WITH(plain(Tensor::zeros({2, 4, 3, 3})), Catch::Contains("BatchNorm2d(3)"));
}

namespace {
// act(bn(x)) as one op against the two ops in turn (batch norm, then the elementwise kernel; backward: the
// elementwise backward on the output, then batch norm's), on one device.
struct Fused {
  Tensor y, gx, gw, gb;
};
Fused run_act(const Problem& p, BatchNormStats stats, BatchNormAlgo algo, kernels::BatchNormAct act, bool fused) {
  Fused r;
  Tensor rm = p.rm.clone(), rv = p.rv.clone(), mean = Tensor::empty({p.x.size(1)}, p.x.dtype(), p.x.device());
  Tensor inv_std = Tensor::empty_like(mean);
  r.y = Tensor::empty_like(p.x);
  r.gx = Tensor::empty_like(p.x);
  r.gw = Tensor::empty_like(mean);
  r.gb = Tensor::empty_like(mean);
  for (Tensor* t : {&r.y, &r.gx, &r.gw, &r.gb}) fn::test::poison(*t);
  const bool relu6 = act == kernels::BatchNormAct::Relu6;
  if (fused) {
    kernels::batch_norm2d_forward(p.x, p.w, p.b, rm, rv, stats, 0.1, 1e-5, r.y, mean, inv_std, algo, act);
    kernels::batch_norm2d_backward(p.gy, p.x, p.w, p.b, mean, inv_std, stats, r.gx, r.gw, r.gb, algo, act, r.y);
  } else {
    Tensor bn = Tensor::empty_like(p.x), g = Tensor::empty_like(p.x);
    kernels::batch_norm2d_forward(p.x, p.w, p.b, rm, rv, stats, 0.1, 1e-5, bn, mean, inv_std, algo);
    relu6 ? kernels::relu6_forward(bn, r.y) : kernels::relu_forward(bn, r.y);
    relu6 ? kernels::relu6_backward(r.y, p.gy, g) : kernels::relu_backward(r.y, p.gy, g);
    kernels::batch_norm2d_backward(g, p.x, p.w, Tensor(), mean, inv_std, stats, r.gx, r.gw, r.gb, algo);
  }
  for (Tensor* t : {&r.y, &r.gx, &r.gw, &r.gb}) *t = t->cpu();
  return r;
}
// A problem whose outputs cross 0 and 6, with channel 0 constant at bias 0 and channel 1 constant at bias 6 in
// Batch mode (outputs exactly on the activations' edges, where the gradient is masked).
Problem make_act_problem(const Shape& s, uint64_t seed, DType t, Device d = Device::CPU) {
  Problem p = make_problem(s, seed, DType::F64);
  Rng rng(seed, 12);
  p.x = Tensor::uniform(s, rng, -1.0, 1.0, DType::F64);
  p.w = Tensor::uniform({s[1]}, rng, 2.0, 4.0, DType::F64);
  p.b = Tensor::uniform({s[1]}, rng, 0.0, 6.0, DType::F64);
  auto x = p.x.to_vector_f64(), b = p.b.to_vector_f64();
  b[0] = 0, b[1] = 6;
  for (int64_t n = 0; n < s[0]; ++n)
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t k = 0; k < s[2] * s[3]; ++k) x[size_t((n * s[1] + c) * s[2] * s[3] + k)] = 0.25;
  p.x = Tensor::from(x, s);
  p.b = Tensor::from(b, {s[1]});
  for (Tensor* v : {&p.x, &p.w, &p.b, &p.rm, &p.rv, &p.gy}) *v = v->to(t).to(d);
  return p;
}
}  // namespace

TEST_CASE("batch_norm2d with ReLU / ReLU6 in one op: bitwise the two ops in turn, every CPU version") {
  for (auto act : {kernels::BatchNormAct::Relu, kernels::BatchNormAct::Relu6})
    for (auto algo : {BatchNormAlgo::Reference, BatchNormAlgo::Channels, BatchNormAlgo::Planes})
      for (const Shape& s : kShapes)
        for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running})
          for (DType t : {DType::F32, DType::F64}) {
            INFO(kernels::batch_norm_act_name(act) << " " << kernels::batch_norm_algo_name(algo) << " shape "
                 << shape_str(s) << (stats == BatchNormStats::Batch ? " batch" : " running")
                 << (t == DType::F64 ? " float64" : " float32"));
            const Problem p = make_act_problem(s, 21, t);
            const Fused one = run_act(p, stats, algo, act, true), two = run_act(p, stats, algo, act, false);
            CHECK(bitwise_equal(one.y, two.y));
            CHECK(bitwise_equal(one.gx, two.gx));
            CHECK(bitwise_equal(one.gw, two.gw));
            CHECK(bitwise_equal(one.gb, two.gb));
            // In Batch mode the constant channels put outputs exactly on the edges (0, and 6); the other channels
            // have outputs between.
            const auto y = one.y.to_vector_f64();
            if (stats == BatchNormStats::Batch) REQUIRE(std::count(y.begin(), y.end(), 0.0) > 0);
            if (stats == BatchNormStats::Batch && act == kernels::BatchNormAct::Relu6)
              REQUIRE(std::count(y.begin(), y.end(), 6.0) > 0);
            if (s[1] > 2) REQUIRE(std::any_of(y.begin(), y.end(), [](double v) { return v > 0 && v < 6; }));
          }
}

TEST_CASE("batch_norm2d with ReLU6: gradients (float64, central differences) and the module's call") {
  const Shape s{2, 3, 3, 3};
  Tensor rm = Tensor::zeros({3}, DType::F64), rv = Tensor::full({3}, 1.0, DType::F64);
  for (auto act : {kernels::BatchNormAct::Relu, kernels::BatchNormAct::Relu6})
    for (auto mode : {BatchNormMode::Train, BatchNormMode::Frozen}) {
      INFO(kernels::batch_norm_act_name(act));
      F::BatchNormArgs a;
      a.act = act;
      // Weights of 3 and biases around 3 put values on both sides of 0 and of 6, away from the edges by more
      // than the difference step.
      gradcheck([&](const std::vector<Tensor>& in) { return F::batch_norm2d(in[0], in[1], in[2], rm, rv, mode, a); },
                {leaf64(s, 1, -1.0, 2.0), leaf64({3}, 2, 2.5, 3.5), leaf64({3}, 3, 2.0, 4.0)});
    }
  // The module's call with an activation is the functional op with it, and leaves the module's args alone.
  nn::BatchNorm2d bn(3);
  Rng rng(4);
  Tensor x = Tensor::uniform({2, 3, 4, 4}, rng, -4.0, 4.0);
  bn.weight = Tensor::full({3}, 3.0);
  Tensor want = F::relu6(bn(x)), got = bn(x, kernels::BatchNormAct::Relu6);
  REQUIRE(bitwise_equal(got, want));
  REQUIRE(bn.args.act == kernels::BatchNormAct::None);
}

TEST_CASE("batch_norm2d with an activation: the reference's backward refuses a missing output, the fast paths "
          "rebuild it from x") {
  const Problem p = make_act_problem({2, 3, 2, 2}, 5, DType::F32);
  Tensor mean = Tensor::zeros({3}), inv_std = Tensor::full({3}, 1.0), gx = Tensor::empty_like(p.x), none;
  REQUIRE_THROWS_WITH(kernels::batch_norm2d_backward(p.gy, p.x, p.w, p.b, mean, inv_std, BatchNormStats::Batch, gx,
                                                     none, none, BatchNormAlgo::Reference, kernels::BatchNormAct::Relu6),
                      Catch::Contains("the forward's output is needed with the activation relu6 (reference)"));
  // Without the output the fast paths give the bits they give with it.
  for (auto algo : {BatchNormAlgo::Auto, BatchNormAlgo::Channels, BatchNormAlgo::Planes}) {
    INFO(kernels::batch_norm_algo_name(algo));
    const Fused with = run_act(p, BatchNormStats::Batch, algo, kernels::BatchNormAct::Relu6, true);
    Tensor rm = p.rm.clone(), rv = p.rv.clone(), y = Tensor::empty_like(p.x), g = Tensor::empty_like(p.x);
    kernels::batch_norm2d_forward(p.x, p.w, p.b, rm, rv, BatchNormStats::Batch, 0.1, 1e-5, y, mean, inv_std, algo,
                                  kernels::BatchNormAct::Relu6);
    kernels::batch_norm2d_backward(p.gy, p.x, p.w, p.b, mean, inv_std, BatchNormStats::Batch, g, none, none, algo,
                                   kernels::BatchNormAct::Relu6);
    REQUIRE(bitwise_equal(g, with.gx));
  }
}

TEST_CASE("batch_norm2d: the statistics alone (y undefined) are the full forward's, every CPU version") {
  for (auto algo : {BatchNormAlgo::Reference, BatchNormAlgo::Channels, BatchNormAlgo::Planes, BatchNormAlgo::Auto})
    for (const Shape& s : kShapes)
      for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running})
        for (DType t : {DType::F32, DType::F64}) {
          INFO(kernels::batch_norm_algo_name(algo) << " shape " << shape_str(s)
               << (stats == BatchNormStats::Batch ? " batch" : " running") << (t == DType::F64 ? " float64" : " float32"));
          const Problem p = make_problem(s, 31, t);
          const Result full = run(p, stats, algo);
          Tensor rm = p.rm.clone(), rv = p.rv.clone(), mean = Tensor::empty({s[1]}, t), inv_std = Tensor::empty_like(mean);
          Tensor none;
          kernels::batch_norm2d_forward(p.x, p.w, p.b, rm, rv, stats, 0.1, 1e-5, none, mean, inv_std, algo);
          REQUIRE(bitwise_equal(mean, full.mean));
          REQUIRE(bitwise_equal(inv_std, full.inv_std));
          REQUIRE(bitwise_equal(rm, full.rm));
          REQUIRE(bitwise_equal(rv, full.rv));
        }
}

TEST_CASE("batch_norm2d with ReLU / ReLU6 on CUDA matches the CPU (the two kernels in turn there)") {
  FN_REQUIRE_CUDA();
  for (auto act : {kernels::BatchNormAct::Relu, kernels::BatchNormAct::Relu6})
    for (const Shape& s : {Shape{2, 3, 4, 4}, Shape{4, 6, 7, 7}})
      for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running}) {
        INFO(kernels::batch_norm_act_name(act) << " shape " << shape_str(s));
        const Problem p = make_act_problem(s, 33, DType::F32), g = make_act_problem(s, 33, DType::F32, Device::CUDA);
        const Fused ref = run_act(p, stats, BatchNormAlgo::Reference, act, true);
        const Fused got = run_act(g, stats, BatchNormAlgo::Auto, act, true);
        FN_REQUIRE_CLOSE(got.y, ref.y, 2e-5, 1e-4);
        FN_REQUIRE_CLOSE(got.gx, ref.gx, 2e-5, 1e-4);
        FN_REQUIRE_CLOSE(got.gw, ref.gw, 2e-5, 1e-4);
        FN_REQUIRE_CLOSE(got.gb, ref.gb, 2e-5, 1e-4);
      }
}

TEST_CASE("batch_norm2d: CUDA matches the CPU reference (every version, both statistics)") {
  FN_REQUIRE_CUDA();
  // Small maps (a block per channel), a large map with few channels (Split cuts channels over blocks),
  // odd sizes (the vector loads' tails) and a constant channel.
  for (const Shape& s : {Shape{2, 3, 4, 4}, Shape{3, 5, 7, 7}, Shape{32, 4, 56, 56}, Shape{5, 7, 3, 5}, Shape{1, 6, 1, 1}})
    for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running})
      for (auto algo : {BatchNormAlgo::Auto, BatchNormAlgo::TwoPass, BatchNormAlgo::OnePass, BatchNormAlgo::Split,
                        BatchNormAlgo::Cudnn})
        for (bool affine : {true, false}) {
          if (algo == BatchNormAlgo::Cudnn && (!affine || s[0] * s[2] * s[3] == 1)) continue;  // cuDNN needs both
          INFO("shape " << shape_str(s) << " " << kernels::batch_norm_algo_name(algo)
                        << (stats == BatchNormStats::Batch ? " batch" : " running") << (affine ? " affine" : " plain"));
          Problem p = make_problem(s, 61);
          Problem g = p;
          for (Tensor* t : {&g.x, &g.w, &g.b, &g.rm, &g.rv, &g.gy}) *t = t->to(Device::CUDA);
          Result ref = run(p, stats, BatchNormAlgo::Reference, affine);
          Result got = run(g, stats, algo, affine);
          require_close(got, ref, 2e-5, 1e-4);
          // Deterministic: a second run gives the same bits.
          Result again = run(g, stats, algo, affine);
          REQUIRE(bitwise_equal(got.y, again.y));
          REQUIRE(bitwise_equal(got.gx, again.gx));
          REQUIRE(bitwise_equal(got.gb, again.gb));
        }
}

TEST_CASE("batch_norm2d: CUDA matches the CPU at edge shapes and with a large eps") {
  FN_REQUIRE_CUDA();
  // {8,1,45,45}: C = 1, v3 with scalar loads; {16,3,45,45}: v3 with V = 1; {4096,2,2,2}: rows of one float4;
  // {9000,3,1,1}: 1x1 maps, where a thread's step crosses many rows; {2,700,3,3}: more channels than 4 per SM,
  // so Split runs a block per channel; {1,1,1,1}: n = 1 with C = 1. eps = 0.5 (several times the variance):
  // eps misplaced (dropped, or added to the std) moves inv_std by tens of percent.
  for (const auto& [s, eps] : std::vector<std::pair<Shape, double>>{
           {{8, 1, 45, 45}, 1e-5}, {{16, 3, 45, 45}, 1e-5}, {{4096, 2, 2, 2}, 1e-5}, {{9000, 3, 1, 1}, 1e-5},
           {{2, 700, 3, 3}, 1e-5}, {{1, 1, 1, 1}, 1e-5}, {{3, 5, 7, 7}, 0.5}, {{32, 4, 56, 56}, 0.5}})
    for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running})
      for (auto algo : {BatchNormAlgo::Auto, BatchNormAlgo::TwoPass, BatchNormAlgo::OnePass, BatchNormAlgo::Split,
                        BatchNormAlgo::Cudnn})
        for (bool affine : {true, false}) {
          if (algo == BatchNormAlgo::Cudnn && (!affine || s[0] * s[2] * s[3] == 1)) continue;  // cuDNN needs both
          INFO("shape " << shape_str(s) << " eps " << eps << " " << kernels::batch_norm_algo_name(algo)
                        << (stats == BatchNormStats::Batch ? " batch" : " running") << (affine ? " affine" : " plain"));
          Problem p = make_problem(s, 67);
          Problem g = p;
          for (Tensor* t : {&g.x, &g.w, &g.b, &g.rm, &g.rv, &g.gy}) *t = t->to(Device::CUDA);
          require_close(run(g, stats, algo, affine, 0.1, eps), run(p, stats, BatchNormAlgo::Reference, affine, 0.1, eps),
                        2e-5, 1e-4);
        }
}

TEST_CASE("batch_norm2d: CUDA backward with only some gradients wanted matches the CPU") {
  FN_REQUIRE_CUDA();
  // want 0: gx only (Running: the no-sum path frozen layers take; cuDNN: dw and db into scratch); 1: gw and gb
  // only (v2's early return; cuDNN: dx into scratch); 2: gx and gb without gw.
  for (const Shape& s : {Shape{3, 5, 7, 7}, Shape{32, 4, 56, 56}})
    for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running})
      for (auto algo : {BatchNormAlgo::Auto, BatchNormAlgo::TwoPass, BatchNormAlgo::OnePass, BatchNormAlgo::Split,
                        BatchNormAlgo::Cudnn})
        for (int want : {0, 1, 2}) {
          INFO("shape " << shape_str(s) << " " << kernels::batch_norm_algo_name(algo)
                        << (stats == BatchNormStats::Batch ? " batch" : " running") << " want " << want);
          Problem p = make_problem(s, 73);
          Problem g = p;
          for (Tensor* t : {&g.x, &g.w, &g.b, &g.rm, &g.rv, &g.gy}) *t = t->to(Device::CUDA);
          auto grads = [&](const Problem& q, BatchNormAlgo a) {
            Tensor rm = q.rm.clone(), rv = q.rv.clone(), y = Tensor::empty_like(q.x);
            Tensor mean = Tensor::empty({s[1]}, q.x.dtype(), q.x.device()), is = Tensor::empty_like(mean);
            kernels::batch_norm2d_forward(q.x, q.w, q.b, rm, rv, stats, 0.1, 1e-5, y, mean, is, a);
            Tensor gx = want != 1 ? Tensor::empty_like(q.x) : Tensor();
            Tensor gw = want == 1 ? Tensor::empty_like(mean) : Tensor();
            Tensor gb = want != 0 ? Tensor::empty_like(mean) : Tensor();
            for (Tensor* t : {&gx, &gw, &gb})
              if (t->defined()) fn::test::poison(*t);
            kernels::batch_norm2d_backward(q.gy, q.x, q.w, Tensor(), mean, is, stats, gx, gw, gb, a);
            std::vector<Tensor> out;
            for (Tensor* t : {&gx, &gw, &gb}) out.push_back(t->defined() ? t->cpu() : Tensor());
            return out;
          };
          const std::vector<Tensor> ref = grads(p, BatchNormAlgo::Reference), got = grads(g, algo);
          for (size_t i = 0; i < 3; ++i) {
            REQUIRE(got[i].defined() == ref[i].defined());
            if (ref[i].defined()) FN_REQUIRE_CLOSE(got[i], ref[i], 2e-5, 1e-4);
          }
        }
}
