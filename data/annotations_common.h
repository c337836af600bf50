// Pieces the benchmark readers share (internal to data/): where files are looked up and how their absence
// is judged, the bbox and landmark columns, attribute values, and the image-name index used to join files.
#pragma once
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

// Image name -> sample index, to join a per-image file onto the samples. Reports names it does not know
// and samples the file leaves out.
class ImageIndex {
 public:
  explicit ImageIndex(const Dataset& ds);
  int find(const std::string& image) const;  // -1 when unknown
  // Returns the sample for r's image column, or throws a LineError naming the unknown image; marks it seen.
  int require(const Record& r, size_t col, std::vector<char>& seen) const;
  // Reports every sample not seen in `file` (one error, with the first few names).
  static void report_unseen(const Dataset& ds, const std::vector<char>& seen, const std::string& file,
                            LoadReport& report);

 private:
  std::unordered_map<std::string, int> index_;
};

// Dense index of `name` in `names`, appending it when new.
int intern(std::unordered_map<std::string, int>& index, std::vector<std::string>& names, const std::string& name);

// "img/WOMEN/Dresses/id_00000021/04_1_front.jpg" -> path components.
std::vector<std::string> path_parts(const std::string& path);

}  // namespace fn::data
