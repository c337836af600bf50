// A progress line for long work: done/total, rate, ETA and a free-form tail (the loss terms). On a
// terminal it rewrites one line; otherwise (logs, CI) it prints a line every `every` updates.
#pragma once
#include <chrono>
#include <string>

namespace fn {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit, int64_t every = 10);
  // `done` items finished, `units_done` for the rate (e.g. images); `tail` appended to the line.
  void update(int64_t done, double units_done, const std::string& tail = "");
  void finish(const std::string& tail = "");
  double elapsed_s() const;

 private:
  std::string label_, unit_;
  int64_t total_, every_, calls_ = 0;
  bool tty_;
  std::chrono::steady_clock::time_point start_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12s"

}  // namespace fn
