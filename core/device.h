// Where a tensor lives. `--device auto|cpu|cuda`: auto takes the GPU when one is present; asking for cuda
// where there is none (or where the build has no CUDA) is an error, never a quiet CPU fallback.
#pragma once
#include <string>

namespace fn {

enum class Device { CPU, CUDA };

bool cuda_compiled();   // built with nvcc
bool cuda_available();  // compiled and a device answers
bool cuda_simulated();  // the device is cudasim: the kernels run on the CPU (FN_CUDA=SIM, docs/cudasim.md)
Device parse_device(const std::string& s);  // "auto" | "cpu" | "cuda"
inline const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }
std::string device_description(Device d);  // e.g. "NVIDIA H100 80GB HBM3 (sm_90)" or "cpu (2 threads)"

}  // namespace fn
