// FashionNet (Liu et al., CVPR 2016, Fig. 4), the whole graph in one place:
//
//   image -> conv1_1 .. conv4_3 (VGG16 trunk, shared) ------------------------- conv4 (stride 8) ---+
//            pool4 -+-> conv5_global -> pool5 -> fc6_global ------------------------------+         |
//                   +-> conv5_pose   -> pool5 -> fc6_pose -> fc7_pose -> landmark_loc     |         |
//                                                                     -> landmark_vis     |         |
//            landmark_pool(conv4, landmarks) -> fc6_local ------------------------------+ |         |
//            concat(fc6_global, fc6_local) -> fc7_fusion -> embedding, category, attributes
//
// Training pools at the ground-truth landmarks; evaluation at the predicted ones (landmark_loc, with
// visibility from landmark_vis).
#pragma once
#include <memory>

#include "data/dataset.h"
#include "fashionnet/model/config.h"
#include "nn/layers.h"

namespace fn::fashionnet {

using data::kSlots;  // the landmark slots, DeepFashion's eight (data/dataset.h)

// The VGG16 trunk up to conv4_3 (stages 1-4 of fashionnet/model/vgg16.h), with max pooling after conv1_2,
// conv2_2 and conv3_3.
class Trunk : public nn::Module {
 public:
  Trunk(double width, Rng& rng);
  Tensor operator()(const Tensor& x) const;  // (N,3,H,W) -> conv4_3 (N, C4, H/8, W/8)

 private:
  std::vector<nn::Conv2d*> stage_[4];
};

// conv5_1 .. conv5_3 (stage 5 of fashionnet/model/vgg16.h) then pool5: one per branch (conv5_global, conv5_pose).
class Conv5 : public nn::Module {
 public:
  Conv5(double width, Rng& rng);
  Tensor operator()(const Tensor& pool4) const;  // -> pool5

 private:
  std::vector<nn::Conv2d*> convs_;
};

struct Outputs {
  Tensor conv4;          // (N, C4, H/8, W/8)
  Tensor landmark_loc;   // (N, 2*kSlots): (x, y) per slot in [0, 1] of the input
  Tensor landmark_vis;   // (N*kSlots, 2): logits (visible, not visible) per slot
  Tensor embedding;      // (N, fc7_fusion): fc7_fusion before its ReLU: the retrieval feature
  Tensor category;       // (N, categories) logits
  Tensor attributes;     // (N, attributes) logits; undefined when the data has no attributes
  // Diagnostics: fc6_global and fc6_local after their ReLU, before dropout (fc6_local undefined without the
  // local branch). A unit that is 0 for every image of a batch is "dead" (see dead_fraction).
  Tensor fc6_global_act, fc6_local_act;
};

// The fraction of the units (columns) of act (N, units) that are zero for all N rows.
double dead_fraction(const Tensor& act);

// Where landmark_pool looks: ground truth (training) or the model's own prediction (evaluation).
struct PoolAt {
  Tensor landmarks;   // (N, kSlots, 2) in input pixels; undefined: use the predicted ones
  Tensor visibility;  // (N, kSlots) 1 visible / 0 not
};

class FashionNet : public nn::Module {
 public:
  explicit FashionNet(const NetConfig& cfg, uint64_t seed = 1);
  // The model's mode (nn/module.h: train() / eval()) switches dropout on and off; `step` seeds its masks so
  // runs reproduce.
  Outputs forward(const Tensor& images, const PoolAt& pool_at, uint64_t step = 0) const;
  // The landmarks and visibilities the model predicts, in landmark_pool's input convention.
  PoolAt predicted_pool_at(const Outputs& o) const;
  const NetConfig& config() const { return cfg_; }
  int conv4_stride() const { return 8; }

 private:
  // fc6_local after its ReLU (before dropout), from conv4 pooled at `at`.
  Tensor local_features(const Tensor& conv4, const PoolAt& at) const;

  NetConfig cfg_;
  Trunk* trunk_;
  Conv5 *conv5_global_, *conv5_pose_;
  nn::Linear *fc6_global_, *fc6_pose_, *fc7_pose_, *landmark_loc_, *landmark_vis_;
  nn::Linear *fc6_local_ = nullptr, *fc7_fusion_, *category_, *attributes_ = nullptr;  // attributes: none when the data has none
};

}  // namespace fn::fashionnet
