#include "fashionnet/report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace fn::fashionnet {
namespace {
const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string esc(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '<') r += "&lt;";
    else if (c == '>') r += "&gt;";
    else if (c == '&') r += "&amp;";
    else r += c;
  }
  return r;
}

std::string num(double v) {
  char b[32];
  double a = std::fabs(v);
  std::snprintf(b, sizeof b, (a != 0 && (a < 1e-2 || a >= 1e5)) ? "%.2g" : "%.3g", v);
  return b;
}
}  // namespace

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  const double L = 70, R = 150, T = 36, B = 48;  // margins; the legend sits on the right
  double W = o.width - L - R, H = o.height - T - B;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double y) { return o.log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (auto& s : series)
    for (auto& [x, y] : s.points) {
      if (!std::isfinite(y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, ty(y)), y1 = std::max(y1, ty(y));
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1, y0 -= 1;
  double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * W; };
  auto py = [&](double y) { return T + (1 - (ty(y) - y0) / (y1 - y0)) * H; };

  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << o.width << "' height='" << o.height
    << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  s << "<text x='" << L << "' y='20' font-size='14' font-weight='bold'>" << esc(o.title) << "</text>\n";
  // Axes with 5 ticks each.
  s << "<rect x='" << L << "' y='" << T << "' width='" << W << "' height='" << H << "' fill='none' stroke='#888'/>\n";
  for (int i = 0; i <= 4; ++i) {
    double fx = x0 + (x1 - x0) * i / 4, fy = y0 + (y1 - y0) * i / 4;
    double gx = L + W * i / 4, gy = T + H * (1 - i / 4.0);
    s << "<line x1='" << gx << "' y1='" << T << "' x2='" << gx << "' y2='" << T + H << "' stroke='#eee'/>"
      << "<text x='" << gx << "' y='" << T + H + 16 << "' text-anchor='middle'>" << num(fx) << "</text>\n";
    double label = o.log_y ? std::pow(10.0, fy) : fy;
    s << "<line x1='" << L << "' y1='" << gy << "' x2='" << L + W << "' y2='" << gy << "' stroke='#eee'/>"
      << "<text x='" << L - 6 << "' y='" << gy + 4 << "' text-anchor='end'>" << num(label) << "</text>\n";
  }
  s << "<text x='" << L + W / 2 << "' y='" << o.height - 8 << "' text-anchor='middle'>" << esc(o.x_label) << "</text>\n";
  s << "<text transform='translate(14," << T + H / 2 << ") rotate(-90)' text-anchor='middle'>" << esc(o.y_label)
    << (o.log_y ? " (log scale)" : "") << "</text>\n";
  for (auto& [x, label] : o.x_marks) {
    if (x < x0 || x > x1) continue;
    s << "<line x1='" << px(x) << "' y1='" << T << "' x2='" << px(x) << "' y2='" << T + H
      << "' stroke='#999' stroke-dasharray='4 3'/><text x='" << px(x) + 3 << "' y='" << T + 12 << "' fill='#666'>"
      << esc(label) << "</text>\n";
  }
  for (size_t i = 0; i < series.size(); ++i) {
    const char* c = kColours[i % 8];
    s << "<polyline fill='none' stroke='" << c << "' stroke-width='1.5' points='";
    for (auto& [x, y] : series[i].points)
      if (std::isfinite(y)) s << px(x) << "," << py(y) << " ";
    s << "'/>\n";
    double ly = T + 14 + 18 * double(i);
    s << "<line x1='" << L + W + 12 << "' y1='" << ly - 4 << "' x2='" << L + W + 32 << "' y2='" << ly - 4
      << "' stroke='" << c << "' stroke-width='2'/><text x='" << L + W + 38 << "' y='" << ly << "'>"
      << esc(series[i].name) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace fn::fashionnet
