// Depthwise convolution benchmark at EfficientNet-Lite0 / MobileNet shapes: batch 32 at 224 px and batch 16 at
// 160 px, forward and backward (data + filter gradients), every version. Validates first (both fast CPU paths
// against the reference; on CUDA every version against the CPU), then times; the "auto" column is the CPU
// path Auto picks (depthwise_cpu_auto).
//
// The figure that matters is the time against the compulsory traffic: forward reads x and writes y; the data
// gradient reads gy and writes gx; the filter gradient reads x and gy (the filters are negligible), so
// forward + backward moves 3 |x| + 3 |y| bytes. A memory copy measured in the same run gives the time
// those bytes take to stream (copy_ms_equiv); the target is f+b within 2x of it, and at least as fast
// as PyTorch 1.13's CPU op (torch.nn.functional.conv2d, groups = C, the same thread count), which
// bench/pytorch/depthwise_conv2d.py times right after ours, shape by shape, on the same machine. PyTorch's
// script times its f+b as one call repeated back to back; ours is timed twice: interleaved with the other
// versions and the copy (f and b each after another op), and, as PyTorch is, Auto's f then b repeated back to
// back. The ratio to PyTorch is given for both. On CUDA the
// baseline is cuDNN's grouped convolution (DepthwiseAlgo::Cudnn) and the copy is cudaMemcpy device to device.
//   bench_depthwise_conv2d [--device cpu|cuda] [--quick] [--repeats R] [--json FILE] [--no-pytorch] [--threads T]
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_util.h"
#include "core/device.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/depthwise_conv2d.h"
#include "kernels/gemm.h"

using namespace fn;
using json = nlohmann::json;
using kernels::DepthwiseAlgo;

namespace {

struct Dw {
  int64_t N, C, H, k, s;
  std::string net;  // which layer it stands for
};

// The Lite0 / MobileNetV2 depthwise layers at 224 px (map sizes 112, 56, 28, 14, 7), batch 32; the same at
// 160 px (80, 40, 20, 10, 5), batch 16.
std::vector<Dw> shapes(bool quick) {
  if (quick) return {{2, 16, 28, 3, 1, "quick"}, {2, 24, 28, 5, 2, "quick"}};
  const std::vector<std::array<int64_t, 4>> at224 = {{32, 112, 3, 1},  {96, 112, 3, 2}, {144, 56, 3, 1},
                                                     {144, 56, 5, 2},  {240, 28, 5, 1}, {240, 28, 3, 2},
                                                     {480, 14, 3, 1},  {480, 14, 5, 1}, {672, 14, 5, 2},
                                                     {1152, 7, 5, 1},  {1152, 7, 3, 1}};
  std::vector<Dw> v;
  for (auto [c, h, k, s] : at224) v.push_back({32, c, h, k, s, "224px"});
  for (auto [c, h, k, s] : at224) v.push_back({16, c, h * 160 / 224, k, s, "160px"});
  return v;
}

// PyTorch's figures for the shapes (null where unavailable).
json run_pytorch(const std::vector<Dw>& v, int threads, int repeats) {
  json sh = json::array();
  for (const Dw& d : v) sh.push_back({d.N, d.C, d.H, d.H, d.k, d.s});
  return bench::run_python_json("bench/pytorch/depthwise_conv2d.py",
                                cat("--shapes '", sh.dump(), "' --threads ", threads, " --repeats ", repeats));
}

// Worst |a - b|; a NaN (an output left poisoned, so never written) or a size mismatch is infinitely wrong.
double max_diff(const Tensor& a, const Tensor& b) {
  auto x = a.to_vector(), y = b.to_vector();
  double m = x.size() == y.size() ? 0 : INFINITY;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    const double d = std::fabs(double(x[i]) - double(y[i]));
    m = std::isnan(d) ? INFINITY : std::max(m, d);
  }
  return m;
}

struct Problem {
  Tensor x, w, y, gy, gx, gw;
  int pad;
};
Problem make(const Dw& d, Device dev) {
  Rng rng(7);
  Problem p;
  const int64_t P = (d.H + 2 * (d.k / 2) - d.k) / d.s + 1;
  p.x = Tensor::randn({d.N, d.C, d.H, d.H}, rng).to(dev);
  p.w = Tensor::randn({d.C, 1, d.k, d.k}, rng, 0.3).to(dev);
  p.gy = Tensor::randn({d.N, d.C, P, P}, rng).to(dev);
  p.y = Tensor::empty(p.gy.shape(), DType::F32, dev);
  p.gx = Tensor::empty(p.x.shape(), DType::F32, dev);
  p.gw = Tensor::empty(p.w.shape(), DType::F32, dev);
  p.pad = int(d.k / 2);
  return p;
}
void fwd(Problem& p, const Dw& d, DepthwiseAlgo a) {
  kernels::depthwise_conv2d_forward(p.x, p.w, Tensor(), p.y, int(d.s), p.pad, false, a);
}
// Both gradients as F::conv2d asks for them: one call (one pass over gy on the channel path).
void bwd(Problem& p, const Dw& d, DepthwiseAlgo a) {
  kernels::depthwise_conv2d_backward(p.x, p.gy, p.w, &p.gx, &p.gw, int(d.s), p.pad, a);
}
// The same as two calls (two passes over gy): the column "chan_b2", against which the one pass is measured.
void bwd_two_calls(Problem& p, const Dw& d, DepthwiseAlgo a) {
  kernels::depthwise_conv2d_backward_data(p.gy, p.w, p.gx, int(d.s), p.pad, a);
  kernels::depthwise_conv2d_backward_filter(p.x, p.gy, p.gw, int(d.s), p.pad, a);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Depthwise convolution benchmark (forward and backward, every version)"};
  bench::Options opt;
  bench::add_options(app, opt, "timed repeats (default 10, quick 2)");
  bool no_pytorch = false;
  int threads_opt = 0;
  app.add_flag("--no-pytorch", no_pytorch, "skip the PyTorch side");
  app.add_option("--threads", threads_opt, "CPU threads for ours and PyTorch's (default: the engine's)");
  CLI11_PARSE(app, argc, argv);
  const int repeats = opt.repeats_or(2, 10);

  json out;
  out["benchmark"] = "depthwise_conv2d";
  out.update(bench::machine_json(opt.device));
  out["device"] = opt.device;
  out["results"] = json::array();
  if (bench::skip_without_cuda("bench_depthwise_conv2d", opt.device, out, opt.json_path)) return 0;
  const std::vector<Dw> v = shapes(opt.quick);
  if (threads_opt > 0) kernels::set_blas_threads(threads_opt);
  const int threads = kernels::blas_threads();
  out["threads"] = threads;

  if (opt.device == "cpu") {
    std::printf("depthwise_conv2d on %s, %d threads; ms (median of %d); GB/s of compulsory traffic\n",
                bench::cpu_model().c_str(), threads, repeats);
    std::printf("%-6s %5s %4s %2s %2s | %7s %7s | %7s %7s | %7s %7s %7s | %-8s %7s %6s %6s | %6s\n", "net", "C", "HW",
                "k", "s", "ref_f", "ref_b", "plan_f", "plan_b", "chan_f", "chan_b", "chan_b2", "auto", "auto_fb", "GB/s",
                "xcopy", "copyGB");
    double ours_total = 0, ours_b2b_total = 0, torch_total = 0;
    for (const Dw& d : v) {
      Problem p = make(d, Device::CPU);
      // Validate: the fast paths against the reference.
      Tensor y_ref = Tensor::empty_like(p.y), gx_ref = Tensor::empty_like(p.gx), gw_ref = Tensor::empty_like(p.gw);
      fwd(p, d, DepthwiseAlgo::Reference);
      bwd(p, d, DepthwiseAlgo::Reference);
      y_ref.copy_from(p.y), gx_ref.copy_from(p.gx), gw_ref.copy_from(p.gw);
      for (DepthwiseAlgo a : {DepthwiseAlgo::CpuPlanes, DepthwiseAlgo::CpuChannels}) {
        p.y.fill_(NAN), p.gx.fill_(NAN), p.gw.fill_(NAN);
        fwd(p, d, a);
        bwd(p, d, a);
        const double ey = max_diff(p.y, y_ref), egx = max_diff(p.gx, gx_ref), egw = max_diff(p.gw, gw_ref);
        if (!(ey <= 1e-4 && egx <= 1e-4 && egw <= 1e-3 * std::sqrt(double(d.N * p.y.size(2) * p.y.size(3))))) {
          std::fprintf(stderr, "validation failed: %s at C=%lld H=%lld k=%lld s=%lld: y %g gx %g gw %g\n",
                       kernels::depthwise_algo_name(a), (long long)d.C, (long long)d.H, (long long)d.k, (long long)d.s,
                       ey, egx, egw);
          return 1;
        }
      }
      const double xb = double(p.x.nbytes()), yb = double(p.y.nbytes());
      const double fwd_bytes = xb + yb, bwd_bytes = 2 * xb + 2 * yb, fb_bytes = fwd_bytes + bwd_bytes;
      // The copy: |x| bytes read and written, interleaved with the fast path so both see the same load.
      Rng crng(1);
      Tensor src = Tensor::randn(p.x.shape(), crng), dst = Tensor::empty_like(src);
      auto t = bench::time_interleaved(repeats, {[&] { fwd(p, d, DepthwiseAlgo::CpuPlanes); },
                                                 [&] { bwd(p, d, DepthwiseAlgo::CpuPlanes); },
                                                 [&] { fwd(p, d, DepthwiseAlgo::CpuChannels); },
                                                 [&] { bwd(p, d, DepthwiseAlgo::CpuChannels); },
                                                 [&] { dst.copy_from(src); },
                                                 [&] { bwd_two_calls(p, d, DepthwiseAlgo::CpuChannels); }});
      auto tr = bench::time_interleaved(opt.quick ? 1 : 2, {[&] { fwd(p, d, DepthwiseAlgo::Reference); },
                                                            [&] { bwd(p, d, DepthwiseAlgo::Reference); }});
      // Auto's figures are those of the variant it picks for the shape.
      const DepthwiseAlgo pick =
          kernels::depthwise_cpu_auto(kernels::depthwise_geom(p.x.shape(), p.w.shape(), int(d.s), p.pad));
      const int o = pick == DepthwiseAlgo::CpuChannels ? 2 : 0;
      const double f_ms = 1e3 * t[size_t(o)], b_ms = 1e3 * t[size_t(o) + 1], fb_ms = f_ms + b_ms;
      const double copy_gbs = 2 * xb / (t[4] * 1e9), copy_equiv_ms = fb_bytes / (copy_gbs * 1e6);
      std::printf("%-6s %5lld %4lld %2lld %2lld | %7.2f %7.2f | %7.2f %7.2f | %7.2f %7.2f %7.2f | %-8s %7.2f %6.1f "
                  "%6.2f | %6.1f\n",
                  d.net.c_str(), (long long)d.C, (long long)d.H, (long long)d.k, (long long)d.s, 1e3 * tr[0],
                  1e3 * tr[1], 1e3 * t[0], 1e3 * t[1], 1e3 * t[2], 1e3 * t[3], 1e3 * t[5], o ? "channels" : "planes",
                  fb_ms, fb_bytes / (fb_ms * 1e6), fb_ms / copy_equiv_ms, copy_gbs);
      std::fflush(stdout);
      out["results"].push_back({{"net", d.net},
                                {"N", d.N},
                                {"C", d.C},
                                {"H", d.H},
                                {"k", d.k},
                                {"stride", d.s},
                                {"reference_forward_ms", 1e3 * tr[0]},
                                {"reference_backward_ms", 1e3 * tr[1]},
                                {"planes_forward_ms", 1e3 * t[0]},
                                {"planes_backward_ms", 1e3 * t[1]},
                                {"channels_forward_ms", 1e3 * t[2]},
                                {"channels_backward_ms", 1e3 * t[3]},
                                {"channels_backward_two_calls_ms", 1e3 * t[5]},
                                {"auto", kernels::depthwise_algo_name(pick)},
                                {"forward_ms", f_ms},
                                {"backward_ms", b_ms},
                                {"fwd_bwd_ms", fb_ms},
                                {"forward_gbytes_per_s", fwd_bytes / (f_ms * 1e6)},
                                {"backward_gbytes_per_s", bwd_bytes / (b_ms * 1e6)},
                                {"fwd_bwd_bytes", fb_bytes},
                                {"copy_gbytes_per_s", copy_gbs},
                                {"fwd_bwd_over_copy", fb_ms / copy_equiv_ms}});
      // Auto's f then b as one call, back to back: the protocol of the PyTorch script.
      const double fb_b2b_ms = 1e3 * bench::time_median(repeats, [&] {
                                 fwd(p, d, pick);
                                 bwd(p, d, pick);
                               });
      out["results"].back()["fwd_bwd_back_to_back_ms"] = fb_b2b_ms;
      ours_total += fb_ms;
      ours_b2b_total += fb_b2b_ms;
      // PyTorch on the same shape, right after ours (a process per shape: the two measurements stay minutes
      // closer together than a run of all shapes after all of ours, on a machine whose load drifts).
      if (!no_pytorch) {
        json pt = run_pytorch({d}, threads, repeats);
        if (!pt.is_null()) {
          const double tf = pt["results"][0]["forward_ms"], tfb = pt["results"][0]["fwd_bwd_ms"];
          json& r = out["results"].back();
          r["torch_forward_ms"] = tf;
          r["torch_fwd_bwd_ms"] = tfb;
          r["torch_version"] = pt["torch"];
          torch_total += tfb;
          std::printf("       PyTorch %s: forward %.2f ms, f+b %.2f ms; ours f+b is %.2fx as fast (interleaved), "
                      "%.2fx back to back (%.2f ms)\n",
                      pt["torch"].get<std::string>().c_str(), tf, tfb, tfb / fb_ms, tfb / fb_b2b_ms, fb_b2b_ms);
          std::fflush(stdout);
        }
      }
    }
    out["fwd_bwd_total_ms"] = ours_total;
    out["fwd_bwd_back_to_back_total_ms"] = ours_b2b_total;
    if (!no_pytorch) out["torch_fwd_bwd_total_ms"] = torch_total;
    std::printf("total f+b over the shapes: ours %.1f ms interleaved, %.1f ms back to back", ours_total, ours_b2b_total);
    if (!no_pytorch) std::printf(", PyTorch %.1f ms", torch_total);
    std::printf("\n");
  } else {
#ifdef FN_WITH_CUDA
    auto time_cuda = [&](const std::function<void()>& f) {
      return bench::median(bench::time_cuda_ms(2, repeats, f));
    };
    const double copy_gbs = bench::device_copy_gbytes_per_s(repeats);
    out["copy_gbytes_per_s"] = copy_gbs;
    std::printf("depthwise_conv2d on %s; device copy %.0f GB/s\n", device_description(Device::CUDA).c_str(), copy_gbs);
    std::printf("%-6s %5s %4s %2s %2s | %-9s %8s %7s %5s | %8s %7s %5s\n", "net", "C", "HW", "k", "s", "version",
                "fwd_ms", "GB/s", "%copy", "bwd_ms", "GB/s", "%copy");
    for (const Dw& d : v) {
      Problem c = make(d, Device::CPU);
      fwd(c, d, DepthwiseAlgo::Auto);
      bwd(c, d, DepthwiseAlgo::Auto);
      Problem g = make(d, Device::CUDA);
      const double xb = double(g.x.nbytes()), yb = double(g.y.nbytes());
      for (auto [a, name] : {std::pair{DepthwiseAlgo::V1Naive, "v1_naive"},
                             std::pair{DepthwiseAlgo::V2Tiled, "v2_tiled"}, std::pair{DepthwiseAlgo::Cudnn, "cudnn"}}) {
        g.y.fill_(NAN), g.gx.fill_(NAN), g.gw.fill_(NAN);
        fwd(g, d, a);
        bwd(g, d, a);
        const double ey = max_diff(g.y, c.y), egx = max_diff(g.gx, c.gx), egw = max_diff(g.gw, c.gw);
        if (!(ey <= 1e-3 && egx <= 1e-3 && egw <= 1e-2 * std::sqrt(double(d.N * g.y.size(2) * g.y.size(3))))) {
          std::fprintf(stderr, "validation failed: %s differs from the CPU: y %g gx %g gw %g\n", name, ey, egx, egw);
          return 1;
        }
        const double f_ms = time_cuda([&] { fwd(g, d, a); }), b_ms = time_cuda([&] { bwd(g, d, a); });
        const double fg = (xb + yb) / (f_ms * 1e6), bg = 2 * (xb + yb) / (b_ms * 1e6);
        std::printf("%-6s %5lld %4lld %2lld %2lld | %-9s %8.3f %7.0f %4.0f%% | %8.3f %7.0f %4.0f%%\n", d.net.c_str(),
                    (long long)d.C, (long long)d.H, (long long)d.k, (long long)d.s, name, f_ms, fg, 100 * fg / copy_gbs,
                    b_ms, bg, 100 * bg / copy_gbs);
        out["results"].push_back({{"net", d.net}, {"N", d.N}, {"C", d.C}, {"H", d.H}, {"k", d.k}, {"stride", d.s},
                                  {"version", name}, {"forward_ms", f_ms}, {"backward_ms", b_ms},
                                  {"forward_fraction_of_copy", fg / copy_gbs},
                                  {"backward_fraction_of_copy", bg / copy_gbs}});
      }
    }
#endif
  }
  out["status"] = "ok";
  return bench::write_json(opt.json_path, out, false) ? 0 : 1;
}
