#include "fashionnet/report/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/format.h"
#include "fashionnet/report/html.h"
#include "fashionnet/report/plot.h"
#include "kernels/topk_search.h"

namespace fs = std::filesystem;

namespace fn::fashionnet {
namespace {
std::string read_all(const std::string& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}
std::string pct(double v) { return fixed(100 * v, 1); }
}  // namespace

std::string topk_curve_svg(const EvalResult& r) {
  std::vector<Series> series;
  auto add = [&](const std::string& name, const RetrievalReport& rep, bool recall) {
    Series s{name, {}};
    const auto& v = recall ? rep.metrics.recall_at_k : rep.metrics.top_k_accuracy;
    for (size_t i = 0; i < rep.metrics.ks.size(); ++i) s.points.emplace_back(double(rep.metrics.ks[i]), 100 * v[i]);
    series.push_back(s);
  };
  if (r.retrieval) {
    add("top-k accuracy (predicted lm)", *r.retrieval, false);
    add("recall@k (predicted lm)", *r.retrieval, true);
  }
  if (r.retrieval_gt) add("top-k accuracy (true lm)", *r.retrieval_gt, false);
  ChartOptions o;
  o.title = "Retrieval: top-k accuracy (paper) and recall@k (mmfashion)";
  o.x_label = "k";
  o.y_label = "%";
  return svg_line_chart(series, o);
}

std::string detection_curve_svg(const HeadMetrics& m) {
  if (m.detection_curve.empty()) return "";
  std::vector<Series> series;
  auto add = [&](const std::string& name, const std::vector<double>& rates) {
    Series s{name, {}};
    for (size_t i = 0; i < rates.size() && i < m.detection_curve_thresholds.size(); ++i)
      s.points.emplace_back(m.detection_curve_thresholds[i], 100 * rates[i]);
    series.push_back(s);
  };
  add("all", m.detection_curve);
  for (const LandmarkGroup& g : m.landmark_variations)
    if (!g.detection_curve.empty()) add(g.name, g.detection_curve);
  ChartOptions o;
  o.title = "Landmark detection rate (visible landmarks within the normalised distance)";
  o.x_label = "distance threshold (normalised)";
  o.y_label = "detected, %";
  return svg_line_chart(series, o);
}

std::string paper_table_html(const EvalResult& r) {
  const std::vector<PaperTableRow> rows = paper_table(r);
  if (rows.empty()) return "";
  const std::vector<std::string> sources = paper_table_sources(rows);
  auto ref = [&](const std::string& source) {
    return cat("<sup>[", paper_source_number(sources, source), "]</sup>");
  };
  // The methods, in order of first appearance (FashionNet first: published_for puts it first).
  std::vector<std::pair<std::string, std::string>> methods;  // method, source
  for (const PaperTableRow& row : rows)
    for (const PublishedResult& p : row.published)
      if (std::find(methods.begin(), methods.end(), std::make_pair(p.method, p.source)) == methods.end())
        methods.emplace_back(p.method, p.source);
  std::ostringstream h;
  h << "<h2>The paper's tables: ours beside the published figures</h2>\n";
  h << (r.synthetic_data ? "<p class='warning'>" + html_escape(synthetic_data_warning()) + "</p>\n"
                         : "<p class='note'>" + html_escape(real_data_note()) + "</p>\n");
  // Header: the tasks over their metrics' columns (the paper's grouping), then each metric.
  h << "<div class='wide'><table class='paper'><tr><th rowspan='2'>method</th>";
  for (size_t i = 0; i < rows.size();) {
    size_t j = i;
    while (j < rows.size() && rows[j].metric.task == rows[i].metric.task) ++j;
    h << "<th colspan='" << j - i << "'>" << html_escape(rows[i].metric.task) << "</th>";
    i = j;
  }
  h << "</tr>\n<tr>";
  for (const PaperTableRow& row : rows) {
    // "top-3 accuracy, %" -> "top-3" (the task heads the column); "normalised error, mean of 8" -> "normalised error".
    const std::string& l = row.metric.label;
    const std::string head = l.rfind("top-", 0) == 0 ? l.substr(0, l.find(' ')) : l.substr(0, l.find(','));
    h << "<th>" << html_escape(head) << (row.metric.lower_is_better ? " &darr;" : "") << "</th>";
  }
  h << "</tr>\n<tr class='ours'><th>ours" << (r.synthetic_data ? " (synthetic data)" : "") << "</th>";
  for (const PaperTableRow& row : rows) h << "<td>" << format_paper_value(row.ours, row.metric) << "</td>";
  h << "</tr>\n";
  for (const auto& [method, source] : methods) {
    h << "<tr><th>" << html_escape(method) << ref(source) << "</th>";
    for (const PaperTableRow& row : rows) {
      double v = NAN;
      for (const PublishedResult& p : row.published)
        if (p.method == method && p.source == source) v = p.value;
      h << "<td>" << format_paper_value(v, row.metric) << "</td>";
    }
    h << "</tr>\n";
  }
  h << "</table></div>\n<p class='note'>Top-k accuracies and recalls in %; the landmark error (&darr;: lower is better) is the "
       "distance in coordinates normalised by the input size, the mean of the 8 slots' errors.</p>\n<ol class='sources'>";
  for (const std::string& s : sources) h << "<li>" << html_escape(s) << "</li>";
  h << "</ol>\n";
  return h.str();
}

std::vector<Example> example_queries(const EvalResult& r, int queries, int k) {
  std::vector<Example> ex;
  if (!r.retrieval) return ex;
  int64_t nq = std::min<int64_t>(queries, r.query.embeddings.rows());
  if (nq == 0) return ex;
  Tensor q = r.query.embeddings.features.slice0(0, nq).clone(), g = r.gallery.embeddings.features.clone();
  kernels::l2_normalize_rows(q);
  kernels::l2_normalize_rows(g);
  kernels::SearchOptions so;
  so.k = k;
  kernels::Neighbours nb = kernels::topk_search(q, g, so);
  for (int64_t i = 0; i < nq; ++i) {
    Example e{int(i), {}, {}};
    for (int64_t j = 0; j < nb.k; ++j) {
      e.gallery_rows.push_back(nb.row_index(i)[j]);
      e.distances.push_back(nb.row_distance(i)[j]);
    }
    ex.push_back(e);
  }
  return ex;
}

std::string write_report(const EvalResult& r, const data::Dataset& ds, const ReportOptions& opt) {
  fs::create_directories(opt.run_dir);
  std::string page = opt.run_dir + "/report.html";
  auto img_src = [&](const std::string& rel) {
    return fs::relative(fs::absolute(fs::path(ds.root) / rel), fs::absolute(opt.run_dir)).string();
  };
  std::ostringstream h;
  h << "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>" << html_escape(opt.title) << "</title>\n"
    << page_style() << "</head><body class='report'>\n";
  h << "<h1>" << html_escape(opt.title) << "</h1>\n";
  if (r.synthetic_data) h << "<p class='warning'>" << html_escape(synthetic_data_warning()) << "</p>\n";
  h << opt.notes_html << "\n";
  std::string loss = read_all(opt.run_dir + "/loss.svg");
  if (!loss.empty()) h << "<h2>Training loss</h2>\n" << loss << "\n";
  if (r.retrieval) {
    const auto& m = r.retrieval->metrics;
    h << "<h2>Retrieval (" << m.queries << " queries, " << m.gallery << " gallery images)</h2>\n<table><tr><th>k</th>";
    for (auto k : m.ks) h << "<th>" << k << "</th>";
    h << "</tr>\n<tr><th>top-k accuracy, % (paper; predicted landmarks)</th>";
    for (double v : m.top_k_accuracy) h << "<td>" << pct(v) << "</td>";
    if (r.retrieval_gt) {
      h << "</tr>\n<tr><th>top-k accuracy, % (ground-truth landmarks)</th>";
      for (double v : r.retrieval_gt->metrics.top_k_accuracy) h << "<td>" << pct(v) << "</td>";
    }
    h << "</tr>\n<tr><th>recall@k, % (mmfashion's \"Top-k Acc.\")</th>";
    for (double v : m.recall_at_k) h << "<td>" << pct(v) << "</td>";
    if (m.map_at_k.size() == m.ks.size()) {  // hand-built reports may leave it out
      h << "</tr>\n<tr><th>mAP@k, % (mean average precision over the k nearest)</th>";
      for (double v : m.map_at_k) h << "<td>" << pct(v) << "</td>";
    }
    h << "</tr></table>\n" << topk_curve_svg(r) << "\n";
  }
  h << paper_table_html(r);
  h << "<h2>Heads</h2><pre>" << html_escape(format_head_metrics(r.heads)) << "</pre>\n";
  const std::string detection = detection_curve_svg(r.heads);
  if (!detection.empty()) h << "<h2>Landmark detection rate</h2>\n" << detection << "\n";
  auto ex = example_queries(r, opt.example_queries, opt.example_k);
  if (!ex.empty()) {
    h << "<h2>Example queries</h2><p>Blue: the query; green: same item (a hit); red: another item. "
         "Distances are Euclidean on L2-normalised embeddings.</p>\n";
    for (auto& e : ex) {
      const std::string& qid = r.query.embeddings.item_ids[size_t(e.query_row)];
      h << "<div class='example'><figure class='ex-query'><img src='" << html_escape(img_src(r.query.embeddings.image_paths[size_t(e.query_row)]))
        << "'><figcaption>query<br>" << html_escape(qid) << "</figcaption></figure>";
      for (size_t j = 0; j < e.gallery_rows.size(); ++j) {
        size_t g = size_t(e.gallery_rows[j]);
        bool hit = r.gallery.embeddings.item_ids[g] == qid;
        h << "<figure class='" << (hit ? "ex-hit" : "ex-miss") << "'><img src='"
          << html_escape(img_src(r.gallery.embeddings.image_paths[g])) << "'><figcaption>#" << j + 1 << " "
          << fixed(e.distances[j], 3) << "<br>"
          << html_escape(r.gallery.embeddings.item_ids[g]) << "</figcaption></figure>";
      }
      h << "</div>\n";
    }
  }
  h << "</body></html>\n";
  write_text_file(page, h.str());
  return page;
}

}  // namespace fn::fashionnet
