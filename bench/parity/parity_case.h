// One PyTorch-parity case (docs/parity.md): a FashionNet with random weights, a random P x K batch, one
// forward + fashionnet_loss (all five weights 1) + backward (the training step's own forward_backward,
// fashionnet/train/step.h), written to a folder that
// bench/pytorch/parity.py reads and replays in PyTorch:
//   model.safetensors    the weights and batch norm running statistics before the step (a training checkpoint:
//                        its metadata holds the TrainConfig); biases, batch norm scales and running statistics
//                        random too
//   inputs.safetensors   images, landmarks (N,8,2 px), visible (N,8), landmarks01 (N,16), vis_label (N*8),
//                        category (N), item (N), attr / attr_known (N,A), w_pos / w_neg (A); metadata:
//                        triplet_margin, triplet_mining
//   outputs.safetensors  out.{embedding,category,attributes,landmark_loc,landmark_vis}, loss.{lm,vis,cat,attr,tri,
//                        total} (0-d), grad.<parameter name> for every parameter, buffer.<buffer name> for every
//                        buffer after the step (batch norm running_mean / running_var), and
//                        eval.{embedding,...}: the same batch in eval mode after the step (given landmarks)
// Dropout is forced to 0 (masks cannot match across implementations); everything else is the training path.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/device.h"
#include "fashionnet/model/config.h"

namespace fn::fashionnet {

struct ParityCaseOptions {
  TrainConfig cfg;  // the network's shapes, triplet margin and mining; cfg.P x cfg.K images
  uint64_t seed = 1;
  Device device = Device::CPU;
};

struct ParityCaseSummary {
  std::vector<std::pair<std::string, double>> losses;  // unweighted terms, then "total"
  int64_t parameters = 0;
  int64_t buffers = 0;  // tensors
  double triplet_active = 0;
};

// Creates `dir` if needed and writes the three files.
ParityCaseSummary write_parity_case(const std::string& dir, const ParityCaseOptions& opt);

}  // namespace fn::fashionnet
