// Model selection on a validation split (docs/training.md, "Validation"): which images the trainer validates
// on for each benchmark, and the one figure it keeps its best checkpoint by. The images come from data/split.h
// (validation_indices); inference and the metrics are fashionnet/eval's. Measures, by benchmark:
//   In-shop, Consumer-to-shop: retrieval top-20 accuracy (higher is better)
//   Category:                  category top-3 accuracy (higher is better)
//   Landmark:                  mean normalised landmark error over visible landmarks (lower is better)
//   ImageFolder:               category top-1 accuracy (higher is better)
// A small validation set saturates the retrieval and top-3 measures (every query found: 100%), after which they
// no longer tell checkpoints apart; equal measures are then told apart by a finer one, the tie-break: retrieval
// mAP@20 (fashionnet/eval/retrieval_metrics.h; it stays below 100% after top-1 reaches it) for the retrieval
// benchmarks, category top-1 for Category.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "core/device.h"
#include "data/dataset.h"
#include "fashionnet/model/fashionnet.h"

namespace fn::dist {
class Communicator;
}

namespace fn::fashionnet {

struct ValidationSet {
  std::string measure;  // "retrieval_top20" | "category_top3" | "landmark_error" | "category_top1"
  bool higher_is_better = true;
  std::string tie_break;  // "retrieval_map20" | "category_top1" | "" (none); always higher is better
  bool retrieval = false;
  // Retrieval: the queries, searched among the gallery. Otherwise `query` holds every image scored, and
  // `gallery` is empty.
  std::vector<int> query, gallery;
  std::string description;  // which images, in words; when the set cannot be measured, why not
  float bbox_margin = 0.f;  // the training's crop rule (InferenceOptions::bbox_margin); the trainer sets it
  bool usable() const { return !query.empty() && (!retrieval || !gallery.empty()); }
  int64_t images() const { return int64_t(query.size() + gallery.size()); }
};

// The validation set of `ds` (`holdout`: the fraction of data::validation_indices). In-shop, which has no
// val split: the first image (in file order) of each held-out item with two or more images is a query, the
// item's other images and every image of a held-out item with one image are the gallery. Consumer-to-shop's
// val split: consumer photos are the queries, shop photos the gallery.
ValidationSet validation_set(const data::Dataset& ds, double holdout);

struct ValidationResult {
  double value = 0;      // NaN when nothing could be measured (no visible landmark, no category label)
  double tie_break = NAN;  // the set's tie-break measure; NaN when it has none
  double seconds = 0;
};

// A best so far: the measure and its tie-break (-1: none yet, or a checkpoint from before tie-breaks).
struct ValidationBest {
  double value = -1, tie_break = -1;
};

// Measures `model` on the set in eval mode (dropout off, batch norm on its running statistics); the model's
// modes are as they were when it returns. With `comm` (size > 1) the images are split over the ranks and
// every rank gets the same value (collective: every rank calls it, with the same model and set).
ValidationResult validate(FashionNet& model, const data::Dataset& ds, const ValidationSet& set, Device device,
                          int threads, bool skip_bad, dist::Communicator* comm = nullptr);

// Whether `r` beats `best` (-1: none yet): a better measure in the set's direction, or an equal one with a
// higher tie-break (a tie-break beats none). NaN never does; a tie on both keeps the earlier best.
bool improves(const ValidationSet& set, const ValidationResult& r, const ValidationBest& best);
// "retrieval top-20", "landmark error", ...: the measure in words.
std::string measure_label(const std::string& measure);
// "83.3%" for accuracies, "0.0712" for the landmark error.
std::string format_measure(const std::string& measure, double value);

}  // namespace fn::fashionnet
