// Epoch plans: the list of batches (sample indices) an epoch delivers, a pure function of the
// configuration, the seed and the epoch number.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"

namespace fn::data {

using EpochPlan = std::vector<std::vector<int>>;

EpochPlan plan_sequential(const std::vector<int>& indices, int batch, bool drop_last);
EpochPlan plan_shuffle(const std::vector<int>& indices, int batch, bool drop_last, uint64_t seed, uint64_t epoch);
// P distinct items per batch, K images of each: the items are shuffled and taken P at a time, each once per
// epoch; an item with fewer than K images repeats some (all of its images first, then random repeats).
EpochPlan plan_pk(const Dataset& ds, const std::vector<int>& indices, int P, int K, bool drop_last, uint64_t seed,
                  uint64_t epoch);

EpochPlan plan_epoch(const Dataset& ds, const std::vector<int>& indices, const LoaderConfig& cfg, uint64_t epoch);

}  // namespace fn::data
