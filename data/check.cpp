// check_images: the checks that need the photos themselves (existence, bbox and landmarks inside).
#include <filesystem>
#include <set>

#include "core/error.h"
#include "data/dataset.h"
#include "data/image_io.h"

namespace fn::data {

int64_t check_images(const Dataset& ds, LoadReport& report) {
  int64_t found = 0, missing = 0;
  std::string missing_names;
  for (const Sample& s : ds.samples) {
    const std::string path = ds.root + "/" + s.image;
    if (!std::filesystem::exists(path)) {
      if (missing++ < 3) missing_names += cat(missing > 1 ? ", " : "", s.image);
      continue;
    }
    ++found;
    int w = 0, h = 0;
    try {
      image_size(path, w, h);
    } catch (const Error& e) {
      report.error(e.what());
      continue;
    }
    if (s.has_bbox && (s.x2 > w || s.y2 > h))
      report.error(cat(s.image, ": bbox (", s.x1, ", ", s.y1, ", ", s.x2, ", ", s.y2, ") is outside the ", w, "x", h, " image"));
    if (s.has_landmarks)
      for (int k = 0; k < kSlots; ++k)
        if ((s.lm.vis[k] == kVisible || s.lm.vis[k] == kOccluded) && (s.lm.x[k] >= w || s.lm.y[k] >= h))
          report.error(cat(s.image, ": ", slot_name(k), " landmark (", s.lm.x[k], ", ", s.lm.y[k], ") is outside the ", w,
                           "x", h, " image but not marked cut off"));
  }
  if (missing)
    report.error(cat(missing, " of ", ds.samples.size(), " images are missing on disk (", missing_names,
                     missing > 3 ? ", ..." : "", ")"));
  return found;
}

}  // namespace fn::data
