// Depthwise convolution (groups = channels): the fast CPU path against the plain-loop reference, float64
// gradient checks through F::conv2d, equality with the dense convolution run channel by channel, batch
// invariance, bitwise determinism on 1 and 2 threads, and CUDA (v1, v2, cuDNN) against the CPU.
#include <array>

#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/depthwise_conv2d.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "tests/support/check.h"

using namespace fn;
using fn::kernels::DepthwiseAlgo;
using fn::kernels::DwGeom;
using fn::test::gradcheck;

namespace {

// N, C, H, W, k, stride (pad = k / 2)
using Case = std::array<int, 6>;
const std::vector<Case> kCases = {
    {1, 1, 1, 1, 3, 1},    // 1x1 map: every tap but the centre outside
    {2, 3, 7, 9, 3, 1},    // odd, non-square
    {2, 3, 7, 9, 3, 2},    // stride 2, odd sizes (the last row/column of phases partly outside)
    {1, 4, 8, 8, 3, 2},    // stride 2, even sizes
    {2, 2, 9, 6, 5, 1},    // 5x5
    {1, 3, 11, 10, 5, 2},  // 5x5 stride 2
    {1, 2, 2, 3, 5, 1},    // map smaller than the filter
    {3, 2, 5, 17, 5, 2},   // a row longer than the filter-gradient's lane count
    {2, 3, 9, 8, 7, 1},    // 7x7: the generic (not register-blocked) passes
    {2, 2, 10, 7, 7, 2},   // 7x7 stride 2
    {2, 3, 6, 5, 1, 2},    // 1x1 stride 2, pad 0: phases with no tap
};

struct Problem {
  Tensor x, w, b;
  int stride, pad;
};
Problem make(const Case& c, uint64_t seed, DType t = DType::F64) {
  Rng rng(seed);
  Problem p;
  p.x = Tensor::uniform({c[0], c[1], c[2], c[3]}, rng, -1, 1, t);
  p.w = Tensor::uniform({c[1], 1, c[4], c[4]}, rng, -1, 1, t);
  p.b = Tensor::uniform({c[1]}, rng, -1, 1, t);
  p.stride = c[5];
  p.pad = c[4] / 2;
  return p;
}
std::string describe(const Case& c) {
  return cat("x ", c[0], "x", c[1], "x", c[2], "x", c[3], " k", c[4], " s", c[5]);
}

struct Grads {
  Tensor y, gx, gw;
};
// Forward (bias, optional ReLU), data and filter gradients of one algorithm, outputs poisoned first.
Grads run(const Problem& p, const Tensor& gy, DepthwiseAlgo algo, bool relu = false) {
  const Device d = gy.device();
  DwGeom g = kernels::depthwise_geom(p.x.shape(), p.w.shape(), p.stride, p.pad);
  Grads r;
  r.y = Tensor::empty({g.N, g.C, g.P, g.Q}, gy.dtype(), d);
  r.gx = Tensor::empty(p.x.shape(), gy.dtype(), d);
  r.gw = Tensor::empty(p.w.shape(), gy.dtype(), d);
  for (Tensor* t : {&r.y, &r.gx, &r.gw}) fn::test::poison(*t);
  Tensor x = p.x.to(d), w = p.w.to(d), b = p.b.defined() ? p.b.to(d) : Tensor();
  kernels::depthwise_conv2d_forward(x, w, b, r.y, p.stride, p.pad, relu, algo);
  kernels::depthwise_conv2d_backward_data(gy, w, r.gx, p.stride, p.pad, algo);
  kernels::depthwise_conv2d_backward_filter(x, gy, r.gw, p.stride, p.pad, algo);
  return r;
}
Tensor grad_for(const Problem& p, uint64_t seed) {
  DwGeom g = kernels::depthwise_geom(p.x.shape(), p.w.shape(), p.stride, p.pad);
  Rng rng(seed);
  return Tensor::uniform({g.N, g.C, g.P, g.Q}, rng, -1, 1, p.x.dtype());
}

// Channel c of a (N, C, H, W) tensor as (N, 1, H, W).
Tensor channel(const Tensor& t, int64_t c) {
  const int64_t N = t.size(0), C = t.size(1), hw = t.size(2) * t.size(3);
  auto v = t.to_vector_f64();
  std::vector<double> o;
  for (int64_t n = 0; n < N; ++n) o.insert(o.end(), v.begin() + (n * C + c) * hw, v.begin() + (n * C + c + 1) * hw);
  return Tensor::from(o, {N, 1, t.size(2), t.size(3)}).to(t.dtype());
}

}  // namespace

TEST_CASE("depthwise_conv2d: both fast CPU paths match the plain-loop reference (float32 and float64)") {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    for (DType t : {DType::F64, DType::F32}) {
      Problem p = make(c, seed++, t);
      Tensor gy = grad_for(p, seed++);
      for (auto [algo, relu] :
           {std::pair{DepthwiseAlgo::CpuPlanes, false}, std::pair{DepthwiseAlgo::CpuPlanes, true},
            std::pair{DepthwiseAlgo::CpuChannels, false}, std::pair{DepthwiseAlgo::CpuChannels, true}}) {
        INFO(describe(c) << (t == DType::F64 ? " float64 " : " float32 ") << kernels::depthwise_algo_name(algo)
                         << " relu " << relu);
        Grads fast = run(p, gy, algo, relu), ref = run(p, gy, DepthwiseAlgo::Reference, relu);
        const double tol = t == DType::F64 ? 1e-13 : 1e-5;
        FN_REQUIRE_CLOSE(fast.y, ref.y, tol, tol);
        FN_REQUIRE_CLOSE(fast.gx, ref.gx, tol, tol);
        FN_REQUIRE_CLOSE(fast.gw, ref.gw, 10 * tol, tol);
      }
    }
  }
}

TEST_CASE("depthwise_conv2d: gradients of x, w and b (float64, central differences, through F::conv2d)") {
  uint64_t seed = 100;
  for (const Case& c : kCases) {
    Problem p = make(c, seed++);
    INFO(describe(c));
    for (Tensor* t : {&p.x, &p.w, &p.b}) t->set_requires_grad(true);
    F::Conv2dArgs a{p.stride, p.pad, c[1]};
    gradcheck([a](const std::vector<Tensor>& v) { return F::conv2d(v[0], v[1], v[2], a); }, {p.x, p.w, p.b});
    gradcheck([a](const std::vector<Tensor>& v) { return F::conv2d(v[0], v[1], Tensor(), a); }, {p.x, p.w});
  }
}

TEST_CASE("depthwise_conv2d: equals the dense convolution (im2col + GEMM) run channel by channel") {
  uint64_t seed = 200;
  for (const Case& c : kCases) {
    Problem p = make(c, seed++, DType::F32);
    Tensor gy = grad_for(p, seed++);
    INFO(describe(c));
    Grads dw = run(p, gy, DepthwiseAlgo::Auto, true);
    kernels::ConvOptions im2col{kernels::ConvAlgo::Im2colGemm};
    for (int64_t ch = 0; ch < p.x.size(1); ++ch) {
      Tensor xc = channel(p.x, ch), wc = channel(p.w.view({1, p.w.size(0), p.w.size(2), p.w.size(3)}), ch);
      Tensor bc = Tensor::from(std::vector<float>{p.b.to_vector()[size_t(ch)]}, {1}), gyc = channel(gy, ch);
      Tensor yc = Tensor::empty(gyc.shape()), gxc = Tensor::empty_like(xc), gwc = Tensor::empty_like(wc);
      kernels::conv2d_forward(xc, wc, bc, yc, p.stride, p.pad, true, im2col);
      kernels::conv2d_backward_data(gyc, wc, gxc, p.stride, p.pad, im2col);
      kernels::conv2d_backward_filter(xc, gyc, gwc, p.stride, p.pad, im2col);
      INFO("channel " << ch);
      FN_REQUIRE_CLOSE(channel(dw.y, ch), yc, 1e-5, 1e-5);
      FN_REQUIRE_CLOSE(channel(dw.gx, ch), gxc, 1e-5, 1e-5);
      FN_REQUIRE_CLOSE(channel(dw.gw.view({1, p.w.size(0), p.w.size(2), p.w.size(3)}), ch), gwc, 1e-4, 1e-5);
    }
  }
}

TEST_CASE("depthwise_conv2d: a batch of N equals N batches of 1 (N = 1, 33, 45), bitwise") {
  for (int64_t N : {1, 33, 45}) {
    for (Case c : {Case{int(N), 8, 9, 11, 3, 1}, Case{int(N), 5, 10, 7, 5, 2}}) {
      Problem p = make(c, 300 + uint64_t(N), DType::F32);
      Tensor gy = grad_for(p, 400);
      INFO(describe(c));
      for (DepthwiseAlgo algo : {DepthwiseAlgo::CpuPlanes, DepthwiseAlgo::CpuChannels}) {
        INFO(kernels::depthwise_algo_name(algo));
        Grads all = run(p, gy, algo);
        for (int64_t n = 0; n < N; ++n) {
          Problem one = p;
          one.x = p.x.slice0(n, n + 1).clone();
          Grads r = run(one, gy.slice0(n, n + 1).clone(), algo);
          REQUIRE(r.y.to_vector() == all.y.slice0(n, n + 1).clone().to_vector());
          REQUIRE(r.gx.to_vector() == all.gx.slice0(n, n + 1).clone().to_vector());
        }
      }
    }
  }
}

TEST_CASE("depthwise_conv2d: CPU runs repeat bitwise, on 1 thread and on 2 (the filter gradient included)") {
  const int keep = kernels::blas_threads();
  // Large enough (> 2e5 multiply-adds) for the threaded paths; 7 channels do not split evenly.
  for (Case c : {Case{4, 7, 28, 28, 5, 1}, Case{3, 16, 29, 27, 3, 2}}) {
    Problem p = make(c, 500, DType::F32);
    Tensor gy = grad_for(p, 501);
    INFO(describe(c));
    for (DepthwiseAlgo algo : {DepthwiseAlgo::CpuPlanes, DepthwiseAlgo::CpuChannels}) {
      INFO(kernels::depthwise_algo_name(algo));
      kernels::set_blas_threads(1);
      Grads one = run(p, gy, algo, true), again = run(p, gy, algo, true);
      kernels::set_blas_threads(2);
      Grads two = run(p, gy, algo, true);
      kernels::set_blas_threads(keep);
      for (const Grads* r : {&again, &two}) {
        REQUIRE(r->y.to_vector() == one.y.to_vector());
        REQUIRE(r->gx.to_vector() == one.gx.to_vector());
        REQUIRE(r->gw.to_vector() == one.gw.to_vector());
      }
    }
  }
}

TEST_CASE("conv2d: groups other than 1 and the channel count are refused, with the reason") {
  Rng rng(1);
  Tensor x = Tensor::uniform({1, 4, 5, 5}, rng, -1, 1);
  REQUIRE_THROWS_WITH(F::conv2d(x, Tensor::uniform({4, 2, 3, 3}, rng, -1, 1), Tensor(), {1, 1, 2}),
                      Catch::Contains("groups must be 1 or the channel count"));
  REQUIRE_THROWS_WITH(F::conv2d(x, Tensor::uniform({8, 1, 3, 3}, rng, -1, 1), Tensor(), {1, 1, 4}),
                      Catch::Contains("one per channel"));
  Tensor y = Tensor::empty({1, 4, 5, 5});
  REQUIRE_THROWS_AS(kernels::depthwise_conv2d_forward(x, Tensor::uniform({4, 1, 3, 3}, rng, -1, 1), Tensor(), y, 1, 1,
                                                      false, DepthwiseAlgo::V2Tiled),
                    Error);  // a CUDA version on CPU tensors
}

TEST_CASE("nn::Conv2d: depthwise, strided and bias-free layers; fan-out init divided by the groups") {
  Rng rng(3);
  nn::Conv2dOptions o;
  o.kernel = 5;
  o.stride = 2;
  o.pad = 2;
  o.groups = 16;
  o.bias = false;
  o.relu = false;
  nn::Conv2d dw(16, 16, rng, o);
  REQUIRE(dw.weight.shape() == Shape({16, 1, 5, 5}));
  REQUIRE(!dw.bias.defined());
  REQUIRE(dw.parameters().size() == 1);
  double ss = 0;
  for (double v : dw.weight.to_vector_f64()) ss += v * v;
  const double var = ss / double(dw.weight.numel()), want = 2.0 / (16.0 * 25 / 16);
  REQUIRE(var > 0.6 * want);
  REQUIRE(var < 1.4 * want);
  Tensor x = Tensor::uniform({2, 16, 11, 11}, rng, -1, 1);
  Tensor y = dw(x);
  REQUIRE(y.shape() == Shape({2, 16, 6, 6}));
  Tensor ref = Tensor::empty(y.shape());
  kernels::depthwise_conv2d_forward(x, dw.weight, Tensor(), ref, 2, 2, false, DepthwiseAlgo::Reference);
  FN_REQUIRE_CLOSE(y, ref, 1e-5, 1e-5);
  o.groups = 4;
  REQUIRE_THROWS_AS(nn::Conv2d(16, 16, rng, o), Error);
}

TEST_CASE("depthwise_conv2d: channel path with whole 8-channel blocks, pads other than k/2, ragged row ends") {
  // 9 channels: one block of 8 (the register transposes) and one of 1 (the element loops). Widths give rows of
  // fewer than 4 outputs, exactly 4 and a ragged end (the 4-output blocks moved back), at every pad the
  // phases of the stride-2 data gradient see.
  uint64_t seed = 900;
  for (int k : {3, 5})
    for (int stride : {1, 2})
      for (int pad = 0; pad <= k / 2 + 1; ++pad)
        for (auto [h, w] : {std::pair{5, 5}, std::pair{9, 7}, std::pair{14, 13}, std::pair{4, 12}}) {
          if (h + 2 * pad < k || w + 2 * pad < k) continue;
          for (DType t : {DType::F32, DType::F64}) {
            Problem p = make({2, 9, h, w, k, stride}, seed++, t);
            p.pad = pad;
            Tensor gy = grad_for(p, seed++);
            INFO("x 2x9x" << h << "x" << w << " k" << k << " s" << stride << " pad " << pad
                          << (t == DType::F64 ? " float64" : " float32"));
            Grads fast = run(p, gy, DepthwiseAlgo::CpuChannels), ref = run(p, gy, DepthwiseAlgo::Reference);
            const double tol = t == DType::F64 ? 1e-13 : 1e-5;
            FN_REQUIRE_CLOSE(fast.y, ref.y, tol, tol);
            FN_REQUIRE_CLOSE(fast.gx, ref.gx, tol, tol);
            FN_REQUIRE_CLOSE(fast.gw, ref.gw, 10 * tol, tol);
          }
        }
}

TEST_CASE("depthwise_conv2d_backward: both gradients in one call equal the two calls, bitwise; either one alone") {
  // Every shape of kCases (too few channels for the one pass: the two calls) and shapes with 9 channel blocks
  // (the one pass on 1 and 2 threads; 70 channels: a last block of 6) at every pad and both strides, on each
  // CPU version, in float32 and float64: the one pass (channels; stride 1, or stride 2 with 3x3 and 5x5) must
  // round as the two calls do.
  std::vector<std::pair<Case, int>> cases;  // (shape, pad)
  for (const Case& c : kCases) cases.push_back({c, c[4] / 2});
  for (int k : {3, 5})
    for (int stride : {1, 2})
      for (int pad = 0; pad < k; ++pad) cases.push_back({Case{2, 70, 7, 6, k, stride}, pad});
  cases.push_back({Case{3, 72, 14, 13, 3, 1}, 1});  // whole blocks, rows with a ragged end
  cases.push_back({Case{2, 72, 15, 14, 5, 2}, 2});
  cases.push_back({Case{2, 70, 9, 9, 7, 2}, 3});    // 7x7 at stride 2: the two calls
  const int keep = kernels::blas_threads();
  uint64_t seed = 1200;
  for (auto [c, pad] : cases)
    for (DType t : {DType::F32, DType::F64})
      for (DepthwiseAlgo algo : {DepthwiseAlgo::Auto, DepthwiseAlgo::CpuChannels, DepthwiseAlgo::CpuPlanes,
                                 DepthwiseAlgo::Reference})
        for (int threads : {1, 2}) {
          Problem p = make(c, seed++, t);
          p.pad = pad;
          const Tensor gy = grad_for(p, seed++);
          INFO(describe(c) << " pad " << pad << (t == DType::F64 ? " float64 " : " float32 ")
                           << kernels::depthwise_algo_name(algo) << ", " << threads << " threads");
          kernels::set_blas_threads(threads);
          const Grads two_calls = run(p, gy, algo);
          Tensor gx = Tensor::empty(p.x.shape(), t), gw = Tensor::empty(p.w.shape(), t);
          fn::test::poison(gx), fn::test::poison(gw);
          kernels::depthwise_conv2d_backward(p.x, gy, p.w, &gx, &gw, p.stride, p.pad, algo);
          CHECK(gx.to_vector_f64() == two_calls.gx.to_vector_f64());
          CHECK(gw.to_vector_f64() == two_calls.gw.to_vector_f64());
          Tensor gx_only = Tensor::empty(p.x.shape(), t), gw_only = Tensor::empty(p.w.shape(), t);
          kernels::depthwise_conv2d_backward(p.x, gy, p.w, &gx_only, nullptr, p.stride, p.pad, algo);
          kernels::depthwise_conv2d_backward(p.x, gy, p.w, nullptr, &gw_only, p.stride, p.pad, algo);
          kernels::set_blas_threads(keep);
          CHECK(gx_only.to_vector_f64() == two_calls.gx.to_vector_f64());
          CHECK(gw_only.to_vector_f64() == two_calls.gw.to_vector_f64());
        }
  // A gradient of the wrong shape is refused with the shapes named, on the one pass and on the two calls.
  for (int threads : {1, 64}) {
    kernels::set_blas_threads(threads);
    Problem p = make(Case{1, 72, 6, 6, 3, 1}, 7, DType::F32);
    Tensor gy = grad_for(p, 8), gx = Tensor::empty({1, 72, 6, 5}), gw = Tensor::empty(p.w.shape());
    CHECK_THROWS_WITH(kernels::depthwise_conv2d_backward(p.x, gy, p.w, &gx, &gw, 1, 1),
                      Catch::Contains("should be") && Catch::Contains("[1,72,6,5]"));
  }
  kernels::set_blas_threads(keep);
}

TEST_CASE("depthwise_conv2d: CUDA (v1, v2 tiled, cuDNN grouped) matches the CPU, forward and backward") {
  FN_REQUIRE_CUDA();
  std::vector<Case> cases = kCases;
  for (Case c : {Case{2, 32, 56, 56, 3, 1}, Case{3, 33, 45, 45, 5, 2}, Case{2, 40, 14, 14, 5, 1},
                 Case{1, 24, 112, 112, 3, 2}, Case{4, 64, 7, 7, 3, 1}})
    cases.push_back(c);
  uint64_t seed = 600;
  for (const Case& c : cases) {
    Problem p = make(c, seed++, DType::F32);
    Tensor gy = grad_for(p, seed++);
    // The reference in float64 from the same float32 values, so the tolerance measures the GPU's rounding.
    Problem p64{p.x.to(DType::F64), p.w.to(DType::F64), p.b.to(DType::F64), p.stride, p.pad};
    DwGeom g = kernels::depthwise_geom(p.x.shape(), p.w.shape(), p.stride, p.pad);
    Grads ref = run(p64, gy.to(DType::F64), DepthwiseAlgo::Reference);
    for (DepthwiseAlgo algo : {DepthwiseAlgo::V1Naive, DepthwiseAlgo::V2Tiled, DepthwiseAlgo::Cudnn}) {
      INFO(describe(c) << " " << kernels::depthwise_algo_name(algo));
      Grads r = run(p, gy.to(Device::CUDA), algo);
      FN_REQUIRE_CLOSE(r.y.cpu(), ref.y, 1e-5 * g.rs(), 1e-4);
      FN_REQUIRE_CLOSE(r.gx.cpu(), ref.gx, 1e-5 * g.rs(), 1e-4);
      FN_REQUIRE_CLOSE(r.gw.cpu(), ref.gw, 1e-5 * std::sqrt(double(g.N * g.pq())) * 4, 1e-4);
      // Deterministic: a second run is bitwise the first. (On cudasim threads run in one fixed order, so the
      // check proves nothing there and is left to a GPU.)
      if (algo != DepthwiseAlgo::Cudnn && !cuda_simulated()) {
        Grads again = run(p, gy.to(Device::CUDA), algo);
        REQUIRE(again.gw.to_vector() == r.gw.to_vector());
        REQUIRE(again.gx.to_vector() == r.gx.to_vector());
      }
    }
  }
}

TEST_CASE("depthwise_conv2d: CUDA with ReLU, no bias, pad != k/2, several filter-gradient slices, N*C > 65535") {
  FN_REQUIRE_CUDA();
  // The paths the first CUDA test does not reach: the fused ReLU, a missing bias, the flipped data gradient
  // with pad' != pad, the filter gradient's stage 1 over more than one slice (N*P*Q >= 32768), and v2's
  // launches in batches of whole images (gridDim.y <= 65535).
  struct Extra {
    Case c;
    int pad;
    bool relu, bias, with_cudnn;
  };
  const std::vector<Extra> extras = {
      {{4, 5, 100, 100, 3, 1}, 1, true, true, true},    // N*P*Q = 40000: 2 slices
      {{7, 3, 110, 110, 5, 1}, 2, false, false, true},  // 84700: uneven slices, 5x5
      {{5, 2, 90, 90, 7, 1}, 3, true, false, true},     // 40500, 7x7
      {{64, 3, 45, 45, 3, 2}, 1, false, true, true},    // 64*23*23 = 33856: 2 slices at stride 2
      {{3, 22000, 2, 3, 3, 1}, 1, true, true, false},   // N*C = 66000: v2 in launches of 2 + 1 images
      {{2, 4, 9, 9, 3, 1}, 0, false, true, true},       // pad 0: the flipped data gradient with pad' = 2
      {{2, 4, 9, 10, 5, 2}, 1, true, true, true},       // 5x5, pad 1, stride 2
      {{1, 33, 8, 9, 3, 1}, 1, true, true, true},       // Q = 9: one partial 16-wide tile; N = 1
  };
  uint64_t seed = 800;
  for (const Extra& e : extras) {
    Problem p = make(e.c, seed++, DType::F32);
    p.pad = e.pad;
    if (!e.bias) p.b = Tensor();
    Tensor gy = grad_for(p, seed++);
    DwGeom g = kernels::depthwise_geom(p.x.shape(), p.w.shape(), p.stride, p.pad);
    Problem p64{p.x.to(DType::F64), p.w.to(DType::F64), e.bias ? p.b.to(DType::F64) : Tensor(), p.stride, p.pad};
    Grads ref = run(p64, gy.to(DType::F64), DepthwiseAlgo::Reference, e.relu);
    std::vector<DepthwiseAlgo> algos = {DepthwiseAlgo::V1Naive, DepthwiseAlgo::V2Tiled, DepthwiseAlgo::Auto};
    if (e.with_cudnn) algos.push_back(DepthwiseAlgo::Cudnn);
    // On cudasim the tens of thousands of blocks of a shape with N*C > 65535 take minutes a version: there it
    // runs only the version it is for (v2 in batches of whole images); a GPU runs them all.
    if (cuda_simulated() && g.N * g.C > 65535) algos = {DepthwiseAlgo::V2Tiled};
    for (DepthwiseAlgo algo : algos) {
      INFO(describe(e.c) << " pad " << e.pad << " relu " << e.relu << " bias " << e.bias << " "
                         << kernels::depthwise_algo_name(algo));
      Grads r = run(p, gy.to(Device::CUDA), algo, e.relu);
      FN_REQUIRE_CLOSE(r.y.cpu(), ref.y, 1e-5 * g.rs(), 1e-4);
      FN_REQUIRE_CLOSE(r.gx.cpu(), ref.gx, 1e-5 * g.rs(), 1e-4);
      FN_REQUIRE_CLOSE(r.gw.cpu(), ref.gw, 1e-5 * std::sqrt(double(g.N * g.pq())) * 4, 1e-4);
      if (algo != DepthwiseAlgo::Cudnn && !cuda_simulated()) {  // the multi-slice reduction is deterministic too
        Grads again = run(p, gy.to(Device::CUDA), algo, e.relu);
        REQUIRE(again.gw.to_vector() == r.gw.to_vector());
      }
    }
  }
}

TEST_CASE("depthwise_conv2d: CUDA F::conv2d and conv2d_relu with groups = C (Lite0's training path) match the CPU") {
  FN_REQUIRE_CUDA();
  uint64_t seed = 900;
  for (const Case& c : {Case{2, 16, 15, 15, 3, 2}, Case{3, 24, 14, 14, 5, 1}, Case{1, 40, 7, 7, 5, 1}}) {
    Problem p = make(c, seed++, DType::F32);
    const F::Conv2dArgs a{p.stride, p.pad, c[1]};
    const Tensor seedg = grad_for(p, seed++);
    for (bool relu : {false, true}) {
      INFO(describe(c) << " relu " << relu);
      std::vector<Tensor> got[2];
      for (int k = 0; k < 2; ++k) {
        const Device d = k == 0 ? Device::CPU : Device::CUDA;
        // Fresh leaves on each device, so the CPU graph's gradients never reach the CUDA run.
        Tensor x = Tensor::from(p.x.to_vector(), p.x.shape(), d).set_requires_grad(true);
        Tensor w = Tensor::from(p.w.to_vector(), p.w.shape(), d).set_requires_grad(true);
        Tensor b = Tensor::from(p.b.to_vector(), p.b.shape(), d).set_requires_grad(true);
        Tensor y = relu ? F::conv2d_relu(x, w, b, a) : F::conv2d(x, w, b, a);
        backward(y, seedg.to(d));
        got[k] = {y.cpu(), x.grad().cpu(), w.grad().cpu(), b.grad().cpu()};
      }
      const double n = double(c[0]) * c[2] * c[3], rs = double(c[4]) * c[4];
      FN_REQUIRE_CLOSE(got[1][0], got[0][0], 1e-5 * rs, 1e-4);
      FN_REQUIRE_CLOSE(got[1][1], got[0][1], 1e-5 * rs, 1e-4);
      FN_REQUIRE_CLOSE(got[1][2], got[0][2], 1e-4 * std::sqrt(n), 1e-4);
      FN_REQUIRE_CLOSE(got[1][3], got[0][3], 1e-4 * std::sqrt(n), 1e-4);
    }
  }
}
