// The backbones' pools. Global average pooling (kernels/global_avg_pool2d.h): a worked example, the fast CPU
// path against the reference, float64 gradient checks, batch N equal to N batches of 1 (N = 1, 33, 45),
// bitwise repeatability, CUDA (every version) against the CPU. Max pooling 3x3 stride 2 pad 1 (ResNet's stem
// pool, kernels/maxpool2d.h): odd and even sizes against a brute-force reference, ties as PyTorch (values
// from torch 1.13), float64 gradient checks, batch invariance, CUDA (cuDNN) against the CPU.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/global_avg_pool2d.h"
#include "kernels/maxpool2d.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::test::gradcheck;
using fn::test::leaf64;
using kernels::GlobalAvgPoolBackward;
using kernels::GlobalAvgPoolForward;

namespace {

Tensor random(const Shape& s, uint64_t seed, DType dt = DType::F32) {
  Rng rng(seed, 3);
  return Tensor::randn(s, rng, 1.0, dt);
}

// Rows [i, i+1) of dim 0 as a tensor of its own.
Tensor row(const Tensor& t, int64_t i) { return t.slice0(i, i + 1).clone(); }

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() && a.to_vector_f64() == b.to_vector_f64();
}

Tensor gap(const Tensor& x, GlobalAvgPoolForward v = GlobalAvgPoolForward::Default) {
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  fn::test::poison(y);
  kernels::global_avg_pool2d_forward(x, y, v);
  return y;
}

Tensor gap_backward(const Tensor& gy, const Shape& xs, GlobalAvgPoolBackward v = GlobalAvgPoolBackward::Default) {
  Tensor gx = Tensor::empty(xs, gy.dtype(), gy.device());
  fn::test::poison(gx);
  kernels::global_avg_pool2d_backward(gy, gx, v);
  return gx;
}

// max pooling 3x3 / 2 / 1 by brute force, PyTorch's rule: padding is -inf, the first maximum in row-major
// window order takes the gradient, overlapping windows add theirs.
void resnet_pool_reference(const std::vector<double>& x, int64_t planes, int64_t H, int64_t W, const std::vector<double>& gy,
                           std::vector<double>& y, std::vector<double>& gx) {
  const int64_t P = (H - 1) / 2 + 1, Q = (W - 1) / 2 + 1;  // (H + 2 - 3) / 2 + 1
  y.assign(size_t(planes * P * Q), 0.0);
  gx.assign(x.size(), 0.0);
  for (int64_t n = 0; n < planes; ++n)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        double best = -INFINITY;
        int64_t at = -1;
        for (int64_t h = 2 * p - 1; h <= 2 * p + 1; ++h)
          for (int64_t w = 2 * q - 1; w <= 2 * q + 1; ++w) {
            const double v = h < 0 || h >= H || w < 0 || w >= W ? -INFINITY : x[size_t((n * H + h) * W + w)];
            if (v > best) best = v, at = (n * H + h) * W + w;
          }
        const size_t o = size_t((n * P + p) * Q + q);
        y[o] = best;
        gx[size_t(at)] += gy[o];
      }
}

}  // namespace

// ---- global average pooling

TEST_CASE("global_avg_pool2d: a worked example, forward and backward") {
  // Two planes of 2x3: means 3.5 and -1; the backward spreads gy / 6 over each plane.
  Tensor x = Tensor::from(std::vector<double>{1, 2, 3, 4, 5, 6, -1, -1, -1, -1, -1, -1}, {1, 2, 2, 3});
  x.set_requires_grad(true);
  Tensor y = F::global_avg_pool2d(x);
  REQUIRE(y.shape() == Shape({1, 2}));
  CHECK(y.to_vector_f64() == std::vector<double>{3.5, -1});
  backward(y, Tensor::from(std::vector<double>{6, 3}, {1, 2}));
  CHECK(x.grad().to_vector_f64() == std::vector<double>{1, 1, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5});
  CHECK_THROWS_WITH(F::global_avg_pool2d(Tensor::zeros({2, 3})), Catch::Contains("(N,C,H,W)"));
  Tensor bad = Tensor::empty({2, 3});
  CHECK_THROWS_WITH(kernels::global_avg_pool2d_forward(Tensor::zeros({2, 4, 3, 3}), bad), Catch::Contains("(2, 4)"));
}

TEST_CASE("global_avg_pool2d: the fast CPU path equals the reference (threaded and not)") {
  // Sizes: a 1x1 map, the backbones' last maps (5x5, 7x7; 9 and 33 planes leave a tail after the blocks
  // of four planes), a large map, 2*64*56*56 = 401k values (one thread), and 2*256*48*48 = 1.18 M values,
  // above the threading threshold (1 Mi). The forward sums in double on both paths in another order: float
  // results may differ in the last bit; the backward is the same division, so bitwise equal.
  const std::vector<Shape> shapes = {{1, 1, 1, 1},  {3, 3, 5, 5},   {2, 7, 7, 7},
                                     {1, 33, 7, 7}, {1, 3, 33, 45}, {2, 64, 56, 56}, {2, 256, 48, 48}};
  uint64_t seed = 1;
  for (const Shape& s : shapes)
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(shape_str(s) << " " << dtype_name(dt));
      Tensor x = random(s, seed++, dt);
      const Tensor y = gap(x);
      FN_REQUIRE_CLOSE(y, gap(x, GlobalAvgPoolForward::V1Reference), dt == DType::F32 ? 1e-7 : 1e-15,
                       dt == DType::F32 ? 1e-7 : 1e-15);
      CHECK(same_bits(y, gap(x)));  // runs repeat bitwise, threaded or not
      Tensor gy = random({s[0], s[1]}, seed++, dt);
      CHECK(same_bits(gap_backward(gy, s), gap_backward(gy, s, GlobalAvgPoolBackward::V1Reference)));
    }
  CHECK_THROWS_WITH(gap(Tensor::zeros({1, 1, 2, 2}), GlobalAvgPoolForward::V2Warp), Catch::Contains("CUDA"));
}

TEST_CASE("global_avg_pool2d: gradients (float64, central differences)") {
  for (const Shape& s : std::vector<Shape>{{1, 1, 1, 1}, {2, 3, 5, 7}, {3, 2, 4, 4}, {1, 33, 2, 3}}) {
    INFO(shape_str(s));
    gradcheck([](const std::vector<Tensor>& v) { return F::global_avg_pool2d(v[0]); }, {leaf64(s, 5)});
    // Through a consumer: the gradient arriving at the pool is not uniform.
    gradcheck([](const std::vector<Tensor>& v) { return F::relu6(F::scale(F::global_avg_pool2d(v[0]), 4.0)); },
              {leaf64(s, 6, -1.0, 2.0)});
  }
}

TEST_CASE("global_avg_pool2d: a batch of N equals N batches of 1, bitwise, and runs repeat bitwise") {
  // C = 64, 7x7: N = 45 is 45 * 64 = 2880 planes in blocks of four; N = 1, 64 planes. One thread at these
  // sizes (the threaded split is covered above, and writes each output from one thread in the same order).
  for (int64_t n : {1, 33, 45}) {
    INFO("N = " << n);
    Tensor x = random({n, 64, 7, 7}, uint64_t(n));
    Tensor y = gap(x);
    CHECK(same_bits(y, gap(x)));
    Tensor gy = random({n, 64}, uint64_t(n) + 100);
    Tensor gx = gap_backward(gy, x.shape());
    CHECK(same_bits(gx, gap_backward(gy, x.shape())));
    for (int64_t i = 0; i < n; ++i) {
      REQUIRE(same_bits(row(y, i), gap(row(x, i))));
      REQUIRE(same_bits(row(gx, i), gap_backward(row(gy, i), {1, 64, 7, 7})));
    }
  }
}

TEST_CASE("global_avg_pool2d: CUDA matches the CPU, every version") {
  FN_REQUIRE_CUDA();
  // Planes from 1 cell to 112x112 (v3's territory), plane counts that do not fill a block of 8 warps.
  const std::vector<Shape> shapes = {{1, 1, 1, 1},   {3, 5, 5, 5},     {33, 64, 7, 7}, {45, 1280, 5, 5},
                                     {2, 7, 33, 33}, {4, 64, 56, 56}, {1, 3, 112, 112}};
  uint64_t seed = 40;
  for (const Shape& s : shapes) {
    INFO(shape_str(s));
    Tensor x = random(s, seed++), gy = random({s[0], s[1]}, seed++);
    Tensor y = gap(x), gx = gap_backward(gy, s);
    Tensor xd = x.to(Device::CUDA), gyd = gy.to(Device::CUDA);
    for (auto v : {GlobalAvgPoolForward::Default, GlobalAvgPoolForward::V1Thread, GlobalAvgPoolForward::V2Warp,
                   GlobalAvgPoolForward::V3Block}) {
      INFO("version " << int(v));
      Tensor yd = gap(xd, v);
      FN_REQUIRE_CLOSE(yd, y, 1e-6, 1e-5);  // a float sum against the CPU's double one
      CHECK(same_bits(yd.cpu(), gap(xd, v).cpu()));  // deterministic
    }
    CHECK(same_bits(gap_backward(gyd, s).cpu(), gx));  // gy / HW once per value: the same bits
  }
}

// ---- max pooling 3x3, stride 2, pad 1

TEST_CASE("max_pool2d 3x3/2/1: ties and overlapping windows as PyTorch") {
  // torch.nn.functional.max_pool2d(x, 3, 2, 1) on this 4x5 input, backward of gy = 1..6 (torch 1.13.1):
  // y = all 2, x.grad = [0,3,0,0,3, 4,0,5,6,0, 0,...]. Cell (0,1) is the first maximum of two windows.
  Tensor x = Tensor::from(std::vector<double>{1, 2, 2, 0, 2,  //
                                              2, 1, 2, 2, 1,  //
                                              0, 2, 1, 0, 0,  //
                                              1, 0, 2, 2, 1},
                          {1, 1, 4, 5});
  x.set_requires_grad(true);
  Tensor y = F::max_pool2d(x, {3, 2, 1});
  REQUIRE(y.shape() == Shape({1, 1, 2, 3}));
  CHECK(y.to_vector_f64() == std::vector<double>(6, 2.0));
  backward(y, Tensor::from(std::vector<double>{1, 2, 3, 4, 5, 6}, {1, 1, 2, 3}));
  CHECK(x.grad().to_vector_f64() ==
        std::vector<double>{0, 3, 0, 0, 3, 4, 0, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});
  // A constant 3x3 plane: padding never wins, so each window's first real cell takes its gradient
  // (torch: [1,2,0,3,4,0,0,0,0]).
  Tensor c = Tensor::full({1, 1, 3, 3}, -1.0, DType::F64);
  c.set_requires_grad(true);
  Tensor yc = F::max_pool2d(c, {3, 2, 1});
  CHECK(yc.to_vector_f64() == std::vector<double>(4, -1.0));
  backward(yc, Tensor::from(std::vector<double>{1, 2, 3, 4}, {1, 1, 2, 2}));
  CHECK(c.grad().to_vector_f64() == std::vector<double>{1, 2, 0, 3, 4, 0, 0, 0, 0});
}

TEST_CASE("max_pool2d 3x3/2/1: odd and even sizes against brute force, ties included") {
  // Values from {-1, 0, 1} tie in most windows. 2x64x56x56 (401k values) is threaded over planes.
  const std::vector<Shape> shapes = {{1, 1, 1, 1}, {1, 1, 2, 2}, {2, 3, 7, 7},   {2, 3, 8, 8},
                                     {1, 2, 15, 16}, {1, 4, 16, 15}, {2, 64, 56, 56}, {1, 2, 112, 112}};
  Rng rng(21);
  for (const Shape& s : shapes)
    for (DType dt : {DType::F32, DType::F64}) {
      INFO(shape_str(s) << " " << dtype_name(dt));
      std::vector<double> xv(size_t(shape_numel(s)));
      for (auto& e : xv) e = double(rng.below(3)) - 1.0;
      const int64_t P = (s[2] - 1) / 2 + 1, Q = (s[3] - 1) / 2 + 1;
      std::vector<double> gyv(size_t(s[0] * s[1] * P * Q));
      for (size_t i = 0; i < gyv.size(); ++i) gyv[i] = double(i % 97 + 1);  // exact in float too
      std::vector<double> want_y, want_gx;
      resnet_pool_reference(xv, s[0] * s[1], s[2], s[3], gyv, want_y, want_gx);
      Tensor x = Tensor::from(xv, s).to(dt), gy = Tensor::from(gyv, {s[0], s[1], P, Q}).to(dt);
      Tensor y = Tensor::empty(gy.shape(), dt), gx = Tensor::empty(s, dt);
      fn::test::poison(y);
      fn::test::poison(gx);
      kernels::max_pool2d_forward(x, y, 3, 2, 1);
      kernels::max_pool2d_backward(x, y, gy, gx, 3, 2, 1);
      REQUIRE(y.to_vector_f64() == want_y);
      REQUIRE(gx.to_vector_f64() == want_gx);
    }
}

TEST_CASE("max_pool2d 3x3/2/1: gradients (float64, central differences), odd and even sizes") {
  uint64_t seed = 60;
  for (const Shape& s : std::vector<Shape>{{1, 1, 1, 1}, {2, 2, 7, 7}, {1, 3, 8, 8}, {2, 1, 9, 6}}) {
    INFO(shape_str(s));
    // A random permutation spaced 1e-2 apart: no ties, and a 1e-6 step never changes an argmax.
    std::vector<double> v(size_t(shape_numel(s)));
    std::iota(v.begin(), v.end(), 0.0);
    Rng rng(seed++);
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(rng.below(int64_t(i)))]);
    for (auto& e : v) e *= 1e-2;
    Tensor x = Tensor::from(v, s);
    x.set_requires_grad(true);
    gradcheck([](const std::vector<Tensor>& t) { return F::max_pool2d(t[0], {3, 2, 1}); }, {x});
  }
}

TEST_CASE("max_pool2d 3x3/2/1: a batch of N equals N batches of 1, bitwise") {
  for (int64_t n : {1, 33, 45}) {  // 45 x 16 x 20 x 20 = 288k values: threaded; 20x20: the AVX2 blocks
    INFO("N = " << n);
    Tensor x = random({n, 16, 20, 20}, uint64_t(n) + 7);
    Tensor y = F::max_pool2d(x, {3, 2, 1});
    CHECK(same_bits(y, F::max_pool2d(x, {3, 2, 1})));
    for (int64_t i = 0; i < n; ++i) REQUIRE(same_bits(row(y, i), F::max_pool2d(row(x, i), {3, 2, 1})));
  }
}

TEST_CASE("max_pool2d 3x3/2/1: CUDA (cuDNN) matches the CPU, odd and even sizes") {
  FN_REQUIRE_CUDA();
  uint64_t seed = 80;
  for (const Shape& s : std::vector<Shape>{{1, 1, 1, 1}, {2, 3, 7, 7}, {2, 3, 8, 8}, {8, 64, 112, 112}, {3, 45, 33, 34}}) {
    INFO(shape_str(s));
    // Distinct values (a permutation, below 2^24 so exact in float): cuDNN's choice among tied cells is not
    // specified.
    std::vector<double> v(size_t(shape_numel(s)));
    std::iota(v.begin(), v.end(), 0.0);
    Rng rng(seed++);
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(rng.below(int64_t(i)))]);
    Tensor x = Tensor::from(v, s).to(DType::F32);
    const int64_t P = (s[2] - 1) / 2 + 1, Q = (s[3] - 1) / 2 + 1;
    Tensor gy = random({s[0], s[1], P, Q}, seed++);
    Tensor y = Tensor::empty(gy.shape()), gx = Tensor::empty(s);
    kernels::max_pool2d_forward(x, y, 3, 2, 1);
    kernels::max_pool2d_backward(x, y, gy, gx, 3, 2, 1);
    Tensor xd = x.to(Device::CUDA), yd = Tensor::empty(gy.shape(), DType::F32, Device::CUDA),
           gxd = Tensor::empty(s, DType::F32, Device::CUDA);
    fn::test::poison(yd);
    fn::test::poison(gxd);
    kernels::max_pool2d_forward(xd, yd, 3, 2, 1);
    FN_REQUIRE_CLOSE(yd, y, 0.0, 0.0);
    kernels::max_pool2d_backward(xd, yd, gy.to(Device::CUDA), gxd, 3, 2, 1);
    FN_REQUIRE_CLOSE(gxd, gx, 1e-6, 1e-6);  // overlapping windows: sums of up to four gradients
  }
}

namespace {
// Every version of the CUDA forward against the CPU on each shape.
void check_gap_versions(const std::vector<Shape>& shapes, uint64_t seed) {
  for (const Shape& s : shapes) {
    INFO(shape_str(s));
    Tensor x = random(s, seed++), y = gap(x);
    Tensor xd = x.to(Device::CUDA);
    for (auto v : {GlobalAvgPoolForward::Default, GlobalAvgPoolForward::V1Thread, GlobalAvgPoolForward::V2Warp,
                   GlobalAvgPoolForward::V3Block}) {
      INFO("version " << int(v));
      FN_REQUIRE_CLOSE(gap(xd, v), y, 1e-6, 1e-5);  // gap() poisons y first: every plane must be written
    }
  }
}
}  // namespace

TEST_CASE("global_avg_pool2d: CUDA at the v2/v3 switch") {
  FN_REQUIRE_CUDA();
  // 32x32 = 1024 cells (Default takes v2) and 25x41 = 1025 (Default takes v3).
  check_gap_versions({{3, 5, 32, 32}, {3, 5, 25, 41}}, 70);
}

TEST_CASE("global_avg_pool2d: CUDA past the grid caps (grid-stride loops)") {
  FN_REQUIRE_CUDA_HARDWARE("v2 launches 268 million threads here");
  // 8,388,609 planes of one cell: more than v2's 2^20 blocks x 8 warps and v3's 2^20 blocks, so both loop.
  check_gap_versions({{1, 8388609, 1, 1}}, 73);
}

TEST_CASE("max_pool2d 3x3/2/1: CUDA (cuDNN) with ties (mostly zeros, as after a ReLU) and negatives") {
  FN_REQUIRE_CUDA();
  // Whatever rule cuDNN breaks ties by: y is exact (padding never wins), each window's gradient lands exactly
  // once (each plane's gradient sums to its gy's sum), and only on a cell that is the maximum of a window
  // holding it. Which tied cell gets it is cuDNN's choice, reported when it differs from the CPU's.
  Rng rng(95);
  for (const Shape& s : std::vector<Shape>{{2, 3, 7, 7}, {2, 8, 56, 56}, {1, 5, 33, 34}}) {
    INFO(shape_str(s));
    const int64_t H = s[2], W = s[3], P = (H - 1) / 2 + 1, Q = (W - 1) / 2 + 1, planes = s[0] * s[1];
    std::vector<double> xv(size_t(shape_numel(s)));
    for (auto& e : xv) e = rng.below(4) == 0 ? double(rng.below(5)) - 2.0 : 0.0;
    std::vector<double> gyv(size_t(planes * P * Q));
    for (size_t i = 0; i < gyv.size(); ++i) gyv[i] = double(i % 7 + 1);  // small integers: exact float sums
    std::vector<double> want_y, want_gx;
    resnet_pool_reference(xv, planes, H, W, gyv, want_y, want_gx);
    Tensor xd = Tensor::from(xv, s).to(DType::F32).to(Device::CUDA);
    Tensor gyd = Tensor::from(gyv, {s[0], s[1], P, Q}).to(DType::F32).to(Device::CUDA);
    Tensor yd = Tensor::empty(gyd.shape(), DType::F32, Device::CUDA), gxd = Tensor::empty(s, DType::F32, Device::CUDA);
    fn::test::poison(yd);
    fn::test::poison(gxd);
    kernels::max_pool2d_forward(xd, yd, 3, 2, 1);
    kernels::max_pool2d_backward(xd, yd, gyd, gxd, 3, 2, 1);
    REQUIRE(yd.to_vector_f64() == want_y);
    const std::vector<double> gx = gxd.to_vector_f64();
    for (int64_t n = 0; n < planes; ++n) {
      double got = 0, want = 0;
      for (int64_t i = 0; i < H * W; ++i) got += gx[size_t(n * H * W + i)];
      for (int64_t i = 0; i < P * Q; ++i) want += gyv[size_t(n * P * Q + i)];
      REQUIRE(got == want);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          if (gx[size_t((n * H + h) * W + w)] == 0) continue;
          bool a_window_max = false;  // some window (p, q) holding (h, w) has its maximum here
          for (int64_t p = std::max<int64_t>(0, h / 2 - 1); p <= std::min(P - 1, (h + 1) / 2); ++p)
            for (int64_t q = std::max<int64_t>(0, w / 2 - 1); q <= std::min(Q - 1, (w + 1) / 2); ++q)
              if (std::abs(2 * p - h) <= 1 && std::abs(2 * q - w) <= 1 &&
                  want_y[size_t((n * P + p) * Q + q)] == xv[size_t((n * H + h) * W + w)])
                a_window_max = true;
          REQUIRE(a_window_max);
        }
    }
    if (gx != want_gx) WARN("cuDNN breaks max-pool ties otherwise than the CPU (a valid subgradient, not bitwise)");
  }
}
