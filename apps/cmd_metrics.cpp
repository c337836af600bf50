// fashionnet metrics: retrieval accuracy of saved embeddings (PREFIX.npy + PREFIX.ids.txt, as `embed`
// writes them): exact nearest-neighbour search of every query in the gallery, then the paper's top-k
// accuracy, mmfashion's recall@k and mAP@k (definitions: fashionnet/eval/retrieval_metrics.h, docs/search.md).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>

#include <CLI/CLI.hpp>

#include "apps/command.h"
#include "fashionnet/eval/embedding_io.h"
#include "fashionnet/eval/retrieval_metrics.h"

namespace {

int run_metrics(int argc, char** argv) {
  CLI::App app{"Retrieval metrics of query embeddings against gallery embeddings (exact search)"};
  std::string query, gallery, ks_text = "1,5,10,20,30,40,50", device = "auto", json_path;
  bool json_stdout = false;
  app.add_option("--query", query, "query prefix: reads PREFIX.npy and PREFIX.ids.txt")->required();
  app.add_option("--gallery", gallery, "gallery prefix: reads PREFIX.npy and PREFIX.ids.txt")->required();
  app.add_option("--k", ks_text, "comma-separated increasing k values")->capture_default_str();
  app.add_flag("--json", json_stdout, "print the results as JSON instead of the table");
  app.add_option("--json-out", json_path, "also write the JSON to this file");
  app.add_option("--device", device, "auto, cpu or cuda")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  std::vector<int64_t> ks = fn::fashionnet::parse_ks(ks_text);
  fn::Device dev = fn::parse_device(device);
  fn::fashionnet::Embeddings q = fn::fashionnet::read_embeddings(query);
  fn::fashionnet::Embeddings g = fn::fashionnet::read_embeddings(gallery);
  // `embed --images` writes item "-": such rows can be searched (fashionnet search) but not scored.
  for (const auto& [e, prefix] : {std::pair{&q, &query}, std::pair{&g, &gallery}})
    FN_EXPECT(std::any_of(e->item_ids.begin(), e->item_ids.end(), [](const std::string& id) { return id != "-"; }),
              *prefix, ".ids.txt: no row has an item id (\"-\", as `embed --images` writes for plain photos): a "
              "query is scored by its item's gallery images; embed a dataset split (`embed --data`), or look at "
              "the neighbours with `fashionnet search`");
  auto report = fn::fashionnet::evaluate_retrieval(q, g, ks, dev, query + ".npy", gallery + ".npy");
  nlohmann::json j = fn::fashionnet::to_json(report);
  j["query"] = query;
  j["gallery"] = gallery;
  if (json_stdout)
    std::printf("%s\n", j.dump(2).c_str());
  else
    std::printf("%s", fn::fashionnet::format_table(report).c_str());
  if (!json_path.empty()) {
    std::ofstream f(json_path);
    FN_EXPECT(f.good(), json_path, ": cannot open for writing (does the folder exist?)");
    f << j.dump(2) << "\n";
    f.close();
    FN_EXPECT(f.good(), json_path, ": write failed (is the disk full?)");
  }
  return 0;
}

}  // namespace

// Registered by hand, as FN_COMMAND would: the macro's parameter `fn` also renames its `::fn::apps`.
static fn::apps::CommandRegistrar metrics_command(
    {"metrics", "retrieval top-k accuracy, recall@k and mAP@k of saved embeddings (exact search)", run_metrics});
