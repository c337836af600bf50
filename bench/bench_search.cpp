// bench_search: exact k-nearest search at the In-shop evaluation's size (14,218 queries x 12,612 gallery
// images x 4,096 dims, k = 50) on random L2-normalised data from a seed.
//
//   validate: a sample of queries against the double-precision brute force (equal up to near-ties);
//   time:     one warm-up, then the median of --repeats full searches; GFLOP/s counts the GEMM (2*Q*G*D);
//   --faiss:  the same data through FAISS IndexFlatIP (bench/search_faiss.py, Debian's python3-faiss, same
//             threads and k) in the same run; top-1 ids must agree except at exact ties; prints the ratio;
//   --device cuda: the cuBLAS + selection-kernel search (v1 and v2) with the data resident on the GPU, and
//             cuBLAS's GEMM alone on the same blocks as the floor; without a GPU the JSON records the skip.
//   --quick:  small sizes for a CI smoke run.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/device.h"
#include "core/npy.h"
#include "core/philox.h"
#include "kernels/gemm.h"
#include "kernels/topk_search.h"

#include "bench/bench_util.h"

#ifdef FN_WITH_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

extern "C" char* openblas_get_config(void);

namespace {

using fn::kernels::Neighbours;
using fn::kernels::SearchOptions;
using json = nlohmann::json;
using namespace fn::bench;

// Random unit rows: Gaussian entries from Philox (rows in parallel; each element a pure function of the
// seed and its position, so the data does not depend on the thread count), then L2-normalised.
fn::Tensor random_unit_rows(int64_t rows, int64_t dim, uint64_t seed, uint64_t stream) {
  fn::Tensor t = fn::Tensor::empty({rows, dim});
  float* p = t.f32();
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned w = 0; w < threads; ++w)
    pool.emplace_back([=] {
      for (int64_t i = rows * w / threads; i < rows * (w + 1) / threads; ++i)
        for (int64_t c = 0; c < dim; c += 2) {
          uint64_t e = uint64_t(i * dim + c);
          float u1 = fn::Philox::uniform(seed, stream, e) + 1e-7f, u2 = fn::Philox::uniform(seed, stream, e + 1);
          float r = std::sqrt(-2.0f * std::log(u1));
          p[i * dim + c] = r * std::cos(6.2831853f * u2);
          if (c + 1 < dim) p[i * dim + c + 1] = r * std::sin(6.2831853f * u2);
        }
    });
  for (auto& th : pool) th.join();
  fn::kernels::l2_normalize_rows(t);
  return t;
}

double dot(const fn::Tensor& a, int64_t i, const fn::Tensor& b, int64_t j) {
  const int64_t d = a.size(1);
  const float *x = a.f32() + i * d, *y = b.f32() + j * d;
  double s = 0;
  for (int64_t c = 0; c < d; ++c) s += double(x[c]) * double(y[c]);
  return s;
}

// Compares the first `cols` neighbours of `rows` queries (query ids taken from `qids`): positions where the
// ids differ must hold near-ties (exact scores within eps). Returns {differing positions, unexplained}.
std::pair<int64_t, int64_t> compare_ids(const std::vector<int64_t>& qids, const std::function<int32_t(int64_t, int64_t)>& a,
                                        const std::function<int32_t(int64_t, int64_t)>& b, int64_t cols,
                                        const fn::Tensor& q, const fn::Tensor& g, double eps = 1e-5) {
  int64_t differ = 0, unexplained = 0;
  for (size_t n = 0; n < qids.size(); ++n)
    for (int64_t c = 0; c < cols; ++c) {
      int32_t ia = a(int64_t(n), c), ib = b(int64_t(n), c);
      if (ia == ib) continue;
      ++differ;
      if (ia < 0 || ib < 0 || std::fabs(dot(q, qids[n], g, ia) - dot(q, qids[n], g, ib)) >= eps) ++unexplained;
    }
  return {differ, unexplained};
}

// Validates a search result on a sample of queries against the double-precision brute force.
json validate(const Neighbours& got, const fn::Tensor& q, const fn::Tensor& g, int64_t sample, int64_t k) {
  const int64_t nq = q.size(0), ng = g.size(0), dim = q.size(1);
  std::vector<int64_t> qids;
  for (int64_t s = 0; s < std::min(sample, nq); ++s) qids.push_back(s * nq / std::min(sample, nq));
  fn::Tensor sub = fn::Tensor::empty({int64_t(qids.size()), dim});
  for (size_t n = 0; n < qids.size(); ++n)
    std::copy(q.f32() + qids[n] * dim, q.f32() + (qids[n] + 1) * dim, sub.f32() + int64_t(n) * dim);
  Neighbours ref = fn::kernels::topk_search_reference(sub.f32(), sub.size(0), g.f32(), ng, dim, k);
  auto r = compare_ids(
      qids, [&](int64_t n, int64_t c) { return got.row_index(qids[size_t(n)])[c]; },
      [&](int64_t n, int64_t c) { return ref.row_index(n)[c]; }, ref.k, q, g);
  json j = {{"queries_checked", qids.size()}, {"positions_differing", r.first}, {"unexplained", r.second}};
  if (r.second != 0) {
    std::fprintf(stderr, "bench_search: VALIDATION FAILED: %lld positions differ from the brute force beyond near-ties\n",
                 (long long)r.second);
    std::exit(1);
  }
  return j;
}

int run(int argc, char** argv) {
  CLI::App app{"Exact k-nearest search benchmark (In-shop size), with FAISS as the baseline"};
  int64_t nq = 14218, ng = 12612, dim = 4096, k = 50, block = 0;
  uint64_t seed = 2026;
  int threads = 0;
  bool faiss = false;
  std::string schedule = "blocks";
  Options common;
  common.repeats = 3;
  // The script sits beside this file in the source tree; run from the repository root, or pass its path.
  std::string faiss_script = std::getenv("FN_SOURCE_DIR") ? std::string(std::getenv("FN_SOURCE_DIR")) + "/bench/search_faiss.py"
                                                          : "bench/search_faiss.py";
  app.add_option("--queries", nq, "query rows");
  app.add_option("--gallery", ng, "gallery rows");
  app.add_option("--dim", dim, "embedding dimension");
  app.add_option("--k", k, "neighbours per query");
  app.add_option("--seed", seed, "data seed");
  app.add_option("--threads", threads, "CPU threads (0: all)");
  app.add_option("--block", block, "query rows per GEMM block (0: default)");
  app.add_option("--schedule", schedule, "CPU schedule: blocks (threads over query blocks) or blas")
      ->check(CLI::IsMember({"blocks", "blas"}));
  app.add_flag("--faiss", faiss, "also run FAISS IndexFlatIP on the same data (bench/search_faiss.py)");
  app.add_option("--faiss-script", faiss_script, "path of bench/search_faiss.py");
  add_options(app, common, "timed repeats (median reported)");
  CLI11_PARSE(app, argc, argv);
  const std::string device = common.device, json_path = common.json_path;
  const bool quick = common.quick;
  const int repeats = common.repeats;
  if (quick) {
    nq = 1000;
    ng = 800;
    dim = 256;
  }
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  const double gflop = 2.0 * double(nq) * double(ng) * double(dim) * 1e-9;

  json out;
  out["benchmark"] = "bench_search";
  out.update(machine_json(device));
  out["versions"] = {{"compiler", __VERSION__}, {"openblas", openblas_get_config()}};
  out["size"] = {{"queries", nq}, {"gallery", ng}, {"dim", dim}, {"k", k}, {"seed", seed}, {"gflop", gflop}};
  std::printf("exact search: %lld queries x %lld gallery x %lld dims, k = %lld (%.1f GFLOP)\n", (long long)nq,
              (long long)ng, (long long)dim, (long long)k, gflop);

  double t0 = now_s();
  fn::Tensor q = random_unit_rows(nq, dim, seed, 1), g = random_unit_rows(ng, dim, seed, 2);
  std::printf("data generated in %.1f s\n", now_s() - t0);
  SearchOptions opt;
  opt.k = k;
  opt.query_block = block;
  opt.threads = threads;
  opt.schedule = schedule == "blas" ? fn::kernels::CpuSchedule::BlasThreads : fn::kernels::CpuSchedule::ThreadsOverBlocks;
  const int64_t sample = quick ? 64 : 8;

  if (device == "cpu") {
    Neighbours ours = fn::kernels::topk_search(q, g, opt);  // also the warm-up
    out["cpu"]["validation"] = validate(ours, q, g, sample, k);
    auto time_ours = [&] {
      double s = now_s();
      ours = fn::kernels::topk_search(q, g, opt);
      return now_s() - s;
    };
    std::vector<double> t, tf;  // ours, FAISS
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("fn_bench_search_" + std::to_string(getpid()));
    json fj;
    if (!faiss) {
      for (int r = 0; r < repeats; ++r) t.push_back(time_ours());
    } else {
      // The runs alternate, ours then FAISS, so that both see the same load on a shared machine. Each FAISS
      // run is a fresh process timing one search (its loading and index building are not timed).
      fs::create_directories(dir);
      fn::npy::write_f32((dir / "q.npy").string(), q);
      fn::npy::write_f32((dir / "g.npy").string(), g);
      std::string cmd = python_exe() + " " + faiss_script + " --query " + (dir / "q.npy").string() + " --gallery " +
                        (dir / "g.npy").string() + " --k " + std::to_string(k) + " --threads " +
                        std::to_string(threads) + " --repeats 1 --warmup 0 --ids-out " + (dir / "ids.npy").string() +
                        " --json-out " + (dir / "faiss.json").string();
      for (int r = 0; r < repeats; ++r) {
        t.push_back(time_ours());
        int rc = std::system(cmd.c_str());
        if (rc != 0) {
          fs::remove_all(dir);
          FN_FAIL("the FAISS script failed (status ", rc, "): ", cmd);
        }
        fj = json::parse(std::ifstream(dir / "faiss.json"));
        tf.push_back(fj["times_s"][0].get<double>());
      }
    }
    double med = median(t);
    out["cpu"].update({{"threads", threads}, {"schedule", schedule}, {"block", block}, {"times_s", t},
                       {"median_s", med}, {"gflops", gflop / med}});
    std::printf("ours (CPU, %d threads, %s): median %.3f s of %d, %.1f GFLOP/s\n", threads, schedule.c_str(), med,
                repeats, gflop / med);

    if (faiss) {
      fn::Tensor ids = fn::npy::read_f32((dir / "ids.npy").string());
      fs::remove_all(dir);
      std::vector<int64_t> all(static_cast<size_t>(nq));
      for (int64_t i = 0; i < nq; ++i) all[size_t(i)] = i;
      const int64_t kk = ids.size(1);
      auto top1 = compare_ids(
          all, [&](int64_t n, int64_t) { return ours.row_index(n)[0]; },
          [&](int64_t n, int64_t) { return int32_t(ids.f32()[n * kk]); }, 1, q, g);
      auto topk = compare_ids(
          all, [&](int64_t n, int64_t c) { return ours.row_index(n)[c]; },
          [&](int64_t n, int64_t c) { return int32_t(ids.f32()[n * kk + c]); }, std::min(kk, ours.k), q, g);
      double fmed = median(tf);
      std::vector<double> pair_ratio;
      for (size_t r = 0; r < t.size(); ++r) pair_ratio.push_back(tf[r] / t[r]);
      out["faiss"] = {{"faiss_version", fj["faiss_version"]}, {"numpy_version", fj["numpy_version"]},
                      {"threads", threads}, {"times_s", tf}, {"median_s", fmed}, {"gflops", gflop / fmed},
                      {"top1_differing", top1.first}, {"top1_unexplained", top1.second},
                      {"topk_positions_differing", topk.first}, {"topk_unexplained", topk.second},
                      {"ratio_faiss_over_ours", fmed / med}, {"ratio_per_pair_median", median(pair_ratio)}};
      std::printf("FAISS %s IndexFlatIP (%d threads): median %.3f s, %.1f GFLOP/s\n",
                  fj["faiss_version"].get<std::string>().c_str(), threads, fmed, gflop / fmed);
      std::printf("agreement: top-1 ids differ for %lld queries (%lld not explained by near-ties); all %lld ranks: "
                  "%lld positions differ (%lld unexplained)\n",
                  (long long)top1.first, (long long)top1.second, (long long)kk, (long long)topk.first,
                  (long long)topk.second);
      std::printf("speed: ours is %.2fx FAISS (FAISS median / our median; median of per-pair ratios %.2fx)\n",
                  fmed / med, median(pair_ratio));
      if (top1.second != 0) {
        std::fprintf(stderr, "bench_search: FAISS and ours disagree on top-1 beyond near-ties\n");
        write_json(json_path, out, false);
        return 1;
      }
    }
  } else {  // cuda
    if (!fn::cuda_available()) {
      std::string why = fn::cuda_compiled() ? "no CUDA device present" : "built without CUDA";
      std::printf("SKIPPED: --device cuda: %s (no figures recorded)\n", why.c_str());
      out["cuda"] = {{"skipped", why}};
    } else {
#ifdef FN_WITH_CUDA
      int rt = 0;
      CUDA_CHECK(cudaRuntimeGetVersion(&rt));
      out["versions"]["cuda_runtime"] = rt;
      out["cuda"]["device"] = fn::device_description(fn::Device::CUDA);
      double h0 = now_s();
      fn::Tensor qd = q.to(fn::Device::CUDA), gd = g.to(fn::Device::CUDA);
      fn::cuda::synchronize();
      out["cuda"]["upload_s"] = now_s() - h0;
      const int64_t bl = std::min<int64_t>(block > 0 ? block : 4096, nq);
      // The floor: cuBLAS's GEMM alone on the same blocks.
      fn::Tensor scores = fn::Tensor::empty({bl, ng}, fn::DType::F32, fn::Device::CUDA);
      auto gemm_only = [&] {
        for (int64_t r0 = 0; r0 < nq; r0 += bl)
          fn::kernels::gemm_cuda(false, true, std::min(bl, nq - r0), ng, dim, 1.0f, qd.f32() + r0 * dim, dim, gd.f32(),
                                 dim, 0.0f, scores.f32(), ng);
        fn::cuda::synchronize();
      };
      std::vector<double> tg = time_runs(1, repeats, gemm_only);
      out["cuda"]["cublas_gemm_only"] = {{"times_s", tg}, {"median_s", median(tg)}, {"tflops", gflop / median(tg) / 1e3}};
      std::printf("cuBLAS GEMM alone: median %.2f ms, %.1f TFLOP/s\n", median(tg) * 1e3, gflop / median(tg) / 1e3);
      for (int version : {1, 2}) {
        SearchOptions o = opt;
        o.cuda_version = version;
        o.query_block = bl;
        Neighbours res = fn::kernels::topk_search(qd, gd, o);
        json v = validate(res, q, g, sample, k);
        std::vector<double> t = time_runs(1, repeats, [&] { res = fn::kernels::topk_search(qd, gd, o); });
        double med = median(t);
        v.update({{"times_s", t}, {"median_s", med}, {"tflops", gflop / med / 1e3}});
        out["cuda"]["v" + std::to_string(version)] = v;
        std::printf("ours (CUDA, selection v%d): median %.2f ms, %.1f TFLOP/s (results copied back included)\n",
                    version, med * 1e3, gflop / med / 1e3);
      }
#endif
    }
  }
  return write_json(json_path, out) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  fn::kernels::configure_blas(argv);  // before any product: the kernels OpenBLAS runs are fixed at load
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_search: error: %s\n", e.what());
    return 1;
  }
}
