// cudasim itself (docs/cudasim.md): that it runs kernels as CUDA defines them (barriers, shuffles, shared
// memory, the launch's limits and errors) and that it stops on what a GPU would hang or fail on. Built
// everywhere; outside a SIM build every case reports skipped.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#ifdef FN_CUDA_SIM
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include "sim/cuda_sim.h"
#include "sim/sim_state.h"
#include "core/allocator.h"
#include "kernels/block_reduce.cuh"

namespace {

using fn::kernels::cuda::block_reduce;
using fn::kernels::cuda::ReduceSum;
using fn::kernels::cuda::warp_reduce;

constexpr int kN = 256;

// out[t] = the value thread t + 1 wrote, read after a barrier (or, with `sync` false, without one: a race).
__global__ void rotate(const float* in, float* out, bool sync) {
  __shared__ float s[kN];
  const int t = threadIdx.x;
  s[t] = in[t] * 2.f;
  if (sync) __syncthreads();
  out[t] = s[(t + 1) % kN];
}

__global__ void block_sum(const float* in, float* out) {
  const float v = block_reduce<kN, ReduceSum>(in[blockIdx.x * kN + threadIdx.x]);
  if (threadIdx.x == 0) out[blockIdx.x] = v;
}

__global__ void warp_sum(const double* in, double* out) {
  out[threadIdx.x] = warp_reduce<ReduceSum>(in[threadIdx.x]);
}

__global__ void coords(int* out) {
  const int t = (threadIdx.z * blockDim.y + threadIdx.y) * blockDim.x + threadIdx.x;
  const int b = blockIdx.y * gridDim.x + blockIdx.x;
  out[b * blockDim.x * blockDim.y * blockDim.z + t] = b * 1000 + t;
}

// (A .cu file writes `extern __shared__ float sm[];`, which sim/rewrite_cu.py turns into this line.)
__global__ void read_dynamic(float* out) {
  float* sm = static_cast<float*>(::fnsim::dynamic_shared());
  out[threadIdx.x] = sm[threadIdx.x];
}

__global__ void divergent_barrier(float* out) {
  if (threadIdx.x < 16) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 1);
  } else {
    __syncthreads();
  }
}

__global__ void misaligned_float4(const float* in, float* out) {
  const float4 v = *reinterpret_cast<const float4*>(in + 1);  // 4 bytes past a 256-byte boundary
  out[0] = v.x + v.y + v.z + v.w;
}

__global__ void shuffle_past_the_block(float* out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, 1.f, 16); }

__global__ void read_at(const float* in, int i, float* out) { out[0] = in[i]; }
__global__ void read_dynamic_at(int i, float* out) {
  out[0] = static_cast<const float*>(::fnsim::dynamic_shared())[i];
}

template <class T>
T* device(const std::vector<T>& host) {
  void* p = nullptr;
  REQUIRE(cudaMalloc(&p, host.size() * sizeof(T)) == cudaSuccess);
  REQUIRE(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  return static_cast<T*>(p);
}
template <class T>
std::vector<T> host(const T* p, size_t n) {
  std::vector<T> h(n);
  REQUIRE(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
  return h;
}

// Each call rotates other values (base), so that a read of what the previous launch left in shared memory
// shows.
std::vector<float> run_rotate(bool sync, bool reverse, float base) {
  std::vector<float> in(kN);
  for (int i = 0; i < kN; ++i) in[i] = base + float(i);
  float* din = device(in);
  float* dout = device(std::vector<float>(kN, 0.f));
  const bool was = ::fnsim::reverse_order();
  ::fnsim::set_reverse_order(reverse);
  ::fnsim::launch(rotate, 1, kN)(din, dout, sync);
  ::fnsim::set_reverse_order(was);
  std::vector<float> out = host(dout, kN);
  cudaFree(din);
  cudaFree(dout);
  return out;
}

// Runs f in a child process; returns what it wrote to stderr, and whether it failed (a signal or an exit
// status other than 0).
std::string in_child(void (*f)(), bool& failed) {
  int fd[2];
  REQUIRE(pipe(fd) == 0);
  std::fflush(stdout);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGABRT, SIG_DFL);  // the test framework's handler would report a failure from the child
    close(fd[0]);
    dup2(fd[1], 2);
    f();
    _exit(0);
  }
  close(fd[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = read(fd[0], buf, sizeof buf)) > 0;) err.append(buf, size_t(n));
  close(fd[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  failed = WIFSIGNALED(status) || WEXITSTATUS(status) != 0;
  return err;
}

}  // namespace

TEST_CASE("cudasim: __syncthreads orders shared memory; without it the order of threads shows the race") {
  auto want = [](float base) {
    std::vector<float> w(kN);
    for (int t = 0; t < kN; ++t) w[t] = (base + float((t + 1) % kN)) * 2.f;
    return w;
  };
  REQUIRE(run_rotate(true, false, 0.f) == want(0.f));
  REQUIRE(run_rotate(true, true, 1000.f) == want(1000.f));
  // Without the barrier, first to last: thread t < 255 reads s[t + 1] before thread t + 1 writes it, so it
  // gets what the previous launch (base 1000) left there; last to first: thread 255 reads s[0] before
  // thread 0 writes it. Either order gives a wrong result, each its own: how FNSIM_ORDER=reverse exposes a
  // missing barrier.
  const std::vector<float> forward = run_rotate(false, false, 2000.f);
  REQUIRE(forward != want(2000.f));
  for (int t = 0; t + 1 < kN; ++t) REQUIRE(forward[t] == want(1000.f)[t]);
  const std::vector<float> reverse = run_rotate(false, true, 3000.f), w3 = want(3000.f);
  REQUIRE(reverse != w3);
  REQUIRE(reverse[kN - 1] == want(2000.f)[kN - 1]);
  for (int t = 0; t + 1 < kN; ++t) REQUIRE(reverse[t] == w3[t]);
}

TEST_CASE("cudasim: block and warp reductions, several blocks, 2-D grids and 3-D blocks") {
  const int blocks = 5;
  std::vector<float> in(blocks * kN);
  for (size_t i = 0; i < in.size(); ++i) in[i] = float(i % 7) - 3.f;
  float* din = device(in);
  float* dout = device(std::vector<float>(blocks, -1.f));
  ::fnsim::launch(block_sum, blocks, kN)(din, dout);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  const std::vector<float> got = host(dout, blocks);
  for (int b = 0; b < blocks; ++b) {
    double s = 0;
    for (int t = 0; t < kN; ++t) s += in[b * kN + t];
    REQUIRE(got[b] == float(s));
  }

  std::vector<double> w(32);
  for (int i = 0; i < 32; ++i) w[i] = 0.5 * i;
  double* dw = device(w);
  double* dws = device(std::vector<double>(32, 0.0));
  ::fnsim::launch(warp_sum, 1, 32)(dw, dws);
  for (double v : host(dws, 32)) REQUIRE(v == 248.0);  // 0.5 * (0 + ... + 31), on every lane

  const dim3 grid(3, 2), block(4, 2, 3);
  int* dc = device(std::vector<int>(6 * 24, -1));
  ::fnsim::launch(coords, grid, block)(dc);
  const std::vector<int> c = host(dc, 6 * 24);
  for (int b = 0; b < 6; ++b)
    for (int t = 0; t < 24; ++t) REQUIRE(c[b * 24 + t] == b * 1000 + t);
  for (void* p : {static_cast<void*>(din), static_cast<void*>(dout), static_cast<void*>(dw),
                  static_cast<void*>(dws), static_cast<void*>(dc)})
    cudaFree(p);
}

TEST_CASE("cudasim: what CUDA refuses is refused (launch limits, copies of the wrong side, frees)") {
  cudaGetLastError();
  float* d = device(std::vector<float>(8, 0.f));  // 32 bytes
  const uint64_t before = ::fnsim::launches();
  ::fnsim::launch(warp_sum, 1, 2048)(nullptr, nullptr);  // more than 1024 threads
  REQUIRE(cudaGetLastError() == cudaErrorInvalidConfiguration);
  ::fnsim::launch(warp_sum, dim3(1, 70000), 32)(nullptr, nullptr);  // gridDim.y > 65535
  REQUIRE(cudaGetLastError() == cudaErrorInvalidConfiguration);
  ::fnsim::launch(warp_sum, 1, 32, 64 * 1024)(nullptr, nullptr);  // 64 KiB of dynamic shared memory
  REQUIRE(cudaGetLastError() == cudaErrorInvalidValue);
  REQUIRE(::fnsim::launches() == before);  // none of them ran
  REQUIRE(cudaGetLastError() == cudaSuccess);  // read once, then cleared

  std::vector<float> h(128, 1.f);
  REQUIRE(cudaMemcpy(h.data(), d, 32, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // dst on the host
  REQUIRE(cudaMemcpy(d, h.data(), 512, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);  // past the block
  REQUIRE(cudaMemcpy(d, h.data(), 32, cudaMemcpyHostToDevice) == cudaSuccess);
  cudaGetLastError();
  REQUIRE(cudaFree(h.data()) == cudaErrorInvalidValue);
  cudaGetLastError();
  REQUIRE(cudaFree(d) == cudaSuccess);
}

TEST_CASE("cudasim: unwritten device and dynamic shared memory read as NaN") {
  cudaGetLastError();
  float* d = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float)) == cudaSuccess);
  for (float v : host(d, 64)) REQUIRE(v != v);
  ::fnsim::launch(read_dynamic, 1, 64, 64 * sizeof(float))(d);
  REQUIRE(cudaGetLastError() == cudaSuccess);
  for (float v : host(d, 64)) REQUIRE(v != v);
  cudaFree(d);
}

TEST_CASE("cudasim: a barrier in a divergent branch, or a shuffle from a lane that is not there, stops the run") {
  bool failed = false;
  std::string err = in_child(
      [] {
        float* d = nullptr;
        cudaMalloc(reinterpret_cast<void**>(&d), 32 * sizeof(float));
        ::fnsim::launch(divergent_barrier, 1, 32)(d);
      },
      failed);
  REQUIRE(failed);
  REQUIRE_THAT(err, Catch::Contains("warp shuffle while others wait at __syncthreads") &&
                        Catch::Contains("the kernel launched at") && Catch::Contains("test_cudasim.cpp:"));

  err = in_child(
      [] {
        float* d = nullptr;
        cudaMalloc(reinterpret_cast<void**>(&d), 48 * sizeof(float));
        ::fnsim::launch(shuffle_past_the_block, 1, 48)(d);  // the second warp has 16 lanes: 16 ^ 16 = 0 is
      },                                                     // there, 0 ^ 16 = 16 is not
      failed);
  REQUIRE(failed);
  // (lane 16 first to last; last to first, lane 15 reading lane 31 stops it first)
  REQUIRE_THAT(err, Catch::Contains("in a shuffle, and that lane has returned or does not exist"));
}

TEST_CASE("cudasim: a float4 load from an address that is not 16-byte aligned stops the run, as it faults on a GPU") {
  bool failed = false;
  const std::string err = in_child(
      [] {
        float* d = nullptr;
        cudaMalloc(reinterpret_cast<void**>(&d), 64 * sizeof(float));
        ::fnsim::launch(misaligned_float4, 1, 1)(d, d + 32);
      },
      failed);
  REQUIRE(failed);
  REQUIRE_THAT(err, Catch::Contains("misaligned address") && Catch::Contains("float4"));
}

TEST_CASE("cudasim: a kernel given a host pointer does not run; the error names the launch's line") {
  cudaGetLastError();
  static std::vector<float> h(4, 1.f);
  float* d = device(std::vector<float>(4, 0.f));
  const uint64_t before = ::fnsim::launches();
  ::fnsim::launch(read_at, 1, 1)(d, 0, d);  // device pointers: it runs
  REQUIRE(cudaGetLastError() == cudaSuccess);
  ::fnsim::launch(read_at, 1, 1)(h.data(), 0, d);
  REQUIRE(cudaGetLastError() == cudaErrorIllegalAddress);
  REQUIRE(::fnsim::launches() == before + 1);
  bool failed = false;
  const std::string err = in_child([] { ::fnsim::launch(read_at, 1, 1)(h.data(), 0, nullptr); }, failed);
  REQUIRE_THAT(err, Catch::Contains("cudaErrorIllegalAddress") && Catch::Contains("test_cudasim.cpp:") &&
                        Catch::Contains("host pointer as argument 0"));
  cudaFree(d);
}

// The engine's tensors come from its caching allocator (core/allocator.cpp), which rounds sizes up and keeps
// freed blocks: AddressSanitizer sees through it because the allocator poisons the rounding and its cache.
TEST_CASE("cudasim: a kernel reading past its tensor, a freed tensor, or past dynamic shared memory stops the run") {
  using fn::Device;
  float* out = nullptr;
  REQUIRE(cudaMalloc(reinterpret_cast<void**>(&out), sizeof(float)) == cudaSuccess);
  float* t = static_cast<float*>(fn::device_alloc(Device::CUDA, 10 * sizeof(float)));  // in a 256-byte block
  ::fnsim::launch(read_at, 1, 1)(t, 9, out);  // the last float: allowed
  REQUIRE(cudaGetLastError() == cudaSuccess);
  fn::device_free(Device::CUDA, t, 10 * sizeof(float));

  struct Case {
    void (*run)();
    const char* report;
  };
  static float* s_out;
  s_out = out;
  const Case cases[] = {
      {[] {  // one float past the tensor, inside the allocator's rounding
         auto* p = static_cast<float*>(fn::device_alloc(Device::CUDA, 10 * sizeof(float)));
         ::fnsim::launch(read_at, 1, 1)(p, 10, s_out);
       },
       "use-after-poison"},
      {[] {  // a tensor given back to the allocator's cache
         auto* p = static_cast<float*>(fn::device_alloc(Device::CUDA, 10 * sizeof(float)));
         fn::device_free(Device::CUDA, p, 10 * sizeof(float));
         ::fnsim::launch(read_at, 1, 1)(p, 0, s_out);
       },
       "use-after-poison"},
      {[] {  // past cudaMalloc's bytes
         float* p = nullptr;
         cudaMalloc(reinterpret_cast<void**>(&p), 10 * sizeof(float));
         ::fnsim::launch(read_at, 1, 1)(p, 10, s_out);
       },
       "heap-buffer-overflow"},
      {[] { ::fnsim::launch(read_dynamic_at, 1, 1, 16 * sizeof(float))(16, s_out); },  // past the launch's bytes
       "heap-buffer-overflow"},
  };
  for (const Case& c : cases) {
    bool failed = false;
    const std::string err = in_child(c.run, failed);
    INFO(err);
    REQUIRE(failed);
    REQUIRE_THAT(err, Catch::Contains("AddressSanitizer") && Catch::Contains(c.report) &&
                          Catch::Contains("READ of size 4") && Catch::Contains("read_"));
  }
  cudaFree(out);
}

#else

TEST_CASE("cudasim: the simulator's own tests (a FN_CUDA=SIM build)") {
  std::printf("SKIPPED: not a cudasim build (./build.sh cudasim)\n");
}

#endif
