#include "fashionnet/report/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>

#include "core/error.h"
#include "fashionnet/report/html.h"

namespace fn::fashionnet {
namespace {
const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

constexpr double kEps = 1e-9;  // relative slack when comparing data with tick multiples

// m x 10^e, computed so that the result is the double nearest the decimal value (0.3, not 0.30000000000000004).
double scaled(double m, int e) { return e >= 0 ? m * std::pow(10.0, e) : m / std::pow(10.0, -e); }

// The values m x 10^e (m in `mantissas`, ascending) from the largest <= lo to the smallest >= hi; lo, hi > 0.
std::vector<double> decade_sequence(double lo, double hi, const std::vector<double>& mantissas) {
  std::vector<double> all;
  const int e0 = int(std::floor(std::log10(lo))) - 1, e1 = int(std::ceil(std::log10(hi))) + 1;
  for (int e = e0; e <= e1; ++e)
    for (double m : mantissas) all.push_back(scaled(m, e));
  size_t first = 0, last = all.size() - 1;
  for (size_t i = 0; i < all.size(); ++i)
    if (all[i] <= lo * (1 + kEps)) first = i;
  for (size_t i = all.size(); i-- > 0;)
    if (all[i] >= hi * (1 - kEps)) last = i;
  return std::vector<double>(all.begin() + long(first), all.begin() + long(std::max(first, last)) + 1);
}

// Layout constants, pixels.
constexpr double kFont = 12, kTitleFont = 14;
constexpr double kSwatch = 20, kSwatchGap = 6, kLegendGap = 16, kLegendRow = 18;

struct LegendLayout {
  bool below = false;
  double entry_w = 0;  // swatch + gap + the longest name
  int columns = 1, rows = 0;
};
}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int max_intervals) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0, 1};
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) {
    if (lo > 0) lo = 0, hi *= 2;
    else if (lo < 0) hi = 0, lo *= 2;
    else hi = 1;
  }
  if (!std::isfinite(hi - lo)) return {lo, hi};
  max_intervals = std::max(max_intervals, 2);
  const double span = hi - lo;
  const int e_start = int(std::floor(std::log10(span / max_intervals))) - 1;
  for (int e = e_start; e < e_start + 40; ++e) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = scaled(m, e);
      const double first = std::floor(lo / step + kEps), last = std::ceil(hi / step - kEps);
      if (last - first > max_intervals) continue;
      std::vector<double> ticks;
      for (double i = first; i <= std::max(last, first + 1); ++i) {
        double v = scaled(i * m, e);
        if (std::fabs(v) < step * kEps) v = 0;  // no "-0"
        ticks.push_back(v);
      }
      return ticks;
    }
  }
  return {lo, hi};  // not reached for finite input
}

std::vector<double> log_ticks(double lo, double hi) {
  const bool lo_ok = std::isfinite(lo) && lo > 0, hi_ok = std::isfinite(hi) && hi > 0;
  if (!lo_ok && !hi_ok) return {1, 10};
  if (!lo_ok) lo = hi / 10;
  if (!hi_ok) hi = lo * 10;
  if (lo > hi) std::swap(lo, hi);
  if (lo == hi) lo /= 2, hi *= 2;
  if (std::log10(hi / lo) <= 4) {
    std::vector<double> t = decade_sequence(lo, hi, {1, 2, 5});
    if (t.size() >= 3 && t.size() <= 9) return t;
    if (t.size() < 3) {
      t = decade_sequence(lo, hi, {1, 2, 3, 4, 5, 6, 7, 8, 9});
      if (t.size() >= 3) return t;
      std::vector<double> n = nice_ticks(lo, hi);
      return n.front() > 0 ? n : t;
    }
  }
  // Powers of ten, every `every`-th one (multiples of `every`), at most 9 ticks.
  const int p0 = int(std::floor(std::log10(lo) + kEps)), p1 = int(std::ceil(std::log10(hi) - kEps));
  for (int every = 1;; ++every) {
    const int a = int(std::floor(double(p0) / every)) * every, b = int(std::ceil(double(p1) / every)) * every;
    if ((b - a) / every + 1 > 9) continue;
    std::vector<double> ticks;
    for (int p = a; p <= b; p += every) ticks.push_back(scaled(1, p));
    return ticks;
  }
}

std::string format_tick(double v) {
  if (v == 0) return "0";
  char b[32];
  std::snprintf(b, sizeof b, "%.6g", v);
  std::string s = b;
  const size_t e = s.find('e');
  if (e != std::string::npos) {  // "1e+06" -> "1e6", "2.5e-05" -> "2.5e-5"
    std::string mant = s.substr(0, e), ex = s.substr(e + 1);
    const bool neg = !ex.empty() && ex[0] == '-';
    if (!ex.empty() && (ex[0] == '+' || ex[0] == '-')) ex.erase(0, 1);
    ex.erase(0, std::min(ex.find_first_not_of('0'), ex.size() - 1));
    s = mant + "e" + (neg ? "-" : "") + ex;
  }
  return s;
}

double text_width(const std::string& s, double font_px) {
  double em = 0;
  for (unsigned char c : s) {
    if (c >= 0x80) {
      em += (c & 0xC0) == 0x80 ? 0.0 : 0.8;  // a UTF-8 character: its lead byte counts, not its continuation bytes
    } else if (std::string("ijl.,:;!|'`").find(char(c)) != std::string::npos) {
      em += 0.3;
    } else if (std::string("ftrI()[]{}- /\"").find(char(c)) != std::string::npos) {
      em += 0.42;
    } else if (c == 'm' || c == 'w') {
      em += 0.95;
    } else if (c == 'M' || c == 'W' || c == '@' || c == '%') {
      em += 1.0;
    } else if (c >= 'A' && c <= 'Z') {
      em += 0.76;
    } else {
      em += 0.64;  // digits, the other lower-case letters, the other signs
    }
  }
  return em * font_px;
}

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& o) {
  // Data range (log axis: positive y only).
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto usable = [&](double x, double y) { return std::isfinite(x) && std::isfinite(y) && (!o.log_y || y > 0); };
  for (auto& s : series)
    for (auto& [x, y] : s.points) {
      if (!usable(x, y)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1;
  if (!(y0 <= y1)) y0 = o.log_y ? 1 : 0, y1 = o.log_y ? 10 : 1;
  if (o.x_from_zero && x0 > 0) x0 = 0;
  // One value v: v +- 10% keeps the line mid-plot with v on a tick (1.0: 0.9 .. 1.1 in steps of 0.05), where
  // nice_ticks' widening to 0..2v would put 2.0 on an axis of a measure that cannot pass 1.
  if (!o.log_y && y0 == y1 && y0 != 0) {
    const double d = 0.1 * std::fabs(y0);
    y0 -= d, y1 += d;
  }
  const std::vector<double> xt = nice_ticks(x0, x1), yt = o.log_y ? log_ticks(y0, y1) : nice_ticks(y0, y1);
  auto ty = [&](double y) { return o.log_y ? std::log10(y) : y; };
  const double ax0 = xt.front(), ax1 = xt.back(), ay0 = ty(yt.front()), ay1 = ty(yt.back());

  // Margins: the left one fits the widest y tick label and the rotated y label; the right one, a legend
  // that fits there (else the legend goes below and the height grows).
  double tick_w = 0;
  for (double v : yt) tick_w = std::max(tick_w, text_width(format_tick(v), kFont));
  const double L = std::max(50.0, 26 + tick_w + 8), T = 36, B = 48;
  LegendLayout lg;
  for (auto& s : series) lg.entry_w = std::max(lg.entry_w, kSwatch + kSwatchGap + text_width(s.name, kFont));
  double R = 20;
  if (!series.empty()) {
    if (lg.entry_w + 2 * kLegendGap <= 0.3 * o.width && kLegendRow * double(series.size()) <= o.height - 84) {
      R = lg.entry_w + 2 * kLegendGap;
    } else {
      lg.below = true;
      const double room = o.width - L - R;
      lg.columns = std::max(1, int((room + kLegendGap) / (lg.entry_w + kLegendGap)));
      lg.rows = int((series.size() + size_t(lg.columns) - 1) / size_t(lg.columns));
    }
  }
  const double W = o.width - L - R, H = o.height - T - B;
  const double total_h = o.height + (lg.below ? lg.rows * kLegendRow + 2 : 0);
  auto px = [&](double x) { return L + (x - ax0) / (ax1 - ax0) * W; };
  auto py = [&](double y) { return T + (1 - (ty(y) - ay0) / (ay1 - ay0)) * H; };

  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' class='chart' width='" << o.width << "' height='" << total_h
    << "' viewBox='0 0 " << o.width << " " << total_h
    << "' font-family='sans-serif' font-size='" << kFont << "'>\n<rect width='100%' height='100%' fill='white'/>\n";
  const double title_x = text_width(o.title, kTitleFont * 1.08) <= o.width - L - 10 ? L : 10;
  s << "<text x='" << title_x << "' y='22' font-size='" << kTitleFont << "' font-weight='bold'>" << html_escape(o.title)
    << "</text>\n";
  // Grid and tick labels at the nice values; the frame on top.
  for (double v : xt) {
    const double gx = px(v);
    s << "<line x1='" << gx << "' y1='" << T << "' x2='" << gx << "' y2='" << T + H << "' stroke='#eee'/>"
      << "<text x='" << gx << "' y='" << T + H + 16 << "' text-anchor='middle'>" << format_tick(v) << "</text>\n";
  }
  for (double v : yt) {
    const double gy = py(v);
    s << "<line x1='" << L << "' y1='" << gy << "' x2='" << L + W << "' y2='" << gy << "' stroke='#eee'/>"
      << "<text x='" << L - 6 << "' y='" << gy + 4 << "' text-anchor='end'>" << format_tick(v) << "</text>\n";
  }
  s << "<rect x='" << L << "' y='" << T << "' width='" << W << "' height='" << H << "' fill='none' stroke='#888'/>\n";
  s << "<text x='" << L + W / 2 << "' y='" << T + H + 38 << "' text-anchor='middle'>" << html_escape(o.x_label)
    << "</text>\n";
  s << "<text transform='translate(16," << T + H / 2 << ") rotate(-90)' text-anchor='middle'>"
    << html_escape(o.y_label) << (o.log_y ? " (log scale)" : "") << "</text>\n";
  // Marks: dashed lines, labels at the top of the plot; a label that would run into the previous one (or
  // out of the plot) moves down a row (or to the left of its line).
  double prev_end = -INFINITY;
  int row = 0;
  for (auto& [x, label] : o.x_marks) {
    if (!(x >= ax0 && x <= ax1)) continue;
    const double lx = px(x), lw = text_width(label, kFont);
    const bool left = lx + 3 + lw > L + W;
    const double start = left ? lx - 3 - lw : lx + 3;
    row = start < prev_end + 4 ? (row + 1) % 3 : 0;
    prev_end = std::max(prev_end, start + lw);
    s << "<line x1='" << lx << "' y1='" << T << "' x2='" << lx << "' y2='" << T + H
      << "' stroke='#999' stroke-dasharray='4 3'/><text x='" << (left ? lx - 3 : lx + 3) << "' y='" << T + 13 + 14 * row
      << "' fill='#666'" << (left ? " text-anchor='end'" : "") << ">" << html_escape(label) << "</text>\n";
  }
  // Lines (broken where a point is skipped), with dots when there are few points.
  for (size_t i = 0; i < series.size(); ++i) {
    const char* c = kColours[i % 8];
    const auto& pts = series[i].points;
    std::ostringstream seg;
    int in_seg = 0;
    auto flush = [&] {
      if (in_seg > 0)
        s << "<polyline fill='none' stroke='" << c << "' stroke-width='1.5' points='" << seg.str() << "'/>\n";
      seg.str("");
      in_seg = 0;
    };
    for (auto& [x, y] : pts) {
      if (!usable(x, y)) {
        flush();
        continue;
      }
      seg << px(x) << "," << py(y) << " ";
      ++in_seg;
    }
    flush();
    if (pts.size() <= 20)
      for (auto& [x, y] : pts)
        if (usable(x, y)) s << "<circle cx='" << px(x) << "' cy='" << py(y) << "' r='2.5' fill='" << c << "'/>\n";
  }
  // Legend.
  for (size_t i = 0; i < series.size(); ++i) {
    double lx, ly;  // swatch start, text baseline
    if (lg.below) {
      lx = L + double(int(i) % lg.columns) * (lg.entry_w + kLegendGap);
      ly = o.height + 8 + kLegendRow * double(int(i) / lg.columns);
    } else {
      lx = L + W + kLegendGap;
      ly = T + 14 + kLegendRow * double(i);
    }
    s << "<line x1='" << lx << "' y1='" << ly - 4 << "' x2='" << lx + kSwatch << "' y2='" << ly - 4 << "' stroke='"
      << kColours[i % 8] << "' stroke-width='2'/><text x='" << lx + kSwatch + kSwatchGap << "' y='" << ly << "'>"
      << html_escape(series[i].name) << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string svg_stack(const std::vector<std::string>& charts) {
  // The size of a chart's root element, as svg_line_chart writes it: width='W' height='H'.
  auto attribute = [](const std::string& svg, const std::string& name) {
    const size_t end = svg.find('>'), at = svg.find(" " + name + "='");
    FN_CHECK(at != std::string::npos && at < end, "svg_stack: the chart's root element has no ", name);
    return std::stod(svg.substr(at + name.size() + 3));
  };
  double width = 0, height = 0;
  std::ostringstream body;
  for (const std::string& c : charts) {
    FN_CHECK(c.rfind("<svg ", 0) == 0, "svg_stack: not a chart of svg_line_chart");
    body << "<svg y='" << height << "'" << c.substr(4);
    width = std::max(width, attribute(c, "width"));
    height += attribute(c, "height");
  }
  std::ostringstream s;
  s << "<svg xmlns='http://www.w3.org/2000/svg' class='chart' width='" << width << "' height='" << height
    << "' viewBox='0 0 " << width << " " << height << "'>\n"
    << body.str() << "</svg>\n";
  return s.str();
}

}  // namespace fn::fashionnet
