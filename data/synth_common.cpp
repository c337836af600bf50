#include "data/synth_common.h"

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "data/annotations_common.h"
#include "data/image_io.h"

namespace fn::data::synth {

void draw_all(std::vector<Photo>& photos, const std::vector<Item>& items, const SynthConfig& cfg) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::string error;
  std::mutex error_m;
  auto work = [&] {
    for (size_t i; !failed && (i = next++) < photos.size();) {
      Photo& p = photos[i];
      try {
        Xoshiro256 rng(p.stream);
        const int w = p.width ? p.width : cfg.size, h = p.height ? p.height : cfg.size;
        p.drawn = draw(items[p.item].g, p.view, w, h, rng);
        write_image(cfg.out + "/" + p.image, p.drawn.image, cfg.jpeg_quality);
        p.drawn.image = Image();
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lk(error_m);
        error = e.what();
        failed = true;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, cfg.threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failed) throw Error(error);
}

std::pair<int, int> photo_size(int long_side, uint64_t stream) {
  Xoshiro256 rng(derive_seed(stream, 0x53495a45u /* SIZE */));
  const int other = std::max(1, (int)std::lround(long_side * rng.uniform(0.62f, 1.f)));
  return rng.chance(0.75) ? std::make_pair(other, long_side) : std::make_pair(long_side, other);
}

std::vector<int> split_groups(uint64_t seed, int groups, double train, double val) {
  std::vector<int> order(groups);
  for (int i = 0; i < groups; ++i) order[i] = i;
  Xoshiro256 split_rng(derive_seed(seed, 0x53504c54u /* SPLT */));
  split_rng.shuffle(order);
  std::vector<int> split(groups);
  for (int r = 0; r < groups; ++r) {
    const double f = (r + 0.5) / groups;
    split[order[r]] = f < train ? 0 : f < train + val ? 1 : 2;
  }
  return split;
}

ListFile::ListFile(std::string path, bool bom_crlf) : path_(std::move(path)), crlf_(bom_crlf) {
  if (bom_crlf) text_ = "\xEF\xBB\xBF";
}

void ListFile::save() {
  std::ofstream f(path_, std::ios::binary);
  f << text_;
  FN_EXPECT(f, path_, ": cannot write (does the folder exist, is the disk full?)");
}

std::string landmark_columns() {
  std::string s = "image_name clothes_type variation_type";
  for (int k = 1; k <= kSlots; ++k) s += cat(" landmark_visibility_", k, " landmark_location_x_", k, " landmark_location_y_", k);
  return s;
}

std::string landmark_row(const Photo& p, int type) {
  std::string s = cat(p.image, " ", type, " ", p.variation);
  for (int slot : slots_of_type(type))
    s += cat(" ", (int)p.drawn.lm.vis[slot], " ", (int)std::lround(p.drawn.lm.x[slot]), " ", (int)std::lround(p.drawn.lm.y[slot]));
  return s;
}

}  // namespace fn::data::synth
