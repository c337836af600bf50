// fashionnet search --checkpoint C --gallery PREFIX --image IMG... [--k 10] --html OUT.html
//                   [--gallery-root DIR] [--query-ids FILE | --item ID] [--mirror] [--device D]
//   embeds each query photo (whole image, predicted landmarks), prints its k nearest gallery images and
//   writes an HTML page with the landmarks drawn over each query and its results (docs/search.md). --mirror
//   averages each query with its mirror image (fashionnet/eval/mirror.h), for a gallery `embed --mirror` wrote.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/command.h"
#include "fashionnet/eval/photo_search.h"

namespace {
int run_search(int argc, char** argv) {
  CLI::App app{"Search a gallery with plain photos and write an HTML page of the results"};
  fn::fashionnet::SearchRequest req;
  std::string device = "auto", query_ids, item;
  app.add_option("--checkpoint", req.checkpoint, "a training checkpoint")->required();
  app.add_option("--gallery", req.gallery, "gallery prefix written by `fashionnet embed` (.npy + .ids.txt)")
      ->required();
  app.add_option("--image", req.images, "query photos (JPEG or PNG)")->required();
  app.add_option("--k", req.k, "results per query")->capture_default_str();
  app.add_option("--html", req.html, "the page to write")->required();
  app.add_option("--gallery-root", req.gallery_root,
                 "folder the gallery's ids paths are relative to (embed's --data); default: the folder "
                 "`embed` recorded in PREFIX.root.txt, else (older galleries) the working directory if the "
                 "first path exists there, else the ids file's folder");
  auto* qi = app.add_option("--query-ids", query_ids, "ids file (\"image_path item_id\" lines) giving query items");
  app.add_option("--item", item, "item id of the single query image")->excludes(qi);
  app.add_flag("--mirror", req.mirror, "embed each query photo with its mirror image, averaged (as `embed --mirror`)");
  app.add_option("--device", device, "auto | cpu | cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  req.device = fn::parse_device(device);
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
    std::printf("query %zu: %s%s%s\n", i + 1, q.image.c_str(), q.item_id.empty() ? "" : "  item ",
                q.item_id.c_str());
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
