// Pieces the synthetic benchmarks share (internal to data/): item colours, the items and photos to draw,
// drawing them in parallel, the split by groups, the list-file writer and the landmark columns.
// synth.cpp writes In-shop and Consumer-to-shop, synth_category.cpp Category/Attribute and Landmark.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/synth.h"
#include "data/synth_draw.h"

namespace fn::data::synth {

inline Rgb hsv(float h, float s, float v) {
  h = (h - std::floor(h)) * 6.f;
  const int i = (int)h;
  const float f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (i % 6) {
    case 0: return {v, t, p};
    case 1: return {q, v, p};
    case 2: return {p, v, t};
    case 3: return {p, q, v};
    case 4: return {t, p, v};
    default: return {v, p, q};
  }
}

// Each category owns a small palette of related colours: items of a category share colours and differ in
// pattern, its scale and phase, shape details and print, so global colour alone cannot tell them apart.
inline std::vector<Rgb> palette(uint64_t seed, int category) {
  Xoshiro256 rng(derive_seed(seed, 0x50414cu /* PAL */, category));
  const float h0 = rng.uniform(0.f, 1.f);
  std::vector<Rgb> p;
  for (int k = 0; k < 4; ++k)
    p.push_back(hsv(h0 + rng.uniform(-0.08f, 0.08f), rng.uniform(0.25f, 0.85f), rng.uniform(0.25f, 0.95f)));
  return p;
}

inline Rgb jitter(Rgb c, Xoshiro256& rng, float a) {
  auto j = [&](float x) { return std::clamp(x + rng.uniform(-a, a), 0.f, 1.f); };
  return {j(c.r), j(c.g), j(c.b)};
}

// A random set bit of `mask` (bits 0..2), 0 when none is set.
inline int pick_bit(int mask, Xoshiro256& rng) {
  std::vector<int> bits;
  for (int b = 0; b < 3; ++b)
    if (mask >> b & 1) bits.push_back(b);
  return bits.empty() ? 0 : bits[rng.below(bits.size())];
}

struct Item {
  std::string id;
  int category;
  Garment g;
  std::vector<int8_t> attrs;  // file values: 1, -1, 0 (not applicable)
};

// One photo to draw and how the annotation files describe it.
struct Photo {
  int item;
  std::string image;
  int source = 0;             // consumer2shop: 1 shop, 2 consumer
  int pose = 1, variation = 1;  // bbox pose_type, landmarks variation_type
  int width = 0, height = 0;  // 0: cfg.size square
  View view;
  uint64_t stream;
  Drawn drawn;                // filled by the drawing threads (image dropped once written)
};

// Draws every photo (cfg.threads threads) and writes it under cfg.out; the output does not depend on the
// thread count, each photo drawing from its own stream.
void draw_all(std::vector<Photo>& photos, const std::vector<Item>& items, const SynthConfig& cfg);

// A photo of the real datasets resized to long side `long_side`: the other side 0.62 to 1 of it,
// portrait 3 times in 4 (people in clothes are tall), drawn from `stream`.
std::pair<int, int> photo_size(int long_side, uint64_t stream);

// Split of `groups` groups by a seeded shuffle: the first `train` fraction 0 (train), the next `val` 1
// (val), the rest 2 (test).
std::vector<int> split_groups(uint64_t seed, int groups, double train, double val);

// Text writer for list files: optional UTF-8 BOM and CRLF (Consumer-to-shop style).
class ListFile {
 public:
  ListFile(std::string path, bool bom_crlf);
  void line(const std::string& s) { text_ += s + (crlf_ ? "\r\n" : "\n"); }
  void raw(const std::string& s) { text_ += s; }
  void save();

 private:
  std::string path_, text_;
  bool crlf_;
};

// The landmark file's column names (8 triples) and one photo's row (its clothes type's landmarks).
std::string landmark_columns();
std::string landmark_row(const Photo& p, int clothes_type);

// The Category and Attribute Prediction and Fashion Landmark Detection benchmarks (synth_category.cpp).
SynthSummary synthesize_category(const SynthConfig& cfg);

}  // namespace fn::data::synth
