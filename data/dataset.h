// The DeepFashion data model: one Sample per image, whatever the benchmark, and load_dataset() that reads a
// benchmark's annotation files (or an ImageFolder tree) into it. Formats and rules: docs/data.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace fn::data {

// Eight fixed landmark slots, the full-body order of DeepFashion. A garment fills only its own slots, by
// name, so a slot means the same body point in every image (never compacted).
constexpr int kSlots = 8;
enum Slot { kLCollar = 0, kRCollar, kLSleeve, kRSleeve, kLWaist, kRWaist, kLHem, kRHem };
enum Vis : uint8_t { kVisible = 0, kOccluded = 1, kCutOff = 2, kAbsent = 3 };  // kAbsent: slot unused by the type
struct Landmarks {
  float x[kSlots], y[kSlots];  // source-image pixels
  uint8_t vis[kSlots];
};
const char* slot_name(int slot);  // "L collar", ...
int mirror_slot(int slot);        // the slot of the same point on the other side: 0<->1, 2<->3, ...

enum class Split { Train, Query, Gallery, Val, Test, Unknown };
const char* split_name(Split s);
const char* variation_name(int variation);  // 1..5 as above ("normal pose", ...); "unknown" otherwise

struct Sample {
  std::string image;    // path relative to the dataset root, as written in the annotation files
  std::string item_id;  // e.g. "id_00000001" ("" where the benchmark has none)
  int item = -1;        // dense item index within the dataset
  int category = -1;    // dense category index
  int clothes_type = 0; // 1 upper, 2 lower, 3 full, 0 unknown
  int source = 0;       // consumer2shop: 1 shop, 2 consumer
  Split split = Split::Unknown;
  bool has_bbox = false;
  int x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // bbox in source pixels, [x1, x2) x [y1, y2)
  bool has_landmarks = false;
  Landmarks lm{};
  int variation = 0;    // landmark file's variation_type: 1 normal pose, 2 medium pose, 3 large pose,
                        // 4 medium zoom-in, 5 large zoom-in (0 without landmarks)
  std::vector<int8_t> attributes;  // per attribute: 1 positive, 0 negative, -1 unknown (empty when none)
};

struct Dataset {
  std::string root, benchmark;  // "inshop" | "consumer2shop" | "category" | "landmark" | "imagefolder"
  std::vector<Sample> samples;
  std::vector<std::string> category_names, attribute_names, item_ids;
  std::vector<int> category_types;              // per category: clothes type 1..3 (0 unknown)
  std::vector<int> attribute_types;             // per attribute: its group, 1-based as in the file (0 none)
  std::vector<std::string> attribute_type_names;  // group names where the benchmark gives them
  std::vector<int> indices(Split s) const;  // sample indices of a split, in file order
};

// What load_dataset found: every file it looked for, and every problem (each error names file and line).
struct FileStatus {
  std::string path;  // relative to the root
  std::string role;  // "required", "annotation" (optional when require_annotations=false), "optional"
  bool present = false;
};
struct LoadReport {
  std::vector<FileStatus> files;
  std::vector<std::string> errors, warnings;  // the first kMaxKept of each are kept
  int64_t error_count = 0, warning_count = 0;
  static constexpr size_t kMaxKept = 1000;
  void error(std::string msg);
  void warning(std::string msg);
};

// Reads `root` as `benchmark`. Required files missing, or any malformed record, is an error. Optional
// annotation files (bbox, landmarks, attributes) missing is an error when require_annotations, else a
// warning and the samples simply lack them. Without `report`, the first errors are thrown as fn::Error;
// with it, loading goes on past bad records and the caller decides (check-data prints them all).
Dataset load_dataset(const std::string& root, const std::string& benchmark, bool require_annotations = true);
Dataset load_dataset(const std::string& root, const std::string& benchmark, bool require_annotations,
                     LoadReport* report);

// Checks that every sample's image exists and, decoding only its header, that its bbox and its visible
// landmarks lie inside it. Problems go to `report`; returns the number of images found on disk.
int64_t check_images(const Dataset& ds, LoadReport& report);

}  // namespace fn::data
