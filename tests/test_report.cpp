// The presentation layer (fashionnet/report): the chart's tick chooser (nice_ticks, log_ticks, format_tick),
// the chart's layout (round tick labels, a legend that is never cut off), and the one HTML escaper at work in
// all three outputs: the SVG chart (title, series names), the run report and the search page.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/format.h"
#include "core/philox.h"
#include "fashionnet/eval/retrieval_metrics.h"
#include "fashionnet/report/html.h"
#include "fashionnet/report/plot.h"
#include "fashionnet/report/report.h"
#include "fashionnet/report/search_page.h"
#include "tests/support/temp_dir.h"

using namespace fn::fashionnet;

namespace {

const std::string kNasty = "a \"b\" <c> & 'd'";
const std::string kNastyEscaped = "a &quot;b&quot; &lt;c&gt; &amp; &#39;d&#39;";

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Whether `t` is m x 10^n for m in {1, 2, 5}.
bool one_two_five(double t) {
  const double e = std::floor(std::log10(t) + 1e-9);
  const double m = t / std::pow(10.0, e);
  return std::fabs(m - 1) < 1e-6 || std::fabs(m - 2) < 1e-6 || std::fabs(m - 5) < 1e-6;
}

// The number in the attribute `name='...'` of the last element opening before `pos`.
double attribute_before(const std::string& s, size_t pos, const std::string& name) {
  const size_t open = s.rfind('<', pos);
  const size_t a = s.find(" " + name + "='", open);
  REQUIRE(a != std::string::npos);
  return std::stod(s.substr(a + name.size() + 3));
}

double svg_size(const std::string& svg, const std::string& name) {
  const size_t a = svg.find(" " + name + "='");
  REQUIRE(a != std::string::npos);
  return std::stod(svg.substr(a + name.size() + 3));
}

}  // namespace

TEST_CASE("ticks: linear axes get round values covering the data", "[report][ticks]") {
  using V = std::vector<double>;
  CHECK(nice_ticks(1, 50) == V{0, 10, 20, 30, 40, 50});
  CHECK(nice_ticks(17.4, 58.6) == V{10, 20, 30, 40, 50, 60});
  CHECK(nice_ticks(0, 100) == V{0, 20, 40, 60, 80, 100});
  CHECK(nice_ticks(0.3, 0.7) == V{0.3, 0.4, 0.5, 0.6, 0.7});  // i / 10, not i * 0.1 (0.30000000000000004)
  CHECK(nice_ticks(50, 1) == nice_ticks(1, 50));               // either order
  // Negative values.
  CHECK(nice_ticks(-3.2, 7.1) == V{-4, -2, 0, 2, 4, 6, 8});
  CHECK(nice_ticks(-58.6, -17.4) == V{-60, -50, -40, -30, -20, -10});
  // A zero-width range is widened to one that shows the value (and zero).
  CHECK(nice_ticks(5, 5) == V{0, 2, 4, 6, 8, 10});
  CHECK(nice_ticks(-3, -3) == V{-6, -5, -4, -3, -2, -1, 0});
  CHECK(nice_ticks(0, 0) == V{0, 0.2, 0.4, 0.6, 0.8, 1});
  // Large offsets, tiny spans, and nonsense.
  CHECK(nice_ticks(1000, 1010) == V{1000, 1002, 1004, 1006, 1008, 1010});
  CHECK(nice_ticks(0.41, 0.43) == V{0.41, 0.415, 0.42, 0.425, 0.43});
  CHECK(nice_ticks(NAN, 1) == V{0, 1});
  CHECK(nice_ticks(0, INFINITY) == V{0, 1});

  // Properties over random ranges: increasing, evenly spaced by a 1-2-5 step, covering, at most 7 ticks.
  fn::Rng rng(7);
  for (int round = 0; round < 2000; ++round) {
    const double scale = std::pow(10.0, double(int(rng.uniform() * 12) - 6));
    double lo = (rng.uniform() * 2 - 1) * scale, hi = (rng.uniform() * 2 - 1) * scale;
    if (lo > hi) std::swap(lo, hi);
    const std::vector<double> t = nice_ticks(lo, hi);
    INFO("round " << round << ": " << lo << ".." << hi);
    REQUIRE(t.size() >= 2);
    CHECK(t.size() <= 7);
    CHECK(t.front() <= lo);
    CHECK(t.back() >= hi);
    const double step = t[1] - t[0];
    CHECK(one_two_five(step));
    for (size_t i = 1; i < t.size(); ++i) CHECK(std::fabs((t[i] - t[i - 1]) - step) <= 1e-9 * std::fabs(step) * 1e3);
  }
}

TEST_CASE("ticks: log axes get powers of ten, 1-2-5 or 1..9 steps", "[report][ticks]") {
  using V = std::vector<double>;
  CHECK(log_ticks(0.05, 200) == V{0.01, 0.1, 1, 10, 100, 1000});  // 1-2-5 would give 10: powers of ten
  CHECK(log_ticks(0.05, 20) == V{0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20});
  CHECK(log_ticks(0.3, 8) == V{0.2, 0.5, 1, 2, 5, 10});          // 1-2-5
  CHECK(log_ticks(0.012, 0.9) == V{0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1});
  CHECK(log_ticks(0.31, 0.45) == V{0.3, 0.4, 0.5});              // 1..9 when 1-2-5 gives two
  CHECK(log_ticks(0.41, 0.43) == V{0.41, 0.415, 0.42, 0.425, 0.43});  // within one step: linear nice values
  CHECK(log_ticks(1e-6, 1e6) == V{1e-6, 1e-4, 1e-2, 1, 1e2, 1e4, 1e6});  // every 2nd power when more than 8
  CHECK(log_ticks(2, 2) == V{1, 2, 5});                           // zero width: widened around the value
  // Non-positive input is mended, never a tick <= 0.
  for (auto [lo, hi] : std::vector<std::pair<double, double>>{{0, 10}, {-5, 3}, {-5, -1}, {NAN, 2}, {0, 0}}) {
    const std::vector<double> t = log_ticks(lo, hi);
    REQUIRE(t.size() >= 2);
    CHECK(t.front() > 0);
  }
  fn::Rng rng(11);
  for (int round = 0; round < 2000; ++round) {
    const double lo = std::pow(10.0, rng.uniform() * 12 - 6), hi = lo * std::pow(10.0, rng.uniform() * 8);
    const std::vector<double> t = log_ticks(lo, hi);
    INFO("round " << round << ": " << lo << ".." << hi);
    REQUIRE(t.size() >= 2);
    CHECK(t.size() <= 9);
    CHECK(t.front() <= lo * (1 + 1e-9));
    CHECK(t.back() >= hi * (1 - 1e-9));
    CHECK(t.front() > 0);
    for (size_t i = 1; i < t.size(); ++i) CHECK(t[i] > t[i - 1]);
  }
}

TEST_CASE("ticks: labels are short", "[report][ticks]") {
  CHECK(format_tick(0.1 + 0.2) == "0.3");
  CHECK(format_tick(-0.0) == "0");
  CHECK(format_tick(50) == "50");
  CHECK(format_tick(1000) == "1000");
  CHECK(format_tick(1e6) == "1e6");
  CHECK(format_tick(2.5e-5) == "2.5e-5");
  CHECK(format_tick(-1e-10) == "-1e-10");
  CHECK(format_tick(0.015) == "0.015");
}

TEST_CASE("chart: round tick labels, a legend that fits, escaped text", "[report][chart]") {
  // The demo report's top-k chart: k = 1..50, 17.4..58.6 %.
  std::vector<Series> s(2);
  s[0].name = "top-k accuracy (predicted landmarks, a long name)";
  s[1].name = kNasty;
  const std::vector<double> ks = {1, 5, 10, 20, 30, 40, 50};
  for (size_t i = 0; i < ks.size(); ++i) {
    s[0].points.emplace_back(ks[i], 17.4 + 41.2 * double(i) / 6);
    s[1].points.emplace_back(ks[i], 20 + double(i));
  }
  ChartOptions o;
  o.title = "title " + kNasty;
  o.x_label = "k <x>";
  o.y_label = "%";
  const std::string svg = svg_line_chart(s, o);
  for (const char* label : {">0</text>", ">10</text>", ">50</text>", ">20</text>", ">60</text>"})
    CHECK(svg.find(label) != std::string::npos);
  for (const char* odd : {"13.2", "25.5", "37.8", "17.4", "58.6"}) CHECK(svg.find(odd) == std::string::npos);
  // Escaping: title, series name, axis label.
  CHECK(svg.find("title " + kNastyEscaped) != std::string::npos);
  CHECK(svg.find(">" + kNastyEscaped + "</text>") != std::string::npos);
  CHECK(svg.find("k &lt;x&gt;") != std::string::npos);
  CHECK(svg.find(kNasty) == std::string::npos);
  CHECK(svg.find("<c>") == std::string::npos);
  // The long name does not fit beside the plot: the legend goes below it, inside the (taller) picture.
  const double width = svg_size(svg, "width"), height = svg_size(svg, "height");
  CHECK(height > o.height);
  for (const Series& se : s) {
    const std::string shown = html_escape(se.name);
    const size_t at = svg.find(">" + shown + "</text>");
    REQUIRE(at != std::string::npos);
    CHECK(attribute_before(svg, at, "x") + text_width(se.name, 12) <= width);
    CHECK(attribute_before(svg, at, "y") <= height - 3);
  }

  // Short names: the legend sits on the right, with room for the longest name.
  std::vector<Series> loss(3);
  loss[0].name = "triplet";
  loss[1].name = "landmark_vis";
  loss[2].name = "total";
  for (auto& se : loss)
    for (int step = 0; step <= 300; step += 10) se.points.emplace_back(step, 5.0 / (1 + step) + 0.05);
  loss[0].points[3].second = NAN;  // skipped, the line broken there
  ChartOptions lo;
  lo.log_y = true;
  lo.x_marks = {{0, "stage 1"}, {150, "stage 2"}};
  const std::string lsvg = svg_line_chart(loss, lo);
  CHECK(svg_size(lsvg, "height") == lo.height);
  for (const Series& se : loss) {
    const size_t at = lsvg.find(">" + se.name + "</text>");
    REQUIRE(at != std::string::npos);
    CHECK(attribute_before(lsvg, at, "x") + text_width(se.name, 12) <= lo.width);
  }
  CHECK(lsvg.find(">0.05</text>") != std::string::npos);  // log axis, 1-2-5: 0.05 .. 10
  CHECK(lsvg.find(">10</text>") != std::string::npos);
  CHECK(lsvg.find(">stage 2</text>") != std::string::npos);
  CHECK(lsvg.find("nan") == std::string::npos);
}

TEST_CASE("chart: svg_stack puts panels one above the other", "[report][chart]") {
  ChartOptions a, b;
  a.title = "loss";
  b.title = "validation";
  b.width = 600;
  b.height = 200;
  const std::string top = svg_line_chart({{"x", {{1, 1}, {2, 2}}}}, a), bottom = svg_line_chart({{"y", {{1, 0.5}}}}, b);
  const std::string s = svg_stack({top, bottom});
  CHECK(s.rfind("<svg xmlns='http://www.w3.org/2000/svg' class='chart' width='720' height='560'", 0) == 0);
  CHECK(s.find("<svg y='0' xmlns") != std::string::npos);
  CHECK(s.find("<svg y='360' xmlns") != std::string::npos);  // below the first panel's height
  CHECK(s.find(">validation</text>") != std::string::npos);
  CHECK_THROWS(svg_stack({"<div>not a chart</div>"}));
}

TEST_CASE("html: one escaper and one stylesheet for the report and the search page", "[report][html]") {
  CHECK(html_escape("a&b<c>\"d'") == "a&amp;b&lt;c&gt;&quot;d&#39;");
  CHECK(html_escape(kNasty) == kNastyEscaped);

  // The run report, from a hand-made evaluation: two queries, two gallery images, names with every special
  // character.
  fn::test::TempDir dir("report_html");
  auto make = [](std::vector<float> v, std::vector<std::string> items, const std::string& tag) {
    Embeddings e;
    e.features = fn::Tensor::from(v, {int64_t(items.size()), 2});
    e.item_ids = items;
    for (size_t i = 0; i < items.size(); ++i) e.image_paths.push_back("img/" + tag + std::to_string(i) + "&'.jpg");
    return e;
  };
  EvalResult r;
  r.benchmark = "inshop";
  r.query.embeddings = make({1, 0, 0, 1}, {"id<1>", "id\"2\""}, "q");
  r.gallery.embeddings = make({1, 0.1f, 0.1f, 1}, {"id<1>", "id'3"}, "g");
  r.retrieval = evaluate_retrieval(r.query.embeddings, r.gallery.embeddings, {1, 2}, fn::Device::CPU);
  fn::data::Dataset ds;
  ds.root = (dir.path / "data").string();
  ReportOptions ro;
  ro.title = "report " + kNasty;
  ro.run_dir = (dir.path / "run").string();
  const std::string page = read_text(write_report(r, ds, ro));
  CHECK(page.find("<title>report " + kNastyEscaped + "</title>") != std::string::npos);
  CHECK(page.find("<h1>report " + kNastyEscaped + "</h1>") != std::string::npos);
  CHECK(page.find("id&lt;1&gt;") != std::string::npos);
  CHECK(page.find("id&quot;2&quot;") != std::string::npos);
  CHECK(page.find("id&#39;3") != std::string::npos);
  CHECK(page.find("&amp;&#39;.jpg") != std::string::npos);     // image links
  CHECK(page.find(kNasty) == std::string::npos);
  CHECK(page.find("id<1>") == std::string::npos);
  CHECK(page.find(page_style()) != std::string::npos);
  CHECK(page.find("<body class='report'>") != std::string::npos);
  CHECK(page.find("class='chart'") != std::string::npos);  // the top-k chart, inline
  CHECK(page.find("<tr><th>mAP@k, %") != std::string::npos);
  CHECK(page.find("class='example'") != std::string::npos);

  // The search page.
  PageQuery q;
  q.image = "/photos/" + kNasty + ".jpg";
  q.item_id = kNasty;
  q.results = {{"/gallery/" + kNasty + ".jpg", kNasty, 0.25f}};
  PageOptions po;
  po.title = "search " + kNasty;
  po.notes = {"note " + kNasty};
  const std::string search = render_search_page({q}, "/pages", po);
  CHECK(search.find("<title>search " + kNastyEscaped + "</title>") != std::string::npos);
  CHECK(search.find("note " + kNastyEscaped) != std::string::npos);
  CHECK(search.find("item " + kNastyEscaped) != std::string::npos);
  CHECK(search.find(kNasty) == std::string::npos);
  CHECK(search.find(page_style()) != std::string::npos);
  CHECK(search.find("<body class=\"search\">") != std::string::npos);
}

TEST_CASE("report: the top-k chart of an evaluation", "[report][chart]") {
  EvalResult r;
  r.retrieval = RetrievalReport{};
  r.retrieval->metrics.ks = {1, 5, 10, 20, 30, 40, 50};
  r.retrieval->metrics.top_k_accuracy = {0.174, 0.3, 0.4, 0.45, 0.5, 0.55, 0.586};
  r.retrieval->metrics.recall_at_k = {0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35};
  const std::string svg = topk_curve_svg(r);
  CHECK(svg.find(">top-k accuracy (predicted lm)</text>") != std::string::npos);
  CHECK(svg.find(">recall@k (predicted lm)</text>") != std::string::npos);
  CHECK(svg.find(">60</text>") != std::string::npos);
  CHECK(svg.find(">50</text>") != std::string::npos);
  CHECK(svg.find("true lm") == std::string::npos);  // no ground-truth evaluation, no third curve
}

TEST_CASE("fixed: a number with a fixed count of decimals, as every page and table prints it") {
  CHECK(fn::fixed(93.2, 1) == "93.2");
  CHECK(fn::fixed(0.06, 1) == "0.1");
  CHECK(fn::fixed(-0.04, 1) == "-0.0");
  CHECK(fn::fixed(58.33333, 1) == "58.3");
  CHECK(fn::fixed(0.08761, 4) == "0.0876");
  CHECK(fn::fixed(12.5, 0) == "12");  // printf's rounding: an exact tie goes to even
  CHECK(fn::fixed(1e300, 2).size() == 304);  // 301 digits, the point and 2 decimals: nothing cut
  CHECK(fn::fixed(NAN, 1) == "nan");
}
