// Consumer-to-shop Clothes Retrieval: Eval/list_eval_partition.txt lists (consumer image, shop image, item,
// status) pairs; each distinct image becomes one sample. The files are UTF-8 with a BOM and CRLF line ends,
// which text_table handles.
#include <algorithm>
#include <unordered_map>

#include "core/error.h"
#include "data/readers.h"

namespace fn::data {

// train and val keep their names; in test, consumer photos are the queries and shop photos the gallery
// (the README: "the gallery set here are all the shop images in test set").
static Split c2s_split(const Record& r, size_t col, int source) {
  const std::string s = r.str(col);
  if (s == "train") return Split::Train;
  if (s == "val") return Split::Val;
  if (s == "test") return source == 2 ? Split::Query : Split::Gallery;
  r.fail(cat("unknown evaluation status '", s, "' (train, val, test)"));
}

// "<Chinese name> <English name, may contain spaces> <type>"
static void read_c2s_attribute_names(Dataset& ds, LoadContext& ctx, const std::string& rel) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::CountAndColumns, ctx.report);
  ctx.each(t, [&](const Record& r) {
    if (r.size() < 3) r.expect_columns(3);
    const int type = r.to_int(r.size() - 1, "attribute_type", 1, 1000);
    std::string name = r.str(1);
    for (size_t c = 2; c + 1 < r.size(); ++c) name += " " + r.str(c);
    ds.attribute_names.push_back(name);
    ds.attribute_types.push_back(type);
  });
}

static void read_c2s_attribute_types(Dataset& ds, LoadContext& ctx, const std::string& rel) {
  TextTable t;
  read_table(t, ctx.full(rel), rel, Header::CountAndColumns, ctx.report);
  ctx.each(t, [&](const Record& r) {
    if (r.size() < 2) r.expect_columns(2);
    std::string name = r.str(1);
    for (size_t c = 2; c < r.size(); ++c) name += " " + r.str(c);
    ds.attribute_type_names.push_back(name);
  });
}

void read_consumer2shop(Dataset& ds, LoadContext& ctx) {
  const std::string part = ctx.find({"Eval/list_eval_partition.txt"}, Role::Required);
  // Without the partition there are no samples, but the other files are still read and checked.
  TextTable pt;
  if (!part.empty()) read_table(pt, ctx.full(part), part, Header::CountAndColumns, ctx.report);
  std::unordered_map<std::string, int> by_image;
  std::vector<std::string> sample_category;
  // Adds or re-checks one image of a pair: an image keeps one item, one status and one source.
  auto add = [&](const Record& r, size_t col, int source) {
    const std::string image = r.str(col);
    const std::string item = r.str(2);
    const Split split = c2s_split(r, 3, source);
    auto it = by_image.find(image);
    if (it != by_image.end()) {
      const Sample& s = ds.samples[it->second];
      if (s.source != source) r.fail(cat("image '", image, "' is both a consumer and a shop image"));
      if (s.item_id != item) r.fail(cat("image '", image, "' was item '", s.item_id, "' before, now '", item, "'"));
      if (s.split != split) r.fail(cat("image '", image, "' changes its evaluation status"));
      return;
    }
    const auto parts = path_parts(image);
    if (parts.size() != 5 || parts[0] != "img")
      r.fail(cat("image path '", image, "' is not img/<CATEGORY>/<Sub>/<item id>/<file>"));
    if (parts[3] != item) r.fail(cat("item id '", item, "' differs from the image's folder '", parts[3], "'"));
    Sample s;
    s.image = image;
    s.item_id = item;
    s.source = source;
    s.split = split;
    by_image.emplace(image, (int)ds.samples.size());
    sample_category.push_back(parts[1] + "/" + parts[2]);
    ds.samples.push_back(std::move(s));
  };
  ctx.each(pt, [&](const Record& r) {
    r.expect_columns(4);
    add(r, 0, 2);
    add(r, 1, 1);
  });

  assign_categories(ds, sample_category);
  assign_items(ds, ctx, "Anno/list_item_consumer2shop.txt", part);

  // bbox: image clothes_type source_type x1 y1 x2 y2
  const std::string bbox = ctx.find({"Anno/list_bbox_consumer2shop.txt"}, Role::Annotation);
  if (!bbox.empty())
    read_bbox_file(ds, ctx, bbox, "source_type", 2, [](const Record& r, int source, const Sample& s) {
      if (s.source != source)
        r.fail(cat("source_type ", source, " but the partition uses the image as a ",
                   s.source == 1 ? "shop" : "consumer", " image"));
    });

  const std::string lms = ctx.find({"Anno/list_landmarks_consumer2shop.txt"}, Role::Annotation);
  if (!lms.empty()) read_landmark_file(ds, ctx, lms);

  const std::string names = ctx.find({"Anno/list_attr_cloth.txt"}, Role::Annotation);
  const std::string types = ctx.find({"Anno/list_attr_type.txt"}, Role::Optional);
  const std::string values = ctx.find({"Anno/list_attr_items.txt"}, Role::Annotation);
  if (!names.empty()) read_c2s_attribute_names(ds, ctx, names);
  if (!types.empty()) read_c2s_attribute_types(ds, ctx, types);
  if (!values.empty()) {
    if (names.empty()) ctx.report.warning(cat(values, ": ignored, the attribute names are missing"));
    else read_item_attributes(ds, ctx, values);
  }
}

}  // namespace fn::data
