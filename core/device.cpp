#include "core/device.h"

#include <thread>

#include "core/error.h"
#ifdef FN_WITH_CUDA
#include <cuda_runtime.h>

#include <cstring>

#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

namespace fn {

bool cuda_compiled() {
#ifdef FN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

bool cuda_available() {
#ifdef FN_WITH_CUDA
  static const bool ok = [] {
    int n = 0;  // without a driver the call fails (error 35) and leaves n untouched
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return n > 0;
  }();
  return ok;
#else
  return false;
#endif
}

bool cuda_simulated() {
#ifdef FN_CUDA_SIM
  return true;
#else
  return false;
#endif
}

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::CPU;
  if (s == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
  if (s == "cuda") {
    FN_EXPECT(cuda_compiled(), "--device cuda: this build has no CUDA (nvcc was not found at configure time)");
    FN_EXPECT(cuda_available(), "--device cuda: no CUDA device is present");
    return Device::CUDA;
  }
  FN_USER_FAIL("--device: unknown device '", s, "' (expected auto, cpu or cuda)");
}

std::string device_description(Device d) {
  if (d == Device::CPU) return cat("cpu (", std::thread::hardware_concurrency(), " threads)");
#ifdef FN_WITH_CUDA
  cudaDeviceProp p;
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  CUDA_CHECK(cudaGetDeviceProperties(&p, dev));
  return cat(p.name, " (sm_", p.major, p.minor, ", ", p.totalGlobalMem >> 20, " MiB)");
#else
  return "cuda (not compiled)";
#endif
}

}  // namespace fn
