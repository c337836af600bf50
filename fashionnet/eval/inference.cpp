#include "fashionnet/eval/inference.h"

#include "core/autograd.h"
#include "data/loader.h"
#include "fashionnet/model/batch.h"
#include "core/progress.h"

namespace fn::fashionnet {

Predictions run_inference(FashionNet& model, const data::Dataset& ds, const std::vector<int>& indices,
                          Device device, const InferenceOptions& opt) {
  NoGradGuard no_grad;
  nn::ModeGuard eval_mode(model, /*training=*/false);  // dropout off (and batch norm on its running statistics)
  const NetConfig& cfg = model.config();
  data::LoaderConfig lc;
  lc.batch = opt.batch;
  lc.input = cfg.input;
  lc.flip = false;
  lc.sampler = data::LoaderConfig::Sequential;
  lc.drop_last = false;
  lc.threads = opt.threads;
  lc.skip_bad = opt.skip_bad;
  data::Loader loader(ds, indices, lc);
  Predictions p;
  p.categories = cfg.categories;
  p.attributes = cfg.attributes;
  std::vector<float> feats;
  int64_t dim = cfg.fc7_fusion, done = 0;
  Progress prog("embed", int64_t(indices.size()), "img", 20);
  data::Batch b;
  while (loader.next(b)) {
    if (b.n == 0) continue;
    BatchTensors bt = to_tensors(b, ds, device);
    PoolAt at;
    if (opt.pool_at_ground_truth) at = PoolAt{bt.landmarks, bt.visible};
    Outputs o = model.forward(bt.images, at);
    std::vector<float> e = o.embedding.to_vector();
    feats.insert(feats.end(), e.begin(), e.end());
    auto append = [](std::vector<float>& dst, const Tensor& t) {
      if (!t.defined()) return;
      auto v = t.to_vector();
      dst.insert(dst.end(), v.begin(), v.end());
    };
    append(p.category_logits, o.category);
    append(p.attribute_logits, o.attributes);
    append(p.landmark_pred, o.landmark_loc);
    append(p.landmark_true, bt.landmarks01);
    p.landmark_visible.insert(p.landmark_visible.end(), b.lm_visible.begin(), b.lm_visible.end());
    append(p.vis_pred, model.predicted_pool_at(o).visibility);
    for (int i = 0; i < b.n; ++i) {
      int s = b.sample_index[size_t(i)];
      const data::Sample& smp = ds.samples[size_t(s)];
      p.sample_index.push_back(s);
      p.embeddings.image_paths.push_back(smp.image);
      p.embeddings.item_ids.push_back(smp.item_id.empty() ? "item_" + std::to_string(smp.item) : smp.item_id);
    }
    done += b.n;
    if (opt.progress) prog.update(done, double(done));
  }
  if (opt.progress) prog.finish(cat(done, " images"));
  p.embeddings.features = Tensor::from(feats, {int64_t(p.sample_index.size()), dim});
  return p;
}

}  // namespace fn::fashionnet
