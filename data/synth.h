// The synthetic DeepFashion: clothes photos drawn from shapes, written in exactly the layout and the
// annotation files of one of the four benchmarks (In-shop, Consumer-to-shop, Category and Attribute
// Prediction, Fashion Landmark Detection), so every reader and the whole pipeline run on it unchanged. Deterministic from the seed (any thread count). Design: docs/data.md.
#pragma once
#include <cstdint>
#include <string>

namespace fn::data {

struct SynthConfig {
  std::string out;                  // dataset root to create
  std::string benchmark = "inshop";  // inshop | consumer2shop | category | landmark
  int items = 100;                  // category, landmark: garments (products), each photographed `views` times
  int views = 4;                    // In-shop: photos per item; Consumer-to-shop: shop + consumer photos per item
  // Photo size in pixels, 0: the real one. In-shop: square, size x size (256). The others: long side
  // `size` (300, as the real photos are resized), the other side 0.62 to 1 of it.
  int size = 0;
  uint64_t seed = 0;
  int threads = 2;
  int jpeg_quality = 90;
  // Items per look-alike group. 1 (default): every item its own look. K > 1: the items of a group share
  // category, shape, colours and pattern, and differ only in their trims, small coloured details on the
  // landmarks (collar, cuffs, waist, hem); a group stays together in the train/test split. Only local
  // detail then tells a query's item from its look-alikes in the gallery: the case landmark pooling is for.
  int look_alikes = 1;
};

struct SynthSummary {
  int64_t images = 0, items = 0;
  double seconds = 0;
};

// Writes the dataset, and kSyntheticMarker at its root.
SynthSummary synthesize(const SynthConfig& cfg);

// The file synthesize() leaves at the root of the dataset it draws (its text says how). Figures measured on a
// dataset that holds it are not comparable with published ones, and eval and its report say so.
inline const char* const kSyntheticMarker = "SYNTHETIC.txt";
bool is_synthetic_dataset(const std::string& root);
void write_synthetic_marker(const std::string& root, const std::string& how);  // `how`: one line

}  // namespace fn::data
