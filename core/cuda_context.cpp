#ifdef FN_WITH_CUDA
#include "core/cuda_context.h"

#include <mutex>

#include "core/allocator.h"
#include "core/cuda_check.h"

namespace fn::cuda {

namespace {
// RAII owner of the handles; lives for the whole process.
struct Context {
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  cudnnHandle_t cudnn = nullptr;
  void* ws = nullptr;
  size_t ws_bytes = 0;
  int sms = 0;
  Context() {
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&cublas));
    CUBLAS_CHECK(cublasSetStream(cublas, stream));
    // Tests compare with the CPU in fp32: no TF32 unless a benchmark asks for it explicitly.
    CUBLAS_CHECK(cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH));
    CUDNN_CHECK(cudnnCreate(&cudnn));
    CUDNN_CHECK(cudnnSetStream(cudnn, stream));
    int dev = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  }
  ~Context() {
    if (ws) device_free(Device::CUDA, ws, ws_bytes);
    cudnnDestroy(cudnn);
    cublasDestroy(cublas);
    cudaStreamDestroy(stream);
  }
};
Context& ctx() {
  static Context c;
  return c;
}
std::mutex ws_mu;
}  // namespace

cudaStream_t stream() { return ctx().stream; }
cublasHandle_t cublas() { return ctx().cublas; }
cudnnHandle_t cudnn() { return ctx().cudnn; }
int sm_count() { return ctx().sms; }
void synchronize() { CUDA_CHECK(cudaStreamSynchronize(ctx().stream)); }

void* workspace(size_t bytes) {
  std::lock_guard<std::mutex> lk(ws_mu);
  Context& c = ctx();
  if (bytes > c.ws_bytes) {
    if (c.ws) {
      synchronize();  // the old buffer may still be in use by queued work
      device_free(Device::CUDA, c.ws, c.ws_bytes);
    }
    c.ws = device_alloc(Device::CUDA, bytes);
    c.ws_bytes = bytes;
  }
  return c.ws;
}

}  // namespace fn::cuda
#endif
