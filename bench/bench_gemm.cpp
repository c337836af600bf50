// bench_gemm: single-precision matrix products, row-major C (M,N) = op(A) op(B).
//
//   validate: sampled entries of our result against float64 dot products, and our wrapper against the raw
//             library call, before anything is timed;
//   time:     one warm-up, then the median of --repeats runs; GFLOP/s = 2*M*N*K / time;
//   CPU:      the raw cblas_sgemm call (the baseline) beside our fn::kernels::gemm wrapper, at square sizes and
//             FashionNet's shapes (fc6/fc7 of a batch of 16, their weight gradients, conv3's per-image product);
//   CUDA:     cuBLAS SGEMM (FP32, no TF32) through our wrapper, TFLOP/s. Without a GPU: a message, exit 0,
//             and 'skipped' in the JSON.
//   --quick:  small sizes for a CI smoke run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <cblas.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/device.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/gemm.h"

#include "bench/bench_util.h"

#ifdef FN_WITH_CUDA
#include "core/cuda_context.h"
#endif

extern "C" char* openblas_get_config(void);

namespace {

using fn::Tensor;
using json = nlohmann::json;
using namespace fn::bench;

struct Shape3 {
  std::string name;
  int64_t M, N, K;
  bool ta, tb;
};

// Worst |C - ref| / (sqrt(K) * max|a| max|b|) over sampled entries, ref a float64 dot product.
double validate(const Shape3& s, const Tensor& A, const Tensor& B, const Tensor& C, int samples) {
  auto a = A.to_vector(), b = B.to_vector(), c = C.to_vector();
  fn::Rng rng(3);
  double worst = 0;
  for (int i = 0; i < samples; ++i) {
    int64_t m = rng.below(s.M), n = rng.below(s.N);
    double ref = 0;
    for (int64_t k = 0; k < s.K; ++k) {
      double av = s.ta ? a[size_t(k * s.M + m)] : a[size_t(m * s.K + k)];
      double bv = s.tb ? b[size_t(n * s.K + k)] : b[size_t(k * s.N + n)];
      ref += av * bv;
    }
    worst = std::max(worst, std::fabs(c[size_t(m * s.N + n)] - ref) / std::sqrt(double(s.K)));
  }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  fn::kernels::configure_blas(argv);  // before any product: the kernels OpenBLAS runs are fixed at load
  CLI::App app{"SGEMM benchmark: OpenBLAS raw vs our wrapper (CPU), cuBLAS (CUDA)"};
  Options opt;
  opt.repeats = 5;
  add_options(app, opt, "timed runs per measurement (median reported)");
  CLI11_PARSE(app, argc, argv);
  const std::string device = opt.device, json_path = opt.json_path;
  const bool quick = opt.quick;
  int repeats = opt.repeats;

  json out;
  out["benchmark"] = "bench_gemm";
  out.update(machine_json(device));
  out["versions"] = {{"compiler", __VERSION__}, {"openblas", openblas_get_config()}};
  out["device"] = device;
  out["quick"] = quick;
  if (skip_without_cuda("bench_gemm", device, out, json_path)) return 0;

  // FashionNet's dense shapes at batch 16: fc6_global x (16, 25088) W (4096, 25088); fc7_fusion x (16, 5120)
  // W (4096, 5120); the weight gradient g^T x of fc7; conv3's per-image im2col product.
  std::vector<Shape3> shapes = {{"square 256", 256, 256, 256, false, false},
                                {"square 512", 512, 512, 512, false, false},
                                {"square 1024", 1024, 1024, 1024, false, false},
                                {"square 2048", 2048, 2048, 2048, false, false},
                                {"fc6_global fwd x W^T (16x25088 . 4096x25088^T)", 16, 4096, 25088, false, true},
                                {"fc7_fusion fwd x W^T (16x5120 . 4096x5120^T)", 16, 4096, 5120, false, true},
                                {"fc7_fusion dW = g^T x (16x4096^T . 16x5120)", 4096, 5120, 16, true, false},
                                {"conv3 per image W . col (256x2304 . 2304x3136)", 256, 3136, 2304, false, false}};
  if (quick) {
    shapes = {{"square 128", 128, 128, 128, false, false},
              {"square 512", 512, 512, 512, false, false},
              {"fc7 quarter width fwd (16x1280 . 1024x1280^T)", 16, 1024, 1280, false, true},
              {"conv3 per image W . col (256x2304 . 2304x3136)", 256, 3136, 2304, false, false}};
    repeats = std::min(repeats, 3);
  }

  const bool cuda = device == "cuda";
#ifdef FN_WITH_CUDA
  std::function<void()> sync = cuda ? std::function<void()>([] { fn::cuda::synchronize(); }) : std::function<void()>([] {});
#else
  std::function<void()> sync = [] {};
#endif
  const fn::Device dev = cuda ? fn::Device::CUDA : fn::Device::CPU;
  if (!cuda)
    std::printf("CPU: %s, %s, %d BLAS threads\n", cpu_model().c_str(), openblas_get_config(), fn::kernels::blas_threads());
  out["blas_threads"] = fn::kernels::blas_threads();
  out["shapes"] = json::array();
  int status = 0;
  for (const Shape3& s : shapes) {
    fn::Rng rng(7);
    Tensor A = Tensor::uniform(s.ta ? fn::Shape{s.K, s.M} : fn::Shape{s.M, s.K}, rng, -1, 1);
    Tensor B = Tensor::uniform(s.tb ? fn::Shape{s.N, s.K} : fn::Shape{s.K, s.N}, rng, -1, 1);
    Tensor Ad = A.to(dev), Bd = B.to(dev), C = Tensor::empty({s.M, s.N}, fn::DType::F32, dev);
    const double gflop = 2.0 * double(s.M) * double(s.N) * double(s.K) * 1e-9;
    auto ours = [&] { fn::kernels::gemm(s.ta, s.tb, 1.0, Ad, Bd, 0.0, C); };
    C.fill_(NAN);
    ours();
    sync();
    double err = validate(s, A, B, C, 64);
    json sj = {{"name", s.name}, {"M", s.M}, {"N", s.N}, {"K", s.K}, {"trans_a", s.ta}, {"trans_b", s.tb},
               {"gflop", gflop}, {"validation_max_scaled_error", err}};
    if (err > 1e-5) {
      std::printf("%-50s VALIDATION FAILED (scaled error %.2e)\n", s.name.c_str(), err);
      sj["status"] = "validation failed";
      out["shapes"].push_back(sj);
      status = 1;
      continue;
    }
    if (cuda) {
      double t_ours = time_median(repeats, ours, sync);
      sj["cublas_tflops"] = gflop / t_ours * 1e-3;
      std::printf("%-50s cuBLAS (our wrapper) %8.2f TFLOP/s\n", s.name.c_str(), gflop / t_ours * 1e-3);
    } else {
      // The raw library call with the same operands: the baseline the wrapper must not fall behind.
      Tensor Craw = Tensor::empty({s.M, s.N});
      auto raw = [&] {
        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, int(s.M), int(s.N),
                    int(s.K), 1.f, A.f32(), int(A.size(1)), B.f32(), int(B.size(1)), 0.f, Craw.f32(), int(s.N));
      };
      raw();
      if (Craw.to_vector() != C.to_vector()) {
        std::printf("%-50s wrapper and raw cblas_sgemm differ\n", s.name.c_str());
        status = 1;
      }
      std::vector<double> t = time_interleaved(repeats, {raw, ours}, sync);
      sj["raw_cblas_gflops"] = gflop / t[0];
      sj["wrapper_gflops"] = gflop / t[1];
      std::printf("%-50s raw cblas_sgemm %7.1f GFLOP/s   fn::kernels::gemm %7.1f GFLOP/s   (%.2f)\n", s.name.c_str(),
                  gflop / t[0], gflop / t[1], t[0] / t[1]);
    }
    out["shapes"].push_back(sj);
  }
  out["status"] = status == 0 ? "ok" : "failed";
  if (!write_json(json_path, out)) status = 1;
  return status;
}
