// ResNet-50 (He et al. 2016) as FashionNet's backbone (fashionnet/model/backbone.h), torchvision's v1.5 layout
// (the stride of a downsampling bottleneck is on its 3x3 conv2) and torchvision's names:
//
//   trunk:  conv1 7x7/2 pad 3 (64) + bn1 + ReLU, max pool 3x3/2 pad 1      trunk.conv1, trunk.bn1
//           layer1 (3 blocks, 256), layer2 (4, 512), layer3 (6, 1024)      trunk.layerL.B.*  -> (N, 1024, H/16, W/16)
//   branch: layer4 (3 blocks, 2048), global average pool                   conv5_X.layer4.B.* -> (N, 2048)
//
// A bottleneck: conv1 1x1 + bn1 + ReLU, conv2 3x3 (stride) + bn2 + ReLU, conv3 1x1 (4x the width) + bn3, plus the
// shortcut (the input, or downsample.0 1x1 conv with the stride + downsample.1 BN when the shape changes), ReLU.
// Convs have no bias; BN eps 1e-5, momentum 0.1 (PyTorch's defaults). Init: Kaiming fan-out for the convs, BN
// weight 1 and bias 0, as torchvision; torchvision's optional zero-init of each block's last BN is not used
// (its default is off). `width` scales every channel count with the network's one rule (scaled_channels,
// vgg16.h): the small preset resnet-tiny is this graph at width 1/16; the ImageNet weights need width 1.
#pragma once
#include <array>

#include "fashionnet/model/backbone.h"
#include "nn/batchnorm2d.h"
#include "nn/layers.h"

namespace fn::fashionnet {

struct ResNetLayer {
  int width, blocks, stride;  // bottleneck width at width 1 (its output is 4x), blocks, the first block's stride
};
inline constexpr int kResNetStemChannels = 64, kResNetExpansion = 4, kResNetTrunkStride = 16;
inline constexpr std::array<ResNetLayer, 4> kResNet50Layers = {{{64, 3, 1}, {128, 4, 2}, {256, 6, 2}, {512, 3, 2}}};

struct BottleneckSpec {
  int in, width, stride;
  int out() const { return width * kResNetExpansion; }
  bool downsample() const { return stride != 1 || in != out(); }
};

class Bottleneck : public nn::Module {
 public:
  Bottleneck(const BottleneckSpec& spec, Rng& rng);
  Tensor operator()(const Tensor& x) const;
  BottleneckSpec spec;

 private:
  nn::Conv2d *conv1_, *conv2_, *conv3_;
  nn::BatchNorm2d *bn1_, *bn2_, *bn3_;
  nn::Module* downsample_ = nullptr;  // "0": the 1x1 conv, "1": its BN
  nn::Conv2d* ds_conv_ = nullptr;
  nn::BatchNorm2d* ds_bn_ = nullptr;
};

// One of layer1..layer4: its blocks under "0", "1", ...; `in` is the previous layer's output channels.
class ResNetStage : public IndexedList<Bottleneck> {
 public:
  ResNetStage(const ResNetLayer& layer, int in, double width, Rng& rng);
  Tensor operator()(const Tensor& x) const;
  int out = 0;
};

class ResNet50Trunk : public BackboneTrunk {
 public:
  ResNet50Trunk(double width, Rng& rng);
  Tensor operator()(const Tensor& x) const override;  // conv1 .. layer3

 private:
  nn::Conv2d* conv1_;
  nn::BatchNorm2d* bn1_;
  ResNetStage* layers_[3];
};

class ResNet50Branch : public BackboneBranch {
 public:
  ResNet50Branch(double width, Rng& rng);
  Tensor operator()(const Tensor& layer3) const override;  // layer4, global average pool

 private:
  ResNetStage* layer4_;
};

}  // namespace fn::fashionnet
