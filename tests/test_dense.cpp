// matmul, linear and the per-channel bias: loop references, float64 gradient checks, batch invariance,
// and CUDA against the CPU.
#include <array>
#include <cstdlib>
#include <string>

#include "kernels/bias.h"
#include "kernels/gemm.h"
#include "nn/functional.h"
#include "tests/support/check.h"

using namespace fn;
using fn::test::gradcheck;
using fn::test::leaf64;

namespace {
// y = a b by three loops, in float64.
std::vector<double> matmul_ref(const Tensor& a, const Tensor& b) {
  auto va = a.to_vector_f64(), vb = b.to_vector_f64();
  int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  std::vector<double> y(size_t(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j)
      for (int64_t k = 0; k < K; ++k) y[size_t(i * N + j)] += va[size_t(i * K + k)] * vb[size_t(k * N + j)];
  return y;
}
Tensor detached(const Tensor& t) { return t.clone().set_requires_grad(false); }
}  // namespace

TEST_CASE("matmul and linear: forward matches a loop reference") {
  Rng rng(3);
  for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 4}, {33, 45, 1}, {45, 33, 17}}) {
    Tensor a = Tensor::randn({M, K}, rng), b = Tensor::randn({K, N}, rng);
    FN_REQUIRE_CLOSE(F::matmul(a, b).to_vector_f64(), matmul_ref(a, b), 1e-5, 1e-5);
    // linear(x, W, bias) = x W^T + bias with W (N, K)
    Tensor w = Tensor::randn({N, K}, rng), bias = Tensor::randn({N}, rng);
    Tensor wt = Tensor::empty({K, N});
    auto vw = w.to_vector();
    for (int64_t i = 0; i < N; ++i)
      for (int64_t k = 0; k < K; ++k) wt.f32()[k * N + i] = vw[size_t(i * K + k)];
    auto ref = matmul_ref(a, wt);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) ref[size_t(i * N + j)] += bias.f32()[j];
    FN_REQUIRE_CLOSE(F::linear(a, w, bias).to_vector_f64(), ref, 1e-5, 1e-5);
  }
}

TEST_CASE("matmul and linear: gradients (float64, central differences)") {
  for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {3, 5, 4}, {1, 33, 2}, {5, 3, 45}}) {
    gradcheck([](const std::vector<Tensor>& v) { return F::matmul(v[0], v[1]); }, {leaf64({M, K}, 1), leaf64({K, N}, 2)});
    gradcheck([](const std::vector<Tensor>& v) { return F::linear(v[0], v[1], v[2]); },
              {leaf64({M, K}, 3), leaf64({N, K}, 4), leaf64({N}, 5)});
    gradcheck([](const std::vector<Tensor>& v) { return F::linear(v[0], v[1], Tensor()); },
              {leaf64({M, K}, 6), leaf64({N, K}, 7)});
  }
}

TEST_CASE("linear: only the inputs that require a gradient receive one") {
  Tensor x = leaf64({4, 3}, 1), w = leaf64({2, 3}, 2), b = leaf64({2}, 3);
  x.set_requires_grad(false);
  backward(F::sum(F::linear(x, w, b)));
  REQUIRE(!x.grad().defined());
  REQUIRE(w.grad().defined());
  // d sum / d b_j = N (every row adds b_j once)
  for (double g : b.grad().to_vector_f64()) REQUIRE(g == 4.0);
}

TEST_CASE("linear: a batch of N equals N batches of 1") {
  Rng rng(9);
  const int64_t N = 33, in = 45, out = 17;
  Tensor x = Tensor::randn({N, in}, rng), w = Tensor::randn({out, in}, rng), b = Tensor::randn({out}, rng);
  Tensor y = F::linear(x, w, b);
  for (int64_t n = 0; n < N; ++n) {
    Tensor yn = F::linear(x.slice0(n, n + 1).clone(), w, b);
    FN_REQUIRE_CLOSE(yn, y.slice0(n, n + 1).clone(), 1e-5, 1e-5);
  }
}

TEST_CASE("bias_add and bias_grad: CPU against loops, both layouts") {
  Rng rng(4);
  for (Shape s : {Shape{1, 1}, Shape{33, 45}, Shape{3, 5, 7, 9}, Shape{2, 33, 1, 1}}) {
    Tensor y = Tensor::randn(s, rng, 1.0, DType::F64), b = Tensor::randn({s[1]}, rng, 1.0, DType::F64);
    int64_t inner = y.numel() / (s[0] * s[1]);
    auto vy = y.to_vector_f64(), vb = b.to_vector_f64();
    std::vector<double> add(vy.size()), relu(vy.size()), sums(size_t(s[1]), 0.0);
    for (size_t i = 0; i < vy.size(); ++i) {
      size_t k = (i / size_t(inner)) % size_t(s[1]);
      add[i] = vy[i] + vb[k];
      relu[i] = add[i] > 0 ? add[i] : 0.0;
      sums[k] += vy[i];
    }
    Tensor gb = Tensor::empty({s[1]}, DType::F64);
    fn::test::poison(gb);
    kernels::bias_grad(y, gb);
    FN_REQUIRE_CLOSE(gb.to_vector_f64(), sums, 1e-12, 1e-12);
    Tensor y2 = y.clone();
    kernels::bias_add(y2, b, true);
    FN_REQUIRE_CLOSE(y2.to_vector_f64(), relu, 0.0, 0.0);
    kernels::bias_add(y, b);
    FN_REQUIRE_CLOSE(y.to_vector_f64(), add, 0.0, 0.0);
  }
}

TEST_CASE("OpenBLAS kernels: a CPU newer than the library gets the best kernels it runs, a known one keeps its own",
          "[gemm]") {
  using fn::kernels::blas_kernels_for_cpu;
  const fn::kernels::CpuVectorIsa avx512{true, true}, avx2{true, false}, sse{false, false};
  // The generic fallback of an unknown model (a 5th-generation Xeon under OpenBLAS 0.3.21).
  CHECK(blas_kernels_for_cpu("Prescott", avx512) == "SkylakeX");
  CHECK(blas_kernels_for_cpu("Prescott", avx2) == "Haswell");
  CHECK(blas_kernels_for_cpu("Sandybridge", avx2) == "Haswell");
  CHECK(blas_kernels_for_cpu("Prescott", sse) == "");  // nothing better to name
  // A detection with AVX2 kernels or newer stands.
  for (const char* known : {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"})
    CHECK(blas_kernels_for_cpu(known, avx512) == "");
  // What this process runs is one of OpenBLAS's names, and after configure_blas (the test main calls it) never
  // the generic SSE3 kernels on a CPU with AVX2, unless the user asked for them.
  const std::string running = fn::kernels::blas_kernels();
  CHECK(!running.empty());
  const char* asked = std::getenv("OPENBLAS_CORETYPE");
  if (fn::kernels::cpu_vector_isa().avx2_fma && !(asked && std::string(asked) == "Prescott"))
    CHECK(running != "Prescott");
}

TEST_CASE("dense: CUDA matches the CPU (forward, backward, bias kernels)") {
  FN_REQUIRE_CUDA();
  Rng rng(11);
  for (auto [M, K, N] : std::vector<std::array<int64_t, 3>>{{1, 1, 1}, {33, 45, 17}, {64, 4096, 1000}}) {
    Tensor x = Tensor::randn({M, K}, rng), w = Tensor::randn({N, K}, rng, 0.05), b = Tensor::randn({N}, rng);
    Tensor xc = detached(x).set_requires_grad(true), wc = detached(w).set_requires_grad(true),
           bc = detached(b).set_requires_grad(true);
    Tensor xg = x.to(Device::CUDA).set_requires_grad(true), wg = w.to(Device::CUDA).set_requires_grad(true),
           bg = b.to(Device::CUDA).set_requires_grad(true);
    Tensor seed = Tensor::randn({M, N}, rng);
    // backward consumes the whole tape: each device's graph is recorded and run back before the next.
    Tensor yc = F::linear(xc, wc, bc);
    backward(yc, seed);
    Tensor yg = F::linear(xg, wg, bg);
    FN_REQUIRE_CLOSE(yg, yc, 1e-4, 1e-4);
    backward(yg, seed.to(Device::CUDA));
    FN_REQUIRE_CLOSE(xg.grad(), xc.grad(), 1e-4, 1e-4);
    FN_REQUIRE_CLOSE(wg.grad(), wc.grad(), 1e-4, 1e-4);
    FN_REQUIRE_CLOSE(bg.grad(), bc.grad(), 1e-4, 1e-4);
    // matmul through the same tape
    Tensor a = Tensor::randn({M, K}, rng), c = Tensor::randn({K, N}, rng, 0.05);
    Tensor ac = detached(a).set_requires_grad(true), cc = detached(c).set_requires_grad(true);
    Tensor ag = a.to(Device::CUDA).set_requires_grad(true), cg = c.to(Device::CUDA).set_requires_grad(true);
    Tensor mc = F::matmul(ac, cc);
    backward(mc, seed);
    Tensor mg = F::matmul(ag, cg);
    FN_REQUIRE_CLOSE(mg, mc, 1e-4, 1e-4);
    backward(mg, seed.to(Device::CUDA));
    FN_REQUIRE_CLOSE(ag.grad(), ac.grad(), 1e-4, 1e-4);
    FN_REQUIRE_CLOSE(cg.grad(), cc.grad(), 1e-4, 1e-4);
  }
  // bias kernels, both CUDA mappings (inner == 1: column sums; inner > 1: per-channel block reduction)
  for (Shape s : {Shape{1, 1}, Shape{45, 33}, Shape{3, 33, 45, 7}, Shape{2, 1, 1, 1}}) {
    Tensor y = Tensor::randn(s, rng), b = Tensor::randn({s[1]}, rng);
    for (bool relu : {false, true}) {
      Tensor yc = y.clone(), yg = y.to(Device::CUDA);
      kernels::bias_add(yc, b, relu);
      kernels::bias_add(yg, b.to(Device::CUDA), relu);
      FN_REQUIRE_CLOSE(yg, yc, 1e-6, 1e-6);
    }
    Tensor gc = Tensor::empty({s[1]}), gg = Tensor::empty({s[1]}, DType::F32, Device::CUDA);
    fn::test::poison(gg);
    kernels::bias_grad(y, gc);
    kernels::bias_grad(y.to(Device::CUDA), gg);
    FN_REQUIRE_CLOSE(gg, gc, 1e-4, 1e-5);
  }
}
