#include "fashionnet/model/efficientnet_lite0.h"

#include "fashionnet/model/vgg16.h"  // scaled_channels: the width rule

namespace fn::fashionnet {
namespace {
nn::Conv2dOptions conv_opts(int kernel, int stride, int groups = 1) {
  nn::Conv2dOptions o;
  o.kernel = kernel;
  o.stride = stride;
  o.pad = kernel / 2;
  o.groups = groups;
  o.bias = false;  // a batch norm follows
  o.relu = false;  // after the batch norm
  return o;
}
}  // namespace

std::vector<MBConvSpec> lite0_blocks(double width) {
  std::vector<MBConvSpec> blocks;
  int in = scaled_channels(kLite0StemChannels, width);
  for (const Lite0Stage& s : kLite0Stages) {
    const int out = scaled_channels(s.out, width);
    for (int r = 0; r < s.repeats; ++r) {
      blocks.push_back({in, out, s.expand, s.kernel, r == 0 ? s.stride : 1});
      in = out;
    }
  }
  FN_CHECK(int(blocks.size()) == kLite0Blocks, "lite0_blocks: ", blocks.size(), " blocks");
  return blocks;
}

MBConv::MBConv(const MBConvSpec& s, Rng& rng) : spec(s) {
  const int mid = s.in * s.expand;
  if (s.expand != 1) {
    expand_conv_ = &add_module("expand_conv", std::make_unique<nn::Conv2d>(s.in, mid, rng, conv_opts(1, 1)));
    expand_bn_ = &add_module("expand_bn", std::make_unique<nn::BatchNorm2d>(mid, kLite0Bn));
  }
  depthwise_conv_ =
      &add_module("depthwise_conv", std::make_unique<nn::Conv2d>(mid, mid, rng, conv_opts(s.kernel, s.stride, mid)));
  depthwise_bn_ = &add_module("depthwise_bn", std::make_unique<nn::BatchNorm2d>(mid, kLite0Bn));
  project_conv_ = &add_module("project_conv", std::make_unique<nn::Conv2d>(mid, s.out, rng, conv_opts(1, 1)));
  project_bn_ = &add_module("project_bn", std::make_unique<nn::BatchNorm2d>(s.out, kLite0Bn));
}

Tensor MBConv::operator()(const Tensor& x) const {
  Tensor h = x;
  // relu6(depthwise_bn(depthwise_conv(relu6(expand_bn(expand_conv(x)))))) as one op: the depthwise convolution
  // applies expand_bn and its ReLU6 as it reads its input, and in the backward depthwise_bn's as it reads its
  // output's gradient, so neither the block's largest tensor nor that gradient is stored (F::batch_norm2d_depthwise)
  if (expand_conv_)
    h = (*depthwise_conv_)((*expand_conv_)(h), *expand_bn_, F::BatchNormAct::Relu6, depthwise_bn_,
                           F::BatchNormAct::Relu6);
  else
    h = (*depthwise_bn_)((*depthwise_conv_)(h), F::BatchNormAct::Relu6);  // BN and ReLU6 as one op
  h = (*project_bn_)((*project_conv_)(h));  // linear bottleneck: no activation
  return spec.residual() ? F::add(h, x) : h;
}

Lite0Stem::Lite0Stem(int out, Rng& rng) {
  conv_ = &add_module("conv", std::make_unique<nn::Conv2d>(3, out, rng, conv_opts(3, 2)));
  bn_ = &add_module("bn", std::make_unique<nn::BatchNorm2d>(out, kLite0Bn));
}

Tensor Lite0Stem::operator()(const Tensor& x) const { return (*bn_)((*conv_)(x), F::BatchNormAct::Relu6); }

Lite0Trunk::Lite0Trunk(double width, Rng& rng) {
  const std::vector<MBConvSpec> specs = lite0_blocks(width);
  stem_ = &add_module("stem", std::make_unique<Lite0Stem>(specs[0].in, rng));
  blocks_ = &add_module("blocks", std::make_unique<IndexedList<MBConv>>());
  for (int i = 0; i < kLite0TrunkBlocks; ++i) blocks_->add(i, std::make_unique<MBConv>(specs[size_t(i)], rng));
  channels = specs[kLite0TrunkBlocks - 1].out;
  stride = kLite0TrunkStride;
}

Tensor Lite0Trunk::operator()(const Tensor& x) const {
  Tensor h = (*stem_)(x);
  for (auto* b : blocks_->items) h = (*b)(h);
  return h;
}

Lite0Branch::Lite0Branch(double width, Rng& rng) {
  const std::vector<MBConvSpec> specs = lite0_blocks(width);
  blocks_ = &add_module("blocks", std::make_unique<IndexedList<MBConv>>());
  for (int i = kLite0TrunkBlocks; i < kLite0Blocks; ++i)
    blocks_->add(i, std::make_unique<MBConv>(specs[size_t(i)], rng));
  const int in = specs.back().out, head = scaled_channels(kLite0HeadChannels, width);
  head_conv_ = &add_module("head_conv", std::make_unique<nn::Conv2d>(in, head, rng, conv_opts(1, 1)));
  head_bn_ = &add_module("head_bn", std::make_unique<nn::BatchNorm2d>(head, kLite0Bn));
  features = head;
}

Tensor Lite0Branch::operator()(const Tensor& x) const {
  Tensor h = x;
  for (auto* b : blocks_->items) h = (*b)(h);
  return F::global_avg_pool2d((*head_bn_)((*head_conv_)(h), F::BatchNormAct::Relu6));
}

}  // namespace fn::fashionnet
