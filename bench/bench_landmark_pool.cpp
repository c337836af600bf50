// Landmark pooling benchmark at FashionNet's training shape: batch 32, conv4_3 features 512 x 28 x 28,
// 8 slots, r = 1. Every version, forward and backward. Validates first (CUDA against the CPU; the CPU's
// fast backward against its gather), then times: warm-up, median of repeats. The figure that matters is
// GB/s of compulsory traffic (the windows read, outputs and argmax written; for the backward the output
// gradient and argmax read and the full feature gradient written; for the sparse accumulation the
// output gradient and argmax read and one cell read and written per pooled output); on a GPU it is set
// against the device's copy bandwidth measured in the same run (cudaMemcpy device to device).
//   bench_landmark_pool [--device cpu|cuda] [--quick] [--repeats R] [--json FILE]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "core/device.h"
#include "core/philox.h"
#include "core/tensor.h"
#include "kernels/landmark_pool.h"

#include "bench/bench_util.h"
#ifdef FN_WITH_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

using namespace fn;
using json = nlohmann::json;
using kernels::LandmarkPoolBackward;
using kernels::LandmarkPoolForward;

namespace {

// Median milliseconds of fn() over `repeats` runs after `warmup` runs (host clock; the caller synchronises).
double time_cpu(const std::function<void()>& fn, int warmup, int repeats) {
  return 1e3 * bench::median(bench::time_runs(warmup, repeats, fn));
}

#ifdef FN_WITH_CUDA
// Median milliseconds by CUDA events on the engine's stream.
double time_cuda(const std::function<void()>& fn, int warmup, int repeats) {
  return bench::median(bench::time_cuda_ms(warmup, repeats, fn));
}

#endif

struct Shape4 {
  int64_t N, C, H, W, L;
  int r;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Landmark pooling benchmark (forward and backward, every version)"};
  bench::Options opt;
  bench::add_options(app, opt, "timed repeats (default 20, quick 3)");
  CLI11_PARSE(app, argc, argv);
  const std::string device = opt.device, json_path = opt.json_path;
  const bool quick = opt.quick;
  const int repeats = opt.repeats_or(3, 20);
  const int warmup = quick ? 1 : 3;

  json out;
  out["benchmark"] = "landmark_pool";
  out.update(bench::machine_json(device));
  out["versions"] = {{"compiler", __VERSION__}, {"cuda_compiled", cuda_compiled()}};
  out["device"] = device;
  out["results"] = json::array();
  if (bench::skip_without_cuda("bench_landmark_pool", device, out, json_path)) return 0;

  Shape4 s = quick ? Shape4{4, 64, 28, 28, 8, 1} : Shape4{32, 512, 28, 28, 8, 1};
  out["shape"] = {{"N", s.N}, {"C", s.C}, {"H", s.H}, {"W", s.W}, {"slots", s.L}, {"radius", s.r}, {"stride", 8}};
  const double win = double((2 * s.r + 1) * (2 * s.r + 1));
  const double outs = double(s.N * s.L * s.C);
  const double fwd_bytes = outs * win * 4 + double(s.N * s.L * 3 * 4) + outs * 8;
  const double bwd_bytes = outs * 8 + double(s.N * s.C * s.H * s.W) * 4;
  // The dense gradient's later addition into conv4's gradient (read both, write one), which the sparse
  // accumulation replaces.
  const double add_bytes = 3.0 * double(s.N * s.C * s.H * s.W) * 4;

  // Inputs: random features, landmarks inside the image, a quarter invisible.
  Rng rng(2026);
  Tensor f = Tensor::randn({s.N, s.C, s.H, s.W}, rng);
  std::vector<float> lm, vis;
  for (int64_t i = 0; i < s.N * s.L; ++i) {
    lm.push_back(float(rng.uniform() * s.W * 8));
    lm.push_back(float(rng.uniform() * s.H * 8));
    vis.push_back(rng.uniform() < 0.75 ? 1.f : 0.f);
  }
  Tensor L = Tensor::from(lm, {s.N, s.L, 2}), V = Tensor::from(vis, {s.N, s.L});
  kernels::LandmarkPoolArgs args;
  args.radius = s.r;
  Tensor y = Tensor::empty({s.N, s.L * s.C});
  kernels::Int32Buffer arg(Device::CPU, y.numel());
  Tensor gy = Tensor::randn(y.shape(), rng), gf = Tensor::empty_like(f), gf_ref = Tensor::empty_like(f);

  auto record = [&](const std::string& pass, const std::string& version, const std::string& dev, double ms,
                    double bytes, double peak_gbs) {
    double gbs = bytes / (ms * 1e6);
    json r = {{"pass", pass},        {"version", version}, {"device", dev}, {"ms", ms},
              {"gbytes_per_s", gbs}, {"bytes", bytes},     {"status", "ok"}};
    if (peak_gbs > 0) r["fraction_of_copy_bandwidth"] = gbs / peak_gbs;
    out["results"].push_back(r);
    std::printf("%-9s %-14s %-5s %9.3f ms %8.2f GB/s", pass.c_str(), version.c_str(), dev.c_str(), ms, gbs);
    if (peak_gbs > 0) std::printf("  (%.0f%% of copy)", 100 * gbs / peak_gbs);
    std::printf("\n");
  };

  // ---- validate the CPU path, then time it (it is also the reference for the GPU)
  kernels::landmark_pool_forward(f, L, V, args, y, arg, LandmarkPoolForward::V1Naive);
  const std::vector<float> y_naive = y.to_vector();
  kernels::landmark_pool_forward(f, L, V, args, y, arg);
  if (y.to_vector() != y_naive) {
    std::fprintf(stderr, "validation failed: CPU plane-order forward differs from the naive one\n");
    return 1;
  }
  kernels::landmark_pool_backward(gy, arg, gf);
  kernels::landmark_pool_backward(gy, arg, gf_ref, LandmarkPoolBackward::Gather);
  if (gf.to_vector() != gf_ref.to_vector()) {
    std::fprintf(stderr, "validation failed: CPU backward differs from the gather\n");
    return 1;
  }
  // The sparse accumulation reads the output gradient and argmax and read-modify-writes one cell per
  // pooled output; over zeros it is the dense backward bitwise.
  int64_t pooled = 0;
  for (int32_t a : arg.to_host()) pooled += a >= 0;
  const double acc_bytes = outs * 8 + double(pooled) * 8;
  Tensor base = Tensor::randn(f.shape(), rng), acc = Tensor::zeros_like(f);
  kernels::landmark_pool_backward_accumulate(gy, arg, acc);
  if (acc.to_vector() != gf_ref.to_vector()) {
    std::fprintf(stderr, "validation failed: CPU accumulate over zeros differs from the dense backward\n");
    return 1;
  }

  if (device == "cpu") {
    out["versions"]["device_description"] = device_description(Device::CPU);
    std::printf("landmark_pool on %s, N=%lld C=%lld %lldx%lld, %lld slots, r=%d\n", bench::cpu_model().c_str(), (long long)s.N,
                (long long)s.C, (long long)s.H, (long long)s.W, (long long)s.L, s.r);
    record("forward", "v1_naive", "cpu",
           time_cpu([&] { kernels::landmark_pool_forward(f, L, V, args, y, arg, LandmarkPoolForward::V1Naive); },
                    warmup, repeats),
           fwd_bytes, 0);
    record("forward", "plane_order", "cpu",
           time_cpu([&] { kernels::landmark_pool_forward(f, L, V, args, y, arg); }, warmup, repeats), fwd_bytes, 0);
    record("backward", "slot_order", "cpu",
           time_cpu([&] { kernels::landmark_pool_backward(gy, arg, gf); }, warmup, repeats), bwd_bytes, 0);
    record(
        "backward", "gather", "cpu",
        time_cpu([&] { kernels::landmark_pool_backward(gy, arg, gf, LandmarkPoolBackward::Gather); }, warmup, repeats),
        bwd_bytes, 0);
    // What a training step ran before (dense gradient, then the autograd's add into pool4's) and runs now.
    acc = base.clone();
    record("backward", "dense_then_add", "cpu", time_cpu([&] {
             kernels::landmark_pool_backward(gy, arg, gf);
             acc.add_(gf);
           }, warmup, repeats),
           bwd_bytes + add_bytes, 0);
    record("backward", "accumulate", "cpu",
           time_cpu([&] { kernels::landmark_pool_backward_accumulate(gy, arg, acc); }, warmup, repeats), acc_bytes, 0);
    // Baseline in the same run: a plain copy of the feature gradient's size (what the backward must write).
    Tensor src = Tensor::randn(f.shape(), rng), dst = Tensor::empty_like(f);
    double copy_ms = time_cpu([&] { dst.copy_from(src); }, warmup, repeats);
    record("baseline", "memcpy_features", "cpu", copy_ms, 2.0 * double(f.nbytes()), 0);
  } else {
#ifdef FN_WITH_CUDA
    {
      out["versions"]["device_description"] = device_description(Device::CUDA);
      int rt = 0;
      cudaRuntimeGetVersion(&rt);
      out["versions"]["cuda_runtime"] = rt;
      double peak = bench::device_copy_gbytes_per_s(repeats);
      out["copy_bandwidth_gbytes_per_s"] = peak;
      std::printf("landmark_pool on %s; device copy bandwidth %.0f GB/s\n", device_description(Device::CUDA).c_str(),
                  peak);
      Tensor fg = f.to(Device::CUDA), Lg = L.to(Device::CUDA), Vg = V.to(Device::CUDA);
      Tensor yg = Tensor::empty(y.shape(), DType::F32, Device::CUDA), gyg = gy.to(Device::CUDA);
      Tensor gfg = Tensor::empty(f.shape(), DType::F32, Device::CUDA);
      kernels::Int32Buffer ag(Device::CUDA, y.numel());
      const std::vector<float> y_ref = y.to_vector(), gf_host = gf.to_vector();
      for (auto [v, name] : {std::pair{LandmarkPoolForward::V1Naive, "v1_naive"},
                             std::pair{LandmarkPoolForward::V2SlotBlock, "v2_slot_block"}}) {
        yg.fill_(NAN);
        kernels::landmark_pool_forward(fg, Lg, Vg, args, yg, ag, v);
        if (yg.to_vector() != y_ref || ag.to_host() != arg.to_host()) {
          std::fprintf(stderr, "validation failed: forward %s differs from the CPU\n", name);
          return 1;
        }
        record("forward", name, "cuda",
               time_cuda([&] { kernels::landmark_pool_forward(fg, Lg, Vg, args, yg, ag, v); }, warmup, repeats),
               fwd_bytes, peak);
      }
      for (auto [v, name] : {std::pair{LandmarkPoolBackward::Gather, "gather"},
                             std::pair{LandmarkPoolBackward::GatherPlane, "gather_plane"},
                             std::pair{LandmarkPoolBackward::GatherVec4, "gather_vec4"},
                             std::pair{LandmarkPoolBackward::ZeroScatter, "zero_scatter"},
                             std::pair{LandmarkPoolBackward::AtomicScatter, "atomic_scatter"}}) {
        gfg.fill_(NAN);
        kernels::landmark_pool_backward(gyg, ag, gfg, v);
        auto got = gfg.to_vector();
        double worst = 0;
        for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::fabs(got[i] - gf_host[i])));
        bool ok = v == LandmarkPoolBackward::AtomicScatter ? worst <= 1e-5 : got == gf_host;
        if (!ok) {
          std::fprintf(stderr, "validation failed: backward %s differs from the CPU (worst %g)\n", name, worst);
          return 1;
        }
        record("backward", name, "cuda",
               time_cuda([&] { kernels::landmark_pool_backward(gyg, ag, gfg, v); }, warmup, repeats), bwd_bytes, peak);
      }
      // The sparse accumulation into an existing gradient (conv4's, holding pool4's): bitwise the CPU's.
      Tensor accg = base.to(Device::CUDA), acc_ref = base.clone();
      kernels::landmark_pool_backward_accumulate(gy, arg, acc_ref);
      kernels::landmark_pool_backward_accumulate(gyg, ag, accg);
      if (accg.to_vector() != acc_ref.to_vector()) {
        std::fprintf(stderr, "validation failed: backward accumulate differs from the CPU\n");
        return 1;
      }
      record("backward", "dense_then_add", "cuda", time_cuda([&] {
               kernels::landmark_pool_backward(gyg, ag, gfg);
               accg.add_(gfg);
             }, warmup, repeats),
             bwd_bytes + add_bytes, peak);
      record("backward", "accumulate", "cuda",
             time_cuda([&] { kernels::landmark_pool_backward_accumulate(gyg, ag, accg); }, warmup, repeats), acc_bytes,
             peak);
      // What a training step runs: the default forward, then the sparse accumulation (the target's figure),
      // and the dense formulation it replaced.
      record("fwd+bwd", "defaults", "cuda", time_cuda([&] {
               kernels::landmark_pool_forward(fg, Lg, Vg, args, yg, ag);
               kernels::landmark_pool_backward_accumulate(gyg, ag, accg);
             }, warmup, repeats),
             fwd_bytes + acc_bytes, peak);
      record("fwd+bwd", "dense_then_add", "cuda", time_cuda([&] {
               kernels::landmark_pool_forward(fg, Lg, Vg, args, yg, ag);
               kernels::landmark_pool_backward(gyg, ag, gfg);
               accg.add_(gfg);
             }, warmup, repeats),
             fwd_bytes + bwd_bytes + add_bytes, peak);
    }
#endif
  }
  out["status"] = "ok";
  return bench::write_json(json_path, out, false) ? 0 : 1;
}
