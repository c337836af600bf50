#include "data/annotations_common.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

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

ImageJoin::ImageJoin(const Dataset& ds, std::string file) : ds_(ds), file_(std::move(file)), seen_(ds.samples.size(), 0) {
  index_.reserve(ds.samples.size() * 2);
  for (size_t i = 0; i < ds.samples.size(); ++i) index_.emplace(ds.samples[i].image, (int)i);
}

int ImageJoin::sample(const Record& r, size_t col) {
  const std::string name = r.str(col);
  auto it = index_.find(name);
  if (it == index_.end()) {
    if (unknown_++ < 3) unknown_names_ += cat(unknown_ > 1 ? ", " : "", name, " (line ", r.line(), ")");
    return -1;
  }
  if (seen_[it->second]) r.fail(cat("image '", name, "' is listed twice"));
  seen_[it->second] = 1;
  return it->second;
}

void ImageJoin::finish(LoadReport& report) const {
  if (unknown_)
    report.warning(cat(file_, ": ", unknown_, " records name images the dataset does not list, ignored: ",
                       unknown_names_, unknown_ > 3 ? ", ..." : ""));
  int64_t missing = 0;
  std::string names;
  for (size_t i = 0; i < seen_.size(); ++i)
    if (!seen_[i] && missing++ < 3) names += cat(missing > 1 ? ", " : "", ds_.samples[i].image);
  if (missing)
    report.error(cat(file_, ": ", missing, " images of the dataset have no record (", names, missing > 3 ? ", ..." : "", ")"));
}

void read_landmark_file(Dataset& ds, LoadContext& ctx, const std::string& rel) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::CountAndColumns, ctx.report);
  ImageJoin join(ds, rel);
  ctx.each(t, [&](const Record& r) {
    const int type = r.to_int(1, "clothes_type", 1, 3);
    const int variation = r.to_int(2, "variation_type", 1, 5);
    const Landmarks lm = parse_landmarks(r, 3, type);
    const int i = join.sample(r, 0);
    if (i < 0) return;
    Sample& s = ds.samples[i];
    if (s.clothes_type && s.clothes_type != type)
      r.fail(cat("clothes_type ", type, " differs from the one already known for the image (", s.clothes_type, ")"));
    s.clothes_type = type;
    s.has_landmarks = true;
    s.lm = lm;
    s.variation = variation;
  });
  join.finish(ctx.report);
}

void read_bbox_file(Dataset& ds, LoadContext& ctx, const std::string& rel, const char* column2, int column2_max,
                    const BoxColumnCheck& check) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::CountAndColumns, ctx.report);
  ImageJoin join(ds, rel);
  const bool typed = column2 != nullptr;
  ctx.each(t, [&](const Record& r) {
    r.expect_columns(typed ? 7 : 5);
    Sample box;  // the whole record is checked before it is joined
    int value = 0;
    if (typed) {
      box.clothes_type = r.to_int(1, "clothes_type", 1, 3);
      value = r.to_int(2, column2, 1, column2_max);
    }
    parse_bbox(r, typed ? 3 : 1, box);
    const int i = join.sample(r, 0);
    if (i < 0) return;
    Sample& s = ds.samples[i];
    if (check) check(r, value, s);
    if (typed) s.clothes_type = box.clothes_type;
    s.has_bbox = true;
    s.x1 = box.x1, s.y1 = box.y1, s.x2 = box.x2, s.y2 = box.y2;
  });
  join.finish(ctx.report);
}

void read_item_attributes(Dataset& ds, LoadContext& ctx, const std::string& rel) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::CountAndColumns, ctx.report);
  const size_t A = ds.attribute_names.size();
  std::unordered_map<std::string, std::vector<int8_t>> by_item;
  ctx.each(t, [&](const Record& r) {
    r.expect_columns(1 + A);
    std::vector<int8_t> v(A);
    for (size_t a = 0; a < A; ++a) v[a] = attribute_from_file(r, 1 + a);
    if (!by_item.emplace(r.str(0), std::move(v)).second) r.fail(cat("item '", r.str(0), "' is listed twice"));
  });
  int64_t without = 0;
  for (Sample& s : ds.samples) {
    auto it = by_item.find(s.item_id);
    if (it == by_item.end()) {
      ++without;
      continue;
    }
    s.attributes = it->second;
  }
  if (without) ctx.report.error(cat(rel, ": ", without, " images belong to items that have no attribute record"));
}

void assign_categories(Dataset& ds, const std::vector<std::string>& sample_category) {
  ds.category_names = sample_category;
  std::sort(ds.category_names.begin(), ds.category_names.end());
  ds.category_names.erase(std::unique(ds.category_names.begin(), ds.category_names.end()), ds.category_names.end());
  for (size_t i = 0; i < ds.samples.size(); ++i)
    ds.samples[i].category = int(std::lower_bound(ds.category_names.begin(), ds.category_names.end(), sample_category[i]) -
                                 ds.category_names.begin());
}

void assign_items(Dataset& ds, LoadContext& ctx, const char* rel, const std::string& partition) {
  const std::string items = ctx.find({rel}, Role::Annotation);
  if (!items.empty()) {
    std::unordered_map<std::string, int> item_index;
    TextTable t;
    read_table(t, ctx.full(items), items, Header::CountOnly, ctx.report);
    ctx.each(t, [&](const Record& r) {
      r.expect_columns(1);
      if (!item_index.emplace(r.str(0), (int)ds.item_ids.size()).second) r.fail(cat("item '", r.str(0), "' is listed twice"));
      ds.item_ids.push_back(r.str(0));
    });
    int64_t unknown = 0;
    for (Sample& s : ds.samples) {
      auto f = item_index.find(s.item_id);
      if (f == item_index.end()) ++unknown; else s.item = f->second;
    }
    if (unknown) ctx.report.error(cat(partition, ": ", unknown, " images name items missing from ", items));
    return;
  }
  for (auto& s : ds.samples) ds.item_ids.push_back(s.item_id);
  std::sort(ds.item_ids.begin(), ds.item_ids.end());
  ds.item_ids.erase(std::unique(ds.item_ids.begin(), ds.item_ids.end()), ds.item_ids.end());
  for (auto& s : ds.samples)
    s.item = int(std::lower_bound(ds.item_ids.begin(), ds.item_ids.end(), s.item_id) - ds.item_ids.begin());
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
