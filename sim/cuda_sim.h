// cudasim, the device side: what a .cu file needs from nvcc when g++ compiles it instead (FN_CUDA=SIM,
// docs/cudasim.md). Force-included (-include) before every .cu file of a SIM build, after
// sim/rewrite_cu.py has turned `kernel<<<grid, block, smem, stream>>>(args)` into
// `::fnsim::launch(kernel, grid, block, smem, stream)(args)` and `extern __shared__ T name[];` into a pointer
// to the launch's dynamic shared memory.
//
// The model: a kernel launch runs its blocks one after another on the calling thread; a block's threads are
// fibers (sim/scheduler.cpp) that run in turn, each until it reaches a barrier (__syncthreads, or the implicit
// one inside a warp shuffle) or returns. So shared memory is a plain static (one block lives at a time),
// atomics are plain read-modify-writes, and the order in which threads run between two barriers can be
// reversed (FNSIM_ORDER=reverse) to expose a missing barrier as a different result.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

// The qualifiers: g++ sees plain C++ (cuda's host_defines.h already empties __global__, __device__, __host__).
#undef __shared__
#define __shared__ static

namespace fnsim {

// The running thread's coordinates, set by the scheduler before it switches to a fiber.
struct Coords {
  uint3 thread, block;
  dim3 block_dim, grid_dim;
};
extern Coords g_coords;

// Type-erased kernel body: the scheduler calls run(arg) once per thread.
struct Body {
  void (*run)(void*);
  void* arg;
};

// Where a launch is written (the .cu file's line: sim/rewrite_cu.py keeps them), for the messages.
struct Site {
  const char* file;
  int line;
};

// Validates the configuration (CUDA's limits), then runs every block; a bad configuration is recorded as the
// launch's error, which cudaGetLastError returns, and nothing runs.
void run_grid(dim3 grid, dim3 block, size_t dynamic_smem, cudaStream_t stream, Body body, Site site);

// Whether [p, p + bytes) lies inside one live cudaMalloc allocation.
bool on_device(const void* p, size_t bytes);
// Records that argument `index` of the launch at `site` is a host pointer (cudaErrorIllegalAddress).
void host_pointer_argument(Site site, int index);

// A kernel's pointer argument must be device memory or null: a GPU faults on a host pointer.
template <class T>
bool device_or_null(const T& v, int index, Site site) {
  if constexpr (std::is_pointer_v<T>) {
    if (v && !on_device(v, 1)) {
      host_pointer_argument(site, index);
      return false;
    }
  }
  return true;
}

void syncthreads();
// The 32-bit or 64-bit value of lane (lane_id ^ lane_mask) of the caller's warp; every live lane must call it.
uint64_t shfl_xor_bits(uint64_t bits, int lane_mask);
void* dynamic_shared();

template <class... P>
struct Launch {
  void (*kernel)(P...);
  dim3 grid, block;
  size_t smem;
  cudaStream_t stream;
  Site site;

  template <class... A>
  void operator()(A&&... a) const {
    static_assert(sizeof...(A) == sizeof...(P), "cudasim: a kernel called with the wrong number of arguments");
    struct Bound {
      void (*kernel)(P...);
      std::tuple<std::decay_t<P>...> args;
    } bound{kernel, std::tuple<std::decay_t<P>...>(static_cast<std::decay_t<P>>(std::forward<A>(a))...)};
    // Every thread gets its own copy of the arguments, as each CUDA thread reads its own parameters.
    Body body{[](void* p) {
                auto* b = static_cast<Bound*>(p);
                std::tuple<std::decay_t<P>...> copy = b->args;
                std::apply(b->kernel, copy);
              },
              &bound};
    int index = 0;
    bool ok = true;
    std::apply([&](const auto&... v) { ((ok = device_or_null(v, index++, site) && ok), ...); }, bound.args);
    if (ok) run_grid(grid, block, smem, stream, body, site);
  }
};

// The file and line default to the caller's: the `<<<...>>>` line of the .cu file.
template <class... P>
Launch<P...> launch(void (*kernel)(P...), dim3 grid, dim3 block, size_t smem = 0, cudaStream_t stream = nullptr,
                    const char* file = __builtin_FILE(), int line = __builtin_LINE()) {
  return Launch<P...>{kernel, grid, block, smem, stream, Site{file, line}};
}

}  // namespace fnsim

#define threadIdx (::fnsim::g_coords.thread)
#define blockIdx (::fnsim::g_coords.block)
#define blockDim (::fnsim::g_coords.block_dim)
#define gridDim (::fnsim::g_coords.grid_dim)

inline void __syncthreads() { ::fnsim::syncthreads(); }

template <class T>
inline T __shfl_xor_sync(unsigned /*mask: the full warp, as every caller here*/, T v, int lane_mask) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "cudasim: __shfl_xor_sync of a 4- or 8-byte value");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = ::fnsim::shfl_xor_bits(bits, lane_mask);
  T r;
  std::memcpy(&r, &bits, sizeof(T));
  return r;
}

template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline float __expf(float x) { return std::exp(x); }

// One thread runs at a time, so a read-modify-write is atomic.
inline float atomicAdd(float* p, float v) {
  const float old = *p;
  *p = old + v;
  return old;
}
inline double atomicAdd(double* p, double v) {
  const double old = *p;
  *p = old + v;
  return old;
}
