#include "data/loader.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/error.h"
#include "core/shard.h"
#include "data/image_io.h"
#include "data/rng.h"
#include "data/sampler.h"
#include "data/transform.h"

namespace fn::data {

void resize_batch(Batch& b, int n, int input, size_t A) {
  b.n = n;
  b.input = input;
  b.image.assign((size_t)n * 3 * input * input, 0.f);
  b.lm_xy.assign((size_t)n * kSlots * 2, 0.f);
  b.lm_visible.assign((size_t)n * kSlots, 0.f);
  b.lm_vis.assign((size_t)n * kSlots, kAbsent);
  b.category.assign(n, -1);
  b.item.assign(n, -1);
  b.sample_index.assign(n, -1);
  b.attr.assign((size_t)n * A, 0.f);
  b.attr_known.assign((size_t)n * A, 0.f);
  b.flipped.assign(n, 0);
}

void mirror_batch(Batch& b) {
  mirror_chw(b.image.data(), b.n, b.input);
  const float far = (float)(b.input - 1);
  for (int i = 0; i < b.n; ++i) {
    float* xy = &b.lm_xy[(size_t)i * kSlots * 2];
    float* visible = &b.lm_visible[(size_t)i * kSlots];
    uint8_t* vis = &b.lm_vis[(size_t)i * kSlots];
    for (int s = 0; s < kSlots; ++s)
      if (vis[s] != kAbsent) xy[2 * s] = far - xy[2 * s];  // absent slots stay (0, 0), as the loader leaves them
    for (int s = 0; s < kSlots; ++s) {
      const int m = mirror_slot(s);
      if (m < s) continue;  // each pair swapped once
      std::swap(xy[2 * s], xy[2 * m]);
      std::swap(xy[2 * s + 1], xy[2 * m + 1]);
      std::swap(visible[s], visible[m]);
      std::swap(vis[s], vis[m]);
    }
    b.flipped[(size_t)i] = !b.flipped[(size_t)i];
  }
}

Augment draw_augment(const LoaderConfig& cfg, Xoshiro256& rng) {
  Augment a;
  a.flip = cfg.flip && rng.chance(0.5);
  if (cfg.crop_scale < 1.f) {  // drawn only when asked, so that crop_scale 1 keeps every earlier batch
    a.area = rng.uniform(cfg.crop_scale, 1.f);
    a.log_ratio = rng.uniform(std::log(kCropRatioLo), std::log(kCropRatioHi));
    a.fx = (float)rng.uniform();
    a.fy = (float)rng.uniform();
  }
  return a;
}

void load_sample(const Dataset& ds, int sample, const LoaderConfig& cfg, const Augment& aug, Batch& out, int j) {
  const Sample& s = ds.samples[sample];
  const Image img = decode_image(ds.root + "/" + s.image);
  const CropRect r = random_crop(crop_rect(s, img.w, img.h, cfg.bbox_margin), aug);
  const int in = cfg.input;
  std::fill_n(&out.lm_xy[(size_t)j * kSlots * 2], kSlots * 2, 0.f);
  std::fill_n(&out.lm_visible[(size_t)j * kSlots], kSlots, 0.f);
  std::fill_n(&out.lm_vis[(size_t)j * kSlots], kSlots, (uint8_t)kAbsent);
  const size_t A = ds.attribute_names.size();
  std::fill_n(out.attr.data() + j * A, A, 0.f);  // no attributes: all unknown (data(): A may be 0)
  std::fill_n(out.attr_known.data() + j * A, A, 0.f);
  crop_resize_normalize(img, r, in, aug.flip, &out.image[(size_t)j * 3 * in * in]);
  if (s.has_landmarks) {
    uint8_t* vis = &out.lm_vis[(size_t)j * kSlots];
    transform_landmarks(s.lm, input_map(r, in, aug.flip), &out.lm_xy[(size_t)j * kSlots * 2], vis);
    for (int k = 0; k < kSlots; ++k) out.lm_visible[(size_t)j * kSlots + k] = vis[k] == kVisible ? 1.f : 0.f;
  }
  out.category[j] = s.category;
  out.item[j] = s.item;
  out.sample_index[j] = sample;
  out.flipped[j] = aug.flip;
  for (size_t a = 0; a < A && a < s.attributes.size(); ++a) {
    out.attr[(size_t)j * A + a] = s.attributes[a] == 1 ? 1.f : 0.f;
    out.attr_known[(size_t)j * A + a] = s.attributes[a] >= 0 ? 1.f : 0.f;
  }
}

static void shrink(Batch& b, int n, size_t A) {
  b.n = n;
  b.image.resize((size_t)n * 3 * b.input * b.input);
  b.lm_xy.resize((size_t)n * kSlots * 2);
  b.lm_visible.resize((size_t)n * kSlots);
  b.lm_vis.resize((size_t)n * kSlots);
  b.category.resize(n), b.item.resize(n), b.sample_index.resize(n), b.flipped.resize(n);
  b.attr.resize(n * A), b.attr_known.resize(n * A);
}

struct Loader::Impl {
  const Dataset& ds;
  std::vector<int> indices;
  LoaderConfig cfg;
  int64_t per_epoch = 0;
  std::atomic<int64_t> skipped{0};
  std::mutex skipped_m;
  std::set<std::string> skipped_why;  // "path: reason" of each image skipped, once however often it is met

  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };
  std::mutex m;
  std::condition_variable work_cv, ready_cv;
  bool stop = false, active = false;
  int64_t epoch = 0, next_job = 0, consumed = 0;
  EpochPlan plan;
  std::map<int64_t, Slot> ready;
  std::vector<std::thread> workers;

  Impl(const Dataset& d, std::vector<int> idx, LoaderConfig c) : ds(d), indices(std::move(idx)), cfg(c) {
    FN_CHECK(cfg.input > 0, "input size must be positive");
    FN_CHECK(cfg.crop_scale > 0.f && cfg.crop_scale <= 1.f, "crop_scale ", cfg.crop_scale, ": above 0, at most 1");
    FN_CHECK(cfg.shards >= 1 && cfg.shard >= 0 && cfg.shard < cfg.shards, "loader shard ", cfg.shard, " of ", cfg.shards);
    per_epoch = (int64_t)plan_epoch(ds, indices, cfg, 0).size();
  }

  // Builds this shard of batch `b` of epoch `ep`. The flip and crop of each image depend only on (seed,
  // epoch, position in the whole batch, sample).
  void build(int64_t b, const std::vector<int>& idx, int64_t ep, Slot& slot) {
    Batch& out = slot.batch;
    const size_t A = ds.attribute_names.size();
    const Shard share = shard_of(int64_t(idx.size()), cfg.shard, cfg.shards);
    const size_t begin = size_t(share.begin), end = size_t(share.end);
    resize_batch(out, int(end - begin), cfg.input, A);
    int n = 0;
    for (size_t j = begin; j < end; ++j) {
      Xoshiro256 rng(derive_seed(derive_seed(cfg.seed, (uint64_t)ep, (uint64_t)b, j), (uint64_t)idx[j]));
      const Augment aug = draw_augment(cfg, rng);
      try {
        load_sample(ds, idx[j], cfg, aug, out, n);
      } catch (const Error& e) {
        if (!cfg.skip_bad) throw;
        ++skipped;
        std::lock_guard<std::mutex> lk(skipped_m);
        skipped_why.insert(e.what());
        continue;
      }
      ++n;
    }
    if (n != int(end - begin)) shrink(out, n, A);
  }

  void worker() {
    std::unique_lock<std::mutex> lk(m);
    const int64_t ahead = std::max(cfg.prefetch, cfg.threads);
    while (true) {
      work_cv.wait(lk, [&] { return stop || (active && next_job < (int64_t)plan.size() && next_job < consumed + ahead); });
      if (stop) return;
      const int64_t b = next_job++;
      const std::vector<int> idx = plan[b];
      const int64_t ep = epoch;
      lk.unlock();
      Slot slot;
      try {
        build(b, idx, ep, slot);
      } catch (...) {
        slot.error = std::current_exception();
      }
      lk.lock();
      ready.emplace(b, std::move(slot));
      ready_cv.notify_all();
    }
  }

  bool next(Batch& out) {
    std::unique_lock<std::mutex> lk(m);
    if (!active) {
      plan = plan_epoch(ds, indices, cfg, (uint64_t)epoch);
      next_job = consumed = 0;
      active = true;
      if (cfg.threads > 0 && workers.empty())
        for (int t = 0; t < cfg.threads; ++t) workers.emplace_back([this] { worker(); });
      work_cv.notify_all();
    }
    while (true) {
      if (consumed == (int64_t)plan.size()) {
        active = false;
        ++epoch;
        return false;
      }
      Slot slot;
      if (cfg.threads <= 0) {  // synchronous: build here
        const int64_t b = consumed++;
        lk.unlock();
        try {
          build(b, plan[b], epoch, slot);
        } catch (...) {
          slot.error = std::current_exception();
        }
        lk.lock();
      } else {
        ready_cv.wait(lk, [&] { return ready.count(consumed) > 0; });
        auto it = ready.find(consumed);
        slot = std::move(it->second);
        ready.erase(it);
        ++consumed;
        work_cv.notify_all();
      }
      if (slot.error) std::rethrow_exception(slot.error);
      // Every image of the batch was skipped: the next one. A shard cannot do that alone (the ranks would
      // then train on different batches), so there it is an error.
      if (slot.batch.n == 0 && cfg.shards > 1)
        FN_USER_FAIL("every image of shard ", cfg.shard, " of ", cfg.shards, " of batch ", consumed - 1,
                     " was skipped as unreadable (--skip-bad); the ranks cannot go on together");
      if (slot.batch.n == 0) continue;
      out = std::move(slot.batch);
      return true;
    }
  }

  ~Impl() {
    {
      std::lock_guard<std::mutex> lk(m);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& t : workers) t.join();
  }
};

Loader::Loader(const Dataset& ds, std::vector<int> indices, LoaderConfig cfg)
    : impl_(std::make_unique<Impl>(ds, std::move(indices), cfg)) {}
Loader::~Loader() = default;
bool Loader::next(Batch& out) { return impl_->next(out); }
int64_t Loader::batches_per_epoch() const { return impl_->per_epoch; }
int64_t Loader::skipped() const { return impl_->skipped.load(); }
std::vector<std::string> Loader::skipped_reasons() const {
  std::lock_guard<std::mutex> lk(impl_->skipped_m);
  return {impl_->skipped_why.begin(), impl_->skipped_why.end()};
}
int64_t Loader::epoch() const {
  std::lock_guard<std::mutex> lk(impl_->m);
  return impl_->epoch;
}

}  // namespace fn::data
