// conv2d and conv2d_relu: a direct 7-loop reference, the im2col indexing, float64 gradient checks, both CPU
// thread plans, the direct 3x3 and Winograd kernels, ResNet's shapes (7x7 stride 2, strided 3x3, 1x1),
// batch invariance, determinism, and CUDA (cuDNN and im2col + cuBLAS) against the CPU. Depthwise (groups =
// channels): tests/test_depthwise_conv2d.cpp.
#include <array>

#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/conv2d_direct.h"
#include "kernels/conv2d_winograd.h"
#include "kernels/elementwise.h"
#include "kernels/gemm.h"
#include "kernels/launch.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::F::Conv2dArgs;
using fn::kernels::ConvAlgo;
using fn::kernels::ConvCpuPlan;
using fn::kernels::ConvGeom;
using fn::kernels::ConvOptions;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {

// N, C, H, W, K, R, S, stride, pad
using Case = std::array<int, 9>;
const std::vector<Case> kCases = {
    {1, 1, 1, 1, 1, 1, 1, 1, 0},   // 1x1 map, 1x1 filter
    {1, 1, 1, 1, 2, 3, 3, 1, 1},   // 1x1 map, padded 3x3
    {3, 3, 5, 7, 5, 3, 3, 1, 1},   // batch 3, odd channels, non-square
    {1, 5, 9, 8, 3, 3, 3, 2, 1},   // stride 2
    {2, 3, 7, 7, 4, 3, 3, 2, 0},   // stride 2, pad 0
    {3, 7, 4, 5, 3, 1, 1, 1, 0},   // pointwise
    {1, 2, 6, 5, 3, 3, 1, 1, 0},   // R != S
    {2, 2, 5, 5, 3, 5, 5, 3, 2},   // 5x5, stride 3, pad 2
    {1, 2, 6, 4, 2, 5, 5, 1, 2},   // 5x5 pad 2 on a 4-wide map (im2col's shifted-copy path, Q == W)
    {1, 1, 2, 3, 1, 3, 3, 1, 1},   // 2-row map: every 3x3 row partly outside
};

struct Problem {
  Tensor x, w, b;
  Conv2dArgs a;
};
Problem make(const Case& c, uint64_t seed, DType t = DType::F64) {
  Rng rng(seed);
  Problem p;
  p.x = Tensor::uniform({c[0], c[1], c[2], c[3]}, rng, -1, 1, t);
  p.w = Tensor::uniform({c[4], c[1], c[5], c[6]}, rng, -1, 1, t);
  p.b = Tensor::uniform({c[4]}, rng, -1, 1, t);
  p.a = {c[7], c[8]};
  return p;
}

// The definition, seven loops deep, in float64.
std::vector<double> conv_direct(const Tensor& x, const Tensor& w, const Tensor& b, int stride, int pad) {
  ConvGeom g = kernels::conv_geom(x.shape(), w.shape(), stride, pad);
  auto vx = x.to_vector_f64(), vw = w.to_vector_f64(), vb = b.defined() ? b.to_vector_f64() : std::vector<double>();
  std::vector<double> y(size_t(g.N * g.K * g.P * g.Q));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          double s = vb.empty() ? 0.0 : vb[size_t(k)];
          for (int64_t c = 0; c < g.C; ++c)
            for (int64_t r = 0; r < g.R; ++r)
              for (int64_t t = 0; t < g.S; ++t) {
                int64_t h = p * stride - pad + r, ww = q * stride - pad + t;
                if (h < 0 || h >= g.H || ww < 0 || ww >= g.W) continue;
                s += vw[size_t(((k * g.C + c) * g.R + r) * g.S + t)] * vx[size_t(((n * g.C + c) * g.H + h) * g.W + ww)];
              }
          y[size_t(((n * g.K + k) * g.P + p) * g.Q + q)] = s;
        }
  return y;
}

Tensor detached(const Tensor& t) { return t.clone().set_requires_grad(false); }
double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector_f64()) m = std::max(m, std::fabs(v));
  return m;
}

// Forward and both gradients of one convolution with the given options, seed gradient gy.
struct Grads {
  Tensor y, gx, gw, gb;
};
// With relu, the gradient is masked by the sign of this run's output, or of `mask_y` when given: a reference
// for another device must take the tested run's mask, since an output within rounding of 0 may fall on either
// side of the relu in the two runs and change the gradient by a whole weight.
Grads run_conv(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, Conv2dArgs a, bool relu,
               ConvOptions opt, const Tensor& mask_y = Tensor()) {
  Grads r;
  ConvGeom g = kernels::conv_geom(x.shape(), w.shape(), a.stride, a.pad);
  r.y = Tensor::empty({g.N, g.K, g.P, g.Q}, x.dtype(), x.device());
  r.gx = Tensor::empty_like(x);
  r.gw = Tensor::empty_like(w);
  r.gb = Tensor::empty_like(b);
  for (Tensor* t : {&r.y, &r.gx, &r.gw, &r.gb}) fn::test::poison(*t);
  kernels::conv2d_forward(x, w, b, r.y, a.stride, a.pad, relu, opt);
  Tensor gpre = gy;
  if (relu) {
    gpre = Tensor::empty_like(gy);
    kernels::relu_backward(mask_y.defined() ? mask_y : r.y, gy, gpre);
  }
  kernels::conv2d_backward_data(gpre, w, r.gx, a.stride, a.pad, opt);
  kernels::conv2d_backward_filter(x, gpre, r.gw, a.stride, a.pad, opt);
  kernels::bias_grad(gpre, r.gb);
  return r;
}

// The forward of case c (float32) under Auto and under `algo`: bitwise equal when Auto picks `algo`.
bool auto_picks(const Case& c, uint64_t seed, ConvAlgo algo) {
  Problem p = make(c, seed, DType::F32);
  ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
  Tensor ya = Tensor::empty({g.N, g.K, g.P, g.Q}), yx = Tensor::empty_like(ya);
  kernels::conv2d_forward(p.x, p.w, p.b, ya, c[7], c[8], true);
  kernels::conv2d_forward(p.x, p.w, p.b, yx, c[7], c[8], true, {algo});
  return ya.to_vector() == yx.to_vector();
}
// Whether asking for `algo` on case c (in type t) is refused with an Error.
bool refused(const Case& c, ConvAlgo algo, DType t = DType::F32) {
  Problem p = make(c, 9, t);
  ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
  Tensor y = Tensor::empty({g.N, g.K, g.P, g.Q}, t);
  try {
    kernels::conv2d_forward(p.x, p.w, p.b, y, c[7], c[8], false, {algo});
  } catch (const Error&) {
    return true;
  }
  return false;
}

}  // namespace

TEST_CASE("conv2d: forward matches the direct 7-loop definition") {
  uint64_t seed = 1;
  for (const Case& c : kCases) {
    Problem p = make(c, seed++);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()) << " stride " << c[7] << " pad " << c[8]);
    FN_REQUIRE_CLOSE(F::conv2d(p.x, p.w, p.b, p.a).to_vector_f64(), conv_direct(p.x, p.w, p.b, c[7], c[8]), 1e-12, 1e-12);
    FN_REQUIRE_CLOSE(F::conv2d(p.x, p.w, Tensor(), p.a).to_vector_f64(), conv_direct(p.x, p.w, Tensor(), c[7], c[8]),
                     1e-12, 1e-12);
    Tensor x32 = p.x.to(DType::F32), w32 = p.w.to(DType::F32), b32 = p.b.to(DType::F32);
    FN_REQUIRE_CLOSE(F::conv2d(x32, w32, b32, p.a).to_vector_f64(), conv_direct(x32, w32, b32, c[7], c[8]), 1e-5, 1e-5);
  }
}

TEST_CASE("im2col / col2im: the CPU row loops equal the per-element bodies the CUDA kernels run") {
  uint64_t seed = 20;
  for (const Case& c : kCases) {
    Problem p = make(c, seed++);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
    const double* x0 = p.x.f64();  // image 0
    std::vector<double> fast(size_t(g.crs() * g.pq()), NAN), body(fast.size());
    kernels::im2col_cpu(x0, g, fast.data(), 0, g.C);
    kernels::cpu_for(int64_t(body.size()),
                     [&](int64_t i) { body[size_t(i)] = kernels::im2col_value(x0, g, i / g.pq(), i % g.pq()); });
    FN_REQUIRE_CLOSE(fast, body, 0.0, 0.0);
    // col2im is the adjoint of im2col: <im2col(x), z> == <x, col2im(z)>
    Rng rng(seed);
    std::vector<double> z(fast.size());
    for (auto& v : z) v = rng.uniform() - 0.5;
    std::vector<double> back(size_t(g.chw()), NAN), back_body(back.size());
    kernels::col2im_cpu(z.data(), g, back.data(), 0, g.C);
    kernels::cpu_for(g.chw(), [&](int64_t i) {
      back_body[size_t(i)] = kernels::col2im_value(z.data(), g, i / (g.H * g.W), (i / g.W) % g.H, i % g.W);
    });
    FN_REQUIRE_CLOSE(back, back_body, 1e-14, 1e-14);
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < z.size(); ++i) lhs += fast[i] * z[i];
    for (size_t i = 0; i < back.size(); ++i) rhs += x0[i] * back[i];
    REQUIRE(std::fabs(lhs - rhs) <= 1e-12 * (1 + std::fabs(lhs)));
  }
}

TEST_CASE("conv2d: gradients (float64, central differences)") {
  uint64_t seed = 40;
  for (const Case& c : kCases) {
    Problem p = make(c, seed++);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()) << " stride " << c[7] << " pad " << c[8]);
    for (Tensor* t : {&p.x, &p.w, &p.b}) t->set_requires_grad(true);
    Conv2dArgs a = p.a;
    gradcheck([a](const std::vector<Tensor>& v) { return F::conv2d(v[0], v[1], v[2], a); }, {p.x, p.w, p.b});
    gradcheck([a](const std::vector<Tensor>& v) { return F::conv2d(v[0], v[1], Tensor(), a); }, {p.x, p.w});
  }
}

TEST_CASE("conv2d_relu: equals relu(conv2d) forward and backward, and passes gradcheck away from the kink") {
  uint64_t seed = 60;
  for (const Case& c : kCases) {
    Problem p = make(c, seed++);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()));
    Conv2dArgs a = p.a;
    // Composition, in float64: same output, same gradients.
    Tensor x1 = detached(p.x).set_requires_grad(true), w1 = detached(p.w).set_requires_grad(true),
           b1 = detached(p.b).set_requires_grad(true);
    Tensor x2 = detached(p.x).set_requires_grad(true), w2 = detached(p.w).set_requires_grad(true),
           b2 = detached(p.b).set_requires_grad(true);
    // (backward consumes the whole tape, so each graph is built and run on its own)
    Tensor fused = F::conv2d_relu(x1, w1, b1, a);
    Rng rng(seed);
    Tensor seedg = Tensor::uniform(fused.shape(), rng, -1, 1, DType::F64);
    backward(fused, seedg);
    Tensor composed = F::relu(F::conv2d(x2, w2, b2, a));
    backward(composed, seedg);
    FN_REQUIRE_CLOSE(fused, composed, 0.0, 0.0);
    FN_REQUIRE_CLOSE(x1.grad(), x2.grad(), 1e-14, 1e-14);
    FN_REQUIRE_CLOSE(w1.grad(), w2.grad(), 1e-14, 1e-14);
    FN_REQUIRE_CLOSE(b1.grad(), b2.grad(), 1e-14, 1e-14);
    // Central differences are valid only if no pre-activation sits within reach of the step at 0.
    {
      NoGradGuard ng;
      double margin = INFINITY;
      for (double v : F::conv2d(p.x, p.w, p.b, a).to_vector_f64()) margin = std::min(margin, std::fabs(v));
      REQUIRE(margin > 1e-4);
    }
    for (Tensor* t : {&p.x, &p.w, &p.b}) t->set_requires_grad(true);
    gradcheck([a](const std::vector<Tensor>& v) { return F::conv2d_relu(v[0], v[1], v[2], a); }, {p.x, p.w, p.b});
  }
}

TEST_CASE("conv2d: both CPU thread plans match the float64 reference at a threaded size, and repeat bitwise") {
  // Large enough (> 2e7 flops) that the threaded paths run; N = 3 does not divide among 2 threads.
  // {5, 48, 14, 14, 48}: a small late-layer map, N = 5 odd on 2 threads.
  // {5, 288, 6, 6, 256}: a pointwise convolution on a small map, run a chunk of images per product.
  for (auto c : std::vector<Case>{{4, 16, 28, 28, 32, 3, 3, 1, 1}, {3, 17, 33, 33, 33, 3, 3, 2, 1},
                                  {4, 64, 14, 14, 64, 1, 1, 1, 0}, {5, 48, 14, 14, 48, 3, 3, 1, 1},
                                  {5, 288, 6, 6, 256, 1, 1, 1, 0}}) {
    Problem p = make(c, 77);
    Rng rng(78);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1, DType::F64);
    Grads ref = run_conv(p.x, p.w, p.b, gy, p.a, true, {ConvAlgo::Auto, ConvCpuPlan::Blas});  // float64
    Tensor x = p.x.to(DType::F32), w = p.w.to(DType::F32), b = p.b.to(DType::F32), gy32 = gy.to(DType::F32);
    for (ConvCpuPlan plan : {ConvCpuPlan::Images, ConvCpuPlan::Blas, ConvCpuPlan::Auto}) {
      INFO("plan " << kernels::conv_cpu_plan_name(plan) << " case " << shape_str(x.shape()));
      Grads r = run_conv(x, w, b, gy32, p.a, true, {ConvAlgo::Im2colGemm, plan});
      FN_REQUIRE_CLOSE(r.y, ref.y, 1e-4, 1e-4);
      FN_REQUIRE_CLOSE(r.gx, ref.gx, 1e-4, 1e-4);
      FN_REQUIRE_CLOSE(r.gw, ref.gw, 1e-3, 1e-4);
      FN_REQUIRE_CLOSE(r.gb, ref.gb, 1e-3, 1e-4);
      Grads again = run_conv(x, w, b, gy32, p.a, true, {ConvAlgo::Im2colGemm, plan});
      REQUIRE(again.y.to_vector() == r.y.to_vector());
      REQUIRE(again.gx.to_vector() == r.gx.to_vector());
      REQUIRE(again.gw.to_vector() == r.gw.to_vector());
    }
  }
}

TEST_CASE("conv2d: the direct 3x3 kernel matches the definition and im2col + GEMM, and repeats bitwise") {
  if (!kernels::conv3x3_direct_supported(kernels::conv_geom({1, 1, 3, 3}, {4, 1, 3, 3}, 1, 1))) {
    std::printf("SKIPPED: this build has no AVX2/FMA, so no direct 3x3 kernel\n");
    return;
  }
  // Widths below, at and across the 16-column block (tails), 1x1 maps, K = 4..32, one threaded size.
  for (auto c : std::vector<Case>{{2, 3, 5, 7, 4, 3, 3, 1, 1},
                                  {1, 16, 17, 33, 16, 3, 3, 1, 1},
                                  {2, 1, 1, 1, 8, 3, 3, 1, 1},
                                  {1, 5, 16, 16, 12, 3, 3, 1, 1},
                                  {3, 16, 28, 28, 32, 3, 3, 1, 1}}) {
    Problem p = make(c, 31);
    Rng rng(32);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), 1, 1);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()));
    Tensor x = p.x.to(DType::F32), w = p.w.to(DType::F32), b = p.b.to(DType::F32);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1);
    for (bool relu : {false, true}) {
      Tensor y = Tensor::empty({g.N, g.K, g.P, g.Q}), y2 = Tensor::empty_like(y);
      fn::test::poison(y);
      kernels::conv2d_forward(x, w, b, y, 1, 1, relu, {ConvAlgo::Direct3x3});
      std::vector<double> want = conv_direct(x, w, b, 1, 1);
      if (relu)
        for (double& v : want) v = v > 0 ? v : 0;
      FN_REQUIRE_CLOSE(y.to_vector_f64(), want, 1e-5, 1e-5);
      kernels::conv2d_forward(x, w, Tensor(), y2, 1, 1, relu, {ConvAlgo::Direct3x3});  // no bias
      std::vector<double> want_nb = conv_direct(x, w, Tensor(), 1, 1);
      if (relu)
        for (double& v : want_nb) v = v > 0 ? v : 0;
      FN_REQUIRE_CLOSE(y2.to_vector_f64(), want_nb, 1e-5, 1e-5);
      kernels::conv2d_forward(x, w, b, y2, 1, 1, relu, {ConvAlgo::Direct3x3});
      REQUIRE(y2.to_vector() == y.to_vector());  // repeats bitwise
    }
    // The data gradient runs as a forward with the filters transposed: direct where C is a multiple of 4.
    if (g.C % 4 == 0) {
      Tensor gx = Tensor::empty_like(x), gx_gemm = Tensor::empty_like(x);
      fn::test::poison(gx);
      kernels::conv2d_backward_data(gy, w, gx, 1, 1, {ConvAlgo::Direct3x3});
      kernels::conv2d_backward_data(gy, w, gx_gemm, 1, 1, {ConvAlgo::Im2colGemm});
      FN_REQUIRE_CLOSE(gx, gx_gemm, 1e-5, 1e-5);
    }
  }
  // Auto takes the direct kernel for thin layers (C*K <= 512).
  REQUIRE(auto_picks({2, 16, 12, 12, 16, 3, 3, 1, 1}, 40, ConvAlgo::Direct3x3));
  // Refused, not quietly replaced: K not a multiple of 4, stride 2, float64.
  REQUIRE(refused({1, 2, 5, 5, 5, 3, 3, 1, 1}, ConvAlgo::Direct3x3));
  REQUIRE(refused({1, 2, 6, 6, 4, 3, 3, 2, 1}, ConvAlgo::Direct3x3));
  REQUIRE(refused({1, 2, 5, 5, 4, 3, 3, 1, 1}, ConvAlgo::Direct3x3, DType::F64));
  REQUIRE_FALSE(refused({1, 2, 5, 5, 4, 3, 3, 1, 1}, ConvAlgo::Direct3x3));  // the control
}

TEST_CASE("conv2d: Winograd F(2x2, 3x3) matches the definition and im2col + GEMM, and repeats bitwise") {
  // Odd and even output sizes (partial tiles), pad 0, 1 and 2, 1x1 and 2-row maps, several chunks of
  // one image (34x34: more tiles than a chunk), and a threaded size whose chunks run on both threads.
  for (auto c : std::vector<Case>{{2, 3, 5, 7, 4, 3, 3, 1, 1},
                                  {1, 2, 6, 5, 3, 3, 3, 1, 0},
                                  {2, 3, 4, 4, 2, 3, 3, 1, 2},
                                  {2, 1, 1, 1, 5, 3, 3, 1, 1},
                                  {1, 2, 2, 3, 3, 3, 3, 1, 1},
                                  {3, 4, 34, 34, 6, 3, 3, 1, 1},
                                  {4, 16, 28, 28, 32, 3, 3, 1, 1}}) {
    Problem p = make(c, 51);
    Rng rng(52);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()) << " pad " << c[8]);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1, DType::F64);
    // float64: the transforms are exact up to rounding, so Winograd equals the definition to 1e-12.
    for (bool relu : {false, true}) {
      Grads r = run_conv(p.x, p.w, p.b, gy, p.a, relu, {ConvAlgo::Winograd3x3});
      Grads ref = run_conv(p.x, p.w, p.b, gy, p.a, relu, {ConvAlgo::Im2colGemm});
      std::vector<double> want = conv_direct(p.x, p.w, p.b, c[7], c[8]);
      if (relu)
        for (double& v : want) v = v > 0 ? v : 0;
      FN_REQUIRE_CLOSE(r.y.to_vector_f64(), want, 1e-12, 1e-12);
      FN_REQUIRE_CLOSE(r.gx, ref.gx, 1e-12, 1e-12);  // the data gradient, run as a Winograd forward
      FN_REQUIRE_CLOSE(r.gw, ref.gw, 1e-12, 1e-12);  // the filter gradient, G^T (sum of Z .* V) G
    }
    // float32: against the float64 definition, at the GEMM's tolerance, and bitwise on a second run.
    Tensor x = p.x.to(DType::F32), w = p.w.to(DType::F32), b = p.b.to(DType::F32), gy32 = gy.to(DType::F32);
    Grads r = run_conv(x, w, b, gy32, p.a, true, {ConvAlgo::Winograd3x3});
    Grads ref = run_conv(p.x, p.w, p.b, gy, p.a, true, {ConvAlgo::Im2colGemm});
    FN_REQUIRE_CLOSE(r.y, ref.y, 1e-5, 1e-5);
    FN_REQUIRE_CLOSE(r.gx, ref.gx, 1e-5, 1e-5);
    FN_REQUIRE_CLOSE(r.gw, ref.gw, 1e-4, 1e-4);  // a sum over N * P * Q products, as for im2col + GEMM
    Grads again = run_conv(x, w, b, gy32, p.a, true, {ConvAlgo::Winograd3x3});
    REQUIRE(again.y.to_vector() == r.y.to_vector());
    REQUIRE(again.gx.to_vector() == r.gx.to_vector());
    REQUIRE(again.gw.to_vector() == r.gw.to_vector());
  }
  // Auto takes Winograd in float32 for the wider 3x3 stride-1 layers; not at 7x7, where it gains nothing.
  REQUIRE(auto_picks({2, 32, 12, 12, 32, 3, 3, 1, 1}, 53, ConvAlgo::Winograd3x3));
  REQUIRE_FALSE(kernels::conv3x3_winograd_preferred(kernels::conv_geom({2, 128, 7, 7}, {128, 128, 3, 3}, 1, 1)));
  // On a thin layer the direct kernel takes the forward and Winograd the filter gradient; not with 3 channels.
  const ConvGeom thin = kernels::conv_geom({2, 16, 12, 12}, {16, 16, 3, 3}, 1, 1);
  REQUIRE(kernels::conv3x3_direct_preferred(thin));
  REQUIRE_FALSE(kernels::conv3x3_winograd_preferred(thin));
  REQUIRE(kernels::conv3x3_winograd_filter_grad_preferred(thin));
  REQUIRE_FALSE(kernels::conv3x3_winograd_filter_grad_preferred(kernels::conv_geom({2, 3, 12, 12}, {16, 3, 3, 3}, 1, 1)));
  Problem tp = make({2, 16, 12, 12, 16, 3, 3, 1, 1}, 57, DType::F32);
  Rng trng(58);
  Tensor tgy = Tensor::uniform({2, 16, 12, 12}, trng, -1, 1);
  Tensor gw_auto = Tensor::empty_like(tp.w), gw_wino = Tensor::empty_like(tp.w);
  kernels::conv2d_backward_filter(tp.x, tgy, gw_auto, 1, 1);
  kernels::conv2d_backward_filter(tp.x, tgy, gw_wino, 1, 1, {ConvAlgo::Winograd3x3});
  REQUIRE(gw_auto.to_vector() == gw_wino.to_vector());
  // Refused, not quietly replaced: stride 2, 5x5 filters, pad 3.
  REQUIRE(refused({1, 2, 6, 6, 4, 3, 3, 2, 1}, ConvAlgo::Winograd3x3));
  REQUIRE(refused({1, 2, 6, 6, 4, 5, 5, 1, 2}, ConvAlgo::Winograd3x3));
  REQUIRE(refused({1, 2, 6, 6, 4, 3, 3, 1, 3}, ConvAlgo::Winograd3x3));
  REQUIRE_FALSE(refused({1, 2, 6, 6, 4, 3, 3, 1, 2}, ConvAlgo::Winograd3x3));  // the control: pad 2 runs
}

TEST_CASE("conv2d: a batch of N equals N batches of 1") {
  for (auto c : std::vector<Case>{{3, 3, 5, 7, 5, 3, 3, 1, 1}, {4, 16, 28, 28, 32, 3, 3, 1, 1}}) {
    Problem p = make(c, 5, DType::F32);
    Tensor y = F::conv2d(p.x, p.w, p.b, p.a);
    for (int64_t n = 0; n < p.x.size(0); ++n) {
      Tensor yn = F::conv2d(p.x.slice0(n, n + 1).clone(), p.w, p.b, p.a);
      FN_REQUIRE_CLOSE(yn, y.slice0(n, n + 1).clone(), 1e-5, 1e-5);
    }
  }
}

TEST_CASE("conv2d: pointwise on a small map, a chunk of images per product, gives each image's own bits") {
  // Maps of 7x7 and less run one product per thread's chunk of images (7x7 the largest, 8x8 per image: the
  // control); each output is still the one dot product over C in the same order, so a batch of N equals N
  // batches of 1 bitwise, forward (with the bias and ReLU pass) and data gradient. Threaded sizes, N odd.
  for (auto c : std::vector<Case>{{5, 288, 6, 6, 256, 1, 1, 1, 0}, {3, 320, 7, 7, 288, 1, 1, 1, 0},
                                  {3, 256, 8, 8, 256, 1, 1, 1, 0}, {4, 96, 3, 5, 1152, 1, 1, 1, 0}}) {
    Problem p = make(c, 31, DType::F32);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()));
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), 1, 0);
    Rng rng(32);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1);
    Grads all = run_conv(p.x, p.w, p.b, gy, p.a, true, {});
    for (int64_t n = 0; n < g.N; ++n) {
      Grads one = run_conv(p.x.slice0(n, n + 1).clone(), p.w, p.b, gy.slice0(n, n + 1).clone(), p.a, true, {});
      REQUIRE(one.y.to_vector() == all.y.slice0(n, n + 1).clone().to_vector());
      REQUIRE(one.gx.to_vector() == all.gx.slice0(n, n + 1).clone().to_vector());
    }
  }
}

TEST_CASE("conv2d: bad arguments are errors, never a quiet fallback") {
  Problem p = make({1, 2, 5, 5, 3, 3, 3, 1, 1}, 1, DType::F32);
  Tensor y = Tensor::empty({1, 3, 5, 5});
  REQUIRE_THROWS_AS(kernels::conv2d_forward(p.x, p.w, p.b, y, 1, 1, false, {ConvAlgo::Cudnn}), Error);
  Tensor wrong = Tensor::empty({1, 3, 4, 4});
  REQUIRE_THROWS_AS(kernels::conv2d_forward(p.x, p.w, p.b, wrong, 1, 1), Error);
  REQUIRE_THROWS_AS(F::conv2d(p.x, Tensor::empty({3, 4, 3, 3}), Tensor(), {}), Error);  // channel mismatch
}

// ResNet's shapes: the 7x7 stride-2 pad-3 stem, the strided 3x3 and the 1x1 projections (stride 1 and 2).
const std::vector<Case> kResNetSmall = {
    {2, 3, 11, 10, 4, 7, 7, 2, 3},  // the stem, odd sizes
    {2, 5, 9, 8, 6, 3, 3, 2, 1},    // strided 3x3, even and odd
    {2, 6, 7, 8, 5, 1, 1, 2, 0},    // 1x1 stride 2 (im2col is then a strided gather)
    {3, 6, 5, 4, 7, 1, 1, 1, 0},    // 1x1 stride 1: a plain GEMM per image, no im2col
};
const std::vector<Case> kResNetThreaded = {
    {2, 3, 64, 64, 16, 7, 7, 2, 3},
    {2, 32, 28, 28, 48, 3, 3, 2, 1},
    {2, 64, 28, 28, 32, 1, 1, 1, 0},
    {2, 64, 28, 28, 32, 1, 1, 2, 0},
};

TEST_CASE("conv2d: ResNet's 7x7 stride-2 stem, strided 3x3 and 1x1 (float64 gradients, the definition)") {
  uint64_t seed = 700;
  for (const Case& c : kResNetSmall) {
    Problem p = make(c, seed++);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()) << " stride " << c[7] << " pad " << c[8]);
    FN_REQUIRE_CLOSE(F::conv2d(p.x, p.w, p.b, p.a).to_vector_f64(), conv_direct(p.x, p.w, p.b, c[7], c[8]), 1e-12, 1e-12);
    for (Tensor* t : {&p.x, &p.w, &p.b}) t->set_requires_grad(true);
    Conv2dArgs a = p.a;
    gradcheck([a](const std::vector<Tensor>& v) { return F::conv2d(v[0], v[1], v[2], a); }, {p.x, p.w, p.b});
  }
}

TEST_CASE("conv2d: ResNet's shapes in float32 on the CPU match float64, and Auto runs im2col + GEMM for them") {
  uint64_t seed = 720;
  for (const Case& c : kResNetThreaded) {
    Problem p = make(c, seed++);
    INFO("case " << shape_str(p.x.shape()) << " * " << shape_str(p.w.shape()) << " stride " << c[7] << " pad " << c[8]);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
    Rng rng(seed);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1, DType::F64);
    Grads ref = run_conv(p.x, p.w, p.b, gy, p.a, false, {});
    Tensor x = p.x.to(DType::F32), w = p.w.to(DType::F32), b = p.b.to(DType::F32), gy32 = gy.to(DType::F32);
    for (ConvAlgo algo : {ConvAlgo::Auto, ConvAlgo::Im2colGemm}) {
      Grads r = run_conv(x, w, b, gy32, p.a, false, {algo});
      const double tol = 1e-5 * std::sqrt(double(g.crs())), tol_sum = 1e-5 * std::sqrt(double(g.N * g.pq()));
      FN_REQUIRE_CLOSE(r.y, ref.y, tol, 1e-4);
      FN_REQUIRE_CLOSE(r.gx, ref.gx, tol, 1e-4);
      FN_REQUIRE_CLOSE(r.gw, ref.gw, tol_sum, 1e-4);
    }
    // Direct 3x3 and Winograd are stride-1 3x3 kernels: Auto never picks them here, and asking is an error.
    REQUIRE(auto_picks(c, seed, ConvAlgo::Im2colGemm));
    REQUIRE(refused(c, ConvAlgo::Direct3x3));
    REQUIRE(refused(c, ConvAlgo::Winograd3x3));
  }
}

TEST_CASE("conv2d: CUDA (cuDNN and im2col + cuBLAS) matches the CPU, forward and backward") {
  FN_REQUIRE_CUDA();
  std::vector<Case> cases = kCases;
  cases.push_back({3, 33, 45, 45, 17, 3, 3, 1, 1});
  cases.push_back({2, 64, 56, 56, 128, 3, 3, 1, 1});
  for (const auto* set : {&kResNetSmall, &kResNetThreaded}) cases.insert(cases.end(), set->begin(), set->end());
  uint64_t seed = 90;
  // The reference is float64 on the CPU (so the tolerance measures the GPU's rounding alone, not that of a
  // float32 CPU algorithm too), from the same float32 values the GPU gets.
  auto f64 = [](const Tensor& t) { return t.to(DType::F64); };
  auto cuda = [](const Tensor& t) { return t.to(Device::CUDA); };
  for (const Case& c : cases) {
    Problem p = make(c, seed++, DType::F32);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
    Rng rng(seed);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1);
    for (bool relu : {false, true}) {
      for (ConvAlgo algo : {ConvAlgo::Cudnn, ConvAlgo::Im2colGemm}) {
        INFO("algo " << kernels::conv_algo_name(algo) << " relu " << relu << " case " << shape_str(p.x.shape()) << " * "
                     << shape_str(p.w.shape()) << " stride " << c[7] << " pad " << c[8]);
        Grads r = run_conv(cuda(p.x), cuda(p.w), cuda(p.b), cuda(gy), p.a, relu, {algo});
        Grads ref = run_conv(f64(p.x), f64(p.w), f64(p.b), f64(gy), p.a, relu, {}, f64(r.y.cpu()));
        // Rounding of a sum of n terms grows like sqrt(n). cuDNN picks its algorithm by timing, and its FFT and
        // Winograd algorithms round with an error that scales with the whole tensor's magnitude, not each
        // element's (seen on the H100: 1.2e-3 on a filter-gradient element of 3.9, in a tensor whose largest
        // is 75), so for cuDNN a share of the largest magnitude is added. A wrong index errs by O(largest).
        const double share = algo == ConvAlgo::Cudnn ? 5e-5 : 0.0;
        auto close = [&](const Tensor& got, const Tensor& want, double atol, const char* what) {
          INFO(what);
          FN_REQUIRE_CLOSE(got, want, atol + share * max_abs(want), 1e-4);
        };
        const double tol = 1e-5 * std::sqrt(double(g.crs())), tol_sum = 1e-5 * std::sqrt(double(g.N * g.pq()));
        close(r.y, ref.y, tol, "y");
        close(r.gx, ref.gx, tol, "gx");
        close(r.gw, ref.gw, tol_sum, "gw");
        close(r.gb, ref.gb, tol_sum, "gb");
      }
    }
  }
  // The cuDNN filter gradient computed in batch chunks that accumulate into dW (forced; normally timed).
  for (Case c : {Case{4, 8, 12, 12, 6, 3, 3, 1, 1}, Case{8, 16, 10, 9, 8, 3, 3, 2, 1}}) {
    Problem p = make(c, seed++, DType::F32);
    ConvGeom g = kernels::conv_geom(p.x.shape(), p.w.shape(), c[7], c[8]);
    Rng rng(seed);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1);
    Tensor ref = Tensor::empty_like(p.w);
    kernels::conv2d_backward_filter(p.x, gy, ref, c[7], c[8]);
    for (int chunks : {1, 2, 4}) {
      INFO("filter gradient in " << chunks << " chunks, x " << shape_str(p.x.shape()));
      Tensor gw = Tensor::empty(p.w.shape(), DType::F32, Device::CUDA);
      fn::test::poison(gw);
      ConvOptions opt;
      opt.algo = ConvAlgo::Cudnn;
      opt.filter_chunks = chunks;
      kernels::conv2d_backward_filter(p.x.to(Device::CUDA), gy.to(Device::CUDA), gw, c[7], c[8], opt);
      FN_REQUIRE_CLOSE(gw, ref, 1e-5 * std::sqrt(double(g.N * g.pq())), 1e-4);
    }
    ConvOptions three;
    three.filter_chunks = 3;
    Tensor gw = Tensor::empty(p.w.shape(), DType::F32, Device::CUDA);
    REQUIRE_THROWS_WITH(kernels::conv2d_backward_filter(p.x.to(Device::CUDA), gy.to(Device::CUDA), gw, c[7], c[8], three),
                        Catch::Contains("do not divide the batch"));
  }
}
