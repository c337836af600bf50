// Line charts as self-contained SVG files (no image library needed; every browser shows them and the
// HTML reports embed them): loss curves and top-k curves.
//
// Axes: ticks at round values covering the data (nice_ticks: steps of 1, 2 or 5 x 10^n; log axes:
// log_ticks), and the axis runs from the first tick to the last, so the data never touches a cut-off
// label. The legend goes to the right of the plot when its longest name is short, else below the plot
// (in as many columns as fit); either way it is measured (text_width) so no name is cut off.
//
// Two ranges are chosen for the reader rather than from the data alone: a linear y axis whose data are one
// value v (a validation measure that stays at 1.0) shows v +- 10% (0..1 for v = 0), not 0..2v; and an x axis
// whose values are all >= 0 (steps, k, thresholds) starts at 0 (x_from_zero), so panels of one run line up.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace fn::fashionnet {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y); non-finite y (and y <= 0 on a log axis) are skipped
};

struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_y = false;
  int width = 720, height = 360;  // the plot's frame; a legend below the plot adds to the height
  std::vector<std::pair<double, std::string>> x_marks;  // vertical lines with a label (e.g. stage starts)
  bool x_from_zero = true;  // x values all >= 0 (steps, k, thresholds): the axis starts at 0
};

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& opt);

// Charts from svg_line_chart, one above the other in one SVG document (panels with their own y axes, e.g. the
// training loss over a validation measure): as wide as the widest, as high as all of them.
std::string svg_stack(const std::vector<std::string>& charts);

// Ticks for a linear axis showing [lo, hi]: multiples of the smallest step s in {1, 2, 5} x 10^n for which
// at most `max_intervals` steps cover the range, from the largest multiple <= lo to the smallest >= hi
// (1..50 -> 0, 10, ..., 50; 17.4..58.6 -> 10, 20, ..., 60). A zero-width range is widened first (v > 0:
// 0..2v; v < 0: 2v..0; 0: 0..1). Always at least two ticks, increasing; non-finite input gives 0, 1.
std::vector<double> nice_ticks(double lo, double hi, int max_intervals = 6);

// Ticks for a log axis showing [lo, hi] (both > 0; a bad bound is mended from the other, a zero-width range
// widened to v/2..2v): the 1-2-5 sequence (0.1, 0.2, 0.5, 1, 2, 5, ...) when it gives 3 to 9 ticks; when it
// gives more, powers of ten (every 2nd, 3rd, ... power when there would be more than 9); when it gives fewer,
// 1..9 x 10^n, or for a range within one such step, nice_ticks. The first tick is <= lo and the last >= hi.
std::vector<double> log_ticks(double lo, double hi);

// A tick label: the shortest of %.6g, with "1e+06" written "1e6" and "-0" as "0".
std::string format_tick(double v);

// An estimate of the width in pixels of `s` in a sans-serif font of `font_px` pixels (per-character widths of
// Arial/DejaVu Sans rounded up, so the text fits in the space it is given).
double text_width(const std::string& s, double font_px);

}  // namespace fn::fashionnet
