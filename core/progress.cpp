#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace fn {

std::string format_duration(double s) {
  char b[32];
  if (s < 0 || s != s) return "?";
  long t = long(s + 0.5);
  if (t >= 3600) std::snprintf(b, sizeof b, "%ldh%02ldm", t / 3600, (t / 60) % 60);
  else if (t >= 60) std::snprintf(b, sizeof b, "%ldm%02lds", t / 60, t % 60);
  else std::snprintf(b, sizeof b, "%lds", t);
  return b;
}

Progress::Progress(std::string label, int64_t total, std::string unit, int64_t every)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), every_(every < 1 ? 1 : every),
      tty_(isatty(fileno(stdout))), start_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::update(int64_t done, double units, const std::string& tail) {
  ++calls_;
  if (!tty_ && calls_ % every_ != 0 && done != total_) return;
  double t = elapsed_s();
  double rate = t > 0 ? units / t : 0;
  double eta = done > 0 ? t * double(total_ - done) / double(done) : -1;
  std::printf("%s[%s] %lld/%lld  %.1f %s/s  ETA %s  %s%s", tty_ ? "\r\033[K" : "", label_.c_str(), (long long)done,
              (long long)total_, rate, unit_.c_str(), format_duration(eta).c_str(), tail.c_str(), tty_ ? "" : "\n");
  std::fflush(stdout);
}

void Progress::finish(const std::string& tail) {
  std::printf("%s[%s] done in %s  %s\n", tty_ ? "\r\033[K" : "", label_.c_str(), format_duration(elapsed_s()).c_str(),
              tail.c_str());
  std::fflush(stdout);
}

}  // namespace fn
