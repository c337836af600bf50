// max_pool2d: a worked example, ties, float64 gradient checks on well-separated inputs, general
// kernel / stride / pad, the fast paths (2x2 and 3x3/3 disjoint; 3x3 stride 2 pad 0 and 1) against the
// window loop bitwise (ties, +-0, +-inf, NaN), and CUDA (cuDNN) against the CPU.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>

#include "kernels/maxpool2d.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::F::Pool2dArgs;
using fn::test::gradcheck;

namespace {
// A tensor holding a random permutation of 0..n-1 scaled by `step`: every value differs from every other by
// at least `step`, so no window has a tie and a gradcheck step never changes an argmax.
Tensor distinct(const Shape& s, uint64_t seed, double step, DType t = DType::F64) {
  std::vector<double> v(size_t(shape_numel(s)));
  std::iota(v.begin(), v.end(), 0.0);
  Rng rng(seed);
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[size_t(rng.below(int64_t(i)))]);
  for (auto& e : v) e = (e - double(v.size()) / 2) * step;
  Tensor r = Tensor::from(v, s);
  return t == DType::F64 ? r : r.to(DType::F32);
}

// N, C, H, W, kernel, stride, pad
using Case = std::array<int, 7>;
const std::vector<Case> kCases = {
    {1, 1, 2, 2, 2, 2, 0}, {2, 3, 4, 6, 2, 2, 0}, {1, 2, 5, 7, 2, 2, 0},  // VGG's 2/2, odd sizes drop the edge
    {3, 2, 5, 5, 3, 2, 1}, {1, 3, 6, 5, 3, 1, 1}, {2, 1, 7, 7, 3, 3, 0},  // overlapping, padded, general
    {1, 1, 1, 1, 1, 1, 0}, {1, 33, 3, 3, 3, 1, 1}};
}  // namespace

TEST_CASE("max_pool2d: a worked example, with padding and a tie (first max wins)") {
  // 1x1x3x4 input, kernel 2, stride 2, pad 1: windows clip to the image; padding never wins.
  Tensor x = Tensor::from(std::vector<double>{-5, -1, -2, -3,  //
                                              -4, 3, -7, -8,   //
                                              9, -1, 3, 0},
                          {1, 1, 3, 4});
  x.set_requires_grad(true);
  Tensor y = F::max_pool2d(x, {2, 2, 1});
  REQUIRE(y.shape() == Shape({1, 1, 2, 3}));
  REQUIRE(y.to_vector_f64() == std::vector<double>{-5, -1, -3, 9, 3, 0});
  backward(F::sum(y));
  // window (1, 1) covers rows 1-2, columns 1-2 and holds 3 twice: the first, (1, 1), takes the gradient
  REQUIRE(x.grad().to_vector_f64() == std::vector<double>{1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1});
}

TEST_CASE("max_pool2d: the disjoint-window fast paths equal the reference window loop, ties included") {
  // Values from {-1, 0, 1} (and -0.0) make ties in most windows: the first maximum in window order must take
  // the gradient, exactly as max_pool_window decides it. Kernels 2 (VGG's: 8-window AVX2 blocks plus a
  // scalar tail, threaded over planes when large) and 3, odd sizes too.
  const std::vector<Case> cases = {{2, 3, 8, 8, 2, 2, 0},   {1, 2, 5, 7, 2, 2, 0}, {1, 2, 7, 6, 3, 3, 0},
                                   {2, 3, 18, 35, 2, 2, 0}, {4, 16, 64, 66, 2, 2, 0}};
  Rng rng(11);
  for (const Case& c : cases)
    for (DType dt : {DType::F32, DType::F64}) {
      INFO("case " << c[2] << "x" << c[3] << " k" << c[4] << " " << dtype_name(dt));
      std::vector<double> v(size_t(c[0] * c[1] * c[2] * c[3]));
      for (auto& e : v) e = double(rng.below(4)) - 1.0;  // 2 means -0.0 below
      for (auto& e : v) if (e == 2.0) e = -0.0;
      Tensor x = Tensor::from(v, {c[0], c[1], c[2], c[3]});
      if (dt == DType::F32) x = x.to(DType::F32);
      kernels::PoolGeom g = kernels::pool_geom(x.shape(), c[4], c[5], c[6]);
      Tensor y = Tensor::empty({g.N, g.C, g.P, g.Q}, dt), gx = Tensor::full(x.shape(), 7.0, dt);
      Tensor gy = Tensor::from(std::vector<double>(size_t(shape_numel(y.shape())), 0.0), y.shape());
      {
        std::vector<double> gv(size_t(gy.numel()));
        for (size_t i = 0; i < gv.size(); ++i) gv[i] = double(i + 1);
        gy = Tensor::from(gv, y.shape());
        if (dt == DType::F32) gy = gy.to(DType::F32);
      }
      kernels::max_pool2d_forward(x, y, c[4], c[5], c[6]);
      kernels::max_pool2d_backward(x, y, gy, gx, c[4], c[5], c[6]);
      std::vector<double> xv = x.to_vector_f64(), yv = y.to_vector_f64(), gyv = gy.to_vector_f64();
      std::vector<double> want_gx(xv.size(), 0.0);
      for (int64_t plane = 0; plane < g.N * g.C; ++plane)
        for (int64_t p = 0; p < g.P; ++p)
          for (int64_t q = 0; q < g.Q; ++q) {
            int64_t at;
            double m = kernels::max_pool_window(xv.data() + plane * g.H * g.W, g, p, q, &at);
            const size_t o = size_t((plane * g.P + p) * g.Q + q);
            REQUIRE(yv[o] == m);
            want_gx[size_t(plane * g.H * g.W + at)] += gyv[o];
          }
      REQUIRE(gx.to_vector_f64() == want_gx);  // every uncovered and non-maximal cell zero (gx started at 7)
    }
}

TEST_CASE("max_pool2d: the 3x3 stride-2 fast path equals the window loop bitwise (ties, +-0, +-inf, NaN)") {
  // ResNet's pool, pads 0 and 1, float32: eight interior windows at a time (AVX2), edge windows and maps
  // narrower than eight interior windows through max_pool_window. The reference here is max_pool_window
  // run on the same float data and a scatter in output order: forward and backward must match it bit for
  // bit, NaN payloads and the signs of zeros included. Values: mostly {-1, -0, 0, 1} (ties everywhere),
  // some -inf, +inf and NaN (a NaN wins only as a window's first cell). Widths give one block, an
  // overlapping last block, and none; 2x8x112x112 runs threaded. Each run twice: the same bits.
  const std::vector<Shape> shapes = {{1, 1, 1, 1},   {1, 2, 3, 3},    {2, 3, 7, 7},    {2, 3, 8, 8},
                                     {1, 2, 19, 19}, {1, 2, 20, 20},  {2, 3, 37, 41},  {1, 2, 36, 40},
                                     {1, 3, 17, 18}, {2, 8, 112, 112}};
  const float kValues[] = {-1.0f, -0.0f, 0.0f, 1.0f, -INFINITY, INFINITY, NAN};
  Rng rng(17);
  auto bits = [](const std::vector<float>& v) {
    std::vector<uint32_t> b(v.size());
    std::memcpy(b.data(), v.data(), v.size() * sizeof(float));
    return b;
  };
  for (const Shape& s : shapes)
    for (int pad : {0, 1}) {
      if (s[2] + 2 * pad < 3 || s[3] + 2 * pad < 3) continue;
      INFO(shape_str(s) << " pad " << pad);
      std::vector<float> xv(size_t(shape_numel(s)));
      for (auto& e : xv) {
        const int64_t r = rng.below(64);  // 1 in 16 each of -inf, +inf, NaN
        e = kValues[r < 52 ? r % 4 : r < 56 ? 4 : r < 60 ? 5 : 6];
      }
      kernels::PoolGeom g = kernels::pool_geom(s, 3, 2, pad);
      std::vector<float> gyv(size_t(g.N * g.C * g.P * g.Q));
      for (size_t i = 0; i < gyv.size(); ++i) gyv[i] = float(int(i % 13) - 6) * 0.37f;  // rounding in the sums
      std::vector<float> want_y(gyv.size()), want_gx(xv.size(), 0.0f);
      for (int64_t plane = 0; plane < g.N * g.C; ++plane)
        for (int64_t p = 0; p < g.P; ++p)
          for (int64_t q = 0; q < g.Q; ++q) {
            int64_t at;
            const size_t o = size_t((plane * g.P + p) * g.Q + q);
            want_y[o] = kernels::max_pool_window(xv.data() + plane * g.H * g.W, g, p, q, &at);
            want_gx[size_t(plane * g.H * g.W + at)] += gyv[o];
          }
      Tensor x = Tensor::from(xv, s), gy = Tensor::from(gyv, {g.N, g.C, g.P, g.Q});
      for (int run = 0; run < 3; ++run) {  // the default path twice, then the launcher's V1Reference
        const auto v = run < 2 ? kernels::MaxPoolCpu::Default : kernels::MaxPoolCpu::V1Reference;
        Tensor y = Tensor::empty(gy.shape()), gx = Tensor::full(s, 7.0, DType::F32);
        fn::test::poison(y);
        kernels::max_pool2d_forward(x, y, 3, 2, pad, v);
        kernels::max_pool2d_backward(x, y, gy, gx, 3, 2, pad, v);
        const std::vector<float> yv(y.f32(), y.f32() + y.numel()), gxv(gx.f32(), gx.f32() + gx.numel());
        REQUIRE(bits(yv) == bits(want_y));
        REQUIRE(bits(gxv) == bits(want_gx));
      }
    }
}

TEST_CASE("max_pool2d: gradients (float64, central differences, well-separated inputs)") {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    INFO("case N" << c[0] << " C" << c[1] << " " << c[2] << "x" << c[3] << " k" << c[4] << " s" << c[5] << " p" << c[6]);
    Tensor x = distinct({c[0], c[1], c[2], c[3]}, seed++, 1e-2);
    x.set_requires_grad(true);
    Pool2dArgs a{c[4], c[5], c[6]};
    gradcheck([a](const std::vector<Tensor>& v) { return F::max_pool2d(v[0], a); }, {x});
  }
}

TEST_CASE("max_pool2d: forward is the window maximum over real pixels") {
  uint64_t seed = 30;
  for (const Case& c : kCases) {
    Tensor x = distinct({c[0], c[1], c[2], c[3]}, seed++, 1.0);
    kernels::PoolGeom g = kernels::pool_geom(x.shape(), c[4], c[5], c[6]);
    auto vx = x.to_vector_f64();
    std::vector<double> ref;
    for (int64_t plane = 0; plane < g.N * g.C; ++plane)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          double m = -INFINITY;
          for (int64_t i = 0; i < g.kernel; ++i)
            for (int64_t j = 0; j < g.kernel; ++j) {
              int64_t h = p * g.stride - g.pad + i, w = q * g.stride - g.pad + j;
              if (h >= 0 && h < g.H && w >= 0 && w < g.W) m = std::max(m, vx[size_t((plane * g.H + h) * g.W + w)]);
            }
          ref.push_back(m);
        }
    FN_REQUIRE_CLOSE(F::max_pool2d(x, {c[4], c[5], c[6]}).to_vector_f64(), ref, 0.0, 0.0);
  }
  Tensor x = Tensor::empty({1, 1, 4, 4});
  REQUIRE_THROWS_AS(F::max_pool2d(x, {2, 2, 2}), Error);  // pad > kernel / 2
}

TEST_CASE("max_pool2d: CUDA (cuDNN) matches the CPU, forward and backward") {
  FN_REQUIRE_CUDA();
  std::vector<Case> cases = kCases;
  cases.push_back({8, 64, 112, 112, 2, 2, 0});
  cases.push_back({3, 45, 33, 33, 3, 2, 1});
  uint64_t seed = 50;
  for (const Case& c : cases) {
    INFO("case N" << c[0] << " C" << c[1] << " " << c[2] << "x" << c[3] << " k" << c[4] << " s" << c[5] << " p" << c[6]);
    Tensor x = distinct({c[0], c[1], c[2], c[3]}, seed++, 1e-3, DType::F32);
    kernels::PoolGeom g = kernels::pool_geom(x.shape(), c[4], c[5], c[6]);
    Rng rng(seed);
    Tensor gy = Tensor::uniform({g.N, g.C, g.P, g.Q}, rng, -1, 1);
    Tensor y = Tensor::empty(gy.shape()), gx = Tensor::empty_like(x);
    kernels::max_pool2d_forward(x, y, c[4], c[5], c[6]);
    kernels::max_pool2d_backward(x, y, gy, gx, c[4], c[5], c[6]);
    Tensor xd = x.to(Device::CUDA), yd = Tensor::empty(gy.shape(), DType::F32, Device::CUDA),
           gxd = Tensor::empty(x.shape(), DType::F32, Device::CUDA);
    fn::test::poison(yd);
    fn::test::poison(gxd);
    kernels::max_pool2d_forward(xd, yd, c[4], c[5], c[6]);
    FN_REQUIRE_CLOSE(yd, y, 0.0, 0.0);
    kernels::max_pool2d_backward(xd, yd, gy.to(Device::CUDA), gxd, c[4], c[5], c[6]);
    FN_REQUIRE_CLOSE(gxd, gx, 1e-6, 1e-6);
  }
}
