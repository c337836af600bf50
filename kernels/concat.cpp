#include "kernels/concat.h"

#include <cstring>

#ifdef FN_WITH_CUDA
#include "core/cuda_check.h"
#include "core/cuda_context.h"
#endif

namespace fn::kernels {

void copy_rows(const Tensor& src, int64_t so, int64_t ss, Tensor& dst, int64_t d_o, int64_t ds, int64_t rows,
               int64_t cols) {
  check_same_device("copy_rows", src, dst);
  FN_CHECK(src.dtype() == dst.dtype(), "copy_rows: dtypes differ");
  FN_CHECK(so + (rows - 1) * ss + cols <= src.numel() || rows == 0, "copy_rows: source range out of bounds");
  FN_CHECK(d_o + (rows - 1) * ds + cols <= dst.numel() || rows == 0, "copy_rows: destination range out of bounds");
  size_t es = dtype_size(src.dtype());
  const char* s = static_cast<const char*>(src.raw()) + so * es;
  char* d = static_cast<char*>(dst.raw()) + d_o * es;
  if (rows == 0 || cols == 0) return;
  if (src.is_cuda()) {
#ifdef FN_WITH_CUDA
    CUDA_CHECK(cudaMemcpy2DAsync(d, ds * es, s, ss * es, cols * es, rows, cudaMemcpyDeviceToDevice,
                                 cuda::stream()));
    return;
#endif
  }
  for (int64_t r = 0; r < rows; ++r) std::memcpy(d + r * ds * es, s + r * ss * es, cols * es);
}

}  // namespace fn::kernels
