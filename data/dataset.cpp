#include "data/dataset.h"

#include <filesystem>

#include "core/error.h"
#include "data/readers.h"

namespace fn::data {

const char* slot_name(int slot) {
  static const char* names[kSlots] = {"L collar", "R collar", "L sleeve", "R sleeve",
                                      "L waistline", "R waistline", "L hem", "R hem"};
  return slot >= 0 && slot < kSlots ? names[slot] : "?";
}

int mirror_slot(int slot) { return slot ^ 1; }  // pairs are (0,1), (2,3), (4,5), (6,7)

const char* split_name(Split s) {
  switch (s) {
    case Split::Train: return "train";
    case Split::Query: return "query";
    case Split::Gallery: return "gallery";
    case Split::Val: return "val";
    case Split::Test: return "test";
    default: return "unknown";
  }
}

const char* variation_name(int variation) {
  static const char* names[5] = {"normal pose", "medium pose", "large pose", "medium zoom-in", "large zoom-in"};
  return variation >= 1 && variation <= 5 ? names[variation - 1] : "unknown";
}

std::vector<int> Dataset::indices(Split s) const {
  std::vector<int> out;
  for (size_t i = 0; i < samples.size(); ++i)
    if (samples[i].split == s) out.push_back((int)i);
  return out;
}

void LoadReport::error(std::string msg) {
  if (errors.size() < kMaxKept) errors.push_back(std::move(msg));
  ++error_count;
}

void LoadReport::warning(std::string msg) {
  if (warnings.size() < kMaxKept) warnings.push_back(std::move(msg));
  ++warning_count;
}

Dataset load_dataset(const std::string& root, const std::string& benchmark, bool require_annotations) {
  return load_dataset(root, benchmark, require_annotations, nullptr);
}

Dataset load_dataset(const std::string& root, const std::string& benchmark, bool require_annotations,
                     LoadReport* report) {
  LoadReport local;
  LoadReport& rep = report ? *report : local;
  Dataset ds;
  ds.root = root;
  ds.benchmark = benchmark;
  if (!std::filesystem::is_directory(root)) {
    rep.error(cat(root, ": dataset root is not a directory"));
  } else {
    LoadContext ctx{root, require_annotations, rep};
    if (benchmark == "inshop") read_inshop(ds, ctx);
    else if (benchmark == "consumer2shop") read_consumer2shop(ds, ctx);
    else if (benchmark == "category") read_category(ds, ctx);
    else if (benchmark == "landmark") read_landmark(ds, ctx);
    else if (benchmark == "imagefolder") read_imagefolder(ds, ctx);
    else FN_USER_FAIL("unknown benchmark '", benchmark,
                      "' (expected inshop, consumer2shop, category, landmark or imagefolder)");
  }
  if (!report && rep.error_count > 0) {
    std::string msg = cat("cannot load ", benchmark, " dataset at ", root, ": ", rep.error_count, " error(s)");
    for (size_t i = 0; i < rep.errors.size() && i < 10; ++i) msg += cat("\n  ", rep.errors[i]);
    if (rep.error_count > 10) msg += "\n  ...";
    FN_USER_FAIL(msg);
  }
  return ds;
}

}  // namespace fn::data
