// The loader and its samplers: determinism from the seed whatever the thread count, epochs, the shuffled
// and PK samplers, the flip applied consistently to pixels and landmarks, and the random crop.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "data/loader.h"
#include "data/sampler.h"
#include "data/synth.h"
#include "data/transform.h"

namespace fs = std::filesystem;
using namespace fn::data;

namespace {

// One small synthetic In-shop dataset shared by the test cases (written once per process).
const Dataset& dataset() {
  static const Dataset ds = [] {
    const fs::path root = fs::temp_directory_path() / ("fn_test_loader_" + std::to_string(::getpid()));
    fs::remove_all(root);
    SynthConfig cfg;
    cfg.out = root.string();
    cfg.items = 12;
    cfg.views = 5;
    cfg.size = 64;
    cfg.seed = 11;
    synthesize(cfg);
    return load_dataset(cfg.out, "inshop");
  }();
  return ds;
}

struct Cleanup {
  ~Cleanup() { fs::remove_all(fs::temp_directory_path() / ("fn_test_loader_" + std::to_string(::getpid()))); }
} cleanup;

std::vector<Batch> epoch(Loader& l) {
  std::vector<Batch> out;
  Batch b;
  while (l.next(b)) out.push_back(b);
  return out;
}

std::vector<int> all_indices(const Dataset& ds) {
  std::vector<int> v(ds.samples.size());
  for (size_t i = 0; i < v.size(); ++i) v[i] = (int)i;
  return v;
}

bool same(const Batch& a, const Batch& b) {
  return a.n == b.n && a.image == b.image && a.lm_xy == b.lm_xy && a.lm_visible == b.lm_visible && a.sample_index == b.sample_index &&
         a.flipped == b.flipped && a.attr == b.attr && a.attr_known == b.attr_known && a.category == b.category && a.item == b.item;
}

}  // namespace

TEST_CASE("same seed, identical batches with 0, 1 and 2 threads, over two epochs") {
  const Dataset& ds = dataset();
  LoaderConfig cfg;
  cfg.batch = 8;
  cfg.input = 48;
  cfg.seed = 5;
  cfg.bbox_margin = 0.1f;
  std::vector<std::vector<Batch>> runs;
  for (int threads : {0, 1, 2}) {
    cfg.threads = threads;
    cfg.prefetch = threads + 1;
    Loader l(ds, all_indices(ds), cfg);
    auto e1 = epoch(l), e2 = epoch(l);
    REQUIRE((int64_t)e1.size() == l.batches_per_epoch());
    REQUIRE(e2.size() == e1.size());
    e1.insert(e1.end(), e2.begin(), e2.end());
    runs.push_back(std::move(e1));
  }
  for (size_t r = 1; r < runs.size(); ++r)
    for (size_t b = 0; b < runs[0].size(); ++b) REQUIRE(same(runs[0][b], runs[r][b]));
  // Epochs differ in order; a flip happened somewhere and not everywhere.
  const size_t per = runs[0].size() / 2;
  CHECK(runs[0][0].sample_index != runs[0][per].sample_index);
  int flips = 0, total = 0;
  for (const Batch& b : runs[0])
    for (uint8_t f : b.flipped) flips += f, ++total;
  CHECK(flips > total / 5);
  CHECK(flips < total * 4 / 5);
  // Another seed, another order.
  cfg.seed = 6;
  Loader other(ds, all_indices(ds), cfg);
  Batch b;
  REQUIRE(other.next(b));
  CHECK(b.sample_index != runs[0][0].sample_index);
}

TEST_CASE("batch contents: shapes, labels, landmark and attribute targets") {
  const Dataset& ds = dataset();
  LoaderConfig cfg;
  cfg.batch = 6;
  cfg.input = 32;
  cfg.sampler = LoaderConfig::Sequential;
  cfg.flip = false;
  Loader l(ds, all_indices(ds), cfg);
  Batch b;
  REQUIRE(l.next(b));
  const size_t A = ds.attribute_names.size();
  REQUIRE(A > 0);
  CHECK((b.n == 6 && b.input == 32));
  CHECK(b.image.size() == 6u * 3 * 32 * 32);
  CHECK(b.lm_xy.size() == 6u * 16);
  CHECK(b.attr.size() == 6 * A);
  for (int j = 0; j < b.n; ++j) {
    const Sample& s = ds.samples[b.sample_index[j]];
    CHECK(b.sample_index[j] == j);
    CHECK(b.item[j] == s.item);
    CHECK(b.category[j] == s.category);
    for (size_t a = 0; a < A; ++a) {
      CHECK(b.attr_known[j * A + a] == (s.attributes[a] >= 0 ? 1.f : 0.f));
      CHECK(b.attr[j * A + a] == (s.attributes[a] == 1 ? 1.f : 0.f));
    }
    for (int k = 0; k < kSlots; ++k) {
      if (b.lm_visible[j * 8 + k] == 0.f) continue;
      CHECK(s.lm.vis[k] == kVisible);
      CHECK((b.lm_xy[j * 16 + 2 * k] >= -0.5f && b.lm_xy[j * 16 + 2 * k] <= 31.5f));
    }
  }
}

TEST_CASE("flip through the whole pipeline: mirrored pixels, swapped slots") {
  const Dataset& ds = dataset();
  LoaderConfig cfg;
  cfg.input = 40;
  Batch a, b;
  resize_batch(a, 1, 40, ds.attribute_names.size());
  resize_batch(b, 1, 40, ds.attribute_names.size());
  // A sample with both collars visible and apart, so a missing L/R swap shows.
  int s = -1;
  for (size_t i = 0; i < ds.samples.size() && s < 0; ++i) {
    const Landmarks& lm = ds.samples[i].lm;
    if (lm.vis[kLCollar] == kVisible && lm.vis[kRCollar] == kVisible && lm.x[kRCollar] - lm.x[kLCollar] > 5) s = (int)i;
  }
  REQUIRE(s >= 0);
  load_sample(ds, s, cfg, Augment{}, a, 0);
  load_sample(ds, s, cfg, Augment{true}, b, 0);
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 40; ++x) REQUIRE(b.image[(c * 40 + y) * 40 + x] == a.image[(c * 40 + y) * 40 + 39 - x]);
  const int partner[kSlots] = {1, 0, 3, 2, 5, 4, 7, 6};  // written out: the test must not trust mirror_slot
  for (int k = 0; k < kSlots; ++k) {
    const int m = partner[k];
    CHECK(b.lm_vis[k] == a.lm_vis[m]);
    CHECK(b.lm_visible[k] == a.lm_visible[m]);
    if (a.lm_vis[m] != kAbsent) {
      CHECK(b.lm_xy[2 * k] == Approx(39.f - a.lm_xy[2 * m]));
      CHECK(b.lm_xy[2 * k + 1] == Approx(a.lm_xy[2 * m + 1]));
    }
  }
  CHECK(b.lm_xy[2 * kLCollar] < b.lm_xy[2 * kRCollar]);  // L is the image's left again after the flip
}

TEST_CASE("mirror_batch: bitwise the flipped load, its own inverse") {
  const Dataset& ds = dataset();
  LoaderConfig cfg;
  cfg.input = 40;
  cfg.bbox_margin = 0.1f;
  const size_t A = ds.attribute_names.size();
  const int n = int(ds.samples.size());
  Batch plain, flipped;
  resize_batch(plain, n, cfg.input, A);
  resize_batch(flipped, n, cfg.input, A);
  for (int i = 0; i < n; ++i) {
    load_sample(ds, i, cfg, Augment{}, plain, i);
    load_sample(ds, i, cfg, Augment{true}, flipped, i);
  }
  int annotated = 0, cut_or_absent = 0;
  for (uint8_t v : plain.lm_vis) annotated += v == kVisible, cut_or_absent += v == kAbsent || v == kCutOff;
  REQUIRE(annotated > 0);
  REQUIRE(cut_or_absent > 0);  // absent slots must keep (0, 0)
  Batch m = plain;
  mirror_batch(m);
  CHECK(same(m, flipped));
  CHECK(m.lm_vis == flipped.lm_vis);
  mirror_batch(m);  // back: everything as loaded, the landmarks' x to float rounding ((39 - (39 - x)))
  CHECK(m.image == plain.image);
  CHECK((m.lm_visible == plain.lm_visible && m.lm_vis == plain.lm_vis && m.flipped == plain.flipped));
  for (size_t k = 0; k < m.lm_xy.size(); ++k) REQUIRE(m.lm_xy[k] == Approx(plain.lm_xy[k]).margin(1e-5));
}

TEST_CASE("shuffled sampler: every index once per epoch, drop_last") {
  std::vector<int> idx;
  for (int i = 0; i < 23; ++i) idx.push_back(i * 2);
  const EpochPlan keep = plan_shuffle(idx, 5, false, 1, 0);
  CHECK(keep.size() == 5);
  CHECK(keep.back().size() == 3);
  std::multiset<int> seen;
  for (auto& b : keep) seen.insert(b.begin(), b.end());
  CHECK(seen == std::multiset<int>(idx.begin(), idx.end()));
  const EpochPlan drop = plan_shuffle(idx, 5, true, 1, 0);
  CHECK(drop.size() == 4);
  CHECK(plan_shuffle(idx, 5, true, 1, 1) != drop);  // the next epoch reshuffles
  CHECK(plan_shuffle(idx, 5, true, 1, 0) == drop);  // deterministic
  CHECK(plan_sequential(idx, 5, false)[1] == std::vector<int>{10, 12, 14, 16, 18});
}

TEST_CASE("PK sampler: P distinct items with K images each, repetition for small items") {
  const Dataset& ds = dataset();
  const auto train = ds.indices(Split::Train);
  std::set<int> train_items;
  for (int i : train) train_items.insert(ds.samples[i].item);
  for (int K : {3, 7}) {  // 5 photos per item: K=7 must repeat
    const EpochPlan plan = plan_pk(ds, train, 2, K, true, 3, 0);
    CHECK(plan.size() == train_items.size() / 2);
    std::set<int> items_this_epoch;
    for (const auto& batch : plan) {
      REQUIRE(batch.size() == (size_t)2 * K);
      std::map<int, std::vector<int>> by_item;
      for (int i : batch) by_item[ds.samples[i].item].push_back(i);
      REQUIRE(by_item.size() == 2);  // P distinct items
      for (auto& [item, imgs] : by_item) {
        CHECK(imgs.size() == (size_t)K);
        CHECK(items_this_epoch.insert(item).second);  // each item once per epoch
        std::set<int> distinct(imgs.begin(), imgs.end());
        CHECK(distinct.size() == std::min<size_t>(K, 5));  // all of an item's photos before any repeat
        for (int i : imgs) CHECK(ds.samples[i].split == Split::Train);
      }
    }
  }
  LoaderConfig cfg;
  cfg.sampler = LoaderConfig::PK;
  cfg.P = 3;
  cfg.K = 2;
  cfg.input = 16;
  Loader l(ds, train, cfg);
  Batch b;
  REQUIRE(l.next(b));
  CHECK(b.n == 6);
  CHECK(std::set<int>(b.item.begin(), b.item.end()).size() == 3);
  CHECK(l.batches_per_epoch() == (int64_t)train_items.size() / 3);
}

TEST_CASE("shards: each rank's share of every batch, the shards together the unsharded batch (PK and shuffled)") {
  const Dataset& ds = dataset();
  for (auto sampler : {LoaderConfig::PK, LoaderConfig::Shuffle}) {
    LoaderConfig cfg;
    cfg.batch = 12;
    cfg.P = 4;  // 2 items of 3 images in each share
    cfg.K = 3;
    cfg.sampler = sampler;
    cfg.input = 32;
    cfg.seed = 8;
    cfg.threads = 1;
    Loader whole(ds, all_indices(ds), cfg);
    cfg.shards = 2;
    Loader first(ds, all_indices(ds), cfg);
    cfg.shard = 1;
    Loader second(ds, all_indices(ds), cfg);
    Batch w, a, b;
    for (int k = 0; k < 3; ++k) {
      REQUIRE(whole.next(w));
      REQUIRE(first.next(a));
      REQUIRE(second.next(b));
      REQUIRE(a.n == 6);
      REQUIRE(b.n == 6);
      const size_t half = size_t(w.n / 2), img = w.image.size() / 2;
      CHECK(std::vector<int>(w.sample_index.begin(), w.sample_index.begin() + half) == a.sample_index);
      CHECK(std::vector<int>(w.sample_index.begin() + half, w.sample_index.end()) == b.sample_index);
      CHECK(std::vector<uint8_t>(w.flipped.begin() + half, w.flipped.end()) == b.flipped);  // drawn at the global place
      CHECK(std::vector<float>(w.image.begin() + img, w.image.end()) == b.image);
      if (sampler == LoaderConfig::PK)  // whole items: the first share's last item is not the second's first
        CHECK(a.item.back() != b.item.front());
    }
  }
  LoaderConfig bad;
  bad.shards = 2;
  bad.shard = 2;
  CHECK_THROWS_WITH(Loader(ds, all_indices(ds), bad), Catch::Contains("shard 2 of 2"));
}

TEST_CASE("random crop through the loader: deterministic, drawn after the flip, landmarks in the crop's frame") {
  const Dataset& ds = dataset();
  LoaderConfig cfg;
  cfg.batch = 8;
  cfg.input = 48;
  cfg.seed = 9;
  std::vector<Batch> plain;
  {
    Loader l(ds, all_indices(ds), cfg);
    plain = epoch(l);
  }
  cfg.crop_scale = 0.4f;
  std::vector<std::vector<Batch>> runs;
  for (int threads : {0, 2}) {
    cfg.threads = threads;
    Loader l(ds, all_indices(ds), cfg);
    runs.push_back(epoch(l));
  }
  REQUIRE(runs[0].size() == plain.size());
  for (size_t b = 0; b < plain.size(); ++b) {
    REQUIRE(same(runs[0][b], runs[1][b]));
    // The same order and flips as without the crop (the crop is drawn after the flip), other pixels.
    CHECK(runs[0][b].sample_index == plain[b].sample_index);
    CHECK(runs[0][b].flipped == plain[b].flipped);
    CHECK(runs[0][b].image != plain[b].image);
  }

  // A crop of the top-left part: a landmark at x in the whole rectangle's input frame is at
  // (x + 0.5) * W / w - 0.5 in the crop's, and one past the crop is cut off.
  cfg.crop_scale = 1.f;
  int tested = 0, cut = 0;
  for (int s = 0; s < (int)ds.samples.size(); ++s) {
    const Sample& smp = ds.samples[s];
    if (!smp.has_landmarks) continue;
    const Image img = decode_image(ds.root + "/" + smp.image);
    const CropRect whole = crop_rect(smp, img.w, img.h, 0.f);
    Augment aug;
    aug.area = 0.25f, aug.fx = 0.f, aug.fy = 0.f;  // about half of each side, from the top-left corner
    const CropRect part = random_crop(whole, aug);
    REQUIRE((part.x0 == whole.x0 && part.y0 == whole.y0));
    Batch a, b;
    resize_batch(a, 1, 48, ds.attribute_names.size());
    resize_batch(b, 1, 48, ds.attribute_names.size());
    load_sample(ds, s, cfg, Augment{}, a, 0);
    load_sample(ds, s, cfg, aug, b, 0);
    for (int k = 0; k < kSlots; ++k) {
      if (a.lm_vis[k] != kVisible) continue;
      const float x = (a.lm_xy[2 * k] + 0.5f) * whole.w / part.w - 0.5f;
      const float y = (a.lm_xy[2 * k + 1] + 0.5f) * whole.h / part.h - 0.5f;
      if (x > 47.5f || y > 47.5f) {
        CHECK(b.lm_vis[k] == kCutOff);
        CHECK(b.lm_visible[k] == 0.f);
        ++cut;
      } else {
        CHECK(b.lm_vis[k] == kVisible);
        CHECK(b.lm_xy[2 * k] == Approx(x).margin(1e-3));
        CHECK(b.lm_xy[2 * k + 1] == Approx(y).margin(1e-3));
        ++tested;
      }
    }
  }
  CHECK(tested > 10);
  CHECK(cut > 10);
}
