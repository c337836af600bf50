// fashionnet synth: writes a synthetic DeepFashion dataset (photos and annotation files in the real
// benchmark's layout), deterministic from the seed.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "apps/command.h"
#include "apps/validators.h"
#include "data/synth.h"

namespace {

int run_synth(int argc, char** argv) {
  fn::data::SynthConfig cfg;
  CLI::App app{"Write a synthetic DeepFashion dataset in the real benchmark's layout and file formats"};
  app.add_option("--out", cfg.out, "dataset root to write")->required();
  app.add_option("--benchmark", cfg.benchmark, "inshop | consumer2shop | category | landmark")
      ->check(CLI::IsMember({"inshop", "consumer2shop", "category", "landmark"}));
  app.add_option("--items", cfg.items, "number of items")->required()->check(fn::apps::positive());
  app.add_option("--seed", cfg.seed, "random seed")->required();
  app.add_option("--views", cfg.views, "photos per item (consumer2shop: half shop, half consumer)")->check(fn::apps::positive());
  app.add_option("--size", cfg.size, "photo side in pixels (inshop: square, default 256; the others: long side, default 300)")
      ->check(CLI::Range(32, 4096));
  app.add_option("--threads", cfg.threads, "drawing threads (the output does not depend on it)")->check(fn::apps::positive());
  app.add_option("--quality", cfg.jpeg_quality, "JPEG quality")->check(CLI::Range(1, 100));
  app.add_option("--look-alikes", cfg.look_alikes,
                 "items per look-alike group: they differ only in small details on the landmarks (1: none)")
      ->check(CLI::Range(1, 16));
  CLI11_PARSE(app, argc, argv);
  const auto sum = fn::data::synthesize(cfg);
  const int side = cfg.size ? cfg.size : cfg.benchmark == "inshop" ? 256 : 300;
  std::printf("synth %s: %lld items, %lld images of %s %d in %s (%.2f s, %.0f images/s)\n", cfg.benchmark.c_str(),
              (long long)sum.items, (long long)sum.images, cfg.benchmark == "inshop" ? "side" : "long side", side,
              cfg.out.c_str(), sum.seconds, sum.images / std::max(sum.seconds, 1e-9));
  return 0;
}

}  // namespace

FN_COMMAND("synth", "write a synthetic DeepFashion dataset (In-shop, Consumer-to-shop, Category or Landmark layout)", run_synth);
