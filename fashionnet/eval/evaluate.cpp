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

// 3968 -> "3,968": counts the user compares with a folder listing.
std::string grouped(int64_t n) {
  std::string d = std::to_string(n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0 && (d.size() - i) % 3 == 0 && d[i - 1] != '-') out += ',';
    out += d[i];
  }
  return out;
}
}  // namespace

EvalResult evaluate(FashionNet& model, const data::Dataset& ds, Device device, const EvalOptions& opt) {
  EvalResult r;
  r.benchmark = ds.benchmark;
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
  if (!r.scored.description.empty()) s += r.scored.description + "\n\n";
  if (r.retrieval) s += "retrieval, landmark_pool at the PREDICTED landmarks:\n" + format_table(*r.retrieval);
  if (r.retrieval_gt) s += "\nretrieval, landmark_pool at the GROUND-TRUTH landmarks:\n" + format_table(*r.retrieval_gt);
  s += "\n" + format_head_metrics(r.heads);
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
  return j;
}

}  // namespace fn::fashionnet
