// Direct 3x3 convolution on the CPU (float32, AVX2 + FMA): the variant for VGG's thin early layers.
//
// Math: y[k,p,q] = b[k] + sum_{c<C, r<3, s<3} W[k,c,r,s] * x[c, p-1+r, q-1+s]   (stride 1, pad 1, x = 0
// outside the image), then ReLU when asked; one image at a time.
//
// Why: im2col + GEMM turns conv1_2 (16 -> 16 channels at 112x112) into a product with M = 16 rows, so
// every element of the 7 MB lowered matrix is written, packed and read again for only 16 multiply-adds:
// memory-bound at about 40% of the GEMM's rate. The direct loop reads each input pixel from L1 for all
// 9 taps and 4 filters in registers and never builds the lowered matrix.
//
// Layouts: x (C, H, W) and y (K, H, W) NCHW planes of one image; the filters re-ordered once per call to
// wt[(c*9 + r*3 + s) * K + k] (the 4 filters of a block side by side, for broadcasts); a scratch copy of
// x with a zero border, rows padded to Wp = round_up(W, 16) + 8 floats, so every load is in bounds and
// the inner loop has no tests.
//
// Register blocking (thread mapping on the CPU): one call computes a block of 4 output channels x 16
// columns of one output row in 8 ymm accumulators; per (c, r, s) it loads 2 vectors of x, broadcasts 4
// weights and issues 8 FMAs. Blocks run k-block-major, then rows, then columns. Images are spread over
// threads by conv2d.cpp's for_images like the GEMM path. Sums run in the fixed order c, r, s, so a run
// repeats bitwise; the order differs from the GEMM's, so the two agree to rounding, not bitwise.
#pragma once
#include <cstdint>

#include "kernels/im2col.h"

namespace fn::kernels {

// True where the direct kernel applies: a 3x3, stride 1, pad 1 convolution with K a multiple of 4, on a
// build with AVX2 and FMA.
bool conv3x3_direct_supported(const ConvGeom& g);
// True where conv2d's ConvAlgo::Auto picks it on the CPU: supported and thin (C * K <= 512: VGG16 at
// width 1/4, conv1_1, conv1_2, conv2_1 and the data gradients of conv1_2 and conv2_1), where it is
// measured faster than im2col + GEMM (docs/kernels/conv2d.md).
bool conv3x3_direct_preferred(const ConvGeom& g);

// The filters (K, C, 3, 3) re-ordered to wt[(c*9 + r*3 + s) * K + k]; wt holds K*C*9 floats.
void conv3x3_direct_pack_filters(const float* w, const ConvGeom& g, float* wt);
// Floats of the zero-bordered scratch copy of one image.
int64_t conv3x3_direct_scratch_floats(const ConvGeom& g);
// One image: y_n (K, H, W) = conv(x_n, wt) + b, then ReLU when `relu`; b may be null.
void conv3x3_direct_image(const float* xn, const float* wt, const float* b, float* yn, const ConvGeom& g, bool relu,
                          float* scratch);

}  // namespace fn::kernels
