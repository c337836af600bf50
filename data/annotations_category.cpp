// Category and Attribute Prediction, and Fashion Landmark Detection: both keep one record per image in
// each file ("<image> ..."), joined by image name. Neither lists item ids: a Category image's item is its
// product folder (img/<product title>/img_N.jpg), so that triplet batches have items; Landmark has none.
#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "data/readers.h"

namespace fn::data {

static Split tvt_status(const Record& r, size_t col) {
  const std::string s = r.str(col);
  if (s == "train") return Split::Train;
  if (s == "val") return Split::Val;
  if (s == "test") return Split::Test;
  r.fail(cat("unknown evaluation status '", s, "' (train, val, test)"));
}

// Eval/list_eval_partition.txt: "<image> <status>".
static void read_tvt_partition(Dataset& ds, LoadContext& ctx, const std::string& rel) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::CountAndColumns, ctx.report);
  ImageJoin join(ds, rel);
  ctx.each(t, [&](const Record& r) {
    r.expect_columns(2);
    const Split split = tvt_status(r, 1);  // checked before the join
    const int i = join.sample(r, 0);
    if (i >= 0) ds.samples[i].split = split;
  });
  join.finish(ctx.report);
}

// Item = the image's folder (a product title), dense over the sorted folder names, as assign_items numbers
// items without an item list.
static void assign_folder_items(Dataset& ds) {
  for (Sample& s : ds.samples) {
    const size_t slash = s.image.rfind('/');
    s.item_id = slash == std::string::npos ? std::string() : s.image.substr(0, slash);
    ds.item_ids.push_back(s.item_id);
  }
  std::sort(ds.item_ids.begin(), ds.item_ids.end());
  ds.item_ids.erase(std::unique(ds.item_ids.begin(), ds.item_ids.end()), ds.item_ids.end());
  for (Sample& s : ds.samples)
    s.item = int(std::lower_bound(ds.item_ids.begin(), ds.item_ids.end(), s.item_id) - ds.item_ids.begin());
}

void read_category(Dataset& ds, LoadContext& ctx) {
  const std::string cats = ctx.find({"Anno/list_category_cloth.txt"}, Role::Required);
  const std::string imgs = ctx.find({"Anno/list_category_img.txt"}, Role::Required);
  const std::string part = ctx.find({"Eval/list_eval_partition.txt"}, Role::Required);
  if (!cats.empty()) {  // "<name> <clothes type>"
    TextTable t;
    read_table(t, ctx.full(cats), cats, Header::CountAndColumns, ctx.report);
    ctx.each(t, [&](const Record& r) {
      r.expect_columns(2);
      ds.category_types.push_back(r.to_int(1, "category_type", 1, 3));
      ds.category_names.push_back(r.str(0));
    });
    // Without this, labels would be range-checked against nothing (a header "0" and no records loads).
    if (ds.category_names.empty()) ctx.report.error(cat(cats, ": lists no categories"));
  }
  if (!imgs.empty()) {  // "<image> <label 1..C>": defines the samples; without it the other files are still checked
    TextTable t;
    read_table(t, ctx.full(imgs), imgs, Header::CountAndColumns, ctx.report);
    std::unordered_map<std::string, int> seen;
    const int C = (int)ds.category_names.size();
    ctx.each(t, [&](const Record& r) {
      r.expect_columns(2);
      Sample s;
      s.image = r.str(0);
      const int label = r.to_int(1, "category_label", 1, C > 0 ? C : 1000);
      s.category = label - 1;
      if (C > 0) s.clothes_type = ds.category_types[s.category];
      if (!seen.emplace(s.image, (int)ds.samples.size()).second) r.fail(cat("image '", s.image, "' is listed twice"));
      ds.samples.push_back(std::move(s));
    });
    assign_folder_items(ds);
  }
  if (!part.empty()) read_tvt_partition(ds, ctx, part);

  const std::string bbox = ctx.find({"Anno/list_bbox.txt"}, Role::Annotation);
  if (!bbox.empty()) read_bbox_file(ds, ctx, bbox);
  const std::string lms = ctx.find({"Anno/list_landmarks.txt"}, Role::Annotation);
  if (!lms.empty()) read_landmark_file(ds, ctx, lms);

  // Attributes: "<name, may contain spaces> <type 1..5>" (the type is the last token), then per image
  // "<image> <A values>".
  const std::string names = ctx.find({"Anno/list_attr_cloth.txt"}, Role::Annotation);
  const std::string values = ctx.find({"Anno/list_attr_img.txt"}, Role::Annotation);
  if (!names.empty()) {
    TextTable t;
    read_table(t, ctx.full(names), names, Header::CountAndColumns, ctx.report);
    ctx.each(t, [&](const Record& r) {
      if (r.size() < 2) r.expect_columns(2);
      const int type = r.to_int(r.size() - 1, "attribute_type", 1, 5);
      std::string name = r.str(0);
      for (size_t c = 1; c + 1 < r.size(); ++c) name += " " + r.str(c);
      ds.attribute_names.push_back(name);
      ds.attribute_types.push_back(type);
    });
    ds.attribute_type_names = {"texture", "fabric", "shape", "part", "style"};
  }
  if (!values.empty()) {
    if (names.empty()) {
      ctx.report.warning(cat(values, ": ignored, the attribute names are missing"));
      return;
    }
    TextTable t;
    read_table(t, ctx.full(values), values, Header::CountAndColumns, ctx.report);
    ImageJoin join(ds, values);
    const size_t A = ds.attribute_names.size();
    ctx.each(t, [&](const Record& r) {
      r.expect_columns(1 + A);
      std::vector<int8_t> v(A);
      for (size_t a = 0; a < A; ++a) v[a] = attribute_from_file(r, 1 + a);
      const int i = join.sample(r, 0);
      if (i >= 0) ds.samples[i].attributes = std::move(v);
    });
    join.finish(ctx.report);
  }
}

void read_landmark(Dataset& ds, LoadContext& ctx) {
  const std::string part = ctx.find({"Eval/list_eval_partition.txt"}, Role::Required);
  const std::string lms = ctx.find({"Anno/list_landmarks.txt"}, Role::Required);
  if (!part.empty()) {  // the partition defines the samples: "<image> <status>"
    TextTable t;
    read_table(t, ctx.full(part), part, Header::CountAndColumns, ctx.report);
    std::unordered_map<std::string, int> seen;
    ctx.each(t, [&](const Record& r) {
      r.expect_columns(2);
      Sample s;
      s.image = r.str(0);
      s.split = tvt_status(r, 1);
      if (!seen.emplace(s.image, (int)ds.samples.size()).second) r.fail(cat("image '", s.image, "' is listed twice"));
      ds.samples.push_back(std::move(s));
    });
  }
  if (!lms.empty()) read_landmark_file(ds, ctx, lms);
  const std::string bbox = ctx.find({"Anno/list_bbox.txt"}, Role::Annotation);
  if (!bbox.empty()) read_bbox_file(ds, ctx, bbox);
}

}  // namespace fn::data
