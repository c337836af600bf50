#include "fashionnet/eval/eval_metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "core/format.h"
#include "data/annotations_common.h"
#include "data/dataset.h"

namespace fn::fashionnet {
namespace {
// Rank of column `c` in row `r` of a (rows, cols) score matrix: how many scores are higher (ties: lower
// index first, so the result is deterministic).
int rank_of(const float* row, int cols, int c) {
  int rank = 0;
  for (int j = 0; j < cols; ++j) rank += row[j] > row[c] || (row[j] == row[c] && j < c);
  return rank;
}

// The visible landmarks' errors of a set of images, by slot.
struct LandmarkTally {
  int64_t images = 0;
  std::vector<double> errors;
  std::vector<double> sum = std::vector<double>(8, 0);
  std::vector<int64_t> count = std::vector<int64_t>(8, 0);
  void add(int slot, double e) {
    errors.push_back(e);
    sum[size_t(slot)] += e, ++count[size_t(slot)];
  }
  LandmarkGroup group(const std::string& name, int variation, double threshold) const {
    LandmarkGroup g;
    g.name = name;
    g.variation = variation;
    g.images = images;
    g.visible = int64_t(errors.size());
    for (int s = 0; s < 8; ++s) g.error_slot.push_back(count[size_t(s)] ? sum[size_t(s)] / double(count[size_t(s)]) : NAN);
    if (g.visible) {
      g.error = std::accumulate(errors.begin(), errors.end(), 0.0) / double(g.visible);
      g.detection_rate = detection_rates(errors, {threshold})[0];
      g.detection_curve = detection_rates(errors, detection_thresholds());
    }
    return g;
  }
};
}  // namespace

std::vector<double> detection_thresholds() {
  std::vector<double> t;
  for (int i = 0; i <= 20; ++i) t.push_back(i / 100.0);  // i / 100, not i * 0.01: 0.07 stays 0.07
  return t;
}

std::vector<double> detection_rates(const std::vector<double>& errors, const std::vector<double>& thresholds) {
  std::vector<double> sorted = errors;
  std::sort(sorted.begin(), sorted.end());
  std::vector<double> rates;
  for (double t : thresholds) {
    const size_t within = size_t(std::upper_bound(sorted.begin(), sorted.end(), t) - sorted.begin());
    rates.push_back(sorted.empty() ? 0.0 : double(within) / double(sorted.size()));
  }
  return rates;
}

HeadMetrics head_metrics(const Predictions& p, const data::Dataset& ds) {
  HeadMetrics m;
  size_t n = p.sample_index.size();
  // Category.
  for (size_t i = 0; i < n && p.categories > 0; ++i) {
    int c = ds.samples[size_t(p.sample_index[i])].category;
    if (c < 0 || c >= p.categories) continue;
    int r = rank_of(p.category_logits.data() + i * size_t(p.categories), p.categories, c);
    ++m.category_samples;
    m.category_top1 += r < 1, m.category_top3 += r < 3, m.category_top5 += r < 5;
  }
  if (m.category_samples) {
    double d = double(m.category_samples);
    m.category_top1 /= d, m.category_top3 /= d, m.category_top5 /= d;
  }
  // Attributes: recall@k per attribute, then the mean over attributes that have positives.
  if (p.attributes > 0 && !p.attribute_logits.empty()) {
    std::vector<int64_t> pos(size_t(p.attributes), 0), hit3(pos.size(), 0), hit5(pos.size(), 0);
    for (size_t i = 0; i < n; ++i) {
      const auto& a = ds.samples[size_t(p.sample_index[i])].attributes;
      if (a.empty()) continue;
      ++m.attribute_samples;
      const float* row = p.attribute_logits.data() + i * size_t(p.attributes);
      for (int j = 0; j < p.attributes && j < int(a.size()); ++j) {
        if (a[size_t(j)] != 1) continue;
        int r = rank_of(row, p.attributes, j);
        ++pos[size_t(j)], hit3[size_t(j)] += r < 3, hit5[size_t(j)] += r < 5;
      }
    }
    int counted = 0;
    for (size_t j = 0; j < pos.size(); ++j) {
      if (!pos[j]) continue;
      ++counted;
      m.attribute_recall_top3 += double(hit3[j]) / double(pos[j]);
      m.attribute_recall_top5 += double(hit5[j]) / double(pos[j]);
    }
    if (counted) m.attribute_recall_top3 /= counted, m.attribute_recall_top5 /= counted;
    m.attribute_count = counted;
    m.attribute_total = p.attributes;
    // Per group, by the same rule: the mean over the group's attributes that have positives.
    const std::vector<int>& types = ds.attribute_types;
    int groups = 0;
    for (size_t j = 0; j < pos.size() && j < types.size(); ++j) groups = std::max(groups, types[j]);
    if (groups > 0) groups = std::max(groups, int(ds.attribute_type_names.size()));
    for (int t = 1; t <= groups; ++t) {
      AttributeGroupRecall g;
      g.type = t;
      g.name = t <= int(ds.attribute_type_names.size()) && !ds.attribute_type_names[size_t(t - 1)].empty()
                   ? ds.attribute_type_names[size_t(t - 1)]
                   : "type " + std::to_string(t);
      for (size_t j = 0; j < pos.size() && j < types.size(); ++j) {
        if (types[j] != t) continue;
        ++g.attributes_total;
        if (!pos[j]) continue;
        ++g.attributes;
        g.top3 += double(hit3[j]) / double(pos[j]);
        g.top5 += double(hit5[j]) / double(pos[j]);
      }
      if (g.attributes) g.top3 /= g.attributes, g.top5 /= g.attributes;
      else g.top3 = g.top5 = NAN;
      m.attribute_groups.push_back(std::move(g));
    }
  }
  // Landmarks: every visible landmark's error, overall and per variation type.
  LandmarkTally all;
  std::vector<LandmarkTally> by_variation(6);  // index = variation type 1..5 (0 unused)
  const bool per_variation = ds.benchmark == "category" || ds.benchmark == "landmark";
  int64_t rule_right = 0;
  std::vector<int64_t> vis_right(8, 0);
  bool types_known = true;
  for (size_t i = 0; i < n; ++i) {
    const data::Sample& smp = ds.samples[size_t(p.sample_index[i])];
    if (!smp.has_landmarks) continue;
    const int v = per_variation && smp.variation >= 1 && smp.variation <= 5 ? smp.variation : 0;
    ++all.images, ++by_variation[size_t(v)].images;
    bool has_slot[8] = {};
    types_known = types_known && smp.clothes_type >= 1 && smp.clothes_type <= 3;
    if (types_known)
      for (int s : data::slots_of_type(smp.clothes_type)) has_slot[s] = true;
    for (int s = 0; s < 8; ++s) {
      size_t k = i * 8 + size_t(s);
      bool vis = p.landmark_visible[k] > 0.5f;
      vis_right[size_t(s)] += vis == (p.vis_pred[k] > 0.5f);
      rule_right += vis == has_slot[s];
      if (!vis) continue;
      double dx = p.landmark_pred[2 * k] - p.landmark_true[2 * k], dy = p.landmark_pred[2 * k + 1] - p.landmark_true[2 * k + 1];
      double e = std::sqrt(dx * dx + dy * dy);
      all.add(s, e);
      by_variation[size_t(v)].add(s, e);
    }
  }
  const LandmarkGroup overall = all.group("all", 0, m.detection_threshold);
  m.landmark_count = overall.visible;
  m.landmark_error_slot = overall.error_slot;
  if (m.landmark_count) {
    m.landmark_error = overall.error;
    m.detection_rate = overall.detection_rate;
    m.detection_curve_thresholds = detection_thresholds();
    m.detection_curve = overall.detection_curve;
  }
  for (int v = 1; v <= 5; ++v)
    if (by_variation[size_t(v)].images)
      m.landmark_variations.push_back(by_variation[size_t(v)].group(data::variation_name(v), v, m.detection_threshold));
  if (all.images) {
    for (int64_t r : vis_right) m.visibility_accuracy_slot.push_back(double(r) / double(all.images));
    const double slots = double(8 * all.images);
    m.visibility_accuracy = double(std::accumulate(vis_right.begin(), vis_right.end(), int64_t(0))) / slots;
    if (types_known) m.visibility_type_rule = double(rule_right) / slots;
  }
  return m;
}

std::string format_head_metrics(const HeadMetrics& m) {
  char b[512];
  std::string s;
  if (m.category_samples) {
    std::snprintf(b, sizeof b, "category (%lld images): top-1 %.2f%%  top-3 %.2f%%  top-5 %.2f%%\n",
                  (long long)m.category_samples, 100 * m.category_top1, 100 * m.category_top3, 100 * m.category_top5);
    s += b;
  }
  if (m.attribute_samples) {
    std::snprintf(b, sizeof b, "attributes (%lld images): top-3 recall %.2f%%  top-5 recall %.2f%% (mean over attributes)\n",
                  (long long)m.attribute_samples, 100 * m.attribute_recall_top3, 100 * m.attribute_recall_top5);
    s += b;
    if (!m.attribute_groups.empty()) s += format_attribute_groups(m);
  }
  if (m.landmark_count) {
    std::snprintf(b, sizeof b,
                  "landmarks (%lld visible): normalised error %.4f, detected within %.2f: %.2f%%, visibility accuracy %.2f%%\n"
                  "  per slot (L/R collar, L/R sleeve, L/R waistline, L/R hem):",
                  (long long)m.landmark_count, m.landmark_error, m.detection_threshold, 100 * m.detection_rate,
                  100 * m.visibility_accuracy);
    s += b;
    for (double e : m.landmark_error_slot) {
      std::snprintf(b, sizeof b, " %.4f", e);
      s += std::isnan(e) ? " -" : b;
    }
    s += "\n  visibility accuracy per slot:";
    for (double a : m.visibility_accuracy_slot) s += " " + fixed(100 * a, 1) + "%";
    // What the head must beat: the slots the garment type has, called visible, with no pixel seen.
    if (!std::isnan(m.visibility_type_rule)) s += "; the garment type's slots alone: " + fixed(100 * m.visibility_type_rule, 2) + "%";
    s += "\n" + format_detection_curve(m) + format_landmark_variations(m);
  }
  return s;
}

std::string format_detection_curve(const HeadMetrics& m) {
  if (m.detection_curve.empty()) return "";
  std::string th = "  detection rate, threshold:", rate = "  detected, %:              ";
  char b[32];
  for (size_t i = 0; i < m.detection_curve.size(); i += 2) {
    std::snprintf(b, sizeof b, " %5.2f", m.detection_curve_thresholds[i]);
    th += b;
    std::snprintf(b, sizeof b, " %5.1f", 100 * m.detection_curve[i]);
    rate += b;
  }
  return th + "\n" + rate + "\n";
}

std::string format_landmark_variations(const HeadMetrics& m) {
  if (m.landmark_variations.empty()) return "";
  std::vector<LandmarkGroup> rows = m.landmark_variations;
  LandmarkGroup all;
  all.name = "all";
  all.visible = m.landmark_count;
  all.error = m.landmark_error;
  all.detection_rate = m.detection_rate;
  all.error_slot = m.landmark_error_slot;
  for (const auto& g : m.landmark_variations) all.images += g.images;
  rows.push_back(all);
  char b[256], det[32];
  std::snprintf(det, sizeof det, "det@%.2f", m.detection_threshold);
  std::snprintf(b, sizeof b, "  %-14s  %6s  %7s  %7s  %8s  per slot (L/R collar, L/R sleeve, L/R waistline, L/R hem)\n",
                "variation", "images", "visible", "error", det);
  std::string s = b;
  for (const auto& g : rows) {
    if (g.visible)
      std::snprintf(b, sizeof b, "  %-14s  %6lld  %7lld  %7.4f  %7.2f%% ", g.name.c_str(), (long long)g.images,
                    (long long)g.visible, g.error, 100 * g.detection_rate);
    else
      std::snprintf(b, sizeof b, "  %-14s  %6lld  %7lld  %7s  %8s ", g.name.c_str(), (long long)g.images, 0LL, "-", "-");
    s += b;
    for (double e : g.error_slot) {
      std::snprintf(b, sizeof b, " %.4f", e);
      s += std::isnan(e) ? " -" : b;
    }
    s += "\n";
  }
  return s;
}

AttributeGroupRecall attribute_recall_all(const HeadMetrics& m) {
  AttributeGroupRecall g;
  g.name = "all";
  g.attributes = m.attribute_count;
  g.attributes_total = m.attribute_total;
  g.top3 = m.attribute_recall_top3;
  g.top5 = m.attribute_recall_top5;
  return g;
}

std::string format_attribute_groups(const HeadMetrics& m) {
  if (m.attribute_groups.empty()) return "";
  std::vector<AttributeGroupRecall> rows = m.attribute_groups;
  rows.push_back(attribute_recall_all(m));
  size_t w = 5;  // "group"
  for (const auto& g : rows) w = std::max(w, g.name.size());
  const int iw = int(w);
  char b[512];
  std::snprintf(b, sizeof b, "  %-*s  attributes  top-3 recall  top-5 recall\n", iw, "group");
  std::string s = b;
  for (const auto& g : rows) {
    char att[48];
    std::snprintf(att, sizeof att, "%d/%d", g.attributes, g.attributes_total);
    if (g.attributes)
      std::snprintf(b, sizeof b, "  %-*s  %10s  %11.2f%%  %11.2f%%\n", iw, g.name.c_str(), att, 100 * g.top3, 100 * g.top5);
    else
      std::snprintf(b, sizeof b, "  %-*s  %10s  %12s  %12s\n", iw, g.name.c_str(), att, "-", "-");
    s += b;
  }
  return s;
}

nlohmann::json to_json(const AttributeGroupRecall& g) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json j = {{"name", g.name}, {"attributes", g.attributes}, {"attributes_total", g.attributes_total},
                      {"top3", num(g.top3)}, {"top5", num(g.top5)}};
  if (g.type) j["type"] = g.type;
  return j;
}

nlohmann::json to_json(const LandmarkGroup& g) {
  auto num = [](double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); };
  nlohmann::json slots = nlohmann::json::array();
  for (double e : g.error_slot) slots.push_back(num(e));
  nlohmann::json j = {{"name", g.name}, {"images", g.images}, {"visible", g.visible},
                      {"normalized_error", num(g.error)}, {"detection_rate", num(g.detection_rate)}, {"per_slot", slots}};
  if (g.variation) j["variation_type"] = g.variation;
  const std::vector<double> t = detection_thresholds();
  nlohmann::json curve = nlohmann::json::array();
  for (size_t i = 0; i < g.detection_curve.size() && i < t.size(); ++i)
    curve.push_back({{"threshold", t[i]}, {"rate", g.detection_curve[i]}});
  j["detection_curve"] = curve;
  return j;
}

nlohmann::json to_json(const HeadMetrics& m) {
  nlohmann::json slots = nlohmann::json::array();
  for (double e : m.landmark_error_slot) slots.push_back(std::isnan(e) ? nlohmann::json(nullptr) : nlohmann::json(e));
  nlohmann::json curve = nlohmann::json::array();
  for (size_t i = 0; i < m.detection_curve.size(); ++i)
    curve.push_back({{"threshold", m.detection_curve_thresholds[i]}, {"rate", m.detection_curve[i]}});
  nlohmann::json variations = nlohmann::json::array();
  for (const auto& g : m.landmark_variations) variations.push_back(to_json(g));
  // "recall_top3"/"recall_top5" (the overall means) stay as before; "all" repeats them with the counts.
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : m.attribute_groups) groups.push_back(to_json(g));
  nlohmann::json attributes = {{"samples", m.attribute_samples}, {"recall_top3", m.attribute_recall_top3},
                               {"recall_top5", m.attribute_recall_top5}, {"all", to_json(attribute_recall_all(m))},
                               {"groups", groups}};
  return {{"category", {{"samples", m.category_samples}, {"top1", m.category_top1}, {"top3", m.category_top3}, {"top5", m.category_top5}}},
          {"attributes", attributes},
          {"landmarks", {{"visible", m.landmark_count}, {"normalized_error", m.landmark_error}, {"per_slot", slots},
                         {"detection_threshold", m.detection_threshold}, {"detection_rate", m.detection_rate},
                         {"detection_curve", curve}, {"per_variation", variations},
                         {"visibility_accuracy", m.visibility_accuracy}, {"visibility_per_slot", m.visibility_accuracy_slot},
                         {"visibility_type_rule", std::isnan(m.visibility_type_rule) ? nlohmann::json(nullptr)
                                                                                      : nlohmann::json(m.visibility_type_rule)}}}};
}

}  // namespace fn::fashionnet
