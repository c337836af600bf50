// bench_allreduce: all-reduce bandwidth of the data-parallel layer (dist/, issue 20), as nccl-tests report
// it: algbw = bytes / time, busbw = algbw * 2(n-1)/n (the bytes each rank's link carries in a ring, so
// figures compare across job sizes). The time of a size is the slowest rank's median.
//
//   mpirun -np 2 bench_allreduce [--quick] [--min-bytes 4096] [--max-bytes 67108864] [--iters N] [--json F]
//
// Rows: "mpi" (MPI_Iallreduce + wait on host float buffers, the CPU path); "bucketer" (GradBucketer.finish()
// on a 64 MiB parameter set with 1, 4 and 25 MiB buckets: the cost of the copies in and out on top); and
// "nccl" (ncclAllReduce on device buffers, on the Communicator's NCCL stream) in builds with NCCL where a
// GPU answers; without one, that part says so and is not run. One rank alone measures the copies only.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "dist/bucketer.h"
#include "dist/comm_impl.h"
#ifdef FN_WITH_CUDA
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

using namespace fn;
using namespace fn::dist;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The slowest rank's median of `iters` timed runs (after `warmup`), each run started together (barrier).
template <class F>
double time_collective(Communicator& c, int warmup, int iters, F&& run) {
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    c.barrier();
    const double t0 = now_s();
    run();
    t.push_back(now_s() - t0);
  }
  std::sort(t.begin(), t.end());
  const double med = t[t.size() / 2];
  return double(c.allreduce_max(uint64_t(med * 1e9))) * 1e-9;
}

struct Row {
  std::string path;
  size_t bytes;
  double seconds;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"all-reduce bandwidth: MPI on the host, NCCL on a GPU (run under mpirun)"};
  bool quick = false;
  size_t min_bytes = 4096, max_bytes = size_t(64) << 20;
  int iters = 0;
  std::string json_path;
  app.add_flag("--quick", quick, "4 KiB to 256 KiB, few runs (the ctest smoke run)");
  app.add_option("--min-bytes", min_bytes, "smallest message (bytes)");
  app.add_option("--max-bytes", max_bytes, "largest message (bytes)");
  app.add_option("--iters", iters, "timed runs per size (default: from 20 for small messages to 5 for 64 MiB)");
  app.add_option("--json", json_path, "write the figures here (rank 0)");
  CLI11_PARSE(app, argc, argv);
  if (quick) max_bytes = std::min<size_t>(max_bytes, 256 << 10);

  CommOptions opt;
  opt.timeout_s = 600;
  Communicator comm(opt);
  const int n = comm.size();
  const bool root = comm.rank() == 0;
  const double bus_factor = n > 1 ? 2.0 * (n - 1) / n : 0.0;
  if (root) std::printf("bench_allreduce: %s, %d ranks\n", comm.describe().c_str(), n);
  std::vector<Row> rows;
  auto report = [&](const Row& r) {
    rows.push_back(r);
    if (!root) return;
    const double algbw = double(r.bytes) / r.seconds / 1e9;
    std::printf("  %-9s %11zu B  %10.1f us  algbw %8.3f GB/s  busbw %8.3f GB/s\n", r.path.c_str(), r.bytes,
                r.seconds * 1e6, algbw, algbw * bus_factor);
  };
  auto iters_for = [&](size_t bytes) {
    if (iters > 0) return iters;
    if (quick) return 3;
    return bytes >= (size_t(16) << 20) ? 5 : bytes >= (size_t(1) << 20) ? 10 : 20;
  };

  if (root)
    std::printf(n > 1 ? "MPI_Iallreduce (sum, float32, in place, host memory):\n"
                      : "MPI_Iallreduce: one rank, nothing to reduce (figures are the call's overhead):\n");
  for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
    std::vector<float> buf(bytes / 4, 1.0f);
    const double t = time_collective(comm, 2, iters_for(bytes), [&] { comm.allreduce_sum(buf.data(), int64_t(buf.size())); });
    report({"mpi", bytes, t});
  }

  if (!quick) {
    if (root) std::printf("GradBucketer.finish() on 64 MiB of gradients (16 tensors of 4 MiB, host):\n");
    std::vector<Tensor> ps;
    for (int i = 0; i < 16; ++i) {
      Tensor p = Tensor::zeros({1 << 20});
      p.set_requires_grad(true);
      p.set_grad(Tensor::full({1 << 20}, 1.0 + comm.rank()));
      ps.push_back(p);
    }
    for (size_t bucket : {size_t(1) << 20, size_t(4) << 20, kDefaultBucketBytes}) {
      GradBucketer b(comm, ps, bucket);
      const double t = time_collective(comm, 1, iters > 0 ? iters : 5, [&] { b.finish(); });
      report({cat("bucket", bucket >> 20, "M"), size_t(64) << 20, t});
    }
  }

#if defined(FN_HAVE_NCCL)
  if (cuda_available()) {
    // A second communicator on the GPU: its constructor takes the GPU by local rank and sets up NCCL.
    CommOptions gopt = opt;
    gopt.device = Device::CUDA;
    Communicator gcomm(gopt);
    Communicator::Impl& m = gcomm.impl();
    if (root) std::printf("ncclAllReduce (sum, float32, in place, device memory, %s):\n", gcomm.describe().c_str());
    for (size_t bytes = min_bytes; bytes <= max_bytes; bytes *= 4) {
      Tensor buf = Tensor::full({int64_t(bytes / 4)}, 1.0, DType::F32, Device::CUDA);
      fn::cuda::synchronize();
      const double t = time_collective(gcomm, 3, iters_for(bytes) * 2, [&] {
        FN_NCCL_CHECK(ncclAllReduce(buf.raw(), buf.raw(), bytes / 4, ncclFloat32, ncclSum, m.nccl, m.nccl_stream), m.nccl);
        CUDA_CHECK(cudaStreamSynchronize(m.nccl_stream));
      });
      report({"nccl", bytes, t});
    }
  } else if (root) {
    std::printf("ncclAllReduce: not run (no GPU answers here)\n");
  }
#else
  if (root) std::printf("ncclAllReduce: not run (this build has no NCCL: FN_NCCL needs CUDA)\n");
#endif

  if (root && !json_path.empty()) {
    nlohmann::json j;
    j["ranks"] = n;
    j["describe"] = comm.describe();
    j["busbw_factor"] = bus_factor;
    for (const Row& r : rows)
      j["rows"].push_back({{"path", r.path}, {"bytes", r.bytes}, {"seconds", r.seconds},
                           {"algbw_GBps", double(r.bytes) / r.seconds / 1e9},
                           {"busbw_GBps", double(r.bytes) / r.seconds / 1e9 * bus_factor}});
    std::ofstream(json_path) << j.dump(2) << "\n";
  }
  return 0;
}
