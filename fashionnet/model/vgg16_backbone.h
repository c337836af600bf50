// VGG16 as FashionNet's backbone (fashionnet/model/backbone.h), built from the layer list in vgg16.h:
//   trunk:  conv1_1 .. conv4_3, max pooling after conv1_2, conv2_2 and conv3_3 (stride 8); branch_input is pool4
//   branch: conv5_1 .. conv5_3, pool5, flatten: (N, C5 * (input/32)^2)
// Every conv is 3x3, pad 1, with bias and ReLU. Names: trunk.conv1_1.weight .. conv5_global.conv5_3.bias.
#pragma once
#include <vector>

#include "fashionnet/model/backbone.h"
#include "nn/layers.h"

namespace fn::fashionnet {

class Vgg16Trunk : public BackboneTrunk {
 public:
  Vgg16Trunk(double width, Rng& rng);
  Tensor operator()(const Tensor& x) const override;  // -> conv4_3 (N, C4, H/8, W/8)
  Tensor branch_input(const Tensor& conv4) const override;  // pool4

 private:
  std::vector<nn::Conv2d*> stage_[4];
};

// conv5_1 .. conv5_3 then pool5 and flatten: one per branch (conv5_global, conv5_pose).
class Vgg16Conv5 : public BackboneBranch {
 public:
  Vgg16Conv5(double width, int input, Rng& rng);
  Tensor operator()(const Tensor& pool4) const override;

 private:
  std::vector<nn::Conv2d*> convs_;
};

}  // namespace fn::fashionnet
