// The Category-and-Attribute and the Landmark Detection benchmarks end to end on the CPU, as a user runs
// them: synth (small) -> check-data (load_dataset with a report, check_images) -> a tiny training run (preset
// tiny, a few steps) -> eval on the test split with the papers' protocol (category top-k, attribute recall per
// group, landmark error per slot and per variation type, the detection-rate curve, the HTML report).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/split.h"
#include "data/synth.h"
#include "fashionnet/eval/evaluate.h"
#include "fashionnet/report/report.h"
#include "fashionnet/train/benchmark_weights.h"
#include "fashionnet/train/checkpoint.h"
#include "fashionnet/train/trainer.h"
#include "tests/support/check.h"
#include "tests/support/synth_dataset.h"
#include "tests/support/temp_dir.h"

using namespace fn;
using namespace fn::fashionnet;
namespace fs = std::filesystem;

namespace {

fs::path scratch() { return fn::test::process_temp_dir("benchmarks"); }  // removed when the executable exits

// 40 garments x 3 photos of long side 64: some 28 product folders train, 6 test.
std::string synth(const std::string& benchmark) { return test::synth_dataset(scratch() / benchmark, benchmark, 40, 3, 64, 5); }

// What `fashionnet check-data` does: no error in the files, every photo on disk with its boxes inside.
data::Dataset check_data(const std::string& root, const std::string& benchmark) {
  data::LoadReport rep;
  data::Dataset ds = data::load_dataset(root, benchmark, /*require_annotations=*/true, &rep);
  INFO((rep.errors.empty() ? std::string() : rep.errors.front()));
  REQUIRE(rep.error_count == 0);
  REQUIRE(data::check_images(ds, rep) == int64_t(ds.samples.size()));
  INFO((rep.errors.empty() ? std::string() : rep.errors.front()));
  REQUIRE(rep.error_count == 0);
  return ds;
}

// tiny, 3 + 3 steps.
TrainConfig tiny_run() {
  TrainConfig cfg = preset("tiny");
  cfg.stages[0].steps = 3;
  cfg.stages[1].steps = 3;
  cfg.checkpoint_every = 3;
  cfg.log_every = 1;
  return cfg;
}

// Runs train() with its standard output going to a file, and returns that output.
std::string train_capturing(const TrainConfig& cfg, const TrainOptions& opt, TrainSummary& sum) {
  const std::string path = opt.out_dir + ".stdout";
  std::fflush(stdout);
  const int saved = ::dup(1);
  REQUIRE(std::freopen(path.c_str(), "w", stdout) != nullptr);
  try {
    sum = train(cfg, opt);
  } catch (...) {
    std::fflush(stdout);
    ::dup2(saved, 1);
    ::close(saved);
    throw;
  }
  std::fflush(stdout);
  ::dup2(saved, 1);
  ::close(saved);
  std::ifstream f(path);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

// The loss terms logged in metrics.jsonl, over all lines.
std::set<std::string> logged_terms(const std::string& run) {
  std::ifstream f(run + "/metrics.jsonl");
  std::set<std::string> terms;
  std::string line;
  while (std::getline(f, line)) {
    const nlohmann::json j = nlohmann::json::parse(line);  // kept: the loop below iterates inside it
    if (j.contains("terms"))
      for (auto& [k, v] : j["terms"].items()) terms.insert(k);
  }
  return terms;
}

EvalResult evaluate_test_split(const std::string& checkpoint, const data::Dataset& ds) {
  auto model = model_from_checkpoint(checkpoint, Device::CPU);
  EvalOptions eo;
  eo.inference.progress = false;
  eo.inference.threads = 0;
  return evaluate(*model, ds, Device::CPU, eo);
}

}  // namespace

TEST_CASE("Category benchmark: synth, check-data, train (triplets over product folders), eval", "[benchmarks]") {
  const std::string root = synth("category");
  const data::Dataset ds = check_data(root, "category");
  // The attribute groups of list_attr_cloth.txt, and an item per product folder.
  REQUIRE(ds.attribute_names.size() == 1000);
  REQUIRE(ds.attribute_types.size() == 1000);
  CHECK(ds.attribute_type_names == std::vector<std::string>{"texture", "fabric", "shape", "part", "style"});
  REQUIRE(!ds.item_ids.empty());
  CHECK(ds.item_ids.size() < ds.samples.size());
  for (const auto& s : ds.samples) {
    REQUIRE(s.item >= 0);
    CHECK(s.image.rfind(ds.item_ids[size_t(s.item)] + "/", 0) == 0);  // the item is the image's folder
    CHECK((s.variation >= 1 && s.variation <= 5));
  }

  TrainOptions opt;
  opt.data_root = root;
  opt.benchmark = "category";
  opt.out_dir = (scratch() / "run_category").string();
  opt.loader_threads = 0;
  opt.quiet = true;
  const TrainSummary sum = train(tiny_run(), opt);
  CHECK(sum.steps == 6);
  REQUIRE(fs::exists(sum.final_checkpoint));
  // Every term trains: tiny's P=2 x K=4 batches take product folders as items.
  CHECK(logged_terms(opt.out_dir) == std::set<std::string>{"attr", "cat", "lm", "tri", "vis"});
  CHECK(trained_terms(checkpoint_config(sum.final_checkpoint)) == "landmarks, visibility, category, attributes, triplet");

  const EvalResult r = evaluate_test_split(sum.final_checkpoint, ds);
  const std::vector<int> test = ds.indices(data::Split::Test);
  REQUIRE(!test.empty());
  CHECK(r.scored.mode == "test");
  CHECK(r.scored.images == int64_t(test.size()));
  CHECK_FALSE(r.retrieval.has_value());
  const HeadMetrics& m = r.heads;
  CHECK(m.category_samples == int64_t(test.size()));
  CHECK(m.category_top1 <= m.category_top3);
  CHECK(m.category_top3 <= m.category_top5);
  CHECK(m.attribute_samples == int64_t(test.size()));
  REQUIRE(m.attribute_groups.size() == 5);
  CHECK(m.attribute_groups[0].name == "texture");
  CHECK(m.attribute_groups[4].name == "style");
  int in_groups = 0;
  for (const auto& g : m.attribute_groups) in_groups += g.attributes_total;
  CHECK(in_groups == 1000);
  CHECK(m.landmark_count > 0);
  CHECK(m.detection_curve.size() == 21);
  CHECK(!m.landmark_variations.empty());

  const nlohmann::json j = to_json(r);
  CHECK(j["benchmark"] == "category");
  CHECK(j["heads"]["category"]["samples"] == int64_t(test.size()));
  CHECK(j["heads"]["category"].contains("top3"));
  CHECK(j["heads"]["attributes"]["groups"].size() == 5);
  CHECK(j["heads"]["landmarks"]["detection_curve"].size() == 21);
  const std::string text = format_eval(r);
  INFO(text);
  CHECK(text.find("SYNTHETIC DATA") == 0);  // synth's data: the published figures are not comparable
  CHECK(text.find("scored the test split: ") != std::string::npos);
  CHECK(text.find("category (" + std::to_string(test.size()) + " images): top-1 ") != std::string::npos);
  CHECK(text.find("  texture ") != std::string::npos);
  CHECK(text.find("  detection rate, threshold:") != std::string::npos);
}

TEST_CASE("Landmark benchmark: synth, check-data, train landmarks only, eval per variation type", "[benchmarks]") {
  const std::string root = synth("landmark");
  const data::Dataset ds = check_data(root, "landmark");
  CHECK(ds.item_ids.empty());  // no items: no triplet term
  CHECK(ds.category_names.empty());
  std::set<int> variations;
  for (const auto& s : ds.samples) variations.insert(s.variation);
  CHECK(variations == std::set<int>{1, 2, 3, 4, 5});

  TrainOptions opt;
  opt.data_root = root;
  opt.benchmark = "landmark";
  opt.out_dir = (scratch() / "run_landmark").string();
  opt.loader_threads = 0;
  TrainConfig cfg = tiny_run();
  REQUIRE(cfg.stages[0].weights.triplet > 0);  // the preset weighs them; the benchmark must not
  TrainSummary sum;
  const std::string out = train_capturing(cfg, opt, sum);
  INFO(out);
  CHECK(sum.steps == 6);
  CHECK(out.rfind("landmark benchmark: training the landmark and visibility terms only (weights of category, "
                  "attributes, triplet set to 0: the benchmark has no such labels)\n", 0) == 0);
  CHECK(logged_terms(opt.out_dir) == std::set<std::string>{"lm", "vis"});
  const TrainConfig saved = checkpoint_config(sum.final_checkpoint);
  for (const StageConfig& st : saved.stages) {
    CHECK(st.weights.category == 0);
    CHECK(st.weights.attributes == 0);
    CHECK(st.weights.triplet == 0);
    CHECK(st.weights.landmarks > 0);
  }
  CHECK(trained_terms(saved) == "landmarks, visibility");

  const EvalResult r = evaluate_test_split(sum.final_checkpoint, ds);
  const std::vector<int> test = ds.indices(data::Split::Test);
  CHECK(r.scored.images == int64_t(test.size()));
  const HeadMetrics& m = r.heads;
  CHECK(m.category_samples == 0);
  CHECK(m.attribute_samples == 0);
  CHECK(m.landmark_count > 0);
  REQUIRE(m.detection_curve.size() == 21);
  for (size_t i = 1; i < m.detection_curve.size(); ++i) CHECK(m.detection_curve[i] >= m.detection_curve[i - 1]);
  CHECK(m.detection_curve[10] == Approx(m.detection_rate));  // the curve at 0.1 is the headline rate
  // Every variation type among the test photos has a row, and their counts add up to the whole.
  std::set<int> test_variations;
  for (int i : test) test_variations.insert(ds.samples[size_t(i)].variation);
  REQUIRE(m.landmark_variations.size() == test_variations.size());
  int64_t images = 0, visible = 0;
  for (const LandmarkGroup& g : m.landmark_variations) {
    CHECK(test_variations.count(g.variation));
    CHECK(g.name == data::variation_name(g.variation));
    images += g.images, visible += g.visible;
  }
  CHECK(images == int64_t(test.size()));
  CHECK(visible == m.landmark_count);

  const nlohmann::json j = to_json(r)["heads"]["landmarks"];
  CHECK(j["per_variation"].size() == test_variations.size());
  CHECK(j["per_slot"].size() == 8);
  const std::string text = format_eval(r);
  INFO(text);
  CHECK(text.find("category (") == std::string::npos);
  CHECK(text.find("  variation ") != std::string::npos);
  CHECK(text.find("  normal pose ") != std::string::npos);

  // The HTML report carries the detection-rate curve, one line per variation type and one for all.
  const std::string svg = detection_curve_svg(m);
  CHECK(svg.find("<svg") == 0);
  CHECK(svg.find("normal pose") != std::string::npos);
  ReportOptions ro;
  ro.run_dir = (scratch() / "report_landmark").string();
  std::ifstream page(write_report(r, ds, ro));
  std::stringstream html;
  html << page.rdbuf();
  CHECK(html.str().find("<h2>Landmark detection rate</h2>") != std::string::npos);
}

TEST_CASE("apply_benchmark_weights: landmark zeroes the unlabelled terms, the others keep the preset's",
          "[benchmarks]") {
  TrainConfig cfg = preset("tiny");
  CHECK(apply_benchmark_weights(cfg, "category").empty());
  CHECK(trained_terms(cfg) == "landmarks, visibility, category, attributes, triplet");
  const std::string line = apply_benchmark_weights(cfg, "landmark");
  CHECK(line.find("weights of category, attributes, triplet set to 0") != std::string::npos);
  CHECK(trained_terms(cfg) == "landmarks, visibility");
  // Again (a resumed run's configuration): the line still says what trains.
  CHECK(apply_benchmark_weights(cfg, "landmark") ==
        "landmark benchmark: training the landmark and visibility terms only (the configuration weighs category, "
        "attributes and triplet 0 already)");
}
