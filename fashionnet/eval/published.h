// The published DeepFashion results that ours are set beside (docs/fashionnet.md sec. 4, "Published
// results"): FashionNet's own figures (Liu et al., CVPR 2016) and the best published ones, each with its
// source. Defined once, here; the plain-text evaluation, its JSON and the HTML report all read them
// (paper_table in evaluate.h), laid out as the paper's tables are.
//
// Also here: how a dataset says that `fashionnet synth` drew it, so that no figure measured on synthetic data
// is ever printed beside a published one without saying that the two are not comparable.
#pragma once
#include <string>
#include <vector>

namespace fn::fashionnet {

// One row of the paper's tables: a metric of one benchmark, in the paper's order and units.
struct PaperMetric {
  std::string benchmark;  // the Dataset's name: "category", "inshop", "consumer2shop"
  std::string metric;     // key: "category/top3", "attributes/texture/top5", "landmarks/error_mean8", "retrieval/top20"
  std::string task;       // as the paper's table names it: "Category", "Attributes: texture", "In-shop retrieval"
  std::string label;      // "top-3 accuracy, %", "normalised error, mean of 8 slots"
  bool percent = true;    // values in %; else a fraction (the landmark error)
  bool lower_is_better = false;
};

// A published figure for one PaperMetric.
struct PublishedResult {
  std::string benchmark, metric;  // as in PaperMetric
  double value = 0;               // in the metric's unit (% or the normalised error)
  std::string method;             // kFashionNet, or the best published method with its backbone
  std::string source;             // the paper, as cited in docs/fashionnet.md
};

inline const char* const kFashionNet = "FashionNet";

// The paper's rows, in its order (category, attributes per group and all, landmarks; In-shop top-k;
// Consumer-to-shop top-20).
const std::vector<PaperMetric>& paper_metrics();
// Every published figure: FashionNet's (method kFashionNet) and the best published (any other method).
const std::vector<PublishedResult>& published_results();
// The published figures of one metric, FashionNet's first.
std::vector<PublishedResult> published_for(const std::string& benchmark, const std::string& metric);

// A synthetic dataset (data::is_synthetic_dataset, data/synth.h) gets synthetic_data_warning().
// What the outputs say about figures on synthetic data, in one sentence.
const std::string& synthetic_data_warning();
// What they say otherwise: the conditions under which the published figures compare.
const std::string& real_data_note();

}  // namespace fn::fashionnet
