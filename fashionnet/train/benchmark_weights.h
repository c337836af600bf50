// What each benchmark trains (docs/training.md, "The Category and Landmark benchmarks"). In-shop,
// Consumer-to-shop, ImageFolder and Category train every term the preset weighs (Category's triplet items are
// its product folders). The Landmark benchmark annotates landmarks and their visibility only, so its stages
// weigh those two terms alone: the category, attribute and triplet weights are 0 whatever the preset says.
#pragma once
#include <string>

#include "fashionnet/model/config.h"

namespace fn::fashionnet {

// True where `benchmark` trains the landmark and visibility terms only ("landmark").
bool landmark_only(const std::string& benchmark);

// Sets, in every stage, the weights `benchmark` has no labels for to 0. Returns the line the run's log opens
// with when that applies (Landmark: which weights were set to 0, or that the configuration had them at 0
// already); "" otherwise.
std::string apply_benchmark_weights(TrainConfig& cfg, const std::string& benchmark);

// The terms some stage weighs above 0, in LossWeights order: "landmarks, visibility, category, attributes,
// triplet", or a part of it.
std::string trained_terms(const TrainConfig& cfg);

}  // namespace fn::fashionnet
