// FashionNet (Liu et al., CVPR 2016, Fig. 4), the whole graph in one place, whatever the backbone
// (net.backbone: fashionnet/model/backbone.h; VGG16's names shown):
//
//   image -> trunk (shared; VGG16: conv1_1 .. conv4_3) ---------------------- its map (stride 8 or 16) ---+
//            branch input (VGG16: pool4) -+-> conv5_global -> (N, features) -> fc6_global -------+          |
//                                         +-> conv5_pose   -> (N, features) -> fc6_pose -> fc7_pose          |
//                                                                   -> landmark_loc, landmark_vis  |          |
//            landmark_pool(the trunk's map, landmarks) -> fc6_local -----------------------------+ |          |
//            concat(fc6_global, fc6_local) -> fc7_fusion -> embedding, category, attributes
//
// conv5_global and conv5_pose are each branch's own copy of the backbone's last stages (VGG16: conv5_1..conv5_3
// and pool5; ResNet-50: layer4 and global average pooling; EfficientNet-Lite0: blocks 11..15, the head and
// global average pooling). Training pools at the ground-truth landmarks; evaluation at the predicted ones
// (landmark_loc, with visibility from landmark_vis). With net.local_at = layout (data without landmarks), both
// pool at the fixed kGarmentLayout instead; with absent, both at no slot (pool_mode's rule for an absent slot).
#pragma once
#include <memory>
#include <vector>

#include "data/dataset.h"
#include "fashionnet/model/config.h"
#include "nn/layers.h"

namespace fn::fashionnet {

using data::kSlots;  // the landmark slots, DeepFashion's eight (data/dataset.h)

// The fixed pooling positions of net.local_at = layout: (x, y) in [0, 1] of the input per slot, in slot order
// (collar, sleeve, waistline, hem; left then right). A front-view garment as shop photos frame it (a person
// upright, centred, filling the height): symmetric about x = 0.5, so the mirror image pools the same points.
constexpr float kGarmentLayout[kSlots][2] = {{0.40f, 0.28f}, {0.60f, 0.28f}, {0.25f, 0.50f}, {0.75f, 0.50f},
                                             {0.38f, 0.62f}, {0.62f, 0.62f}, {0.38f, 0.86f}, {0.62f, 0.86f}};

class BackboneTrunk;
class BackboneBranch;

struct Outputs {
  Tensor conv4;          // the trunk's map (N, C, H/stride, W/stride) landmark pooling reads (VGG16: conv4_3)
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

// The visibility rule of predicted landmarks: 1 where a slot's "visible" logit is at least its "not visible"
// one (the larger softmax probability), else 0. `logits`: kSlots x 2 per image, as Outputs::landmark_vis.
std::vector<float> visible_from_logits(const std::vector<float>& logits);

// Where landmark_pool looks: ground truth (training) or the model's own prediction (evaluation).
struct PoolAt {
  Tensor landmarks;   // (N, kSlots, 2) in input pixels; undefined: use the predicted ones
  Tensor visibility;  // (N, kSlots) 1 visible / 0 not
};

class FashionNet : public nn::Module {
 public:
  explicit FashionNet(const NetConfig& cfg, uint64_t seed = 1);
  // The model's mode (nn/module.h: train() / eval()) switches dropout on and off; `step` seeds its masks so
  // runs reproduce. `first_sample`: the place of images' first row in the whole batch when these images are
  // one part of it (a data-parallel rank's share, a mining group): a sample's dropout mask depends on its
  // place in the whole batch, not on which part holds it. `pose` false skips the pose branch (landmark_loc and
  // landmark_vis stay undefined) where nothing reads it: a training step no landmark term applies to
  // (pose_terms_apply in losses.h), the local branch pooling at given positions or at the layout.
  Outputs forward(const Tensor& images, const PoolAt& pool_at, uint64_t step = 0, int64_t first_sample = 0,
                  bool pose = true) const;
  // The landmarks and visibilities the model predicts, in landmark_pool's input convention.
  PoolAt predicted_pool_at(const Outputs& o) const;
  // kGarmentLayout for n images, every slot visible, in the same convention.
  PoolAt layout_pool_at(int64_t n, Device device) const;
  // Where net.local_at pools in training and evaluation alike, for n images: layout_pool_at for Layout, no slot
  // visible for Absent. Undefined for Landmarks, whose positions depend on the mode.
  PoolAt fixed_pool_at(int64_t n, Device device) const;
  const NetConfig& config() const { return cfg_; }
  int trunk_stride() const;    // of the trunk's map: 8 (VGG16) or 16 (ResNet-50, Lite0)
  int trunk_channels() const;  // of the trunk's map

 private:
  // fc6_local after its ReLU (before dropout), from the trunk's map pooled at `at`.
  Tensor local_features(const Tensor& map, const PoolAt& at) const;

  NetConfig cfg_;
  BackboneTrunk* trunk_;
  BackboneBranch *conv5_global_, *conv5_pose_;
  nn::Linear *fc6_global_, *fc6_pose_, *fc7_pose_, *landmark_loc_, *landmark_vis_;
  nn::Linear *fc6_local_ = nullptr, *fc7_fusion_, *category_, *attributes_ = nullptr;  // attributes: none when the data has none
};

}  // namespace fn::fashionnet
