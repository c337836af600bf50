// Concatenation along one dimension, and its backward (the split). A tensor of shape (A, B_i, Z) seen as
// `outer` = A rows of `B_i * Z` contiguous elements: input i lands in columns [off_i, off_i + B_i*Z) of each
// row of the (A, sum_i B_i * Z) output. On CUDA each piece is one strided 2-D copy (cudaMemcpy2DAsync).
#pragma once
#include <vector>

#include "core/tensor.h"

namespace fn::kernels {

// Copies `rows` rows of `cols` elements between row-major buffers with different row strides.
void copy_rows(const Tensor& src, int64_t src_offset, int64_t src_stride, Tensor& dst, int64_t dst_offset,
               int64_t dst_stride, int64_t rows, int64_t cols);

}  // namespace fn::kernels
