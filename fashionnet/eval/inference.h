// Running a trained FashionNet over a split: embeddings for retrieval and the heads' predictions for
// evaluation. Sequential order; landmark_pool at the predicted landmarks (or, when asked, at the ground-truth
// ones where the data has them). One pass per image, or with `mirror` two, averaged (fashionnet/eval/mirror.h).
//
// Over several ranks (InferenceOptions::comm, size > 1): rank r runs the contiguous shard
// [r*n/N, (r+1)*n/N) of the indices, and every rank gets back the whole result, the shards' rows gathered
// in rank order: the same rows, in the same order, as one process gives (docs/distributed.md, "Evaluation
// and embedding over ranks"). Collective: every rank calls it with the same indices.
#pragma once
#include <string>
#include <vector>

#include "data/dataset.h"
#include "fashionnet/eval/embedding_io.h"
#include "fashionnet/model/fashionnet.h"

namespace fn::dist {
class Communicator;
}

namespace fn::fashionnet {

struct InferenceOptions {
  int batch = 32;
  int threads = 2;
  bool pool_at_ground_truth = false;
  // The crop rule the model was trained with (TrainConfig::bbox_margin, kept in its checkpoint): each image is
  // its bbox widened by this fraction of its size on each side, so evaluation sees the images as training did.
  float bbox_margin = 0.f;
  bool mirror = false;   // also run each image mirrored and average the two passes (fashionnet/eval/mirror.h)
  bool skip_bad = false;
  bool progress = true;  // over ranks, rank 0 alone prints (its shard's progress)
  dist::Communicator* comm = nullptr;  // null or size 1: one process runs every image
};

struct Predictions {
  Embeddings embeddings;              // (N, D) with image paths and item ids
  std::vector<int> sample_index;      // row -> dataset sample
  std::vector<float> category_logits; // N x categories
  int categories = 0;
  std::vector<float> attribute_logits;  // N x attributes (empty when none)
  int attributes = 0;
  std::vector<float> landmark_pred;   // N x 8 x 2 in [0,1] of the input
  std::vector<float> landmark_true;   // N x 8 x 2 in [0,1] of the input (after crop/resize)
  std::vector<float> landmark_visible;// N x 8 ground-truth visibility (1 visible)
  std::vector<float> vis_pred;        // N x 8 predicted visibility (1 visible)
};

// Runs in eval mode (nn::ModeGuard) and leaves the model's mode as it found it. With skip_bad, the rows of
// skipped images are missing (on any rank). When a rank fails, every rank throws, naming it.
Predictions run_inference(FashionNet& model, const data::Dataset& ds, const std::vector<int>& indices,
                          Device device, const InferenceOptions& opt);

}  // namespace fn::fashionnet
