// bench_conv: convolution throughput at VGG16 layer shapes (FashionNet's trunk and conv5 branches).
//
//   validate: every variant's forward, data gradient and filter gradient against the definition computed in
//             float64 at sampled positions, before anything is timed;
//   time:     one warm-up, then the median of --repeats runs; GFLOP/s counts 2*N*K*C*R*S*P*Q per direction;
//   CPU:      our im2col + OpenBLAS conv2d under both thread plans (images on threads; BLAS threads), and
//             the plain sgemm of the same product (K x CRS) x (CRS x N*P*Q) measured in the same run as the
//             baseline. The target: forward at VGG16 conv3 (batch 8, 256->256, 56x56, 3x3, pad 1) reaches
//             >= 70% of that sgemm rate; prints the ratio and PASS/FAIL.
//   CUDA:     cuDNN against our im2col kernel + cuBLAS, TFLOP/s, FP32 (no TF32). Without a GPU: a message,
//             exit 0, and 'skipped' in the JSON.
//   --quick:  small batches for a CI smoke run (a few seconds).
#include <algorithm>
#include <array>
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
#include "kernels/conv2d.h"
#include "kernels/conv2d_direct.h"
#include "kernels/conv2d_winograd.h"
#include "kernels/gemm.h"

#include "bench/bench_util.h"

#ifdef FN_WITH_CUDA
#include "core/cuda_context.h"
#endif

extern "C" char* openblas_get_config(void);

namespace {

using fn::Tensor;
using fn::kernels::ConvAlgo;
using fn::kernels::ConvCpuPlan;
using fn::kernels::ConvGeom;
using fn::kernels::ConvOptions;
using json = nlohmann::json;
using namespace fn::bench;

struct Layer {
  std::string name;
  int64_t N, C, H, W, K;  // 3x3 filters, stride 1, pad 1, as in every VGG16 conv
};

// The definition at one output / filter / input position, in float64, from host copies.
struct Reference {
  ConvGeom g;
  std::vector<float> x, w, gy;
  double y(int64_t n, int64_t k, int64_t p, int64_t q) const {
    double s = 0;
    for (int64_t c = 0; c < g.C; ++c)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t t = 0; t < g.S; ++t) {
          int64_t h = p * g.stride - g.pad + r, ww = q * g.stride - g.pad + t;
          if (h >= 0 && h < g.H && ww >= 0 && ww < g.W)
            s += double(w[size_t(((k * g.C + c) * g.R + r) * g.S + t)]) * x[size_t(((n * g.C + c) * g.H + h) * g.W + ww)];
        }
    return s;
  }
  double dw(int64_t k, int64_t c, int64_t r, int64_t t) const {
    double s = 0;
    for (int64_t n = 0; n < g.N; ++n)
      for (int64_t p = 0; p < g.P; ++p)
        for (int64_t q = 0; q < g.Q; ++q) {
          int64_t h = p * g.stride - g.pad + r, ww = q * g.stride - g.pad + t;
          if (h >= 0 && h < g.H && ww >= 0 && ww < g.W)
            s += double(gy[size_t(((n * g.K + k) * g.P + p) * g.Q + q)]) * x[size_t(((n * g.C + c) * g.H + h) * g.W + ww)];
        }
    return s;
  }
  double dx(int64_t n, int64_t c, int64_t h, int64_t ww) const {
    double s = 0;
    for (int64_t k = 0; k < g.K; ++k)
      for (int64_t r = 0; r < g.R; ++r)
        for (int64_t t = 0; t < g.S; ++t) {
          int64_t ph = h + g.pad - r, qw = ww + g.pad - t;
          if (ph < 0 || qw < 0 || ph % g.stride || qw % g.stride || ph / g.stride >= g.P || qw / g.stride >= g.Q) continue;
          s += double(w[size_t(((k * g.C + c) * g.R + r) * g.S + t)]) *
               gy[size_t(((n * g.K + k) * g.P + ph / g.stride) * g.Q + qw / g.stride)];
        }
    return s;
  }
};

// Worst relative error of `got` against the reference at `samples` random positions of each result.
double validate(const Reference& ref, const Tensor& y, const Tensor& gx, const Tensor& gw, int samples, uint64_t seed) {
  auto vy = y.to_vector(), vgx = gx.to_vector(), vgw = gw.to_vector();
  const ConvGeom& g = ref.g;
  fn::Rng rng(seed);
  double worst = 0;
  auto rel = [&](double got, double want, double scale) { worst = std::max(worst, std::fabs(got - want) / scale); };
  // Errors are scaled by the typical magnitude of a sum of that many unit products.
  for (int i = 0; i < samples; ++i) {
    int64_t n = rng.below(g.N), k = rng.below(g.K), p = rng.below(g.P), q = rng.below(g.Q);
    rel(vy[size_t(((n * g.K + k) * g.P + p) * g.Q + q)], ref.y(n, k, p, q), std::sqrt(double(g.crs())));
    int64_t c = rng.below(g.C), r = rng.below(g.R), t = rng.below(g.S);
    rel(vgw[size_t(((k * g.C + c) * g.R + r) * g.S + t)], ref.dw(k, c, r, t), std::sqrt(double(g.N * g.pq())));
    int64_t h = rng.below(g.H), w = rng.below(g.W);
    rel(vgx[size_t(((n * g.C + c) * g.H + h) * g.W + w)], ref.dx(n, c, h, w), std::sqrt(double(g.K * g.R * g.S)));
  }
  return worst;
}

// One variant of the convolution with its own output buffers, validated before it is timed.
struct Variant {
  std::string name;
  ConvOptions opt;
  Tensor y, gx, gw;
  double max_err = 0;
  std::function<void()> forward, backward_data, backward_filter;
};

Variant make_variant(std::string name, ConvOptions opt, const Tensor& x, const Tensor& w, const Tensor& gy,
                     const Reference& ref, const std::function<void()>& sync) {
  const ConvGeom& g = ref.g;
  Variant v;
  v.name = std::move(name);
  v.opt = opt;
  v.y = Tensor::empty({g.N, g.K, g.P, g.Q}, fn::DType::F32, x.device());
  v.gx = Tensor::empty_like(x);
  v.gw = Tensor::empty_like(w);
  v.y.fill_(NAN), v.gx.fill_(NAN), v.gw.fill_(NAN);
  Tensor y = v.y, gx = v.gx, gw = v.gw;  // handles sharing the storage, captured by the timed functions
  v.forward = [=]() mutable { fn::kernels::conv2d_forward(x, w, Tensor(), y, 1, 1, false, opt); };
  v.backward_data = [=]() mutable { fn::kernels::conv2d_backward_data(gy, w, gx, 1, 1, opt); };
  v.backward_filter = [=]() mutable { fn::kernels::conv2d_backward_filter(x, gy, gw, 1, 1, opt); };
  v.forward();
  v.backward_data();
  v.backward_filter();
  sync();
  v.max_err = validate(ref, v.y, v.gx, v.gw, 24, 5);
  FN_CHECK(v.max_err < 1e-4, v.name, ": validation failed: scaled error ", v.max_err);
  return v;
}

// Times every variant's forward (after `extra` first, when given), then data and filter gradients, each
// direction interleaved across the variants. Returns per variant: {forward, data, filter} seconds.
std::vector<std::array<double, 3>> time_variants(std::vector<Variant>& vs, int repeats, bool backward,
                                                 const std::function<void()>& sync,
                                                 const std::function<void()>& extra, double* extra_s) {
  std::vector<std::function<void()>> f;
  if (extra) f.push_back(extra);
  for (auto& v : vs) f.push_back(v.forward);
  std::vector<double> tf = time_interleaved(repeats, f, sync);
  if (extra) *extra_s = tf[0], tf.erase(tf.begin());
  std::vector<std::array<double, 3>> r(vs.size(), {0, 0, 0});
  for (size_t i = 0; i < vs.size(); ++i) r[i][0] = tf[i];
  if (backward) {
    f.clear();
    for (auto& v : vs) f.push_back(v.backward_data);
    std::vector<double> td = time_interleaved(repeats, f, sync);
    f.clear();
    for (auto& v : vs) f.push_back(v.backward_filter);
    std::vector<double> tw = time_interleaved(repeats, f, sync);
    for (size_t i = 0; i < vs.size(); ++i) r[i][1] = td[i], r[i][2] = tw[i];
  }
  return r;
}

json result_json(const std::array<double, 3>& t, double max_err, double gflop, bool backward, double unit) {
  json j = {{"forward_s", t[0]}, {"forward_rate", gflop * 1e9 / t[0] / unit}, {"validation_max_scaled_error", max_err}};
  if (backward) {
    j["backward_data_s"] = t[1];
    j["backward_data_rate"] = gflop * 1e9 / t[1] / unit;
    j["backward_filter_s"] = t[2];
    j["backward_filter_rate"] = gflop * 1e9 / t[2] / unit;
  }
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  fn::kernels::configure_blas(argv);  // before any product: the kernels OpenBLAS runs are fixed at load
  CLI::App app{"Convolution benchmark at VGG16 layer shapes: our im2col+BLAS (CPU), cuDNN vs im2col+cuBLAS (CUDA)"};
  Options opt;
  opt.repeats = 5;
  add_options(app, opt, "timed runs per measurement (median reported)");
  bool no_backward = false, target_only = false, cpu_small = false;
  app.add_flag("--no-backward", no_backward, "time the forward only");
  app.add_flag("--cpu-small", cpu_small, "the cpu-small preset's layers (width 1/4, 112x112, batch 16) instead");
  app.add_flag("--target-only", target_only, "only the target layer (conv3, batch 8)");
  CLI11_PARSE(app, argc, argv);
  const std::string device = opt.device, json_path = opt.json_path;
  const bool quick = opt.quick;
  int repeats = opt.repeats;
  const bool backward = !no_backward;

  json out;
  out["benchmark"] = "bench_conv";
  out.update(machine_json(device));
  out["versions"] = {{"compiler", __VERSION__}, {"openblas", openblas_get_config()}};
  out["device"] = device;
  out["quick"] = quick;

  // VGG16 layers at 224x224 input; the first is the target shape. --quick keeps batch 1 and smaller maps.
  std::vector<Layer> layers = {{"conv3 (conv3_2)", 8, 256, 56, 56, 256}, {"conv1_2", 8, 64, 224, 224, 64},
                               {"conv2_2", 8, 128, 112, 112, 128},      {"conv4_2", 8, 512, 28, 28, 512},
                               {"conv5_2", 8, 512, 14, 14, 512},        {"conv1_1", 8, 3, 224, 224, 64}};
  if (quick) {
    layers = {{"conv3 (conv3_2) batch 1", 1, 256, 56, 56, 256}, {"conv4_2 batch 1", 1, 512, 28, 28, 512},
              {"conv1_1 112x112 batch 1", 1, 3, 112, 112, 64}};
    repeats = std::min(repeats, 3);
  }

  if (cpu_small)  // the convolutions of a cpu-small training step (conv5_2 runs in both conv5 branches)
    layers = {{"conv1_1", 16, 3, 112, 112, 16},  {"conv1_2", 16, 16, 112, 112, 16}, {"conv2_1", 16, 16, 56, 56, 32},
              {"conv2_2", 16, 32, 56, 56, 32},   {"conv3_2", 16, 64, 28, 28, 64},    {"conv4_2", 16, 128, 14, 14, 128},
              {"conv5_2", 16, 128, 7, 7, 128}};
  if (target_only) layers.resize(1);
  if (skip_without_cuda("bench_conv", device, out, json_path)) return 0;

#ifdef FN_WITH_CUDA
  std::function<void()> sync = device == "cuda" ? std::function<void()>([] { fn::cuda::synchronize(); })
                                                : std::function<void()>([] {});
  if (device == "cuda") out["versions"]["cudnn"] = cudnnGetVersion();
#else
  std::function<void()> sync = [] {};
#endif
  const fn::Device dev = device == "cuda" ? fn::Device::CUDA : fn::Device::CPU;
  const double unit = device == "cuda" ? 1e12 : 1e9;
  const char* unit_name = device == "cuda" ? "TFLOP/s" : "GFLOP/s";
  if (device == "cpu") {
    out["blas_threads"] = fn::kernels::blas_threads();
    std::printf("CPU: %s, OpenBLAS %s, %d BLAS threads\n", cpu_model().c_str(), openblas_get_config(),
                fn::kernels::blas_threads());
  }

  out["layers"] = json::array();
  int status = 0;
  for (size_t li = 0; li < layers.size(); ++li) {
    const Layer& L = layers[li];
    fn::Rng rng(100 + li);
    Tensor x = Tensor::uniform({L.N, L.C, L.H, L.W}, rng, -1, 1), w = Tensor::uniform({L.K, L.C, 3, 3}, rng, -1, 1);
    ConvGeom g = fn::kernels::conv_geom(x.shape(), w.shape(), 1, 1);
    Tensor gy = Tensor::uniform({g.N, g.K, g.P, g.Q}, rng, -1, 1);
    Reference ref{g, x.to_vector(), w.to_vector(), gy.to_vector()};
    const double gflop = g.flops() * 1e-9;
    json lj = {{"layer", L.name}, {"N", L.N}, {"C", L.C}, {"H", L.H}, {"W", L.W}, {"K", L.K}, {"R", 3}, {"S", 3},
               {"gflop_per_direction", gflop}};
    std::printf("\n%s: x (%lld,%lld,%lld,%lld) * w (%lld,%lld,3,3), %.2f GFLOP per direction\n", L.name.c_str(),
                (long long)L.N, (long long)L.C, (long long)L.H, (long long)L.W, (long long)L.K, (long long)L.C, gflop);
    Tensor xd = x.to(dev), wd = w.to(dev), gyd = gy.to(dev);

    std::vector<Variant> vs;
    if (device == "cpu") {
      for (ConvCpuPlan plan : {ConvCpuPlan::Images, ConvCpuPlan::Blas, ConvCpuPlan::Auto})
        vs.push_back(make_variant(fn::kernels::conv_cpu_plan_name(plan), {ConvAlgo::Im2colGemm, plan}, xd, wd, gyd, ref, sync));
      // The direct 3x3 kernel (its data gradient is a direct forward too, which needs C % 4 == 0; the filter
      // gradient stays im2col + GEMM).
      if (fn::kernels::conv3x3_direct_supported(g) && (!backward || g.C % 4 == 0))
        vs.push_back(make_variant("direct3x3", {ConvAlgo::Direct3x3, ConvCpuPlan::Auto}, xd, wd, gyd, ref, sync));
      // Winograd F(2x2, 3x3): forward and data gradient (run as a forward); the filter gradient is im2col + GEMM.
      if (fn::kernels::conv3x3_winograd_supported(g))
        vs.push_back(make_variant("winograd3x3", {ConvAlgo::Winograd3x3, ConvCpuPlan::Auto}, xd, wd, gyd, ref, sync));
    } else {
      for (ConvAlgo algo : {ConvAlgo::Cudnn, ConvAlgo::Im2colGemm})
        vs.push_back(make_variant(fn::kernels::conv_algo_name(algo), {algo}, xd, wd, gyd, ref, sync));
    }
    // The CPU baseline: one plain sgemm of the whole lowered product (K x CRS) x (CRS x N*P*Q), default
    // threads, timed interleaved with the convolutions' forward.
    const int64_t M = g.K, K = g.crs(), Ncol = g.N * g.pq();
    Tensor A, B, C;
    std::function<void()> sgemm;
    if (device == "cpu") {
      A = Tensor::uniform({M, K}, rng, -1, 1), B = Tensor::uniform({K, Ncol}, rng, -1, 1), C = Tensor::empty({M, Ncol});
      sgemm = [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(Ncol), int(K), 1.f, A.f32(), int(K), B.f32(),
                    int(Ncol), 0.f, C.f32(), int(Ncol));
      };
    }
    double t_sgemm = 0;
    auto times = time_variants(vs, repeats, backward, sync, sgemm, &t_sgemm);
    double sgemm_rate = device == "cpu" ? gflop / t_sgemm : 0;
    if (device == "cpu") {
      lj["sgemm_baseline"] = {{"M", M}, {"N", Ncol}, {"K", K}, {"s", t_sgemm}, {"gflops", sgemm_rate}};
      std::printf("  plain sgemm (%lld x %lld) x (%lld x %lld): %8.1f GFLOP/s\n", (long long)M, (long long)K,
                  (long long)K, (long long)Ncol, sgemm_rate);
    }
    double default_fwd = 0;
    for (size_t i = 0; i < vs.size(); ++i) {
      const auto& t = times[i];
      lj[device][vs[i].name] = result_json(t, vs[i].max_err, gflop, backward, unit);
      double fwd = gflop * 1e9 / t[0] / unit;
      std::printf("  %-18s forward %8.2f %s", vs[i].name.c_str(), fwd, unit_name);
      if (device == "cpu") std::printf(" (%3.0f%% of sgemm)", 100 * gflop / t[0] / sgemm_rate);
      if (backward) std::printf("   data grad %8.2f   filter grad %8.2f", gflop * 1e9 / t[1] / unit, gflop * 1e9 / t[2] / unit);
      std::printf("   (validated, scaled error %.1e)\n", vs[i].max_err);
      if (vs[i].opt.cpu_plan == ConvCpuPlan::Auto && vs[i].opt.algo == ConvAlgo::Im2colGemm) default_fwd = gflop / t[0];
    }
    if (device == "cpu" && !cpu_small) {
      double ratio = default_fwd / sgemm_rate;
      lj["forward_ratio_to_sgemm"] = ratio;
      if (li == 0) {
        bool pass = ratio >= 0.70;
        out["target"] = {{"layer", L.name}, {"forward_ratio_to_sgemm", ratio}, {"threshold", 0.70},
                         {"status", pass ? "PASS" : "FAIL"}, {"note", quick ? "quick run: batch 1, not the target batch 8" : ""}};
        std::printf("  TARGET forward (default plan) / sgemm = %.2f (>= 0.70): %s%s\n", ratio, pass ? "PASS" : "FAIL",
                    quick ? " [quick: batch 1]" : "");
        if (!pass && !quick) status = 1;
      }
    }
    out["layers"].push_back(lj);
  }
  out["status"] = status == 0 ? "ok" : "target missed";
  if (!write_json(json_path, out)) status = 1;
  return status;
}
