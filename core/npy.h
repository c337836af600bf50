// NumPy .npy files holding one 2-D float32 matrix (little-endian '<f4', C order): the format embeddings are
// exchanged in, so that numpy, FAISS and our tools read the same bytes.
//
// Writing always produces format version 1.0 (header padded so the data starts on a 64-byte boundary, as
// numpy does). Reading accepts versions 1.0 and 2.0 (2.0 only widens the header-length field) and refuses,
// with a message naming the file, anything else: bad magic, other versions, other dtypes ('<f8', '>f4', ...),
// fortran_order True, shapes that are not 2-D, malformed header dictionaries, and data shorter or longer
// than the shape says.
#pragma once
#include <cstdint>
#include <string>

#include "core/tensor.h"

namespace fn::npy {

// Writes rows x cols floats (C order, row stride cols) to `path`.
void write_f32(const std::string& path, const float* data, int64_t rows, int64_t cols);
// Writes a 2-D float32 tensor (CPU or CUDA; copied to the host first).
void write_f32(const std::string& path, const Tensor& t);

// Reads a 2-D float32 matrix into a CPU tensor of shape (rows, cols). When expect_cols >= 0 the file must
// have that many columns (a shape mismatch names the file and both sizes).
Tensor read_f32(const std::string& path, int64_t expect_cols = -1);

// The parsed header, exposed for tests and for tools that want the shape without the data.
struct Header {
  int major = 1, minor = 0;
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes from the start of the file to the first element
};
Header read_header(const std::string& path);

}  // namespace fn::npy
