// Batch norm 2d benchmark at EfficientNet-Lite0's batch-norm shapes (batch 32 at 224 px and batch 16 at
// 160 px), in training mode (batch statistics, running ones updated): forward, backward (x, weight and bias
// gradients) and the two together, every version. Validates each version first (the CPU's Channels and
// Planes against the reference; each CUDA version against the CPU reference), then times.
// The figure that matters is GB/s of compulsory traffic: the forward reads x and writes y (2 S bytes for a
// tensor of S bytes), the backward reads gy and x and writes gx (3 S). It is set against a copy measured in
// the same run: on the CPU a copy of x (read S, write S) timed in the same interleaved rounds, on the GPU
// cudaMemcpy device to device. Baselines in the same run: PyTorch's CPU batch norm (bench/pytorch/
// batchnorm2d.py, same shapes, same thread count) and, on CUDA, cuDNN (BatchNormAlgo::Cudnn).
//   bench_batchnorm2d [--device cpu|cuda] [--quick] [--repeats R] [--json FILE] [--no-pytorch] [--shapes N,C,H,W ...]
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/device.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/batchnorm2d.h"
#include "kernels/gemm.h"

#include "bench/bench_util.h"

using namespace fn;
using json = nlohmann::json;
using kernels::BatchNormAlgo;
using kernels::BatchNormStats;

namespace {

struct Shape4 {
  int64_t N, C, H, W;
  std::string str() const { return cat(N, "x", C, "x", H, "x", W); }
};

// One problem's tensors on one device.
struct Bufs {
  Tensor x, w, b, rm, rv, y, mean, inv_std, gy, gx, gw, gb;
  Bufs(const Shape4& s, Device d, uint64_t seed) {
    Rng rng(seed);
    const Shape xs{s.N, s.C, s.H, s.W}, cs{s.C};
    x = Tensor::randn(xs, rng).to(d);
    gy = Tensor::randn(xs, rng).to(d);
    w = Tensor::uniform(cs, rng, 0.5, 1.5).to(d);
    b = Tensor::uniform(cs, rng, -0.5, 0.5).to(d);
    rm = Tensor::zeros(cs, DType::F32, d);
    rv = Tensor::full(cs, 1.0, DType::F32, d);
    y = Tensor::empty(xs, DType::F32, d);
    gx = Tensor::empty(xs, DType::F32, d);
    mean = Tensor::empty(cs, DType::F32, d);
    inv_std = Tensor::empty(cs, DType::F32, d);
    gw = Tensor::empty(cs, DType::F32, d);
    gb = Tensor::empty(cs, DType::F32, d);
  }
  void forward(BatchNormAlgo a) {
    kernels::batch_norm2d_forward(x, w, b, rm, rv, BatchNormStats::Batch, 0.1, 1e-5, y, mean, inv_std, a);
  }
  void backward(BatchNormAlgo a) {
    kernels::batch_norm2d_backward(gy, x, w, b, mean, inv_std, BatchNormStats::Batch, gx, gw, gb, a);
  }
};

// Worst |got - ref| / (1e-4 + |ref|) over y, gx, gw, gb: the validation's measure.
double worst_error(const Bufs& got, const Bufs& ref) {
  double worst = 0;
  for (auto [g, r] : {std::pair{&got.y, &ref.y}, std::pair{&got.gx, &ref.gx}, std::pair{&got.gw, &ref.gw},
                      std::pair{&got.gb, &ref.gb}}) {
    const std::vector<double> a = g->cpu().to_vector_f64(), b = r->cpu().to_vector_f64();
    for (size_t i = 0; i < a.size(); ++i) {
      const double e = std::fabs(a[i] - b[i]) / (1e-4 + std::fabs(b[i]));
      worst = std::isnan(e) ? INFINITY : std::max(worst, e);
    }
  }
  return worst;
}

// PyTorch's figures per shape (null where unavailable).
json run_pytorch(const std::vector<Shape4>& shapes, int repeats, int threads) {
  std::string args = cat("--repeats ", repeats, " --threads ", threads, " --shapes");
  for (const Shape4& s : shapes) args += cat(" ", s.N, ",", s.C, ",", s.H, ",", s.W);
  return bench::run_python_json("bench/pytorch/batchnorm2d.py", args);
}

}  // namespace

int main(int argc, char** argv) {
  kernels::configure_blas(argv);
  CLI::App app{"Batch norm 2d benchmark (training mode: forward, backward, every version)"};
  bench::Options opt;
  bool no_pytorch = false;
  bench::add_options(app, opt, "timed rounds (default 10, quick 3)");
  app.add_flag("--no-pytorch", no_pytorch, "skip PyTorch's side");
  std::vector<std::string> only;
  app.add_option("--shapes", only, "run only these shapes, each N,C,H,W");
  CLI11_PARSE(app, argc, argv);
  const int repeats = opt.repeats_or(3, 10);

  json out;
  out["benchmark"] = "batchnorm2d";
  out.update(bench::machine_json(opt.device));
  out["device"] = opt.device;
  out["load_average"] = bench::load_average();
  out["results"] = json::array();
  if (bench::skip_without_cuda("bench_batchnorm2d", opt.device, out, opt.json_path)) return 0;

  // Lite0's batch-norm inputs: the stem and the first expansion at full resolution, then one per stage.
  std::vector<Shape4> shapes =
      opt.quick ? std::vector<Shape4>{{4, 32, 28, 28}, {4, 240, 7, 7}}
                : std::vector<Shape4>{{32, 32, 112, 112}, {32, 96, 112, 112}, {32, 144, 56, 56}, {32, 240, 28, 28},
                                      {32, 480, 14, 14},  {32, 1152, 7, 7},   {16, 32, 80, 80},   {16, 96, 80, 80},
                                      {16, 144, 40, 40},  {16, 240, 20, 20},  {16, 480, 10, 10},  {16, 1152, 5, 5}};
  if (!only.empty()) {
    shapes.clear();
    for (const std::string& o : only) {
      Shape4 s{};
      if (std::sscanf(o.c_str(), "%lld,%lld,%lld,%lld", (long long*)&s.N, (long long*)&s.C, (long long*)&s.H,
                      (long long*)&s.W) != 4 || s.N <= 0 || s.C <= 0 || s.H <= 0 || s.W <= 0) {
        std::fprintf(stderr, "--shapes: expected N,C,H,W with positive sizes, got '%s'\n", o.c_str());
        return 2;
      }
      shapes.push_back(s);
    }
  }
  const int threads = std::max(1, kernels::blas_threads());
  out["threads"] = threads;

  auto record = [&](const Shape4& s, const std::string& pass, const std::string& version, double ms, double bytes,
                    double copy_gbs) {
    const double gbs = bytes / (ms * 1e6);
    json r = {{"shape", {s.N, s.C, s.H, s.W}}, {"pass", pass}, {"version", version}, {"ms", ms}, {"bytes", bytes},
              {"gbytes_per_s", gbs}};
    if (copy_gbs > 0) r["fraction_of_copy_bandwidth"] = gbs / copy_gbs;
    out["results"].push_back(r);
    std::printf("%-16s %-8s %-12s %9.3f ms %7.2f GB/s", s.str().c_str(), pass.c_str(), version.c_str(), ms, gbs);
    if (copy_gbs > 0) std::printf("  %4.0f%% of copy", 100 * gbs / copy_gbs);
    std::printf("\n");
    return r;
  };

  if (opt.device == "cpu") {
    std::printf("batchnorm2d on %s, %d threads, load %.2f\n", bench::cpu_model().c_str(), threads,
                bench::load_average());
    json summary = json::array();
    const std::vector<std::pair<BatchNormAlgo, const char*>> versions = {
        {BatchNormAlgo::Channels, "channels"}, {BatchNormAlgo::Planes, "planes"}};
    for (const Shape4& s : shapes) {
      Bufs ref(s, Device::CPU, 7);
      ref.forward(BatchNormAlgo::Reference);
      ref.backward(BatchNormAlgo::Reference);
      std::vector<std::unique_ptr<Bufs>> bufs;  // each version its own tensors (see the timing order below)
      for (auto [a, name] : versions) {
        bufs.push_back(std::make_unique<Bufs>(s, Device::CPU, 7));
        bufs.back()->forward(a);
        bufs.back()->backward(a);
        const double err = worst_error(*bufs.back(), ref);
        if (!(err < 1e-3)) {
          std::fprintf(stderr, "validation failed at %s: %s vs reference, worst relative error %g\n", s.str().c_str(),
                       name, err);
          return 1;
        }
      }
      Rng rng(3);
      Tensor src = Tensor::randn(ref.x.shape(), rng), dst = Tensor::empty_like(src);
      const double S = double(ref.x.nbytes());
      // Rounds of: copy, every version's forward, every backward, every forward + backward. Each call follows
      // one on other tensors, so none finds its inputs in cache from the call before (a training step's
      // neighbouring layers leave it little of its own either).
      std::vector<std::function<void()>> fns = {[&] { dst.copy_from(src); }};
      for (size_t v = 0; v < versions.size(); ++v) fns.push_back([&, v] { bufs[v]->forward(versions[v].first); });
      for (size_t v = 0; v < versions.size(); ++v) fns.push_back([&, v] { bufs[v]->backward(versions[v].first); });
      for (size_t v = 0; v < versions.size(); ++v)
        fns.push_back([&, v] { bufs[v]->forward(versions[v].first), bufs[v]->backward(versions[v].first); });
      fns.push_back([&] { ref.forward(BatchNormAlgo::Auto), ref.backward(BatchNormAlgo::Auto); });  // after planes'
      const std::vector<double> t = bench::time_interleaved(repeats, fns);
      const double copy_gbs = 2 * S / (t[0] * 1e9);
      const size_t V = versions.size();
      record(s, "copy", "memcpy", 1e3 * t[0], 2 * S, copy_gbs);
      for (size_t v = 0; v < V; ++v) {
        record(s, "forward", versions[v].second, 1e3 * t[1 + v], 2 * S, copy_gbs);
        record(s, "backward", versions[v].second, 1e3 * t[1 + V + v], 3 * S, copy_gbs);
        record(s, "fwd+bwd", versions[v].second, 1e3 * t[1 + 2 * V + v], 5 * S, copy_gbs);
      }
      const double ref_s = bench::time_median(std::min(repeats, 3), [&] {
        ref.forward(BatchNormAlgo::Reference);
        ref.backward(BatchNormAlgo::Reference);
      });
      record(s, "fwd+bwd", "reference", 1e3 * ref_s, 5 * S, copy_gbs);
      record(s, "fwd+bwd", "auto", 1e3 * t[1 + 3 * V], 5 * S, copy_gbs);
      // The target: forward + backward (Auto) within 2x of streaming its 5 S bytes at the copy's rate.
      const double ours = t[1 + 3 * V];
      summary.push_back({{"shape", {s.N, s.C, s.H, s.W}}, {"fwd_bwd_ms", 1e3 * ours},
                         {"copy_equivalent_ms", 1e3 * t[0] * 2.5}, {"over_copy", ours / (t[0] * 2.5)}});
    }
    json pt = no_pytorch ? json(nullptr) : run_pytorch(shapes, repeats, threads);
    out["pytorch"] = pt;
    std::printf("\n%-16s %10s %10s %10s %9s %10s %9s\n", "shape", "auto f+b", "copy-eq", "ours/copy", "torch f+b",
                "torch/ours", "torch fwd");
    for (size_t i = 0; i < shapes.size(); ++i) {
      json& m = summary[i];
      if (pt.is_object() && i < pt["results"].size()) {
        const json& p = pt["results"][i];
        m["pytorch_fwd_bwd_ms"] = p["fwd_bwd_ms"];
        m["pytorch_forward_ms"] = p["forward_ms"];
        m["pytorch_copy_ms"] = p["copy_ms"];
        m["pytorch_over_ours"] = p["fwd_bwd_ms"].get<double>() / m["fwd_bwd_ms"].get<double>();
      }
      std::printf("%-16s %10.3f %10.3f %10.2f", shapes[i].str().c_str(), m["fwd_bwd_ms"].get<double>(),
                  m["copy_equivalent_ms"].get<double>(), m["over_copy"].get<double>());
      if (m.contains("pytorch_fwd_bwd_ms"))
        std::printf(" %9.3f %10.2f %9.3f", m["pytorch_fwd_bwd_ms"].get<double>(), m["pytorch_over_ours"].get<double>(),
                    m["pytorch_forward_ms"].get<double>());
      std::printf("\n");
    }
    out["summary"] = summary;
  } else {
#ifdef FN_WITH_CUDA
    const double peak = bench::device_copy_gbytes_per_s(repeats);
    out["copy_bandwidth_gbytes_per_s"] = peak;
    std::printf("batchnorm2d on %s; device copy bandwidth %.0f GB/s\n", device_description(Device::CUDA).c_str(), peak);
    json summary = json::array();
    for (const Shape4& s : shapes) {
      Bufs cpu(s, Device::CPU, 7);
      cpu.forward(BatchNormAlgo::Reference);
      cpu.backward(BatchNormAlgo::Reference);
      Bufs g(s, Device::CUDA, 7);
      const double S = double(g.x.nbytes());
      json row = {{"shape", {s.N, s.C, s.H, s.W}}};
      for (auto [a, name] : {std::pair{BatchNormAlgo::TwoPass, "v1_two_pass"}, std::pair{BatchNormAlgo::OnePass, "v2_one_pass"},
                             std::pair{BatchNormAlgo::Split, "v3_split"}, std::pair{BatchNormAlgo::Cudnn, "cudnn"}}) {
        g.y.fill_(NAN), g.gx.fill_(NAN), g.gw.fill_(NAN), g.gb.fill_(NAN);  // each version writes them all
        g.rm.fill_(0.0), g.rv.fill_(1.0);
        g.forward(a);
        g.backward(a);
        const double err = worst_error(g, cpu);
        if (!(err < 1e-3)) {
          std::fprintf(stderr, "validation failed at %s: %s vs the CPU, worst relative error %g\n", s.str().c_str(),
                       name, err);
          return 1;
        }
        auto ms = [&](const std::function<void()>& f) { return bench::median(bench::time_cuda_ms(3, repeats, f)); };
        record(s, "forward", name, ms([&] { g.forward(a); }), 2 * S, peak);
        record(s, "backward", name, ms([&] { g.backward(a); }), 3 * S, peak);
        row[name] = record(s, "fwd+bwd", name, ms([&] { g.forward(a), g.backward(a); }), 5 * S, peak)["ms"];
      }
      row["auto_over_cudnn"] = row["v3_split"].get<double>() / row["cudnn"].get<double>();
      summary.push_back(row);
    }
    out["summary"] = summary;
#endif
  }
  out["status"] = "ok";
  return bench::write_json(opt.json_path, out, false) ? 0 : 1;
}
