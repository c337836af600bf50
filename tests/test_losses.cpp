// Softmax cross-entropy, weighted attribute BCE and masked landmark L2: values against direct formulas,
// float64 gradient checks, stability at extreme logits, the ignore/unknown rules, CUDA against the CPU.
#include <algorithm>
#include <cmath>

#include "kernels/attr_bce.h"
#include "kernels/landmark_l2.h"
#include "kernels/softmax_xent.h"
#include "nn/losses.h"
#include "tests/support/check.h"

using namespace fn;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {
// Labels in [0, K) with every `ignore_every`-th row set to -1.
Tensor random_labels(int64_t N, int K, uint64_t seed, int ignore_every = 0, DType t = DType::F64) {
  Rng rng(seed, 9);
  std::vector<double> v;
  for (int64_t i = 0; i < N; ++i) v.push_back(ignore_every && i % ignore_every == 1 ? -1.0 : double(rng.below(K)));
  return Tensor::from(v, {N}).to(t);
}
Tensor random_01(const Shape& s, uint64_t seed, double p_one = 0.5, DType t = DType::F64) {
  Rng rng(seed, 4);
  std::vector<double> v;
  for (int64_t i = 0; i < shape_numel(s); ++i) v.push_back(rng.uniform() < p_one ? 1.0 : 0.0);
  return Tensor::from(v, s).to(t);
}
// The textbook formula, naively in long double: the reference for the values. With smoothing e the target
// is (1 - e) on the label plus e / K on every class: -sum_k q_k log p_k.
double xent_reference(const Tensor& z, const Tensor& y, const Tensor& w, double e = 0.0) {
  auto Z = z.to_vector_f64(), Y = y.to_vector_f64();
  std::vector<double> W = w.defined() ? w.to_vector_f64() : std::vector<double>(Y.size(), 1.0);
  int64_t N = z.size(0), K = z.size(1);
  long double num = 0, den = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (Y[size_t(i)] < 0) continue;
    long double s = 0;
    for (int64_t k = 0; k < K; ++k) s += std::exp((long double)Z[size_t(i * K + k)]);
    long double ce = 0;
    for (int64_t k = 0; k < K; ++k) {
      const long double q = (k == int64_t(Y[size_t(i)]) ? 1.0L - e : 0.0L) + (long double)e / K;
      ce -= q * std::log(std::exp((long double)Z[size_t(i * K + k)]) / s);
    }
    num += W[size_t(i)] * ce;
    den += W[size_t(i)];
  }
  return den > 0 ? double(num / den) : 0.0;
}
}  // namespace

// ---------------------------------------------------------------- softmax cross-entropy
TEST_CASE("softmax_cross_entropy: value matches the formula; weights and ignored rows") {
  for (int64_t N : {1, 33, 45})
    for (int K : {2, 23, 50}) {
      Tensor z = leaf64({N, K}, N + K, -3, 3);
      Tensor y = random_labels(N, K, N * K, 4);
      Tensor w = leaf64({N}, 5, 0.5, 2.0);
      w.set_requires_grad(false);
      REQUIRE(std::fabs(F::softmax_cross_entropy(z, y).item() - xent_reference(z, y, Tensor())) < 1e-12);
      REQUIRE(std::fabs(F::softmax_cross_entropy(z, y, w).item() - xent_reference(z, y, w)) < 1e-12);
      clear_tape();
    }
}

TEST_CASE("softmax_cross_entropy: label smoothing matches the soft-target formula; 0 is the plain loss exactly") {
  for (int64_t N : {1, 33})
    for (int K : {2, 23, 50}) {
      Tensor z = leaf64({N, K}, N * K, -3, 3);
      Tensor y = random_labels(N, K, N + K, 4);
      Tensor w = leaf64({N}, 7, 0.5, 2.0);
      w.set_requires_grad(false);
      for (double e : {0.05, 0.1, 0.5}) {
        REQUIRE(std::fabs(F::softmax_cross_entropy(z, y, Tensor(), -1, e).item() - xent_reference(z, y, Tensor(), e)) <
                1e-12);
        REQUIRE(std::fabs(F::softmax_cross_entropy(z, y, w, -1, e).item() - xent_reference(z, y, w, e)) < 1e-12);
      }
      // A nonzero e changes the loss; 0 leaves it bit for bit.
      REQUIRE(F::softmax_cross_entropy(z, y, w, -1, 0.1).item() != F::softmax_cross_entropy(z, y, w).item());
      REQUIRE(F::softmax_cross_entropy(z, y, w, -1, 0.0).item() == F::softmax_cross_entropy(z, y, w).item());
      clear_tape();
    }
  // Smoothing raises the loss of a confident, correct row: it punishes the certainty itself.
  Tensor z = Tensor::from(std::vector<double>{20, 0, 0}, {1, 3}), y = Tensor::from(std::vector<double>{0}, {1});
  REQUIRE(F::softmax_cross_entropy(z, y, Tensor(), -1, 0.1).item() > 10 * F::softmax_cross_entropy(z, y).item());
  for (double bad : {-0.1, 1.0})
    REQUIRE_THROWS_AS(F::softmax_cross_entropy(z, y, Tensor(), -1, bad), Error);
  clear_tape();
}

TEST_CASE("softmax_cross_entropy: gradients (float64)") {
  for (int64_t N : {1, 33, 45})
    for (int K : {2, 23}) {
      Tensor y = random_labels(N, K, N + 3, 5);
      Rng wr(N);
      Tensor w = Tensor::uniform({N}, wr, 0.5, 2.0, DType::F64);
      gradcheck([&](const std::vector<Tensor>& x) { return F::softmax_cross_entropy(x[0], y); }, {leaf64({N, K}, N)});
      gradcheck([&](const std::vector<Tensor>& x) { return F::softmax_cross_entropy(x[0], y, w); },
                {leaf64({N, K}, N + 1)});
      gradcheck([&](const std::vector<Tensor>& x) { return F::softmax_cross_entropy(x[0], y, w, -1, 0.1); },
                {leaf64({N, K}, N + 2)});
    }
}

TEST_CASE("softmax_cross_entropy: outlier logits give a finite loss and gradient") {
  Tensor z = Tensor::from(std::vector<float>{1e4f, -1e4f, 0.f, -1e4f, 1e4f, 1e4f, 3.f, 1e4f, -1e4f}, {3, 3});
  Tensor y = Tensor::from(std::vector<float>{1.f, 0.f, 0.f}, {3});
  z.set_requires_grad(true);
  Tensor loss = F::softmax_cross_entropy(z, y);
  // Row 0: CE = 2e4; row 1: lse = 1e4 + log 2, CE = 2e4 + log 2; row 2: CE = 1e4 - 3.
  double expect = (2e4 + (2e4 + std::log(2.0)) + (1e4 - 3.0)) / 3.0;
  REQUIRE(std::isfinite(loss.item()));
  REQUIRE(std::fabs(loss.item() - expect) < 1e-2);
  backward(loss);
  for (float g : z.grad().to_vector()) REQUIRE(std::isfinite(g));
}

TEST_CASE("softmax_cross_entropy: all rows ignored gives 0 and no gradient; a bad label is an error") {
  Tensor z = leaf64({4, 3}, 1);
  Tensor y = Tensor::full({4}, -1.0, DType::F64);
  Tensor loss = F::softmax_cross_entropy(z, y);
  REQUIRE(loss.item() == 0.0);
  backward(loss);
  for (double g : z.grad().to_vector_f64()) REQUIRE(g == 0.0);
  Tensor bad = Tensor::from(std::vector<double>{0, 1, 3, 0}, {4});
  REQUIRE_THROWS_AS(F::softmax_cross_entropy(z, bad), Error);
  Tensor frac = Tensor::from(std::vector<double>{0, 1.5, 2, 0}, {4});
  REQUIRE_THROWS_AS(F::softmax_cross_entropy(z, frac), Error);
  Tensor other_ignore = Tensor::from(std::vector<double>{0, 255, 2, 1}, {4});
  REQUIRE(std::isfinite(F::softmax_cross_entropy(z, other_ignore, Tensor(), 255).item()));
  clear_tape();
}

// ---------------------------------------------------------------- attribute BCE
namespace {
double bce_reference(const Tensor& z, const Tensor& a, const Tensor& known, const Tensor& wp, const Tensor& wn) {
  auto Z = z.to_vector_f64(), A = a.to_vector_f64(), K = known.to_vector_f64(), P = wp.to_vector_f64(),
       Q = wn.to_vector_f64();
  int64_t N = z.size(0), M = z.size(1);
  long double s = 0;
  for (int64_t i = 0; i < N * M; ++i) {
    if (K[size_t(i)] == 0) continue;
    long double p = 1.0L / (1.0L + std::exp(-(long double)Z[size_t(i)]));
    s -= P[size_t(i % M)] * A[size_t(i)] * std::log(p) + Q[size_t(i % M)] * (1 - A[size_t(i)]) * std::log(1 - p);
  }
  return double(s / N);
}
}  // namespace

TEST_CASE("attribute_bce: value matches the formula; unknown labels contribute nothing") {
  for (int64_t N : {1, 33})
    for (int64_t A : {1, 45, 463}) {
      Tensor z = leaf64({N, A}, N + A, -4, 4);
      Tensor a = random_01({N, A}, 2, 0.2), known = random_01({N, A}, 3, 0.7);
      Tensor wp = leaf64({A}, 4, 0.1, 5), wn = leaf64({A}, 5, 0.1, 5);
      double got = F::attribute_bce(z, a, known, wp, wn).item();
      REQUIRE(std::fabs(got - bce_reference(z, a, known, wp, wn)) < 1e-10 * (1 + std::fabs(got)));
      // Changing a logit whose label is unknown changes nothing.
      auto K = known.to_vector_f64();
      size_t u = std::find(K.begin(), K.end(), 0.0) - K.begin();
      if (u < K.size()) {
        z.f64()[u] += 100.0;
        REQUIRE(F::attribute_bce(z, a, known, wp, wn).item() == got);
      }
      clear_tape();
    }
}

TEST_CASE("attribute_bce: gradients (float64), with and without the known mask") {
  for (int64_t N : {1, 33})
    for (int64_t A : {1, 45}) {
      Tensor a = random_01({N, A}, 7, 0.3), known = random_01({N, A}, 8, 0.8);
      Rng wr(N + A);
      Tensor wp = Tensor::uniform({A}, wr, 0.1, 5, DType::F64), wn = Tensor::uniform({A}, wr, 0.1, 5, DType::F64);
      gradcheck([&](const std::vector<Tensor>& x) { return F::attribute_bce(x[0], a, known, wp, wn); },
                {leaf64({N, A}, N * A, -4, 4)});
      gradcheck([&](const std::vector<Tensor>& x) { return F::attribute_bce(x[0], a, Tensor(), wp, wn); },
                {leaf64({N, A}, N * A + 1, -4, 4)});
    }
}

TEST_CASE("attribute_bce: extreme logits stay finite and exact") {
  Tensor z = Tensor::from(std::vector<float>{1e4f, -1e4f, 1e4f, -1e4f}, {1, 4});
  Tensor a = Tensor::from(std::vector<float>{1.f, 0.f, 0.f, 1.f}, {1, 4});
  Tensor ones = Tensor::full({4}, 1.0);
  z.set_requires_grad(true);
  Tensor loss = F::attribute_bce(z, a, Tensor(), ones, ones);
  REQUIRE(std::fabs(loss.item() - 2e4) < 1e-1);  // two confident right answers (0), two wrong (1e4 each)
  backward(loss);
  auto g = z.grad().to_vector();
  REQUIRE(g == std::vector<float>{0.f, 0.f, 1.f, -1.f});
}

TEST_CASE("attribute_weights: M/(2 count), clamped, empty sides handled") {
  auto w = kernels::attribute_weights({10, 1, 0, 0, 500}, {90, 999, 7, 0, 500});
  // attr 0: M = 100 -> w_pos 5, w_neg 100/180; attr 1: 1000/2 = 500 -> clamp 20, 1000/1998
  REQUIRE(w.w_pos[0] == Approx(5.0));
  REQUIRE(w.w_neg[0] == Approx(100.0 / 180.0));
  REQUIRE(w.w_pos[1] == 20.f);
  REQUIRE(w.w_neg[1] == Approx(1000.0 / 1998.0));
  REQUIRE(w.w_pos[2] == 20.f);  // no positives: the clamp's hi
  REQUIRE(w.w_neg[2] == Approx(0.5));
  REQUIRE((w.w_pos[3] == 1.f && w.w_neg[3] == 1.f));  // never labelled
  REQUIRE((w.w_pos[4] == 1.f && w.w_neg[4] == 1.f));  // balanced
  // M/(2 count) >= 1/2 always, so only a lower clamp above 1/2 can bite.
  auto tight = kernels::attribute_weights({1}, {99999}, 0.6f, 2.f);
  REQUIRE((tight.w_pos[0] == 2.f && tight.w_neg[0] == 0.6f));
  REQUIRE_THROWS_AS(kernels::attribute_weights({1, 2}, {3}), Error);
}

// ---------------------------------------------------------------- landmark L2
TEST_CASE("landmark_l2: value, visibility mask, gradients (float64)") {
  for (int64_t N : {1, 33}) {
    Tensor p = leaf64({N, 8, 2}, N, 0, 1), t = leaf64({N, 8, 2}, N + 1, 0, 1);
    Tensor v = random_01({N, 8}, N + 2, 0.6);
    auto P = p.to_vector_f64(), T = t.to_vector_f64(), V = v.to_vector_f64();
    double ref = 0;
    for (size_t i = 0; i < P.size(); ++i) ref += V[i / 2] * (P[i] - T[i]) * (P[i] - T[i]);
    REQUIRE(std::fabs(F::landmark_l2(p, t, v).item() - ref / double(N)) < 1e-12);
    clear_tape();
    gradcheck([&](const std::vector<Tensor>& x) { return F::landmark_l2(x[0], x[1], v); }, {p, t});
  }
  // Invisible slots are free: moving their prediction changes nothing.
  Tensor p = leaf64({2, 8, 2}, 1, 0, 1), t = leaf64({2, 8, 2}, 2, 0, 1);
  Tensor v = Tensor::zeros({2, 8}, DType::F64);
  REQUIRE(F::landmark_l2(p, t, v).item() == 0.0);
  clear_tape();
}

// ---------------------------------------------------------------- CUDA against the CPU
TEST_CASE("losses: CUDA matches the CPU (forward and backward, every version)") {
  FN_REQUIRE_CUDA();
  auto gpu = [](const Tensor& t) { return t.to(DType::F32).to(Device::CUDA); };
  auto cpu32 = [](const Tensor& t) { return t.to(DType::F32); };
  // K: visibility, both category counts, and for v4 a 16-byte-load width, its widest row and one past it.
  for (int64_t N : {1, 33, 45, 256})
    for (int K : {2, 23, 50, 36, 1024, 1025}) {
      Rng rng(N * K);
      Tensor z = Tensor::randn({N, K}, rng, 3.0), y = cpu32(random_labels(N, K, N, 4));
      Tensor w = Tensor::uniform({N}, rng, 0.5, 2.0);
      Tensor l = Tensor::empty({}), lse = Tensor::empty({N}), rw = Tensor::empty({N}), nm = Tensor::empty({});
      for (double e : {0.0, 0.1}) {
        kernels::softmax_xent_forward(z, y, w, -1, e, l, lse, rw, nm);
        Tensor g = Tensor::full({}, 0.7), gz = Tensor::empty_like(z);
        kernels::softmax_xent_backward(g, z, y, e, lse, rw, nm, gz);
        for (auto v : {kernels::SoftmaxXentVersion::V1RowThread, kernels::SoftmaxXentVersion::V2RowWarp,
                       kernels::SoftmaxXentVersion::V3RowWarpOnline, kernels::SoftmaxXentVersion::V4RowRegisters,
                       kernels::SoftmaxXentVersion::Default}) {
          Tensor L = gpu(Tensor::empty({})), LSE = gpu(Tensor::empty({N})), RW = gpu(Tensor::empty({N})),
                 NM = gpu(Tensor::empty({}));
          for (Tensor* t : {&L, &LSE, &RW, &NM}) fn::test::poison(*t);
          kernels::softmax_xent_forward(gpu(z), gpu(y), gpu(w), -1, e, L, LSE, RW, NM, v);
          FN_REQUIRE_CLOSE(L, l, 1e-5, 1e-5);
          FN_REQUIRE_CLOSE(LSE, lse, 1e-5, 1e-5);
          for (auto bv : {kernels::SoftmaxXentBackwardVersion::V1Element, kernels::SoftmaxXentBackwardVersion::V2RowWarp,
                          kernels::SoftmaxXentBackwardVersion::Default}) {
            Tensor GZ = gpu(Tensor::empty_like(z));
            fn::test::poison(GZ);
            kernels::softmax_xent_backward(gpu(g), gpu(z), gpu(y), e, LSE, RW, NM, GZ, bv);
            FN_REQUIRE_CLOSE(GZ, gz, 1e-6, 1e-5);
          }
        }
      }
    }
  for (int64_t N : {1, 33})
    for (int64_t A : {1, 45, 463, 1000}) {
      Rng rng(N + A);
      Tensor z = Tensor::randn({N, A}, rng, 4.0), a = cpu32(random_01({N, A}, 1, 0.2)),
             k = cpu32(random_01({N, A}, 2, 0.8));
      Tensor wp = Tensor::uniform({A}, rng, 0.05, 20), wn = Tensor::uniform({A}, rng, 0.05, 20);
      Tensor l = Tensor::empty({}), gz = Tensor::empty_like(z), g = Tensor::full({}, 1.3);
      kernels::attr_bce_forward(z, a, k, wp, wn, l);
      kernels::attr_bce_backward(g, z, a, k, wp, wn, gz);
      for (auto v : {kernels::AttrBceVersion::V1Element, kernels::AttrBceVersion::V2RowBlock}) {
        Tensor L = gpu(Tensor::empty({}));
        fn::test::poison(L);
        kernels::attr_bce_forward(gpu(z), gpu(a), gpu(k), gpu(wp), gpu(wn), L, v);
        FN_REQUIRE_CLOSE(L, l, 1e-5, 1e-5);
      }
      Tensor GZ = gpu(gz);
      fn::test::poison(GZ);
      kernels::attr_bce_backward(gpu(g), gpu(z), gpu(a), gpu(k), gpu(wp), gpu(wn), GZ);
      FN_REQUIRE_CLOSE(GZ, gz, 1e-6, 1e-5);
    }
  for (int64_t N : {1, 33, 45}) {
    Rng rng(N);
    Tensor p = Tensor::uniform({N, 8, 2}, rng, 0, 1), t = Tensor::uniform({N, 8, 2}, rng, 0, 1);
    Tensor v = cpu32(random_01({N, 8}, N, 0.6));
    Tensor l = Tensor::empty({}), gp = Tensor::empty_like(p), gt = Tensor::empty_like(p), g = Tensor::full({}, 0.9);
    kernels::landmark_l2_forward(p, t, v, l);
    kernels::landmark_l2_backward(g, p, t, v, gp, gt);
    Tensor L = gpu(Tensor::empty({})), GP = gpu(gp), GT = gpu(gt);
    for (Tensor* x : {&L, &GP, &GT}) fn::test::poison(*x);
    kernels::landmark_l2_forward(gpu(p), gpu(t), gpu(v), L);
    kernels::landmark_l2_backward(gpu(g), gpu(p), gpu(t), gpu(v), GP, GT);
    FN_REQUIRE_CLOSE(L, l, 1e-6, 1e-5);
    FN_REQUIRE_CLOSE(GP, gp, 1e-6, 1e-5);
    FN_REQUIRE_CLOSE(GT, gt, 1e-6, 1e-5);
  }
}
