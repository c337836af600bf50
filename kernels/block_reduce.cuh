// Warp and block reductions: the one definition every kernel uses. Op is ReduceSum (a + b) or ReduceMax
// (fmaxf / fmax); T is float or double.
//   warp_reduce<Op>(v)            butterfly shuffles (xor 16, 8, 4, 2, 1) over the 32 lanes of a warp; every
//                                 lane ends with the result. All 32 lanes must call it (full mask).
//   block_reduce<kThreads, Op>(v) reduces v over a 1-D block of blockDim.x == kThreads threads and returns the
//                                 result to every thread. Requirements: kThreads a multiple of 32, at most 1024;
//                                 every thread of the block must call it (it holds __syncthreads: no thread may
//                                 have returned, and the call must not sit in a divergent branch). Consecutive
//                                 calls are safe (it syncs before returning).
// Order (fixed by kThreads alone, so results are deterministic): each thread stores v in a shared array s of
// kThreads; when kThreads is not a power of two, the threads below kThreads - P (P the largest power of two
// <= kThreads) first fold in s[t + P]; then a tree s[t] = op(s[t], s[t + w]) for w = P/2, P/4, ..., 32; then
// each warp runs warp_reduce on s[0..31]. For a power-of-two kThreads this is exactly the classic shared-memory
// tree (w = kThreads/2 down to 1), addition for addition. Since op is commutative, all lanes get the same bits.
#pragma once

namespace fn::kernels::cuda {

struct ReduceSum {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};

struct ReduceMax {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
  __device__ __forceinline__ double operator()(double a, double b) const { return fmax(a, b); }
};

template <class Op, class T>
__device__ __forceinline__ T warp_reduce(T v, Op op = Op()) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <int kThreads, class Op, class T>
__device__ __forceinline__ T block_reduce(T v, Op op = Op()) {
  static_assert(kThreads % 32 == 0 && kThreads >= 32 && kThreads <= 1024,
                "block_reduce: kThreads must be a multiple of 32, at most 1024");
  if constexpr (kThreads == 32) {
    return warp_reduce(v, op);
  } else {
    constexpr int kPow2 = kThreads >= 1024 ? 1024
                          : kThreads >= 512  ? 512
                          : kThreads >= 256  ? 256
                          : kThreads >= 128  ? 128
                                             : 64;  // the largest power of two <= kThreads
    __shared__ T s[kThreads];
    const int t = threadIdx.x;
    s[t] = v;
    __syncthreads();
    if constexpr (kPow2 < kThreads) {
      if (t < kThreads - kPow2) s[t] = op(s[t], s[t + kPow2]);
      __syncthreads();
    }
    for (int w = kPow2 / 2; w >= 32; w >>= 1) {
      if (t < w) s[t] = op(s[t], s[t + w]);
      __syncthreads();
    }
    const T r = warp_reduce(s[t & 31], op);
    __syncthreads();  // every warp has read s before a following call overwrites it
    return r;
  }
}

}  // namespace fn::kernels::cuda
