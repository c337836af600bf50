// Landmark pooling: the coordinate transform, an independent reference, float64 gradient checks, the
// bitwise agreement of the backward variants, edge cases, batch invariance, and CUDA against the CPU.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/autograd.h"
#include "kernels/landmark_pool.h"
#include "nn/functional.h"
#include "nn/landmark_pool.h"
#include "nn/losses.h"
#include "tests/support/check.h"

using namespace fn;
using fn::kernels::LandmarkPoolArgs;
using fn::kernels::LandmarkPoolMode;
using fn::test::gradcheck;

namespace {

// Landmarks spread over [-2S, (W+2)S) so that some fall on the border and some outside the map; about a
// quarter invisible.
struct Marks {
  Tensor landmarks, visibility;
};
Marks random_marks(int64_t N, int64_t L, int H, int W, int S, uint64_t seed, DType t = DType::F32) {
  Rng rng(seed, 5);
  std::vector<double> lm, vis;
  for (int64_t i = 0; i < N * L; ++i) {
    lm.push_back((rng.uniform() * (W + 4) - 2) * S);
    lm.push_back((rng.uniform() * (H + 4) - 2) * S);
    vis.push_back(rng.uniform() < 0.75 ? 1.0 : 0.0);
  }
  Tensor a = Tensor::from(lm, {N, L, 2}), b = Tensor::from(vis, {N, L});
  return {a.to(t), b.to(t)};
}

// Features with distinct values at least 1e-3 apart (a shuffled ramp): no ties anywhere.
Tensor separated_features(const Shape& s, uint64_t seed, DType t = DType::F64) {
  int64_t n = shape_numel(s);
  std::vector<double> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), 0.0);
  Rng rng(seed, 3);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[size_t(i)], v[size_t(rng.below(i + 1))]);
  for (auto& e : v) e = (e - n / 2.0) * 1e-3;
  return Tensor::from(v, s).to(t);
}

// An independent reference written from the specification, in double, with std::floor and explicit clamps.
struct Ref {
  std::vector<double> out;
  std::vector<int32_t> argmax;
};
Ref reference(const Tensor& f, const Tensor& lm, const Tensor& vis, const LandmarkPoolArgs& a) {
  auto F = f.to_vector_f64(), P = lm.to_vector_f64(), V = vis.to_vector_f64();
  int64_t N = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), L = lm.size(1);
  Ref r;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t s = 0; s < L; ++s) {
      double x = P[size_t((n * L + s) * 2)], y = P[size_t((n * L + s) * 2 + 1)];
      int64_t cx = int64_t(std::floor(x / a.stride + 0.5)), cy = int64_t(std::floor(y / a.stride + 0.5));
      int64_t h0 = std::max<int64_t>(cy - a.radius, 0), h1 = std::min<int64_t>(cy + a.radius, H - 1);
      int64_t w0 = std::max<int64_t>(cx - a.radius, 0), w1 = std::min<int64_t>(cx + a.radius, W - 1);
      bool use = V[size_t(n * L + s)] > 0.5 && h0 <= h1 && w0 <= w1;
      if (!use) {
        h0 = 0, w0 = 0, h1 = std::min<int64_t>(2 * a.radius, H - 1), w1 = std::min<int64_t>(2 * a.radius, W - 1);
      }
      for (int64_t c = 0; c < C; ++c) {
        if (!use && a.mode == LandmarkPoolMode::Zero) {
          r.out.push_back(0.0);
          r.argmax.push_back(-1);
          continue;
        }
        double best = -INFINITY;
        int32_t arg = -1;
        for (int64_t h = h0; h <= h1; ++h)
          for (int64_t w = w0; w <= w1; ++w) {
            double v = F[size_t(((n * C + c) * H + h) * W + w)];
            if (v > best) best = v, arg = int32_t(h * W + w);
          }
        r.out.push_back(best);
        r.argmax.push_back(arg);
      }
    }
  return r;
}

struct Forward {
  Tensor out;
  std::shared_ptr<kernels::Int32Buffer> argmax;
};
Forward run_forward(const Tensor& f, const Tensor& lm, const Tensor& vis, const LandmarkPoolArgs& a,
                    kernels::LandmarkPoolForward v = kernels::LandmarkPoolForward::Default) {
  Forward r;
  r.out = Tensor::empty({f.size(0), lm.size(1) * f.size(1)}, f.dtype(), f.device());
  fn::test::poison(r.out);
  r.argmax = std::make_shared<kernels::Int32Buffer>(f.device(), r.out.numel());
  kernels::landmark_pool_forward(f, lm, vis, a, r.out, *r.argmax, v);
  return r;
}

}  // namespace

TEST_CASE("landmark_pool: coordinate transform rounds half up and clamps wild values") {
  using kernels::landmark_cell;
  for (int S : {1, 8}) {
    REQUIRE(landmark_cell(0.0, S) == 0);
    REQUIRE(landmark_cell(0.5 * S - 1e-3, S) == 0);
    REQUIRE(landmark_cell(0.5 * S, S) == 1);  // .5 rounds up
    REQUIRE(landmark_cell(1.5 * S, S) == 2);
    REQUIRE(landmark_cell(-0.5 * S, S) == 0);  // -0.5 rounds up to 0
    REQUIRE(landmark_cell(-0.5 * S - 1e-3, S) == -1);
    REQUIRE(landmark_cell(-2.6 * S, S) == -3);
    REQUIRE(landmark_cell(27.49f * S, S) == 27);
  }
  REQUIRE(landmark_cell(1e30, 8) == (1 << 20));
  REQUIRE(landmark_cell(-1e30f, 8) == -(1 << 20));
  REQUIRE(landmark_cell(double(NAN), 8) == -(1 << 20));
}

TEST_CASE("landmark_pool: windows are clipped; an empty or invisible slot follows the mode") {
  using namespace kernels;
  PoolWindow w = landmark_window(0.0, 0.0, 8, 1, 28, 28);  // centre (0,0)
  REQUIRE((w.h0 == 0 && w.h1 == 1 && w.w0 == 0 && w.w1 == 1));
  w = landmark_window(223.0, 100.0, 8, 1, 28, 28);  // x/8 = 27.9 -> 28, one past the border
  REQUIRE((w.w0 == 27 && w.w1 == 27 && w.h0 == 12 && w.h1 == 14));
  w = landmark_window(8.0 * 30, 100.0, 8, 1, 28, 28);  // two cells past the border: empty
  REQUIRE(w.empty());
  PoolWindow c;
  REQUIRE(slot_window(8.0 * 30, 100.0, 1.0, 8, 1, 28, 28, LandmarkPoolMode::Corner, c));
  REQUIRE((c.h0 == 0 && c.h1 == 2 && c.w0 == 0 && c.w1 == 2));
  REQUIRE(!slot_window(8.0 * 30, 100.0, 1.0, 8, 1, 28, 28, LandmarkPoolMode::Zero, c));
  REQUIRE(!slot_window(50.0, 50.0, 0.0, 8, 1, 28, 28, LandmarkPoolMode::Zero, c));
  REQUIRE(!slot_window(double(NAN), 50.0, 1.0, 8, 1, 28, 28, LandmarkPoolMode::Zero, c));
  REQUIRE(slot_window(50.0, 50.0, 0.0, 8, 0, 1, 1, LandmarkPoolMode::Corner, c));
  REQUIRE((c.h0 == 0 && c.h1 == 0 && c.w0 == 0 && c.w1 == 0));
}

TEST_CASE("landmark_pool: forward matches an independent reference (values and argmax)") {
  struct Case {
    int64_t N, C, H, W, L;
    int S, r;
  };
  for (Case k : {Case{2, 1, 5, 7, 8, 8, 1}, Case{1, 33, 28, 28, 8, 8, 1}, Case{3, 45, 6, 4, 8, 4, 2},
                 Case{2, 3, 1, 1, 8, 8, 1}, Case{2, 5, 9, 9, 3, 8, 0}}) {
    for (auto mode : {LandmarkPoolMode::Corner, LandmarkPoolMode::Zero}) {
      LandmarkPoolArgs a{k.S, k.r, mode};
      Rng rng(k.C * 7 + k.H);
      Tensor f = Tensor::randn({k.N, k.C, k.H, k.W}, rng);
      Marks m = random_marks(k.N, k.L, int(k.H), int(k.W), k.S, k.C + k.W);
      Ref ref = reference(f, m.landmarks, m.visibility, a);
      for (auto v : {kernels::LandmarkPoolForward::Default, kernels::LandmarkPoolForward::V1Naive}) {
        Forward got = run_forward(f, m.landmarks, m.visibility, a, v);
        FN_REQUIRE_CLOSE(got.out.to_vector_f64(), ref.out, 0.0, 0.0);
        REQUIRE(got.argmax->to_host() == ref.argmax);
      }
    }
  }
}

TEST_CASE("landmark_pool: gradients (float64, central differences, well-separated inputs)") {
  for (auto mode : {LandmarkPoolMode::Corner, LandmarkPoolMode::Zero}) {
    for (int r : {0, 1}) {
      LandmarkPoolArgs a{8, r, mode};
      Tensor f = separated_features({2, 3, 5, 6}, 11 + r);
      f.set_requires_grad(true);
      Marks m = random_marks(2, 8, 5, 6, 8, 21 + r, DType::F64);
      gradcheck([&](const std::vector<Tensor>& x) { return F::landmark_pool(x[0], m.landmarks, m.visibility, a); },
                {f});
    }
  }
}

TEST_CASE("landmark_pool: no gradient reaches the landmarks") {
  Tensor f = separated_features({1, 2, 4, 4}, 1);
  f.set_requires_grad(true);
  Marks m = random_marks(1, 8, 4, 4, 8, 2, DType::F64);
  m.landmarks.set_requires_grad(true);
  Tensor y = F::landmark_pool(f, m.landmarks, m.visibility);
  backward(y, Tensor::full(y.shape(), 1.0, DType::F64));
  REQUIRE(f.grad().defined());
  REQUIRE(!m.landmarks.grad().defined());
}

TEST_CASE("landmark_pool: the fast CPU backward equals the gather bitwise") {
  // Many slots on a small map: cells receive gradients from several slots.
  Rng rng(4);
  for (int64_t C : {1, 33}) {
    Tensor f = Tensor::randn({3, C, 4, 5}, rng);
    Marks m = random_marks(3, 8, 4, 5, 8, 9);
    Forward fw = run_forward(f, m.landmarks, m.visibility, {});
    Tensor g = Tensor::randn(fw.out.shape(), rng);
    Tensor fast = Tensor::empty_like(f), gather = Tensor::empty_like(f);
    fn::test::poison(fast);
    fn::test::poison(gather);
    kernels::landmark_pool_backward(g, *fw.argmax, fast);
    kernels::landmark_pool_backward(g, *fw.argmax, gather, kernels::LandmarkPoolBackward::Gather);
    REQUIRE(fast.to_vector() == gather.to_vector());
    // ...and the total gradient is conserved: every output's gradient lands on exactly one cell.
    double in = 0, out = 0;
    for (float v : fast.to_vector()) in += v;
    for (float v : g.to_vector()) out += v;
    REQUIRE(std::fabs(in - out) < 1e-4);
  }
}

TEST_CASE("landmark_pool: the sparse backward adds into an existing gradient") {
  Rng rng(14);
  for (int64_t C : {1, 33}) {
    Tensor f = Tensor::randn({3, C, 4, 5}, rng);  // small map: slots share cells
    Marks m = random_marks(3, 8, 4, 5, 8, 15);
    Forward fw = run_forward(f, m.landmarks, m.visibility, {});
    Tensor g = Tensor::randn(fw.out.shape(), rng);
    Tensor dense = Tensor::empty_like(f);
    kernels::landmark_pool_backward(g, *fw.argmax, dense);
    // Over zeros: the dense backward, bitwise (same order of additions).
    Tensor acc = Tensor::zeros_like(f);
    kernels::landmark_pool_backward_accumulate(g, *fw.argmax, acc);
    REQUIRE(acc.to_vector() == dense.to_vector());
    // Over another gradient: base + dense, up to the order of additions where slots share a cell.
    Tensor base = Tensor::randn(f.shape(), rng), expect = base.clone();
    expect.add_(dense);
    kernels::landmark_pool_backward_accumulate(g, *fw.argmax, base);
    FN_REQUIRE_CLOSE(base, expect, 1e-6, 1e-6);
  }
}

TEST_CASE("landmark_pool: gradients beside pool4 take the sparse path (float64, central differences)") {
  // Recorded before max_pool2d, landmark_pool's backward runs after pool's and finds the features' gradient
  // already there: the path FashionNet's training step takes.
  for (auto mode : {LandmarkPoolMode::Corner, LandmarkPoolMode::Zero}) {
    LandmarkPoolArgs a{8, 1, mode};
    Tensor f = separated_features({2, 3, 6, 6}, 31);
    f.set_requires_grad(true);
    Marks m = random_marks(2, 8, 6, 6, 8, 32, DType::F64);
    gradcheck(
        [&](const std::vector<Tensor>& x) {
          Tensor local = F::landmark_pool(x[0], m.landmarks, m.visibility, a);
          return F::concat({local, F::flatten(F::max_pool2d(x[0]))}, 1);
        },
        {f});
  }
}

TEST_CASE("autograd: an op's accumulate runs when its input already has a gradient, its backward otherwise") {
  for (bool other_consumer : {false, true}) {
    Tensor x = Tensor::full({3}, 2.0, DType::F64);
    x.set_requires_grad(true);
    int backwards = 0, accumulates = 0;
    Tensor y = Tensor::full({3}, 0.0, DType::F64);  // y = 5x, by hand so both paths are visible
    record(
        "times5", {x}, y,
        [&](const Tensor& g) {
          ++backwards;
          return std::vector<Tensor>{F::scale(g, 5.0)};
        },
        [&](const Tensor& g, Tensor& gx) {
          ++accumulates;
          gx.add_(F::scale(g, 5.0));
        });
    Tensor z = other_consumer ? F::concat({y, F::scale(x, 3.0)}, 0) : y;  // scale runs back first
    backward(z, Tensor::full(z.shape(), 1.0, DType::F64));
    REQUIRE(backwards == (other_consumer ? 0 : 1));
    REQUIRE(accumulates == (other_consumer ? 1 : 0));
    REQUIRE(x.grad().to_vector_f64() == std::vector<double>(3, other_consumer ? 8.0 : 5.0));
  }
}

TEST_CASE("landmark_pool: all slots invisible") {
  Rng rng(8);
  Tensor f = Tensor::randn({2, 4, 6, 6}, rng);
  Marks m = random_marks(2, 8, 6, 6, 8, 3);
  m.visibility.zero_();
  // corner: every slot is the max of the 3x3 top-left window
  Forward c = run_forward(f, m.landmarks, m.visibility, {});
  auto F_ = f.to_vector(), out = c.out.to_vector();
  for (int n = 0; n < 2; ++n)
    for (int s = 0; s < 8; ++s)
      for (int ch = 0; ch < 4; ++ch) {
        float best = -INFINITY;
        for (int h = 0; h < 3; ++h)
          for (int w = 0; w < 3; ++w) best = std::max(best, F_[size_t(((n * 4 + ch) * 6 + h) * 6 + w)]);
        REQUIRE(out[size_t((n * 8 + s) * 4 + ch)] == best);
      }
  // zero: output 0, argmax -1, gradient 0
  Forward z = run_forward(f, m.landmarks, m.visibility, {8, 1, LandmarkPoolMode::Zero});
  for (float v : z.out.to_vector()) REQUIRE(v == 0.f);
  for (int32_t a : z.argmax->to_host()) REQUIRE(a == -1);
  Tensor gf = Tensor::empty_like(f);
  fn::test::poison(gf);
  kernels::landmark_pool_backward(Tensor::full(z.out.shape(), 1.0), *z.argmax, gf);
  for (float v : gf.to_vector()) REQUIRE(v == 0.f);
}

TEST_CASE("landmark_pool: border, outside, 1x1 map and r = 0") {
  // 1x1 map: every visible slot near the image pools the single cell; far outside counts as invisible.
  Tensor f = Tensor::from(std::vector<float>{2.f, -3.f}, {1, 2, 1, 1});
  Tensor lm = Tensor::from(std::vector<float>{3.f, 3.f, 7.f, 0.f, 100.f, 100.f, 0.f, 0.f}, {1, 4, 2});
  Tensor vis = Tensor::from(std::vector<float>{1.f, 1.f, 1.f, 0.f}, {1, 4});
  Forward z = run_forward(f, lm, vis, {8, 1, LandmarkPoolMode::Zero});
  REQUIRE(z.out.to_vector() == std::vector<float>{2.f, -3.f, 2.f, -3.f, 0.f, 0.f, 0.f, 0.f});
  // r = 0 on a ramp: the output is exactly the centre cell, including on the last row and column.
  std::vector<float> ramp(5 * 5);
  std::iota(ramp.begin(), ramp.end(), 0.f);
  Tensor g = Tensor::from(ramp, {1, 1, 5, 5});
  // Cells (0,0), (4,4) on the border, (x=2, y=1); then x = 39 px rounds to cell 5, just off the map: with
  // r = 0 its window is empty, so it counts as invisible (mode Zero: 0).
  Tensor lm2 = Tensor::from(std::vector<float>{0.f, 0.f, 35.f, 35.f, 16.f, 8.f, 39.f, 8.f}, {1, 4, 2});
  Tensor vis2 = Tensor::full({1, 4}, 1.0);
  Forward r0 = run_forward(g, lm2, vis2, {8, 0, LandmarkPoolMode::Zero});
  REQUIRE(r0.out.to_vector() == std::vector<float>{0.f, 24.f, 7.f, 0.f});
}

TEST_CASE("landmark_pool: batch N equals N runs of batch 1") {
  Rng rng(12);
  Tensor f = Tensor::randn({3, 33, 7, 7}, rng);
  Marks m = random_marks(3, 8, 7, 7, 8, 77);
  Forward all = run_forward(f, m.landmarks, m.visibility, {});
  auto full = all.out.to_vector();
  for (int64_t n = 0; n < 3; ++n) {
    Forward one = run_forward(f.slice0(n, n + 1), m.landmarks.slice0(n, n + 1), m.visibility.slice0(n, n + 1), {});
    auto v = one.out.to_vector();
    REQUIRE(std::equal(v.begin(), v.end(), full.begin() + n * 8 * 33));
  }
}

TEST_CASE("landmark_pool: CUDA matches the CPU (forward v1/v2, backward variants and accumulate bitwise)") {
  FN_REQUIRE_CUDA();
  struct Case {
    int64_t N, C, H, W;
    int r;
  };
  for (Case k : {Case{1, 1, 1, 1, 1}, Case{2, 33, 28, 28, 1}, Case{3, 45, 7, 5, 2}, Case{32, 512, 28, 28, 1},
                 Case{2, 33, 6, 6, 0}}) {
    for (auto mode : {LandmarkPoolMode::Corner, LandmarkPoolMode::Zero}) {
      LandmarkPoolArgs a{8, k.r, mode};
      Rng rng(k.C + k.H);
      Tensor f = Tensor::randn({k.N, k.C, k.H, k.W}, rng);
      Marks m = random_marks(k.N, 8, int(k.H), int(k.W), 8, k.N * 3 + k.C);
      Forward cpu = run_forward(f, m.landmarks, m.visibility, a);
      Tensor fg = f.to(Device::CUDA), lg = m.landmarks.to(Device::CUDA), vg = m.visibility.to(Device::CUDA);
      for (auto v : {kernels::LandmarkPoolForward::V1Naive, kernels::LandmarkPoolForward::V2SlotBlock}) {
        Forward gpu = run_forward(fg, lg, vg, a, v);
        REQUIRE(gpu.out.to_vector() == cpu.out.to_vector());
        REQUIRE(gpu.argmax->to_host() == cpu.argmax->to_host());
      }
      Tensor go = Tensor::randn(cpu.out.shape(), rng);
      Tensor ref = Tensor::empty_like(f);
      kernels::landmark_pool_backward(go, *cpu.argmax, ref);
      Forward gpu = run_forward(fg, lg, vg, a);
      Tensor gog = go.to(Device::CUDA);
      for (auto v : {kernels::LandmarkPoolBackward::Gather, kernels::LandmarkPoolBackward::GatherPlane,
                     kernels::LandmarkPoolBackward::GatherVec4, kernels::LandmarkPoolBackward::ZeroScatter,
                     kernels::LandmarkPoolBackward::Default,
                     kernels::LandmarkPoolBackward::AtomicScatter}) {
        Tensor gf = Tensor::empty(f.shape(), DType::F32, Device::CUDA);
        fn::test::poison(gf);
        kernels::landmark_pool_backward(gog, *gpu.argmax, gf, v);
        if (v == kernels::LandmarkPoolBackward::AtomicScatter)
          FN_REQUIRE_CLOSE(gf, ref, 1e-6, 1e-6);
        else
          REQUIRE(gf.to_vector() == ref.to_vector());  // deterministic gather: bitwise
      }
      // The sparse accumulation: the same order of additions on both devices, so bitwise equal.
      Tensor base = Tensor::randn(f.shape(), rng), ref_acc = base.clone(), gpu_acc = base.to(Device::CUDA);
      kernels::landmark_pool_backward_accumulate(go, *cpu.argmax, ref_acc);
      kernels::landmark_pool_backward_accumulate(gog, *gpu.argmax, gpu_acc);
      REQUIRE(gpu_acc.to_vector() == ref_acc.to_vector());
    }
  }
}
