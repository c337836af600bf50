// The backbones' pools: global average pooling at ResNet-50's and EfficientNet-Lite0's last maps (and one
// large map), and max pooling 3x3 stride 2 pad 1 at ResNet-50's stem. Forward, backward, every version.
// Validates first (the CPU's fast path against the reference; each CUDA version against the CPU), then times.
// CPU versions: default (the fast path, threaded where the launcher decides), default_1t (the same on one
// thread: whether the launcher's threading decision pays at that size), reference.
// The figure is GB/s of compulsory traffic against a copy measured in the same run (CPU: a copy of x in the
// same interleaved rounds; GPU: cudaMemcpy device to device). Traffic, S = x's bytes: global average pool
// forward reads S, backward writes S; max pool forward reads S and writes S/4, backward reads x, y, gy and
// writes gx (2.5 S). Baseline in the same run: PyTorch's CPU ops (bench/pytorch/pool.py: adaptive_avg_pool2d
// and max_pool2d, same shapes, same thread count); on CUDA the max pool is cuDNN's.
//   bench_pool [--device cpu|cuda] [--quick] [--repeats R] [--json FILE] [--no-pytorch]
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/device.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/gemm.h"
#include "kernels/global_avg_pool2d.h"
#include "kernels/maxpool2d.h"

#include "bench/bench_util.h"

using namespace fn;
using json = nlohmann::json;
using kernels::GlobalAvgPoolBackward;
using kernels::GlobalAvgPoolForward;

namespace {

struct Shape4 {
  int64_t N, C, H, W;
  std::string str() const { return cat(N, "x", C, "x", H, "x", W); }
  Shape shape() const { return {N, C, H, W}; }
};

// Worst |a - b| / (1e-4 + |b|).
double worst_error(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.cpu().to_vector_f64(), y = b.cpu().to_vector_f64();
  double worst = x.size() == y.size() ? 0 : INFINITY;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    const double e = std::fabs(x[i] - y[i]) / (1e-4 + std::fabs(y[i]));
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

// PyTorch's figures per shape for `op` (null where unavailable).
json run_pytorch(const std::string& op, const std::vector<Shape4>& shapes, int repeats, int threads) {
  std::string args = cat("--op ", op, " --repeats ", repeats, " --threads ", threads, " --shapes");
  for (const Shape4& s : shapes) args += cat(" ", s.N, ",", s.C, ",", s.H, ",", s.W);
  return bench::run_python_json("bench/pytorch/pool.py", args);
}

// One problem's tensors on one device.
struct Bufs {
  Tensor x, y, gy, gx;
  Bufs(const Shape4& s, bool gap, Device d, uint64_t seed) {
    Rng rng(seed);
    x = Tensor::randn(s.shape(), rng).to(d);
    const Shape ys = gap ? Shape{s.N, s.C} : Shape{s.N, s.C, (s.H - 1) / 2 + 1, (s.W - 1) / 2 + 1};
    y = Tensor::empty(ys, DType::F32, d);
    gy = Tensor::randn(ys, rng).to(d);
    gx = Tensor::empty(s.shape(), DType::F32, d);
  }
};

}  // namespace

int main(int argc, char** argv) {
  kernels::configure_blas(argv);
  CLI::App app{"Pooling benchmark: global average pooling and max pooling 3x3/2/1 (forward, backward)"};
  bench::Options opt;
  bool no_pytorch = false;
  bench::add_options(app, opt, "timed rounds (default 10, quick 3)");
  app.add_flag("--no-pytorch", no_pytorch, "skip PyTorch's side");
  CLI11_PARSE(app, argc, argv);
  const int repeats = opt.repeats_or(3, 10);

  json out;
  out["benchmark"] = "pool";
  out.update(bench::machine_json(opt.device));
  out["device"] = opt.device;
  out["load_average"] = bench::load_average();
  out["results"] = json::array();
  if (bench::skip_without_cuda("bench_pool", opt.device, out, opt.json_path)) return 0;

  // Global average pooling: ResNet-50 at 224 px (2048 x 7x7), Lite0 at 224 and 160 px (1280 x 7x7, 5x5) at
  // batches 32 and 16, and a 56x56 map (v3's territory on the GPU). Max pooling: ResNet-50's stem output
  // (64 x 112x112) and the same at 160 px.
  const std::vector<Shape4> gap_shapes =
      opt.quick ? std::vector<Shape4>{{4, 256, 7, 7}, {2, 16, 56, 56}}
                : std::vector<Shape4>{{32, 2048, 7, 7}, {32, 1280, 7, 7}, {16, 1280, 7, 7},
                                      {32, 1280, 5, 5}, {16, 1280, 5, 5}, {16, 64, 56, 56}};
  const std::vector<Shape4> max_shapes =
      opt.quick ? std::vector<Shape4>{{2, 16, 56, 56}} : std::vector<Shape4>{{32, 64, 112, 112}, {16, 64, 80, 80}};
  const int threads = std::max(1, kernels::blas_threads());
  out["threads"] = threads;

  auto record = [&](const std::string& op, const Shape4& s, const std::string& pass, const std::string& version,
                    double ms, double bytes, double copy_gbs) {
    const double gbs = bytes / (ms * 1e6);
    json r = {{"op", op},       {"shape", {s.N, s.C, s.H, s.W}}, {"pass", pass},       {"version", version},
              {"ms", ms},       {"bytes", bytes},                 {"gbytes_per_s", gbs}};
    if (copy_gbs > 0) r["fraction_of_copy_bandwidth"] = gbs / copy_gbs;
    out["results"].push_back(r);
    std::printf("%-8s %-16s %-8s %-10s %9.3f ms %7.2f GB/s", op.c_str(), s.str().c_str(), pass.c_str(),
                version.c_str(), ms, gbs);
    if (copy_gbs > 0) std::printf("  %4.0f%% of copy", 100 * gbs / copy_gbs);
    std::printf("\n");
    return r;
  };
  auto gap_fwd = [](Bufs& b, GlobalAvgPoolForward v) { kernels::global_avg_pool2d_forward(b.x, b.y, v); };
  auto gap_bwd = [](Bufs& b, GlobalAvgPoolBackward v) { kernels::global_avg_pool2d_backward(b.gy, b.gx, v); };
  using kernels::MaxPoolCpu;
  auto max_fwd = [](Bufs& b, MaxPoolCpu v = MaxPoolCpu::Default) { kernels::max_pool2d_forward(b.x, b.y, 3, 2, 1, v); };
  auto max_bwd = [](Bufs& b, MaxPoolCpu v = MaxPoolCpu::Default) {
    kernels::max_pool2d_backward(b.x, b.y, b.gy, b.gx, 3, 2, 1, v);
  };

  if (opt.device == "cpu") {
    std::printf("pooling on %s, %d threads, load %.2f\n", bench::cpu_model().c_str(), threads, bench::load_average());
    json summary = json::array();
    for (const std::string op : {"gap", "maxpool"}) {
      const bool gap = op == "gap";
      const std::vector<Shape4>& shapes = gap ? gap_shapes : max_shapes;
      json pt = no_pytorch ? json(nullptr) : run_pytorch(op, shapes, repeats, threads);
      out["pytorch_" + op] = pt;
      for (size_t i = 0; i < shapes.size(); ++i) {
        const Shape4& s = shapes[i];
        Bufs ref(s, gap, Device::CPU, 7), fast(s, gap, Device::CPU, 7);
        double err;
        if (gap) {
          gap_fwd(ref, GlobalAvgPoolForward::V1Reference), gap_bwd(ref, GlobalAvgPoolBackward::V1Reference);
          gap_fwd(fast, GlobalAvgPoolForward::Default), gap_bwd(fast, GlobalAvgPoolBackward::Default);
          err = std::max(worst_error(fast.y, ref.y), worst_error(fast.gx, ref.gx));
        } else {  // the fast path gives the reference's bits
          max_fwd(ref, MaxPoolCpu::V1Reference), max_bwd(ref, MaxPoolCpu::V1Reference);
          max_fwd(fast), max_bwd(fast);
          err = std::max(worst_error(fast.y, ref.y), worst_error(fast.gx, ref.gx)) == 0 ? 0 : INFINITY;
        }
        if (!(err < 1e-5)) {
          std::fprintf(stderr, "validation failed at %s: %s fast vs reference, worst relative error %g\n",
                       s.str().c_str(), op.c_str(), err);
          return 1;
        }
        Rng rng(3);
        Tensor src = Tensor::randn(fast.x.shape(), rng), dst = Tensor::empty_like(src);
        const double S = double(fast.x.nbytes());
        std::vector<std::function<void()>> fns = {[&] { dst.copy_from(src); }};
        // Order in each round: the copy, the reference, the default on one thread (blas_threads() is the
        // kernels' thread count: whether the launcher's threading decision pays at this size), the default.
        // The copy leaves S dirty bytes in the cache and the pass right after it pays their write-back (up
        // to 1.5x at the small maps), so the reference takes that slot; the default then follows other
        // passes over the same x, as PyTorch's forward + backward follows its forward.
        auto one_thread = [threads](const std::function<void()>& f) {
          return [threads, f] {
            kernels::set_blas_threads(1);
            f();
            kernels::set_blas_threads(threads);
          };
        };
        std::function<void()> fwd_ref, bwd_ref, fwd, bwd;
        if (gap) {
          fwd_ref = [&] { gap_fwd(ref, GlobalAvgPoolForward::V1Reference); };
          bwd_ref = [&] { gap_bwd(ref, GlobalAvgPoolBackward::V1Reference); };
          fwd = [&] { gap_fwd(fast, GlobalAvgPoolForward::Default); };
          bwd = [&] { gap_bwd(fast, GlobalAvgPoolBackward::Default); };
        } else {
          fwd_ref = [&] { max_fwd(ref, MaxPoolCpu::V1Reference); };
          bwd_ref = [&] { max_bwd(ref, MaxPoolCpu::V1Reference); };
          fwd = [&] { max_fwd(fast); };
          bwd = [&] { max_bwd(fast); };
        }
        fns.insert(fns.end(), {fwd_ref, bwd_ref, one_thread(fwd), one_thread(bwd), fwd, bwd});
        const std::vector<double> t = bench::time_interleaved(repeats, fns);
        const double copy_gbs = 2 * S / (t[0] * 1e9);
        const double fwd_bytes = gap ? S : 1.25 * S, bwd_bytes = gap ? S : 2.5 * S;
        record(op, s, "copy", "memcpy", 1e3 * t[0], 2 * S, copy_gbs);
        record(op, s, "forward", "default", 1e3 * t[5], fwd_bytes, copy_gbs);
        record(op, s, "backward", "default", 1e3 * t[6], bwd_bytes, copy_gbs);
        record(op, s, "forward", "default_1t", 1e3 * t[3], fwd_bytes, copy_gbs);
        record(op, s, "backward", "default_1t", 1e3 * t[4], bwd_bytes, copy_gbs);
        record(op, s, "forward", "reference", 1e3 * t[1], fwd_bytes, copy_gbs);
        record(op, s, "backward", "reference", 1e3 * t[2], bwd_bytes, copy_gbs);
        json m = {{"op", op}, {"shape", {s.N, s.C, s.H, s.W}}, {"fwd_bwd_ms", 1e3 * (t[5] + t[6])},
                  {"copy_ms", 1e3 * t[0]}};
        if (pt.is_object() && i < pt["results"].size()) {
          const json& p = pt["results"][i];
          m["pytorch_fwd_bwd_ms"] = p["fwd_bwd_ms"];
          m["pytorch_forward_ms"] = p["forward_ms"];
          m["pytorch_over_ours"] = p["fwd_bwd_ms"].get<double>() / m["fwd_bwd_ms"].get<double>();
          std::printf("%-8s %-16s fwd+bwd ours %.3f ms, pytorch %.3f ms (forward %.3f ms): pytorch / ours = %.2f\n",
                      op.c_str(), s.str().c_str(), m["fwd_bwd_ms"].get<double>(), p["fwd_bwd_ms"].get<double>(),
                      p["forward_ms"].get<double>(), m["pytorch_over_ours"].get<double>());
        }
        summary.push_back(m);
      }
    }
    out["summary"] = summary;
  } else {
#ifdef FN_WITH_CUDA
    const double peak = bench::device_copy_gbytes_per_s(repeats);
    out["copy_bandwidth_gbytes_per_s"] = peak;
    std::printf("pooling on %s; device copy bandwidth %.0f GB/s\n", device_description(Device::CUDA).c_str(), peak);
    auto ms = [&](const std::function<void()>& f) { return bench::median(bench::time_cuda_ms(3, repeats, f)); };
    for (const Shape4& s : gap_shapes) {
      Bufs cpu(s, true, Device::CPU, 7);
      gap_fwd(cpu, GlobalAvgPoolForward::Default), gap_bwd(cpu, GlobalAvgPoolBackward::Default);
      Bufs g(s, true, Device::CUDA, 7);
      const double S = double(g.x.nbytes());
      for (auto [v, name] : {std::pair{GlobalAvgPoolForward::V1Thread, "v1_thread"},
                             std::pair{GlobalAvgPoolForward::V2Warp, "v2_warp"},
                             std::pair{GlobalAvgPoolForward::V3Block, "v3_block"},
                             std::pair{GlobalAvgPoolForward::Default, "default"}}) {
        g.y.fill_(NAN);
        gap_fwd(g, v);
        const double err = worst_error(g.y, cpu.y);
        if (!(err < 1e-4)) {
          std::fprintf(stderr, "validation failed at %s: %s vs the CPU, worst relative error %g\n", s.str().c_str(),
                       name, err);
          return 1;
        }
        record("gap", s, "forward", name, ms([&] { gap_fwd(g, v); }), S, peak);
      }
      g.gx.fill_(NAN);
      gap_bwd(g, GlobalAvgPoolBackward::Default);
      if (!(worst_error(g.gx, cpu.gx) == 0)) {
        std::fprintf(stderr, "validation failed at %s: the backward differs from the CPU's\n", s.str().c_str());
        return 1;
      }
      record("gap", s, "backward", "default", ms([&] { gap_bwd(g, GlobalAvgPoolBackward::Default); }), S, peak);
    }
    for (const Shape4& s : max_shapes) {
      Bufs cpu(s, false, Device::CPU, 7);  // randn input: ties are negligible, so cuDNN must match exactly
      max_fwd(cpu), max_bwd(cpu);
      Bufs g(s, false, Device::CUDA, 7);
      g.y.fill_(NAN), g.gx.fill_(NAN);
      max_fwd(g), max_bwd(g);
      if (!(worst_error(g.y, cpu.y) == 0 && worst_error(g.gx, cpu.gx) < 1e-4)) {
        std::fprintf(stderr, "validation failed at %s: cuDNN's max pool vs the CPU\n", s.str().c_str());
        return 1;
      }
      const double S = double(g.x.nbytes());
      record("maxpool", s, "forward", "cudnn", ms([&] { max_fwd(g); }), 1.25 * S, peak);
      record("maxpool", s, "backward", "cudnn", ms([&] { max_bwd(g); }), 2.5 * S, peak);
    }
#endif
  }
  out["status"] = "ok";
  return bench::write_json(opt.json_path, out, false) ? 0 : 1;
}
