// Winograd F(2x2, 3x3) convolution on the CPU (float32 and float64): the variant for VGG's 3x3, stride-1
// layers that are too wide for the direct kernel, and for the thin layers' filter gradients.
//
// Math (Lavin & Gray 2016): cut the output into 2x2 tiles; each reads a 4x4 patch d of one input channel
// (x = 0 outside the image). With the fixed matrices
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
//   A^T = [1 1 1 0; 0 1 -1 -1],
// the tile of filter k is  Y = A^T [ sum_c (G g_kc G^T) .* (B^T d_c B) ] A.
// The 16 elementwise products, summed over c, are 16 independent GEMMs:
//   M[xi] (K, T) = U[xi] (K, C) * V[xi] (C, T),   xi = 4 a + b over the 4x4 transformed positions,
// with U = G g G^T (the filters, transformed once per call), V = B^T d B (the input, per tile) and T the
// tiles of the images in a chunk. A tile costs 16 multiply-adds per (k, c) against im2col + GEMM's 36:
// 2.25x fewer, paid for by the two transforms, which are O(C T) and O(K T) additions.
//
// Layouts: U[(xi * K + k) * C + c]; V[(xi * C + c) * T + t] and M[(xi * K + k) * T + t] with t = image *
// tiles_per_image + tile_row * pitch + tile_col, so each GEMM reads and writes plain row-major matrices.
// pitch = tiles_w + 1: each row of tiles has one spare column, so that the transforms are flat loops over
// t that vectorise. An input channel is split by row and column parity into four phase planes; each of
// the 16 values a tile reads is then one of them shifted by 0, 1, pitch or pitch + 1. The spare column's
// values ride through the GEMMs and are never written out (and are zero in the filter gradient's Z).
//
// Threads (mapping on the CPU): conv2d.cpp hands chunks of whole images to workers as it does images for
// im2col + GEMM; a chunk's 16 GEMMs use OpenBLAS on that worker's thread (or all threads when chunks run
// one at a time). Every sum runs in an order fixed by the shapes and the thread count, so a run repeats
// bitwise. The rounding differs from im2col + GEMM's (the transforms add and halve), so the two agree to
// rounding, not bitwise; the error against float64 is about the GEMM's (docs/kernels/conv2d.md).
#pragma once
#include <cstdint>

#include "kernels/im2col.h"

namespace fn::kernels {

// True where the Winograd kernel applies: 3x3 filters, stride 1, pad 0, 1 or 2.
bool conv3x3_winograd_supported(const ConvGeom& g);
// True where conv2d's ConvAlgo::Auto picks it on the CPU for the float32 forward (and the data gradient,
// which runs as a forward): supported, not thin enough for the direct kernel, at least 16 channels in
// and out, and maps large enough for the tiles to pay (not 7x7) (docs/kernels/conv2d.md).
bool conv3x3_winograd_preferred(const ConvGeom& g);
// The same for the filter gradient, which the direct kernel does not do: thin layers (conv1_2, conv2_1)
// take Winograd there too.
bool conv3x3_winograd_filter_grad_preferred(const ConvGeom& g);

// Images per chunk on `threads` threads: enough tiles for the GEMMs to run well, few enough for V and M
// to stay small, and a number of chunks that spreads evenly over the threads.
int64_t conv3x3_winograd_chunk_images(const ConvGeom& g, int threads);
// Scratch elements one worker needs for a chunk of `images` images: V then M.
int64_t conv3x3_winograd_scratch(const ConvGeom& g, int64_t images);
// U (16, K, C) = G g G^T for every filter g of w (K, C, 3, 3).
template <class T>
void conv3x3_winograd_filters(const T* w, const ConvGeom& g, T* U);
// `images` images from x (their first element), into y (likewise): y = conv(x) + b, then ReLU when
// `relu`; b may be null. scratch holds conv3x3_winograd_scratch(g, images) elements (as for the
// filter gradient below).
template <class T>
void conv3x3_winograd_images(const T* x, int64_t images, const T* U, const T* b, T* y, const ConvGeom& g, bool relu,
                             T* scratch);

// The filter gradient. Y = A^T (U .* V) A is linear in U, so dL/dU = sum over tiles of Z .* V with
// Z = A gy A^T, and dW = G^T (dL/dU) G: the same input transform and 16 GEMMs, dU[xi] (K, C) +=
// Z[xi] (K, T) * V[xi]^T (T, C). filter_grad_images adds one chunk of images into dU (16, K, C), which the
// caller zeroes first; filter_grad_finish then writes gw (K, C, 3, 3) = G^T dU G.
template <class T>
void conv3x3_winograd_filter_grad_images(const T* x, const T* gy, int64_t images, const ConvGeom& g, T* dU,
                                         T* scratch);
template <class T>
void conv3x3_winograd_filter_grad_finish(const T* dU, const ConvGeom& g, T* gw);

}  // namespace fn::kernels
