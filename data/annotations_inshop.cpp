// In-shop Clothes Retrieval: Eval/list_eval_partition.txt names every image, its item and its split; the
// item list, bbox, landmark and attribute files are joined onto it by image (or item) name.
#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "data/readers.h"

namespace fn::data {

static Split inshop_status(const Record& r, size_t col) {
  const std::string s = r.str(col);
  if (s == "train") return Split::Train;
  if (s == "query") return Split::Query;
  if (s == "gallery") return Split::Gallery;
  r.fail(cat("unknown evaluation status '", s, "' (train, query, gallery)"));
}

// Attribute names: one per line, possibly with spaces; the count line may be missing (a known copy lacks it).
static void read_inshop_attribute_names(Dataset& ds, LoadContext& ctx, const std::string& rel) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::OptionalCount, ctx.report);
  if (t.declared < 0) ctx.report.warning(cat(rel, ":1: no record-count line (accepted)"));
  for (const Record& r : t.records) ds.attribute_names.push_back(std::string(r.text().substr(r.text().find_first_not_of(" \t"))));
  for (auto& n : ds.attribute_names) n.erase(n.find_last_not_of(" \t") + 1);
}

void read_inshop(Dataset& ds, LoadContext& ctx) {
  // --- the partition defines the samples
  const std::string part = ctx.find({"Eval/list_eval_partition.txt"}, Role::Required);
  // Without the partition there are no samples, but the other files are still read and checked.
  TextTable pt;
  if (!part.empty()) read_table(pt, ctx.full(part), part, Header::CountAndColumns, ctx.report);
  std::unordered_map<std::string, int> seen_image;
  std::vector<std::string> sample_category;
  ctx.each(pt, [&](const Record& r) {
    r.expect_columns(3);
    Sample s;
    s.image = r.str(0);
    s.item_id = r.str(1);
    s.split = inshop_status(r, 2);
    const auto parts = path_parts(s.image);
    if (parts.size() != 5 || parts[0] != "img")
      r.fail(cat("image path '", s.image, "' is not img/<GENDER>/<Category>/<item id>/<file>"));
    if (parts[3] != s.item_id) r.fail(cat("item id '", s.item_id, "' differs from the image's folder '", parts[3], "'"));
    if (!seen_image.emplace(s.image, (int)ds.samples.size()).second) r.fail(cat("image '", s.image, "' is listed twice"));
    sample_category.push_back(parts[1] + "/" + parts[2]);
    ds.samples.push_back(std::move(s));
  });

  // Categories (<GENDER>/<Category>) sorted, so the dense index does not depend on row order.
  assign_categories(ds, sample_category);
  assign_items(ds, ctx, "Anno/list_item_inshop.txt", part);

  // --- bbox: image clothes_type pose_type x1 y1 x2 y2
  const std::string bbox = ctx.find({"Anno/list_bbox_inshop.txt"}, Role::Annotation);
  if (!bbox.empty()) read_bbox_file(ds, ctx, bbox, "pose_type", 6);

  // --- landmarks: image clothes_type variation_type (visibility x y)*n
  const std::string lms = ctx.find({"Anno/list_landmarks_inshop.txt"}, Role::Annotation);
  if (!lms.empty()) read_landmark_file(ds, ctx, lms);

  // --- attributes: names, then per-item values (v1.3 keeps both under Anno/attributes/)
  const std::string names = ctx.find({"Anno/attributes/list_attr_cloth.txt", "Anno/list_attr_cloth.txt"}, Role::Annotation);
  const std::string values = ctx.find({"Anno/attributes/list_attr_items.txt", "Anno/list_attr_items.txt"}, Role::Annotation);
  if (!names.empty()) read_inshop_attribute_names(ds, ctx, names);
  if (!values.empty()) {
    if (names.empty()) ctx.report.warning(cat(values, ": ignored, the attribute names are missing"));
    else read_item_attributes(ds, ctx, values);
  }
}

}  // namespace fn::data
