#include "fashionnet/eval/evaluate.h"

#include "data/split.h"

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
}  // namespace

EvalResult evaluate(FashionNet& model, const data::Dataset& ds, Device device, const EvalOptions& opt) {
  EvalResult r;
  r.benchmark = ds.benchmark;
  if (ds.benchmark == "imagefolder" || ds.benchmark == "category" || ds.benchmark == "landmark") {
    // Held-out part (imagefolder) or the test split.
    std::vector<int> held = ds.benchmark == "imagefolder" ? data::holdout_indices(ds, opt.holdout) : ds.indices(data::Split::Test);
    r.query = run_inference(model, ds, held, device, opt.inference);
    r.heads = head_metrics(r.query, ds);
    return r;
  }
  std::vector<int> q = ds.indices(data::Split::Query), g = ds.indices(data::Split::Gallery);
  FN_EXPECT(!q.empty() && !g.empty(), ds.root, ": ", q.size(), " query and ", g.size(), " gallery images (",
            ds.benchmark, "); retrieval evaluation needs at least one of each");
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

std::string format_eval(const EvalResult& r) {
  std::string s;
  if (r.retrieval) s += "retrieval, landmark_pool at the PREDICTED landmarks:\n" + format_table(*r.retrieval);
  if (r.retrieval_gt) s += "\nretrieval, landmark_pool at the GROUND-TRUTH landmarks:\n" + format_table(*r.retrieval_gt);
  s += "\n" + format_head_metrics(r.heads);
  return s;
}

nlohmann::json to_json(const EvalResult& r) {
  nlohmann::json j;
  j["benchmark"] = r.benchmark;
  if (r.retrieval) j["retrieval"] = to_json(*r.retrieval);
  if (r.retrieval_gt) j["retrieval_ground_truth_landmarks"] = to_json(*r.retrieval_gt);
  j["heads"] = to_json(r.heads);
  return j;
}

}  // namespace fn::fashionnet
