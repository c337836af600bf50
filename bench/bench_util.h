// What every benchmark shares: the clock, the median, the timing loops, and the JSON header that says where
// and when a figure was measured. Header-only; include it from bench/bench_*.cpp.
//
//   now_s()                 steady clock, seconds
//   median(v)               the median (mean of the middle two for an even count)
//   time_runs(...)          warm-up runs, then every timed run in seconds (host clock, `sync` after each)
//   time_interleaved(...)   one warm-up of each function, then rounds that run every function once in turn;
//                           each one's median. Keeps a baseline and its variants under the same load.
//   time_median(...)        time_interleaved of one function
//   time_cuda_ms(...)       (CUDA builds) warm-up runs, then every timed run in ms by CUDA events on the
//                           engine's stream; calls under 0.1 ms timed in back-to-back batches
//   device_copy_gbytes_per_s(r) (CUDA builds) the device-to-device copy bandwidth, the memory-bound yardstick
//   utc_now(), cpu_model(), host_name(), load_average() (1-minute, -1 where unknown)
//   machine_json(device)    {date, commit, machine: {cpu, hardware_threads, host}, device_name (CUDA only,
//                           when a device answers)}: merge it into a benchmark's JSON with out.update(...)
//   write_json(path, j)     writes j (2-space indent) to path; nothing for an empty path
//   Options, add_options    the options every kernel benchmark takes: --device --json --repeats --quick
//   skip_without_cuda(...)  --device cuda without a GPU: prints "SKIPPED: ...", records the skip in the JSON
//   find_source_file(rel), python_exe()   core/source_tree.h: the project's scripts and the Python that runs them
//   run_python_json(s, a)   runs a side-by-side script (bench/pytorch/...) and returns the JSON it wrote
#pragma once
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "core/build_commit.h"
#include "core/device.h"
#include "core/source_tree.h"

#ifdef FN_WITH_CUDA
#include <cuda_runtime.h>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

namespace fn::bench {

using fn::find_source_file;  // core/source_tree.h
using fn::python_exe;

// Runs `python_exe() <script> <args> --json TMP` for a side-by-side script of the source tree (bench/pytorch/...)
// and returns the JSON it wrote; null, with a line saying why, when the script is missing, fails or writes
// no JSON (PyTorch absent, say): the benchmark then reports its own figures alone.
inline nlohmann::json run_python_json(const std::string& script_rel, const std::string& args) {
  const std::string script = find_source_file(script_rel);
  if (script.empty()) {
    std::printf("pytorch: not available (%s not found)\n", script_rel.c_str());
    return nullptr;
  }
  namespace fs = std::filesystem;
  const std::string tmp = (fs::temp_directory_path() / ("fn_bench_py_" + std::to_string(::getpid()) + ".json")).string();
  const std::string cmd = python_exe() + " " + script + " " + args + " --json " + tmp;
  std::printf("pytorch: %s\n", cmd.c_str());
  std::fflush(stdout);
  const int rc = std::system(cmd.c_str());
  if (rc != 0 || !fs::exists(tmp)) {
    std::printf("pytorch: not available (the script failed, exit %d)\n", rc);
    return nullptr;
  }
  std::ifstream f(tmp);
  nlohmann::json j = nlohmann::json::parse(f, nullptr, false);
  std::error_code ec;
  fs::remove(tmp, ec);
  if (j.is_discarded()) {
    std::printf("pytorch: not available (unreadable JSON from %s)\n", script_rel.c_str());
    return nullptr;
  }
  return j;
}

inline double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

inline void no_sync() {}

// `warmup` untimed runs, then `repeats` timed runs (each followed by `sync`); every timed run in seconds.
inline std::vector<double> time_runs(int warmup, int repeats, const std::function<void()>& fn,
                                     const std::function<void()>& sync = no_sync) {
  for (int i = 0; i < warmup; ++i) fn(), sync();
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const double t0 = now_s();
    fn();
    sync();
    t.push_back(now_s() - t0);
  }
  return t;
}

// One warm-up of each, then `repeats` rounds that run every function once in turn; returns each one's
// median in seconds. Interleaving keeps a baseline and the variants it is compared with under the same
// load on a shared, noisy machine. `sync` waits for the device.
inline std::vector<double> time_interleaved(int repeats, const std::vector<std::function<void()>>& fns,
                                            const std::function<void()>& sync = no_sync) {
  for (auto& f : fns) f(), sync();
  std::vector<std::vector<double>> t(fns.size());
  for (int r = 0; r < repeats; ++r)
    for (size_t i = 0; i < fns.size(); ++i) {
      const double t0 = now_s();
      fns[i]();
      sync();
      t[i].push_back(now_s() - t0);
    }
  std::vector<double> med;
  for (auto& v : t) med.push_back(median(v));
  return med;
}

inline double time_median(int repeats, const std::function<void()>& fn, const std::function<void()>& sync = no_sync) {
  return time_interleaved(repeats, {fn}, sync)[0];
}

#ifdef FN_WITH_CUDA
// `warmup` untimed runs, then `repeats` runs timed by CUDA events on the engine's stream; each in ms.
// One launch between two events measures the host's launch latency (several microseconds) as much as the
// kernel; a function shorter than 0.1 ms is therefore timed as a batch of back-to-back calls (enough for about
// 0.2 ms, at most 100), and each timed run is that batch's time divided by its length.
inline std::vector<double> time_cuda_ms(int warmup, int repeats, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  cudaEvent_t a, b;
  CUDA_CHECK(cudaEventCreate(&a));
  CUDA_CHECK(cudaEventCreate(&b));
  auto span = [&](int inner) {
    CUDA_CHECK(cudaEventRecord(a, fn::cuda::stream()));
    for (int k = 0; k < inner; ++k) fn();
    CUDA_CHECK(cudaEventRecord(b, fn::cuda::stream()));
    CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    return double(t) / inner;
  };
  const double probe = span(1);
  const int inner = probe < 0.1 ? std::min(100, int(std::ceil(0.2 / std::max(probe, 0.002)))) : 1;
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) ms.push_back(span(inner));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms;
}

// The device's copy bandwidth, the yardstick of the memory-bound kernels: a 256 MiB device-to-device copy,
// bytes read plus bytes written per second, in GB/s (median of `repeats` after 2 warm-up copies).
inline double device_copy_gbytes_per_s(int repeats) {
  const size_t bytes = size_t(256) << 20;
  void *src = nullptr, *dst = nullptr;
  CUDA_CHECK(cudaMalloc(&src, bytes));
  CUDA_CHECK(cudaMalloc(&dst, bytes));
  const double ms = median(time_cuda_ms(2, repeats, [&] {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, fn::cuda::stream()));
  }));
  CUDA_CHECK(cudaFree(src));
  CUDA_CHECK(cudaFree(dst));
  return 2.0 * double(bytes) / (ms * 1e6);
}
#endif

inline std::string utc_now() {
  std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

inline std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

inline std::string host_name() {
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  return host;
}

// The 1-minute load average, -1 where /proc/loadavg cannot be read: how busy a shared machine was.
inline double load_average() {
  double l = -1;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1;
    std::fclose(f);
  }
  return l;
}

// The header of every benchmark's JSON: when, at which commit, on what. `device` is the benchmark's
// --device ("cpu" or "cuda"); for "cuda" with a device present, device_name describes the GPU.
inline nlohmann::json machine_json(const std::string& device) {
  nlohmann::json j = {{"date", utc_now()},
                      {"commit", fn::build_commit()},
                      {"machine",
                       {{"cpu", cpu_model()},
                        {"hardware_threads", std::thread::hardware_concurrency()},
                        {"host", host_name()}}}};
  if (device == "cuda" && fn::cuda_available()) j["device_name"] = fn::device_description(fn::Device::CUDA);
  return j;
}

// Writes `j` to `path` (nothing for an empty path); says so on stdout when `announce`. False if the file
// cannot be written (the reason on stderr).
inline bool write_json(const std::string& path, const nlohmann::json& j, bool announce = true) {
  if (path.empty()) return true;
  std::ofstream f(path);
  if (f) f << j.dump(2) << "\n";
  if (!f) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  if (announce) std::printf("wrote %s\n", path.c_str());
  return true;
}

// The options of every kernel benchmark. `repeats` keeps the benchmark's default.
struct Options {
  std::string device = "cpu", json_path;
  bool quick = false;
  int repeats = 0;
  // --repeats when given, else the benchmark's default for --quick or a full run.
  int repeats_or(int quick_default, int full_default) const {
    return repeats > 0 ? repeats : quick ? quick_default : full_default;
  }
};

inline void add_options(CLI::App& app, Options& o, const std::string& repeats_help) {
  app.add_option("--device", o.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  app.add_option("--json", o.json_path, "write the results as JSON to this file");
  app.add_option("--repeats", o.repeats, repeats_help);
  app.add_flag("--quick", o.quick, "small sizes: a smoke run for CI");
}

// For --device cuda where no device answers (or the build has no CUDA): prints "SKIPPED: ..." (ctest reports
// the run skipped), sets out["status"] = "skipped" and out["reason"], writes the JSON and returns true; the
// benchmark then exits 0 with no figures. False otherwise.
inline bool skip_without_cuda(const std::string& benchmark, const std::string& device, nlohmann::json& out,
                              const std::string& json_path) {
  if (device != "cuda" || fn::cuda_available()) return false;
  const char* reason = fn::cuda_compiled() ? "no CUDA device present" : "built without CUDA";
  std::printf("SKIPPED: %s --device cuda: %s; no GPU figures recorded\n", benchmark.c_str(), reason);
  out["status"] = "skipped";
  out["reason"] = reason;
  write_json(json_path, out);
  return true;
}

}  // namespace fn::bench
