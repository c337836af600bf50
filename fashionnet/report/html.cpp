#include "fashionnet/report/html.h"

namespace fn::fashionnet {

std::string html_escape(const std::string& s) {
  std::string r;
  r.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': r += "&amp;"; break;
      case '<': r += "&lt;"; break;
      case '>': r += "&gt;"; break;
      case '"': r += "&quot;"; break;
      case '\'': r += "&#39;"; break;
      default: r += c;
    }
  }
  return r;
}

const std::string& page_style() {
  // body.report: the run report (one centred column); body.search: the search page (full width, rows of
  // results that wrap). The report's example queries use .example/.ex-*, the search page's .query/.result,
  // so neither page's rules reach into the other's.
  static const std::string css = R"(<style>
body { font-family: sans-serif; color: #222; background: #fafafa; margin: 16px; }
body.report { max-width: 1100px; margin: 20px auto; padding: 0 16px; }
h1 { font-size: 1.6em; }
h2 { font-size: 1.25em; margin-top: 1.6em; }
.note { color: #444; }
.warning { color: #900; background: #fee; border: 2px solid #c33; padding: 8px 12px; font-weight: bold; }
table.paper tr.ours td, table.paper tr.ours th { background: #eef4ff; font-weight: bold; }
.wide { overflow-x: auto; }
table.paper td, table.paper th { padding: 3px 7px; font-size: 0.92em; }
table.paper th { text-align: center; }
table.paper tr > th:first-child { text-align: left; }
.sources { font-size: 0.9em; color: #444; }
table { border-collapse: collapse; background: white; }
td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
pre { background: white; border: 1px solid #ddd; padding: 8px; overflow-x: auto; }
svg.chart { display: block; max-width: 100%; height: auto; margin: 12px 0; border: 1px solid #ddd; }
.example { display: flex; gap: 8px; align-items: flex-start; margin: 10px 0; }
.example figure { margin: 0; text-align: center; font-size: 11px; max-width: 104px; word-break: break-all; }
.example img { width: 96px; height: 96px; object-fit: cover; border: 4px solid #bbb; }
.example .ex-query img { border-color: #36c; }
.example .ex-hit img { border-color: #2a2; }
.example .ex-miss img { border-color: #c33; }
.query { display: flex; gap: 16px; align-items: flex-start; border-top: 1px solid #ccc; padding: 12px 0; }
.photo { position: relative; flex: none; }
.photo img { display: block; }
.photo svg { position: absolute; left: 0; top: 0; }
.caption { font-size: 12px; word-break: break-all; max-width: 256px; }
.results { display: flex; flex-wrap: wrap; gap: 8px; }
.result { border: 3px solid transparent; padding: 2px; font-size: 11px; word-break: break-all; }
.result.hit { border-color: #2a2; background: #efe; }
.result.miss { border-color: #ddd; }
.mark { font-weight: bold; color: #2a2; }
</style>
)";
  return css;
}

}  // namespace fn::fashionnet
