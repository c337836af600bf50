// Batches for training and evaluation: a sampler orders the epoch, background threads decode, crop, resize,
// flip and normalise ahead of the consumer, and next() hands batches out in order. Everything random is
// derived from (seed, epoch, position in the epoch, sample index), never from thread scheduling, so a seed
// gives the same batches with any number of threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/rng.h"
#include "data/transform.h"

namespace fn::data {

struct LoaderConfig {
  int batch = 16;           // Shuffle and Sequential; PK batches hold P*K images
  int input = 224;          // network input side
  float bbox_margin = 0.f;  // bbox widened by this fraction of its size on each side
  bool flip = true;         // random horizontal flip (p = 0.5)
  float crop_scale = 1.f;   // < 1: a random crop of the crop rectangle, of [crop_scale, 1] of its area (Augment)
  uint64_t seed = 0;
  int threads = 2;          // 0: decode in the caller's thread
  int prefetch = 2;         // batches prepared ahead of the consumer (at least `threads`)
  enum Sampler { Shuffle, Sequential, PK } sampler = Shuffle;
  int P = 4, K = 4;         // PK: P distinct items, K images each
  bool skip_bad = false;    // a bad image is skipped and counted (the batch shrinks) instead of an error
  bool drop_last = true;    // drop the last incomplete batch (Shuffle, Sequential) or last < P items (PK)
  // Data-parallel: the sampler orders the whole (global) batch alike on every rank, and this loader decodes
  // only its share, rows [shard * n / shards, (shard + 1) * n / shards) of each batch of n. A row's flip is
  // drawn (with its crop) at its place in the whole batch, so the shards together are the unsharded batch.
  int shard = 0, shards = 1;
};

struct Batch {
  int n = 0, input = 0;
  std::vector<float> image;       // n*3*input*input, NCHW, RGB in [0,1] normalised by ImageNet mean/std
  std::vector<float> lm_xy;       // n*8*2, (x,y) in network-input pixels after crop/resize/flip
  std::vector<float> lm_visible;  // n*8: 1 where the landmark is visible (and inside the crop), else 0
  std::vector<uint8_t> lm_vis;    // n*8: the Vis code after the transform (kCutOff when the crop cut it off)
  std::vector<int> category, item, sample_index;
  std::vector<float> attr;        // n*A: 1/0 targets; attr_known n*A: 1 where the label is known
  std::vector<float> attr_known;
  std::vector<uint8_t> flipped;   // n: 1 where the image was mirrored
};

// Sizes every buffer of `b` for n images of input x input and A attributes (landmarks absent, labels -1).
void resize_batch(Batch& b, int n, int input, size_t attributes);

// Mirrors every image of `b` left to right in place, as if the loader had flipped it: the pixels, the
// landmarks' x (input - 1 - x, as InputMap maps it) with each L/R pair of slots swapped with its
// visibility, and `flipped`. Bitwise what loading with the flip gives (tests/test_data_loader.cpp).
// Mirror-averaged inference runs each batch and its mirror image (fashionnet/eval/mirror.h).
void mirror_batch(Batch& b);

// One image's random choices under `cfg` (the flip first, then the crop when crop_scale < 1), from its RNG.
Augment draw_augment(const LoaderConfig& cfg, Xoshiro256& rng);

// Decodes and transforms one sample into slot `j` of `out` (sized by resize_batch); `aug` drawn outside.
// Throws fn::Error naming the image when it cannot be used.
void load_sample(const Dataset& ds, int sample, const LoaderConfig& cfg, const Augment& aug, Batch& out, int j);

class Loader {
 public:
  // `ds` must outlive the loader.
  Loader(const Dataset& ds, std::vector<int> indices, LoaderConfig cfg);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;
  bool next(Batch& out);  // false at the end of an epoch (call again to start the next epoch)
  int64_t batches_per_epoch() const;
  int64_t skipped() const;  // bad images skipped with skip_bad, over all epochs
  std::vector<std::string> skipped_reasons() const;  // "path: reason" of each image among them, once, sorted
  int64_t epoch() const;    // the epoch next() is in (or will start)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fn::data
