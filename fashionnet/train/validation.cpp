#include "fashionnet/train/validation.h"

#include <chrono>
#include <cmath>
#include <map>

#include "core/format.h"
#include "data/split.h"
#include "fashionnet/eval/eval_metrics.h"
#include "fashionnet/eval/inference.h"
#include "fashionnet/eval/retrieval_metrics.h"
#include "nn/module.h"

namespace fn::fashionnet {
namespace {

constexpr int64_t kRetrievalK = 20;  // the benchmarks' headline top-k (docs/fashionnet.md sec. 4)

// "1 query", "3 queries".
std::string count_of(size_t n, const char* one, const char* many) { return cat(n, " ", n == 1 ? one : many); }

// In-shop: per held-out item, its first image queries and the others wait in the gallery; an item with one
// image can only be a distractor.
void inshop_query_gallery(const data::Dataset& ds, const std::vector<int>& ids, ValidationSet& set) {
  std::map<int, std::vector<int>> by_item;
  std::vector<int> order;  // items in order of first appearance, for a file-order rule
  for (int i : ids) {
    auto& v = by_item[ds.samples[size_t(i)].item];
    if (v.empty()) order.push_back(ds.samples[size_t(i)].item);
    v.push_back(i);
  }
  for (int item : order) {
    const std::vector<int>& v = by_item[item];
    for (size_t k = 0; k < v.size(); ++k) (k == 0 && v.size() > 1 ? set.query : set.gallery).push_back(v[k]);
  }
  set.description = count_of(by_item.size(), "training item", "training items") + " held out by a hash of the item id";
}

}  // namespace

ValidationSet validation_set(const data::Dataset& ds, double holdout) {
  ValidationSet set;
  const std::vector<int> ids = data::validation_indices(ds, holdout);
  if (ds.benchmark == "inshop") {
    set.measure = "retrieval_top20";
    set.tie_break = "retrieval_map20";
    set.retrieval = true;
    inshop_query_gallery(ds, ids, set);
    set.description += cat(" (fraction ", holdout, "): ", count_of(set.query.size(), "query", "queries"),
                           " searched among ", count_of(set.gallery.size(), "gallery image", "gallery images"));
  } else if (ds.benchmark == "consumer2shop") {
    set.measure = "retrieval_top20";
    set.tie_break = "retrieval_map20";
    set.retrieval = true;
    for (int i : ids) (ds.samples[size_t(i)].source == 2 ? set.query : set.gallery).push_back(i);
    set.description = cat("the val split: ", count_of(set.query.size(), "consumer photo", "consumer photos"),
                          " searched among ", count_of(set.gallery.size(), "shop photo", "shop photos"));
  } else if (ds.benchmark == "landmark") {
    set.measure = "landmark_error";
    set.higher_is_better = false;
    set.query = ids;
    set.description = "the val split: " + count_of(ids.size(), "image", "images");
  } else if (ds.benchmark == "imagefolder") {
    set.measure = "category_top1";
    set.query = ids;
    set.description = cat(count_of(ids.size(), "training image", "training images"), " held out by a second hash slice (fraction ",
                          holdout, "; the hold-out `eval --holdout` scores stays unseen)");
  } else {  // category
    set.measure = "category_top3";
    set.tie_break = "category_top1";
    set.query = ids;
    set.description = "the val split: " + count_of(ids.size(), "image", "images");
  }
  return set;
}

ValidationResult validate(FashionNet& model, const data::Dataset& ds, const ValidationSet& set, Device device,
                          int threads, bool skip_bad, dist::Communicator* comm) {
  FN_CHECK(set.usable(), "validate: an empty validation set (", set.description, ")");
  const auto t0 = std::chrono::steady_clock::now();
  // run_inference guards its own scope too; this one covers everything the measure runs.
  nn::ModeGuard eval_mode(model, /*training=*/false);
  InferenceOptions io;
  io.threads = threads;
  io.bbox_margin = set.bbox_margin;
  io.skip_bad = skip_bad;
  io.progress = false;
  io.comm = comm;
  ValidationResult r;
  if (set.retrieval) {
    const Predictions q = run_inference(model, ds, set.query, device, io);
    const Predictions g = run_inference(model, ds, set.gallery, device, io);
    const RetrievalReport rep =
        evaluate_retrieval(q.embeddings, g.embeddings, {kRetrievalK}, device, "validation queries", "validation gallery");
    r.value = rep.metrics.top_k_accuracy.at(0);
    r.tie_break = rep.metrics.map_at_k.at(0);
  } else {
    const HeadMetrics m = head_metrics(run_inference(model, ds, set.query, device, io), ds);
    if (set.measure == "landmark_error")
      r.value = m.landmark_count > 0 ? m.landmark_error : NAN;
    else
      r.value = m.category_samples == 0 ? NAN : set.measure == "category_top3" ? m.category_top3 : m.category_top1;
    if (set.tie_break == "category_top1" && m.category_samples > 0) r.tie_break = m.category_top1;
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

bool improves(const ValidationSet& set, const ValidationResult& r, const ValidationBest& best) {
  if (std::isnan(r.value)) return false;
  if (best.value < 0) return true;
  if (r.value != best.value) return set.higher_is_better ? r.value > best.value : r.value < best.value;
  return !std::isnan(r.tie_break) && r.tie_break > best.tie_break;
}

std::string measure_label(const std::string& measure) {
  if (measure == "retrieval_top20") return "retrieval top-20";
  if (measure == "retrieval_map20") return "retrieval mAP@20";
  if (measure == "category_top3") return "category top-3";
  if (measure == "category_top1") return "category top-1";
  if (measure == "landmark_error") return "landmark error";
  return measure;
}

std::string format_measure(const std::string& measure, double value) {
  if (std::isnan(value)) return "-";
  return measure == "landmark_error" ? fixed(value, 4) : fixed(100 * value, 1) + "%";
}

}  // namespace fn::fashionnet
