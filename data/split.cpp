#include "data/split.h"

#include <algorithm>
#include <cstdint>
#include <string>

namespace fn::data {
namespace {

uint64_t hash_name(const std::string& s) {  // FNV-1a
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

// The same fraction rule for image names and item ids: stable whatever the file order.
bool held_out(const std::string& name, double holdout) { return double(hash_name(name) % 10000) < holdout * 10000; }

}  // namespace

std::vector<int> holdout_indices(const Dataset& ds, double holdout) {
  std::vector<int> r;
  if (ds.benchmark != "imagefolder") return ds.indices(Split::Val);
  for (size_t i = 0; i < ds.samples.size(); ++i)
    if (held_out(ds.samples[i].image, holdout)) r.push_back(int(i));
  return r;
}

std::vector<int> train_indices(const Dataset& ds, double holdout) {
  if (ds.benchmark != "imagefolder") return ds.indices(Split::Train);
  std::vector<int> held = holdout_indices(ds, holdout), r;
  std::vector<char> is_held(ds.samples.size(), 0);
  for (int i : held) is_held[size_t(i)] = 1;
  for (size_t i = 0; i < ds.samples.size(); ++i)
    if (!is_held[i]) r.push_back(int(i));
  return r;
}

// An ImageFolder's validation images: the next slice of the same hash after the hold-out, of the same size
// ([holdout, 2 holdout) of the hash range), so that it is disjoint from the images `eval --holdout` scores.
static bool imagefolder_validation(const std::string& image, double holdout) {
  const double h = double(hash_name(image) % 10000);
  return h >= holdout * 10000 && h < std::min(2 * holdout, 1.0) * 10000;
}

static bool in_validation(const Dataset& ds, int i, double holdout) {
  const Sample& s = ds.samples[size_t(i)];
  if (ds.benchmark == "imagefolder") return imagefolder_validation(s.image, holdout);
  return held_out(s.item_id, holdout);  // In-shop: whole items, every image of an item goes the same way
}

std::vector<int> validation_indices(const Dataset& ds, double holdout) {
  if (ds.benchmark != "inshop" && ds.benchmark != "imagefolder") return ds.indices(Split::Val);
  std::vector<int> r;
  for (int i : train_indices(ds, holdout))
    if (in_validation(ds, i, holdout)) r.push_back(i);
  return r;
}

std::vector<int> train_indices_without_validation(const Dataset& ds, double holdout) {
  std::vector<int> train = train_indices(ds, holdout);
  if (ds.benchmark != "inshop" && ds.benchmark != "imagefolder") return train;
  std::vector<int> r;
  for (int i : train)
    if (!in_validation(ds, i, holdout)) r.push_back(i);
  return r;
}

}  // namespace fn::data
