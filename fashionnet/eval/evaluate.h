// The whole evaluation of a model on a dataset (docs/fashionnet.md sec. 4): retrieval of the query split
// against the gallery split (In-shop; Consumer-to-shop: consumer photos against shop photos), with
// landmark_pool at the predicted landmarks and, where the data has them, at the ground-truth ones; the
// heads' metrics over query + gallery (or over the held-out part of an ImageFolder).
#pragma once
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "fashionnet/eval/eval_metrics.h"
#include "fashionnet/eval/inference.h"
#include "fashionnet/eval/retrieval_metrics.h"

namespace fn::fashionnet {

struct EvalOptions {
  InferenceOptions inference;
  std::vector<int64_t> ks = default_retrieval_ks();
  bool with_ground_truth_landmarks = true;  // also retrieve with landmark_pool at the annotated landmarks
  double holdout = 0.1;                     // imagefolder
};

struct EvalResult {
  std::string benchmark;
  std::optional<RetrievalReport> retrieval;     // predicted landmarks
  std::optional<RetrievalReport> retrieval_gt;  // ground-truth landmarks
  HeadMetrics heads;
  Predictions query, gallery;  // kept for reports (example queries)
};

EvalResult evaluate(FashionNet& model, const data::Dataset& ds, Device device, const EvalOptions& opt);
std::string format_eval(const EvalResult& r);
nlohmann::json to_json(const EvalResult& r);
// (The top-k curve chart, topk_curve_svg, is presentation: fashionnet/report/report.h.)

}  // namespace fn::fashionnet
