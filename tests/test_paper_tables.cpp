// The paper's tables side by side (fashionnet/eval/published.h, paper_table in evaluate.h): a Category
// evaluation carries, in its JSON, text and HTML report, our figure beside FashionNet's and the best
// published one with their sources; synthetic data says plainly that the two are not comparable, other data
// does not; and the charts' ranges (plot.h): a constant series gets a range around its value, step axes start
// at 0.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/synth.h"
#include "fashionnet/eval/evaluate.h"
#include "fashionnet/eval/published.h"
#include "fashionnet/model/config.h"
#include "fashionnet/model/fashionnet.h"
#include "fashionnet/report/plot.h"
#include "fashionnet/report/report.h"
#include "tests/support/synth_dataset.h"
#include "tests/support/temp_dir.h"

using namespace fn;
using namespace fn::fashionnet;
namespace fs = std::filesystem;

namespace {

fs::path scratch() { return fn::test::process_temp_dir("paper_tables"); }

// A small synthetic Category benchmark (30 garments x 2 photos of long side 64), written once.
const std::string& category_root() {
  static const std::string root = test::synth_dataset(scratch() / "category", "category", 30, 2, 64, 3);
  return root;
}

// An untrained tiny network scored on the test split: the figures are noise, the layout is what is tested.
EvalResult evaluate_category(const std::string& root) {
  const data::Dataset ds = data::load_dataset(root, "category");
  TrainConfig cfg = preset("tiny");
  cfg.net.categories = int(ds.category_names.size());
  cfg.net.attributes = int(ds.attribute_names.size());
  FashionNet model(cfg.net, 1);
  EvalOptions eo;
  eo.inference.progress = false;
  eo.inference.threads = 0;
  return evaluate(model, ds, Device::CPU, eo);
}

const nlohmann::json& row(const nlohmann::json& j, const std::string& metric) {
  for (const auto& r : j["paper_table"]["rows"])
    if (r["metric"] == metric) return r;
  FAIL("no paper_table row " << metric);
  static const nlohmann::json none;
  return none;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string report_of(const EvalResult& r, const std::string& root, const std::string& name) {
  ReportOptions ro;
  ro.run_dir = (scratch() / name).string();
  data::Dataset ds;
  ds.root = root;
  return read_text(write_report(r, ds, ro));
}

// The labels of a chart's y ticks (the only text anchored at its end).
std::vector<double> y_ticks(const std::string& svg) {
  std::vector<double> t;
  const std::string mark = "text-anchor='end'>";
  for (size_t at = svg.find(mark); at != std::string::npos; at = svg.find(mark, at + 1))
    t.push_back(std::stod(svg.substr(at + mark.size())));
  return t;
}

// The labels of a chart's x ticks: text centred under the plot, before the axis label.
std::vector<double> x_ticks(const std::string& svg) {
  std::vector<double> t;
  const std::string mark = "text-anchor='middle'>";
  for (size_t at = svg.find(mark); at != std::string::npos; at = svg.find(mark, at + 1)) {
    const std::string s = svg.substr(at + mark.size());
    if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-')) continue;
    t.push_back(std::stod(s));
  }
  return t;
}

}  // namespace

TEST_CASE("paper tables: every published figure has its row, FashionNet's first, each with a source",
          "[paper_tables]") {
  for (const PublishedResult& p : published_results()) {
    INFO(p.benchmark << " " << p.metric << " " << p.method);
    bool has_row = false;
    for (const PaperMetric& m : paper_metrics()) has_row |= m.benchmark == p.benchmark && m.metric == p.metric;
    CHECK(has_row);
    CHECK(!p.source.empty());
    CHECK(p.source.find("shared") == std::string::npos);  // papers, never the project's brief
  }
  for (const PaperMetric& m : paper_metrics()) {
    INFO(m.benchmark << " " << m.metric);
    const std::vector<PublishedResult> p = published_for(m.benchmark, m.metric);
    REQUIRE(!p.empty());
    CHECK(p.front().method == kFashionNet);
    CHECK(p.front().source == "Liu et al., CVPR 2016 (DeepFashion)");
  }
  // The figures the issue names.
  auto value = [](const std::string& b, const std::string& m, size_t i) { return published_for(b, m).at(i).value; };
  CHECK(value("category", "category/top3", 0) == 82.58);
  CHECK(value("category", "category/top5", 1) == 96.12);
  CHECK(value("category", "attributes/all/top3", 1) == 54.69);
  CHECK(value("category", "attributes/style/top5", 0) == 73.16);
  CHECK(value("category", "landmarks/error_mean8", 1) == 0.0474);
  CHECK(value("inshop", "retrieval/top20", 0) == 76.4);
  CHECK(published_for("inshop", "retrieval/top1").size() == 3);  // FashionNet, a CNN, a web-pretrained ViT
  CHECK(value("consumer2shop", "retrieval/top20", 1) == 64.5);
}

TEST_CASE("paper tables: a Category evaluation on synthetic data carries ours, the published rows and the warning",
          "[paper_tables]") {
  const std::string root = category_root();
  REQUIRE(data::is_synthetic_dataset(root));  // synth wrote the marker
  const EvalResult r = evaluate_category(root);
  CHECK(r.synthetic_data);
  REQUIRE(r.heads.category_samples > 0);
  REQUIRE(r.heads.landmark_count > 0);

  const nlohmann::json j = to_json(r);
  CHECK(j["synthetic_data"] == true);
  REQUIRE(j.contains("paper_table"));
  CHECK(j["paper_table"]["comparable"] == false);
  CHECK(j["paper_table"]["note"] == synthetic_data_warning());
  CHECK(j["paper_table"]["rows"].size() == 2 + 12 + 1);  // category top-3/5, 6 attribute rows x 2, landmarks

  const nlohmann::json& top3 = row(j, "category/top3");
  CHECK(top3["task"] == "Category");
  CHECK(top3["ours"].get<double>() == Approx(100 * r.heads.category_top3));
  REQUIRE(top3["published"].size() == 2);
  CHECK(top3["published"][0]["method"] == "FashionNet");
  CHECK(top3["published"][0]["value"] == 82.58);
  CHECK(top3["published"][0]["role"] == "paper");
  CHECK(top3["published"][1]["value"] == 91.16);
  CHECK(top3["published"][1]["role"] == "best published");
  CHECK(top3["published"][1]["source"].get<std::string>().find("Liu & Lu") == 0);

  const nlohmann::json& texture = row(j, "attributes/texture/top3");
  CHECK(texture["published"].size() == 1);  // the paper's per-group figures; no best published per group
  CHECK(texture["published"][0]["value"] == 37.46);
  REQUIRE(r.heads.attribute_groups.at(0).name == "texture");
  if (r.heads.attribute_groups[0].attributes)
    CHECK(texture["ours"].get<double>() == Approx(100 * r.heads.attribute_groups[0].top3));
  const nlohmann::json& all5 = row(j, "attributes/all/top5");
  CHECK(all5["ours"].get<double>() == Approx(100 * r.heads.attribute_recall_top5));
  CHECK(all5["published"][1]["value"] == 63.74);

  const nlohmann::json& lm = row(j, "landmarks/error_mean8");
  CHECK(lm["lower_is_better"] == true);
  CHECK(lm["unit"] == "normalised distance");
  double sum = 0;
  int slots = 0;
  for (double e : r.heads.landmark_error_slot)
    if (!std::isnan(e)) sum += e, ++slots;
  REQUIRE(slots > 0);
  CHECK(lm["ours"].get<double>() == Approx(sum / slots));  // the mean of the slots, as the papers average
  CHECK(lm["published"][0]["value"] == 0.0872);
  CHECK(lm["published"][1]["value"] == 0.0474);

  const std::string text = format_eval(r);
  INFO(text);
  CHECK(text.rfind(synthetic_data_warning(), 0) == 0);  // the first thing said
  CHECK(text.find("the paper's tables, ours beside the published figures:") != std::string::npos);
  CHECK(text.find("82.58") != std::string::npos);
  CHECK(text.find("0.0474 Liu & Lu [2]") != std::string::npos);
  CHECK(text.find("[1] Liu et al., CVPR 2016 (DeepFashion)") != std::string::npos);

  const std::string page = report_of(r, root, "report_synthetic");
  CHECK(page.find("<p class='warning'>" + synthetic_data_warning()) != std::string::npos);
  CHECK(page.find("<table class='paper'>") != std::string::npos);
  CHECK(page.find("ours (synthetic data)") != std::string::npos);
  CHECK(page.find("<td>82.58</td>") != std::string::npos);
  CHECK(page.find("<td>0.0474</td>") != std::string::npos);
  CHECK(page.find("<li>Liu et al., CVPR 2016 (DeepFashion)</li>") != std::string::npos);
}

TEST_CASE("paper tables: data without the synthetic marker get no warning", "[paper_tables]") {
  // The same files without the marker stand for a user's own DeepFashion copy.
  const fs::path copy = scratch() / "category_copy";
  fs::copy(category_root(), copy, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove(copy / data::kSyntheticMarker);
  REQUIRE_FALSE(data::is_synthetic_dataset(copy.string()));
  const EvalResult r = evaluate_category(copy.string());
  CHECK_FALSE(r.synthetic_data);
  const nlohmann::json j = to_json(r);
  CHECK(j["synthetic_data"] == false);
  CHECK(j["paper_table"]["comparable"] == true);
  CHECK(j["paper_table"]["note"] == real_data_note());
  CHECK(j["paper_table"]["rows"].size() == 15);
  const std::string text = format_eval(r);
  CHECK(text.find("SYNTHETIC") == std::string::npos);
  CHECK(text.find("82.58") != std::string::npos);
  const std::string page = report_of(r, copy.string(), "report_real");
  CHECK(page.find("class='warning'") == std::string::npos);
  CHECK(page.find("<td>82.58</td>") != std::string::npos);
  CHECK(page.find("<tr class='ours'><th>ours</th>") != std::string::npos);
}

TEST_CASE("paper tables: retrieval rows for In-shop, none for a benchmark without published figures",
          "[paper_tables]") {
  EvalResult r;
  r.benchmark = "inshop";
  r.retrieval = RetrievalReport{};
  r.retrieval->metrics.ks = {1, 5, 10, 20, 30, 40, 50};
  r.retrieval->metrics.top_k_accuracy = {0.42, 0.6, 0.7, 0.8, 0.85, 0.88, 0.9};
  r.retrieval->metrics.recall_at_k = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7};
  const std::vector<PaperTableRow> rows = paper_table(r);
  REQUIRE(rows.size() == 5);  // top-1, 10, 20, 30, 50 as the paper prints them
  CHECK(rows[0].metric.metric == "retrieval/top1");
  CHECK(rows[0].ours == Approx(42));
  CHECK(rows[2].ours == Approx(80));
  REQUIRE(rows[0].published.size() == 3);
  CHECK(rows[0].published[1].value == 91.9);
  CHECK(rows[0].published[2].value == 96.7);
  CHECK(rows[0].published[2].source.find("ICLR 2023") != std::string::npos);
  const std::string html = paper_table_html(r);
  CHECK(html.find("<th colspan='5'>In-shop retrieval</th>") != std::string::npos);
  CHECK(html.find("<td>42.00</td>") != std::string::npos);
  CHECK(html.find("class='warning'") == std::string::npos);

  r.benchmark = "landmark";
  r.retrieval.reset();
  CHECK(paper_table(r).empty());
  CHECK_FALSE(to_json(r).contains("paper_table"));
  CHECK(format_paper_table(r).empty());
}

TEST_CASE("chart: a constant series gets a range around its value; step axes start at 0", "[paper_tables][chart]") {
  ChartOptions o;
  o.title = "Validation: top-20";
  o.x_label = "step";
  Series v{"top-20 (validation)", {}};
  for (int step = 200; step <= 800; step += 200) v.points.emplace_back(step, 1.0);
  const std::string svg = svg_line_chart({v}, o);
  const std::vector<double> yt = y_ticks(svg);
  REQUIRE(yt.size() >= 3);
  CHECK(yt.front() == Approx(0.9));  // 1.0 +- 10%, not 0 .. 2
  CHECK(yt.back() == Approx(1.1));
  CHECK(std::find(yt.begin(), yt.end(), 1.0) != yt.end());  // the value itself is a tick
  const std::vector<double> xt = x_ticks(svg);
  REQUIRE(!xt.empty());
  CHECK(xt.front() == 0);  // steps 200..800: the axis starts at 0
  CHECK(xt.back() == 800);

  // Other constants: a small error, a negative value; zero keeps 0 .. 1.
  Series e{"error", {{1, 0.05}, {2, 0.05}}};
  const std::vector<double> et = y_ticks(svg_line_chart({e}, o));
  CHECK((et.front() <= 0.045 && et.front() >= 0.04));  // 0.05 +- 10% on round ticks
  CHECK((et.back() >= 0.055 && et.back() <= 0.06));
  Series z{"zero", {{1, 0}, {2, 0}}};
  const std::vector<double> zt = y_ticks(svg_line_chart({z}, o));
  CHECK(zt.front() == 0);
  CHECK(zt.back() == 1);
  // A varying series keeps the data's range; x_from_zero off keeps the data's x range.
  Series w{"varying", {{300, 0.2}, {700, 0.6}}};
  o.x_from_zero = false;
  const std::string svg2 = svg_line_chart({w}, o);
  CHECK(y_ticks(svg2).front() == Approx(0.2));
  CHECK(y_ticks(svg2).back() == Approx(0.6));
  CHECK(x_ticks(svg2).front() == 300);
}
