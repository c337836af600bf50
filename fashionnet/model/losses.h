// FashionNet's objective (docs/fashionnet.md sec. 3):
//   L = w_lm * L_landmarks + w_vis * L_visibility + w_cat * L_category + w_attr * L_attributes + w_tri * L_triplet
// Each term comes from nn/losses.h; this file only assembles them with the stage's weights and keeps the
// unweighted values for logging. A term whose weight is 0, or whose labels the batch lacks, is left out.
#pragma once
#include <array>
#include <string>
#include <vector>

#include "fashionnet/model/batch.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"

namespace fn::fashionnet {

// The terms, in the order fashionnet_loss gives them, and their names (logs, metrics, the ranks' averaging).
enum LossTerm { kTermLandmarks, kTermVisibility, kTermCategory, kTermAttributes, kTermTriplet, kLossTermCount };
inline constexpr std::array<const char*, kLossTermCount> kLossTermNames = {"lm", "vis", "cat", "attr", "tri"};

struct LossTerms {
  Tensor total;                             // the weighted sum (scalar), for backward
  std::vector<std::pair<std::string, double>> values;  // unweighted terms by name (kLossTermNames), in that order
  double triplet_active = 0;                // fraction of triplets with a positive loss
};

struct LossContext {
  Tensor attr_w_pos, attr_w_neg;  // (A) from the training set's counts; undefined: no attribute loss
  float triplet_margin = 0.2f;
  TripletMining triplet_mining = TripletMining::BatchHard;
  float category_smoothing = 0.f;  // TrainConfig::label_smoothing
};

LossTerms fashionnet_loss(const Outputs& out, const BatchTensors& batch, const LossWeights& w, const LossContext& ctx);

// Whether fashionnet_loss reads the pose branch's outputs (landmark_loc, landmark_vis) for this batch: the
// landmark or the visibility term applies. Where neither does (a stage weighing them 0, or images without
// landmarks), a training step skips the pose branch's forward (FashionNet::forward, `pose`).
bool pose_terms_apply(const BatchTensors& batch, const LossWeights& w);

// Attribute weights from the training samples: w_pos = N/(2 pos), w_neg = N/(2 neg), clamped (nn/losses.h).
void attribute_weights(const data::Dataset& ds, const std::vector<int>& train, int num_attributes, Device d,
                       Tensor& w_pos, Tensor& w_neg);

}  // namespace fn::fashionnet
