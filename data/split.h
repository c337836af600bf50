// The training split and the held-out split of a dataset, as training and evaluation use them. The four
// DeepFashion benchmarks carry their own partition (Eval/list_eval_partition.txt): train, and val for
// held-out. A plain ImageFolder tree has none, so a fixed fraction of each class is held out by a hash of
// the image name: stable whatever the file order, the same in every run.
#pragma once
#include <vector>

#include "data/dataset.h"

namespace fn::data {

std::vector<int> train_indices(const Dataset& ds, double holdout);
std::vector<int> holdout_indices(const Dataset& ds, double holdout);  // holdout: the imagefolder fraction

// The images the trainer validates on when it selects its best checkpoint (docs/training.md, "Validation"):
// the val split where the benchmark has one (Category, Landmark, Consumer-to-shop); for In-shop, which has
// none, the TRAIN images of whole items held out by a hash of the item id (fraction `holdout` of the items),
// never a query or gallery image; for an ImageFolder, a second slice of the image hash of the same size as the
// hold-out, never the hold-out itself (that is what `eval --holdout` scores).
std::vector<int> validation_indices(const Dataset& ds, double holdout);
// train_indices less validation_indices: differs from train_indices for In-shop and ImageFolder.
std::vector<int> train_indices_without_validation(const Dataset& ds, double holdout);

}  // namespace fn::data
