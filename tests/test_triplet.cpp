// L2 normalisation, pairwise distances and the triplet loss: values against brute force, float64 gradient
// checks (well-separated distances: no ties, no hinge at its kink), the zero-distance guard, the active
// fraction, CUDA against the CPU.
#include <algorithm>
#include <cmath>

#include "kernels/triplet.h"
#include "nn/losses.h"
#include "tests/support/check.h"

using namespace fn;
using fn::kernels::TripletMode;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {
// P items x K images: labels 0,0,..,1,1,.. as item ids (arbitrary values, not 0..P-1).
Tensor pk_labels(int P, int K, DType t = DType::F64) {
  std::vector<double> v;
  for (int p = 0; p < P; ++p)
    for (int k = 0; k < K; ++k) v.push_back(100.0 + 7 * p);
  return Tensor::from(v, {int64_t(P) * K}).to(t);
}

// Brute force over every triplet, straight from the definition.
struct Brute {
  double loss, active_fraction;
};
Brute brute_triplet(const Tensor& d, const Tensor& labels, double m, TripletMode mode) {
  auto D = d.to_vector_f64(), Y = labels.to_vector_f64();
  int64_t N = d.size(0);
  double sum = 0, valid = 0, active = 0;
  for (int64_t a = 0; a < N; ++a) {
    if (mode == TripletMode::BatchHard) {
      double dp = -1, dn = INFINITY;
      for (int64_t j = 0; j < N; ++j) {
        if (j != a && Y[j] == Y[a]) dp = std::max(dp, D[a * N + j]);
        if (Y[j] != Y[a]) dn = std::min(dn, D[a * N + j]);
      }
      if (dp < 0 || std::isinf(dn)) continue;
      valid += 1;
      double h = m + dp - dn;
      if (h > 0) sum += h, active += 1;
    } else {
      for (int64_t p = 0; p < N; ++p)
        for (int64_t n = 0; n < N; ++n) {
          if (p == a || Y[p] != Y[a] || Y[n] == Y[a]) continue;
          valid += 1;
          double h = m + D[a * N + p] - D[a * N + n];
          if (h > 0) sum += h, active += 1;
        }
    }
  }
  double den = mode == TripletMode::BatchHard ? valid : active;
  return {den > 0 ? sum / den : 0.0, valid > 0 ? active / valid : 0.0};
}
}  // namespace

TEST_CASE("l2_normalize: unit rows, gradients (float64), a zero row stays finite") {
  for (int64_t N : {1, 33})
    for (int64_t D : {1, 45}) {
      Tensor x = leaf64({N, D}, N + D);
      Tensor y = F::l2_normalize(x);
      auto Y = y.to_vector_f64();
      for (int64_t i = 0; i < N; ++i) {
        double s = 0;
        for (int64_t k = 0; k < D; ++k) s += Y[i * D + k] * Y[i * D + k];
        REQUIRE(std::fabs(s - 1.0) < 1e-12);
      }
      clear_tape();
      gradcheck([](const std::vector<Tensor>& v) { return F::l2_normalize(v[0]); }, {leaf64({N, D}, N * D)});
    }
  Tensor z = Tensor::zeros({2, 5}, DType::F64);
  z.set_requires_grad(true);
  Tensor y = F::l2_normalize(z);
  backward(y, Tensor::full(y.shape(), 1.0, DType::F64));
  for (double v : y.to_vector_f64()) REQUIRE(v == 0.0);
  for (double g : z.grad().to_vector_f64()) REQUIRE(std::isfinite(g));
}

TEST_CASE("pairwise distances: GEMM form matches the direct sum; gradients (float64)") {
  for (int64_t M : {1, 33})
    for (int64_t D : {1, 45}) {
      Tensor a = leaf64({M, D}, M + D), b = leaf64({M + 2, D}, M * D);
      Tensor sq = Tensor::empty({M, M + 2}, DType::F64);
      kernels::pairwise_sq_distances(a, b, sq);
      auto A = a.to_vector_f64(), B = b.to_vector_f64(), S = sq.to_vector_f64();
      for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < M + 2; ++j) {
          double s = 0;
          for (int64_t k = 0; k < D; ++k) s += (A[i * D + k] - B[j * D + k]) * (A[i * D + k] - B[j * D + k]);
          REQUIRE(std::fabs(S[i * (M + 2) + j] - s) < 1e-12);
        }
      Tensor d = F::pairwise_distance(a);
      auto Dd = d.to_vector_f64();
      for (int64_t i = 0; i < M; ++i) REQUIRE(Dd[i * M + i] == std::sqrt(1e-12));  // exact zero diagonal
      clear_tape();
      gradcheck([](const std::vector<Tensor>& v) { return F::pairwise_distance(v[0]); }, {leaf64({M, D}, M + 5)});
    }
}

TEST_CASE("triplet loss on distances: values against brute force; gradients (float64)") {
  for (auto mode : {TripletMode::BatchHard, TripletMode::BatchAll})
    for (auto [P, K] : {std::pair{2, 2}, std::pair{4, 3}, std::pair{3, 11}}) {
      int64_t N = int64_t(P) * K;
      Tensor y = pk_labels(P, K);
      // Distances spread over [0.3, 1.3] with margin 0.5: many triplets active, many not.
      Tensor d = leaf64({N, N}, N + int(mode), 0.3, 1.3);
      F::TripletArgs args{0.5f, mode};
      auto r = F::triplet_loss_from_distances(d, y, args);
      Brute b = brute_triplet(d, y, 0.5, mode);
      REQUIRE(std::fabs(r.loss.item() - b.loss) < 1e-12);
      REQUIRE(std::fabs(r.active_fraction.item() - b.active_fraction) < 1e-12);
      REQUIRE(b.active_fraction > 0);
      clear_tape();
      gradcheck([&](const std::vector<Tensor>& v) { return F::triplet_loss_from_distances(v[0], y, args).loss; }, {d});
    }
}

TEST_CASE("triplet loss on embeddings: end to end through l2_normalize and distances (float64)") {
  for (auto mode : {TripletMode::BatchHard, TripletMode::BatchAll}) {
    Tensor y = pk_labels(3, 3);
    F::TripletArgs args{0.8f, mode};
    gradcheck([&](const std::vector<Tensor>& v) { return F::triplet_loss(F::l2_normalize(v[0]), y, args).loss; },
              {leaf64({9, 5}, 3 + int(mode))});
  }
}

TEST_CASE("triplet loss: anchor and positive at distance 0 give a finite loss and gradient") {
  for (auto mode : {TripletMode::BatchHard, TripletMode::BatchAll}) {
    // Rows 0 and 1 (same item) coincide; row 2 is another item.
    Tensor x = Tensor::from(std::vector<double>{0.6, 0.8, 0.6, 0.8, 1.0, 0.0}, {3, 2});
    x.set_requires_grad(true);
    Tensor y = Tensor::from(std::vector<double>{1, 1, 2}, {3});
    auto r = F::triplet_loss(x, y, {0.2f, mode});
    REQUIRE(std::isfinite(r.loss.item()));
    backward(r.loss);
    for (double g : x.grad().to_vector_f64()) REQUIRE(std::isfinite(g));
    // A whole batch collapsed to one point: every hinge is the margin, gradients finite (zero).
    Tensor c = Tensor::full({4, 3}, 0.5, DType::F64);
    c.set_requires_grad(true);
    auto rc = F::triplet_loss(c, pk_labels(2, 2), {0.2f, mode});
    REQUIRE(std::fabs(rc.loss.item() - 0.2) < 1e-5);
    REQUIRE(rc.active_fraction.item() == 1.0);
    backward(rc.loss);
    for (double g : c.grad().to_vector_f64()) REQUIRE(std::isfinite(g));
  }
}

TEST_CASE("triplet loss: active fraction, and no valid anchor gives 0") {
  // Two items on a line: item A at 0 and 0.1, item B at 1 and 3. Batch-hard with m = 0.5:
  // a=0: p=0.1, n=1 -> 0.5+0.1-1 < 0;  a=1: p 0.1, n 0.9 -> < 0;  a=2: p 2, n 0.9 -> 1.6 > 0;
  // a=3: p 2, n 2.9 -> < 0.  One active of four.
  Tensor x = Tensor::from(std::vector<double>{0, 0.1, 1, 3}, {4, 1});
  Tensor y = Tensor::from(std::vector<double>{5, 5, 9, 9}, {4});
  auto r = F::triplet_loss(x, y, {0.5f, TripletMode::BatchHard});
  REQUIRE(r.active_fraction.item() == 0.25);
  REQUIRE(std::fabs(r.loss.item() - 1.6 / 4) < 1e-6);
  auto none = F::triplet_loss(x, Tensor::full({4}, 1.0, DType::F64), {});
  REQUIRE(none.loss.item() == 0.0);
  REQUIRE(none.active_fraction.item() == 0.0);
}

TEST_CASE("triplet: CUDA matches the CPU (normalise, distances, both modes, forward and backward)") {
  FN_REQUIRE_CUDA();
  auto gpu = [](const Tensor& t) { return t.to(DType::F32).to(Device::CUDA); };
  for (auto [P, K] : {std::pair{1, 1}, std::pair{3, 11}, std::pair{9, 5}, std::pair{8, 4}})
    for (int64_t D : {1, 45, 4096}) {
      int64_t N = int64_t(P) * K;
      Rng rng(N + D);
      Tensor x = Tensor::randn({N, D}, rng);
      Tensor y = pk_labels(P, K, DType::F32);
      // l2_normalize, both versions, and its backward
      Tensor yn = Tensor::empty_like(x), nr = Tensor::empty({N}), gy = Tensor::randn({N, D}, rng),
             gx = Tensor::empty_like(x);
      kernels::l2_normalize_forward(x, 1e-12, yn, nr);
      kernels::l2_normalize_backward(gy, yn, nr, 1e-12, gx);
      for (auto v : {kernels::L2NormalizeVersion::V1RowThread, kernels::L2NormalizeVersion::V2RowBlock}) {
        Tensor YN = gpu(yn), NR = gpu(nr);
        fn::test::poison(YN);
        fn::test::poison(NR);
        kernels::l2_normalize_forward(gpu(x), 1e-12, YN, NR, v);
        FN_REQUIRE_CLOSE(YN, yn, 1e-6, 1e-5);
        FN_REQUIRE_CLOSE(NR, nr, 1e-5, 1e-5);
      }
      Tensor GX = gpu(gx);
      fn::test::poison(GX);
      kernels::l2_normalize_backward(gpu(gy), gpu(yn), gpu(nr), 1e-12, GX);
      FN_REQUIRE_CLOSE(GX, gx, 1e-5, 1e-4);
      // distances on the normalised rows
      Tensor d = Tensor::empty({N, N}), d2 = Tensor::empty({N, N});
      kernels::pairwise_distance_forward(yn, 1e-12, d, d2);
      Tensor Dm = gpu(d), D2 = gpu(d2);
      fn::test::poison(Dm);
      fn::test::poison(D2);
      kernels::pairwise_distance_forward(gpu(yn), 1e-12, Dm, D2);
      FN_REQUIRE_CLOSE(D2, d2, 1e-5, 1e-4);
      FN_REQUIRE_CLOSE(Dm, d, 1e-3, 1e-3);  // sqrt of a GEMM-difference near 0 amplifies rounding
      Tensor gd = Tensor::randn({N, N}, rng), gxd = Tensor::empty_like(yn);
      kernels::pairwise_distance_backward(gd, yn, d, d2, gxd);
      Tensor GXD = gpu(gxd);
      fn::test::poison(GXD);
      kernels::pairwise_distance_backward(gpu(gd), gpu(yn), gpu(d), gpu(d2), GXD);  // same d: same kinks
      FN_REQUIRE_CLOSE(GXD, gxd, 1e-3, 1e-3);
      // the loss on the CPU's distance matrix, both modes
      for (auto mode : {TripletMode::BatchHard, TripletMode::BatchAll}) {
        Tensor l = Tensor::empty({}), af = Tensor::empty({}), nm = Tensor::empty({}), g = Tensor::full({}, 1.0);
        kernels::triplet_forward(d, y, 0.3f, mode, l, af, nm);
        Tensor gdl = Tensor::empty_like(d);
        kernels::triplet_backward(g, d, y, 0.3f, mode, nm, gdl);
        Tensor L = gpu(l), AF = gpu(af), NM = gpu(nm), GD = gpu(gdl);
        for (Tensor* t : {&L, &AF, &NM, &GD}) fn::test::poison(*t);
        kernels::triplet_forward(gpu(d), gpu(y), 0.3f, mode, L, AF, NM);
        kernels::triplet_backward(gpu(g), gpu(d), gpu(y), 0.3f, mode, NM, GD);
        FN_REQUIRE_CLOSE(L, l, 1e-6, 1e-5);
        FN_REQUIRE_CLOSE(AF, af, 0.0, 0.0);
        FN_REQUIRE_CLOSE(GD, gdl, 1e-6, 1e-5);
      }
    }
}
