// The HTML report of a run: the loss curve, the retrieval top-k table and curve, the heads' metrics with the
// landmark detection-rate curve, the paper's tables with ours beside the published figures, and
// example queries with their nearest gallery images (hits framed green, misses red), all in one page
// that opens from the run folder (images are referenced relative to it).
#pragma once
#include <string>

#include "data/dataset.h"
#include "fashionnet/eval/evaluate.h"

namespace fn::fashionnet {

struct ReportOptions {
  std::string title = "FashionNet run";
  std::string run_dir;         // holds loss.svg and metrics.jsonl; the page is written to run_dir/report.html
  int example_queries = 8, example_k = 5;
  std::string notes_html;      // extra paragraphs (e.g. the demo's ablation)
};

// The top-k accuracy and recall@k curves (predicted landmarks; top-k accuracy at the ground-truth ones too,
// when evaluated) as an SVG chart (plot.h), x: k, y: %.
std::string topk_curve_svg(const EvalResult& r);

// The landmark detection rate against the normalised distance threshold (0..0.2, %): all visible landmarks,
// and each variation type where the metrics have them (Category and Landmark benchmarks). "" without landmarks.
std::string detection_curve_svg(const HeadMetrics& m);

// The paper's tables (paper_table, evaluate.h) as the paper lays them out: one row per method (ours, FashionNet,
// the best published), one column per metric under its task, the sources numbered below; led by the
// synthetic-data warning where it applies. "" for a benchmark without published figures.
std::string paper_table_html(const EvalResult& r);

// Returns the path of the page written.
std::string write_report(const EvalResult& r, const data::Dataset& ds, const ReportOptions& opt);

// Nearest gallery rows of the first `queries` queries (exact search on normalised copies).
struct Example {
  int query_row;
  std::vector<int> gallery_rows;
  std::vector<float> distances;
};
std::vector<Example> example_queries(const EvalResult& r, int queries, int k);

}  // namespace fn::fashionnet
