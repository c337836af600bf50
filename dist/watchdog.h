// Watchdog: a thread that ends the process when a collective does not complete in time, so that a rank
// whose peer died or stalled exits non-zero with a message instead of hanging (issue 20, item 5).
//
// A collective is registered with begin() before it is started and ended with end() once it has completed
// (host-blocking MPI calls), or registered with begin_polled() and a completion test that the watchdog
// thread itself calls (NCCL work queued on a stream, which no host thread waits for). When an entry is
// still open `timeout_s` after it began, on_timeout(message) runs once on the watchdog thread; the
// message names the rank, the collective and the time. The default action (Communicator) prints it,
// aborts NCCL and MPI, and exits non-zero.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace fn::dist {

class Watchdog {
 public:
  using OnTimeout = std::function<void(const std::string& message)>;
  // `who` prefixes messages ("rank 1 of 4 on host-a"). timeout_s <= 0 disables the watchdog (no thread).
  Watchdog(double timeout_s, std::string who, OnTimeout on_timeout);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  uint64_t begin(std::string what);                                      // a collective starts
  uint64_t begin_polled(std::string what, std::function<bool()> done);  // done() true once complete
  void end(uint64_t ticket);  // completed (or abandoned); unknown tickets are ignored
  double timeout_s() const { return timeout_s_; }
  bool fired() const;
  size_t open_count() const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string what;
    Clock::time_point start;
    std::function<bool()> done;  // empty: ended by end()
  };
  void run();

  double timeout_s_;
  std::string who_;
  OnTimeout on_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Entry> open_;
  uint64_t next_ = 1;
  bool stop_ = false;
  bool fired_ = false;
  std::thread thread_;
};

}  // namespace fn::dist
