// Line charts as self-contained SVG files (no image library needed; every browser shows them and the
// HTML reports embed them): loss curves and top-k curves.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace fn::fashionnet {

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};

struct ChartOptions {
  std::string title, x_label, y_label;
  bool log_y = false;
  int width = 720, height = 360;
  std::vector<std::pair<double, std::string>> x_marks;  // vertical lines with a label (e.g. stage starts)
};

std::string svg_line_chart(const std::vector<Series>& series, const ChartOptions& opt);

}  // namespace fn::fashionnet
