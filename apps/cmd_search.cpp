// fashionnet search --checkpoint C --gallery PREFIX --image IMG... [--k 10] --html OUT.html
//                   [--gallery-root DIR] [--query-ids FILE | --item ID]
//                   [--boxes FILE | --box X1,Y1,X2,Y2 | --data DIR [--benchmark B]] [--mirror] [--device D]
//   embeds each query photo (the whole image, or the garment's box: given, or the dataset's own for an image of
//   --data, whose item it then knows too; predicted landmarks), prints its k nearest
//   gallery images and writes an HTML page with the landmarks drawn over each query and its results
//   (docs/search.md). --mirror averages each query with its mirror image (fashionnet/eval/mirror.h), for a
//   gallery `embed --mirror` wrote.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/command.h"
#include "data/dataset.h"
#include "fashionnet/eval/photo_search.h"

namespace {
int run_search(int argc, char** argv) {
  CLI::App app{"Search a gallery with plain photos and write an HTML page of the results"};
  fn::fashionnet::SearchRequest req;
  std::string device = "auto", query_ids, item, boxes, box, data, benchmark = "inshop";
  app.add_option("--checkpoint", req.checkpoint, "a training checkpoint")->required();
  app.add_option("--gallery", req.gallery, "gallery prefix written by `fashionnet embed` (.npy + .ids.txt)")
      ->required();
  std::vector<std::string> images;
  app.add_option("--image", images, "query photos (JPEG or PNG), folders of them (searched in and below), or "
                 ".txt lists of photo paths (one per line)")
      ->required();
  app.add_option("--k", req.k, "results per query")->capture_default_str();
  app.add_option("--html", req.html, "the page to write")->required();
  app.add_option("--gallery-root", req.gallery_root,
                 "folder the gallery's ids paths are relative to (embed's --data); default: the folder "
                 "`embed` recorded in PREFIX.root.txt, else (older galleries) the working directory if the "
                 "first path exists there, else the ids file's folder");
  auto* qi = app.add_option("--query-ids", query_ids, "ids file (\"image_path item_id\" lines) giving query items");
  app.add_option("--item", item, "item id of the single query image")->excludes(qi);
  auto* bf = app.add_option("--boxes", boxes, "box file (\"image_path x1 y1 x2 y2\" lines, pixels): each listed "
                            "photo is cropped to its garment's box, widened as training widened its boxes");
  auto* bx = app.add_option("--box", box, "X1,Y1,X2,Y2: the garment's box in the single query photo, in pixels")
                 ->excludes(bf);
  auto* data_opt = app.add_option("--data", data, "a dataset whose images the query photos are: each gets the "
                                  "dataset's box and item (as `embed --data` and `eval` see it)")
      ->excludes(bf)
      ->excludes(bx);
  app.add_option("--benchmark", benchmark, "the --data dataset's layout: inshop | consumer2shop | category | "
                 "landmark | imagefolder")
      ->capture_default_str()
      ->needs(data_opt);
  app.add_flag("--mirror", req.mirror, "embed each query photo with its mirror image, averaged (as `embed --mirror`)");
  app.add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  req.device = fn::parse_device(device);
  req.images = fn::fashionnet::expand_image_args(images);
  if (!box.empty()) {
    FN_EXPECT(req.images.size() == 1, "--box gives the box of a single query image; for ", req.images.size(),
              " images use --boxes");
    req.boxes = {fn::fashionnet::parse_box(box)};
  } else if (!boxes.empty()) {
    req.boxes = fn::fashionnet::photo_boxes_from_file(boxes, req.images);
  } else if (!data.empty()) {
    fn::fashionnet::DatasetQueries dq =
        fn::fashionnet::dataset_queries(fn::data::load_dataset(data, benchmark, benchmark != "imagefolder"), req.images);
    req.boxes = std::move(dq.boxes);
    if (item.empty() && query_ids.empty()) req.query_item_ids = std::move(dq.item_ids);  // given ids win
    if (dq.matched < req.images.size())
      std::fprintf(stderr, "warning: %zu of %zu query photos are not images of %s: they are searched whole\n",
                   req.images.size() - dq.matched, req.images.size(), data.c_str());
  }
  if (!item.empty()) {
    FN_EXPECT(req.images.size() == 1, "--item names the item of a single query image; for ", req.images.size(),
              " images use --query-ids");
    req.query_item_ids = {item};
  } else if (!query_ids.empty()) {
    req.query_item_ids = fn::fashionnet::query_ids_from_file(query_ids, req.images);
  }
  fn::fashionnet::SearchOutcome out = fn::fashionnet::search_photos(req);
  if (!out.warning.empty()) std::fprintf(stderr, "warning: %s\n", out.warning.c_str());
  for (size_t i = 0; i < out.queries.size(); ++i) {
    const auto& q = out.queries[i];
    std::string boxed;
    if (!req.boxes.empty() && req.boxes[i]) {
      const auto& b = *req.boxes[i];
      boxed = fn::cat("  box ", b.x1, ",", b.y1, ",", b.x2, ",", b.y2);
    }
    std::printf("query %zu: %s%s%s%s\n", i + 1, q.image.c_str(), q.item_id.empty() ? "" : "  item ",
                q.item_id.c_str(), boxed.c_str());
    std::printf("  %4s  %8s  %-12s  %s\n", "rank", "distance", "item", "image");
    for (size_t r = 0; r < q.results.size(); ++r) {
      const auto& res = q.results[r];
      const bool hit = fn::fashionnet::item_known(q.item_id) && res.item_id == q.item_id;
      std::printf("  %4zu  %8.4f  %-12s  %s%s\n", r + 1, double(res.distance), res.item_id.c_str(),
                  out.gallery_paths_as_listed[i][r].c_str(), hit ? "  (hit)" : "");
    }
  }
  std::printf("wrote %s (%zu queries, gallery of %lld)\n", req.html.c_str(), out.queries.size(),
              (long long)out.gallery_rows);
  return 0;
}
}  // namespace

FN_COMMAND("search", "search a gallery with photos and write an HTML page of the results", run_search);
