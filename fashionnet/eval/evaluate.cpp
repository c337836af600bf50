#include "fashionnet/eval/evaluate.h"

#include <algorithm>
#include <cstdio>

#include "data/split.h"
#include "data/synth.h"

namespace fn::fashionnet {
namespace {
Predictions concat_predictions(const Predictions& a, const Predictions& b) {
  Predictions r = a;
  auto app = [](auto& dst, const auto& src) { dst.insert(dst.end(), src.begin(), src.end()); };
  app(r.sample_index, b.sample_index);
  app(r.category_logits, b.category_logits);
  app(r.attribute_logits, b.attribute_logits);
  app(r.landmark_pred, b.landmark_pred);
  app(r.landmark_true, b.landmark_true);
  app(r.landmark_visible, b.landmark_visible);
  app(r.vis_pred, b.vis_pred);
  return r;
}

// 3968 -> "3,968": counts the user compares with a folder listing.
std::string grouped(int64_t n) {
  std::string d = std::to_string(n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0 && d[i - 1] != '-') out += ',';
    out += d[i];
  }
  return out;
}

const char* const kMirrorNote = "; each image with its mirror image, the two passes averaged (--mirror)";
}  // namespace

std::string category_list_warning(const std::vector<std::string>& trained, const std::vector<std::string>& data,
                                  const std::string& checkpoint, const std::string& root) {
  if (trained.empty() || trained == data) return "";
  std::string how;
  const size_t common = std::min(trained.size(), data.size());
  for (size_t i = 0; i < common && how.empty(); ++i)
    if (trained[i] != data[i]) how = cat("category ", i, " is '", trained[i], "' there and '", data[i], "' here");
  if (how.empty()) how = cat("the first ", common, " agree");
  return cat("warning: ", checkpoint, " was trained on ", trained.size(), " categories, ", root, " has ", data.size(),
             " (", how, "): category top-k compares labels of two different lists",
             data.size() > trained.size() ? cat(", and scores only the images of the network's ", trained.size())
                                          : std::string(),
             "\n");
}

EvalResult evaluate(FashionNet& model, const data::Dataset& ds, Device device, const EvalOptions& opt) {
  EvalResult r;
  r.benchmark = ds.benchmark;
  r.synthetic_data = data::is_synthetic_dataset(ds.root);
  r.mirror = opt.inference.mirror;
  ScoredImages& sc = r.scored;
  sc.dataset_images = int64_t(ds.samples.size());
  if (ds.benchmark == "imagefolder" || ds.benchmark == "category" || ds.benchmark == "landmark") {
    std::vector<int> held;
    if (ds.benchmark != "imagefolder") {
      held = ds.indices(data::Split::Test);
      sc.mode = "test";
      sc.description = cat("scored the test split: ", grouped(int64_t(held.size())), " of ",
                           grouped(sc.dataset_images), " images of ", ds.root);
    } else if (opt.holdout > 0) {
      // The trainer's own split (data/split.h), so these are exactly the images training never saw.
      held = data::holdout_indices(ds, opt.holdout);
      sc.mode = "holdout";
      sc.holdout = opt.holdout;
      sc.description = cat("scored the hold-out (fraction ", opt.holdout, ", the images `train --holdout ",
                           opt.holdout, "` leaves out): ", grouped(int64_t(held.size())), " of ",
                           grouped(sc.dataset_images), " images of ", ds.root);
      FN_EXPECT(!held.empty(), ds.root, ": the hold-out of fraction ", opt.holdout, " holds none of its ",
                sc.dataset_images, " images; raise --holdout, or leave it out to score every image");
    } else {
      held.resize(ds.samples.size());
      for (size_t i = 0; i < held.size(); ++i) held[i] = int(i);
      sc.mode = "all";
      sc.description = cat("scored all ", grouped(sc.dataset_images), " images of ", ds.root);
    }
    sc.images = int64_t(held.size());
    if (r.mirror) sc.description += kMirrorNote;
    r.query = run_inference(model, ds, held, device, opt.inference);
    r.heads = head_metrics(r.query, ds);
    return r;
  }
  std::vector<int> q = ds.indices(data::Split::Query), g = ds.indices(data::Split::Gallery);
  FN_EXPECT(!q.empty() && !g.empty(), ds.root, ": ", q.size(), " query and ", g.size(), " gallery images (",
            ds.benchmark, "); retrieval evaluation needs at least one of each");
  sc.mode = "query+gallery";
  sc.images = int64_t(q.size() + g.size());
  sc.description = cat("scored ", grouped(int64_t(q.size())), " query and ", grouped(int64_t(g.size())),
                       " gallery images of ", ds.root, " (", grouped(sc.dataset_images), " in all)");
  if (r.mirror) sc.description += kMirrorNote;
  r.query = run_inference(model, ds, q, device, opt.inference);
  r.gallery = run_inference(model, ds, g, device, opt.inference);
  r.retrieval = evaluate_retrieval(r.query.embeddings, r.gallery.embeddings, opt.ks, device);
  r.heads = head_metrics(concat_predictions(r.query, r.gallery), ds);
  bool has_lm = false;
  for (int i : q) has_lm |= ds.samples[size_t(i)].has_landmarks;
  if (opt.with_ground_truth_landmarks && has_lm && model.config().local_branch) {
    InferenceOptions io = opt.inference;
    io.pool_at_ground_truth = true;
    Predictions qg = run_inference(model, ds, q, device, io), gg = run_inference(model, ds, g, device, io);
    r.retrieval_gt = evaluate_retrieval(qg.embeddings, gg.embeddings, opt.ks, device);
  }
  return r;
}

namespace {
// Our figure for one of the paper's metrics, in its unit; NaN where this evaluation has none.
double ours_for(const EvalResult& r, const PaperMetric& pm) {
  const HeadMetrics& m = r.heads;
  const std::string& key = pm.metric;
  auto topk = [&](const std::string& prefix, double v3, double v5) {
    return key == prefix + "top3" ? 100 * v3 : key == prefix + "top5" ? 100 * v5 : NAN;
  };
  if (key.rfind("category/", 0) == 0) return m.category_samples ? topk("category/", m.category_top3, m.category_top5) : NAN;
  if (key.rfind("attributes/", 0) == 0) {
    if (!m.attribute_samples) return NAN;
    std::vector<AttributeGroupRecall> groups = m.attribute_groups;
    groups.push_back(attribute_recall_all(m));
    for (const AttributeGroupRecall& g : groups)
      if (g.attributes && key.rfind("attributes/" + g.name + "/", 0) == 0)
        return topk("attributes/" + g.name + "/", g.top3, g.top5);
    return NAN;
  }
  if (key == "landmarks/error_mean8") {
    // The papers average the 8 slots' errors (a slot with no visible landmark here is left out).
    double sum = 0;
    int slots = 0;
    for (double e : m.landmark_error_slot)
      if (!std::isnan(e)) sum += e, ++slots;
    return m.landmark_count && slots ? sum / slots : NAN;
  }
  if (key.rfind("retrieval/top", 0) == 0 && r.retrieval) {
    const int64_t k = std::stoll(key.substr(13));
    const auto& rm = r.retrieval->metrics;
    for (size_t i = 0; i < rm.ks.size(); ++i)
      if (rm.ks[i] == k) return 100 * rm.top_k_accuracy[i];
  }
  return NAN;
}

}  // namespace

size_t paper_source_number(const std::vector<std::string>& sources, const std::string& source) {
  return size_t(std::find(sources.begin(), sources.end(), source) - sources.begin()) + 1;
}

std::string format_paper_value(double v, const PaperMetric& metric) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, metric.percent ? "%.2f" : "%.4f", v);
  return b;
}

std::vector<PaperTableRow> paper_table(const EvalResult& r) {
  std::vector<PaperTableRow> rows;
  for (const PaperMetric& pm : paper_metrics()) {
    if (pm.benchmark != r.benchmark) continue;
    rows.push_back({pm, ours_for(r, pm), published_for(pm.benchmark, pm.metric)});
  }
  return rows;
}

std::vector<std::string> paper_table_sources(const std::vector<PaperTableRow>& rows) {
  std::vector<std::string> sources;
  for (const PaperTableRow& row : rows)
    for (const PublishedResult& p : row.published)
      if (std::find(sources.begin(), sources.end(), p.source) == sources.end()) sources.push_back(p.source);
  return sources;
}

std::string format_paper_table(const EvalResult& r) {
  const std::vector<PaperTableRow> rows = paper_table(r);
  if (rows.empty()) return "";
  const std::vector<std::string> sources = paper_table_sources(rows);
  auto ref = [&](const std::string& source) {
    return cat("[", paper_source_number(sources, source), "]");
  };
  size_t tw = 4, lw = 6;  // "task", "metric"
  for (const PaperTableRow& row : rows) tw = std::max(tw, row.metric.task.size()), lw = std::max(lw, row.metric.label.size());
  std::string s = "the paper's tables, ours beside the published figures:\n";
  if (r.synthetic_data) s += "  " + synthetic_data_warning() + "\n";
  char b[512];
  std::snprintf(b, sizeof b, "  %-*s  %-*s  %9s  %14s  %s\n", int(tw), "task", int(lw), "metric", "ours",
                (std::string(kFashionNet) + " " + ref(rows.front().published.front().source)).c_str(), "best published");
  s += b;
  for (const PaperTableRow& row : rows) {
    std::string fashionnet = "-", best;
    for (const PublishedResult& p : row.published) {
      if (p.method == kFashionNet) {
        fashionnet = format_paper_value(p.value, row.metric);
        continue;
      }
      best += cat(best.empty() ? "" : "; ", format_paper_value(p.value, row.metric), " ", p.method, " ", ref(p.source));
    }
    std::snprintf(b, sizeof b, "  %-*s  %-*s  %9s  %14s  %s\n", int(tw), row.metric.task.c_str(), int(lw),
                  row.metric.label.c_str(), format_paper_value(row.ours, row.metric).c_str(), fashionnet.c_str(),
                  best.empty() ? "-" : best.c_str());
    s += b;
  }
  for (size_t i = 0; i < sources.size(); ++i) s += cat("  [", i + 1, "] ", sources[i], "\n");
  return s;
}

std::string format_eval(const EvalResult& r) {
  std::string s;
  if (r.synthetic_data && !paper_table(r).empty()) s += synthetic_data_warning() + "\n\n";
  if (!r.scored.description.empty()) s += r.scored.description + "\n\n";
  if (r.retrieval) s += "retrieval, landmark_pool at the PREDICTED landmarks:\n" + format_table(*r.retrieval);
  if (r.retrieval_gt) s += "\nretrieval, landmark_pool at the GROUND-TRUTH landmarks:\n" + format_table(*r.retrieval_gt);
  s += "\n" + format_head_metrics(r.heads);
  const std::string table = format_paper_table(r);
  if (!table.empty()) s += "\n" + table;
  return s;
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j;
  j["benchmark"] = r.benchmark;
  nlohmann::json sc = {{"mode", r.scored.mode}, {"images", r.scored.images},
                       {"dataset_images", r.scored.dataset_images}, {"description", r.scored.description}};
  if (r.scored.mode == "holdout") sc["holdout"] = r.scored.holdout;
  j["scored"] = sc;
  if (r.retrieval) j["retrieval"] = to_json(*r.retrieval);
  if (r.retrieval_gt) j["retrieval_ground_truth_landmarks"] = to_json(*r.retrieval_gt);
  j["heads"] = to_json(r.heads);
  j["synthetic_data"] = r.synthetic_data;
  j["mirror"] = r.mirror;
  const std::vector<PaperTableRow> rows = paper_table(r);
  if (!rows.empty()) {
    nlohmann::json t = nlohmann::json::array();
    for (const PaperTableRow& row : rows) {
      nlohmann::json published = nlohmann::json::array();
      for (const PublishedResult& p : row.published)
        published.push_back({{"method", p.method}, {"value", p.value}, {"source", p.source},
                             {"role", p.method == kFashionNet ? "paper" : "best published"}});
      t.push_back({{"task", row.metric.task}, {"metric", row.metric.metric}, {"label", row.metric.label},
                   {"unit", row.metric.percent ? "%" : "normalised distance"},
                   {"lower_is_better", row.metric.lower_is_better},
                   {"ours", std::isnan(row.ours) ? nlohmann::json(nullptr) : nlohmann::json(row.ours)},
                   {"published", published}});
    }
    j["paper_table"] = {{"comparable", !r.synthetic_data},
                        {"note", r.synthetic_data ? synthetic_data_warning() : real_data_note()},
                        {"rows", t}};
  }
  return j;
}

}  // namespace fn::fashionnet
