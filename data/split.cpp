#include "data/split.h"

#include <cstdint>
#include <string>

namespace fn::data {
namespace {

uint64_t hash_name(const std::string& s) {  // FNV-1a
  uint64_t h = 1469598103934665603ull;
  for (char c : s) h = (h ^ uint8_t(c)) * 1099511628211ull;
  return h;
}

}  // namespace

std::vector<int> holdout_indices(const Dataset& ds, double holdout) {
  std::vector<int> r;
  if (ds.benchmark != "imagefolder") return ds.indices(Split::Val);
  for (size_t i = 0; i < ds.samples.size(); ++i)
    if (double(hash_name(ds.samples[i].image) % 10000) < holdout * 10000) r.push_back(int(i));
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

}  // namespace fn::data
