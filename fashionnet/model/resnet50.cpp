#include "fashionnet/model/resnet50.h"

#include <string>

#include "fashionnet/model/vgg16.h"  // scaled_channels: the width rule

namespace fn::fashionnet {
namespace {
nn::Conv2dOptions conv_opts(int kernel, int stride) {
  nn::Conv2dOptions o;
  o.kernel = kernel;
  o.stride = stride;
  o.pad = kernel / 2;
  o.bias = false;  // a batch norm follows
  o.relu = false;  // after the batch norm (or the residual add)
  return o;
}

// The downsampling shortcut, torchvision's nn.Sequential(conv1x1, BN): its modules are named "0" and "1".
class Downsample : public nn::Module {
 public:
  Downsample(int in, int out, int stride, Rng& rng, nn::Conv2d*& conv, nn::BatchNorm2d*& bn) {
    conv = &add_module("0", std::make_unique<nn::Conv2d>(in, out, rng, conv_opts(1, stride)));
    bn = &add_module("1", std::make_unique<nn::BatchNorm2d>(out));
  }
};

int stage_input(double width) { return scaled_channels(kResNetStemChannels, width); }
}  // namespace

Bottleneck::Bottleneck(const BottleneckSpec& s, Rng& rng) : spec(s) {
  // torchvision's registration order: conv1, bn1, conv2, bn2, conv3, bn3, downsample.
  conv1_ = &add_module("conv1", std::make_unique<nn::Conv2d>(s.in, s.width, rng, conv_opts(1, 1)));
  bn1_ = &add_module("bn1", std::make_unique<nn::BatchNorm2d>(s.width));
  conv2_ = &add_module("conv2", std::make_unique<nn::Conv2d>(s.width, s.width, rng, conv_opts(3, s.stride)));
  bn2_ = &add_module("bn2", std::make_unique<nn::BatchNorm2d>(s.width));
  conv3_ = &add_module("conv3", std::make_unique<nn::Conv2d>(s.width, s.out(), rng, conv_opts(1, 1)));
  bn3_ = &add_module("bn3", std::make_unique<nn::BatchNorm2d>(s.out()));
  if (s.downsample())
    downsample_ =
        &add_module("downsample", std::make_unique<Downsample>(s.in, s.out(), s.stride, rng, ds_conv_, ds_bn_));
}

Tensor Bottleneck::operator()(const Tensor& x) const {
  Tensor h = (*bn1_)((*conv1_)(x), F::BatchNormAct::Relu);  // BN and ReLU as one op
  h = (*bn2_)((*conv2_)(h), F::BatchNormAct::Relu);
  h = (*bn3_)((*conv3_)(h));
  const Tensor shortcut = downsample_ ? (*ds_bn_)((*ds_conv_)(x)) : x;
  return F::relu(F::add(h, shortcut));
}

ResNetStage::ResNetStage(const ResNetLayer& l, int in, double width, Rng& rng) {
  const int w = scaled_channels(l.width, width);
  for (int b = 0; b < l.blocks; ++b) {
    const Bottleneck& block = add(b, std::make_unique<Bottleneck>(BottleneckSpec{in, w, b == 0 ? l.stride : 1}, rng));
    in = block.spec.out();
  }
  out = in;
}

Tensor ResNetStage::operator()(const Tensor& x) const {
  Tensor h = x;
  for (auto* b : items) h = (*b)(h);
  return h;
}

ResNet50Trunk::ResNet50Trunk(double width, Rng& rng) {
  int in = stage_input(width);
  conv1_ = &add_module("conv1", std::make_unique<nn::Conv2d>(3, in, rng, conv_opts(7, 2)));
  bn1_ = &add_module("bn1", std::make_unique<nn::BatchNorm2d>(in));
  for (int l = 0; l < 3; ++l) {
    layers_[l] = &add_module("layer" + std::to_string(l + 1),
                             std::make_unique<ResNetStage>(kResNet50Layers[size_t(l)], in, width, rng));
    in = layers_[l]->out;
  }
  channels = in;
  stride = kResNetTrunkStride;
}

Tensor ResNet50Trunk::operator()(const Tensor& x) const {
  Tensor h = F::max_pool2d((*bn1_)((*conv1_)(x), F::BatchNormAct::Relu), F::Pool2dArgs{3, 2, 1});
  for (auto* layer : layers_) h = (*layer)(h);
  return h;
}

ResNet50Branch::ResNet50Branch(double width, Rng& rng) {
  const int in = scaled_channels(kResNet50Layers[2].width, width) * kResNetExpansion;  // layer3's output
  layer4_ = &add_module("layer4", std::make_unique<ResNetStage>(kResNet50Layers[3], in, width, rng));
  features = layer4_->out;
}

Tensor ResNet50Branch::operator()(const Tensor& layer3) const { return F::global_avg_pool2d((*layer4_)(layer3)); }

}  // namespace fn::fashionnet
