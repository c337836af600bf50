// The paper's evaluation beyond retrieval (docs/fashionnet.md sec. 4): category top-k accuracy, attribute
// top-k recall (per attribute group and over all), landmark normalised error over visible landmarks (per
// slot and mean), the detection rate within a distance threshold and its curve over thresholds 0..0.2, and
// the landmark figures per variation type (Category and Landmark benchmarks). Retrieval metrics are in
// retrieval_metrics.h.
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fashionnet/eval/inference.h"

namespace fn::fashionnet {

// Attribute recall over one group of attributes (or over all of them): the mean, over the group's attributes
// that have at least one positive sample, of each attribute's recall@k. A group none of whose attributes has a
// positive has attributes == 0 and top3/top5 NaN (printed "-", JSON null).
struct AttributeGroupRecall {
  std::string name;          // the dataset's group name ("texture", ...), "type N" where it gives none, or "all"
  int type = 0;              // the 1-based group id of the annotation files (0 for "all")
  int attributes = 0;        // attributes counted: those of the group with at least one positive sample
  int attributes_total = 0;  // attributes of the group
  double top3 = 0, top5 = 0;
};

// Landmark figures over one set of images (all of them, or one variation type): normalised error over the
// visible ground-truth landmarks, per slot and overall, and the fraction detected within the threshold.
struct LandmarkGroup {
  std::string name;             // "normal pose", ... (variation_name), or "all"
  int variation = 0;            // 1..5 (0 for "all")
  int64_t images = 0, visible = 0;  // images with landmarks; visible landmarks among them
  double error = NAN, detection_rate = NAN;  // NaN when no landmark is visible
  std::vector<double> error_slot;            // 8, NaN where a slot has no visible landmark
  std::vector<double> detection_curve;       // rate at each of detection_thresholds() (empty when none visible)
};

// The detection curve's thresholds: 0, 0.01, ..., 0.2 (normalised distance), as the Landmark paper plots.
std::vector<double> detection_thresholds();
// Fraction of `errors` at or below each threshold (0 for each when `errors` is empty).
std::vector<double> detection_rates(const std::vector<double>& errors, const std::vector<double>& thresholds);

struct HeadMetrics {
  // category
  int64_t category_samples = 0;
  double category_top1 = 0, category_top3 = 0, category_top5 = 0;
  // attributes: per attribute, the fraction of its positive samples whose score ranks it in the sample's top k
  int64_t attribute_samples = 0;
  double attribute_recall_top3 = 0, attribute_recall_top5 = 0;  // averaged over attributes with positives
  int attribute_count = 0, attribute_total = 0;  // attributes with positives (those averaged above), attributes
  // Per group, from Dataset::attribute_types (group t = type t, 1-based) and attribute_type_names: one entry
  // per type 1..max(largest type, number of names), in type order; empty when the dataset gives no attribute a
  // type > 0 (In-shop). Attributes of type 0 count only in the overall figures.
  std::vector<AttributeGroupRecall> attribute_groups;
  // landmarks, in coordinates normalised by the input size, over visible ground-truth landmarks
  int64_t landmark_count = 0;
  double landmark_error = 0;                 // mean over all visible landmarks
  std::vector<double> landmark_error_slot;   // 8, NaN where a slot has no visible landmark
  double detection_threshold = 0.1, detection_rate = 0;
  std::vector<double> detection_curve_thresholds, detection_curve;  // rate at each of detection_thresholds()
  double visibility_accuracy = 0;            // predicted visible/not against ground truth, all 8 slots
  std::vector<double> visibility_accuracy_slot;  // 8, the same per slot
  // The same ground truth against a rule that sees no pixels: "visible" at each slot the garment type has
  // (upper body: collars, sleeves, hems; lower: waistline, hems; full: all 8), "not" elsewhere. NaN when a
  // scored image's clothes type is unknown.
  double visibility_type_rule = NAN;
  // Per variation type 1..5 that occurs among the scored images (Category and Landmark benchmarks only: the
  // other benchmarks' figures stay as they were); empty otherwise.
  std::vector<LandmarkGroup> landmark_variations;
};

HeadMetrics head_metrics(const Predictions& p, const data::Dataset& ds);
// The overall attribute figures as a group named "all" (type 0).
AttributeGroupRecall attribute_recall_all(const HeadMetrics& m);
std::string format_head_metrics(const HeadMetrics& m);
// The per-group table (one row per group, then "all"); "" when the dataset gives no groups.
std::string format_attribute_groups(const HeadMetrics& m);
// The detection rate at every second threshold of the curve (0, 0.02, ..., 0.2); "" without landmarks.
std::string format_detection_curve(const HeadMetrics& m);
// The per-variation table (one row per variation type, then "all"); "" when there are none.
std::string format_landmark_variations(const HeadMetrics& m);
nlohmann::json to_json(const AttributeGroupRecall& g);
nlohmann::json to_json(const LandmarkGroup& g);
nlohmann::json to_json(const HeadMetrics& m);

}  // namespace fn::fashionnet
