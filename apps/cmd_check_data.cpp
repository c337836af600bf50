// fashionnet check-data: reads a dataset as the trainer would, and reports which files are there, the
// counts per split, and every problem found (each naming file and line). Exit 1 when there are errors.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <set>

#include "apps/command.h"
#include "data/dataset.h"

namespace {

int run_check_data(int argc, char** argv) {
  using namespace fn::data;
  CLI::App app{"Check a DeepFashion dataset: files, counts per split, every problem found"};
  std::string root, benchmark = "inshop", images = "auto";
  int max_problems = 20;
  app.add_option("--root", root, "dataset root (holding Anno/, Eval/, img/)")->required();
  app.add_option("--benchmark", benchmark, "inshop | consumer2shop | category | landmark | imagefolder")
      ->check(CLI::IsMember({"inshop", "consumer2shop", "category", "landmark", "imagefolder"}));
  app.add_option("--images", images, "check the photos: auto (when img/ exists) | yes | no")
      ->check(CLI::IsMember({"auto", "yes", "no"}));
  app.add_option("--max-problems", max_problems, "errors and warnings printed (the totals are always printed)");
  CLI11_PARSE(app, argc, argv);

  LoadReport rep;
  // Missing bbox/landmark/attribute files are warnings here: the pipeline can run without them.
  const Dataset ds = load_dataset(root, benchmark, /*require_annotations=*/false, &rep);

  std::printf("dataset %s (%s)\n\nfiles:\n", root.c_str(), benchmark.c_str());
  for (const auto& f : rep.files)
    std::printf("  %-9s %-44s %s\n", f.present ? "present" : "MISSING", f.path.c_str(), f.role.c_str());

  std::set<int> items;
  int64_t bbox = 0, lm = 0, attr = 0, vis_count[4] = {0, 0, 0, 0};
  for (const auto& s : ds.samples) {
    if (s.item >= 0) items.insert(s.item);
    bbox += s.has_bbox;
    lm += s.has_landmarks;
    attr += !s.attributes.empty();
    if (s.has_landmarks)
      for (int k = 0; k < kSlots; ++k) ++vis_count[s.lm.vis[k]];
  }
  std::printf("\nsamples: %zu images, %zu items, %zu categories, %zu attributes\n", ds.samples.size(), items.size(),
              ds.category_names.size(), ds.attribute_names.size());
  if (ds.item_ids.size() != items.size()) std::printf("  (the item list holds %zu ids)\n", ds.item_ids.size());
  for (Split sp : {Split::Train, Split::Val, Split::Query, Split::Gallery, Split::Test, Split::Unknown}) {
    const auto idx = ds.indices(sp);
    if (idx.empty()) continue;
    std::set<int> its;
    for (int i : idx)
      if (ds.samples[i].item >= 0) its.insert(ds.samples[i].item);
    std::printf("  %-8s %7zu images %6zu items\n", split_name(sp), idx.size(), its.size());
  }
  std::printf("annotations: bbox %lld, landmarks %lld (slots visible %lld, occluded %lld, cut off %lld), attributes %lld\n",
              (long long)bbox, (long long)lm, (long long)vis_count[0], (long long)vis_count[1], (long long)vis_count[2],
              (long long)attr);

  const bool has_img_dir = benchmark == "imagefolder" || std::filesystem::is_directory(root + "/img");
  if (images == "yes" || (images == "auto" && has_img_dir)) {
    const int64_t found = check_images(ds, rep);
    std::printf("images: %lld of %zu found on disk and checked\n", (long long)found, ds.samples.size());
  } else {
    std::printf("images: not present (no img/ folder), not checked\n");
  }

  auto print = [&](const char* what, const std::vector<std::string>& list, int64_t total) {
    if (!total) return;
    std::printf("\n%s (%lld):\n", what, (long long)total);
    for (size_t i = 0; i < list.size() && (int)i < max_problems; ++i) std::printf("  %s\n", list[i].c_str());
    if (total > max_problems) std::printf("  ... %lld more\n", (long long)(total - max_problems));
  };
  print("warnings", rep.warnings, rep.warning_count);
  print("errors", rep.errors, rep.error_count);
  std::printf("\nresult: %s (%lld errors, %lld warnings)\n", rep.error_count ? "FAILED" : "OK", (long long)rep.error_count,
              (long long)rep.warning_count);
  return rep.error_count ? 1 : 0;
}

}  // namespace

FN_COMMAND("check-data", "check a DeepFashion dataset's files, counts and annotations", run_check_data);
