// The heads' metrics on hand-made cases with known answers. Attribute recall: per group and over all,
// attributes without positives left out of the means, a group with no positive at all, the tie rule of the
// ranks (equal scores: the lower attribute index ranks first), and datasets that give no groups (In-shop).
// Landmarks: the detection-rate curve (thresholds inclusive, invisible landmarks left out), the figures
// per variation type (Category and Landmark benchmarks only), and visibility per slot against the rule that
// calls the garment type's slots visible.
#include <cmath>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "fashionnet/eval/eval_metrics.h"
#include "tests/support/check.h"

namespace {

using namespace fn::fashionnet;
using fn::data::Dataset;
using fn::data::Sample;

// One row of scores and one label vector (1 positive, 0 negative, -1 unknown, empty: no labels) per sample.
struct Case {
  Dataset ds;
  Predictions p;
};

Case make_case(const std::vector<std::vector<float>>& scores, const std::vector<std::vector<int8_t>>& labels,
               const std::vector<int>& types, const std::vector<std::string>& type_names) {
  Case c;
  c.ds.benchmark = "category";
  c.ds.attribute_types = types;
  c.ds.attribute_type_names = type_names;
  c.p.attributes = int(scores.at(0).size());
  for (size_t i = 0; i < scores.size(); ++i) {
    Sample s;
    s.attributes = labels[i];
    c.ds.samples.push_back(s);
    c.p.sample_index.push_back(int(i));
    REQUIRE(int(scores[i].size()) == c.p.attributes);
    c.p.attribute_logits.insert(c.p.attribute_logits.end(), scores[i].begin(), scores[i].end());
  }
  for (int j = 0; j < c.p.attributes; ++j) c.ds.attribute_names.push_back("attr" + std::to_string(j));
  return c;
}

// Two groups of three attributes. Per attribute (positives; hits in the top 3; hits in the top 5):
//   0: 2; 1; 1    1: none    2: none (its only label is unknown)    3: 1; 0; 1    4: 1; 1; 1    5: 1; 0; 0
Case two_groups() {
  return make_case({{6, 5, 4, 3, 2, 1}, {1, 2, 3, 4, 5, 6}, {3, 1, 2, 6, 5, 4}, {1, 1, 1, 1, 1, 1}},
                   {{1, 0, 0, 1, 0, 1}, {1, 0, -1, 0, 1, 0}, {0, 0, 0, 0, 0, 0}, {}},
                   {1, 1, 1, 2, 2, 2}, {"texture", "fabric"});
}

const std::string& line_of(const std::string& text, const std::string& start) {
  static std::string found;
  found.clear();
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    if (line.rfind(start, 0) == 0) return found = line;
    at = end + 1;
  }
  return found;
}

}  // namespace

TEST_CASE("attribute recall: two groups, attributes without positives left out") {
  Case c = two_groups();
  HeadMetrics m = head_metrics(c.p, c.ds);
  CHECK(m.attribute_samples == 3);  // the sample without labels is not counted
  // All: attributes 0, 3, 4, 5. top-3 (1/2 + 0 + 1 + 0) / 4; top-5 (1/2 + 1 + 1 + 0) / 4.
  CHECK(m.attribute_count == 4);
  CHECK(m.attribute_total == 6);
  CHECK(m.attribute_recall_top3 == Approx(0.375));
  CHECK(m.attribute_recall_top5 == Approx(0.625));
  REQUIRE(m.attribute_groups.size() == 2);
  const AttributeGroupRecall& tex = m.attribute_groups[0];
  CHECK(tex.name == "texture");
  CHECK(tex.type == 1);
  CHECK(tex.attributes == 1);  // attribute 0 only
  CHECK(tex.attributes_total == 3);
  CHECK(tex.top3 == Approx(0.5));
  CHECK(tex.top5 == Approx(0.5));
  const AttributeGroupRecall& fab = m.attribute_groups[1];
  CHECK(fab.name == "fabric");
  CHECK(fab.type == 2);
  CHECK(fab.attributes == 3);
  CHECK(fab.attributes_total == 3);
  CHECK(fab.top3 == Approx(1.0 / 3));
  CHECK(fab.top5 == Approx(2.0 / 3));
  // "all" is the mean over attributes, not the mean of the group means ((1/2 + 1/3) / 2).
  CHECK(m.attribute_recall_top3 != Approx((tex.top3 + fab.top3) / 2));

  const std::string text = format_head_metrics(m);
  INFO(text);
  CHECK(line_of(text, "  group ") == "  group    attributes  top-3 recall  top-5 recall");
  CHECK(line_of(text, "  texture") == "  texture         1/3        50.00%        50.00%");
  CHECK(line_of(text, "  fabric") == "  fabric          3/3        33.33%        66.67%");
  CHECK(line_of(text, "  all") == "  all             4/6        37.50%        62.50%");
  CHECK(text.find("top-3 recall 37.50%  top-5 recall 62.50% (mean over attributes)") != std::string::npos);

  const nlohmann::json j = to_json(m)["attributes"];
  CHECK(j["samples"] == 3);
  CHECK(j["recall_top3"].get<double>() == Approx(0.375));  // the keys written before groups existed
  CHECK(j["recall_top5"].get<double>() == Approx(0.625));
  CHECK(j["all"]["name"] == "all");
  CHECK(j["all"]["attributes"] == 4);
  CHECK(j["all"]["top3"].get<double>() == Approx(0.375));
  REQUIRE(j["groups"].size() == 2);
  CHECK(j["groups"][0]["name"] == "texture");
  CHECK(j["groups"][0]["type"] == 1);
  CHECK(j["groups"][0]["attributes"] == 1);
  CHECK(j["groups"][0]["attributes_total"] == 3);
  CHECK(j["groups"][1]["name"] == "fabric");
  CHECK(j["groups"][1]["top5"].get<double>() == Approx(2.0 / 3));
}

TEST_CASE("attribute recall: a group without positives, type 0, unnamed and unused types") {
  // Types: 1, 2, 2, 3 (unnamed: "type 3"), 0 (no group); names for types 1..4, type 4 has no attribute.
  // Attribute 1 and 2 (group "fabric") have no positive label anywhere.
  Case c = make_case({{5, 4, 3, 2, 1}, {1, 2, 3, 4, 5}},
                     {{1, 0, -1, 0, 0}, {0, -1, 0, 1, 1}},
                     {1, 2, 2, 3, 0}, {"texture", "fabric", "", "style"});
  HeadMetrics m = head_metrics(c.p, c.ds);
  // Ranks: attribute 0 in sample 0 is 0 (hit); 3 in sample 1 is 1 (hit); 4 in sample 1 is 0 (hit).
  CHECK(m.attribute_count == 3);
  CHECK(m.attribute_recall_top3 == Approx(1.0));
  REQUIRE(m.attribute_groups.size() == 4);
  CHECK(m.attribute_groups[0].name == "texture");
  CHECK(m.attribute_groups[0].attributes == 1);
  CHECK(m.attribute_groups[0].top3 == Approx(1.0));
  CHECK(m.attribute_groups[1].name == "fabric");
  CHECK(m.attribute_groups[1].attributes == 0);
  CHECK(m.attribute_groups[1].attributes_total == 2);
  CHECK(std::isnan(m.attribute_groups[1].top3));
  CHECK(std::isnan(m.attribute_groups[1].top5));
  CHECK(m.attribute_groups[2].name == "type 3");
  CHECK(m.attribute_groups[2].attributes == 1);
  CHECK(m.attribute_groups[3].name == "style");
  CHECK(m.attribute_groups[3].attributes_total == 0);
  CHECK(std::isnan(m.attribute_groups[3].top3));
  // The attribute of type 0 counts only in "all": the groups hold 2 of the 3 counted attributes.
  int in_groups = 0;
  for (const auto& g : m.attribute_groups) in_groups += g.attributes;
  CHECK(in_groups == 2);

  const std::string text = format_head_metrics(m);
  INFO(text);
  CHECK(line_of(text, "  fabric") == "  fabric          0/2             -             -");
  CHECK(line_of(text, "  type 3") == "  type 3          1/1       100.00%       100.00%");
  const nlohmann::json j = to_json(m)["attributes"];
  CHECK(j["groups"][1]["top3"].is_null());
  CHECK(j["groups"][1]["top5"].is_null());
  CHECK(j["groups"][1]["attributes"] == 0);
}

TEST_CASE("attribute recall: equal scores rank the lower attribute index first") {
  // Sample 0: all six scores equal, so attribute j has rank j: positive 2 is in the top 3, 3 and 4 only in
  // the top 5, 5 in neither. Sample 1: attributes 1..4 tie at 9 above 0 and 5; positive 1 ranks 0 (top 3),
  // positive 4 ranks 3 (top 5 only). A rule that counted only strictly higher scores would put 3, 4 and 5 of
  // sample 0 and 4 of sample 1 at rank 0; one that ranked every tie last would put 1 of sample 1 at rank 3.
  Case c = make_case({{0, 0, 0, 0, 0, 0}, {1, 9, 9, 9, 9, 0}},
                     {{0, 0, 1, 1, 1, 1}, {0, 1, 0, 0, 1, 0}},
                     {1, 1, 1, 2, 2, 2}, {"texture", "fabric"});
  HeadMetrics m = head_metrics(c.p, c.ds);
  // Per attribute (top 3, top 5): 1 (1, 1); 2 (1, 1); 3 (0, 1); 4 (0/2, 2/2); 5 (0, 0).
  REQUIRE(m.attribute_groups.size() == 2);
  CHECK(m.attribute_groups[0].attributes == 2);
  CHECK(m.attribute_groups[0].top3 == Approx(1.0));
  CHECK(m.attribute_groups[0].top5 == Approx(1.0));
  CHECK(m.attribute_groups[1].attributes == 3);
  CHECK(m.attribute_groups[1].top3 == Approx(0.0).margin(1e-12));
  CHECK(m.attribute_groups[1].top5 == Approx(2.0 / 3));
  CHECK(m.attribute_count == 5);
  CHECK(m.attribute_recall_top3 == Approx(2.0 / 5));
  CHECK(m.attribute_recall_top5 == Approx(4.0 / 5));
}

TEST_CASE("attribute recall: no groups known reports only all") {
  Case c = two_groups();
  SECTION("no types (In-shop)") {
    c.ds.attribute_types.clear();
    c.ds.attribute_type_names.clear();
  }
  SECTION("every type 0, names present") {
    c.ds.attribute_types.assign(6, 0);
  }
  HeadMetrics m = head_metrics(c.p, c.ds);
  CHECK(m.attribute_groups.empty());
  CHECK(m.attribute_count == 4);
  CHECK(m.attribute_recall_top3 == Approx(0.375));
  CHECK(m.attribute_recall_top5 == Approx(0.625));
  const std::string text = format_head_metrics(m);
  INFO(text);
  CHECK(text.find("top-3 recall 37.50%  top-5 recall 62.50% (mean over attributes)") != std::string::npos);
  CHECK(text.find("  group ") == std::string::npos);
  CHECK(format_attribute_groups(m).empty());
  const nlohmann::json j = to_json(m)["attributes"];
  CHECK(j["groups"].is_array());
  CHECK(j["groups"].empty());
  CHECK(j["all"]["attributes"] == 4);
  CHECK(j["recall_top3"].get<double>() == Approx(0.375));
}

TEST_CASE("attribute recall: no attribute head or no labels gives no attribute figures") {
  Case c = two_groups();
  SECTION("model without attribute scores") {
    c.p.attribute_logits.clear();
  }
  SECTION("samples without labels") {
    for (auto& s : c.ds.samples) s.attributes.clear();
  }
  HeadMetrics m = head_metrics(c.p, c.ds);
  CHECK(m.attribute_samples == 0);
  CHECK(m.attribute_count == 0);
  CHECK(format_head_metrics(m).find("attributes") == std::string::npos);
}

namespace {

// One visible landmark of a hand-made landmark case: its slot and its prediction's offset from the truth.
struct Off {
  int slot;
  float dx, dy;
  bool visible = true;
};

// Samples with landmarks at (0.5, 0.5) in every slot, predicted at the given offsets; slots not listed are
// not visible. variation 0 and no offsets: a sample without landmarks.
Case landmark_case(const std::string& benchmark, const std::vector<std::pair<int, std::vector<Off>>>& samples) {
  Case c;
  c.ds.benchmark = benchmark;
  for (size_t i = 0; i < samples.size(); ++i) {
    Sample s;
    s.variation = samples[i].first;
    s.has_landmarks = s.variation > 0;
    c.ds.samples.push_back(s);
    c.p.sample_index.push_back(int(i));
    std::vector<float> pred(16, 0.5f), truth(16, 0.5f), vis(8, 0.f);
    for (const Off& o : samples[i].second) {
      pred[size_t(2 * o.slot)] += o.dx, pred[size_t(2 * o.slot + 1)] += o.dy;
      vis[size_t(o.slot)] = o.visible ? 1.f : 0.f;
    }
    c.p.landmark_pred.insert(c.p.landmark_pred.end(), pred.begin(), pred.end());
    c.p.landmark_true.insert(c.p.landmark_true.end(), truth.begin(), truth.end());
    c.p.landmark_visible.insert(c.p.landmark_visible.end(), vis.begin(), vis.end());
    c.p.vis_pred.insert(c.p.vis_pred.end(), vis.begin(), vis.end());
  }
  return c;
}

// Errors: normal pose 0.005 (slot 0), 0.05 (slot 1; 3-4-5), an invisible slot 2 off by 0.9; medium zoom-in
// 0.125 (slot 0), 0.3 (slot 3); a third sample without landmarks.
Case two_variations(const std::string& benchmark) {
  return landmark_case(benchmark, {{1, {{0, 0.005f, 0}, {1, 0.03f, 0.04f}, {2, 0.9f, 0, false}}},
                                   {4, {{0, 0, 0.125f}, {3, -0.3f, 0}}},
                                   {0, {}}});
}

}  // namespace

TEST_CASE("detection_rates: the fraction of errors at or below each threshold") {
  const std::vector<double> errors = {0.15, 0.0, 0.3, 0.05, 0.1};
  const std::vector<double> r = detection_rates(errors, {0.0, 0.049, 0.05, 0.1, 0.2, 1.0});
  REQUIRE(r.size() == 6);
  CHECK(r[0] == Approx(0.2));  // 0 itself is within 0
  CHECK(r[1] == Approx(0.2));
  CHECK(r[2] == Approx(0.4));  // inclusive: an error equal to the threshold is detected
  CHECK(r[3] == Approx(0.6));
  CHECK(r[4] == Approx(0.8));
  CHECK(r[5] == Approx(1.0));
  CHECK(detection_rates({}, {0.1, 0.2}) == std::vector<double>{0, 0});

  const std::vector<double> t = detection_thresholds();
  REQUIRE(t.size() == 21);
  CHECK(t.front() == 0.0);
  CHECK(t[7] == 0.07);  // computed as 7 / 100, so a threshold prints and compares as written
  CHECK(t.back() == 0.2);
}

TEST_CASE("landmarks: the detection curve and the figures per variation type") {
  Case c = two_variations("landmark");
  HeadMetrics m = head_metrics(c.p, c.ds);
  CHECK(m.landmark_count == 4);  // the invisible slot 2 is not counted
  CHECK(m.landmark_error == Approx((0.005 + 0.05 + 0.125 + 0.3) / 4).margin(1e-6));
  REQUIRE(m.landmark_error_slot.size() == 8);
  CHECK(m.landmark_error_slot[0] == Approx((0.005 + 0.125) / 2).margin(1e-6));
  CHECK(m.landmark_error_slot[1] == Approx(0.05).margin(1e-6));
  CHECK(std::isnan(m.landmark_error_slot[2]));
  CHECK(m.landmark_error_slot[3] == Approx(0.3).margin(1e-6));
  CHECK(m.detection_rate == Approx(0.5));  // 0.005 and 0.05 within 0.1

  // The curve at 0, 0.01, ..., 0.2: 0 until 0.005 is passed, 1/4 until 0.05, 2/4 until 0.125, then 3/4 (0.3
  // is never within 0.2), and never the invisible landmark's 0.9.
  REQUIRE(m.detection_curve.size() == 21);
  REQUIRE(m.detection_curve_thresholds == detection_thresholds());
  const std::vector<double> want = {0,   .25, .25, .25, .25, .5,  .5,  .5,  .5,  .5, .5,
                                    .5,  .5,  .75, .75, .75, .75, .75, .75, .75, .75};
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("threshold " << m.detection_curve_thresholds[i]);
    // 0.05 is 3-4-5 in float: within 1e-6 of the threshold 0.05, so that one point is left out.
    if (i != 5) CHECK(m.detection_curve[i] == Approx(want[i]));
  }

  REQUIRE(m.landmark_variations.size() == 2);  // only the variation types that occur
  const LandmarkGroup& normal = m.landmark_variations[0];
  CHECK(normal.name == "normal pose");
  CHECK(normal.variation == 1);
  CHECK(normal.images == 1);
  CHECK(normal.visible == 2);
  CHECK(normal.error == Approx(0.0275).margin(1e-6));
  CHECK(normal.detection_rate == Approx(1.0));
  CHECK(normal.error_slot[1] == Approx(0.05).margin(1e-6));
  CHECK(std::isnan(normal.error_slot[3]));
  const LandmarkGroup& zoom = m.landmark_variations[1];
  CHECK(zoom.name == "medium zoom-in");
  CHECK(zoom.variation == 4);
  CHECK(zoom.visible == 2);
  CHECK(zoom.error == Approx(0.2125).margin(1e-6));
  CHECK(zoom.detection_rate == Approx(0.0).margin(1e-12));
  REQUIRE(zoom.detection_curve.size() == 21);
  CHECK(zoom.detection_curve[12] == Approx(0.0).margin(1e-12));  // 0.125 is above 0.12
  CHECK(zoom.detection_curve[13] == Approx(0.5));

  const std::string text = format_head_metrics(m);
  INFO(text);
  CHECK(line_of(text, "  detection rate, threshold:") ==
        "  detection rate, threshold:  0.00  0.02  0.04  0.06  0.08  0.10  0.12  0.14  0.16  0.18  0.20");
  CHECK(line_of(text, "  detected, %:") ==
        "  detected, %:                 0.0  25.0  25.0  50.0  50.0  50.0  50.0  75.0  75.0  75.0  75.0");
  CHECK(line_of(text, "  normal pose").rfind("  normal pose          1        2   0.0275   100.00%  0.0050 0.0500 - -", 0) == 0);
  CHECK(line_of(text, "  medium zoom-in").rfind("  medium zoom-in       1        2   0.2125     0.00%  0.1250 - - 0.3000", 0) == 0);
  CHECK(line_of(text, "  all ").rfind("  all                  2        4   0.1200    50.00%", 0) == 0);

  const nlohmann::json j = to_json(m)["landmarks"];
  REQUIRE(j["detection_curve"].size() == 21);
  CHECK(j["detection_curve"][10]["threshold"].get<double>() == Approx(0.1));
  CHECK(j["detection_curve"][10]["rate"].get<double>() == Approx(0.5));
  REQUIRE(j["per_variation"].size() == 2);
  CHECK(j["per_variation"][1]["name"] == "medium zoom-in");
  CHECK(j["per_variation"][1]["variation_type"] == 4);
  CHECK(j["per_variation"][1]["per_slot"][1].is_null());
  CHECK(j["per_variation"][0]["detection_curve"][1]["rate"].get<double>() == Approx(0.5));
}

TEST_CASE("landmarks: per variation type for Category and Landmark only; none without landmarks") {
  Case c = two_variations("inshop");
  HeadMetrics m = head_metrics(c.p, c.ds);
  CHECK(m.landmark_count == 4);
  CHECK(m.detection_curve.size() == 21);  // the curve is for every benchmark
  CHECK(m.landmark_variations.empty());
  CHECK(format_landmark_variations(m).empty());
  CHECK(to_json(m)["landmarks"]["per_variation"].empty());

  Case none = landmark_case("landmark", {{0, {}}, {0, {}}});
  HeadMetrics n = head_metrics(none.p, none.ds);
  CHECK(n.landmark_count == 0);
  CHECK(n.detection_curve.empty());
  CHECK(n.landmark_variations.empty());
  CHECK(format_detection_curve(n).empty());
  CHECK(format_head_metrics(n).find("landmarks") == std::string::npos);
}

TEST_CASE("visibility: accuracy per slot and the garment type's slots as the rule to beat") {
  // An upper-body garment (slots 0-3, 6, 7) with its right hem (7) occluded, and a lower-body one (slots 4-7) all visible; the head calls slot 4 of the first and slot 0 of the second
  // visible, and the first's occluded hem visible too. A third image has no landmarks and is not scored.
  Case c = landmark_case("inshop", {{1, {{0, 0, 0}, {1, 0, 0}, {2, 0, 0}, {3, 0, 0}, {6, 0, 0}}},
                                    {1, {{4, 0, 0}, {5, 0, 0}, {6, 0, 0}, {7, 0, 0}}},
                                    {0, {}}});
  c.ds.samples[0].clothes_type = 1;
  c.ds.samples[1].clothes_type = 2;
  c.p.vis_pred[4] = c.p.vis_pred[7] = 1.f;
  c.p.vis_pred[8 + 0] = 1.f;
  HeadMetrics m = head_metrics(c.p, c.ds);
  CHECK(m.visibility_accuracy == Approx(13.0 / 16));
  REQUIRE(m.visibility_accuracy_slot.size() == 8);
  const std::vector<double> want = {0.5, 1, 1, 1, 0.5, 1, 1, 0.5};
  for (size_t s = 0; s < 8; ++s) {
    INFO("slot " << s);
    CHECK(m.visibility_accuracy_slot[s] == Approx(want[s]));
  }
  CHECK(m.visibility_type_rule == Approx(15.0 / 16));  // wrong only at the occluded hem

  const std::string text = format_head_metrics(m);
  INFO(text);
  CHECK(line_of(text, "  visibility accuracy per slot:") ==
        "  visibility accuracy per slot: 50.0% 100.0% 100.0% 100.0% 50.0% 100.0% 100.0% 50.0%; the garment type's "
        "slots alone: 93.75%");
  const nlohmann::json j = to_json(m)["landmarks"];
  CHECK(j["visibility_per_slot"].size() == 8);
  CHECK(j["visibility_type_rule"].get<double>() == Approx(0.9375));

  // An image of unknown clothes type: no rule figure (null in JSON, left out of the line).
  c.ds.samples[1].clothes_type = 0;
  m = head_metrics(c.p, c.ds);
  CHECK(std::isnan(m.visibility_type_rule));
  CHECK(to_json(m)["landmarks"]["visibility_type_rule"].is_null());
  CHECK(line_of(format_head_metrics(m), "  visibility accuracy per slot:").find("garment") == std::string::npos);
}
