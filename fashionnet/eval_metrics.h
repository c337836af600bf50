// The paper's evaluation beyond retrieval (FASHIONNET.md sec. 4): category top-k accuracy, attribute
// top-k recall, landmark normalised error over visible landmarks (per slot and mean) and the detection
// rate within a distance threshold. Retrieval metrics are in retrieval_metrics.h.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fashionnet/inference.h"

namespace fn::fashionnet {

struct HeadMetrics {
  // category
  int64_t category_samples = 0;
  double category_top1 = 0, category_top3 = 0, category_top5 = 0;
  // attributes: per attribute, the fraction of its positive samples whose score ranks it in the sample's top k
  int64_t attribute_samples = 0;
  double attribute_recall_top3 = 0, attribute_recall_top5 = 0;  // averaged over attributes with positives
  // landmarks, in coordinates normalised by the input size, over visible ground-truth landmarks
  int64_t landmark_count = 0;
  double landmark_error = 0;                 // mean over all visible landmarks
  std::vector<double> landmark_error_slot;   // 8, NaN where a slot has no visible landmark
  double detection_threshold = 0.1, detection_rate = 0;
  double visibility_accuracy = 0;            // predicted visible/not against ground truth, annotated slots
};

HeadMetrics head_metrics(const Predictions& p, const data::Dataset& ds);
std::string format_head_metrics(const HeadMetrics& m);
nlohmann::json to_json(const HeadMetrics& m);

}  // namespace fn::fashionnet
