#include "data/annotations_common.h"

#include <filesystem>

#include "core/error.h"

namespace fn::data {

std::string LoadContext::find(std::initializer_list<const char*> candidates, Role role) {
  for (const char* c : candidates) {
    if (std::filesystem::is_regular_file(full(c))) {
      report.files.push_back({c, role == Role::Required ? "required" : role == Role::Annotation ? "annotation" : "optional", true});
      return c;
    }
  }
  const std::string first = *candidates.begin();
  std::string also;
  for (auto it = candidates.begin() + 1; it != candidates.end(); ++it) also += cat(" or ", *it);
  const char* role_name = role == Role::Required ? "required" : role == Role::Annotation ? "annotation" : "optional";
  report.files.push_back({first, role_name, false});
  const std::string msg = cat(first, also, ": missing (", role_name, " file)");
  if (role == Role::Required || (role == Role::Annotation && require_annotations))
    report.error(msg);
  else
    report.warning(msg);
  return "";
}

const std::vector<int>& slots_of_type(int clothes_type) {
  static const std::vector<int> upper = {kLCollar, kRCollar, kLSleeve, kRSleeve, kLHem, kRHem};
  static const std::vector<int> lower = {kLWaist, kRWaist, kLHem, kRHem};
  static const std::vector<int> full = {0, 1, 2, 3, 4, 5, 6, 7};
  static const std::vector<int> none;
  switch (clothes_type) {
    case 1: return upper;
    case 2: return lower;
    case 3: return full;
    default: return none;
  }
}

Landmarks parse_landmarks(const Record& r, size_t first, int clothes_type) {
  const auto& slots = slots_of_type(clothes_type);
  if (slots.empty()) r.fail(cat("clothes_type ", clothes_type, " has no landmark layout"));
  const size_t exact = first + 3 * slots.size(), padded = first + 3 * kSlots;
  if (r.size() != exact) {
    if (r.size() != padded) r.fail(cat("expected ", exact, " columns for clothes_type ", clothes_type, " (", slots.size(),
                                       " landmarks), found ", r.size()));
    for (size_t c = exact; c < padded; ++c)
      if (r.to_float(c, "padding") != 0.f)
        r.fail(cat("clothes_type ", clothes_type, " has ", slots.size(), " landmarks but column ", c + 1, " is not 0"));
  }
  Landmarks lm;
  for (int s = 0; s < kSlots; ++s) lm.x[s] = lm.y[s] = 0.f, lm.vis[s] = kAbsent;
  for (size_t k = 0; k < slots.size(); ++k) {
    const size_t c = first + 3 * k;
    const int slot = slots[k];
    const int vis = r.to_int(c, "visibility", 0, 2);
    const float x = r.to_float(c + 1, "landmark x"), y = r.to_float(c + 2, "landmark y");
    // Cut-off landmarks may carry any position (often 0 0); the others must at least be non-negative.
    if (vis != kCutOff && (x < 0 || y < 0))
      r.fail(cat(slot_name(slot), " landmark (", x, ", ", y, ") is negative"));
    lm.vis[slot] = (uint8_t)vis;
    lm.x[slot] = x;
    lm.y[slot] = y;
  }
  return lm;
}

void parse_bbox(const Record& r, size_t first, Sample& s) {
  const int x1 = r.to_int(first, "x1"), y1 = r.to_int(first + 1, "y1");
  const int x2 = r.to_int(first + 2, "x2"), y2 = r.to_int(first + 3, "y2");
  if (x1 < 0 || y1 < 0) r.fail(cat("bbox (", x1, ", ", y1, ", ", x2, ", ", y2, ") has a negative corner"));
  if (x2 <= x1 || y2 <= y1) r.fail(cat("bbox (", x1, ", ", y1, ", ", x2, ", ", y2, ") is empty"));
  s.has_bbox = true;
  s.x1 = x1, s.y1 = y1, s.x2 = x2, s.y2 = y2;
}

int8_t attribute_from_file(const Record& r, size_t col) {
  const int v = r.to_int(col, "attribute value", -1, 1);
  return v == 1 ? 1 : v == -1 ? 0 : -1;
}

ImageIndex::ImageIndex(const Dataset& ds) {
  index_.reserve(ds.samples.size() * 2);
  for (size_t i = 0; i < ds.samples.size(); ++i) index_.emplace(ds.samples[i].image, (int)i);
}

int ImageIndex::find(const std::string& image) const {
  auto it = index_.find(image);
  return it == index_.end() ? -1 : it->second;
}

int ImageIndex::require(const Record& r, size_t col, std::vector<char>& seen) const {
  const std::string name = r.str(col);
  const int i = find(name);
  if (i < 0) r.fail(cat("image '", name, "' is not in the dataset's image list"));
  if (seen[i]) r.fail(cat("image '", name, "' is listed twice"));
  seen[i] = 1;
  return i;
}

void ImageIndex::report_unseen(const Dataset& ds, const std::vector<char>& seen, const std::string& file,
                               LoadReport& report) {
  int64_t missing = 0;
  std::string names;
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i] && missing++ < 3) names += cat(missing > 1 ? ", " : "", ds.samples[i].image);
  if (missing) report.error(cat(file, ": ", missing, " images of the dataset have no record (", names,
                                missing > 3 ? ", ..." : "", ")"));
}

int intern(std::unordered_map<std::string, int>& index, std::vector<std::string>& names, const std::string& name) {
  auto [it, added] = index.emplace(name, (int)names.size());
  if (added) names.push_back(name);
  return it->second;
}

std::vector<std::string> path_parts(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

}  // namespace fn::data
