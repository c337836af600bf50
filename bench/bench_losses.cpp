// Loss and optimizer kernels at FashionNet's training shapes (batch 32): softmax cross-entropy (23 and 50
// categories; 32*8 visibility rows of 2 classes), attribute BCE (463 and 1000 attributes), landmark L2
// (8 slots), the embedding path (4096-d: L2 normalisation, pairwise distances by GEMM, batch-hard and
// batch-all triplet), and the SGD / Adam updates of fc7_fusion's weights (4096 x 5120).
// Validates first (CPU float32 against the same op in float64; CUDA against the CPU), then times every
// version: warm-up, median of repeats, GB/s of compulsory traffic; on a GPU against the device's copy
// bandwidth measured in the same run. Most of these ops are tiny: at batch 32 their time is launch and
// reduction latency, which the milliseconds show better than the GB/s.
//   bench_losses [--device cpu|cuda] [--quick] [--repeats R] [--json FILE]
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
#include "kernels/attr_bce.h"
#include "kernels/elementwise.h"
#include "kernels/landmark_l2.h"
#include "kernels/optim.h"
#include "kernels/reduce.h"
#include "kernels/softmax_xent.h"
#include "kernels/triplet.h"

#include "bench/bench_util.h"
#ifdef FN_WITH_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

using namespace fn;
using json = nlohmann::json;

namespace {

// One timer for both devices: host clock on the CPU, CUDA events on the engine's stream on the GPU; the
// median in milliseconds.
struct Timer {
  Device dev;
  int warmup, repeats;
  double operator()(const std::function<void()>& fn) const {
#ifdef FN_WITH_CUDA
    if (dev == Device::CUDA) return bench::median(bench::time_cuda_ms(warmup, repeats, fn));
#endif
    return 1e3 * bench::median(bench::time_runs(warmup, repeats, fn));
  }
};

struct Bench {
  Timer timer;
  double peak_gbs = 0;  // device copy bandwidth (GPU only)
  json results = json::array();
  bool failed = false;

  void record(const std::string& op, const std::string& shape, const std::string& version, double bytes,
              const std::function<void()>& fn) {
    double ms = timer(fn), gbs = bytes / (ms * 1e6);
    json r = {{"op", op}, {"shape", shape},      {"version", version}, {"device", device_name(timer.dev)},
              {"ms", ms}, {"gbytes_per_s", gbs}, {"bytes", bytes},     {"status", "ok"}};
    if (peak_gbs > 0) r["fraction_of_copy_bandwidth"] = gbs / peak_gbs;
    results.push_back(r);
    std::printf("%-22s %-14s %-16s %10.4f ms %8.2f GB/s\n", op.c_str(), shape.c_str(), version.c_str(), ms, gbs);
  }
  // Validation: |got - ref| <= 1e-4 (1 + |ref|); a failure stops the timing of that op.
  bool check(const std::string& what, double got, double ref) {
    if (std::isfinite(got) && std::fabs(got - ref) <= 1e-4 * (1 + std::fabs(ref))) return true;
    std::fprintf(stderr, "validation failed: %s: %.9g vs reference %.9g\n", what.c_str(), got, ref);
    failed = true;
    return false;
  }
};

Tensor on(const Tensor& t, Device d) { return d == Device::CPU ? t : t.to(d); }
std::string dims(int64_t a, int64_t b) { return std::to_string(a) + "x" + std::to_string(b); }

// ---- softmax cross-entropy: reference = the float64 CPU loss
void bench_xent(Bench& B, Device dev, int64_t N, int K, Rng& rng) {
  Tensor z = Tensor::randn({N, K}, rng, 3.0);
  std::vector<float> lab;
  for (int64_t i = 0; i < N; ++i) lab.push_back(float(rng.below(K)));
  Tensor y = Tensor::from(lab, {N});
  auto run = [&](const Tensor& zz, const Tensor& yy, Tensor& l, Tensor& lse, Tensor& rw, Tensor& nm,
                 kernels::SoftmaxXentVersion v) {
    kernels::softmax_xent_forward(zz, yy, Tensor(), -1, 0.0, l, lse, rw, nm, v);
  };
  Tensor l64 = Tensor::empty({}, DType::F64), a64 = Tensor::empty({N}, DType::F64),
         b64 = Tensor::empty({N}, DType::F64), n64 = Tensor::empty({}, DType::F64);
  run(z.to(DType::F64), y.to(DType::F64), l64, a64, b64, n64, kernels::SoftmaxXentVersion::Default);
  Tensor zd = on(z, dev), yd = on(y, dev), l = Tensor::empty({}, DType::F32, dev),
         lse = Tensor::empty({N}, DType::F32, dev), rw = Tensor::empty({N}, DType::F32, dev),
         nm = Tensor::empty({}, DType::F32, dev), g = Tensor::full({}, 1.0, DType::F32, dev),
         gz = Tensor::empty({N, K}, DType::F32, dev);
  const double fwd = double(N * K * 4 + N * 4 * 3), bwd = double(2 * N * K * 4 + N * 4 * 3);
  std::vector<std::pair<kernels::SoftmaxXentVersion, const char*>> versions = {
      {kernels::SoftmaxXentVersion::V1RowThread, "v1_row_thread"}};
  if (dev == Device::CUDA) {
    versions.push_back({kernels::SoftmaxXentVersion::V2RowWarp, "v2_row_warp"});
    versions.push_back({kernels::SoftmaxXentVersion::V3RowWarpOnline, "v3_row_warp_online"});
    versions.push_back({kernels::SoftmaxXentVersion::V4RowRegisters, "v4_row_registers"});
  }
  for (auto [v, name] : versions) {
    l.fill_(NAN);
    run(zd, yd, l, lse, rw, nm, v);
    if (!B.check("softmax_xent " + std::string(name), l.item(), l64.item())) continue;
    B.record("softmax_xent.fwd", dims(N, K), name, fwd, [&] { run(zd, yd, l, lse, rw, nm, v); });
  }
  std::vector<std::pair<kernels::SoftmaxXentBackwardVersion, const char*>> bversions = {
      {kernels::SoftmaxXentBackwardVersion::V1Element, "v1_element"}};
  if (dev == Device::CUDA) bversions.push_back({kernels::SoftmaxXentBackwardVersion::V2RowWarp, "v2_row_warp"});
  for (auto [v, name] : bversions)
    B.record("softmax_xent.bwd", dims(N, K), name, bwd,
             [&, v = v] { kernels::softmax_xent_backward(g, zd, yd, 0.0, lse, rw, nm, gz, v); });
}

// ---- the shared final reduction (part of every loss's forward): one block sums n terms and weights
void bench_finalize(Bench& B, Device dev, int64_t n, Rng& rng) {
  Tensor t = Tensor::randn({n}, rng), w = Tensor::uniform({n}, rng, 0.5, 2.0);
  Tensor l64 = Tensor::empty({}, DType::F64), n64 = Tensor::empty({}, DType::F64);
  kernels::loss_finalize(t.to(DType::F64), w.to(DType::F64), 0.0, l64, n64);
  Tensor td = on(t, dev), wd = on(w, dev), l = Tensor::empty({}, DType::F32, dev), nm = Tensor::empty_like(l);
  l.fill_(NAN);
  kernels::loss_finalize(td, wd, 0.0, l, nm);
  if (!B.check("loss_finalize", l.item(), l64.item())) return;
  B.record("loss_finalize", std::to_string(n), "one_block", double(2 * n * 4),
           [&] { kernels::loss_finalize(td, wd, 0.0, l, nm); });
}

// ---- attribute BCE
void bench_bce(Bench& B, Device dev, int64_t N, int64_t A, Rng& rng) {
  Tensor z = Tensor::randn({N, A}, rng, 3.0), a = Tensor::empty({N, A}), k = Tensor::empty({N, A});
  for (int64_t i = 0; i < N * A; ++i)
    a.f32()[i] = rng.uniform() < 0.1 ? 1.f : 0.f, k.f32()[i] = rng.uniform() < 0.9 ? 1.f : 0.f;
  Tensor wp = Tensor::uniform({A}, rng, 0.5, 20), wn = Tensor::uniform({A}, rng, 0.5, 2);
  Tensor l64 = Tensor::empty({}, DType::F64);
  kernels::attr_bce_forward(z.to(DType::F64), a.to(DType::F64), k.to(DType::F64), wp.to(DType::F64), wn.to(DType::F64),
                            l64);
  Tensor zd = on(z, dev), ad = on(a, dev), kd = on(k, dev), wpd = on(wp, dev), wnd = on(wn, dev);
  Tensor l = Tensor::empty({}, DType::F32, dev), g = Tensor::full({}, 1.0, DType::F32, dev),
         gz = Tensor::empty({N, A}, DType::F32, dev);
  const double fwd = double(3 * N * A * 4 + 2 * A * 4), bwd = fwd + double(N * A * 4);
  std::vector<std::pair<kernels::AttrBceVersion, const char*>> versions = {
      {kernels::AttrBceVersion::V1Element, "v1_element"}};
  if (dev == Device::CUDA) versions.push_back({kernels::AttrBceVersion::V2RowBlock, "v2_row_block"});
  for (auto [v, name] : versions) {
    l.fill_(NAN);
    kernels::attr_bce_forward(zd, ad, kd, wpd, wnd, l, v);
    if (!B.check("attr_bce " + std::string(name), l.item(), l64.item())) continue;
    B.record("attr_bce.fwd", dims(N, A), name, fwd, [&] { kernels::attr_bce_forward(zd, ad, kd, wpd, wnd, l, v); });
  }
  B.record("attr_bce.bwd", dims(N, A), "elementwise", bwd,
           [&] { kernels::attr_bce_backward(g, zd, ad, kd, wpd, wnd, gz); });
}

// ---- landmark L2
void bench_l2(Bench& B, Device dev, int64_t N, Rng& rng) {
  Tensor p = Tensor::uniform({N, 8, 2}, rng, 0, 1), t = Tensor::uniform({N, 8, 2}, rng, 0, 1),
         v = Tensor::full({N, 8}, 1.0);
  Tensor l64 = Tensor::empty({}, DType::F64);
  kernels::landmark_l2_forward(p.to(DType::F64), t.to(DType::F64), v.to(DType::F64), l64);
  Tensor pd = on(p, dev), td = on(t, dev), vd = on(v, dev), l = Tensor::empty({}, DType::F32, dev);
  Tensor g = Tensor::full({}, 1.0, DType::F32, dev), gp = Tensor::empty({N, 8, 2}, DType::F32, dev), none;
  kernels::landmark_l2_forward(pd, td, vd, l);
  if (!B.check("landmark_l2", l.item(), l64.item())) return;
  const double fwd = double(N * 8 * 5 * 4), bwd = fwd + double(N * 16 * 4);
  B.record("landmark_l2.fwd", dims(N, 8), "v1", fwd, [&] { kernels::landmark_l2_forward(pd, td, vd, l); });
  B.record("landmark_l2.bwd", dims(N, 8), "v1", bwd, [&] { kernels::landmark_l2_backward(g, pd, td, vd, gp, none); });
}

// ---- embedding: normalise, distances, triplet (P = 8 items x K = 4 images)
void bench_embedding(Bench& B, Device dev, int64_t N, int64_t D, Rng& rng) {
  Tensor x = Tensor::randn({N, D}, rng);
  std::vector<float> lab;
  for (int64_t i = 0; i < N; ++i) lab.push_back(float(i / 4));
  Tensor y = Tensor::from(lab, {N});
  // Reference path in float64 on the CPU.
  Tensor x64 = x.to(DType::F64), y64 = y.to(DType::F64), n64 = Tensor::empty({N}, DType::F64),
         e64 = Tensor::empty_like(x64);
  kernels::l2_normalize_forward(x64, 1e-12, e64, n64);
  Tensor d64 = Tensor::empty({N, N}, DType::F64), s64 = Tensor::empty_like(d64);
  kernels::pairwise_distance_forward(e64, 1e-12, d64, s64);
  Tensor xd = on(x, dev), yd = on(y, dev), e = Tensor::empty({N, D}, DType::F32, dev),
         nr = Tensor::empty({N}, DType::F32, dev);
  Tensor d = Tensor::empty({N, N}, DType::F32, dev), d2 = Tensor::empty_like(d), gd = Tensor::empty_like(d),
         ge = Tensor::empty_like(e);
  Tensor l = Tensor::empty({}, DType::F32, dev), af = Tensor::empty_like(l), nm = Tensor::empty_like(l);
  Tensor g = Tensor::full({}, 1.0, DType::F32, dev);
  const std::string sh = dims(N, D);
  std::vector<std::pair<kernels::L2NormalizeVersion, const char*>> versions = {
      {kernels::L2NormalizeVersion::V1RowThread, "v1_row_thread"}};
  if (dev == Device::CUDA) versions.push_back({kernels::L2NormalizeVersion::V2RowBlock, "v2_row_block"});
  for (auto [v, name] : versions) {
    kernels::l2_normalize_forward(xd, 1e-12, e, nr, v);
    if (!B.check("l2_normalize", nr.to_vector()[N - 1], n64.to_vector_f64()[N - 1])) continue;
    B.record("l2_normalize.fwd", sh, name, double(2 * N * D * 4),
             [&] { kernels::l2_normalize_forward(xd, 1e-12, e, nr, v); });
  }
  Tensor gy = on(Tensor::randn({N, D}, rng), dev);
  B.record("l2_normalize.bwd", sh, "row", double(3 * N * D * 4),
           [&] { kernels::l2_normalize_backward(gy, e, nr, 1e-12, ge); });
  kernels::pairwise_distance_forward(e, 1e-12, d, d2);
  B.check("pairwise_distance", d.to_vector()[1], d64.to_vector_f64()[1]);
  B.record("pairwise_distance.fwd", sh, "gemm", double(N * D * 4 + 2 * N * N * 4),
           [&] { kernels::pairwise_distance_forward(e, 1e-12, d, d2); });
  for (auto [mode, name] : {std::pair{kernels::TripletMode::BatchHard, "batch_hard"},
                            std::pair{kernels::TripletMode::BatchAll, "batch_all"}}) {
    Tensor l64 = Tensor::empty({}, DType::F64), a64 = Tensor::empty_like(l64), m64 = Tensor::empty_like(l64);
    kernels::triplet_forward(d64, y64, 0.2f, mode, l64, a64, m64);
    kernels::triplet_forward(d, yd, 0.2f, mode, l, af, nm);
    if (!B.check(std::string("triplet ") + name, l.item(), l64.item())) continue;
    B.record("triplet.fwd", dims(N, N), name, double(N * N * 4),
             [&] { kernels::triplet_forward(d, yd, 0.2f, mode, l, af, nm); });
    B.record("triplet.bwd", dims(N, N), name, double(2 * N * N * 4),
             [&] { kernels::triplet_backward(g, d, yd, 0.2f, mode, nm, gd); });
  }
  B.record("pairwise_distance.bwd", sh, "gemm", double(2 * N * D * 4 + 3 * N * N * 4),
           [&] { kernels::pairwise_distance_backward(gd, e, d, d2, ge); });
}

// ---- optimizers on one large weight; validated against the float64 update of the first elements
void bench_optim(Bench& B, Device dev, int64_t n, Rng& rng) {
  Tensor p = Tensor::randn({n}, rng), g = Tensor::randn({n}, rng);
  const double p0 = p.to_vector_f64()[0], g0 = g.to_vector_f64()[0];
  Tensor pd = on(p, dev).clone(), gd = on(g, dev), vd = Tensor::zeros({n}, DType::F32, dev);
  kernels::SgdHyper sh{0.01f, 0.9f, 5e-4f, false};
  kernels::sgd_step(pd, gd, vd, sh);  // first step from v = 0: p - lr (g + wd p)
  if (!B.check("sgd", pd.slice0(0, 1).item(), p0 - double(0.01f) * (g0 + double(5e-4f) * p0))) return;
  const std::string shape = std::to_string(n);
  B.record("sgd_momentum", shape, "elementwise", double(5 * n * 4), [&] { kernels::sgd_step(pd, gd, vd, sh); });
  Tensor m = Tensor::zeros({n}, DType::F32, dev), v2 = Tensor::zeros({n}, DType::F32, dev);
  kernels::AdamHyper ah;
  int64_t t = 0;
  B.record("adam", shape, "elementwise", double(7 * n * 4), [&] { kernels::adam_step(pd, gd, m, v2, ++t, ah); });
  // The gradient clip's norm: one read of the gradient (before, a squared copy written and read back).
  Tensor sq = Tensor::empty({1}, DType::F32, dev), sq64 = Tensor::empty({1}, DType::F64);
  kernels::sum_squares(gd, sq);
  kernels::sum_squares(g.to(DType::F64), sq64);
  if (!B.check("sum_squares", sq.item(), sq64.item())) return;
  B.record("sum_squares", shape, "two_pass", double(n * 4), [&] { kernels::sum_squares(gd, sq); });
  Tensor g2 = Tensor::empty_like(gd);
  B.record("sum_squares", shape, "mul_then_sum_all", double(3 * n * 4), [&] {
    kernels::mul(gd, gd, g2);
    kernels::sum_all(g2, sq);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Loss and optimizer kernels at FashionNet's training shapes"};
  bench::Options opt;
  bench::add_options(app, opt, "timed repeats (default 20, quick 3)");
  CLI11_PARSE(app, argc, argv);
  const std::string device = opt.device, json_path = opt.json_path;
  const bool quick = opt.quick;
  const int repeats = opt.repeats_or(3, 20);

  json out;
  out["benchmark"] = "losses";
  out.update(bench::machine_json(device));
  out["versions"] = {{"compiler", __VERSION__}, {"cuda_compiled", cuda_compiled()}};
  out["device"] = device;

  if (bench::skip_without_cuda("bench_losses", device, out, json_path)) return 0;
  const Device dev = device == "cuda" ? Device::CUDA : Device::CPU;
  out["versions"]["device_description"] = device_description(dev);
  Bench B{Timer{dev, quick ? 1 : 3, repeats}};
#ifdef FN_WITH_CUDA
  if (dev == Device::CUDA) {
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    out["versions"]["cuda_runtime"] = rt;
    B.peak_gbs = bench::device_copy_gbytes_per_s(repeats);
    out["copy_bandwidth_gbytes_per_s"] = B.peak_gbs;
    std::printf("device copy bandwidth %.0f GB/s\n", B.peak_gbs);
  }
#endif
  std::printf("losses on %s\n", device_description(dev).c_str());
  Rng rng(2026);
  const int64_t N = 32;
  for (int K : {23, 50}) bench_xent(B, dev, N, K, rng);
  bench_xent(B, dev, N * 8, 2, rng);  // per-slot visibility
  bench_finalize(B, dev, N, rng);
  for (int64_t A : {463, 1000}) bench_bce(B, dev, N, A, rng);
  bench_l2(B, dev, N, rng);
  bench_embedding(B, dev, N, quick ? 512 : 4096, rng);
  bench_optim(B, dev, quick ? (int64_t(1) << 20) : int64_t(4096) * 5120, rng);
  if (dev == Device::CUDA && !quick) {
    // At batch 32 the losses move a few kilobytes and their time is launch latency. One shape that is not
    // FashionNet's, 32768 rows of 1000 classes (131 MB of logits), shows the fused softmax cross-entropy
    // where its GB/s can be set against the copy bandwidth.
    std::printf("-- bandwidth-bound shape (not FashionNet's)\n");
    bench_xent(B, dev, 32768, 1000, rng);
    bench_finalize(B, dev, 32768, rng);  // its share of the wide forward
    bench_bce(B, dev, 32768, 1000, rng);
  }
  out["results"] = B.results;
  out["status"] = B.failed ? "validation_failed" : "ok";
  const bool written = bench::write_json(json_path, out, false);
  return B.failed || !written ? 1 : 0;
}
