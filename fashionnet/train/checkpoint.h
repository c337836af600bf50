// Training checkpoints: the model's parameters and buffers (nn/module.h) under their own names, the
// optimiser's state under "optim.<param>.<what>", and in the metadata the full TrainConfig (JSON) and the training state, so that
// a checkpoint alone rebuilds the model and resumes the run exactly. Written atomically (core/safetensors.h).
#pragma once
#include <memory>
#include <string>

#include "core/safetensors.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "nn/optim.h"

namespace fn::fashionnet {

struct TrainState {
  int stage = 0;         // index into TrainConfig::stages
  int64_t step = 0;      // steps completed over all stages
  double ema_loss = -1;  // smoothed total loss of the current stage (-1: none yet)
  double best_loss = -1; // best ema_loss at a checkpoint of the current stage (-1: none yet)
  // With validation (TrainConfig::validate_every): the best validation measure of the current stage and of the
  // run so far, and their tie-breaks (fashionnet/train/validation.h) (-1: none yet; every measure is >= 0).
  // Older checkpoints lack them and read as -1.
  double best_validation = -1, run_best_validation = -1;
  double best_validation_tie_break = -1, run_best_validation_tie_break = -1;
  std::vector<std::string> category_names;  // so evaluation can name predictions
};

void save_checkpoint(const std::string& path, const nn::Module& model, const nn::Optimizer* opt,
                     const TrainConfig& cfg, const TrainState& st);
TrainConfig checkpoint_config(const std::string& path);
TrainState checkpoint_state(const std::string& path);
// Loads parameters and buffers (and the optimiser's state when `opt` is given) into an existing model.
void load_checkpoint(const std::string& path, const nn::Module& model, const nn::Optimizer* opt);
// The backbone ("vgg16", "resnet50", "efficientnet_lite0") that a training checkpoint or a `fashionnet import`
// init file holds weights for, from its metadata; "" where the metadata does not say (another file).
std::string weights_backbone(const std::string& path);
std::string weights_backbone(const SafetensorsFile& f);
// `train --init`: the weights of `path` (a `fashionnet import` init file, or a training checkpoint, whose
// optimiser state is left behind and listed in `unexpected`) into `model`, built from `net`; tensors the file
// lacks keep their values. A file made for another backbone is refused saying so (and which presets build it).
LoadResult load_init(const std::string& path, const nn::Module& model, const NetConfig& net);
// Builds the model a checkpoint describes, on `device`, with its weights. `input` other than 0 runs it at that square
// input size instead of the trained one (backbones that pool their map globally only: VGG16's fc6 reads the
// conv5 map flattened, whose size follows the input); cfg->net.input then says the size it runs at.
std::unique_ptr<FashionNet> model_from_checkpoint(const std::string& path, Device device, TrainConfig* cfg = nullptr,
                                                  int input = 0);

}  // namespace fn::fashionnet
