// The HTML page of `fashionnet search`: per query photo, the photo with the model's predicted landmarks
// drawn over it (inline SVG on top of the <img>, visible slots only; none for a model trained without
// landmarks, PageOptions::landmarks), then its k nearest gallery images
// with their distances. When the query's item id is known, results of that item are marked as hits and the
// others as misses; otherwise nothing is marked. Self-contained (inline CSS, no script); every <img> links
// to its file by a path relative to the page's folder, so the page works when opened from disk.
// Independent of the model, so it is tested on hand-made results.
#pragma once
#include <string>
#include <vector>

#include "fashionnet/report/html.h"  // html_escape

namespace fn::fashionnet {

struct PageResult {
  std::string image;    // file-system path of the gallery image (absolute, or relative to the working dir)
  std::string item_id;
  float distance = 0;
};

struct PageQuery {
  std::string image;    // file-system path of the query photo
  std::string item_id;  // "" or "-": unknown (no hit marking)
  int width = 0, height = 0;       // photo size in pixels (sets the drawing's aspect ratio)
  std::vector<float> landmarks;    // 8 x (x, y) as fractions of the photo's width and height; may be empty
  std::vector<bool> visible;       // 8: draw the slot only when true
  // Empty, or (x0, y0, x1, y1) as fractions of the photo's width and height: the part of the photo the network
  // saw when the query came with a box (the box widened by the training's margin), drawn as a dashed frame.
  std::vector<float> crop;
  std::vector<PageResult> results; // nearest first
};

struct PageOptions {
  std::string title = "FashionNet search";
  std::vector<std::string> notes;  // lines shown under the title (checkpoint, gallery, ...)
  // Whether to draw the queries' landmarks: false for a model trained without landmarks (its pose branch never
  // learned); the page then draws none of them and says why.
  bool landmarks = true;
  int query_width = 256;           // display width of a query photo, CSS pixels
  int result_width = 128;          // display width of a result thumbnail
};

bool item_known(const std::string& item_id);  // not "" and not "-"

// `path` as a URL relative to `page_dir` (both taken relative to the working directory when not absolute),
// percent-encoding bytes outside [A-Za-z0-9/._~-].
std::string relative_link(const std::string& path, const std::string& page_dir);

// The whole page for a page written into `page_dir`.
std::string render_search_page(const std::vector<PageQuery>& queries, const std::string& page_dir,
                               const PageOptions& opt = {});

// Renders and writes `html_path` (its folder must exist); throws fn::Error naming the file on failure.
void write_search_page(const std::string& html_path, const std::vector<PageQuery>& queries,
                       const PageOptions& opt = {});

}  // namespace fn::fashionnet
