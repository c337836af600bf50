// Batch norms applied by the depthwise convolution as it reads (F::batch_norm2d_depthwise, MBConv's expand_bn,
// depthwise convolution and depthwise_bn): with kernels::DwInputNorm the kernels equal the batch norm's output
// convolved, and with kernels::DwOutputNorm the backward equals the one given the batch norm's gx, bitwise, on
// every CPU version, activation and block shape (the one-pass backward included); the op equals F::batch_norm2d,
// F::conv2d (and F::batch_norm2d) in turn, output, running statistics and every gradient, bitwise, in every
// mode; float64 gradient checks; misuse refused; CUDA (the ops in turn there) against the CPU.
#include <array>
#include <cmath>

#include "core/autograd.h"
#include "kernels/batchnorm2d.h"
#include "kernels/depthwise_conv2d.h"
#include "nn/batchnorm2d.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "tests/support/check.h"

using namespace fn;
using fn::F::BatchNormMode;
using fn::kernels::BatchNormAct;
using fn::kernels::BatchNormStats;
using fn::kernels::DepthwiseAlgo;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {

bool bitwise_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector_f64() == b.to_vector_f64();
}

// N, C, H, W, k, stride (pad = k / 2): whole 8-channel blocks (the vector transpose), ragged ones, both filters
// and strides, maps smaller than the filter, a row longer than the vector.
using Case = std::array<int, 6>;
// The last three have enough 8-channel blocks for the one-pass backward (depthwise_conv2d_backward) on 2 threads.
const std::vector<Case> kCases = {
    {2, 8, 7, 9, 3, 1}, {2, 16, 8, 8, 3, 2}, {1, 13, 11, 10, 5, 2}, {3, 24, 5, 5, 5, 1}, {2, 3, 7, 9, 3, 1},
    {1, 9, 2, 3, 5, 1}, {2, 8, 10, 7, 7, 2}, {2, 72, 6, 6, 3, 1},   {1, 64, 9, 9, 5, 2},  {1, 80, 7, 7, 5, 1},
};

// x and an output gradient around a batch norm whose outputs cross 0 and 6: its weights of 2-4 and biases of
// 1-5 on x's spread put ReLU6 on both edges.
struct Problem {
  Tensor x, bw, bb, rm, rv, w, gy;
  int stride, pad;
};
Problem make(const Case& c, uint64_t seed, DType t) {
  Rng rng(seed, 5);
  Problem p;
  const Shape ch{c[1]};
  p.x = Tensor::uniform({c[0], c[1], c[2], c[3]}, rng, -1.0, 2.0, DType::F64).to(t);
  p.bw = Tensor::uniform(ch, rng, 2.0, 4.0, DType::F64).to(t);
  p.bb = Tensor::uniform(ch, rng, 1.0, 5.0, DType::F64).to(t);
  p.rm = Tensor::uniform(ch, rng, 0.0, 1.0, DType::F64).to(t);
  p.rv = Tensor::uniform(ch, rng, 0.5, 2.0, DType::F64).to(t);
  p.w = Tensor::uniform({c[1], 1, c[4], c[4]}, rng, -1.0, 1.0, DType::F64).to(t);
  p.stride = c[5];
  p.pad = c[4] / 2;
  const auto g = kernels::depthwise_geom(p.x.shape(), p.w.shape(), p.stride, p.pad);
  p.gy = Tensor::uniform({g.N, g.C, g.P, g.Q}, rng, -1.0, 1.0, DType::F64).to(t);
  return p;
}
std::string describe(const Case& c) { return cat("x ", c[0], "x", c[1], "x", c[2], "x", c[3], " k", c[4], " s", c[5]); }

}  // namespace

TEST_CASE("depthwise_conv2d with DwInputNorm: bitwise the batch norm's output convolved, every CPU version") {
  uint64_t seed = 1;
  for (const Case& c : kCases)
    for (DType t : {DType::F32, DType::F64})
      for (BatchNormAct act : {BatchNormAct::None, BatchNormAct::Relu, BatchNormAct::Relu6})
        for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running}) {
          const Problem p = make(c, seed++, t);
          Tensor rm = p.rm.clone(), rv = p.rv.clone(), mean = Tensor::empty({c[1]}, t), inv_std = Tensor::empty_like(mean);
          Tensor xn = Tensor::empty_like(p.x);  // the batch norm's output, written by its own (Auto) path
          kernels::batch_norm2d_forward(p.x, p.bw, p.bb, rm, rv, stats, 0.1, 1e-5, xn, mean, inv_std,
                                        kernels::BatchNormAlgo::Auto, act);
          const kernels::DwInputNorm norm{p.bw, p.bb, mean, inv_std, act};
          for (DepthwiseAlgo algo : {DepthwiseAlgo::CpuChannels, DepthwiseAlgo::CpuPlanes, DepthwiseAlgo::Reference}) {
            INFO(describe(c) << (t == DType::F64 ? " float64 " : " float32 ") << kernels::batch_norm_act_name(act)
                             << (stats == BatchNormStats::Batch ? " batch " : " running ")
                             << kernels::depthwise_algo_name(algo));
            Tensor y0 = Tensor::empty_like(p.gy), y1 = Tensor::empty_like(p.gy);
            Tensor gw0 = Tensor::empty_like(p.w), gw1 = Tensor::empty_like(p.w), gw2 = Tensor::empty_like(p.w);
            Tensor gx0 = Tensor::empty_like(p.x), gx1 = Tensor::empty_like(p.x);
            for (Tensor* o : {&y0, &y1, &gw0, &gw1, &gw2, &gx0, &gx1}) fn::test::poison(*o);
            kernels::depthwise_conv2d_forward(xn, p.w, Tensor(), y0, p.stride, p.pad, false, algo);
            kernels::depthwise_conv2d_forward(p.x, p.w, Tensor(), y1, p.stride, p.pad, false, algo, norm);
            REQUIRE(bitwise_equal(y1, y0));
            kernels::depthwise_conv2d_backward_filter(xn, p.gy, gw0, p.stride, p.pad, algo);
            kernels::depthwise_conv2d_backward_filter(p.x, p.gy, gw1, p.stride, p.pad, algo, norm);
            REQUIRE(bitwise_equal(gw1, gw0));
            kernels::depthwise_conv2d_backward(xn, p.gy, p.w, &gx0, nullptr, p.stride, p.pad, algo);
            kernels::depthwise_conv2d_backward(p.x, p.gy, p.w, &gx1, &gw2, p.stride, p.pad, algo, norm);
            REQUIRE(bitwise_equal(gx1, gx0));
            REQUIRE(bitwise_equal(gw2, gw0));
          }
          // The activation reached both edges (the norm's clamp was exercised), and values between.
          const auto v = xn.to_vector_f64();
          if (act == BatchNormAct::Relu6) REQUIRE(std::count(v.begin(), v.end(), 6.0) > 0);
          if (act != BatchNormAct::None) REQUIRE(std::count(v.begin(), v.end(), 0.0) > 0);
          REQUIRE(std::any_of(v.begin(), v.end(), [](double e) { return e > 0 && e < 6; }));
        }
}

TEST_CASE("depthwise_conv2d_backward with DwOutputNorm: bitwise given the batch norm's gx, every CPU version") {
  uint64_t seed = 50;
  for (const Case& c : kCases)
    for (DType t : {DType::F32, DType::F64})
      for (BatchNormAct act : {BatchNormAct::None, BatchNormAct::Relu6})
        for (auto stats : {BatchNormStats::Batch, BatchNormStats::Running}) {
          // z: the convolution's output, which the batch norm (weights 2-4, biases 1-5: both ReLU6 edges) reads.
          const Problem p = make(c, seed++, t);
          Rng rng(seed, 3);
          const Tensor z = Tensor::uniform(p.gy.shape(), rng, -1.0, 2.0, DType::F64).to(t);
          Tensor rm = p.rm.clone(), rv = p.rv.clone(), mean = Tensor::empty({c[1]}, t), inv_std = Tensor::empty_like(mean);
          Tensor zn = Tensor::empty_like(z), gz = Tensor::empty_like(z), none;
          kernels::batch_norm2d_forward(z, p.bw, p.bb, rm, rv, stats, 0.1, 1e-5, zn, mean, inv_std,
                                        kernels::BatchNormAlgo::Auto, act);
          Tensor gw0 = Tensor::empty_like(p.bw), gb0 = Tensor::empty_like(p.bw), gw1 = Tensor::empty_like(p.bw),
                 gb1 = Tensor::empty_like(p.bw), coef = Tensor::empty({c[1], 2}, t);
          kernels::batch_norm2d_backward(p.gy, z, p.bw, p.bb, mean, inv_std, stats, gz, gw0, gb0,
                                         kernels::BatchNormAlgo::Auto, act);
          kernels::batch_norm2d_backward_coefficients(p.gy, z, p.bw, p.bb, mean, inv_std, stats, gw1, gb1, act, coef);
          REQUIRE(bitwise_equal(gw1, gw0));
          REQUIRE(bitwise_equal(gb1, gb0));
          const kernels::DwOutputNorm out{z, p.bw, p.bb, mean, inv_std, coef, act, stats == BatchNormStats::Batch};
          for (DepthwiseAlgo algo : {DepthwiseAlgo::CpuChannels, DepthwiseAlgo::CpuPlanes, DepthwiseAlgo::Reference}) {
            INFO(describe(c) << (t == DType::F64 ? " float64 " : " float32 ") << kernels::batch_norm_act_name(act)
                             << (stats == BatchNormStats::Batch ? " batch " : " running ")
                             << kernels::depthwise_algo_name(algo));
            Tensor gx0 = Tensor::empty_like(p.x), gx1 = Tensor::empty_like(p.x);
            Tensor w0 = Tensor::empty_like(p.w), w1 = Tensor::empty_like(p.w);
            for (Tensor* o : {&gx0, &gx1, &w0, &w1}) fn::test::poison(*o);
            kernels::depthwise_conv2d_backward(p.x, gz, p.w, &gx0, &w0, p.stride, p.pad, algo);
            kernels::depthwise_conv2d_backward(p.x, p.gy, p.w, &gx1, &w1, p.stride, p.pad, algo, {}, out);
            REQUIRE(bitwise_equal(gx1, gx0));
            REQUIRE(bitwise_equal(w1, w0));
          }
        }
}

TEST_CASE("F::batch_norm2d_depthwise: bitwise F::batch_norm2d, F::conv2d (and F::batch_norm2d) in turn: output, "
          "running statistics, every gradient, every mode") {
  uint64_t seed = 100;
  for (const Case& c : kCases)
    for (BatchNormMode mode : {BatchNormMode::Train, BatchNormMode::Frozen, BatchNormMode::Eval})
      for (bool bias : {false, true})
        for (bool after : {false, true}) {
          INFO(describe(c) << " mode " << int(mode) << " bias " << bias << " after " << after);
          const Problem p = make(c, seed++, DType::F32);
          Rng rng(seed, 9);
          const Tensor b = Tensor::uniform({c[1]}, rng, -1.0, 1.0), bw2 = Tensor::uniform({c[1]}, rng, 2.0, 4.0),
                       bb2 = Tensor::uniform({c[1]}, rng, 1.0, 5.0);
          F::BatchNormArgs bn;
          bn.act = BatchNormAct::Relu6;
          const F::Conv2dArgs a{p.stride, p.pad, c[1]};
          std::vector<Tensor> got[2];
          for (int fused = 0; fused < 2; ++fused) {
            std::vector<Tensor> leaves = {p.x.clone(), p.bw.clone(), p.bb.clone(), p.w.clone(), b.clone(), bw2.clone(),
                                          bb2.clone()};
            for (Tensor& l : leaves) l.set_requires_grad(true);
            Tensor rm = p.rm.clone(), rv = p.rv.clone(), rm2 = p.rm.clone(), rv2 = p.rv.clone();
            Tensor bl = bias ? leaves[4] : Tensor();
            const F::BatchNormRef before{leaves[1], leaves[2], rm, rv, mode, bn}, then{leaves[5], leaves[6], rm2, rv2, mode, bn};
            Tensor y;
            if (fused) {
              y = F::batch_norm2d_depthwise(leaves[0], before, leaves[3], bl, a, after ? &then : nullptr);
            } else {
              y = F::conv2d(F::batch_norm2d(leaves[0], leaves[1], leaves[2], rm, rv, mode, bn), leaves[3], bl, a);
              if (after) y = F::batch_norm2d(y, leaves[5], leaves[6], rm2, rv2, mode, bn);
            }
            backward(y, p.gy);
            got[fused] = {y, rm, rv, rm2, rv2};
            for (size_t k = 0; k < leaves.size(); ++k)
              if ((k != 4 || bias) && (k < 5 || after)) got[fused].push_back(leaves[k].grad());
          }
          for (size_t k = 0; k < got[0].size(); ++k) {
            INFO("result " << k << " (y, running mean and var before and after, then gx, g bn weight, g bn bias, gw, "
                 "[gb], [g weight and bias of the batch norm after])");
            REQUIRE(bitwise_equal(got[1][k], got[0][k]));
          }
        }
}

TEST_CASE("F::batch_norm2d_depthwise: gradients (float64, central differences), some inputs frozen") {
  const Case c{2, 3, 5, 4, 3, 1};
  for (BatchNormMode mode : {BatchNormMode::Train, BatchNormMode::Frozen})
    for (BatchNormAct act : {BatchNormAct::None, BatchNormAct::Relu6})
      for (bool after : {false, true}) {
        INFO("mode " << int(mode) << " " << kernels::batch_norm_act_name(act) << " after " << after);
        Tensor rm = Tensor::zeros({3}, DType::F64), rv = Tensor::full({3}, 1.0, DType::F64);
        Tensor rm2 = Tensor::zeros({3}, DType::F64), rv2 = Tensor::full({3}, 1.0, DType::F64);
        F::BatchNormArgs bn, bn2;
        bn.act = act;
        // The batch norm after: its ReLU6 only where its outputs stay inside (0, 6) (Train: small weights about 3).
        bn2.act = mode == BatchNormMode::Train ? act : BatchNormAct::None;
        const F::Conv2dArgs a{1, 1, 3};
        // Weights of 2.5-3.5 and biases of 2-4 on x's spread keep the outputs off ReLU6's edges by more than the
        // difference step.
        const auto f = [&](const std::vector<Tensor>& in) {
          const F::BatchNormRef before{in[1], in[2], rm, rv, mode, bn}, then{in[5], in[6], rm2, rv2, mode, bn2};
          return F::batch_norm2d_depthwise(in[0], before, in[3], after ? Tensor() : in[4], a, after ? &then : nullptr);
        };
        const auto x = [&] { return leaf64({c[0], c[1], c[2], c[3]}, 1, -1.0, 2.0); };
        const auto w2 = [&] { return leaf64({3}, 6, 0.2, 0.4); };
        const auto b2 = [&] { return leaf64({3}, 7, 2.8, 3.2); };
        gradcheck(f, {x(), leaf64({3}, 2, 2.5, 3.5), leaf64({3}, 3, 2.0, 4.0), leaf64({3, 1, 3, 3}, 4), leaf64({3}, 5),
                      w2(), b2()});
        // The batch norm frozen (a trunk frozen in a stage), the convolution training; and the reverse.
        Tensor bw = leaf64({3}, 2, 2.5, 3.5).set_requires_grad(false), bb = leaf64({3}, 3, 2.0, 4.0).set_requires_grad(false);
        gradcheck(f, {x(), bw, bb, leaf64({3, 1, 3, 3}, 4), leaf64({3}, 5), w2(), b2()});
        Tensor w = leaf64({3, 1, 3, 3}, 4).set_requires_grad(false);
        gradcheck(f, {x(), leaf64({3}, 2, 2.5, 3.5), leaf64({3}, 3, 2.0, 4.0), w, Tensor::zeros({3}, DType::F64),
                      w2().set_requires_grad(false), b2()});
      }
}

TEST_CASE("nn::Conv2d after a BatchNorm2d: the depthwise layer runs the one op, a dense one the ops in turn, same bits") {
  Rng rng(3);
  nn::BatchNorm2d bn(16), bn_dw(16), bn_dense(8);
  bn.weight = Tensor::uniform({16}, rng, 2.0, 4.0);
  bn.bias = Tensor::uniform({16}, rng, 1.0, 5.0);
  nn::Conv2dOptions dw;
  dw.groups = 16, dw.bias = false, dw.relu = false;
  const nn::Conv2d depthwise(16, 16, rng, dw), dense(16, 8, rng);
  const Tensor x = Tensor::uniform({2, 16, 6, 6}, rng, -1.0, 2.0);
  for (const nn::Conv2d* conv : {&depthwise, &dense}) {
    INFO("groups " << conv->opt.groups);
    const nn::BatchNorm2d& after = conv == &depthwise ? bn_dw : bn_dense;
    REQUIRE(bitwise_equal((*conv)(x, bn, BatchNormAct::Relu6), (*conv)(bn(x, BatchNormAct::Relu6))));
    REQUIRE(bitwise_equal((*conv)(x, bn, BatchNormAct::Relu6, &after, BatchNormAct::Relu6),
                          after((*conv)(bn(x, BatchNormAct::Relu6)), BatchNormAct::Relu6)));
  }
}

TEST_CASE("depthwise_conv2d with DwInputNorm: misuse is refused, naming the tensor") {
  const Problem p = make({1, 4, 5, 5, 3, 1}, 7, DType::F32);
  Tensor y = Tensor::empty_like(p.gy), mean = Tensor::zeros({4}), inv_std = Tensor::full({4}, 1.0);
  const kernels::DwInputNorm short_w{Tensor::full({3}, 1.0), Tensor(), mean, inv_std, BatchNormAct::Relu6};
  REQUIRE_THROWS_WITH(kernels::depthwise_conv2d_forward(p.x, p.w, Tensor(), y, 1, 1, false, DepthwiseAlgo::Auto, short_w),
                      Catch::Contains("DwInputNorm's") && Catch::Contains("does not fit x"));
  const kernels::DwInputNorm no_std{Tensor(), Tensor(), mean, Tensor(), BatchNormAct::None};
  REQUIRE_THROWS_WITH(kernels::depthwise_conv2d_forward(p.x, p.w, Tensor(), y, 1, 1, false, DepthwiseAlgo::Auto, no_std),
                      Catch::Contains("needs the batch norm's mean and inv_std"));
  const kernels::DwInputNorm f64{Tensor(), Tensor(), mean.to(DType::F64), inv_std.to(DType::F64), BatchNormAct::None};
  REQUIRE_THROWS_WITH(kernels::depthwise_conv2d_forward(p.x, p.w, Tensor(), y, 1, 1, false, DepthwiseAlgo::Auto, f64),
                      Catch::Contains("does not fit x"));
  const F::BatchNormRef before{p.bw, p.bb, p.rm, p.rv, BatchNormMode::Train, {}};
  REQUIRE_THROWS_WITH(F::batch_norm2d_depthwise(p.x, before, p.w, Tensor(), {1, 1, 1}),
                      Catch::Contains("groups = the channel count"));
  const kernels::DwOutputNorm short_z{Tensor::zeros({1, 4, 4, 4}), Tensor(), Tensor(), mean, inv_std,
                                      Tensor::zeros({4, 2}), BatchNormAct::None, true};
  Tensor gx = Tensor::empty_like(p.x), gw = Tensor::empty_like(p.w);
  Tensor gz = Tensor::empty_like(p.x), coef3 = Tensor::zeros({3, 2});
  REQUIRE_THROWS_WITH(kernels::batch_norm2d_backward_apply(p.x, p.x, p.bw, p.bb, mean, inv_std, BatchNormStats::Batch,
                                                           BatchNormAct::None, coef3, gz),
                      Catch::Contains("coef must be (4, 2)"));
  REQUIRE_THROWS_WITH(kernels::depthwise_conv2d_backward(p.x, p.gy, p.w, &gx, &gw, 1, 1, DepthwiseAlgo::Auto, {},
                                                         short_z),
                      Catch::Contains("DwOutputNorm's z") && Catch::Contains("does not fit the gradient"));
}

TEST_CASE("F::batch_norm2d_depthwise on CUDA (the two ops there) matches the CPU, output and gradients") {
  FN_REQUIRE_CUDA();
  uint64_t seed = 300;
  for (const Case& c : {Case{2, 16, 15, 15, 3, 2}, Case{3, 24, 14, 14, 5, 1}}) {
    INFO(describe(c));
    const Problem p = make(c, seed++, DType::F32);
    F::BatchNormArgs bn;
    bn.act = BatchNormAct::Relu6;
    std::vector<Tensor> got[2];
    for (int k = 0; k < 2; ++k) {
      const Device d = k == 0 ? Device::CPU : Device::CUDA;
      std::vector<Tensor> leaves = {p.x.to(d), p.bw.to(d), p.bb.to(d), p.w.to(d)};
      for (Tensor& l : leaves) l.set_requires_grad(true);
      // clone(): to() of a CPU tensor to the CPU is the tensor itself, and the CPU pass updates its statistics
      Tensor rm = p.rm.clone().to(d), rv = p.rv.clone().to(d);
      const F::BatchNormRef before{leaves[1], leaves[2], rm, rv, BatchNormMode::Train, bn};
      Tensor y = F::batch_norm2d_depthwise(leaves[0], before, leaves[3], Tensor(), {p.stride, p.pad, c[1]});
      backward(y, p.gy.to(d));
      got[k] = {y.cpu(), rm.cpu(), rv.cpu()};
      for (Tensor& l : leaves) got[k].push_back(l.grad().cpu());
    }
    const double n = double(c[0]) * c[2] * c[3];
    for (size_t k = 0; k < got[0].size(); ++k) {
      INFO("result " << k);
      FN_REQUIRE_CLOSE(got[1][k], got[0][k], 1e-4 * std::sqrt(n), 1e-4);
    }
  }
}
