// FN_HD marks per-element kernel bodies that both the CPU loop and the CUDA grid run, so the CPU tests
// exercise the same indexing and arithmetic as the GPU.
#pragma once
#if defined(__CUDACC__)
#define FN_HD __host__ __device__ __forceinline__
#else
#define FN_HD inline
#endif
