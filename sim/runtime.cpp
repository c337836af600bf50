// cudasim's CUDA runtime: the calls the engine makes, on the CPU. "Device" memory is host memory that the
// runtime keeps a record of, so that a copy or a free given a pointer of the wrong side fails as it would on
// a GPU (cudaErrorInvalidValue, and a line saying which pointer). Every call runs at once: streams and events
// are handles that order nothing, and an event's time is the host clock when it was recorded.
// The device: one, named "cudasim (CPU)", reporting an H100's SM count (132) so that the kernels pick the
// launch geometries they pick there.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "sim/cuda_sim.h"
#include "sim/sim_state.h"

namespace fnsim {
namespace {

constexpr int kSmCount = 132;
constexpr size_t kAlign = 256;  // cudaMalloc's alignment

std::mutex g_mu;
cudaError_t g_last = cudaSuccess;
uint64_t g_launches = 0;
std::map<uintptr_t, size_t> g_allocs;  // start -> bytes

struct Event {
  std::chrono::steady_clock::time_point t;
};

}  // namespace

bool on_device(const void* p, size_t bytes) {
  std::lock_guard<std::mutex> lk(g_mu);
  const uintptr_t a = uintptr_t(p);
  auto it = g_allocs.upper_bound(a);
  if (it == g_allocs.begin()) return false;
  --it;
  return a >= it->first && a + bytes <= it->first + it->second;
}

namespace {

cudaError_t fail(cudaError_t e, const std::string& what) {
  set_error(e, what);
  return e;
}

cudaError_t check_copy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost) return cudaSuccess;
  if (dst_dev != on_device(dst, bytes))
    return fail(cudaErrorInvalidValue, std::string("a copy's destination is ") + (dst_dev ? "not " : "") +
                                           "device memory, against its kind");
  if (src_dev != on_device(src, bytes))
    return fail(cudaErrorInvalidValue, std::string("a copy's source is ") + (src_dev ? "not " : "") +
                                           "device memory, against its kind");
  return cudaSuccess;
}

}  // namespace

void set_error(cudaError_t e, const std::string& what) {
  std::fprintf(stderr, "cudasim: %s: %s\n", cudaGetErrorName(e), what.c_str());
  std::lock_guard<std::mutex> lk(g_mu);
  if (g_last == cudaSuccess) g_last = e;
}
void count_launch() {
  std::lock_guard<std::mutex> lk(g_mu);
  ++g_launches;
}
uint64_t launches() {
  std::lock_guard<std::mutex> lk(g_mu);
  return g_launches;
}

}  // namespace fnsim

using fnsim::fail;

cudaError_t cudaGetLastError() {
  std::lock_guard<std::mutex> lk(fnsim::g_mu);
  const cudaError_t e = fnsim::g_last;
  fnsim::g_last = cudaSuccess;
  return e;
}

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    default: return "cudaErrorUnknown";
  }
}
const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    default: return "unknown error (cudasim)";
  }
}

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  return d == 0 ? cudaSuccess : fail(cudaErrorInvalidDevice, "cudaSetDevice(" + std::to_string(d) + ")");
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int d) {
  if (d != 0) return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties of device " + std::to_string(d));
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "cudasim (CPU)");
  p->major = 9, p->minor = 0;
  p->totalGlobalMem = size_t(16) << 30;
  p->sharedMemPerBlock = 48 * 1024;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->multiProcessorCount = fnsim::kSmCount;
  return cudaSuccess;
}
cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr a, int d) {
  if (d != 0) return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute of device " + std::to_string(d));
  if (a == cudaDevAttrMultiProcessorCount) {
    *v = fnsim::kSmCount;
    return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute " + std::to_string(int(a)) +
                                         " is not simulated");
}
cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

// Exactly the bytes asked for (CUDA rounds up to 256 B): AddressSanitizer reports a read past them.
cudaError_t cudaMalloc(void** p, size_t bytes) {
  const size_t size = std::max<size_t>(bytes, 1);
  if (posix_memalign(p, fnsim::kAlign, size) != 0) {
    *p = nullptr;
    return fail(cudaErrorMemoryAllocation, "cudaMalloc of " + std::to_string(bytes) + " bytes");
  }
  std::memset(*p, 0xFF, size);  // unwritten device floats read as NaN
  std::lock_guard<std::mutex> lk(fnsim::g_mu);
  fnsim::g_allocs[uintptr_t(*p)] = size;
  return cudaSuccess;
}
cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  bool known;
  {
    std::lock_guard<std::mutex> lk(fnsim::g_mu);
    known = fnsim::g_allocs.erase(uintptr_t(p)) == 1;
  }
  if (!known) return fail(cudaErrorInvalidValue, "cudaFree of a pointer cudaMalloc did not return");
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (cudaError_t e = fnsim::check_copy(dst, src, bytes, kind)) return e;
  if (bytes) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemcpy2DAsync(void* dst, size_t dpitch, const void* src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind kind, cudaStream_t) {
  if (width > dpitch || width > spitch) return fail(cudaErrorInvalidValue, "cudaMemcpy2DAsync: width > pitch");
  for (size_t r = 0; r < height; ++r) {
    char* d = static_cast<char*>(dst) + r * dpitch;
    const char* s = static_cast<const char*>(src) + r * spitch;
    if (cudaError_t e = fnsim::check_copy(d, s, width, kind)) return e;
    std::memmove(d, s, width);
  }
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void* p, int v, size_t bytes, cudaStream_t) {
  if (bytes && !fnsim::on_device(p, bytes)) return fail(cudaErrorInvalidValue, "cudaMemsetAsync of host memory");
  std::memset(p, v, bytes);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  *s = reinterpret_cast<cudaStream_t>(new char(0));
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  delete reinterpret_cast<char*>(s);
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) { return cudaSuccess; }

cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(new fnsim::Event{std::chrono::steady_clock::now()});
  return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* e, unsigned) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  delete reinterpret_cast<fnsim::Event*>(e);
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  reinterpret_cast<fnsim::Event*>(e)->t = std::chrono::steady_clock::now();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  *ms = std::chrono::duration<float, std::milli>(reinterpret_cast<fnsim::Event*>(b)->t -
                                                 reinterpret_cast<fnsim::Event*>(a)->t)
            .count();
  return cudaSuccess;
}
