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

}  // namespace fn::data
