// Pieces the benchmark readers share (internal to data/): where files are looked up and how their absence
// is judged, the bbox and landmark columns, attribute values, and the image-name index used to join files.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/dataset.h"
#include "data/text_table.h"

namespace fn::data {

enum class Role { Required, Annotation, Optional };

struct LoadContext {
  std::string root;
  bool require_annotations = true;
  LoadReport& report;

  // Looks for the first existing of `candidates` (paths relative to the root) and records it in the
  // report. Returns the relative path found, or "" (after an error or warning, as `role` says) when none.
  std::string find(std::initializer_list<const char*> candidates, Role role);
  std::string full(const std::string& rel) const { return root + "/" + rel; }
  // Runs `body` on each record; a LineError goes to the report and the loop goes on.
  template <class F>
  void each(const TextTable& t, F&& body) {
    for (const Record& r : t.records) {
      try {
        body(r);
      } catch (const LineError& e) {
        report.error(e.what());
      }
    }
  }
};

// Landmark triples "visibility x y" from column `first` on, placed into the 8 slots by the clothes type's
// landmark names. Accepts exactly 3*n triples' columns for the type (6, 4, 8 landmarks), or 8 triples
// where the surplus ones are all zero (files padded to a fixed width).
Landmarks parse_landmarks(const Record& r, size_t first, int clothes_type);
// The slots a clothes type's landmarks fill, in file order (upper: 0,1,2,3,6,7; lower: 4,5,6,7; full: 0..7).
const std::vector<int>& slots_of_type(int clothes_type);

// Four bbox columns x1 y1 x2 y2 from `first` on: integers, non-negative, non-empty.
void parse_bbox(const Record& r, size_t first, Sample& s);

// DeepFashion attribute value (1 positive, -1 negative, 0 unknown) to ours (1, 0, -1).
int8_t attribute_from_file(const Record& r, size_t col);

// Joins a per-image annotation file onto the samples by image name. Records of images the dataset does
// not list are counted and reported once as a warning (annotation files may cover more images than a
// partition); a sample listed twice, or left out by the file, is an error.
class ImageJoin {
 public:
  ImageJoin(const Dataset& ds, std::string file);
  int sample(const Record& r, size_t col);  // -1 for an unknown image; throws LineError for a repeat
  void finish(LoadReport& report) const;

 private:
  const Dataset& ds_;
  std::string file_;
  std::unordered_map<std::string, int> index_;
  std::vector<char> seen_;
  int64_t unknown_ = 0;
  std::string unknown_names_;
};

// Landmark file "<image> <clothes_type> <variation_type> (<visibility> <x> <y>)*n" joined onto the samples
// (all four benchmarks share it). A sample whose clothes type is already known must agree.
void read_landmark_file(Dataset& ds, LoadContext& ctx, const std::string& rel);

// A box file joined onto the samples. The Category and Landmark benchmarks' list_bbox.txt is
// "<image> <x1> <y1> <x2> <y2>" (column2 = nullptr). The retrieval benchmarks' is "<image> <clothes_type>
// <column 2> <x1> <y1> <x2> <y2>", where column 2 is the benchmark's own (In-shop's pose_type,
// Consumer-to-shop's source_type): an integer in [1, column2_max] named `column2` in messages, then handed to
// `check` with its sample (which may refuse it with r.fail); the clothes type is set too.
using BoxColumnCheck = std::function<void(const Record& r, int value, const Sample& s)>;
void read_bbox_file(Dataset& ds, LoadContext& ctx, const std::string& rel, const char* column2 = nullptr,
                    int column2_max = 0, const BoxColumnCheck& check = {});

// Per-item attribute file (In-shop, Consumer-to-shop list_attr_items.txt): "<item id> <A values>", copied
// onto every sample of the item. Items the dataset does not list are reported once as a warning.
void read_item_attributes(Dataset& ds, LoadContext& ctx, const std::string& rel);

// Category per sample from its path's "<A>/<B>" (given per sample, in sample order); the names are sorted
// so the dense index does not depend on row order.
void assign_categories(Dataset& ds, const std::vector<std::string>& sample_category);
// Dense items: the item list file (`rel`, count-only header) fixes the order when present; otherwise the
// samples' ids, sorted. Sample ids missing from the list are an error against `partition`.
void assign_items(Dataset& ds, LoadContext& ctx, const char* rel, const std::string& partition);

// Dense index of `name` in `names`, appending it when new.
int intern(std::unordered_map<std::string, int>& index, std::vector<std::string>& names, const std::string& name);

// "img/WOMEN/Dresses/id_00000021/04_1_front.jpg" -> path components.
std::vector<std::string> path_parts(const std::string& path);

}  // namespace fn::data
