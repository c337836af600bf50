#include "fashionnet/eval/inference.h"

#include <cstdio>

#include "core/autograd.h"
#include "core/progress.h"
#include "data/loader.h"
#include "dist/comm.h"
#include "fashionnet/eval/mirror.h"
#include "fashionnet/model/batch.h"

namespace fn::fashionnet {
namespace {

// One process's rows: `indices` in order (less the images skip_bad skipped).
Predictions infer(FashionNet& model, const data::Dataset& ds, const std::vector<int>& indices, Device device,
                  const InferenceOptions& opt, const std::string& label, bool progress) {
  NoGradGuard no_grad;
  nn::ModeGuard eval_mode(model, /*training=*/false);  // dropout off (and batch norm on its running statistics)
  const NetConfig& cfg = model.config();
  data::LoaderConfig lc;
  lc.batch = opt.batch;
  lc.input = cfg.input;
  lc.bbox_margin = opt.bbox_margin;
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
  Progress prog(label, int64_t(indices.size()), "img", 20);
  data::Batch b;
  // One forward pass of a batch, landmark_pool at the predicted landmarks or (when asked) the annotated ones.
  auto pass = [&](const data::Batch& batch, BatchTensors& bt) {
    bt = to_tensors(batch, ds, device);
    PoolAt at;
    if (opt.pool_at_ground_truth) at = PoolAt{bt.landmarks, bt.visible};
    return forward_to_host(model, bt.images, at);
  };
  auto append = [](std::vector<float>& dst, const std::vector<float>& v) { dst.insert(dst.end(), v.begin(), v.end()); };
  while (loader.next(b)) {
    if (b.n == 0) continue;
    BatchTensors bt;
    HostOutputs h = pass(b, bt);
    if (opt.mirror) {
      data::Batch m = b;
      data::mirror_batch(m);
      BatchTensors mt;
      average_with_mirrored(h, pass(m, mt), cfg.input);
    }
    append(feats, h.embedding);
    append(p.category_logits, h.category);
    append(p.attribute_logits, h.attributes);
    append(p.landmark_pred, h.landmark_loc);
    append(p.landmark_true, bt.landmarks01.to_vector());
    append(p.landmark_visible, b.lm_visible);
    append(p.vis_pred, visible_from_logits(h.landmark_vis));
    for (int i = 0; i < b.n; ++i) {
      int s = b.sample_index[size_t(i)];
      const data::Sample& smp = ds.samples[size_t(s)];
      p.sample_index.push_back(s);
      p.embeddings.image_paths.push_back(smp.image);
      p.embeddings.item_ids.push_back(smp.item_id.empty() ? "item_" + std::to_string(smp.item) : smp.item_id);
    }
    done += b.n;
    if (progress) prog.update(done, double(done));
  }
  if (progress) prog.finish(cat(done, " images"));
  // Every rank says what it skipped, in the words of the error it would have stopped with.
  for (const std::string& why : loader.skipped_reasons())
    std::fprintf(stderr, "warning: %s: skipped (--skip-bad): %s\n", label.c_str(), why.c_str());
  p.embeddings.features = Tensor::from(feats, {int64_t(p.sample_index.size()), dim});
  return p;
}

// Every rank's rows, in rank order, into `p` on every rank. Every field is gathered on every rank, empty
// or not, so that the ranks' collectives pair up.
void gather(dist::Communicator& comm, Predictions& p) {
  const int64_t dim = p.embeddings.dim();
  p.sample_index = comm.allgather(p.sample_index);
  const int64_t rows = int64_t(p.sample_index.size());
  p.embeddings.features = Tensor::from(comm.allgather(p.embeddings.features.to_vector()), {rows, dim});
  p.embeddings.image_paths = comm.allgather(p.embeddings.image_paths);
  p.embeddings.item_ids = comm.allgather(p.embeddings.item_ids);
  for (std::vector<float>* v : {&p.category_logits, &p.attribute_logits, &p.landmark_pred, &p.landmark_true,
                                &p.landmark_visible, &p.vis_pred})
    *v = comm.allgather(*v);
}

}  // namespace

Predictions run_inference(FashionNet& model, const data::Dataset& ds, const std::vector<int>& indices,
                          Device device, const InferenceOptions& opt) {
  if (opt.comm == nullptr || opt.comm->size() == 1)
    return infer(model, ds, indices, device, opt, "embed", opt.progress);
  dist::Communicator& comm = *opt.comm;
  const dist::Shard sh = dist::shard_of(int64_t(indices.size()), comm.rank(), comm.size());
  const std::vector<int> shard(indices.begin() + sh.begin, indices.begin() + sh.end);
  Predictions p;
  dist::run_together(comm, "inference", [&] {
    p = infer(model, ds, shard, device, opt, cat("embed (rank ", comm.rank(), " of ", comm.size(), ")"),
              opt.progress && comm.rank() == 0);
  });
  gather(comm, p);
  return p;
}

}  // namespace fn::fashionnet
