// Element types. Models run in float32; float64 exists so every op's gradient can be checked on the CPU
// by central differences. CUDA kernels take float32 only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace fn {

enum class DType : uint8_t { F32, F64 };

inline size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 8; }
inline const char* dtype_name(DType t) { return t == DType::F32 ? "float32" : "float64"; }

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };

}  // namespace fn

// FN_DISPATCH_CPU(dtype, T, body): runs body with T = float or double.
#define FN_DISPATCH_FLOAT(dt, T, ...)           \
  do {                                          \
    if ((dt) == ::fn::DType::F32) {             \
      using T = float;                          \
      __VA_ARGS__;                              \
    } else {                                    \
      using T = double;                         \
      __VA_ARGS__;                              \
    }                                           \
  } while (0)
