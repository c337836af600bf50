#include "data/sampler.h"

#include <map>

#include "core/error.h"
#include "data/rng.h"

namespace fn::data {

static EpochPlan chunk(const std::vector<int>& order, int batch, bool drop_last) {
  FN_CHECK(batch > 0, "batch size must be positive");
  EpochPlan plan;
  for (size_t i = 0; i < order.size(); i += batch) {
    const size_t end = std::min(order.size(), i + batch);
    if (drop_last && end - i < (size_t)batch) break;
    plan.emplace_back(order.begin() + i, order.begin() + end);
  }
  return plan;
}

EpochPlan plan_sequential(const std::vector<int>& indices, int batch, bool drop_last) {
  return chunk(indices, batch, drop_last);
}

EpochPlan plan_shuffle(const std::vector<int>& indices, int batch, bool drop_last, uint64_t seed, uint64_t epoch) {
  std::vector<int> order = indices;
  Xoshiro256 rng(derive_seed(seed, 0x5348u /* "SH" */, epoch));
  rng.shuffle(order);
  return chunk(order, batch, drop_last);
}

EpochPlan plan_pk(const Dataset& ds, const std::vector<int>& indices, int P, int K, bool drop_last, uint64_t seed,
                  uint64_t epoch) {
  FN_CHECK(P > 0 && K > 0, "PK sampler needs P > 0 and K > 0");
  std::map<int, std::vector<int>> by_item;  // ordered by item: the plan must not depend on hash order
  for (int i : indices) {
    const int item = ds.samples[i].item;
    FN_EXPECT(item >= 0, ds.samples[i].image, ": the image has no item id, and triplet batches (P items x K images) "
              "need one for every training image");
    by_item[item].push_back(i);
  }
  std::vector<int> items;
  for (auto& kv : by_item) items.push_back(kv.first);
  FN_EXPECT((int)items.size() >= P, "triplet batches take P=", P, " items of K=", K, " images each, but the ",
            indices.size(), " training images show only ", items.size(),
            " item(s): use more items, or a smaller --batch (P = batch / K)");
  Xoshiro256 rng(derive_seed(seed, 0x504Bu /* "PK" */, epoch));
  rng.shuffle(items);

  EpochPlan plan;
  for (size_t start = 0; start < items.size(); start += P) {
    const size_t end = std::min(items.size(), start + P);
    if (end - start < (size_t)P && drop_last) break;
    std::vector<int> batch;
    for (size_t k = start; k < end; ++k) {
      std::vector<int> imgs = by_item[items[k]];
      rng.shuffle(imgs);
      const size_t have = imgs.size();
      for (int j = 0; j < K; ++j) batch.push_back(j < (int)have ? imgs[j] : imgs[rng.below(have)]);
    }
    plan.push_back(std::move(batch));
  }
  return plan;
}

EpochPlan plan_epoch(const Dataset& ds, const std::vector<int>& indices, const LoaderConfig& cfg, uint64_t epoch) {
  switch (cfg.sampler) {
    case LoaderConfig::Sequential: return plan_sequential(indices, cfg.batch, cfg.drop_last);
    case LoaderConfig::PK: return plan_pk(ds, indices, cfg.P, cfg.K, cfg.drop_last, cfg.seed, epoch);
    default: return plan_shuffle(indices, cfg.batch, cfg.drop_last, cfg.seed, epoch);
  }
}

}  // namespace fn::data
