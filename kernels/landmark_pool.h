// Landmark pooling (FashionNet's own layer, docs/fashionnet.md sec. 2): for each of L landmark slots, max-pool a
// (2r+1)x(2r+1) window of the feature map around the landmark, per channel.
//   features   (N, C, H, W), stride S relative to the network input (conv4_3: S = 8)
//   landmarks  (N, L, 2) x, y in input pixels;   visibility (N, L), 1 visible, 0 not
//   out        (N, L*C) slot-major: out[n, s*C + c]
//   argmax     int32 per output, the flat cell h*W + w in plane (n, c), -1 where the output is 0 (mode Zero)
// Rounding, clipping and the invisible-slot rule are in kernels/landmark_pool_body.h. All tensors share one
// device and dtype (float32, or float64 on the CPU). No gradient flows to the landmarks.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "kernels/landmark_pool_body.h"

namespace fn::kernels {

// int32 storage on one device (the Tensor is float only): the argmax the forward saves for the backward.
class Int32Buffer {
 public:
  Int32Buffer(Device d, int64_t n);
  ~Int32Buffer();
  Int32Buffer(const Int32Buffer&) = delete;
  Int32Buffer& operator=(const Int32Buffer&) = delete;
  int32_t* data() const { return ptr_; }
  int64_t size() const { return n_; }
  Device device() const { return device_; }
  std::vector<int32_t> to_host() const;

 private:
  Device device_;
  int64_t n_;
  int32_t* ptr_ = nullptr;
};

struct LandmarkPoolArgs {
  int stride = 8;  // feature cells per input pixel (conv4_3 of VGG16: 8)
  int radius = 1;  // window (2r+1) x (2r+1)
  LandmarkPoolMode mode = LandmarkPoolMode::Corner;
};

// Kernel versions, selectable by tests and benchmarks. Default = the fastest correct one.
//   forward   CPU: V1Naive (the shared body in output order), Default = plane order (the slots of one
//             (n, c) plane together, cache-friendly). CUDA: V1Naive (default: faster on the
//             H100), V2SlotBlock.
//   backward  CPU: Default = zero-fill + per-plane slot-order adds; Gather = one body call per cell (the
//             reference). CUDA: Gather, GatherPlane, GatherVec4 (GatherPlane where H*W is not a multiple
//             of 4), ZeroScatter (default: memset, then one thread per plane), AtomicScatter (benchmark only,
//             not reproducible when 3+ slots share a cell). All but AtomicScatter agree bitwise.
enum class LandmarkPoolForward { Default, V1Naive, V2SlotBlock };
enum class LandmarkPoolBackward { Default, Gather, GatherPlane, GatherVec4, ZeroScatter, AtomicScatter };

// out (N, L*C) and argmax (N*L*C entries) are written in full.
void landmark_pool_forward(const Tensor& features, const Tensor& landmarks, const Tensor& visibility,
                           const LandmarkPoolArgs& args, Tensor& out, Int32Buffer& argmax,
                           LandmarkPoolForward version = LandmarkPoolForward::Default);

// grad_features (N, C, H, W) is written in full (zeros where no output took its max).
void landmark_pool_backward(const Tensor& grad_out, const Int32Buffer& argmax, Tensor& grad_features,
                            LandmarkPoolBackward version = LandmarkPoolBackward::Default);

// The sparse backward: adds the output gradients into grad_features, which already holds the gradient of
// the map's other consumers (in FashionNet, pool4's). Per plane in slot order, so deterministic; over zeros
// it equals landmark_pool_backward bitwise. The autograd uses it when the gradient already exists.
void landmark_pool_backward_accumulate(const Tensor& grad_out, const Int32Buffer& argmax, Tensor& grad_features);

#ifdef FN_WITH_CUDA
namespace cuda {
void landmark_pool_forward_f32(LandmarkPoolForward v, const float* feat, const float* landmarks, const float* vis,
                               int N, int C, int H, int W, int L, const LandmarkPoolArgs& args, float* out,
                               int32_t* argmax);
void landmark_pool_backward_f32(LandmarkPoolBackward v, const float* grad_out, const int32_t* argmax, int N, int C,
                                int H, int W, int L, float* grad_features);
void landmark_pool_accumulate_f32(const float* grad_out, const int32_t* argmax, int N, int C, int H, int W, int L,
                                  float* grad_features);
}  // namespace cuda
#endif

}  // namespace fn::kernels
