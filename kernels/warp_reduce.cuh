// Warp-wide reductions by butterfly shuffles, for the one-warp-per-row kernels (softmax, softmax
// cross-entropy): every lane ends with the result. All 32 lanes must take part.
#pragma once

namespace fn::kernels::cuda {

__device__ inline float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ inline float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace fn::kernels::cuda
