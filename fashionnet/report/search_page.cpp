#include "fashionnet/report/search_page.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/format.h"
#include "data/dataset.h"
#include "fashionnet/report/html.h"

namespace fn::fashionnet {
namespace fs = std::filesystem;

namespace {

// One colour per left/right pair (collar, sleeve, waist, hem), so a pair reads as a pair.
const char* const kPairColour[4] = {"#e6194b", "#3cb44b", "#4363d8", "#f58231"};

std::string format_px(double v) { return fixed(v, 1); }

void render_photo(std::ostringstream& o, const PageQuery& q, const std::string& page_dir, int width, bool dots) {
  const double w = width;
  const double h = q.width > 0 && q.height > 0 ? w * q.height / q.width : w;
  o << "<div class=\"photo\" style=\"width:" << format_px(w) << "px;height:" << format_px(h) << "px\">\n";
  o << "<img src=\"" << html_escape(relative_link(q.image, page_dir)) << "\" width=\"" << format_px(w)
    << "\" height=\"" << format_px(h) << "\" alt=\"" << html_escape(q.image) << "\">\n";
  o << "<svg width=\"" << format_px(w) << "\" height=\"" << format_px(h) << "\" viewBox=\"0 0 " << format_px(w)
    << " " << format_px(h) << "\">\n";
  if (q.crop.size() == 4)
    o << "<rect class=\"crop\" x=\"" << format_px(q.crop[0] * w) << "\" y=\"" << format_px(q.crop[1] * h)
      << "\" width=\"" << format_px((q.crop[2] - q.crop[0]) * w) << "\" height=\"" << format_px((q.crop[3] - q.crop[1]) * h)
      << "\" fill=\"none\" stroke=\"#ffd60a\" stroke-width=\"2\" stroke-dasharray=\"6 4\"><title>the part of the photo the "
         "model saw (the box given with it)</title></rect>\n";
  const size_t slots = dots ? std::min(q.landmarks.size() / 2, q.visible.size()) : 0;
  for (size_t s = 0; s < slots; ++s) {
    if (!q.visible[s]) continue;  // an invisible slot's position means nothing
    o << "<circle class=\"landmark\" cx=\"" << format_px(q.landmarks[2 * s] * w) << "\" cy=\""
      << format_px(q.landmarks[2 * s + 1] * h) << "\" r=\"5\" fill=\"" << kPairColour[(s / 2) % 4]
      << "\" stroke=\"white\" stroke-width=\"1.5\"><title>" << html_escape(data::slot_name(int(s)))
      << "</title></circle>\n";
  }
  o << "</svg>\n</div>\n";
}

}  // namespace

bool item_known(const std::string& item_id) { return !item_id.empty() && item_id != "-"; }

std::string relative_link(const std::string& path, const std::string& page_dir) {
  const fs::path target = fs::absolute(fs::path(path)).lexically_normal();
  const fs::path base = fs::absolute(fs::path(page_dir.empty() ? "." : page_dir)).lexically_normal();
  fs::path rel = target.lexically_relative(base);
  if (rel.empty()) rel = target;  // different roots (another drive): keep the absolute path
  const std::string s = rel.generic_string();
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '/' || c == '.' || c == '_' || c == '~' || c == '-') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string render_search_page(const std::vector<PageQuery>& queries, const std::string& page_dir,
                               const PageOptions& opt) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escape(opt.title)
    << "</title>\n" << page_style() << "</head>\n<body class=\"search\">\n<h1>" << html_escape(opt.title) << "</h1>\n";
  for (const std::string& n : opt.notes) o << "<p class=\"note\">" << html_escape(n) << "</p>\n";
  if (opt.landmarks)
    o << "<p class=\"note\">Dots: predicted landmarks the model calls visible (hover for the slot).";
  else
    o << "<p class=\"note\">No landmark dots: this model was trained without landmarks, so its pose branch "
         "predicts none worth drawing.";
  if (std::any_of(queries.begin(), queries.end(), [](const PageQuery& q) { return q.crop.size() == 4; }))
    o << " Dashed frame: the box given with the query, the part of the photo the model saw.";
  o << " Distances: Euclidean between L2-normalised embeddings (0 to 2).</p>\n";

  for (size_t qi = 0; qi < queries.size(); ++qi) {
    const PageQuery& q = queries[qi];
    const bool known = item_known(q.item_id);
    int first_hit = 0;
    for (size_t r = 0; r < q.results.size() && known && first_hit == 0; ++r)
      if (q.results[r].item_id == q.item_id) first_hit = int(r) + 1;

    o << "<div class=\"query\" id=\"q" << qi << "\">\n<div>\n";
    render_photo(o, q, page_dir, opt.query_width, opt.landmarks);
    o << "<div class=\"caption\">query " << qi + 1 << ": " << html_escape(q.image) << "<br>item: "
      << (known ? html_escape(q.item_id) : "unknown");
    if (known)
      o << "<br>" << (first_hit ? "first hit at rank " + std::to_string(first_hit)
                                : "no hit in the top " + std::to_string(q.results.size()));
    o << "</div>\n</div>\n<div class=\"results\">\n";
    for (size_t r = 0; r < q.results.size(); ++r) {
      const PageResult& res = q.results[r];
      const bool hit = known && res.item_id == q.item_id;
      const char* cls = !known ? "result" : hit ? "result hit" : "result miss";
      o << "<div class=\"" << cls << "\" style=\"width:" << opt.result_width << "px\">\n";
      o << "<img src=\"" << html_escape(relative_link(res.image, page_dir)) << "\" width=\"" << opt.result_width
        << "\" alt=\"" << html_escape(res.image) << "\"><br>\n";
      o << "#" << r + 1 << " d=" << fixed(res.distance, 4);
      if (hit) o << " <span class=\"mark\">&#10003; hit</span>";
      o << "<br>item " << html_escape(res.item_id) << "<br>" << html_escape(res.image) << "\n</div>\n";
    }
    o << "</div>\n</div>\n";
  }
  o << "</body>\n</html>\n";
  return o.str();
}

void write_search_page(const std::string& html_path, const std::vector<PageQuery>& queries,
                       const PageOptions& opt) {
  const std::string dir = fs::path(html_path).parent_path().string();
  const std::string html = render_search_page(queries, dir, opt);
  errno = 0;
  std::ofstream f(html_path, std::ios::binary);
  const int err = errno;
  FN_EXPECT(f.good(), html_path, ": cannot open the page for writing",
            err ? cat(": ", std::strerror(err)) : std::string(), " (does the folder exist?)");
  f << html;
  f.close();
  FN_EXPECT(!f.fail(), html_path, ": could not write the page (is the disk full?)");
}

}  // namespace fn::fashionnet
