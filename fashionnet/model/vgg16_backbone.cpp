#include "fashionnet/model/vgg16_backbone.h"

#include "fashionnet/model/vgg16.h"

namespace fn::fashionnet {

Vgg16Trunk::Vgg16Trunk(double width, Rng& rng) {
  for (const Vgg16Layer& l : kVgg16Layers) {
    if (l.stage > 4) continue;
    const Vgg16Channels c = vgg16_channels(l, width);
    stage_[l.stage - 1].push_back(&add_module(l.name, std::make_unique<nn::Conv2d>(c.in, c.out, rng)));
  }
  channels = vgg16_stage_channels(width)[3];
  stride = 8;
}

Tensor Vgg16Trunk::operator()(const Tensor& x) const {
  Tensor h = x;
  for (int s = 0; s < 4; ++s) {
    if (s > 0) h = F::max_pool2d(h);  // pool1 .. pool3
    for (auto* conv : stage_[s]) h = (*conv)(h);
  }
  return h;  // conv4_3, stride 8
}

Tensor Vgg16Trunk::branch_input(const Tensor& conv4) const { return F::max_pool2d(conv4); }

Vgg16Conv5::Vgg16Conv5(double width, int input, Rng& rng) {
  for (const Vgg16Layer& l : kVgg16Layers) {
    if (l.stage != 5) continue;
    const Vgg16Channels c = vgg16_channels(l, width);
    convs_.push_back(&add_module(l.name, std::make_unique<nn::Conv2d>(c.in, c.out, rng)));
  }
  const int pool5 = input / 32;
  features = vgg16_stage_channels(width)[4] * pool5 * pool5;
}

Tensor Vgg16Conv5::operator()(const Tensor& pool4) const {
  Tensor h = pool4;
  for (auto* conv : convs_) h = (*conv)(h);
  return F::flatten(F::max_pool2d(h));  // pool5, flattened for fc6
}

}  // namespace fn::fashionnet
