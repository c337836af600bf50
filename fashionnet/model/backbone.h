// The backbone interface: what FashionNet's graph (fashionnet.cpp) needs of VGG16, ResNet-50 or
// EfficientNet-Lite0, so that the graph is written once whatever `net.backbone` is (docs/fashionnet.md sec. 2,
// "Backbones"):
//
//   images -> trunk (shared) -> map (N, channels, H/stride, W/stride)   landmark pooling reads this map
//             map -> branch_input (shared, VGG16: pool4; otherwise the map itself)
//                 -> global branch (module "conv5_global") -> (N, features) -> fc6_global
//                 -> pose branch   (module "conv5_pose")   -> (N, features) -> fc6_pose
//
// Each branch is its own copy of the backbone's last stages (VGG16: conv5_1..conv5_3 + pool5; ResNet-50: layer4
// + global average pool; Lite0: blocks 11..15, the head + global average pool). The module names under "trunk",
// "conv5_global" and "conv5_pose" are the checkpoint's tensor names, and the weight import maps onto them.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/philox.h"
#include "fashionnet/model/config.h"
#include "nn/module.h"

namespace fn::fashionnet {

class BackboneTrunk : public nn::Module {
 public:
  virtual Tensor operator()(const Tensor& images) const = 0;  // (N,3,H,W) -> (N, channels, H/stride, W/stride)
  // The op both branches start from, run once (VGG16: pool4). It stays out of the branches so that it runs once,
  // and so that FashionNet can record the local branch before it (the sparse landmark_pool path, fashionnet.cpp).
  virtual Tensor branch_input(const Tensor& map) const { return map; }
  int channels = 0, stride = 0;  // of the output map; landmark pooling's channels and stride
};

class BackboneBranch : public nn::Module {
 public:
  virtual Tensor operator()(const Tensor& branch_input) const = 0;  // -> (N, features), fc6's input
  int features = 0;
};

// Modules named by their index ("blocks.11", "layer1.0"), as PyTorch's nn.Sequential and nn.ModuleList name
// theirs; the owner runs them.
template <class M>
class IndexedList : public nn::Module {
 public:
  M& add(int index, std::unique_ptr<M> m) {
    items.push_back(&add_module(std::to_string(index), std::move(m)));
    return *items.back();
  }
  std::vector<M*> items;
};

struct BackboneParts {
  std::unique_ptr<BackboneTrunk> trunk;
  std::unique_ptr<BackboneBranch> global, pose;
};

// cfg.backbone's trunk, then its global branch, then its pose branch, their initial weights drawn from rng in
// that order (for VGG16 the draws of the code before backbones were configurable, so VGG runs reproduce).
BackboneParts make_backbone(const NetConfig& cfg, Rng& rng);

}  // namespace fn::fashionnet
