// The whole evaluation of a model on a dataset (docs/fashionnet.md sec. 4): retrieval of the query split
// against the gallery split (In-shop; Consumer-to-shop: consumer photos against shop photos), with
// landmark_pool at the predicted landmarks and, where the data has them, at the ground-truth ones; the
// heads' metrics over query + gallery (or over an ImageFolder: all of it, or the trainer's hold-out).
#pragma once
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fashionnet/eval/eval_metrics.h"
#include "fashionnet/eval/inference.h"
#include "fashionnet/eval/published.h"
#include "fashionnet/eval/retrieval_metrics.h"

namespace fn::fashionnet {

struct EvalOptions {
  InferenceOptions inference;
  std::vector<int64_t> ks = default_retrieval_ks();
  bool with_ground_truth_landmarks = true;  // also retrieve with landmark_pool at the annotated landmarks
  // imagefolder: <= 0 scores every image (a folder meant for testing); F > 0 scores only the hash hold-out
  // of fraction F (data::holdout_indices), the images `train --holdout F` left out of training.
  double holdout = 0;
};

// Which images an evaluation scored, so that a figure is never read as covering more than it does.
struct ScoredImages {
  std::string mode;         // "all" | "holdout" (imagefolder), "test" (category, landmark), "query+gallery"
  int64_t images = 0;       // images scored
  int64_t dataset_images = 0;  // images in the dataset
  double holdout = 0;       // mode "holdout": the fraction
  std::string description;  // in words, e.g. "scored all 3,968 images of DIR"
};

struct EvalResult {
  std::string benchmark;
  ScoredImages scored;
  std::optional<RetrievalReport> retrieval;     // predicted landmarks
  std::optional<RetrievalReport> retrieval_gt;  // ground-truth landmarks
  HeadMetrics heads;
  Predictions query, gallery;  // kept for reports (example queries)
  // The dataset holds kSyntheticMarker (published.h): every output says its figures are not comparable with
  // the published ones beside them.
  bool synthetic_data = false;
  bool mirror = false;  // InferenceOptions::mirror: every image with its mirror image, averaged
};

// One row of the paper's tables (published.h): our figure beside the published ones.
struct PaperTableRow {
  PaperMetric metric;
  double ours = NAN;  // in the metric's unit (% or the normalised error); NaN where this evaluation has none
  std::vector<PublishedResult> published;  // FashionNet's first, then the best published
};
// The paper's rows for r's benchmark, in its order; empty for a benchmark without published figures
// (landmark, imagefolder). Landmarks: the mean of the 8 slots' errors, as the papers average.
std::vector<PaperTableRow> paper_table(const EvalResult& r);
// The sources of `rows`' published figures, each once, in order of first use (the tables number them [1], ...).
std::vector<std::string> paper_table_sources(const std::vector<PaperTableRow>& rows);
// A source's number in `sources` (1-based), and a figure as the tables print it ("-" for NaN; % with 2
// decimals, the landmark error with 4): the text and the HTML tables share both.
size_t paper_source_number(const std::vector<std::string>& sources, const std::string& source);
std::string format_paper_value(double v, const PaperMetric& metric);
// The rows as text (metric rows: ours, FashionNet, best published with its source number, then the sources),
// led by synthetic_data_warning() where it applies; "" without rows.
std::string format_paper_table(const EvalResult& r);

// "" when a checkpoint's category list (TrainState::category_names) is the evaluated dataset's; else a warning
// that says how they differ: category top-k then compares labels of two lists (and scores only the images whose
// label the network has). An empty list (a checkpoint from before the names were saved) says nothing.
std::string category_list_warning(const std::vector<std::string>& trained, const std::vector<std::string>& data,
                                  const std::string& checkpoint, const std::string& root);

EvalResult evaluate(FashionNet& model, const data::Dataset& ds, Device device, const EvalOptions& opt);
std::string format_eval(const EvalResult& r);
nlohmann::json to_json(const EvalResult& r);
// (The top-k curve chart, topk_curve_svg, is presentation: fashionnet/report/report.h.)

}  // namespace fn::fashionnet
