// The two-stage trainer (docs/fashionnet.md sec. 3): stage 1 weighs the landmark terms high so the shared layers
// learn landmark positions; stage 2 starts from stage 1's best checkpoint with all weights equal. SGD with
// momentum, cosine or step learning rate per stage, optional gradient clipping.
//
// A run folder holds: config.json, metrics.jsonl (one JSON line per logged step and per validation),
// checkpoints (last.safetensors, <stage>_best.safetensors, <stage>_final.safetensors, final.safetensors, and
// with validation best.safetensors) and loss.svg. With TrainConfig::validate_every > 0, "best" is the best
// validation measure (fashionnet/train/validation.h) of the stage (<stage>_best) and of the run (best); with 0,
// the lowest smoothed training loss (EMA, 0.98) at a checkpoint of the stage.
// Resuming from a checkpoint continues bitwise identically on the CPU. With TrainOptions::comm, the run is one of
// several ranks (docs/distributed.md): a global batch of ranks x batch, gradients averaged in buckets during
// the backward, rank 0 writing the run folder. A NaN or Inf loss stops the run
// with the step and the term, without writing a checkpoint; Ctrl-C saves last.safetensors and stops (the
// SIGINT handler is the caller's again when train() returns or throws). Each step is a TrainStep
// (fashionnet/train/step.h: where the gradients are complete, frozen parameters, the first-step check).
#pragma once
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "data/dataset.h"
#include "dist/bucketer.h"
#include "dist/comm.h"
#include "fashionnet/model/config.h"
#include "fashionnet/train/step.h"  // clip_gradients, TrainStep

namespace fn::fashionnet {

struct TrainOptions {
  std::string data_root, benchmark = "inshop", out_dir;
  std::string resume;       // a checkpoint to continue from
  std::string init;         // weights to start from (e.g. import-vgg16's output); missing tensors stay random
  Device device = Device::CPU;
  int loader_threads = 2;
  bool skip_bad = false;
  double holdout = 0.1;     // held out for validation: imagefolder, this fraction of the images (by a hash of the
                            // name); In-shop when validating, this fraction of the training items (by item id)
  bool quiet = false;
  int64_t stop_after = 0;   // >0: stop once this many steps (over all stages) are done, saving last.safetensors
                            // as Ctrl-C does, so that a later --resume continues the run
  // Data parallel (docs/distributed.md): the job this process is a rank of; null or size 1: one process.
  // Rank 0 alone writes the run folder and prints; every rank reads the data, the resume checkpoint and --init.
  dist::Communicator* comm = nullptr;
  size_t bucket_bytes = dist::kDefaultBucketBytes;
  int64_t check_identical_every = 0;  // >0: every N steps, check that the ranks' parameters are bitwise equal
  bool dist_alone = false;  // the data-parallel path with comm of size 1 too (its overhead, measured)
};

struct TrainSummary {
  int64_t steps = 0;
  double seconds = 0, images_per_s = 0;
  std::string final_checkpoint;
  std::string best_checkpoint;  // best.safetensors, when the run validated
  bool interrupted = false;
  std::vector<std::pair<std::string, double>> last_terms;
};

TrainSummary train(TrainConfig cfg, const TrainOptions& opt);

// Redraws loss.svg from metrics.jsonl in a run folder.
void write_loss_curve(const std::string& run_dir);

}  // namespace fn::fashionnet
