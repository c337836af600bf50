// The project's one gradient checker and one comparison rule, used by every op's tests.
//   compare: pass iff |x - ref| <= atol + rtol * |ref| for every element; on failure the message names the
//            worst element, its value, the reference and the error.
//   gradcheck: float64 central differences on the CPU against the autograd backward.
//   FN_REQUIRE_CUDA(): a GPU test without a GPU prints "SKIPPED:" (ctest reports it skipped) and returns.
#pragma once
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "core/autograd.h"
#include "core/philox.h"
#include "core/tensor.h"

namespace fn::test {

struct Compared {
  bool ok = true;
  std::string message;
};

inline Compared compare(const std::vector<double>& got, const std::vector<double>& ref, double atol, double rtol,
                        const std::string& what = "") {
  Compared r;
  if (got.size() != ref.size()) {
    r.ok = false;
    r.message = cat(what, ": size ", got.size(), " vs reference ", ref.size());
    return r;
  }
  double worst_excess = -1;
  size_t worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double err = std::fabs(got[i] - ref[i]);
    double excess = err - (atol + rtol * std::fabs(ref[i]));
    if (std::isnan(got[i]) != std::isnan(ref[i])) excess = INFINITY;
    if (excess > worst_excess) {
      worst_excess = excess;
      worst = i;
    }
  }
  if (!got.empty()) {
    r.ok = worst_excess <= 0;
    r.message = cat(what, ": worst element ", worst, " of ", got.size(), ": got ", got[worst], " reference ",
                    ref[worst], " |err| ", std::fabs(got[worst] - ref[worst]), " (atol ", atol, ", rtol ", rtol, ")");
  }
  return r;
}

inline Compared compare(const Tensor& got, const Tensor& ref, double atol, double rtol, const std::string& what = "") {
  // An undefined tensor (a gradient that never arrived) is a failure with a message, not a crash.
  if (!got.defined() || !ref.defined())
    return {false, cat(what, ": ", got.defined() ? "" : "result ", ref.defined() ? "" : "reference ", "undefined")};
  if (got.shape() != ref.shape()) return {false, cat(what, ": shape ", shape_str(got.shape()), " vs ", shape_str(ref.shape()))};
  return compare(got.to_vector_f64(), ref.to_vector_f64(), atol, rtol, what);
}

#define FN_REQUIRE_CLOSE(got, ref, atol, rtol)                                 \
  do {                                                                         \
    auto cmp_ = ::fn::test::compare((got), (ref), (atol), (rtol), #got);       \
    INFO(cmp_.message);                                                        \
    REQUIRE(cmp_.ok);                                                          \
  } while (0)

// Checks d(sum(w * f(inputs)))/d(input) for every input marked requires_grad, with w a fixed random
// weight per output element so that every output element matters. Inputs must be float64 CPU tensors.
inline void gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                      double eps = 1e-6, double atol = 1e-6, double rtol = 1e-5, uint64_t seed = 7) {
  for (auto& t : inputs) REQUIRE(t.dtype() == DType::F64);
  Tensor out = f(inputs);
  Rng rng(seed, 99);
  Tensor w = Tensor::uniform(out.shape(), rng, -1.0, 1.0, DType::F64);
  for (auto& t : inputs) t.zero_grad();
  backward(out, w);
  auto loss = [&]() {
    NoGradGuard ng;
    Tensor o = f(inputs);
    const double* po = o.f64();
    const double* pw = w.f64();
    double s = 0;
    for (int64_t i = 0; i < o.numel(); ++i) s += po[i] * pw[i];
    return s;
  };
  for (size_t k = 0; k < inputs.size(); ++k) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    Tensor g = x.grad();
    std::vector<double> analytic = g.defined() ? g.to_vector_f64() : std::vector<double>(size_t(x.numel()), 0.0);
    std::vector<double> numeric(size_t(x.numel()));
    double* px = x.f64();
    for (int64_t i = 0; i < x.numel(); ++i) {
      double keep = px[i];
      px[i] = keep + eps;
      double lp = loss();
      px[i] = keep - eps;
      double lm = loss();
      px[i] = keep;
      numeric[size_t(i)] = (lp - lm) / (2 * eps);
    }
    auto cmp = compare(analytic, numeric, atol, rtol, cat("gradient of input ", k, " ", x.describe()));
    INFO(cmp.message);
    REQUIRE(cmp.ok);
  }
  clear_tape();
}

// Random float64 CPU leaf, requiring grad.
inline Tensor leaf64(const Shape& s, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Rng rng(seed, 1);
  Tensor t = Tensor::uniform(s, rng, lo, hi, DType::F64);
  t.set_requires_grad(true);
  return t;
}

// Fills a tensor with NaN so that an output a kernel forgot to write cannot pass a comparison.
inline void poison(Tensor& t) { t.fill_(NAN); }

}  // namespace fn::test

// For the few CUDA cases too large for cudasim (hundreds of millions of GPU threads): skipped there, with why.
#define FN_REQUIRE_CUDA_HARDWARE(why)                                                               \
  do {                                                                                              \
    FN_REQUIRE_CUDA();                                                                              \
    if (::fn::cuda_simulated()) {                                                                   \
      std::printf("SKIPPED: on cudasim (%s); runs on a GPU\n", why);                                \
      return;                                                                                       \
    }                                                                                               \
  } while (0)

#define FN_REQUIRE_CUDA()                                                                           \
  do {                                                                                              \
    if (!::fn::cuda_available()) {                                                                  \
      std::printf("SKIPPED: %s\n", ::fn::cuda_compiled() ? "no CUDA device present" : "built without CUDA"); \
      return;                                                                                       \
    }                                                                                               \
  } while (0)
